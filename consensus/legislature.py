"""The legislature: cycles, committees, ballots and outcomes, computed from events and rounds.

``Legislature(charter).evaluate(records, beacon)`` is a pure function of the applied legislative
events (``Replica.records``) and the verified beacon randomness by round.  Every node computes it
itself and gets the same draws, tallies and outcomes.  See ``consensus/parliament.py`` for the
timeline of a cycle and ``docs/legislature.md`` for the rules with a diagram.

Which events made a deadline is decided behind one seam, :func:`decided`.  Until the cut-off
panels of issue 5, it applies the *declared round* rule: an event made a deadline iff the beacon
round it names is earlier than the deadline's round.  An event cannot claim a round it has not
seen (it carries that round's randomness prefix, checked here), but it can claim an *older* round
than the one it was made after: a late vote can pretend to be on time.  ``docs/deadlines.md``
records this known weakness; the panels remove it without changing any tally code.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from .charter import Charter
from .kinds import Amend, Submit, Vote, Withdraw
from .parliament import AMEND, EDIT
from .replica import Record
from .sortition import Draw, committee_seed, draw_committee

# ---------------------------------------------------------------------- proposal lifecycle

SUBMITTED = "submitted"  # signed, waiting for the next cycle's intake
REFUSED = "refused"  # not taken at intake: over the author's quota, or the author holds no seat
IN_COMMITTEE = "in committee"  # a committee of a stage is working on it this cycle
PROMOTED = "promoted"  # reached the threshold and won a slot: goes to the next stage next cycle
KILLED = "killed"  # did not reach the promotion threshold
NOT_ADVANCED = "not advanced"  # reached the threshold but every slot went to stronger proposals
IN_PLENARY = "in plenary"  # all representatives vote this cycle
PASSED = "passed"
FAILED = "failed"  # no quorum, or not more yes than no
WITHDRAWN = "withdrawn"  # its author withdrew it before its ballot closed

TRANSITIONS: dict[str, frozenset[str]] = {
    SUBMITTED: frozenset({IN_COMMITTEE, REFUSED, WITHDRAWN}),
    IN_COMMITTEE: frozenset({PROMOTED, KILLED, NOT_ADVANCED, WITHDRAWN}),
    PROMOTED: frozenset({IN_COMMITTEE, IN_PLENARY, WITHDRAWN}),
    IN_PLENARY: frozenset({PASSED, FAILED, WITHDRAWN}),
    REFUSED: frozenset(),
    KILLED: frozenset(),
    NOT_ADVANCED: frozenset(),
    PASSED: frozenset(),
    FAILED: frozenset(),
    WITHDRAWN: frozenset(),
}
FINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


# ---------------------------------------------------------------------- the deadline seam


@dataclass(frozen=True, slots=True)
class Deadline:
    """A moment after which events no longer count for something."""

    what: str  # "intake", "amendments", "amendment ballot", "ballot", "plenary ballot"
    cycle: int
    stage: int
    round: int


def decided(deadline: Deadline, candidates: Iterable[Record]) -> list[Record]:
    """The events that made ``deadline``: the one seam the cut-off panels (issue 5) replace.

    Declared-round rule: an event made the deadline iff the round it names is earlier than the
    deadline's round.  (Known weakness: backdating; see docs/deadlines.md.)
    """
    return [r for r in candidates if r.round < deadline.round]


def revision_at(proposal: bytes, deadline: Deadline) -> tuple[bytes, ...]:
    """The frozen revision of a proposal's text at a deadline: the seam issue 6 fills with the
    document's heads.  Until proposal documents exist, a proposal's only revision is its id."""
    return (proposal,)


# ---------------------------------------------------------------------- reports


@dataclass
class ProposalState:
    id: bytes
    author: bytes
    title: str
    submitted_round: int
    status: str = SUBMITTED
    stage: int = 0
    revision: tuple[bytes, ...] = ()
    #: (cycle, round, status, stage, reason)
    history: list[tuple[int, int, str, int, str]] = field(default_factory=list)

    def move(self, status: str, cycle: int, round_: int, stage: int, reason: str = "") -> None:
        if status not in TRANSITIONS[self.status]:
            raise AssertionError(f"illegal proposal transition {self.status} -> {status}")
        self.status, self.stage = status, stage
        self.history.append((cycle, round_, status, stage, reason))

    def as_dict(self) -> dict:
        return {
            "id": self.id.hex(),
            "author": self.author.hex(),
            "title": self.title,
            "status": self.status,
            "stage": self.stage,
            "history": [{"cycle": c, "round": r, "status": s, "stage": k, "reason": why} for c, r, s, k, why in self.history],
        }


@dataclass
class Ballot:
    """One ballot and its tally."""

    kind: str  # "stage", "amendment", "plenary"
    proposal: bytes
    cycle: int
    stage: int
    opens: int
    closes: int
    revision: tuple[bytes, ...]
    electorate: int
    amendment: bytes | None = None
    counts: dict[str, int] = field(default_factory=dict)
    #: (author, event id, code, sentence) for votes that did not count
    neutralised: list[tuple[bytes, bytes, str, str]] = field(default_factory=list)
    outcome: str = ""
    reason: str = ""

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "proposal": self.proposal.hex(),
            "amendment": self.amendment.hex() if self.amendment else None,
            "cycle": self.cycle,
            "stage": self.stage,
            "opens": self.opens,
            "closes": self.closes,
            "revision": [h.hex() for h in self.revision],
            "electorate": self.electorate,
            "counts": dict(sorted(self.counts.items())),
            "neutralised": [{"author": a.hex(), "event": e.hex(), "code": c, "reason": r} for a, e, c, r in self.neutralised],
            "outcome": self.outcome,
            "reason": self.reason,
        }


@dataclass
class Result:
    """Everything the legislature decided so far."""

    proposals: dict[bytes, ProposalState] = field(default_factory=dict)
    draws: list[Draw] = field(default_factory=list)
    ballots: list[Ballot] = field(default_factory=list)
    cycles: int = 0  # cycles fully decided
    waiting: str = ""  # what the next decision waits for, in a sentence

    def as_dict(self, explain: bool = True) -> dict:
        return {
            "cycles": self.cycles,
            "waiting": self.waiting,
            "proposals": [p.as_dict() for p in sorted(self.proposals.values(), key=lambda p: (p.submitted_round, p.id))],
            "draws": [d.as_dict() if explain else {**d.as_dict(), "picks": []} for d in self.draws],
            "ballots": [b.as_dict() for b in self.ballots],
        }


def tiebreak(randomness: bytes, proposal: bytes) -> bytes:
    return hashlib.sha256(b"klero/tiebreak/v1" + randomness + proposal).digest()


# ---------------------------------------------------------------------- the legislature


class Legislature:
    """The rules of one charter, applied to a set of records and beacon rounds."""

    def __init__(self, charter: Charter, charter_round: int = 0):
        self.charter = charter
        self.p = charter.parliament
        self.start = self.p.start_round or charter_round + 1

    # ---- time

    def cycle_start(self, cycle: int) -> int:
        return self.start + cycle * self.p.cycle_rounds

    def cycle_of(self, round_: int) -> int:
        """The cycle a round belongs to (-1 before cycle 0)."""
        if round_ < self.start:
            return -1
        return (round_ - self.start) // self.p.cycle_rounds

    def draw_round(self, cycle: int) -> int:
        return self.cycle_start(cycle) + self.p.draw_delay

    def windows(self, cycle: int, stage: int) -> tuple[int, int, int]:
        """(work opens, ballot opens, ballot closes) of a stage (``len(stages) + 1`` is the plenary)."""
        d = self.draw_round(cycle)
        if stage <= len(self.p.stages):
            s = self.p.stages[stage - 1]
            work, ballot = s.work_rounds, s.ballot_rounds
        else:
            work, ballot = self.p.plenary.work_rounds, self.p.plenary.ballot_rounds
        return d, d + work, d + work + ballot

    # ---- seats (the seam for constituencies, DESIGN.md §5)

    def roster_of(self, cycle: int) -> tuple[bytes, ...]:
        """The representatives seated in ``cycle``, sorted: the charter's initial seats for now."""
        return tuple(sorted(self.charter.roster))

    # ---- evaluation

    def evaluate(self, records: Mapping[bytes, Record], beacon: Mapping[int, bytes], *, explain: bool = True) -> Result:
        """Run every cycle whose decisions the known beacon rounds allow."""
        result = Result()
        subs: list[Record] = []
        withdrawn: dict[bytes, int] = {}
        votes: dict[tuple, list[Record]] = defaultdict(list)
        amends: dict[tuple, list[Record]] = defaultdict(list)
        for r in records.values():
            body = r.body
            if isinstance(body, Submit):
                subs.append(r)
            elif isinstance(body, Withdraw):
                withdrawn[body.proposal] = min(r.round, withdrawn.get(body.proposal, r.round))
            elif isinstance(body, Vote):
                votes[(body.proposal, body.cycle, body.stage, body.amendment)].append(r)
            elif isinstance(body, Amend):
                amends[(body.proposal, body.cycle)].append(r)
        for r in sorted(subs, key=lambda r: (r.round, r.id)):
            result.proposals[r.id] = ProposalState(r.id, r.author, r.body.title, r.round)
        horizon = max(beacon) if beacon else 0
        last_submission = max((r.round for r in subs), default=0)
        incoming: dict[int, list[tuple[bytes, tuple[bytes, ...]]]] = {}
        stages = self.p.stages
        plenary_stage = len(stages) + 1
        cycle = 0
        while True:
            s = self.cycle_start(cycle)
            if s > horizon:
                result.waiting = f"Cycle {cycle} starts at beacon round {s}; the latest known round is {horizon}."
                break
            intake = self._intake(cycle, subs, withdrawn, result)
            work = {1: intake, **{k: v for k, v in incoming.items() if k > 1}}
            if not any(work.values()) and s > last_submission and cycle > 0:
                result.cycles = cycle
                result.waiting = "Nothing is in the pipeline."
                break
            d = self.draw_round(cycle)
            if any(work.values()) and d not in beacon:
                result.waiting = f"The draws of cycle {cycle} wait for beacon round {d}."
                break
            committees = self._draw(cycle, work, beacon.get(d, b""), result, explain)
            plenary_opens = self.windows(cycle, plenary_stage)[0]
            for pid, _ in work.get(plenary_stage, []):
                result.proposals[pid].move(IN_PLENARY, cycle, plenary_opens, plenary_stage)
            promoted, waiting = self._stage_ballots(cycle, work, committees, votes, amends, withdrawn, beacon, horizon, result)
            if waiting:
                result.waiting = waiting
                break
            end = self._plenary(cycle, work.get(plenary_stage, []), votes, withdrawn, beacon, horizon, result)
            if end:
                result.waiting = end
                break
            incoming = promoted
            cycle += 1
            result.cycles = cycle
        return result

    def _intake(self, cycle: int, subs: list[Record], withdrawn: dict[bytes, int], result: Result):
        """Stage 1's intake of ``cycle``: proposals submitted during the previous cycle (or before cycle 0)."""
        s = self.cycle_start(cycle)
        low = self.cycle_start(cycle - 1) if cycle > 0 else -1
        window = [r for r in subs if low <= r.round < s] if cycle > 0 else [r for r in subs if r.round < s]
        deadline = Deadline("intake", cycle, 0, s)
        taken: list[tuple[bytes, tuple[bytes, ...]]] = []
        per_author: dict[bytes, int] = defaultdict(int)
        roster = set(self.roster_of(cycle))
        for r in sorted(decided(deadline, window), key=lambda r: (r.author, r.seq)):
            state = result.proposals[r.id]
            if r.id in withdrawn and withdrawn[r.id] < s:
                state.move(WITHDRAWN, cycle, s, 0, "withdrawn before the intake")
                continue
            if r.author not in roster:
                state.move(REFUSED, cycle, s, 0, "its author holds no seat this cycle")
                continue
            per_author[r.author] += 1
            if per_author[r.author] > self.p.submissions_per_cycle:
                state.move(REFUSED, cycle, s, 0, f"over its author's quota of {self.p.submissions_per_cycle} proposals per cycle")
                continue
            taken.append((r.id, revision_at(r.id, deadline)))
        return sorted(taken)

    def _draw(self, cycle, work, randomness, result: Result, explain: bool) -> dict[tuple[int, bytes], tuple[bytes, ...]]:
        roster = self.roster_of(cycle)
        seats: dict[bytes, int] = {}
        order = []
        for stage in range(1, len(self.p.stages) + 1):
            for pid, _ in work.get(stage, []):
                order.append((-stage, committee_seed(pid, cycle, stage, randomness), stage, pid))
        committees = {}
        d = self.draw_round(cycle)
        for _, seed, stage, pid in sorted(order):
            author = result.proposals[pid].author if pid in result.proposals else b""
            members, picks, short = draw_committee(
                roster, self.p.stages[stage - 1].committee, seed,
                exclude=(author,), seats=seats, max_seats=self.p.max_seats, explain=explain,
            )
            committees[(stage, pid)] = members
            result.draws.append(Draw(pid, cycle, stage, d, seed, members, picks, short))
        return committees

    def _stage_ballots(self, cycle, work, committees, votes, amends, withdrawn, beacon, horizon, result: Result):
        promoted: dict[int, list[tuple[bytes, tuple[bytes, ...]]]] = defaultdict(list)
        for stage_no, stage in enumerate(self.p.stages, 1):
            entries = work.get(stage_no, [])
            if not entries:
                continue
            opens_work, opens, closes = self.windows(cycle, stage_no)
            for pid, revision in entries:
                state = result.proposals[pid]
                state.move(IN_COMMITTEE, cycle, opens_work, stage_no)
                state.revision = revision_at(pid, Deadline("edit", cycle, stage_no, opens)) if stage.mode == EDIT else revision
        for stage_no, stage in enumerate(self.p.stages, 1):
            entries = work.get(stage_no, [])
            if not entries:
                continue
            opens_work, opens, closes = self.windows(cycle, stage_no)
            tie_round = closes + self.p.draw_delay
            if tie_round not in beacon:
                return promoted, f"The stage {stage_no} ballots of cycle {cycle} close at round {closes}; their outcome waits for round {tie_round}."
            passing = []
            for pid, _ in entries:
                state = result.proposals[pid]
                members = committees[(stage_no, pid)]
                revision = state.revision
                if stage.mode == AMEND:
                    revision = self._amendments(cycle, stage_no, stage, pid, revision, members, votes, amends, beacon, result)
                    state.revision = revision
                ballot = Ballot("stage", pid, cycle, stage_no, opens, closes, revision, len(members))
                result.ballots.append(ballot)
                if pid in withdrawn and withdrawn[pid] < closes:
                    ballot.outcome = WITHDRAWN
                    state.move(WITHDRAWN, cycle, closes, stage_no, "withdrawn by its author")
                    continue
                self._tally(ballot, votes.get((pid, cycle, stage_no, None), []), set(members), ("promote", "kill"), beacon)
                support = ballot.counts.get("promote", 0)
                if support >= stage.needed:
                    passing.append((-support, tiebreak(beacon[tie_round], pid), pid, revision, ballot))
                else:
                    ballot.outcome = KILLED
                    ballot.reason = f"{support} of {stage.committee} promoted; {stage.needed} needed"
                    state.move(KILLED, cycle, closes, stage_no, ballot.reason)
            for rank, (neg, _, pid, revision, ballot) in enumerate(sorted(passing), 1):
                state = result.proposals[pid]
                if rank <= stage.slots:
                    ballot.outcome = PROMOTED
                    ballot.reason = f"{-neg} promote votes, rank {rank} of {stage.slots} slots"
                    state.move(PROMOTED, cycle, closes, stage_no, ballot.reason)
                    promoted[stage_no + 1].append((pid, revision))
                else:
                    ballot.outcome = NOT_ADVANCED
                    ballot.reason = f"{-neg} promote votes, rank {rank}: all {stage.slots} slots went to stronger proposals"
                    state.move(NOT_ADVANCED, cycle, closes, stage_no, ballot.reason)
        return promoted, ""

    def _amendments(self, cycle, stage_no, stage, pid, base, members, votes, amends, beacon, result: Result):
        """Stage-2 amendments: proposed in the amendment window, each adopted or rejected; the
        adopted ones are merged (the union of their heads) before the final vote."""
        d = self.draw_round(cycle)
        propose_close = d + stage.amend_rounds
        vote_close = propose_close + stage.amend_ballot_rounds
        member_set = set(members)
        adopted_heads: set[bytes] = set()
        candidates = amends.get((pid, cycle), [])
        on_time = decided(Deadline("amendments", cycle, stage_no, propose_close), candidates)
        for r in sorted(on_time, key=lambda r: r.id):
            if r.author not in member_set or r.round < d or r.body.base != base or not self._saw(r, beacon):
                continue  # not a valid amendment: not shown as a ballot
            ballot = Ballot("amendment", pid, cycle, stage_no, propose_close, vote_close, r.body.heads, len(members), amendment=r.id)
            result.ballots.append(ballot)
            self._tally(ballot, votes.get((pid, cycle, stage_no, r.id), []), member_set, ("adopt", "reject"), beacon)
            adopt = ballot.counts.get("adopt", 0)
            if adopt > len(members) // 2:
                ballot.outcome, ballot.reason = "adopted", f"{adopt} of {len(members)} members adopted it"
                adopted_heads.update(r.body.heads)
            else:
                ballot.outcome, ballot.reason = "rejected", f"{adopt} of {len(members)} adopted; a majority of the committee is needed"
        return tuple(sorted(adopted_heads)) if adopted_heads else base

    def _plenary(self, cycle, entries, votes, withdrawn, beacon, horizon, result: Result) -> str:
        if not entries:
            return ""
        stage_no = len(self.p.stages) + 1
        opens_work, opens, closes = self.windows(cycle, stage_no)
        if closes > horizon:
            return f"The plenary of cycle {cycle} closes at round {closes}; the latest known round is {horizon}."
        roster = self.roster_of(cycle)
        quorum = self.p.plenary.quorum(len(roster))
        for pid, revision in entries:
            state = result.proposals[pid]
            ballot = Ballot("plenary", pid, cycle, stage_no, opens, closes, revision, len(roster))
            result.ballots.append(ballot)
            if pid in withdrawn and withdrawn[pid] < closes:
                ballot.outcome = WITHDRAWN
                state.move(WITHDRAWN, cycle, closes, stage_no, "withdrawn by its author")
                continue
            self._tally(ballot, votes.get((pid, cycle, stage_no, None), []), set(roster), ("yes", "no"), beacon)
            yes, no = ballot.counts.get("yes", 0), ballot.counts.get("no", 0)
            if yes + no < quorum:
                ballot.outcome, ballot.reason = FAILED, f"no quorum: {yes + no} votes, {quorum} needed"
            elif yes > no:
                ballot.outcome, ballot.reason = PASSED, f"{yes} yes, {no} no (quorum {quorum})"
            else:
                ballot.outcome, ballot.reason = FAILED, f"{yes} yes, {no} no (quorum {quorum})"
            state.move(ballot.outcome, cycle, closes, stage_no, ballot.reason)
        return ""

    @staticmethod
    def _saw(r: Record, beacon: Mapping[int, bytes]) -> bool:
        """The event's randomness prefix matches the round it names (when that round is known)."""
        known = beacon.get(r.round)
        return known is None or r.round == 0 or known[: len(r.round_prefix)] == r.round_prefix

    def _tally(self, ballot: Ballot, cast: list[Record], electorate: set[bytes], choices: tuple[str, ...], beacon) -> None:
        """Count one vote per member: the first valid one (by the author's chain order)."""
        counts = {c: 0 for c in choices}
        deadline = Deadline(ballot.kind + " ballot", ballot.cycle, ballot.stage, ballot.closes)
        on_time = decided(deadline, cast)
        on_time_ids = {r.id for r in on_time}
        voted: set[bytes] = set()
        for r in sorted(cast, key=lambda r: (r.author, r.seq)):
            body: Vote = r.body
            problem = None
            if r.id not in on_time_ids:
                problem = ("late", f"cast after the ballot closed (it names round {r.round}; the ballot closed at round {ballot.closes})")
            elif r.author not in electorate:
                problem = ("not_a_member", "the voter is not a member of this ballot's electorate")
            elif body.choice not in choices:
                problem = ("wrong_choice", f"this ballot's choices are {' and '.join(choices)}")
            elif body.revision != ballot.revision:
                problem = ("wrong_revision", "the vote names another revision of the text than the one on the ballot")
            elif r.round < ballot.opens:
                problem = ("too_early", f"cast before the ballot opened at round {ballot.opens}")
            elif not self._saw(r, beacon):
                problem = ("unseen_round", "the vote names a beacon round whose randomness it does not carry")
            elif r.author in voted:
                problem = ("second_vote", "only a member's first vote on a ballot counts")
            if problem:
                ballot.neutralised.append((r.author, r.id, *problem))
                continue
            voted.add(r.author)
            counts[body.choice] += 1
        ballot.counts = counts
