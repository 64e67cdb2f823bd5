"""Sortition: drawing committees by lot, reproducibly, without bias, under a seat cap.

The algorithm, precisely enough for a second implementation:

* **Seed** of a committee: ``sha256(b"klero/draw/v1" || proposal_id || u32be(cycle) ||
  u8(stage) || randomness)`` where ``randomness`` is the beacon randomness of the cycle's draw
  round (published only after the draw's inputs were decided).
* **Stream**: block ``i`` is ``sha256(seed || u64be(i))``; the stream is the concatenation of
  blocks, read 8 bytes at a time as big-endian unsigned integers.
* **Uniform index** in ``[0, n)``: take the next integer ``x``; reject it if
  ``x >= 2**64 - (2**64 mod n)`` (no modulo bias), else the index is ``x mod n``.
* **Picks**: draw an index into the cycle's roster (sorted by public key); skip the candidate if
  they are an author of the proposal, already on this committee, or already hold ``max_seats``
  seats this cycle; otherwise seat them.  Stop at the committee size.  This is uniform sampling
  without replacement among the eligible.  When fewer representatives are eligible than seats,
  all of them are seated.  After ``64 × size`` skipped candidates in a row the draw switches to
  the explicit list of eligible members in roster order: each further pick is a uniform index
  into that list, and the member picked is removed from it.  A nearly exhausted cap then costs
  linear time instead of looping.
* **Order**: committees of one cycle are drawn in order of (stage descending, seed) — the big
  scarce committees first, then by seed, which nobody can choose — and seat counts carry over
  from one draw to the next.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

TWO64 = 1 << 64

DRAWN, AUTHOR, ALREADY, CAPPED = "drawn", "author", "already seated", "seat cap"


class Stream:
    """The deterministic stream of uniform integers of one seed."""

    __slots__ = ("seed", "block", "buffer", "offset")

    def __init__(self, seed: bytes):
        self.seed = seed
        self.block = 0
        self.buffer = b""
        self.offset = 0

    def next64(self) -> int:
        if self.offset + 8 > len(self.buffer):
            self.buffer = hashlib.sha256(self.seed + self.block.to_bytes(8, "big")).digest()
            self.block += 1
            self.offset = 0
        value = int.from_bytes(self.buffer[self.offset : self.offset + 8], "big")
        self.offset += 8
        return value

    def below(self, n: int) -> int:
        """A uniform integer in ``[0, n)`` by rejection sampling."""
        if not 0 < n <= TWO64:
            raise ValueError("range must be 1 to 2**64")
        limit = TWO64 - (TWO64 % n)
        while True:
            x = self.next64()
            if x < limit:
                return x % n


def committee_seed(proposal_id: bytes, cycle: int, stage: int, randomness: bytes) -> bytes:
    return hashlib.sha256(b"klero/draw/v1" + proposal_id + cycle.to_bytes(4, "big") + bytes([stage]) + randomness).digest()


@dataclass(frozen=True, slots=True)
class Draw:
    """One committee and how it was drawn (enough for the app to explain it)."""

    proposal: bytes
    cycle: int
    stage: int
    round: int
    seed: bytes
    members: tuple[bytes, ...]
    #: (roster index, key, outcome) for every candidate looked at, in order; empty when the
    #: draw was made without explanations (bulk benchmarks)
    picks: tuple[tuple[int, bytes, str], ...] = ()
    #: fewer eligible representatives than seats
    short: bool = False

    def explain(self, member: bytes) -> str:
        """A sentence for a representative: why (or why not) they sit on this committee."""
        if not self.picks and member in self.members:
            return (f"You were drawn (pick {self.members.index(member) + 1}) with the seed {self.seed.hex()[:16]}… "
                    f"from beacon round {self.round} and the proposal id.")
        reasons = {AUTHOR: "you are an author of the proposal", ALREADY: "you were already seated on it",
                   CAPPED: "you already hold the most seats allowed this cycle"}
        for position, (index, key, outcome) in enumerate(self.picks, 1):
            if key == member:
                if outcome == DRAWN:
                    return (
                        f"You were drawn as pick {position}: the seed {self.seed.hex()[:16]}… (from beacon round "
                        f"{self.round} and the proposal id) selected position {index} of the cycle's roster, which is you."
                    )
                return f"Pick {position} selected you (roster position {index}) but you were skipped: {reasons.get(outcome, outcome)}."
        return "The lot did not select you for this committee."

    def as_dict(self) -> dict:
        return {
            "proposal": self.proposal.hex(),
            "cycle": self.cycle,
            "stage": self.stage,
            "round": self.round,
            "seed": self.seed.hex(),
            "members": [m.hex() for m in self.members],
            "picks": [{"index": i, "key": k.hex(), "outcome": o} for i, k, o in self.picks],
            "short": self.short,
        }


def draw_committee(
    roster: Sequence[bytes],
    size: int,
    seed: bytes,
    *,
    exclude: Iterable[bytes] = (),
    seats: dict[bytes, int] | None = None,
    max_seats: int | None = None,
    explain: bool = True,
) -> tuple[tuple[bytes, ...], tuple[tuple[int, bytes, str], ...], bool]:
    """Draw ``size`` members of ``roster`` (sorted) by the algorithm in the module docstring.

    ``seats`` (updated in place) counts seats already held this cycle.  Returns the members in
    pick order, the explanation of every pick, and whether the committee is short.
    """
    seats = {} if seats is None else seats
    excluded = set(exclude)
    n = len(roster)
    stream = Stream(seed)
    members: list[bytes] = []
    chosen: set[bytes] = set()
    picks: list[tuple[int, bytes, str]] = []
    misses = 0

    def status(key: bytes) -> str:
        if key in excluded:
            return AUTHOR
        if key in chosen:
            return ALREADY
        if max_seats is not None and seats.get(key, 0) >= max_seats:
            return CAPPED
        return DRAWN

    while len(members) < size and n:
        if misses >= 64 * size:
            # explicit eligible list: same uniform law, linear time when the cap is nearly exhausted
            eligible = [i for i, key in enumerate(roster) if status(key) == DRAWN]
            while len(members) < size and eligible:
                j = stream.below(len(eligible))
                i = eligible.pop(j)
                key = roster[i]
                members.append(key)
                chosen.add(key)
                seats[key] = seats.get(key, 0) + 1
                if explain:
                    picks.append((i, key, DRAWN))
            break
        i = stream.below(n)
        key = roster[i]
        outcome = status(key)
        if explain:
            picks.append((i, key, outcome))
        if outcome == DRAWN:
            members.append(key)
            chosen.add(key)
            seats[key] = seats.get(key, 0) + 1
            misses = 0
        else:
            misses += 1
    return tuple(members), tuple(picks), len(members) < size
