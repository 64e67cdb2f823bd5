"""What an honest panel member signs: the cut-off of a deadline, computed from the records a
replica holds (DESIGN.md §7).  Pure: the same function serves the bot simulation and, next, a
representative's node taking its panel duties on its own.

A cut-off lists, per ballot closing at the deadline, which members of its electorate had voted
by then (a bitmap in electorate order), and the (author, seq) of the other items the deadline
settles (submissions and leases at an intake, amendments, document changes at the end of an
editing window, withdrawals).  "By then" means naming a beacon round before the deadline's:
what a node had received when the deadline round came out.
"""

from __future__ import annotations

from typing import Mapping

from .kinds import Amend, DocChange, Lease, Submit, Vote, Withdraw
from .panel import CutOff, ballot_key, bitmap
from .replica import Record


def electorates(leg, cycle: int, what: str, stage: int) -> dict[bytes, tuple[bytes, ...]]:
    """Ballot key -> its voters in bitmap order, for the ballots ``what`` closes (needs ``leg``
    evaluated: committees and amendments come from the last evaluation)."""
    out: dict[bytes, tuple[bytes, ...]] = {}
    if what == "plenary":
        roster = tuple(sorted(leg.roster_of(cycle)))
        for key in leg.ballot_sizes(cycle, what, stage):
            out[key] = roster
        return out
    for (k, pid), members in leg.committees(cycle).items():
        if k != stage:
            continue
        if what == "ballots":
            out[ballot_key(pid, cycle, stage, None)] = tuple(sorted(members))
        else:
            for r in leg.amendments(pid, cycle):
                out[ballot_key(pid, cycle, stage, r.id)] = tuple(sorted(members))
    return out


def honest_cutoff(leg, records: Mapping[bytes, Record], what: str, cycle: int, stage: int, at: int) -> CutOff:
    """The cut-off an honest member holding ``records`` signs for the deadline ``(what, cycle,
    stage)`` whose round is ``at``."""
    before = [r for r in records.values() if r.round < at]
    items = {(r.author, r.seq) for r in before if isinstance(r.body, Withdraw)}
    if what == "intake":
        low = leg.cycle_start(cycle - 1) if cycle > 0 else -1
        items |= {(r.author, r.seq) for r in before if isinstance(r.body, Submit) and r.round >= low}
        items |= {(r.author, r.seq) for r in before if isinstance(r.body, Lease) and r.body.cycle == cycle + 1}
    elif what == "amendments":
        items |= {(r.author, r.seq) for r in before if isinstance(r.body, Amend) and r.body.cycle == cycle}
    elif what == "edit":
        items |= {(r.author, r.seq) for r in before if isinstance(r.body, DocChange)}
    ballots = []
    sizes = leg.ballot_sizes(cycle, what, stage)
    if sizes:
        voters = electorates(leg, cycle, what, stage)
        first: dict[tuple[bytes, bytes], Record] = {}
        for r in sorted((r for r in records.values() if isinstance(r.body, Vote)), key=lambda r: (r.author, r.seq)):
            b = r.body
            key = ballot_key(b.proposal, b.cycle, b.stage, b.amendment)
            if key in sizes and (key, r.author) not in first:
                first[(key, r.author)] = r
        for key in sorted(sizes):
            electorate = voters.get(key, ())
            on_time = [i for i, m in enumerate(electorate) if (key, m) in first and first[(key, m)].round < at]
            ballots.append((key, bitmap(on_time, len(electorate))))
    return CutOff(tuple(ballots), tuple(sorted(items)))
