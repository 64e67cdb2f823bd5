"""Single-shot Byzantine agreement for one deadline, in the style of Tendermint.

The algorithm is Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT consensus"
(2018), for a single height: rounds of propose → prevote → precommit, a rotating proposer, locking
on a value once more than two thirds prevoted it, and timeouts.  Here timeouts are counted in
beacon rounds, never on a local clock.

It is a pure state machine: :meth:`Agreement.start`, :meth:`Agreement.receive` (a message from a
panel member) and :meth:`Agreement.tick` (a new beacon round) return the messages this member must
send; the node shell signs them, stores them durably, and gossips them.  Nothing here touches a
network or a clock.

With ``n`` panel members, a *quorum* is more than two thirds (``n - ⌊(n - 1) / 3⌋``, i.e. 2f+1
when n = 3f+1) and a *skip* is more than a third (f+1).  Safety holds while at most ``f`` members
are Byzantine; liveness also needs the honest ones connected long enough.

Values are opaque bytes; their id is ``sha256(value)``.  Which values are acceptable is the
caller's ``valid`` predicate (for cut-off panels: the set follows from enough signed cut-offs).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

PROPOSE, PREVOTE, PRECOMMIT = "propose", "prevote", "precommit"
NIL = None


def value_id(value: bytes) -> bytes:
    return hashlib.sha256(b"klero/agreement-value/v1" + value).digest()


def quorum_size(n: int) -> int:
    """More than two thirds of n (2f + 1 for n = 3f + 1)."""
    return n - (n - 1) // 3


def skip_size(n: int) -> int:
    """More than a third of n (f + 1): at least one honest member among them."""
    return (n - 1) // 3 + 1


@dataclass(frozen=True, slots=True)
class Proposal:
    round: int
    value: bytes
    valid_round: int  # -1, or the round in which the proposer saw a quorum of prevotes for value


@dataclass(frozen=True, slots=True)
class Vote:
    """A prevote or precommit; ``value`` is a value id, or None for nil."""

    step: str
    round: int
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two different messages of one member for the same step and round: a fraud proof."""

    member: int
    step: str
    round: int
    first: object
    second: object


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Timeouts in beacon rounds: ``base + round * growth`` (growth gives slow networks a chance)."""

    propose: int = 2
    prevote: int = 1
    precommit: int = 1
    growth: int = 1

    def of(self, step: str, round_: int) -> int:
        return {PROPOSE: self.propose, PREVOTE: self.prevote, PRECOMMIT: self.precommit}[step] + round_ * self.growth


@dataclass
class Agreement:
    """One panel member's view of the agreement on one deadline."""

    n: int
    me: int
    #: validity of a proposed value (e.g. it follows from enough signed cut-offs)
    valid: Callable[[bytes], bool]
    #: the value this member proposes when it is the proposer and holds no valid value yet
    get_value: Callable[[], bytes | None]
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: rotates the proposer between deadlines so no member always starts
    offset: int = 0
    #: a time-dependent condition for prevoting a *fresh* proposal (for cut-off panels: the beacon
    #: round the value names is not out yet, so nobody chose the value knowing that randomness).
    #: As with Tendermint's proposer-based timestamps, it is checked only for proposals without a
    #: valid round: a re-proposed value already won a quorum of prevotes while it was fresh, and
    #: re-checking it would let stale locks block the panel forever.  Deciding never checks it.
    fresh: Callable[[bytes, int], bool] = lambda value, beacon_round: True

    round: int = 0
    step: str = PROPOSE
    locked_value: bytes | None = None
    locked_round: int = -1
    valid_value: bytes | None = None
    valid_round: int = -1
    decision: bytes | None = None
    decided_round: int = -1
    beacon_round: int = 0
    #: the first proposal received for each round (the one this member prevotes on)
    proposals: dict[int, Proposal] = field(default_factory=dict)
    #: every distinct proposal per round and value id (an equivocating proposer may send several)
    proposed: dict[int, dict[bytes, Proposal]] = field(default_factory=dict)
    #: (step, round) -> sender -> every distinct value the sender voted.  Equivocating votes are
    #: counted for each value (as Tendermint counts every message) and also kept as evidence:
    #: ignoring them would let one Byzantine member strand honest ones on different views.
    votes: dict[tuple[str, int], dict[int, set]] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    _timers: list[tuple[int, str, int]] = field(default_factory=list)
    _once: set = field(default_factory=set)
    _values: dict[bytes, bytes] = field(default_factory=dict)  # id -> value
    _validity: dict[bytes, bool] = field(default_factory=dict)
    _started: bool = False
    _early: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 <= self.me < self.n:
            raise ValueError("member index out of range")
        self.quorum = quorum_size(self.n)
        self.skip = skip_size(self.n)

    # ------------------------------------------------------------------ inputs

    def proposer(self, round_: int) -> int:
        return (round_ + self.offset) % self.n

    def start(self, beacon_round: int) -> list:
        """Begin (round 0) at ``beacon_round``; returns messages to send.  Only the first call
        counts; messages that arrived before it are handled right after."""
        if self._started:
            return []
        self._started = True
        self.beacon_round = max(self.beacon_round, beacon_round)
        out = self._start_round(0)
        early, self._early = self._early, []
        for sender, message in early:
            out += self.receive(sender, message)
        return out

    def receive(self, sender: int, message) -> list:
        """Handle a message from member ``sender``; returns messages to send."""
        if self.decision is not None or not 0 <= sender < self.n:
            return []
        if not self._started:
            if len(self._early) < 64 * self.n:  # bounded: a flood before start is dropped
                self._early.append((sender, message))
            return []
        if isinstance(message, Proposal):
            if message.round < 0 or sender != self.proposer(message.round):
                return []
            vid = value_id(message.value)
            same_round = self.proposed.setdefault(message.round, {})
            if vid in same_round:
                return []
            if same_round:
                self.evidence.append(Evidence(sender, PROPOSE, message.round, next(iter(same_round.values())), message))
            same_round[vid] = message
            self.proposals.setdefault(message.round, message)
            self._values[vid] = message.value
        elif isinstance(message, Vote):
            if message.step not in (PREVOTE, PRECOMMIT) or message.round < 0:
                return []
            box = self.votes.setdefault((message.step, message.round), {})
            values = box.setdefault(sender, set())
            if message.value in values:
                return []
            if values and len(values) == 1:  # the first conflicting vote is the proof; more add nothing
                self.evidence.append(Evidence(sender, message.step, message.round, next(iter(values)), message.value))
            values.add(message.value)
        else:
            return []
        return self._progress()

    def tick(self, beacon_round: int) -> list:
        """A new beacon round arrived: fire the timeouts that are due."""
        if beacon_round <= self.beacon_round:
            return []
        self.beacon_round = beacon_round
        out: list = []
        due = [t for t in self._timers if t[0] <= beacon_round]
        self._timers = [t for t in self._timers if t[0] > beacon_round]
        for _, step, round_ in sorted(due):
            out += self._timeout(step, round_)
        return out + self._progress()

    def poll(self) -> list:
        """The proposer of the current round, still in its propose step without having proposed
        (its value was not ready when the round began, e.g. too few cut-offs had arrived), asks
        for a value again.  Tendermint lets a proposer propose at any time in the propose step;
        without this a late quorum of cut-offs costs a whole round of timeouts."""
        if (not self._started or self.decision is not None or self.step != PROPOSE
                or self.proposer(self.round) != self.me or self.round in self.proposed):
            return []
        value = self.valid_value if self.valid_value is not None else self.get_value()
        if value is None:
            return []
        proposal = Proposal(self.round, value, self.valid_round)
        self.proposals.setdefault(self.round, proposal)
        self.proposed.setdefault(self.round, {}).setdefault(value_id(value), proposal)
        self._values[value_id(value)] = value
        return [proposal] + self._progress()

    # ------------------------------------------------------------------ the algorithm

    def _is_valid(self, value: bytes) -> bool:
        vid = value_id(value)
        if vid not in self._validity:
            self._validity[vid] = bool(self.valid(value))
        return self._validity[vid]

    def _votable(self, value: bytes) -> bool:
        return self._is_valid(value) and bool(self.fresh(value, self.beacon_round))

    def _count(self, step: str, round_: int, value=...) -> int:
        """Distinct senders of a step in a round (for one value, or any)."""
        box = self.votes.get((step, round_), {})
        if value is ...:
            return len(box)
        return sum(1 for values in box.values() if value in values)

    def _start_round(self, round_: int) -> list:
        self.round, self.step = round_, PROPOSE
        if self.proposer(round_) == self.me:
            value = self.valid_value if self.valid_value is not None else self.get_value()
            if value is not None:
                proposal = Proposal(round_, value, self.valid_round)
                self.proposals.setdefault(round_, proposal)
                self.proposed.setdefault(round_, {}).setdefault(value_id(value), proposal)
                self._values[value_id(value)] = value
                out = [proposal]
                return out + self._progress()
        self._schedule(PROPOSE, round_)
        return self._progress()

    def _schedule(self, step: str, round_: int) -> None:
        self._timers.append((self.beacon_round + self.timeouts.of(step, round_), step, round_))

    def _send(self, step: str, value: bytes | None) -> list:
        vote = Vote(step, self.round, value)
        self.votes.setdefault((step, self.round), {}).setdefault(self.me, set()).add(value)
        self.step = step
        return [vote]

    def _timeout(self, step: str, round_: int) -> list:
        if self.decision is not None or round_ != self.round:
            return []
        if step == PROPOSE and self.step == PROPOSE:
            return self._send(PREVOTE, NIL)
        if step == PREVOTE and self.step == PREVOTE:
            return self._send(PRECOMMIT, NIL)
        if step == PRECOMMIT:
            return self._start_round(round_ + 1)
        return []

    def _progress(self) -> list:
        """Apply every rule of Algorithm 1 that is enabled, until none is."""
        out: list = []
        changed = True
        while changed and self.decision is None:
            changed = False
            for rule in (self._rule_decide, self._rule_skip, self._rule_propose_fresh, self._rule_propose_locked,
                         self._rule_prevote_timer, self._rule_lock, self._rule_nil_precommit, self._rule_precommit_timer):
                produced = rule()
                if produced is not None:
                    out += produced
                    changed = True
                    break
        return out

    def _rule_decide(self):
        # upon PROPOSAL(r, v, *) and 2f+1 PRECOMMIT(r, id(v)) while decision = nil
        for (step, r), box in self.votes.items():
            if step != PRECOMMIT:
                continue
            for vid, p in self.proposed.get(r, {}).items():
                if sum(1 for values in box.values() if vid in values) >= self.quorum and self._is_valid(p.value):
                    self.decision, self.decided_round = p.value, r
                    return []
        return None

    def _rule_skip(self):
        # upon f+1 messages of a higher round: start that round
        later = {r for (_, r) in self.votes if r > self.round} | {r for r in self.proposed if r > self.round}
        for r in sorted(later, reverse=True):
            senders = set()
            for step in (PREVOTE, PRECOMMIT):
                senders |= set(self.votes.get((step, r), {}))
            if r in self.proposed:
                senders.add(self.proposer(r))
            if len(senders) >= self.skip:
                return self._start_round(r)
        return None

    def _rule_propose_fresh(self):
        p = self.proposals.get(self.round)
        if self.step != PROPOSE or p is None or p.valid_round != -1:
            return None
        # Tendermint prevotes a fresh value unless locked on another.  We also refuse one once a
        # quorum prevoted another value (``valid_value``): a proposer could otherwise choose
        # between re-proposing that value, whose seed randomness may be public by now, and a
        # fresh one (docs/finality.md).  Honest proposers re-propose ``valid_value``, so this
        # costs no liveness.
        ok = (self._votable(p.value) and (self.locked_round == -1 or self.locked_value == p.value)
              and (self.valid_round == -1 or self.valid_value == p.value))
        return self._send(PREVOTE, value_id(p.value) if ok else NIL)

    def _rule_propose_locked(self):
        if self.step != PROPOSE:
            return None
        for p in self.proposed.get(self.round, {}).values():
            if not 0 <= p.valid_round < self.round or self._count(PREVOTE, p.valid_round, value_id(p.value)) < self.quorum:
                continue
            ok = self._is_valid(p.value) and (self.locked_round <= p.valid_round or self.locked_value == p.value)
            return self._send(PREVOTE, value_id(p.value) if ok else NIL)
        return None

    def _rule_prevote_timer(self):
        key = ("prevote-timer", self.round)
        if self.step == PREVOTE and key not in self._once and self._count(PREVOTE, self.round) >= self.quorum:
            self._once.add(key)
            self._schedule(PREVOTE, self.round)
            return []
        return None

    def _rule_lock(self):
        # upon PROPOSAL(r, v, *) and 2f+1 PREVOTE(r, id(v)) while valid(v) and step >= prevote, first time
        key = ("lock", self.round)
        if key in self._once or self.step == PROPOSE:
            return None
        for vid, p in self.proposed.get(self.round, {}).items():
            if self._count(PREVOTE, self.round, vid) >= self.quorum and self._is_valid(p.value):
                break
        else:
            return None
        self._once.add(key)
        out: list = []
        if self.step == PREVOTE:
            self.locked_value, self.locked_round = p.value, self.round
            out = self._send(PRECOMMIT, vid)
        self.valid_value, self.valid_round = p.value, self.round
        return out

    def _rule_nil_precommit(self):
        if self.step == PREVOTE and self._count(PREVOTE, self.round, NIL) >= self.quorum:
            return self._send(PRECOMMIT, NIL)
        return None

    def _rule_precommit_timer(self):
        key = ("precommit-timer", self.round)
        if key not in self._once and self._count(PRECOMMIT, self.round) >= self.quorum:
            self._once.add(key)
            self._schedule(PRECOMMIT, self.round)
            return []
        return None


# ---------------------------------------------------------------------- certificates


@dataclass(frozen=True, slots=True)
class Certificate:
    """A decision anyone can check: a value and a quorum of precommits for it in one round."""

    round: int
    value: bytes
    signers: tuple[int, ...]

    def check(self, n: int) -> bool:
        return len(set(self.signers)) >= quorum_size(n) and all(0 <= s < n for s in self.signers)


def certificate_of(agreement: Agreement) -> Certificate | None:
    """The certificate behind a member's decision (None if it has not decided)."""
    if agreement.decision is None:
        return None
    vid = value_id(agreement.decision)
    box = agreement.votes.get((PRECOMMIT, agreement.decided_round), {})
    return Certificate(agreement.decided_round, agreement.decision, tuple(sorted(m for m, values in box.items() if vid in values)))
