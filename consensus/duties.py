"""What an honest panel member signs: the cut-off of a deadline, computed from the records a
replica holds (DESIGN.md §7).  Pure: the same function serves the bot simulation and a
representative's node taking its panel duties on its own.

A cut-off holds facts and exact events, bounded by the roster (``consensus.panel.CutOff``):

* over the seats of the ballots the deadline closes, whose first vote had arrived and which way
  it went (only votes that would count: right revision, choice, window and round);
* the ids of the submissions an intake takes (each author's first ``submissions_per_cycle`` in
  the window, less those withdrawn) and of the amendments put to the vote (a member's first per
  proposal);
* which proposals in play their authors had withdrawn (a bitmap over them);
* at an intake, who leased for the cycle after next (a bitmap over the roster);
* at the end of an editing window, the heads of each text as its author and committee left it;
* at an intake, under a charter with constituencies, the keys its representation acts seat from
  the next cycle on, and who declared absence for this cycle (docs/constituencies.md).

"Had arrived" means naming a beacon round before the deadline's: what a node had received when
the deadline round came out.  Authors this replica knows to have equivocated are left out: a
fork excludes its author from every deadline not yet decided (docs/finality.md).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping

from .kinds import Absence, Amend, Lease, Submit, Vote, Withdraw
from .legislature import AMENDMENTS_PER_MEMBER
from .panel import CutOff, ballot_key, bitmap, layout
from .replica import Record


def honest_cutoff(leg, records: Mapping[bytes, Record], what: str, cycle: int, stage: int, at: int,
                  forked: Iterable[bytes] = ()) -> CutOff:
    """The cut-off an honest member holding ``records`` signs for the deadline ``(what, cycle,
    stage)`` whose round is ``at`` (``leg`` holds an evaluation that reached this deadline)."""
    forked = set(forked)
    before = sorted((r for r in records.values() if r.round < at and r.author not in forked), key=lambda r: (r.author, r.seq, r.id))
    result = leg._result
    items: set[bytes] = set()
    withdrawn = {r.body.proposal for r in before if isinstance(r.body, Withdraw) and leg.saw(r)
                 and (state := result.proposals.get(r.body.proposal)) is not None and state.author == r.author}
    in_play = leg.in_play(what, cycle, stage)
    gone = bitmap([i for i, pid in enumerate(in_play) if pid in withdrawn], len(in_play))
    leases = b""
    revisions = []
    seated, absent = (), b""
    represent = leg.charter.representation is not None and what == "intake"
    if represent:
        seated = tuple(sorted(seat.holder for seat in leg.local_seats(cycle) if seat.holder is not None))
        order = leg.roster_of(cycle)
        away = {r.author for r in before if isinstance(r.body, Absence) and r.body.cycle == cycle}
        absent = bitmap([i for i, m in enumerate(order) if m in away], len(order))
    if what == "intake":
        per_author: dict[bytes, int] = defaultdict(int)
        roster = set(leg.roster_of(cycle))
        for r in leg.intake_window(cycle, (r for r in before if isinstance(r.body, Submit))):
            if r.id in withdrawn:
                continue  # withdrawn before the intake: not taken
            if r.author in roster and leg.saw(r) and per_author[r.author] < leg.p.submissions_per_cycle:
                per_author[r.author] += 1
                items.add(r.id)
        order = leg.roster_of(cycle)
        leased = {r.author for r in before if isinstance(r.body, Lease) and r.body.cycle == cycle + 1}
        leases = bitmap([i for i, m in enumerate(order) if m in leased], len(order))
    elif what == "amendments":
        d = leg.draw_round(cycle)
        committees = leg.committees(cycle)
        per_member: dict[tuple[bytes, bytes], int] = defaultdict(int)
        for r in before:
            if not isinstance(r.body, Amend) or r.body.cycle != cycle:
                continue
            pid = r.body.proposal
            members = committees.get((stage, pid))
            state = result.proposals.get(pid)
            if members is None or state is None or leg.amendment_problem(r, set(members), state.revision, d) is not None:
                continue
            if per_member[(r.author, pid)] < AMENDMENTS_PER_MEMBER:
                per_member[(r.author, pid)] += 1
                items.add(r.id)
    elif what == "edit":
        revisions = [leg.drafted_heads(pid, cycle, stage, at, forked) for pid in leg.texts(cycle, stage)]
    first_choice, second_choice = [], []
    specs = leg.specs(what, cycle, stage)
    if specs:
        first: dict[tuple[bytes, bytes], Record] = {}
        for r in before:
            if isinstance(r.body, Vote):
                b = r.body
                key = ballot_key(b.proposal, b.cycle, b.stage, b.amendment)
                if key in specs:
                    first.setdefault((key, r.author), r)
        for key, offset, _ in layout({k: len(v.electorate) for k, v in specs.items()}):
            spec = specs[key]
            for i, m in enumerate(spec.electorate):
                r = first.get((key, m))
                if r is not None and leg.vote_problem(r, spec) is None:
                    (first_choice if r.body.choice == spec.choices[0] else second_choice).append(offset + i)
    seats = sum(len(v.electorate) for v in specs.values())
    votes = (bitmap(first_choice, seats), bitmap(second_choice, seats))
    return CutOff(votes, tuple(sorted(items)), leases, tuple(revisions), gone, seated, absent, represent)
