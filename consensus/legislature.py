"""The legislature: cycles, committees, ballots and outcomes, computed from events and rounds.

``Legislature(charter).evaluate(records, beacon)`` is a pure function of the applied legislative
events (``Replica.records``) and the verified beacon randomness by round.  Every node computes it
itself and gets the same draws, tallies and outcomes.  See ``consensus/parliament.py`` for the
timeline of a cycle and ``docs/legislature.md`` for the rules with a diagram.

Which events made a deadline is decided behind one seam, ``Legislature._decide``, which returns a
:class:`Decision`; the tallies only ask it ``includes(event)`` and ``vote_on_time(...)``.  By
default a deadline is settled by its cut-off panel's commit certificate (``consensus/panel.py``,
docs/panels.md); the charter may choose the *declared round* rule instead, for offline rehearsals
only (docs/deadlines.md records its weakness: backdating).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from .charter import Charter
from .kinds import PANEL_KINDS, Amend, DocChange, Lease, Submit, Vote, Withdraw
from .panel import ballot_key, deadline_key, draw_panel, find_decision, has_bit
from .parliament import AMEND, DECLARED, EDIT
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


def revision_at(proposal: bytes, deadline: Deadline) -> tuple[bytes, ...]:
    """The revision of a proposal that has no document (no ``doc.change`` events): its own id."""
    return (proposal,)


def heads_of(changes: Iterable[Record]) -> tuple[tuple[bytes, ...], list[Record]]:
    """The revision (sorted heads) made by the document changes whose dependencies are all among
    them, and the changes left out because a dependency is missing or was itself left out.
    Linear in changes and dependencies (Kahn's algorithm): a bill's history has thousands."""
    by_hash = {r.body.hash: r for r in changes}
    missing = {h: sum(1 for d in set(r.body.deps) if d != h) for h, r in by_hash.items()}
    dependents: dict[bytes, list[bytes]] = defaultdict(list)
    for h, r in by_hash.items():
        for d in set(r.body.deps):
            if d != h:
                dependents[d].append(h)
    ready = [h for h, r in by_hash.items() if all(d in by_hash for d in r.body.deps) and missing[h] == 0]
    kept: set[bytes] = set()
    while ready:
        h = ready.pop()
        kept.add(h)
        for child in dependents.get(h, ()):
            missing[child] -= 1
            if missing[child] == 0:
                ready.append(child)
    referenced = {d for h in kept for d in by_hash[h].body.deps}
    left_out = [by_hash[h] for h in sorted(by_hash) if h not in kept]
    return tuple(sorted(kept - referenced)), left_out


def over_rate(changes: Iterable[Record], per_round: int) -> set[bytes]:
    """Ids of the document changes beyond ``per_round`` by one author in one beacon round (in the
    author's chain order: the first ones count)."""
    seen: dict[tuple[bytes, int], int] = defaultdict(int)
    over = set()
    for r in sorted(changes, key=lambda r: (r.author, r.seq)):
        seen[(r.author, r.round)] += 1
        if seen[(r.author, r.round)] > per_round:
            over.add(r.id)
    return over


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
            "revision": [h.hex() for h in self.revision],
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
    #: every deadline settled so far, with its rule and (for panels) its commit certificate
    deadlines: list[dict] = field(default_factory=list)
    #: panel members who signed two different messages for one step of one deadline: fraud proofs
    panel_equivocations: list[dict] = field(default_factory=list)
    #: document changes that do not count towards a frozen revision, with reasons
    ignored_changes: list[dict] = field(default_factory=list)

    def as_dict(self, explain: bool = True) -> dict:
        return {
            "cycles": self.cycles,
            "waiting": self.waiting,
            "proposals": [p.as_dict() for p in sorted(self.proposals.values(), key=lambda p: (p.submitted_round, p.id))],
            "draws": [d.as_dict() if explain else {**d.as_dict(), "picks": []} for d in self.draws],
            "ballots": [b.as_dict() for b in self.ballots],
            "deadlines": self.deadlines,
            "panel_equivocations": self.panel_equivocations,
            "ignored_changes": self.ignored_changes,
        }


def tiebreak(randomness: bytes, proposal: bytes) -> bytes:
    return hashlib.sha256(b"klero/tiebreak/v1" + randomness + proposal).digest()


# ---------------------------------------------------------------------- the legislature


@dataclass
class Decision:
    """How one deadline was settled: which items and first votes made it, and the future round
    whose randomness the draws or tie-breaks that depend on it use."""

    deadline: Deadline
    seed_round: int
    #: panel rule: (author, seq) of the items that made it, and per ballot the indices of the
    #: electorate members whose first vote made it; None under the declared-round rule
    items: set | None = None
    ballots: dict | None = None
    panel: tuple[bytes, ...] = ()
    certificate: object = None

    def includes(self, r: Record) -> bool:
        if self.items is None:
            return r.round < self.deadline.round
        return (r.author, r.seq) in self.items

    def vote_on_time(self, key: bytes, index: int, r: Record) -> bool:
        if self.ballots is None:
            return r.round < self.deadline.round
        return has_bit(self.ballots.get(key, b""), index)

    def as_dict(self) -> dict:
        d = self.deadline
        out = {"what": d.what, "cycle": d.cycle, "stage": d.stage, "round": d.round, "seed_round": self.seed_round,
               "rule": "declared round" if self.items is None else "cut-off panel"}
        if self.certificate is not None:
            c = self.certificate
            out["decided_items"] = [[a.hex(), q] for a, q in sorted(self.items)]
            out["decided_ballots"] = {k.hex(): v.hex() for k, v in sorted(self.ballots.items())}
            out["panel"] = [m.hex() for m in self.panel]
            out["certificate"] = {"agreement_round": c.round, "signers": [m.hex() for m in c.signers],
                                  "cutoffs_from": [m.hex() for m in c.cutoff_signers]}
        return out


class _Inputs:
    """The records of one evaluation, grouped once."""

    def __init__(self, records: Mapping[bytes, Record]):
        self.records = records
        self.subs: list[Record] = []
        self.withdrawals: dict[bytes, list[Record]] = defaultdict(list)
        self.votes: dict[tuple, list[Record]] = defaultdict(list)
        self.amends: dict[tuple, list[Record]] = defaultdict(list)
        self.leases: dict[int, list[Record]] = defaultdict(list)
        self.panel: dict[bytes, list[Record]] = defaultdict(list)
        self.changes: dict[bytes, list[Record]] = defaultdict(list)
        for r in records.values():
            body = r.body
            if isinstance(body, Submit):
                self.subs.append(r)
            elif isinstance(body, Withdraw):
                self.withdrawals[body.proposal].append(r)
            elif isinstance(body, Vote):
                self.votes[(body.proposal, body.cycle, body.stage, body.amendment)].append(r)
            elif isinstance(body, Amend):
                self.amends[(body.proposal, body.cycle)].append(r)
            elif isinstance(body, Lease):
                self.leases[body.cycle].append(r)
            elif isinstance(body, DocChange):
                self.changes[body.proposal].append(r)
            elif r.kind in PANEL_KINDS:
                self.panel[body.deadline].append(r)


def panel_equivocations(messages: Mapping[bytes, list[Record]]) -> list[dict]:
    """Two different signed messages by one member for one step of one deadline (two cut-offs, or
    two proposals, prevotes or precommits in one agreement round): each pair is a fraud proof."""
    seen: dict[tuple, Record] = {}
    found = []
    for deadline, records in messages.items():
        for r in sorted(records, key=lambda r: (r.author, r.seq)):
            step = (r.author, deadline, r.kind, None if r.kind == "cutoff" else r.body.round)
            first = seen.setdefault(step, r)
            if first.id != r.id and first.body != r.body:
                found.append({"author": r.author.hex(), "deadline": deadline.hex(), "kind": r.kind,
                              "round": step[3], "events": [first.id.hex(), r.id.hex()]})
    return found


class Waiting(Exception):
    """Raised inside an evaluation when the next decision cannot be made yet (the sentence says why)."""


class Legislature:
    """The rules of one charter, applied to a set of records and beacon rounds."""

    def __init__(self, charter: Charter, charter_round: int = 0):
        self.charter = charter
        self.p = charter.parliament
        self.start = self.p.start_round or charter_round + 1
        self._decisions: dict[tuple[str, int, int], Decision] = {}
        self._committees: dict[int, dict[tuple[int, bytes], tuple[bytes, ...]]] = {}
        self._inputs = _Inputs({})

    # ---- time

    def cycle_start(self, cycle: int) -> int:
        return self.start + cycle * self.p.cycle_rounds

    def cycle_of(self, round_: int) -> int:
        """The cycle a round belongs to (-1 before cycle 0)."""
        if round_ < self.start:
            return -1
        return (round_ - self.start) // self.p.cycle_rounds

    def draw_round(self, cycle: int) -> int:
        """Where the cycle's work windows start (the draws use the intake decision's seed round)."""
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

    def deadlines(self, cycle: int) -> list[tuple[str, int, int]]:
        """Every deadline of a cycle as (what, stage, round), in order of round."""
        out = [("intake", 0, self.cycle_start(cycle))]
        d = self.draw_round(cycle)
        for k, stage in enumerate(self.p.stages, 1):
            if stage.mode == EDIT:
                out.append(("edit", k, self.windows(cycle, k)[1]))
            if stage.mode == AMEND:
                out.append(("amendments", k, d + stage.amend_rounds))
                out.append(("amendment ballots", k, d + stage.amend_rounds + stage.amend_ballot_rounds))
            out.append(("ballots", k, self.windows(cycle, k)[2]))
        out.append(("plenary", len(self.p.stages) + 1, self.windows(cycle, len(self.p.stages) + 1)[2]))
        return sorted(out, key=lambda x: (x[2], x[1]))

    # ---- seats (the seam for constituencies, DESIGN.md §5)

    def roster_of(self, cycle: int) -> tuple[bytes, ...]:
        """The representatives seated in ``cycle``, sorted: the charter's initial seats for now."""
        return tuple(sorted(self.charter.roster))

    # ---- evaluation

    def evaluate(self, records: Mapping[bytes, Record], beacon: Mapping[int, bytes], *, explain: bool = True) -> Result:
        """Run every cycle whose decisions the known events and beacon rounds allow."""
        result = Result()
        inputs = _Inputs(records)
        self._decisions: dict[tuple[str, int, int], Decision] = {}
        self._beacon = beacon
        self._inputs = inputs
        self._horizon = max(beacon) if beacon else 0
        self._result = result
        self._committees: dict[int, dict[tuple[int, bytes], tuple[bytes, ...]]] = {}
        for r in sorted(inputs.subs, key=lambda r: (r.round, r.id)):
            result.proposals[r.id] = ProposalState(r.id, r.author, r.body.title, r.round)
        last_submission = max((r.round for r in inputs.subs), default=0)
        incoming: dict[int, list[tuple[bytes, tuple[bytes, ...]]]] = {}
        plenary_stage = len(self.p.stages) + 1
        cycle = 0
        try:
            while True:
                s = self.cycle_start(cycle)
                if s > self._horizon:
                    raise Waiting(f"Cycle {cycle} starts at beacon round {s}; the latest known round is {self._horizon}.")
                if cycle > 0 and not any(incoming.values()) and s > last_submission and not inputs.leases.get(cycle + 1):
                    result.waiting = "Nothing is in the pipeline."
                    break
                intake = self._decide("intake", cycle, 0, s)
                work = {1: self._intake(cycle, intake), **{k: v for k, v in incoming.items() if k > 1}}
                randomness = self._randomness(intake.seed_round, f"The draws of cycle {cycle}") if any(work.values()) else b""
                committees = self._draw(cycle, work, randomness, intake.seed_round, explain)
                self._committees[cycle] = committees
                plenary_opens = self.windows(cycle, plenary_stage)[0]
                for pid, revision in work.get(plenary_stage, []):
                    result.proposals[pid].move(IN_PLENARY, cycle, plenary_opens, plenary_stage)
                    result.proposals[pid].revision = revision
                for k in range(1, len(self.p.stages) + 1):
                    for pid, revision in work.get(k, []):
                        state = result.proposals[pid]
                        state.move(IN_COMMITTEE, cycle, self.windows(cycle, k)[0], k)
                        state.revision = revision
                promoted = self._stage_ballots(cycle, work, committees)
                self._plenary(cycle, work.get(plenary_stage, []))
                incoming = promoted
                cycle += 1
                result.cycles = cycle
        except Waiting as waiting:
            result.waiting = str(waiting)
        result.deadlines = [d.as_dict() for d in self._decisions.values()]
        result.panel_equivocations = panel_equivocations(inputs.panel)
        return result

    # ---- what the last evaluation found (for node shells and bots that act on it)

    def decision(self, what: str, cycle: int, stage: int) -> Decision | None:
        """How a deadline was settled in the last evaluation (None if it is still open)."""
        return self._decisions.get((what, cycle, stage))

    def committees(self, cycle: int) -> dict[tuple[int, bytes], tuple[bytes, ...]]:
        """(stage, proposal) -> members, as drawn in the last evaluation."""
        return dict(self._committees.get(cycle, {}))

    def amendments(self, proposal: bytes, cycle: int) -> list[Record]:
        """Amendment events naming a proposal and cycle, in the last evaluation's records."""
        return list(self._inputs.amends.get((proposal, cycle), ()))

    # ---- deadlines

    def available(self, cycle: int) -> tuple[bytes, ...]:
        """Who may sit on this cycle's panels: leases decided at the previous boundary, or the
        whole roster for the first two cycles (and if nobody leased)."""
        roster = self.roster_of(cycle)
        if cycle <= 1:
            return roster
        previous = self._decisions.get(("intake", cycle - 1, 0))
        seated = set(roster)
        leased = {r.author for r in self._inputs.leases.get(cycle, ()) if previous and previous.includes(r) and r.author in seated}
        return tuple(sorted(leased)) or roster

    def panel_of(self, what: str, cycle: int, stage: int, round_: int) -> tuple[bytes, ...]:
        """The panel of a deadline (needs the deadline round's randomness)."""
        randomness = self._randomness(round_, f"The panel of the {what} deadline of cycle {cycle}")
        return draw_panel(self.available(cycle), self.p.panel_size, deadline_key(what, cycle, stage), randomness)

    def _randomness(self, round_: int, what: str) -> bytes:
        value = self._beacon.get(round_)
        if value is None:
            raise Waiting(f"{what} wait for beacon round {round_} (the latest known round is {self._horizon}).")
        return value

    def _decide(self, what: str, cycle: int, stage: int, round_: int, sizes: Mapping[bytes, int] | None = None) -> Decision:
        key = (what, cycle, stage)
        if key in self._decisions:
            return self._decisions[key]
        deadline = Deadline(what, cycle, stage, round_)
        if round_ > self._horizon:
            raise Waiting(f"The {what} deadline of cycle {cycle} is at beacon round {round_}; the latest known round is {self._horizon}.")
        if self.p.deadline_rule == DECLARED:
            decision = Decision(deadline, round_ + self.p.draw_delay)
        else:
            panel = self.panel_of(what, cycle, stage, round_)
            name = deadline_key(what, cycle, stage)
            found = find_decision(name, panel, self._inputs.records, self._inputs.panel, sizes or {})
            if found is None:
                raise Waiting(
                    f"The {what} deadline of cycle {cycle} (round {round_}) stays open until its panel of {len(panel)} "
                    "publishes a commit certificate."
                )
            decision = Decision(deadline, found.seed_round, found.items, found.ballots, panel, found)
        self._decisions[key] = decision
        return decision

    def ballot_sizes(self, cycle: int, what: str, stage: int) -> dict[bytes, int]:
        """Electorate size of every ballot a deadline settles (for reading cut-off bitmaps)."""
        sizes: dict[bytes, int] = {}
        committees = self._committees.get(cycle, {})
        if what == "ballots":
            for (k, pid), members in committees.items():
                if k == stage:
                    sizes[ballot_key(pid, cycle, stage, None)] = len(members)
        elif what == "amendment ballots":
            for (k, pid), members in committees.items():
                if k == stage:
                    for r in self._inputs.amends.get((pid, cycle), ()):
                        sizes[ballot_key(pid, cycle, stage, r.id)] = len(members)
        elif what == "plenary":
            n = len(self.roster_of(cycle))
            for pid, state in self._result.proposals.items():
                if state.status == IN_PLENARY and state.history and state.history[-1][0] == cycle:
                    sizes[ballot_key(pid, cycle, stage, None)] = n
        return sizes

    # ---- stages

    def _intake(self, cycle: int, intake: Decision):
        """Stage 1's intake of ``cycle``: proposals submitted during the previous cycle (or before cycle 0)."""
        result = self._result
        s = self.cycle_start(cycle)
        low = self.cycle_start(cycle - 1) if cycle > 0 else -1
        window = [r for r in self._inputs.subs if low <= r.round < s] if cycle > 0 else [r for r in self._inputs.subs if r.round < s]
        taken: list[tuple[bytes, tuple[bytes, ...]]] = []
        per_author: dict[bytes, int] = defaultdict(int)
        roster = set(self.roster_of(cycle))
        for r in sorted(window, key=lambda r: (r.author, r.seq)):
            state = result.proposals[r.id]
            if not intake.includes(r):
                # no later intake takes it either (its round belongs to this one's window)
                state.move(REFUSED, cycle, s, 0, "it did not reach the intake deadline (not in the decided set)")
                continue
            if not self._saw(r):
                state.move(REFUSED, cycle, s, 0, "it names a beacon round whose randomness it does not carry")
                continue
            if self._withdrawn(r.id, intake):
                state.move(WITHDRAWN, cycle, s, 0, "withdrawn before the intake")
                continue
            if r.author not in roster:
                state.move(REFUSED, cycle, s, 0, "its author holds no seat this cycle")
                continue
            per_author[r.author] += 1
            if per_author[r.author] > self.p.submissions_per_cycle:
                state.move(REFUSED, cycle, s, 0, f"over its author's quota of {self.p.submissions_per_cycle} proposals per cycle")
                continue
            taken.append((r.id, revision_at(r.id, intake.deadline)))
        return sorted(taken)

    def _withdrawn(self, pid: bytes, decision: Decision) -> bool:
        author = self._result.proposals[pid].author if pid in self._result.proposals else None
        return any(w.author == author and decision.includes(w) and self._saw(w) for w in self._inputs.withdrawals.get(pid, ()))

    def _draw(self, cycle, work, randomness, seed_round, explain: bool) -> dict[tuple[int, bytes], tuple[bytes, ...]]:
        result = self._result
        roster = self.roster_of(cycle)
        seats: dict[bytes, int] = {}
        order = []
        for stage in range(1, len(self.p.stages) + 1):
            for pid, _ in work.get(stage, []):
                order.append((-stage, committee_seed(pid, cycle, stage, randomness), stage, pid))
        committees = {}
        for _, seed, stage, pid in sorted(order):
            author = result.proposals[pid].author if pid in result.proposals else b""
            members, picks, short = draw_committee(
                roster, self.p.stages[stage - 1].committee, seed,
                exclude=(author,), seats=seats, max_seats=self.p.max_seats, explain=explain,
            )
            committees[(stage, pid)] = members
            result.draws.append(Draw(pid, cycle, stage, seed_round, seed, members, picks, short))
        return committees

    def _stage_ballots(self, cycle, work, committees):
        result = self._result
        promoted: dict[int, list[tuple[bytes, tuple[bytes, ...]]]] = defaultdict(list)
        for stage_no, stage in enumerate(self.p.stages, 1):
            entries = work.get(stage_no, [])
            if not entries:
                continue
            opens_work, opens, closes = self.windows(cycle, stage_no)
            if stage.mode == EDIT:
                for pid, _ in entries:
                    result.proposals[pid].revision = self._frozen_revision(pid, cycle, stage_no, committees[(stage_no, pid)])
            if stage.mode == AMEND:
                for pid, _ in entries:
                    state = result.proposals[pid]
                    state.revision = self._amendments(cycle, stage_no, stage, pid, state.revision, committees[(stage_no, pid)])
            decision = self._decide("ballots", cycle, stage_no, closes, self.ballot_sizes(cycle, "ballots", stage_no))
            tie_randomness = self._randomness(decision.seed_round, f"The stage {stage_no} outcomes of cycle {cycle}")
            passing = []
            for pid, _ in entries:
                state = result.proposals[pid]
                revision = state.revision
                ballot = self._ballot("stage", pid, cycle, stage_no, revision, committees[(stage_no, pid)], ("promote", "kill"), decision)
                if ballot is None:
                    continue
                support = ballot.counts.get("promote", 0)
                if support >= stage.needed:
                    passing.append((-support, tiebreak(tie_randomness, pid), pid, revision, ballot))
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
        return promoted

    def _frozen_revision(self, pid: bytes, cycle: int, stage_no: int, members) -> tuple[bytes, ...]:
        """The text the drafting committee votes on: the document as its author and the committee
        left it when the editing window closed (as decided at that deadline).  Changes by anyone
        else, after the window, or depending on such changes do not count, each with a reason."""
        changes = self._inputs.changes.get(pid, [])
        if not changes:
            return revision_at(pid, Deadline("edit", cycle, stage_no, 0))
        _, opens, _ = self.windows(cycle, stage_no)
        decision = self._decide("edit", cycle, stage_no, opens)
        author = self._result.proposals[pid].author
        editors = set(members)
        d = self.draw_round(cycle)
        allowed = []
        per_round = self.charter.limits.max_doc_changes_per_round
        flood = over_rate(changes, per_round)
        for r in sorted(changes, key=lambda r: r.id):
            problem = None
            if r.id in flood:
                problem = f"its author made more than the charter's {per_round} document changes in one beacon round"
            elif not decision.includes(r):
                problem = "it did not make the end of the editing window"
            elif r.author != author and r.author not in editors:
                problem = "its author is neither an author of the proposal nor on its drafting committee"
            elif r.author != author and r.round < d:
                problem = "it was made before the committee was drawn"
            elif not self._saw(r):
                problem = "it names a beacon round whose randomness it does not carry"
            if problem:
                self._result.ignored_changes.append({"proposal": pid.hex(), "change": r.body.hash.hex(), "author": r.author.hex(), "reason": problem})
            else:
                allowed.append(r)
        heads, left_out = heads_of(allowed)
        for r in left_out:
            self._result.ignored_changes.append({"proposal": pid.hex(), "change": r.body.hash.hex(), "author": r.author.hex(),
                                                 "reason": "it depends on a change that does not count"})
        return heads or revision_at(pid, decision.deadline)

    def _amendments(self, cycle, stage_no, stage, pid, base, members):
        """Stage-2 amendments: proposed in the amendment window, each adopted or rejected; the
        adopted ones are merged (the union of their heads) before the final vote."""
        result = self._result
        d = self.draw_round(cycle)
        propose_close = d + stage.amend_rounds
        vote_close = propose_close + stage.amend_ballot_rounds
        member_set = set(members)
        adopted_heads: set[bytes] = set()
        proposed = self._decide("amendments", cycle, stage_no, propose_close)
        valid = []
        for r in sorted(self._inputs.amends.get((pid, cycle), []), key=lambda r: r.id):
            problem = None
            if not proposed.includes(r):
                problem = "it did not make the amendment deadline"
            elif r.author not in member_set:
                problem = "its author is not a member of this committee"
            elif r.round < d:
                problem = "it was proposed before the committee was drawn"
            elif r.body.base != base:
                problem = "it amends another revision than the one the committee received"
            elif not self._saw(r):
                problem = "it names a beacon round whose randomness it does not carry"
            if problem:
                refused = Ballot("amendment", pid, cycle, stage_no, propose_close, vote_close, r.body.heads, len(members), amendment=r.id)
                refused.outcome, refused.reason = "refused", problem
                result.ballots.append(refused)
            else:
                valid.append(r)
        if not valid:
            return base
        votes_due = self._decide("amendment ballots", cycle, stage_no, vote_close, self.ballot_sizes(cycle, "amendment ballots", stage_no))
        for r in valid:
            ballot = Ballot("amendment", pid, cycle, stage_no, propose_close, vote_close, r.body.heads, len(members), amendment=r.id)
            result.ballots.append(ballot)
            self._tally(ballot, self._inputs.votes.get((pid, cycle, stage_no, r.id), []), members, ("adopt", "reject"),
                        votes_due, ballot_key(pid, cycle, stage_no, r.id))
            adopt = ballot.counts.get("adopt", 0)
            if adopt > len(members) // 2:
                ballot.outcome, ballot.reason = "adopted", f"{adopt} of {len(members)} members adopted it"
                adopted_heads.update(r.body.heads)
            else:
                ballot.outcome, ballot.reason = "rejected", f"{adopt} of {len(members)} adopted; a majority of the committee is needed"
        return tuple(sorted(adopted_heads)) if adopted_heads else base

    def _plenary(self, cycle, entries) -> None:
        if not entries:
            return
        result = self._result
        stage_no = len(self.p.stages) + 1
        opens_work, opens, closes = self.windows(cycle, stage_no)
        decision = self._decide("plenary", cycle, stage_no, closes, self.ballot_sizes(cycle, "plenary", stage_no))
        roster = self.roster_of(cycle)
        quorum = self.p.plenary.quorum(len(roster))
        for pid, revision in entries:
            state = result.proposals[pid]
            ballot = self._ballot("plenary", pid, cycle, stage_no, revision, roster, ("yes", "no"), decision)
            if ballot is None:
                continue
            yes, no = ballot.counts.get("yes", 0), ballot.counts.get("no", 0)
            if yes + no < quorum:
                ballot.outcome, ballot.reason = FAILED, f"no quorum: {yes + no} votes, {quorum} needed"
            elif yes > no:
                ballot.outcome, ballot.reason = PASSED, f"{yes} yes, {no} no (quorum {quorum})"
            else:
                ballot.outcome, ballot.reason = FAILED, f"{yes} yes, {no} no (quorum {quorum})"
            state.move(ballot.outcome, cycle, closes, stage_no, ballot.reason)

    def _ballot(self, kind, pid, cycle, stage_no, revision, electorate, choices, decision: Decision) -> Ballot | None:
        """Open, and tally, the stage or plenary ballot of a proposal (None if it was withdrawn)."""
        _, opens, closes = self.windows(cycle, stage_no)
        ballot = Ballot(kind, pid, cycle, stage_no, opens, closes, revision, len(electorate))
        self._result.ballots.append(ballot)
        if self._withdrawn(pid, decision):
            ballot.outcome = WITHDRAWN
            self._result.proposals[pid].move(WITHDRAWN, cycle, closes, stage_no, "withdrawn by its author")
            return None
        self._tally(ballot, self._inputs.votes.get((pid, cycle, stage_no, None), []), electorate, choices,
                    decision, ballot_key(pid, cycle, stage_no, None))
        return ballot

    def _saw(self, r: Record) -> bool:
        """The event carries the randomness of the round it names, and that round is known.

        An event naming a round nobody has cannot prove it saw it: it does not count (a log or a
        node that carries the event must carry the rounds it names).  Round 0 is "no round yet".
        """
        if r.round == 0:
            return True
        known = self._beacon.get(r.round)
        return known is not None and known[: len(r.round_prefix)] == r.round_prefix

    def _tally(self, ballot: Ballot, cast: list[Record], electorate: Iterable[bytes], choices: tuple[str, ...],
               decision: Decision, key: bytes) -> None:
        """Count one vote per member: the member's first vote on the ballot (by the author's chain
        order), if it made the deadline and is valid.  Every other vote is listed with a reason."""
        counts = {c: 0 for c in choices}
        index = {m: i for i, m in enumerate(sorted(set(electorate)))}
        first: dict[bytes, Record] = {}
        for r in sorted(cast, key=lambda r: (r.author, r.seq)):
            body: Vote = r.body
            problem = None
            i = index.get(r.author)
            if i is None:
                problem = ("not_a_member", "the voter is not a member of this ballot's electorate")
            elif r.author in first:
                problem = ("second_vote", "only a member's first vote on a ballot counts")
            else:
                first[r.author] = r
                if not decision.vote_on_time(key, i, r):
                    problem = ("late", f"it did not make the deadline at round {ballot.closes}"
                               + (f" (it names round {r.round})" if decision.items is None else " (not in the panel's decided set)"))
                elif body.choice not in choices:
                    problem = ("wrong_choice", f"this ballot's choices are {' and '.join(choices)}")
                elif body.revision != ballot.revision:
                    problem = ("wrong_revision", "the vote names another revision of the text than the one on the ballot")
                elif r.round < ballot.opens:
                    problem = ("too_early", f"cast before the ballot opened at round {ballot.opens}")
                elif not self._saw(r):
                    problem = ("unseen_round", "the vote names a beacon round whose randomness it does not carry")
            if problem:
                ballot.neutralised.append((r.author, r.id, *problem))
                continue
            counts[body.choice] += 1
        ballot.counts = counts
