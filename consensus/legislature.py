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
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from .agreement import quorum_size
from .charter import Charter
from .constituency import Roll, Seat
from .kinds import PANEL_KINDS, REPRESENTATION, Amend, Submit, Vote, Withdraw
from .panel import MAX_HEADS, ballot_key, deadline_key, draw_panel, find_decision, has_bit, parse_deadline_key
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


def closure(heads: Iterable[bytes], by_hash: Mapping[bytes, Record]) -> set[bytes]:
    """The changes a revision holds: its heads and every change they depend on, among the
    document changes ``by_hash`` holds (change hash -> ``doc.change`` record)."""
    seen: set[bytes] = set()
    todo = [h for h in heads if h in by_hash]
    while todo:
        h = todo.pop()
        if h not in seen:
            seen.add(h)
            todo.extend(d for d in by_hash[h].body.deps if d in by_hash)
    return seen


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
    #: votes on ballots that never existed, with reasons
    stray_votes: list[dict] = field(default_factory=list)
    #: charters with constituencies: the roster of each cycle reached (cycle -> sorted keys), how
    #: each boundary's seats came about, the acts that count for nothing, and duplicate people
    rosters: dict[int, tuple[bytes, ...]] = field(default_factory=dict)
    seats: list[dict] = field(default_factory=list)
    representation_problems: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)

    def as_dict(self, explain: bool = True) -> dict:
        extra = {}
        if self.rosters:
            extra = {"rosters": {str(c): [k.hex() for k in keys] for c, keys in sorted(self.rosters.items())},
                     "seats": self.seats, "representation_problems": self.representation_problems,
                     "duplicates": self.duplicates}
        return {**extra,
            "cycles": self.cycles,
            "waiting": self.waiting,
            "proposals": [p.as_dict() for p in sorted(self.proposals.values(), key=lambda p: (p.submitted_round, p.id))],
            "draws": [d.as_dict() if explain else {**d.as_dict(), "picks": []} for d in self.draws],
            "ballots": [b.as_dict() for b in self.ballots],
            "deadlines": self.deadlines,
            "panel_equivocations": self.panel_equivocations,
            "ignored_changes": self.ignored_changes,
            "stray_votes": self.stray_votes,
        }


def tiebreak(randomness: bytes, proposal: bytes) -> bytes:
    return hashlib.sha256(b"klero/tiebreak/v1" + randomness + proposal).digest()


# ---------------------------------------------------------------------- the legislature


@dataclass(frozen=True, slots=True)
class BallotSpec:
    """What a cut-off needs to judge the votes of one ballot a deadline closes."""

    electorate: tuple[bytes, ...]  # sorted: bit i of a cut-off's bitmaps is member i
    choices: tuple[str, str]
    revision: tuple[bytes, ...]
    opens: int


#: amendments one committee member may propose to one proposal per cycle (the first in their
#: chain counts).  An amendment is a whole fork of the text, holding any number of edits; one per
#: member keeps an amendment deadline's cut-off within the event limit at city scale
#: (docs/finality.md)
AMENDMENTS_PER_MEMBER = 1


@dataclass
class Decision:
    """How one deadline was settled: which facts and exact events made it, and the future round
    whose randomness the draws or tie-breaks that depend on it use."""

    deadline: Deadline
    seed_round: int
    #: panel rule: ids of the exact events that made it (submissions, amendments, withdrawals);
    #: None under the declared-round rule
    items: set | None = None
    #: panel rule: ballot key -> (first-choice bitmap, second-choice bitmap) of the votes that count
    ballots: dict | None = None
    leases: bytes = b""
    revisions: dict = field(default_factory=dict)
    used: int = 0
    #: panel rule: the proposals in play the decision says their authors withdrew
    withdrawn: frozenset = frozenset()
    panel: tuple[bytes, ...] = ()
    certificate: object = None
    generation: int = 0
    #: intakes of charters with constituencies: the keys seated from the next cycle on (None: no
    #: seats were decided, the roster serves on), and who declared absence for this cycle
    seats: frozenset | None = None
    absent: frozenset = frozenset()

    def includes(self, r: Record) -> bool:
        if self.items is None:
            return r.round < self.deadline.round
        return r.id in self.items

    def as_dict(self) -> dict:
        d = self.deadline
        out = {"what": d.what, "cycle": d.cycle, "stage": d.stage, "round": d.round, "seed_round": self.seed_round,
               "rule": "declared round" if self.items is None else "cut-off panel"}
        if self.certificate is not None:
            c = self.certificate
            out["generation"] = self.generation
            out["decided_items"] = sorted(i.hex() for i in self.items)
            out["decided_ballots"] = {k.hex(): [a.hex(), b.hex()] for k, (a, b) in sorted(self.ballots.items())}
            out["decided_leases"] = self.leases.hex()
            out["decided_withdrawals"] = sorted(p.hex() for p in self.withdrawn)
            if self.seats is not None:
                out["decided_seats"] = sorted(k.hex() for k in self.seats)
            if self.absent:
                out["decided_absent"] = sorted(k.hex() for k in self.absent)
            out["decided_revisions"] = {p.hex(): sorted(sorted(h.hex() for h in heads) for heads in v)
                                        for p, v in sorted(self.revisions.items())}
            out["panel"] = [m.hex() for m in self.panel]
            out["certificate"] = {"agreement_round": c.round, "signers": [m.hex() for m in c.signers],
                                  "cutoffs_from": [m.hex() for m in c.cutoff_signers]}
        return out


#: record kinds the legislature's inputs skip (the Roll reads them)
_SKIP = frozenset(REPRESENTATION)


class _Inputs:
    """The records of one evaluation, grouped once.  ``evidence`` (what equivocators signed from
    their fork on) never counts for an open deadline; it is read only by id, where a certificate
    decided it, and for the panel messages that certificates are made of."""

    def __init__(self, records: Mapping[bytes, Record], evidence: Mapping[bytes, Record] = {}, quorum: int = 1):
        self.records = records
        self.evidence = evidence
        self.subs: list[Record] = []
        self.withdrawals: dict[bytes, list[Record]] = defaultdict(list)
        self.votes: dict[tuple, list[Record]] = defaultdict(list)
        self.amends: dict[tuple, list[Record]] = defaultdict(list)
        self.leases: dict[int, list[Record]] = defaultdict(list)
        self.absences: dict[int, list[Record]] = defaultdict(list)
        self.panel: dict[bytes, list[Record]] = defaultdict(list)
        self.changes: dict[bytes, list[Record]] = defaultdict(list)
        #: change hash -> its record (records and evidence: heads a certificate decided must resolve)
        self.change_by_hash: dict[bytes, Record] = {}
        #: (what, cycle, stage) -> panel generations some message names
        self.generations: dict[tuple[str, int, int], set[int]] = defaultdict(set)
        # one pass, dispatching on the kind (a city's constituents' acts are most of the records:
        # they cost one dictionary lookup each here, not a row of type tests)
        for r in records.values():
            kind = r.kind
            if kind in _SKIP:
                continue
            body = r.body
            if kind in PANEL_KINDS:
                self.panel[body.deadline].append(r)
            elif kind == "vote":
                self.votes[(body.proposal, body.cycle, body.stage, body.amendment)].append(r)
            elif kind == "doc.change":
                self.changes[body.proposal].append(r)
                self.change_by_hash.setdefault(body.hash, r)
            elif kind == "proposal.submit":
                self.subs.append(r)
            elif kind == "proposal.withdraw":
                self.withdrawals[body.proposal].append(r)
            elif kind == "amendment.propose":
                self.amends[(body.proposal, body.cycle)].append(r)
            elif kind == "lease":
                self.leases[body.cycle].append(r)
            elif kind == "absence":
                self.absences[body.cycle].append(r)
        for r in evidence.values():
            if r.kind in PANEL_KINDS:
                self.panel[r.body.deadline].append(r)
            elif r.kind == "doc.change":
                self.change_by_hash.setdefault(r.body.hash, r)
        for name, messages in self.panel.items():
            parsed = parse_deadline_key(name)
            # only a generation with enough precommitters could hold a certificate: a few keys
            # signing for thousands of generations must not make an evaluation draw thousands of panels
            if parsed is not None and len({r.author for r in messages if r.kind == "precommit"}) >= quorum:
                self.generations[parsed[:3]].add(parsed[3])

    def get(self, rid: bytes) -> Record | None:
        return self.records.get(rid) or self.evidence.get(rid)


def panel_equivocations(messages: Mapping[bytes, list[Record]]) -> list[dict]:
    """Two different signed messages by one member for one step of one deadline (two cut-offs, or
    two proposals, prevotes or precommits in one agreement round): each pair is a fraud proof.
    Listed in a fixed order (deadline, author, kind, round), whatever order the events came in."""
    found = []
    for deadline in sorted(messages):
        seen: dict[tuple, Record] = {}
        for r in sorted(messages[deadline], key=lambda r: (r.author, r.seq, r.id)):
            step = (r.author, r.kind, None if r.kind == "cutoff" else r.body.round)
            first = seen.setdefault(step, r)
            if first.id != r.id and first.body != r.body:
                found.append({"author": r.author.hex(), "deadline": deadline.hex(), "kind": r.kind,
                              "round": step[2], "events": [first.id.hex(), r.id.hex()]})
    return found


class _RollCache:
    """The representation acts of one replica, applied boundary by boundary, kept between
    evaluations (a node evaluates every beacon round; replaying a city's 800,000 constituents'
    acts each time would take seconds).  Valid while every representation record that arrived or
    left since names a round not applied yet; else rebuilt.  Pure: a function of the records."""

    #: records mapping's id -> cache (a few replicas per process at most: tests)
    _all: dict[int, "_RollCache"] = {}

    def __init__(self, charter: Charter, records):
        self.charter, self.records = charter, records
        self.roll = Roll(charter)
        self.roll.load(records.values())
        self.applied_before = -1  # every act naming a round before this is applied
        self.seats: dict[int, list[Seat]] = {}
        self.settled: set[int] = set()
        self.seen = 0

    @classmethod
    def of(cls, charter: Charter, records, replica) -> "_RollCache":
        if replica is None:  # records not from a replica: nothing to follow them by
            return cls(charter, records)
        cache = cls._all.get(id(records))
        if cache is not None and cache.records is records and cache.charter is charter:
            new = replica.rep_since(cache.seen)
            if new is not None and all(rnd >= cache.applied_before for rnd, _, _ in new):
                last = {i: added for _, i, added in new}  # an id added then removed (a fork) ends removed
                cache.roll.merge([records[i] for i, added in last.items() if added and i in records],
                                 [i for i, added in last.items() if not added])
                cache.seen = replica.rep_version
                return cache
        cache = cls(charter, records)
        cache.seen = replica.rep_version
        if len(cls._all) >= 8:
            cls._all.pop(next(iter(cls._all)))
        cls._all[id(records)] = cache
        return cache


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
        self._specs: dict[tuple[str, int, int], dict[bytes, BallotSpec]] = {}
        self._in_play: dict[tuple[str, int, int], tuple[bytes, ...]] = {}
        self.waiting_at: tuple[str, int, int, int] | None = None
        self._inputs = _Inputs({})
        self._beacon: Mapping[int, bytes] = {}
        self._horizon = 0
        self._result = Result()
        self._founding = tuple(sorted(charter.roster))
        self._rosters: dict[int, tuple[bytes, ...]] = {}
        self._local_seats: dict[int, list[Seat]] = {}
        self.roll: Roll | None = None

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
        """The representatives seated in ``cycle``, sorted.  Without constituencies, the
        charter's founding roster; with them, the founding roster until a boundary's panel
        certified seats, then the seats each boundary certified (an assembly never loses every
        seat at once: a boundary that certified none keeps the roster it had).  A cycle beyond
        the last evaluation's reach gets the latest roster known."""
        roster = self._rosters.get(cycle)
        if roster is not None:
            return roster
        known = [c for c in self._rosters if c <= cycle]
        return self._rosters[max(known)] if known else self._founding

    def local_seats(self, cycle: int) -> list[Seat]:
        """The seats this replica's acts say should hold from ``cycle + 1`` on (what an honest
        cut-off of the intake of ``cycle`` lists), with reasons; [] before the evaluation reached it."""
        return list(self._local_seats.get(cycle, ()))

    def absent_in(self, cycle: int) -> frozenset:
        """Who the intake of ``cycle`` decided is absent (committee draws skip them)."""
        d = self._decisions.get(("intake", cycle, 0))
        return d.absent if d is not None else frozenset()

    # ---- evaluation

    def evaluate_replica(self, replica, *, explain: bool = True) -> Result:
        """:meth:`evaluate` on what a ``consensus.replica.Replica`` holds (its representation acts
        are applied once and reused by later evaluations: ``_RollCache``)."""
        self._replica = replica
        try:
            return self.evaluate(replica.records, replica.beacon, explain=explain, evidence=replica.evidence)
        finally:
            self._replica = None

    def evaluate(self, records: Mapping[bytes, Record], beacon: Mapping[int, bytes], *, explain: bool = True,
                 evidence: Mapping[bytes, Record] = {}) -> Result:
        """Run every cycle whose decisions the known events and beacon rounds allow.  ``evidence``:
        what equivocators signed from their fork on (``Replica.evidence``)."""
        result = Result()
        inputs = _Inputs(records, evidence, quorum_size(min(self.p.panel_size, len(self.roster_of(0)) or 1)))
        self._decisions: dict[tuple[str, int, int], Decision] = {}
        self._specs = {}
        self._in_play = {}
        #: (what, cycle, stage, round) of the deadline the evaluation stopped at, if it stopped at one
        self.waiting_at: tuple[str, int, int, int] | None = None
        self._beacon = beacon
        self._inputs = inputs
        self._horizon = max(beacon) if beacon else 0
        self._result = result
        self._committees: dict[int, dict[tuple[int, bytes], tuple[bytes, ...]]] = {}
        represent = self.charter.representation is not None
        self._rosters = {0: self._founding} if represent else {}
        self._local_seats = {}
        self.roll = None
        if represent:
            self._cache = _RollCache.of(self.charter, records, getattr(self, "_replica", None))
            self.roll = self._cache.roll
            result.rosters = self._rosters
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
                if represent:
                    self._boundary(cycle, s)
                intake = self._decide("intake", cycle, 0, s)
                if represent:
                    self._seat(cycle, intake)
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
                incoming = self._deadlines_of(cycle, work, committees)
                cycle += 1
                result.cycles = cycle
        except Waiting as waiting:
            result.waiting = str(waiting)
        if self.roll is not None:
            result.representation_problems = [p.as_dict() for p in self.roll.problems]
            result.duplicates = list(self.roll.duplicates)
        result.deadlines = [d.as_dict() for d in self._decisions.values()]
        result.panel_equivocations = panel_equivocations(inputs.panel)
        result.stray_votes = self._stray_votes(result)
        return result

    def _boundary(self, cycle: int, s: int) -> None:
        """Apply the representation acts before the boundary ``s`` and derive the seats they say
        (once: a later evaluation reuses them while no act before ``s`` arrived since)."""
        cache = self._cache
        if cycle not in cache.seats:
            randomness = self._randomness(s, f"The seats of the boundary of cycle {cycle}")
            self.roll.advance(s, cycle, randomness, self.cycle_of)
            cache.applied_before = s
            cache.seats[cycle] = self.roll.seats(cycle, randomness)
        self._local_seats[cycle] = cache.seats[cycle]

    def _seat(self, cycle: int, intake: "Decision") -> None:
        """The roster of ``cycle + 1``: the seats the intake decided (panel rule), or those the
        acts before it say (declared-round rule); the roster serves on when none were decided."""
        local = self._local_seats[cycle]
        if intake.items is None:  # declared-round rule: what the acts say is what counts
            seats = frozenset(seat.holder for seat in local if seat.holder is not None)
            absent = frozenset(r.author for r in self._inputs.absences.get(cycle, ())
                               if intake.includes(r) and r.author in set(self.roster_of(cycle)))
            intake.seats, intake.absent = seats, absent
        seats = intake.seats
        roster = tuple(sorted(seats)) if seats else self.roster_of(cycle)
        self._rosters[cycle + 1] = roster
        if cycle + 1 not in self._cache.settled:
            self.roll.settle(roster, cycle + 1)
            self._cache.settled.add(cycle + 1)
        held = {seat.holder for seat in local if seat.holder is not None}
        for seat in local:
            self._result.seats.append({
                "cycle": cycle + 1, "constituency": seat.group.hex(), "holder": seat.holder.hex() if seat.holder else None,
                "reason": seat.reason, "certified": seat.holder in (seats or ())})
        for key in sorted((seats or set()) - held):
            self._result.seats.append({"cycle": cycle + 1, "constituency": None, "holder": key.hex(), "certified": True,
                                       "reason": "certified by the boundary's panel; this replica's acts do not say so "
                                                 "(an act it lacks or holds late)"})

    def _stray_votes(self, result: Result) -> list[dict]:
        """Votes on a ballot that does not exist, in the cycles fully decided: listed with a reason
        instead of vanishing."""
        tallied = {ballot_key(b.proposal, b.cycle, b.stage, b.amendment) for b in result.ballots}
        out = []
        for (pid, cycle, stage, amendment), cast in sorted(self._inputs.votes.items(), key=lambda kv: (kv[0][:3], kv[0][3] or b"")):
            if cycle >= result.cycles or ballot_key(pid, cycle, stage, amendment) in tallied:
                continue
            what = f"an amendment ballot of stage {stage}" if amendment else f"a stage {stage} ballot"
            if pid not in result.proposals:
                reason = "it names no proposal of this assembly"
            else:
                reason = f"there was no {what} on this proposal in cycle {cycle}"
            for r in sorted(cast, key=lambda r: (r.author, r.seq, r.id)):
                out.append({"author": r.author.hex(), "event": r.id.hex(), "proposal": pid.hex(), "cycle": cycle,
                            "stage": stage, "amendment": amendment.hex() if amendment else None, "reason": reason})
        return out

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
        whole roster for the first two cycles (and if fewer than a panel leased)."""
        roster = self.roster_of(cycle)
        if cycle <= 1:
            return roster
        previous = self._decisions.get(("intake", cycle - 1, 0))
        if previous is None:
            return roster
        if previous.items is None:  # declared-round rule: the lease events themselves
            seated = set(roster)
            leased = {r.author for r in self._inputs.leases.get(cycle, ()) if previous.includes(r) and r.author in seated}
        else:
            earlier = self.roster_of(cycle - 1)
            leased = {earlier[i] for i in range(len(earlier)) if has_bit(previous.leases, i)} & set(roster)
        out = tuple(sorted(leased))
        return out if len(out) >= min(self.p.panel_size, len(roster)) else roster

    def present(self, cycle: int) -> set[bytes]:
        """Who has shown they are present: the members whose cut-offs the certificates decided so
        far in this cycle and the last one used, and who signed those certificates.  Decided
        facts only, so every node draws the same fresh panel."""
        out: set[bytes] = set()
        for (_, c, _), d in self._decisions.items():
            if c in (cycle - 1, cycle) and d.certificate is not None:
                out.update(d.certificate.signers, d.certificate.cutoff_signers)
        return out

    def generation_start(self, round_: int, gen: int) -> int:
        """The beacon round at which a deadline's panel of generation ``gen`` takes over."""
        return round_ + gen * self.p.panel_rounds

    def seed_window(self, round_: int, gen: int) -> tuple[int, int]:
        """(after, at most): where the seed round of a value of generation ``gen`` may lie.  A
        value naming a round outside is invalid for every honest member and for ``verify``."""
        start = self.generation_start(round_, gen)
        return start, start + self.p.panel_rounds + self.p.draw_delay

    def panel_of(self, what: str, cycle: int, stage: int, round_: int, gen: int = 0) -> tuple[bytes, ...]:
        """The panel of generation ``gen`` of a deadline (needs the randomness of the round at which
        it takes over).  Generation 0 comes from the cycle's available members; a later one, drawn
        because the one before did not decide in time, from those of them who have shown they
        are present, when there are enough.  Never smaller than ``panel_size`` (or the roster)."""
        start = self.generation_start(round_, gen)
        randomness = self._randomness(start, f"The panel (generation {gen}) of the {what} deadline of cycle {cycle}")
        roster = self.roster_of(cycle)
        size = min(self.p.panel_size, len(roster))
        pool = self.available(cycle)
        if gen:
            present = self.present(cycle)
            here = tuple(m for m in pool if m in present)
            if len(here) >= size:
                pool = here
        return draw_panel(pool, size, deadline_key(what, cycle, stage, gen), randomness)

    def _randomness(self, round_: int, what: str) -> bytes:
        value = self._beacon.get(round_)
        if value is None:
            raise Waiting(f"{what} wait for beacon round {round_} (the latest known round is {self._horizon}).")
        return value

    def _decide(self, what: str, cycle: int, stage: int, round_: int, specs: Mapping[bytes, BallotSpec] | None = None) -> Decision:
        key = (what, cycle, stage)
        if key in self._decisions:
            return self._decisions[key]
        self._specs[key] = dict(specs or {})
        self._in_play[key] = self.in_play_now()
        self.waiting_at = (what, cycle, stage, round_)
        deadline = Deadline(what, cycle, stage, round_)
        if round_ > self._horizon:
            raise Waiting(f"The {what} deadline of cycle {cycle} is at beacon round {round_}; the latest known round is {self._horizon}.")
        if self.p.deadline_rule == DECLARED:
            decision = Decision(deadline, round_ + self.p.draw_delay)
        else:
            sizes = {k: len(v.electorate) for k, v in (specs or {}).items()}
            roster_size = len(self.roster_of(cycle)) if what == "intake" else 0
            in_play = self._in_play[key]
            best = None
            # the highest generation that certified wins: a fresh panel takes over only from one
            # that had not decided, and honest members of an older one stop when it is replaced
            for gen in sorted(self._inputs.generations.get(key, set()) | {0}):
                if self.generation_start(round_, gen) > self._horizon:
                    break
                panel = self.panel_of(what, cycle, stage, round_, gen)
                found = find_decision(deadline_key(what, cycle, stage, gen), panel, self._inputs.panel, sizes,
                                      self.seed_window(round_, gen), roster_size, len(in_play))
                if found is not None:
                    best = (gen, panel, found)
            if best is None:
                gen = (self._horizon - round_) // self.p.panel_rounds
                raise Waiting(
                    f"The {what} deadline of cycle {cycle} (round {round_}) stays open until a panel publishes a commit "
                    f"certificate; generation {gen} of its panel serves until round {self.generation_start(round_, gen + 1)}, "
                    "when a fresh one is drawn."
                )
            gen, panel, found = best
            withdrawn = frozenset(pid for i, pid in enumerate(in_play) if has_bit(found.withdrawn, i))
            texts = self.texts(cycle, stage) if what == "edit" else ()
            revisions = {texts[i]: named for i, named in found.revisions.items() if i < len(texts)}
            decision = Decision(deadline, found.seed_round, found.items, found.ballots, found.leases, revisions,
                                found.used, withdrawn, panel, found, gen)
            if found.seats is not None:
                order = self.roster_of(cycle)
                decision.seats = frozenset(found.seats)
                decision.absent = frozenset(m for i, m in enumerate(order) if has_bit(found.absent, i))
        self._decisions[key] = decision
        self.waiting_at = None
        return decision

    def in_play_now(self) -> tuple[bytes, ...]:
        """The proposals in committee, promoted or in the plenary, by id: what a withdrawal can
        still take out (each fixed by earlier decisions, so every node lists the same)."""
        live = (IN_COMMITTEE, PROMOTED, IN_PLENARY)
        return tuple(sorted(pid for pid, state in self._result.proposals.items() if state.status in live))

    def texts(self, cycle: int, stage: int) -> tuple[bytes, ...]:
        """The proposals a stage's editing window freezes, in id order (a cut-off's revisions
        are aligned with them): those drawn a committee at the cycle's intake."""
        return tuple(sorted(pid for (k, pid) in self._committees.get(cycle, {}) if k == stage))

    def in_play(self, what: str, cycle: int, stage: int) -> tuple[bytes, ...]:
        """The proposals in play when the last evaluation reached a deadline (a cut-off's
        withdrawal bitmap is over them)."""
        return self._in_play.get((what, cycle, stage), ())

    def specs(self, what: str, cycle: int, stage: int) -> dict[bytes, BallotSpec]:
        """The ballots a deadline closes, as the last evaluation saw them when it reached it."""
        return dict(self._specs.get((what, cycle, stage), {}))

    def saw(self, r: Record) -> bool:
        """Public form of the round check (for cut-offs): see :meth:`_saw`."""
        return self._saw(r)

    # ---- stages

    def _intake(self, cycle: int, intake: Decision):
        """Stage 1's intake of ``cycle``: proposals submitted during the previous cycle (or before cycle 0)."""
        result = self._result
        s = self.cycle_start(cycle)
        window = self.intake_window(cycle, [r for r in self._inputs.subs])
        if intake.items is not None:
            # the exact submissions the certificate decided, even if their author forked since
            known = {r.id for r in window}
            for rid in sorted(intake.items - known):
                r = self._inputs.evidence.get(rid)
                if r is not None and isinstance(r.body, Submit) and r.id not in result.proposals:
                    result.proposals[r.id] = ProposalState(r.id, r.author, r.body.title, r.round)
                    window.append(r)
            window = self.intake_window(cycle, window)
        taken: list[tuple[bytes, tuple[bytes, ...]]] = []
        per_author: dict[bytes, int] = defaultdict(int)
        roster = set(self.roster_of(cycle))
        quota = self.p.submissions_per_cycle
        for r in sorted(window, key=lambda r: (r.author, r.seq, r.id)):
            state = result.proposals[r.id]
            if not intake.includes(r):
                # no later intake takes it either (its round belongs to this one's window); an
                # honest cut-off lists only an author's first submissions not withdrawn: say why
                if intake.items is not None and self._withdrawn_before(r, s):
                    state.move(WITHDRAWN, cycle, s, 0, "withdrawn before the intake")
                else:
                    state.move(REFUSED, cycle, s, 0, f"over its author's quota of {quota} proposals per cycle"
                               if per_author[r.author] >= quota else "it did not reach the intake deadline (not in the decided set)")
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
            if per_author[r.author] > quota:
                state.move(REFUSED, cycle, s, 0, f"over its author's quota of {quota} proposals per cycle")
                continue
            taken.append((r.id, revision_at(r.id, intake.deadline)))
        return sorted(taken)

    def intake_window(self, cycle: int, subs: Iterable[Record]) -> list[Record]:
        """The submissions whose round belongs to the intake of ``cycle``."""
        s = self.cycle_start(cycle)
        low = self.cycle_start(cycle - 1) if cycle > 0 else -1
        return [r for r in subs if low <= r.round < s]

    def _withdrawn(self, pid: bytes, decision: Decision) -> bool:
        """Whether a proposal's withdrawal made the deadline: the decided fact (panel rule), or
        its author's withdrawal event (declared-round rule)."""
        state = self._result.proposals.get(pid)
        if state is None:
            return False
        if decision.items is not None:
            return pid in decision.withdrawn
        return any(isinstance(w.body, Withdraw) and w.author == state.author and decision.includes(w) and self._saw(w)
                   for w in self._inputs.withdrawals.get(pid, ()))

    def _withdrawn_before(self, r: Record, before: int) -> bool:
        """A submission its author withdrew before ``before`` (an honest cut-off then leaves it out)."""
        return any(w.author == r.author and w.round < before and self._saw(w) for w in self._inputs.withdrawals.get(r.id, ()))

    def _draw(self, cycle, work, randomness, seed_round, explain: bool) -> dict[tuple[int, bytes], tuple[bytes, ...]]:
        result = self._result
        absent = self.absent_in(cycle)
        roster = tuple(m for m in self.roster_of(cycle) if m not in absent)
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

    def _deadlines_of(self, cycle, work, committees) -> dict[int, list[tuple[bytes, tuple[bytes, ...]]]]:
        """Settle the cycle's deadlines in the order of their rounds (each stage's work is
        independent of the others' in one cycle), so a deadline is reached, and its panel can
        sign, as soon as every earlier one is decided; returns what each stage promoted."""
        promoted: dict[int, list[tuple[bytes, tuple[bytes, ...]]]] = defaultdict(list)
        valid: dict[int, dict[bytes, list[Record]]] = {}
        for what, stage_no, _ in self.deadlines(cycle):
            entries = work.get(stage_no, [])
            if what == "intake" or not entries:
                continue
            if what == "plenary":
                self._plenary(cycle, entries)
                continue
            stage = self.p.stages[stage_no - 1]
            pids = [pid for pid, _ in entries]
            if what == "edit":
                for pid in pids:
                    self._result.proposals[pid].revision = self._frozen_revision(pid, cycle, stage_no, committees[(stage_no, pid)])
            elif what == "amendments":
                valid[stage_no] = self._proposed_amendments(cycle, stage_no, stage, pids, committees)
            elif what == "amendment ballots":
                self._amendment_ballots(cycle, stage_no, stage, pids, committees, valid[stage_no])
            elif what == "ballots":
                promoted[stage_no + 1] += self._stage_ballot(cycle, stage_no, stage, pids, committees)
        return promoted

    def _stage_ballot(self, cycle, stage_no, stage, pids, committees) -> list[tuple[bytes, tuple[bytes, ...]]]:
        """The promote/kill ballots of one stage: passing proposals ranked by support, ties
        broken by beacon randomness, the first ``slots`` promoted."""
        result = self._result
        opens_work, opens, closes = self.windows(cycle, stage_no)
        specs = {ballot_key(pid, cycle, stage_no, None): BallotSpec(tuple(sorted(set(committees[(stage_no, pid)]))),
                                                                    ("promote", "kill"), result.proposals[pid].revision, opens)
                 for pid in pids}
        decision = self._decide("ballots", cycle, stage_no, closes, specs)
        tie_randomness = self._randomness(decision.seed_round, f"The stage {stage_no} outcomes of cycle {cycle}")
        passing = []
        promoted = []
        for pid in pids:
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
                promoted.append((pid, revision))
            else:
                ballot.outcome = NOT_ADVANCED
                ballot.reason = f"{-neg} promote votes, rank {rank}: all {stage.slots} slots went to stronger proposals"
                state.move(NOT_ADVANCED, cycle, closes, stage_no, ballot.reason)
        return promoted

    def reached(self, what: str, cycle: int, stage: int) -> bool:
        """The last evaluation reached this deadline: it needs a decision, and the ballots it
        closes are known (an honest panel member can sign its cut-off)."""
        return (what, cycle, stage) in self._specs

    # ---- texts

    def change_problem(self, r: Record, author: bytes, editors, draw_round: int, flood: set[bytes]) -> str | None:
        """Why a document change does not count towards the text a drafting committee votes on
        (None if it may): the rules an honest cut-off applies and the tally explains."""
        per_round = self.charter.limits.max_doc_changes_per_round
        if r.id in flood:
            return f"its author made more than the charter's {per_round} document changes in one beacon round"
        if r.author != author and r.author not in editors:
            return "its author is neither an author of the proposal nor on its drafting committee"
        if r.author != author and r.round < draw_round:
            return "it was made before the committee was drawn"
        if not self._saw(r):
            return "it names a beacon round whose randomness it does not carry"
        return None

    def drafted_heads(self, pid: bytes, cycle: int, stage_no: int, before: int, forked: set[bytes] = frozenset()) -> tuple[bytes, ...]:
        """The heads of the text a proposal's author and drafting committee made before round
        ``before`` (the changes an honest cut-off of the editing window holds), leaving out the
        changes of ``forked`` authors (and what depends on them)."""
        state = self._result.proposals.get(pid)
        members = self._committees.get(cycle, {}).get((stage_no, pid), ())
        if state is None:
            return ()
        changes = self._inputs.changes.get(pid, [])
        flood = over_rate(changes, self.charter.limits.max_doc_changes_per_round)
        d = self.draw_round(cycle)
        allowed = [r for r in changes if r.round < before and r.author not in forked
                   and self.change_problem(r, state.author, set(members), d, flood) is None]
        return heads_of(allowed)[0]

    def _frozen_revision(self, pid: bytes, cycle: int, stage_no: int, members) -> tuple[bytes, ...]:
        """The text the drafting committee votes on: the document as its author and the committee
        left it when the editing window closed (as decided at that deadline).  Under the panel
        rule a change counts iff more than half of the cut-offs used hold it (its heads name it
        or a change that depends on it); document changes are content-addressed, so the decided
        heads fix the exact text.  Changes that do not count are listed, each with a reason."""
        changes = self._inputs.changes.get(pid, [])
        _, opens, _ = self.windows(cycle, stage_no)
        if not changes and self.p.deadline_rule == DECLARED:
            return revision_at(pid, Deadline("edit", cycle, stage_no, 0))
        decision = self._decide("edit", cycle, stage_no, opens)
        author = self._result.proposals[pid].author
        editors = set(members)
        d = self.draw_round(cycle)
        flood = over_rate(changes, self.charter.limits.max_doc_changes_per_round)
        if decision.items is None:
            allowed = []
            for r in sorted(changes, key=lambda r: r.id):
                problem = "it did not make the end of the editing window" if not decision.includes(r) else \
                    self.change_problem(r, author, editors, d, flood)
                if problem:
                    self._ignore(pid, r, problem)
                else:
                    allowed.append(r)
            heads, left_out = heads_of(allowed)
            for r in left_out:
                self._ignore(pid, r, "it depends on a change that does not count")
            return heads or revision_at(pid, decision.deadline)
        counted = self._decided_changes(decision.revisions.get(pid, []), decision.used)
        for r in sorted(changes, key=lambda r: r.id):
            if r.body.hash not in counted:
                self._ignore(pid, r, ("it was made after the editing window closed" if r.round >= opens else None)
                             or self.change_problem(r, author, editors, d, flood)
                             or "it was not in the text more than half of the panel's cut-offs held at the end of the editing window")
        heads, _ = heads_of([self._inputs.change_by_hash[h] for h in counted])
        return heads or revision_at(pid, decision.deadline)

    def _decided_changes(self, named: list[tuple[bytes, ...]], used: int) -> set[bytes]:
        """The changes more than half of ``used`` cut-offs hold: each cut-off holds the closure of
        the heads it named (over the changes this replica has)."""
        counts: dict[bytes, int] = defaultdict(int)
        for heads, times in Counter(named).items():  # honest cut-offs mostly name the same heads
            for h in self._closure(heads):
                counts[h] += times
        return {h for h, n in counts.items() if n > used // 2}

    def _closure(self, heads) -> set[bytes]:
        return closure(heads, self._inputs.change_by_hash)

    def _ignore(self, pid: bytes, r: Record, reason: str) -> None:
        self._result.ignored_changes.append({"proposal": pid.hex(), "change": r.body.hash.hex(), "author": r.author.hex(),
                                             "reason": reason})

    # ---- amendments

    def amendment_problem(self, r: Record, members, base: tuple[bytes, ...], draw_round: int) -> str | None:
        """Why an amendment cannot be put to the vote (None if it can).  Its heads must be its
        proposer's own signed changes to the proposal, each descending from every head of the
        revision the committee received (DESIGN.md §8: a vote names an exact text)."""
        if r.author not in members:
            return "its author is not a member of this committee"
        if r.round < draw_round:
            return "it was proposed before the committee was drawn"
        if r.body.base != base:
            return "it amends another revision than the one the committee received"
        if not self._saw(r):
            return "it names a beacon round whose randomness it does not carry"
        by_hash = self._inputs.change_by_hash
        pid = r.body.proposal
        base_changes = {h for h in base if h in by_hash}
        for head in r.body.heads:
            change = by_hash.get(head)
            if change is None or change.author != r.author or change.body.proposal != pid:
                return "its heads are not document changes its proposer signed for this proposal"
            if not base_changes <= self._closure((head,)):
                return "its text does not descend from the revision the committee received"
        return None

    def _proposed_amendments(self, cycle, stage_no, stage, pids, committees) -> dict[bytes, list[Record]]:
        """Stage-2 amendments proposed in the amendment window, per proposal: those that can be
        put to the vote (the others are listed as refused ballots, with a reason)."""
        result = self._result
        d = self.draw_round(cycle)
        propose_close = d + stage.amend_rounds
        vote_close = propose_close + stage.amend_ballot_rounds
        proposed = self._decide("amendments", cycle, stage_no, propose_close)
        valid: dict[bytes, list[Record]] = {}
        for pid in pids:
            members = committees[(stage_no, pid)]
            base = result.proposals[pid].revision
            candidates = list(self._inputs.amends.get((pid, cycle), []))
            if proposed.items is not None:
                known = {r.id for r in candidates}
                candidates += [r for i in sorted(proposed.items - known) if (r := self._inputs.evidence.get(i)) is not None
                               and isinstance(r.body, Amend) and r.body.proposal == pid and r.body.cycle == cycle]
            per_author: dict[bytes, int] = defaultdict(int)
            valid[pid] = []
            for r in sorted(candidates, key=lambda r: (r.author, r.seq, r.id)):
                if not proposed.includes(r):
                    problem = "it did not make the amendment deadline"
                else:
                    problem = self.amendment_problem(r, set(members), base, d)
                    if problem is None:
                        per_author[r.author] += 1
                        if per_author[r.author] > AMENDMENTS_PER_MEMBER:
                            problem = ("only a member's first amendment to a proposal is put to the vote (an amendment may "
                                       "hold any number of edits)" if AMENDMENTS_PER_MEMBER == 1 else
                                       f"only a member's first {AMENDMENTS_PER_MEMBER} amendments to a proposal are put to the vote")
                if problem:
                    refused = Ballot("amendment", pid, cycle, stage_no, propose_close, vote_close, r.body.heads, len(members), amendment=r.id)
                    refused.outcome, refused.reason = "refused", problem
                    result.ballots.append(refused)
                else:
                    valid[pid].append(r)
        return valid

    def _amendment_ballots(self, cycle, stage_no, stage, pids, committees, valid: dict[bytes, list[Record]]) -> None:
        """Each amendment adopted or rejected by a majority of the committee's nominal size
        (absent members count as rejecting, as they count as not promoting:
        docs/legislature.md); the adopted ones are merged (the union of their heads) before the
        final vote."""
        result = self._result
        d = self.draw_round(cycle)
        propose_close = d + stage.amend_rounds
        vote_close = propose_close + stage.amend_ballot_rounds
        needed = stage.committee // 2 + 1
        specs = {ballot_key(pid, cycle, stage_no, r.id): BallotSpec(tuple(sorted(set(committees[(stage_no, pid)]))), ("adopt", "reject"),
                                                                    r.body.heads, propose_close)
                 for pid, rs in valid.items() for r in rs}
        if not specs:
            return
        votes_due = self._decide("amendment ballots", cycle, stage_no, vote_close, specs)
        for pid in pids:
            members = committees[(stage_no, pid)]
            adopted_heads: set[bytes] = set()
            for r in sorted(valid[pid], key=lambda r: r.id):
                ballot = Ballot("amendment", pid, cycle, stage_no, propose_close, vote_close, r.body.heads, len(members), amendment=r.id)
                result.ballots.append(ballot)
                self._tally(ballot, self._inputs.votes.get((pid, cycle, stage_no, r.id), []), members, ("adopt", "reject"),
                            votes_due, ballot_key(pid, cycle, stage_no, r.id))
                adopt = ballot.counts.get("adopt", 0)
                if adopt >= needed:
                    ballot.outcome, ballot.reason = "adopted", f"{adopt} of {stage.committee} adopted it; {needed} needed"
                    adopted_heads.update(r.body.heads)
                else:
                    ballot.outcome, ballot.reason = "rejected", f"{adopt} of {stage.committee} adopted it; {needed} needed"
            if adopted_heads:
                result.proposals[pid].revision = tuple(sorted(adopted_heads))[:MAX_HEADS]

    # ---- ballots

    def _plenary(self, cycle, entries) -> None:
        if not entries:
            return
        result = self._result
        stage_no = len(self.p.stages) + 1
        opens_work, opens, closes = self.windows(cycle, stage_no)
        roster = self.roster_of(cycle)
        specs = {ballot_key(pid, cycle, stage_no, None): BallotSpec(tuple(sorted(set(roster))), ("yes", "no"), revision, opens)
                 for pid, revision in entries}
        decision = self._decide("plenary", cycle, stage_no, closes, specs)
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

    def vote_problem(self, r: Record, spec: BallotSpec) -> tuple[str, str] | None:
        """Why a member's first vote on a ballot cannot count (None if it can), whatever its timing."""
        body: Vote = r.body
        if body.choice not in spec.choices:
            return ("wrong_choice", f"this ballot's choices are {' and '.join(spec.choices)}")
        if body.revision != spec.revision:
            return ("wrong_revision", "the vote names another revision of the text than the one on the ballot")
        if r.round < spec.opens:
            return ("too_early", f"cast before the ballot opened at round {spec.opens}")
        if not self._saw(r):
            return ("unseen_round", "the vote names a beacon round whose randomness it does not carry")
        return None

    def _tally(self, ballot: Ballot, cast: list[Record], electorate: Iterable[bytes], choices: tuple[str, ...],
               decision: Decision, key: bytes) -> None:
        """Count one vote per member: the member's first vote on the ballot (by the author's chain
        order), if it made the deadline and is valid.  Under the panel rule the counts are the
        decided facts themselves (who voted which way), so a vote signed or forked later changes
        nothing; every vote that does not count is listed with a reason."""
        counts = {c: 0 for c in choices}
        members = sorted(set(electorate))
        index = {m: i for i, m in enumerate(members)}
        spec = BallotSpec(tuple(members), tuple(choices), ballot.revision, ballot.opens)
        counted: set[bytes] = set()
        if decision.ballots is not None:
            first_bits, second_bits = decision.ballots.get(key, (b"", b""))
            for i, m in enumerate(members):
                a, b = has_bit(first_bits, i), has_bit(second_bits, i)
                if a and b:
                    ballot.neutralised.append((m, bytes(32), "equivocated",
                                               "the panel's cut-offs hold both choices of this member: neither counts"))
                elif a or b:
                    counts[choices[0] if a else choices[1]] += 1
                    counted.add(m)
        first: set[bytes] = set()
        for r in sorted(cast, key=lambda r: (r.author, r.seq, r.id)):
            problem = None
            if r.author not in index:
                problem = ("not_a_member", "the voter is not a member of this ballot's electorate")
            elif r.author in first:
                problem = ("second_vote", "only a member's first vote on a ballot counts")
            else:
                first.add(r.author)
                if r.author in counted:
                    continue
                if decision.ballots is not None:
                    problem = self.vote_problem(r, spec) or ("late", f"it did not make the deadline at round {ballot.closes} "
                                                              "(not in the panel's decided set)")
                elif not decision.includes(r):
                    problem = ("late", f"it did not make the deadline at round {ballot.closes} (it names round {r.round})")
                else:
                    problem = self.vote_problem(r, spec)
                    if problem is None:
                        counts[r.body.choice] += 1
                        continue
            ballot.neutralised.append((r.author, r.id, *problem))
        ballot.counts = counts
