"""Cut-off panels: which events made a deadline, decided by a lot-drawn panel (DESIGN.md §7).

For every deadline a panel of ``panel_size`` representatives is drawn, by lot, from those whose
availability lease for the cycle was decided at the previous boundary (cycles 0 and 1 use the
whole roster: nobody could lease before the assembly existed).  The panel's seed is the
randomness of the deadline's own round, published after the leases were decided.

1. **Cut-off**: once the deadline's round is out, each member signs what it had received
   (a ``cutoff`` event): per ballot a bitmap over the ballot's electorate (bit *i*: member *i*'s
   first vote had arrived) and, for submissions and amendments, the (author, seq) pairs.
2. **Agreement** (``consensus.agreement``): members propose, prevote and precommit, as events.
   A value is the sorted list of the cut-off event ids it uses plus the future beacon round whose
   randomness the next draws or tie-breaks will use; it is *valid* iff it uses cut-offs of at
   least a quorum of distinct panel members for this deadline.  Honest members prevote a fresh
   proposal only while the round it names is not out yet.
3. **Decision**: precommits of a quorum of the panel for one value in one agreement round are a
   commit certificate.  The decided set follows from the value's cut-offs by the rule "an event
   counts iff more than half of the cut-offs used include it".

This module is pure: it reads records (``Replica.records``) and beacon randomness.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from . import cbor
from .agreement import quorum_size, value_id
from .errors import reject
from .sortition import draw_committee

import hashlib


# ---------------------------------------------------------------------- deadlines


def deadline_key(what: str, cycle: int, stage: int) -> bytes:
    """The stable name of a deadline, as events carry it."""
    return cbor.encode([what, cycle, stage])


def ballot_key(proposal: bytes, cycle: int, stage: int, amendment: bytes | None) -> bytes:
    return hashlib.sha256(b"klero/ballot/v1" + proposal + cycle.to_bytes(4, "big") + bytes([stage]) + (amendment or b"")).digest()


def panel_seed(deadline: bytes, randomness: bytes) -> bytes:
    return hashlib.sha256(b"klero/panel/v1" + deadline + randomness).digest()


def draw_panel(available: Iterable[bytes], size: int, deadline: bytes, randomness: bytes) -> tuple[bytes, ...]:
    """The panel of a deadline, in pick order (a member's index is its position)."""
    members, _, _ = draw_committee(tuple(sorted(set(available))), size, panel_seed(deadline, randomness), explain=False)
    return members


# ---------------------------------------------------------------------- cut-offs


@dataclass(frozen=True)
class CutOff:
    """What one panel member had received for one deadline."""

    #: ballot key -> bitmap over the ballot's electorate (bit i = byte i // 8, mask 1 << (i % 8))
    ballots: tuple[tuple[bytes, bytes], ...] = ()
    #: (author, seq) of submissions, amendments and withdrawals received in time
    items: tuple[tuple[bytes, int], ...] = ()

    def to_body(self) -> dict:
        return {"ballots": [[k, bits] for k, bits in self.ballots], "items": [[a, s] for a, s in self.items]}

    @classmethod
    def from_body(cls, body) -> "CutOff":
        if type(body) is not dict or set(body) != {"ballots", "items"}:
            raise reject("bad_body", "A cut-off lists its ballots and its items.")
        ballots, items = body["ballots"], body["items"]
        if type(ballots) is not list or type(items) is not list or len(ballots) > 100_000 or len(items) > 1_000_000:
            raise reject("bad_body", "A cut-off's ballots and items must be lists of bounded size.")
        for entry in ballots:
            if type(entry) is not list or len(entry) != 2 or type(entry[0]) is not bytes or len(entry[0]) != 32 or type(entry[1]) is not bytes:
                raise reject("bad_body", "Each ballot of a cut-off is [32-byte ballot key, bitmap].")
        for entry in items:
            if type(entry) is not list or len(entry) != 2 or type(entry[0]) is not bytes or len(entry[0]) != 32 or type(entry[1]) is not int or entry[1] < 1:
                raise reject("bad_body", "Each item of a cut-off is [32-byte author, seq].")
        keys = [e[0] for e in ballots]
        pairs = [(e[0], e[1]) for e in items]
        if keys != sorted(set(keys)) or pairs != sorted(set(pairs)):
            raise reject("bad_body", "A cut-off's ballots and items must be sorted and distinct.")
        return cls(tuple((k, b) for k, b in ballots), tuple(pairs))


def bitmap(indices: Iterable[int], size: int) -> bytes:
    out = bytearray((size + 7) // 8)
    for i in indices:
        out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def bits_of(data: bytes, size: int) -> set[int]:
    return {i for i in range(min(size, len(data) * 8)) if data[i // 8] >> (i % 8) & 1}


@dataclass
class Decided:
    """The decided set of one deadline."""

    deadline: bytes
    #: ballot key -> bitmap of the electorate members whose first vote counts as on time
    ballots: dict[bytes, bytes] = field(default_factory=dict)
    items: set[tuple[bytes, int]] = field(default_factory=set)
    seed_round: int = 0
    #: the commit certificate: agreement round and the panel members who precommitted
    round: int = -1
    signers: tuple[bytes, ...] = ()
    cutoff_signers: tuple[bytes, ...] = ()


def majority(cutoffs: list[CutOff], sizes: Mapping[bytes, int]) -> tuple[dict[bytes, bytes], set[tuple[bytes, int]]]:
    """The more-than-half rule over the cut-offs used.

    Ballots come back as bitmaps (same layout as the cut-offs'), computed with a bit-sliced
    counter over Python integers: a plenary of 250,000 representatives and 21 cut-offs costs a
    few dozen big-integer operations, not five million bit tests.
    """
    k = len(cutoffs)
    threshold = k // 2 + 1
    per_ballot: dict[bytes, list[int]] = defaultdict(list)
    item_counts: dict[tuple[bytes, int], int] = defaultdict(int)
    for c in cutoffs:
        for key, bits in c.ballots:
            size = sizes.get(key, len(bits) * 8)
            per_ballot[key].append(int.from_bytes(bits, "little") & ((1 << size) - 1))
        for pair in c.items:
            item_counts[pair] += 1
    ballots = {}
    for key, values in per_ballot.items():
        size = sizes.get(key, 0) or max(v.bit_length() for v in values)
        ballots[key] = _at_least(values, threshold).to_bytes((size + 7) // 8, "little")
    items = {pair for pair, n in item_counts.items() if n >= threshold}
    return ballots, items


def _at_least(values: list[int], threshold: int) -> int:
    """Bit i of the result is set iff at least ``threshold`` of ``values`` have bit i set."""
    counters: list[int] = []  # bit-sliced counter, least significant slice first
    for x in values:
        carry = x
        for i in range(len(counters)):
            counters[i], carry = counters[i] ^ carry, counters[i] & carry
            if not carry:
                break
        if carry:
            counters.append(carry)
    width = max(len(counters), threshold.bit_length())
    everything = 0
    for c in counters:
        everything |= c
    greater, equal = 0, everything | (0 if threshold else -1)
    for i in reversed(range(width)):
        c = counters[i] if i < len(counters) else 0
        if threshold >> i & 1:
            equal &= c
        else:
            greater |= equal & c
            equal &= ~c
    return greater | equal if threshold else everything


def has_bit(bits: bytes, index: int) -> bool:
    byte = index >> 3
    return byte < len(bits) and bool(bits[byte] >> (index & 7) & 1)


# ---------------------------------------------------------------------- values and certificates


def encode_value(cutoff_ids: Iterable[bytes], seed_round: int) -> bytes:
    """An agreement value: the cut-offs it uses and the future round its randomness comes from."""
    return cbor.encode({"cutoffs": sorted(set(cutoff_ids)), "seed_round": seed_round})


def decode_value(value: bytes) -> tuple[tuple[bytes, ...], int] | None:
    try:
        body = cbor.decode(value, what="agreement value")
    except Exception:
        return None
    if type(body) is not dict or set(body) != {"cutoffs", "seed_round"}:
        return None
    ids, seed_round = body["cutoffs"], body["seed_round"]
    if type(ids) is not list or type(seed_round) is not int or seed_round < 1:
        return None
    if any(type(i) is not bytes or len(i) != 32 for i in ids) or ids != sorted(set(ids)):
        return None
    return tuple(ids), seed_round


def find_decision(
    deadline: bytes,
    panel: tuple[bytes, ...],
    records: Mapping[bytes, object],
    by_deadline: Mapping[bytes, list],
    sizes: Mapping[bytes, int],
) -> Decided | None:
    """The decided set of ``deadline`` if a commit certificate for it is among the records.

    ``by_deadline[deadline]`` lists the records of kinds cutoff, propose and precommit naming it.
    A certificate is a quorum of distinct panel members precommitting one value id in one round,
    plus the proposer's proposal carrying that value, whose cut-offs are valid.  With more than
    two thirds of the panel honest there is at most one; if Byzantine members forged a second,
    the lowest (round, value id) wins everywhere, and both are visible in the evidence.
    """
    n = len(panel)
    if n == 0:
        return None
    index = {key: i for i, key in enumerate(panel)}
    need = quorum_size(n)
    precommits: dict[tuple[int, bytes], set[bytes]] = defaultdict(set)
    proposals: dict[int, list] = defaultdict(list)
    cutoffs: dict[bytes, object] = {}
    for r in by_deadline.get(deadline, ()):
        if r.author not in index:
            continue
        kind = r.kind
        if kind == "precommit" and r.body.value is not None:
            precommits[(r.body.round, r.body.value)].add(r.author)
        elif kind == "propose":
            proposals[r.body.round].append(r)
        elif kind == "cutoff":
            cutoffs[r.id] = r
    for (round_, vid), signers in sorted(precommits.items()):
        if len(signers) < need:
            continue
        proposer = panel[(round_ + _offset(deadline)) % n]
        for p in proposals.get(round_, ()):
            if p.author != proposer or value_id(p.body.value) != vid:
                continue
            decoded = decode_value(p.body.value)
            if decoded is None:
                continue
            ids, seed_round = decoded
            used = [cutoffs[i] for i in ids if i in cutoffs]
            authors = {c.author for c in used}
            if len(used) != len(ids) or len(authors) != len(used) or len(authors) < need:
                continue
            ballots, items = majority([c.body.cutoff for c in used], sizes)
            return Decided(deadline, ballots, items, seed_round, round_, tuple(sorted(signers)), tuple(sorted(authors)))
    return None


def _offset(deadline: bytes) -> int:
    """Proposer rotation between deadlines: derived from the deadline's name."""
    return int.from_bytes(hashlib.sha256(b"klero/proposer/v1" + deadline).digest()[:4], "big")


def proposer_offset(deadline: bytes) -> int:
    return _offset(deadline)


def valid_value(value: bytes, deadline: bytes, panel: tuple[bytes, ...], cutoffs: Mapping[bytes, object]) -> bool:
    """Validity of an agreement value: it uses cut-offs of a quorum of distinct panel members for
    this deadline, all present."""
    decoded = decode_value(value)
    if decoded is None:
        return False
    ids, _ = decoded
    members = set(panel)
    authors = set()
    for i in ids:
        c = cutoffs.get(i)
        if c is None or c.author not in members or c.body.deadline != deadline or c.author in authors:
            return False
        authors.add(c.author)
    return len(authors) >= quorum_size(len(panel))
