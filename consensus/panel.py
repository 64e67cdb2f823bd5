"""Cut-off panels: which events made a deadline, decided by a lot-drawn panel (DESIGN.md §7).

For every deadline a panel of ``panel_size`` representatives is drawn, by lot, from those whose
availability lease for the cycle was decided at the previous boundary (cycles 0 and 1 use the
whole roster: nobody could lease before the assembly existed).  The panel's seed is the
randomness of the deadline's own round, published after the leases were decided.  A panel that
has not decided within the charter's ``panel_rounds`` gives way to a freshly drawn one (its next
*generation*), drawn from those who have shown they are present (docs/finality.md).

1. **Cut-off**: once the deadline's round is out, each member signs what it had received
   (a ``cutoff`` event, :class:`CutOff`): facts (per ballot, who voted which way; who leased)
   and exact events (ids of submissions, amendments and withdrawals; heads of texts).
2. **Agreement** (``consensus.agreement``): members propose, prevote and precommit, as events.
   A value is the sorted list of the cut-off event ids it uses plus the future beacon round whose
   randomness the next draws or tie-breaks will use; it is *valid* iff it uses cut-offs of at
   least a quorum of distinct panel members for this deadline and its seed round lies within the
   charter's bound.  Honest members prevote a fresh proposal only while the round it names is
   not out yet.
3. **Decision**: precommits of a quorum of the panel for one value in one agreement round are a
   commit certificate.  The decided set follows from the value's cut-offs by the rule "a fact or
   an event counts iff more than half of the cut-offs used include it".

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


def deadline_key(what: str, cycle: int, stage: int, gen: int = 0) -> bytes:
    """The stable name of a deadline's panel, as events carry it.  Generation ``gen`` is the
    ``gen``-th panel drawn for the deadline (a panel that has not decided within the charter's
    ``panel_rounds`` gives way to a fresh one: docs/finality.md)."""
    return cbor.encode([what, cycle, stage] if gen == 0 else [what, cycle, stage, gen])


def parse_deadline_key(name: bytes) -> tuple[str, int, int, int] | None:
    """(what, cycle, stage, generation) of a deadline name, or None if it is not one."""
    try:
        value = cbor.decode(name, what="deadline name")
    except Exception:
        return None
    if type(value) is not list or len(value) not in (3, 4):
        return None
    what, cycle, stage, *rest = value
    gen = rest[0] if rest else 0
    if type(what) is not str or any(type(x) is not int or x < 0 for x in (cycle, stage, gen)) or (rest and gen == 0):
        return None
    return what, cycle, stage, gen


def ballot_key(proposal: bytes, cycle: int, stage: int, amendment: bytes | None) -> bytes:
    return hashlib.sha256(b"klero/ballot/v1" + proposal + cycle.to_bytes(4, "big") + bytes([stage]) + (amendment or b"")).digest()


def panel_seed(deadline: bytes, randomness: bytes) -> bytes:
    return hashlib.sha256(b"klero/panel/v1" + deadline + randomness).digest()


def draw_panel(available: Iterable[bytes], size: int, deadline: bytes, randomness: bytes) -> tuple[bytes, ...]:
    """The panel of a deadline, in pick order (a member's index is its position)."""
    members, _, _ = draw_committee(tuple(sorted(set(available))), size, panel_seed(deadline, randomness), explain=False)
    return members


# ---------------------------------------------------------------------- cut-offs

#: bounds a decoder checks before anything else (the event size limit bounds them further)
MAX_ITEMS, MAX_REVISIONS, MAX_HEADS = 1_000_000, 100_000, 64


@dataclass(frozen=True)
class CutOff:
    """What one panel member had received for one deadline, as *facts* and *exact events*.

    Its size is bounded by the roster, never by history or by one author's activity
    (docs/finality.md has the bound and the measured worst case):

    * ``votes``: two bitmaps over the seats of every ballot the deadline closes, the ballots in
      key order and each ballot's electorate in key order (bit *o + i*, where *o* is the ballot's
      offset): a bit of the first (second) is set iff that member's first vote on the ballot had
      arrived, was valid, and chose the ballot's first (second) choice (promote/adopt/yes,
      kill/reject/no).  Two bits a seat, and no ballot keys: which ballots a deadline closes
      follows from what was decided before it;
    * ``items``: ids of the exact events the deadline settles: submissions (an author's first
      ``submissions_per_cycle`` of the window, less those already withdrawn) and amendments (a
      member's first per proposal);
    * ``withdrawn``: a bitmap over the proposals in play when the deadline was reached (in
      committee, promoted or in the plenary, by id): its author's withdrawal had arrived;
    * ``leases``: at an intake, a bitmap over the roster: member *i*'s lease for the cycle after
      next had arrived;
    * ``revisions``: at the end of an editing window, for each of the stage's proposals (in id
      order) the heads of the text its author and committee had made by then, empty if none
      (document changes are content-addressed, so heads fix the exact text however long its
      history; which proposals follows from the decided intake, so no ids).
    """

    votes: tuple[bytes, bytes] = (b"", b"")
    items: tuple[bytes, ...] = ()
    leases: bytes = b""
    revisions: tuple[tuple[bytes, ...], ...] = ()
    withdrawn: bytes = b""
    #: charters with constituencies only (``represent``): at an intake, the keys that hold a seat
    #: from the next cycle on by the acts this member had received (sorted; at most one per
    #: constituency, so bounded by the seats), and a bitmap over the roster of who declared
    #: absence for this cycle
    seats: tuple[bytes, ...] = ()
    absent: bytes = b""
    represent: bool = False

    def to_body(self) -> dict:
        body = {"votes": list(self.votes), "items": list(self.items), "leases": self.leases,
                "revisions": [list(h) for h in self.revisions], "withdrawn": self.withdrawn}
        if self.represent:
            body["seats"], body["absent"] = list(self.seats), self.absent
        return body

    @classmethod
    def from_body(cls, body) -> "CutOff":
        base = {"votes", "items", "leases", "revisions", "withdrawn"}
        if type(body) is not dict or set(body) not in (base, base | {"seats", "absent"}):
            raise reject("bad_body", "A cut-off lists its votes, items, leases, revisions and withdrawals "
                                     "(and, with constituencies, seats and absences).")
        seats, absent, represent = (), b"", "seats" in body
        if represent:
            seats, absent = body["seats"], body["absent"]
            if (type(seats) is not list or len(seats) > MAX_ITEMS or type(absent) is not bytes
                    or any(type(k) is not bytes or len(k) != 32 for k in seats) or seats != sorted(set(seats))):
                raise reject("bad_body", "A cut-off's seats are sorted, distinct 32-byte keys and its absences a bitmap.")
            seats = tuple(seats)
        votes, items, leases, revisions = body["votes"], body["items"], body["leases"], body["revisions"]
        if type(body["withdrawn"]) is not bytes:
            raise reject("bad_body", "A cut-off's withdrawals are a bitmap.")
        if (type(votes) is not list or len(votes) != 2 or any(type(v) is not bytes for v in votes)
                or type(items) is not list or type(revisions) is not list or type(leases) is not bytes
                or len(items) > MAX_ITEMS or len(revisions) > MAX_REVISIONS):
            raise reject("bad_body", "A cut-off's votes are two bitmaps, its items and revisions lists of bounded size, "
                                     "its leases a bitmap.")
        if any(type(i) is not bytes or len(i) != 32 for i in items):
            raise reject("bad_body", "Each item of a cut-off is a 32-byte event id.")
        for heads in revisions:
            if (type(heads) is not list or len(heads) > MAX_HEADS or any(type(h) is not bytes or len(h) != 32 for h in heads)
                    or heads != sorted(set(heads))):
                raise reject("bad_body", f"Each revision of a cut-off is a list of at most {MAX_HEADS} sorted, distinct 32-byte heads.")
        if items != sorted(set(items)):
            raise reject("bad_body", "A cut-off's items must be sorted and distinct.")
        return cls((votes[0], votes[1]), tuple(items), leases, tuple(tuple(h) for h in revisions), body["withdrawn"],
                   seats, absent, represent)


def bitmap(indices: Iterable[int], size: int) -> bytes:
    out = bytearray((size + 7) // 8)
    for i in indices:
        out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def bits_of(data: bytes, size: int) -> set[int]:
    return {i for i in range(min(size, len(data) * 8)) if data[i // 8] >> (i % 8) & 1}


@dataclass
class Decided:
    """The decided set of one deadline, fixed by its commit certificate."""

    deadline: bytes
    #: ballot key -> (first-choice bitmap, second-choice bitmap) over its electorate: the votes that count
    ballots: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict)
    #: ids of the exact events (submissions, amendments, withdrawals) that made the deadline
    items: set[bytes] = field(default_factory=set)
    #: bitmap over the roster of the leases that made the deadline (intakes)
    leases: bytes = b""
    #: bitmap over the proposals in play when the deadline was reached: withdrawn by their author
    withdrawn: bytes = b""
    #: proposal -> the heads each used cut-off named for it (the legislature takes the changes
    #: more than half of them hold)
    #: position of a text (its proposal, in the deadline's id order) -> the heads each used cut-off named
    revisions: dict[int, list[tuple[bytes, ...]]] = field(default_factory=dict)
    #: keys seated from the next cycle on (charters with constituencies, intakes): None if no
    #: cut-off used carried seats
    seats: set | None = None
    #: bitmap over the roster: who declared absence for this cycle
    absent: bytes = b""
    #: how many cut-offs the value used (the denominator of "more than half")
    used: int = 0
    seed_round: int = 0
    generation: int = 0
    #: the commit certificate: agreement round and the panel members who precommitted
    round: int = -1
    signers: tuple[bytes, ...] = ()
    cutoff_signers: tuple[bytes, ...] = ()


def layout(sizes: Mapping[bytes, int]) -> list[tuple[bytes, int, int]]:
    """(ballot key, offset, size) of each ballot in a cut-off's vote bitmaps: key order."""
    out, offset = [], 0
    for key in sorted(sizes):
        out.append((key, offset, sizes[key]))
        offset += sizes[key]
    return out


def majority(cutoffs: list[CutOff], sizes: Mapping[bytes, int], roster_size: int = 0, in_play: int = 0) -> Decided:
    """The more-than-half rule over the cut-offs used (``Decided`` without certificate fields).
    ``sizes``: the electorate size of each ballot the deadline closes.

    Bitmaps are combined with a bit-sliced counter over Python integers: a plenary of 250,000
    representatives and 21 cut-offs costs a few dozen big-integer operations, not five million
    bit tests.
    """
    k = len(cutoffs)
    threshold = k // 2 + 1
    item_counts: dict[bytes, int] = defaultdict(int)
    revisions: dict[int, list[tuple[bytes, ...]]] = defaultdict(list)
    seats = layout(sizes)
    total = sum(size for _, _, size in seats)
    vote_mask, lease_mask = (1 << total) - 1, (1 << roster_size) - 1
    firsts, seconds, leases, withdrawn, absent = [], [], [], [], []
    play_mask = (1 << in_play) - 1
    seat_counts: dict[bytes, int] = defaultdict(int)
    represent = False
    for c in cutoffs:
        if c.represent:
            represent = True
            for key in c.seats:
                seat_counts[key] += 1
            absent.append(int.from_bytes(c.absent, "little") & lease_mask)
        withdrawn.append(int.from_bytes(c.withdrawn, "little") & play_mask)
        firsts.append(int.from_bytes(c.votes[0], "little") & vote_mask)
        seconds.append(int.from_bytes(c.votes[1], "little") & vote_mask)
        for item in c.items:
            item_counts[item] += 1
        leases.append(int.from_bytes(c.leases, "little") & lease_mask)
        for position, heads in enumerate(c.revisions):
            if heads:
                revisions[position].append(heads)
    out = Decided(b"", used=k)
    first, second = _at_least(firsts, threshold), _at_least(seconds, threshold)
    for key, offset, size in seats:
        mask, width = (1 << size) - 1, (size + 7) // 8
        out.ballots[key] = (((first >> offset) & mask).to_bytes(width, "little"), ((second >> offset) & mask).to_bytes(width, "little"))
    out.items = {item for item, n in item_counts.items() if n >= threshold}
    out.leases = _at_least(leases, threshold).to_bytes((roster_size + 7) // 8, "little") if roster_size else b""
    out.revisions = dict(revisions)
    out.withdrawn = _at_least(withdrawn, threshold).to_bytes((in_play + 7) // 8, "little") if in_play else b""
    if represent:
        out.seats = {key for key, n in seat_counts.items() if n >= threshold}
        out.absent = _at_least(absent, threshold).to_bytes((roster_size + 7) // 8, "little") if roster_size else b""
    return out


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
    by_deadline: Mapping[bytes, list],
    sizes: Mapping[bytes, int],
    seeds: tuple[int, int],
    roster_size: int = 0,
    in_play: int = 0,
) -> Decided | None:
    """The decided set of ``deadline`` if a commit certificate for it is among the records.

    ``by_deadline[deadline]`` lists the records of kinds cutoff, propose and precommit naming it
    (those of authors who equivocated later included: a certificate, once formed, stays one).
    A certificate is a quorum of distinct panel members precommitting one value id in one
    round, plus the proposer's proposal carrying that value, whose cut-offs are valid and whose
    seed round lies in ``seeds`` = (after, at most).  With more than two thirds of the panel
    honest there is at most one; if Byzantine members forged a second, the lowest (round, value
    id) wins everywhere, and both are visible in the evidence.
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
        for p in sorted(proposals.get(round_, ()), key=lambda p: p.id):
            if p.author != proposer or value_id(p.body.value) != vid:
                continue
            decoded = decode_value(p.body.value)
            if decoded is None:
                continue
            ids, seed_round = decoded
            if not seeds[0] < seed_round <= seeds[1]:
                continue
            used = [cutoffs[i] for i in ids if i in cutoffs]
            authors = {c.author for c in used}
            if len(used) != len(ids) or len(authors) != len(used) or len(authors) < need:
                continue
            decided = majority([c.body.cutoff for c in used], sizes, roster_size, in_play)
            decided.deadline, decided.seed_round, decided.round = deadline, seed_round, round_
            decided.signers, decided.cutoff_signers = tuple(sorted(signers)), tuple(sorted(authors))
            return decided
    return None


def _offset(deadline: bytes) -> int:
    """Proposer rotation between deadlines: derived from the deadline's name."""
    return int.from_bytes(hashlib.sha256(b"klero/proposer/v1" + deadline).digest()[:4], "big")


def proposer_offset(deadline: bytes) -> int:
    return _offset(deadline)


def valid_value(value: bytes, deadline: bytes, panel: tuple[bytes, ...], cutoffs: Mapping[bytes, object],
                seeds: tuple[int, int] = (0, 1 << 62)) -> bool:
    """Validity of an agreement value: it uses cut-offs of a quorum of distinct panel members for
    this deadline, all present, and names a seed round within ``seeds`` = (after, at most): the
    charter bounds how far ahead a value may look, so nobody can stall a panel by naming round
    2^62 (docs/finality.md)."""
    decoded = decode_value(value)
    if decoded is None:
        return False
    ids, seed_round = decoded
    if not seeds[0] < seed_round <= seeds[1]:
        return False
    members = set(panel)
    authors = set()
    for i in ids:
        c = cutoffs.get(i)
        if c is None or c.kind != "cutoff" or c.author not in members or c.body.deadline != deadline or c.author in authors:
            return False
        authors.add(c.author)
    return len(authors) >= quorum_size(len(panel))
