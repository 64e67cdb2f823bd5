"""The single-shot agreement (``consensus.agreement``) over a seeded hostile in-memory network.

A whole panel runs in one process: honest members are :class:`Agreement` state machines, Byzantine
members are :class:`Byzantine` actors, and :class:`HostileNetwork` moves their messages.  The
network delays (in delivery steps and in beacon rounds), duplicates, reorders and partitions; a
"dropped" message is one the sync protocol repairs a few beacon rounds later, so every message an
honest member received is eventually received by every honest member (gossip).  Beacon rounds
advance when the network is quiescent or every ``steps_per_round`` deliveries, and each member sees
a new round at its own moment.

Every run is built from one seed by :func:`case`; a failing assertion prints the seed and the call
that replays it.  :class:`Script` drives a panel by hand for targeted schedules (locking,
equivocation, and the minimal reproductions of the known bugs).

Two bugs this suite found are fixed and kept as regression tests with their minimal
reproductions: an equivocator's second vote used to be filed as evidence and never counted (one
equivocating member could strand an honest member or stall the panel), and messages that reached
a member before its ``start`` made it send a second, different precommit.
"""

from __future__ import annotations

import heapq
import random
from collections import defaultdict
from dataclasses import dataclass

import pytest

from consensus.agreement import (
    NIL,
    PRECOMMIT,
    PREVOTE,
    PROPOSE,
    Agreement,
    Certificate,
    Proposal,
    Timeouts,
    Vote,
    certificate_of,
    quorum_size,
    skip_size,
    value_id,
)

# ---------------------------------------------------------------------- values


def valid(value: bytes) -> bool:
    """The test's validity predicate: honest and coalition values are valid, ``bad:`` ones are not."""
    return value.startswith(b"ok:")


def honest_value(member: int) -> bytes:
    """What an honest member proposes when it holds no valid value yet (each a different set)."""
    return b"ok:member-%d" % member


VALUE_A, VALUE_B = b"ok:coalition-A", b"ok:coalition-B"
INVALID = b"bad:not-enough-cutoffs"


def faults(n: int) -> int:
    return (n - 1) // 3


# ---------------------------------------------------------------------- the network


@dataclass(frozen=True)
class Schedule:
    """How hostile the network is.  Every delay ends, every partition heals: eventually connected."""

    max_delay: int = 60  # a message waits up to this many delivery steps (so they reorder)
    p_dup: float = 0.1  # a message is delivered twice (the copy with its own delay)
    p_late: float = 0.1  # a message arrives 1..late beacon rounds later
    late: int = 2
    p_drop: float = 0.05  # a dropped message, repaired by sync 2..repair beacon rounds later
    repair: int = 6
    tick_jitter: int = 30  # members see a new beacon round up to this many steps apart
    partitions: tuple = ()  # (from_round, to_round, group): group and the rest cannot talk meanwhile
    relay: bool = True  # honest members gossip on what Byzantine members sent them point to point
    steps_per_round: int | None = None  # the beacon advances every K deliveries, or when quiescent

    def healed(self) -> int:
        """The first beacon round from which no partition is active."""
        return max((end for _, end, _ in self.partitions), default=0)


CALM = Schedule(max_delay=20, p_dup=0.0, p_late=0.0, p_drop=0.0, tick_jitter=5)


class HostileNetwork:
    """Seeded in-memory delivery of signed messages between panel members.

    Items in flight are ``("m", signer, message, to, gossip)`` (a message; ``gossip`` marks a
    Byzantine point-to-point send, which honest receivers pass on) and ``("t", member, round)`` (a
    member learns a new beacon round).  They wait in a heap keyed by a random delivery step, so
    they come out of order; late and dropped messages wait for a later beacon round; messages
    across an active partition are held until it heals.
    """

    def __init__(self, n: int, honest: set[int], schedule: Schedule, rng: random.Random):
        self.n, self.honest, self.schedule, self.rng = n, honest, schedule, rng
        self.step = 0
        self.beacon = 0
        self.deliveries = 0
        #: distinct signed messages (signer, message): what the node shells would sign and store
        self.signed: set = set()
        self._heap: list = []
        self._seq = 0
        self._later: dict[int, list] = defaultdict(list)
        self._held: list = []
        self._relayed: set = set()

    # -- sending

    def broadcast(self, sender: int, messages: list) -> None:
        """An honest member's messages: to everyone, each copy with its own fate."""
        for message in messages:
            self.signed.add((sender, message))
            for to in range(self.n):
                if to != sender:
                    self._post(("m", sender, message, to, False))

    def send(self, signer: int, message, to: int) -> None:
        """A Byzantine send to one member (``signer`` may be another member: a replay)."""
        self.signed.add((signer, message))
        self._post(("m", signer, message, to, True))

    def relay(self, item) -> None:
        """An honest member received a point-to-point message: gossip brings it to every honest member."""
        _, signer, message, to, _ = item
        if not self.schedule.relay or (signer, message) in self._relayed:
            return
        self._relayed.add((signer, message))
        for other in self.honest:
            if other != to and other != signer:
                self._post(("m", signer, message, other, False))

    def new_round(self, beacon: int) -> None:
        """The beacon published ``beacon``: release what waited for it, tell every member."""
        self.beacon = beacon
        for due in sorted(r for r in self._later if r <= beacon):
            for item in self._later.pop(due):
                self._push(item, self.schedule.max_delay)
        held, self._held = self._held, []
        for item in held:
            self._push(item, self.schedule.max_delay)  # pop holds it again if still cut off
        for member in range(self.n):
            self._push(("t", member, beacon), self.schedule.tick_jitter)

    def _post(self, item) -> None:
        s, rng = self.schedule, self.rng
        r = rng.random()
        if r < s.p_drop:
            self._later[self.beacon + rng.randint(2, max(2, s.repair))].append(item)
        elif r < s.p_drop + s.p_late:
            self._later[self.beacon + rng.randint(1, max(1, s.late))].append(item)
        else:
            self._push(item, s.max_delay)
        if rng.random() < s.p_dup:
            self._push(item, 3 * s.max_delay)

    def _push(self, item, spread: int) -> None:
        heapq.heappush(self._heap, (self.step + self.rng.randint(0, spread), self._seq, item))
        self._seq += 1

    # -- delivering

    def cut(self, a: int, b: int) -> bool:
        for start, end, group in self.schedule.partitions:
            if start <= self.beacon < end and (a in group) != (b in group):
                return True
        return False

    def pop(self):
        """The next item to deliver, or None when the network is quiescent."""
        while self._heap:
            _, _, item = heapq.heappop(self._heap)
            self.step += 1
            if item[0] == "m" and self.cut(item[1], item[3]):
                self._held.append(item)
                continue
            if item[0] == "m":
                self.deliveries += 1
            return item
        return None


# ---------------------------------------------------------------------- Byzantine members

BYZANTINE_KINDS = ("silent", "equivocate", "invalid", "random", "replay", "mixed")
#: kinds that never send two different messages for one step and round (see the liveness bug below)
CONSISTENT_KINDS = ("silent", "invalid", "random", "replay")


class Byzantine:
    """A Byzantine panel member.  It follows the protocol's timing with an honest shadow state
    machine and rewrites what the shadow would send:

    * ``silent``: sends nothing;
    * ``equivocate``: per recipient, a proposal or vote for the coalition value of the recipient's
      side (or nil): two different messages for one step and round;
    * ``invalid``: proposes a value ``valid`` rejects and votes for it;
    * ``random``: votes for random value ids (also in later rounds), proposes random values with
      random valid rounds; the same message to everyone;
    * ``replay``: behaves, and replays old messages (its own and others', still validly signed);
    * ``mixed``: a random one of the above per message, plus replays.
    """

    def __init__(self, kind: str, me: int, panel: "Panel"):
        self.kind, self.me, self.panel = kind, me, panel
        self.n = panel.n
        self.rng = random.Random(panel.rng.getrandbits(64))
        self.shadow = Agreement(self.n, me, valid, lambda: VALUE_A, timeouts=panel.timeouts, offset=panel.offset)
        self.seen: list = []
        others = [m for m in range(self.n) if m != me]
        self.others = others

    def start(self, beacon: int) -> None:
        if self.kind != "silent":
            self._emit(self.shadow.start(beacon))

    def receive(self, sender: int, message) -> None:
        if self.kind == "silent":
            return
        if len(self.seen) < 4000:
            self.seen.append((sender, message))
        self._emit(self.shadow.receive(sender, message))
        if self.kind in ("replay", "mixed") and self.rng.random() < 0.02:
            self._replay(1)

    def tick(self, beacon: int) -> None:
        if self.kind == "silent":
            return
        self._emit(self.shadow.tick(beacon))
        if self.kind in ("replay", "mixed"):
            self._replay(self.rng.randint(1, self.n))

    # -- rewriting

    def _emit(self, out: list) -> None:
        for message in out:
            how = self.kind
            if how == "mixed":
                how = self.rng.choice(("replay", "silent", "equivocate", "equivocate", "invalid", "random"))
            if how == "replay":
                self._to_all(message)
            elif how == "equivocate":
                self._equivocate(message)
            elif how == "invalid":
                self._to_all(self._invalid(message))
            elif how == "random":
                self._to_all(self._random(message))

    def _to_all(self, message) -> None:
        self.seen.append((self.me, message))
        for to in self.others:
            self.panel.net.send(self.me, message, to)

    def _equivocate(self, message) -> None:
        for to in self.others:
            if self.rng.random() < 0.1:
                continue  # and some get nothing
            value = (VALUE_A, VALUE_B)[self.panel.side(to)]
            if isinstance(message, Proposal):
                variant = Proposal(message.round, value, message.valid_round if self.rng.random() < 0.5 else -1)
            else:
                variant = Vote(message.step, message.round, value_id(value) if self.rng.random() < 0.8 else NIL)
            self.panel.net.send(self.me, variant, to)

    def _invalid(self, message):
        if isinstance(message, Proposal):
            return Proposal(message.round, INVALID, -1)
        return Vote(message.step, message.round, value_id(INVALID))

    def _random(self, message):
        rng = self.rng
        values = [VALUE_A, VALUE_B, INVALID, honest_value(rng.randrange(self.n))]
        if isinstance(message, Proposal):
            return Proposal(message.round, rng.choice(values), rng.randint(-1, message.round))
        choice = rng.choice([NIL, rng.randbytes(32)] + [value_id(v) for v in values])
        return Vote(message.step, message.round + rng.choice((0, 0, 0, 1, 2, 5)), choice)

    def _replay(self, count: int) -> None:
        for _ in range(count):
            if not self.seen:
                return
            signer, message = self.rng.choice(self.seen)
            self.panel.net.send(signer, message, self.rng.choice(self.others))


# ---------------------------------------------------------------------- a whole panel


class Panel:
    """n members (some Byzantine) running one agreement over a :class:`HostileNetwork`."""

    def __init__(
        self,
        n: int,
        seed: int,
        byzantine: dict[int, str] | None = None,
        schedule: Schedule = CALM,
        timeouts: Timeouts = Timeouts(),
        offset: int = 0,
        ready: dict[int, int] | None = None,
        sides: dict[int, int] | None = None,
    ):
        self.n, self.seed = n, seed
        self.rng = random.Random(seed)
        self.byzantine = dict(byzantine or {})
        self.honest = [m for m in range(n) if m not in self.byzantine]
        self.schedule, self.timeouts, self.offset = schedule, timeouts, offset
        self.ready = ready or {}
        #: the coalition's two sides (0 or 1 per member): equivocators tell each a different story
        self.side_of = sides or {m: m % 2 for m in range(n)}
        self.net = HostileNetwork(n, set(self.honest), schedule, random.Random(self.rng.getrandbits(64)))
        self.members = {m: self._member(m) for m in self.honest}
        self.actors = {m: Byzantine(kind, m, self) for m, kind in self.byzantine.items()}
        self.beacon = 0
        self.start_beacon = 1
        self.decided_at: dict[int, int] = {}

    def _member(self, m: int) -> Agreement:
        box: list[Agreement] = []

        def get_value():
            # a member may not hold enough cut-offs yet when its turn to propose comes
            return honest_value(m) if box[0].beacon_round >= self.ready.get(m, 0) else None

        box.append(Agreement(self.n, m, valid, get_value, timeouts=self.timeouts, offset=self.offset))
        return box[0]

    def side(self, member: int) -> int:
        return self.side_of.get(member, 0)

    def run(self, max_beacon: int = 80) -> "Panel":
        """Deliver and tick until every honest member decided or the beacon reaches ``max_beacon``."""
        self.beacon = self.start_beacon
        self.net.beacon = self.beacon
        for m in self.honest:
            self._sent(m, self.members[m].start(self.beacon))
        for actor in self.actors.values():
            actor.start(self.beacon)
        per_round = self.schedule.steps_per_round
        while len(self.decided_at) < len(self.honest) and self.beacon < max_beacon:
            steps = 0
            while (per_round is None or steps < per_round) and len(self.decided_at) < len(self.honest):
                item = self.net.pop()
                if item is None:
                    break
                steps += 1
                self._deliver(item)
            if len(self.decided_at) == len(self.honest):
                break
            self.beacon += 1
            self.net.new_round(self.beacon)
        return self

    def _deliver(self, item) -> None:
        if item[0] == "t":
            _, m, beacon = item
            if m in self.members:
                self._sent(m, self.members[m].tick(beacon))
            else:
                self.actors[m].tick(beacon)
            return
        _, signer, message, to, gossip = item
        if to in self.members:
            self._sent(to, self.members[to].receive(signer, message))
            if gossip:
                self.net.relay(item)
        else:
            self.actors[to].receive(signer, message)

    def _sent(self, m: int, out: list) -> None:
        if out:
            self.net.broadcast(m, out)
        if m not in self.decided_at and self.members[m].decision is not None:
            self.decided_at[m] = self.beacon

    # -- what the tests check

    def decisions(self) -> dict[int, bytes]:
        return {m: a.decision for m, a in self.members.items() if a.decision is not None}

    def check_safety(self, label: str) -> None:
        """Agreement, validity, checkable certificates, and no honest member ever equivocates."""
        decided = self.decisions()
        assert len(set(decided.values())) <= 1, f"{label}: honest members decided differently: {decided}"
        quorum = quorum_size(self.n)
        for m, value in decided.items():
            assert valid(value), f"{label}: member {m} decided an invalid value {value!r}"
            cert = certificate_of(self.members[m])
            assert cert is not None and cert.value == value and cert.check(self.n), f"{label}: member {m}: {cert}"
            assert len(set(cert.signers)) >= quorum, f"{label}: member {m}: {cert}"
        for m, a in self.members.items():
            for e in a.evidence:
                assert e.member in self.byzantine, f"{label}: honest member {e.member} equivocated ({e}, seen by {m})"


# ---------------------------------------------------------------------- seeded cases


def case(seed: int, n: int, kinds: tuple[str, ...] = BYZANTINE_KINDS, *,
         byzantine: int | None = None, live: bool = False) -> Panel:
    """A panel of n with ``byzantine`` (default f) Byzantine members of random ``kinds``, random
    proposer offset, timeouts and readiness, and a random hostile schedule, all drawn from ``seed``.
    ``case(seed, n, ...).run()`` replays a failure.

    With ``live``, the schedule meets liveness's assumptions: timeouts grow with the round, gossip
    relays everything, and the network carries more per beacon round than the panel sends, so
    delays stay bounded.  Otherwise timeouts may stay flat and the beacon may outrun the network
    (messages pile up): safety must hold all the same."""
    rng = random.Random(f"agreement-case/{seed}/{n}")
    count = faults(n) if byzantine is None else byzantine
    bad = rng.sample(range(n), count)
    kinds_of = {m: rng.choice(kinds) for m in bad}
    timeouts = Timeouts(propose=rng.randint(1, 3), prevote=rng.randint(1, 2), precommit=rng.randint(1, 2),
                        growth=1 if live else rng.choice((0, 1, 1)))
    ready = {m: rng.choice((0, 0, 0, 2, 4)) for m in range(n)}
    honest = [m for m in range(n) if m not in kinds_of]
    shuffled = honest[:]
    rng.shuffle(shuffled)
    sides = {m: k % 2 for k, m in enumerate(shuffled)}  # what equivocators tell whom
    partitions = []
    start = 1
    for _ in range(rng.choice((0, 1, 1, 2))):
        start += rng.randint(0, 5)
        end = start + rng.randint(1, 10)
        if rng.random() < 0.5:  # the coalition's two sides cannot talk
            group = frozenset([m for m in honest if sides[m] == 0] + bad[: len(bad) // 2])
        else:
            group = frozenset(rng.sample(range(n), rng.randint(1, n - 1)))
        partitions.append((start, end, group))
        start = end
    schedule = Schedule(
        max_delay=rng.choice((5, 60, 400)),
        p_dup=rng.choice((0.0, 0.1, 0.3)),
        p_late=rng.choice((0.0, 0.1, 0.3)),
        late=rng.randint(1, 3),
        p_drop=rng.choice((0.0, 0.05, 0.2)),
        repair=rng.randint(2, 8),
        tick_jitter=rng.choice((0, 30, 300)),
        partitions=tuple(partitions),
        relay=live or rng.random() < 0.8,
        steps_per_round=rng.choice((None, 8 * n * n) if live else (None, None, 2 * n, n * n, 4 * n * n)),
    )
    return Panel(n, seed, kinds_of, schedule, timeouts, offset=rng.randrange(n), ready=ready, sides=sides)


def label(seed: int, n: int, extra: str = "") -> str:
    return f"seed={seed} n={n}{extra} (replay: case({seed}, {n}{extra}).run())"


# ---------------------------------------------------------------------- a hand-driven panel


class Script:
    """A panel driven by hand, for targeted schedules: the test says who receives what, and when.

    Honest members' messages wait in ``pending`` until :meth:`deliver` or :meth:`settle` hands
    them over; Byzantine messages are handed over at once by :meth:`give` and remembered, so that
    :meth:`settle` can play the gossip that eventually brings them to every honest member.
    """

    def __init__(self, n: int, byzantine=(), offset: int = 0, timeouts: Timeouts = Timeouts()):
        self.n = n
        self.byzantine = set(byzantine)
        self.members = {m: Agreement(n, m, valid, (lambda m=m: honest_value(m)), timeouts=timeouts, offset=offset)
                        for m in range(n) if m not in self.byzantine}
        self.beacon = 1
        self.log: list = []  # (sender, message) of every honest send, in order
        self.pending: list = []  # (sender, message, to) not yet delivered
        self.byzantine_sent: list = []  # (sender, message) of every Byzantine send

    def _out(self, m: int, out: list) -> None:
        for message in out:
            self.log.append((m, message))
            self.pending += [(m, message, to) for to in self.members if to != m]

    def start(self, *who: int) -> None:
        for m in who or self.members:
            self._out(m, self.members[m].start(self.beacon))

    def deliver(self, sender: int, to: int, step: str | None = None, round_: int | None = None) -> None:
        """Hand ``to`` the pending messages of honest ``sender`` (of one step and round, if given)."""
        keep = []
        for item in self.pending:
            s, message, t = item
            wanted = (step is None or _step(message) == step) and (round_ is None or message.round == round_)
            if s == sender and t == to and wanted:
                self._out(to, self.members[to].receive(s, message))
            else:
                keep.append(item)
        self.pending = keep

    def give(self, to: int, sender: int, message) -> None:
        """A Byzantine ``sender`` hands ``message`` to ``to`` at once."""
        self.byzantine_sent.append((sender, message))
        self._out(to, self.members[to].receive(sender, message))

    def tick(self, *who: int) -> None:
        """The beacon advances by one round; ``who`` (default everyone) sees it now."""
        self.beacon += 1
        for m in who or self.members:
            self._out(m, self.members[m].tick(self.beacon))

    def tick_until(self, condition, limit: int = 20) -> None:
        """Beacon rounds (seen by everyone) until ``condition()`` holds."""
        for _ in range(limit):
            if condition():
                return
            self.tick()
        raise AssertionError("the script's condition never came true")

    def sent(self, m: int, step: str, round_: int) -> list:
        return [message for s, message in self.log if s == m and _step(message) == step and message.round == round_]

    def settle(self, beacons: int, rng: random.Random | None = None, byzantine=None) -> None:
        """Eventual delivery: every pending message and (gossip) every Byzantine message reaches
        every honest member, in random order if ``rng``; then a beacon round; ``beacons`` times or
        until all decided.  ``byzantine(script, sender, message)`` may react to honest messages."""
        self.pending += [(s, message, to) for s, message in self.byzantine_sent for to in self.members]
        for _ in range(beacons):
            while self.pending:
                s, message, to = self.pending.pop(rng.randrange(len(self.pending)) if rng else 0)
                self._out(to, self.members[to].receive(s, message))
                if byzantine is not None:
                    byzantine(self, s, message)
            if all(a.decision is not None for a in self.members.values()):
                return
            self.beacon += 1
            order = list(self.members)
            if rng:
                rng.shuffle(order)
            for m in order:
                self._out(m, self.members[m].tick(self.beacon))

    def decisions(self) -> dict[int, bytes]:
        return {m: a.decision for m, a in self.members.items() if a.decision is not None}


def _step(message) -> str:
    return PROPOSE if isinstance(message, Proposal) else message.step


# ---------------------------------------------------------------------- quorum arithmetic


@pytest.mark.parametrize("n", range(1, 101))
def test_quorum_and_skip_sizes(n):
    f = faults(n)
    q, s = quorum_size(n), skip_size(n)
    assert 2 * q - n > f  # two quorums share an honest member: safety
    assert q <= n - f  # the honest members alone make a quorum: liveness
    assert 3 * q > 2 * n and 3 * (q - 1) <= 2 * n  # the smallest number above two thirds
    assert s > f  # a skip includes an honest member
    assert s <= n - f  # the honest members alone can make everyone skip
    if n % 3 == 1:
        assert (q, s) == (2 * f + 1, f + 1)


# ---------------------------------------------------------------------- safety

#: seeded runs per panel size (f Byzantine members of mixed kinds, hostile schedules)
SAFETY_RUNS = {4: 1500, 7: 600, 10: 250}


@pytest.mark.parametrize("n", sorted(SAFETY_RUNS))
def test_safety_under_hostile_schedules(n):
    decided_runs = 0
    for seed in range(SAFETY_RUNS[n]):
        panel = case(seed, n).run(max_beacon=60)
        panel.check_safety(label(seed, n))
        decided_runs += bool(panel.decisions())
    # the runs must exercise decisions, not only time out
    assert decided_runs > 0.7 * SAFETY_RUNS[n], decided_runs


@pytest.mark.parametrize("seed", range(8))
def test_safety_large_panel(seed):
    n = 31
    case(seed, n).run(max_beacon=40).check_safety(label(seed, n))


def test_safety_with_only_equivocators():
    """f equivocators, partitions often along the coalition's two sides: the split attack.  With
    gossip, the honest members see the equivocations, and every fraud proof names a Byzantine member."""
    with_evidence = 0
    for n, runs in ((4, 200), (7, 100), (10, 60)):
        for seed in range(runs):
            panel = case(seed, n, ("equivocate",)).run(max_beacon=50)
            panel.check_safety(label(seed, n, ", ('equivocate',)"))
            with_evidence += any(a.evidence for a in panel.members.values())
    assert with_evidence > 200, with_evidence


def test_the_checker_finds_a_split_beyond_f():
    """The harness can fail: with f + 1 equivocators the same adversary splits a panel of 4."""
    split = [seed for seed in range(300)
             if len(set(case(seed, 4, ("equivocate",), byzantine=2).run(max_beacon=30).decisions().values())) > 1]
    assert split, "no split with more than f Byzantine members: the adversary is too weak to test safety"


# ---------------------------------------------------------------------- liveness

LIVENESS_RUNS = {4: 600, 7: 300, 10: 150}
#: beacon rounds after the last partition heals within which every honest member must have decided
#: (observed worst: about 125; lost messages are repaired up to 8 rounds late, and timeouts must
#: first grow past that)
LIVENESS_BOUND = 250


def _live(seed: int, n: int, kinds=CONSISTENT_KINDS) -> tuple[Panel, int]:
    panel = case(seed, n, kinds, live=True)
    bound = panel.schedule.healed() + LIVENESS_BOUND
    panel.run(max_beacon=bound + 1)
    panel.check_safety(label(seed, n, f", {kinds}, live=True"))
    return panel, bound


@pytest.mark.parametrize("n", sorted(LIVENESS_RUNS))
def test_liveness_with_consistent_byzantine_members(n):
    """More than two thirds honest, partitions heal, delays bounded, f Byzantine members that are
    silent, propose invalid values, vote at random or replay (but never equivocate): every honest
    member decides within a bounded number of beacon rounds."""
    for seed in range(LIVENESS_RUNS[n]):
        panel, bound = _live(seed, n)
        late = sorted(set(panel.honest) - set(panel.decided_at))
        assert not late, f"{label(seed, n, ', CONSISTENT_KINDS, live=True')}: {late} undecided at beacon {bound}"


@pytest.mark.parametrize("seed", range(6))
def test_liveness_large_panel(seed):
    n = 31
    panel, bound = _live(seed, n)
    assert set(panel.decided_at) == set(panel.honest), f"{label(seed, n, ', CONSISTENT_KINDS, live=True')}"


def test_liveness_all_honest_calm():
    """All honest, calm network: everyone decides in round 0, within a beacon round or so."""
    for n in (1, 2, 3, 4, 7, 10, 31):
        for seed in range(10):
            panel = Panel(n, seed, offset=seed % n).run(max_beacon=30)
            assert set(panel.decided_at) == set(panel.honest), (n, seed)
            assert max(panel.decided_at.values()) <= panel.start_beacon + 1, (n, seed)
            assert len(set(panel.decisions().values())) == 1
            assert all(a.decided_round == 0 for a in panel.members.values())


def test_liveness_with_equivocating_byzantine_members():
    """The liveness run again, now with equivocators among the Byzantine members."""
    stuck = []
    for n, runs in ((4, 60), (7, 30)):
        for seed in range(runs):
            panel, bound = _live(seed, n, ("equivocate",))
            if set(panel.decided_at) != set(panel.honest):
                stuck.append((n, seed, len(panel.decided_at)))
    assert not stuck, f"(n, seed, honest members decided) of runs where some honest member never decided: {stuck}"


def test_equivocated_precommit_strands_an_honest_member():
    """n = 4, member 3 Byzantine.  Members 1 and 2 decide X in round 0 with the precommits of 1, 2
    and 3; member 3 told member 0 "nil".  Member 0 later receives everything (also 3's precommit
    for X, which it files as evidence), but counts only 1 and 2 for X, moves on alone, and the
    decided members 1 and 2 never answer again: member 0 never decides."""
    s = Script(4, byzantine={3})
    s.start()  # member 0 proposes X = honest_value(0) and prevotes it
    x = value_id(honest_value(0))
    for m in (1, 2):
        s.deliver(0, m)  # proposal and prevote: 1 and 2 prevote X
    s.deliver(1, 0)
    s.give(0, 3, Vote(PREVOTE, 0, NIL))  # member 0 holds 3 prevotes, only 2 for X: no lock
    s.tick(0)  # prevote timeout: member 0 precommits nil
    assert s.sent(0, PRECOMMIT, 0) == [Vote(PRECOMMIT, 0, NIL)]
    for m, other in ((1, 2), (2, 1)):
        s.deliver(other, m, PREVOTE)  # prevotes of 0, 1 and 2 for X: 1 and 2 lock and precommit X
    for m, other in ((1, 2), (2, 1)):
        s.deliver(other, m, PRECOMMIT)
        s.give(m, 3, Vote(PRECOMMIT, 0, x))
    assert s.decisions() == {1: honest_value(0), 2: honest_value(0)}
    s.give(0, 3, Vote(PRECOMMIT, 0, NIL))  # what member 0 hears first from 3
    s.settle(200)  # everything reaches everyone, also 3's precommit for X; 3 then stays silent
    assert any(e.member == 3 for e in s.members[0].evidence)
    assert s.members[0].decision == honest_value(0), "member 0 never decides"


def test_equivocated_prevotes_stall_the_panel():
    """n = 4, member 3 Byzantine, proposers 0, 1, 2, 3, 0, ...

    Round 0: member 2 locks X0 (prevotes of 0, 2 and 3), while 3 told 0 and 1 "nil".
    Round 1: members 0 and 1 lock X1 (prevotes of 0, 1 and 3), while 3 told 2 "nil".
    From then on 3 is silent and every message reaches everyone.  Proposers 0 and 1 re-propose
    X1 (valid round 1), which member 2 refuses: it counts only two prevotes for X1 in round 1.
    Proposer 2 re-proposes X0 (valid round 0), which 0 and 1, locked in round 1, refuse.  In
    Tendermint as published, member 2 would count 3's relayed prevote for X1, accept X1 and decide."""
    s = Script(4, byzantine={3})
    s.start()
    x0, x1 = value_id(honest_value(0)), value_id(honest_value(1))
    # round 0: member 1 never sees the proposal in time and prevotes nil
    s.deliver(0, 2)  # proposal and prevote for X0: member 2 prevotes X0
    s.tick(1)
    s.tick(1)  # propose timeout (2 beacon rounds)
    assert s.sent(1, PREVOTE, 0) == [Vote(PREVOTE, 0, NIL)]
    s.give(2, 3, Vote(PREVOTE, 0, x0))
    assert s.members[2].locked_value == honest_value(0)
    for m in (0, 1):
        s.give(m, 3, Vote(PREVOTE, 0, NIL))
    s.deliver(1, 0, PREVOTE)
    s.deliver(2, 0, PREVOTE)
    s.deliver(0, 1, PREVOTE)
    s.deliver(2, 1, PREVOTE)
    s.tick(0, 1)  # prevote timeouts: 0 and 1 precommit nil
    for m in (0, 1, 2):
        s.give(m, 3, Vote(PRECOMMIT, 0, NIL))
        for other in (0, 1, 2):
            if other != m:
                s.deliver(other, m, PRECOMMIT, 0)
    s.tick()
    s.tick()  # precommit timeouts: round 1, proposer 1 proposes X1
    assert [a.round for a in s.members.values()] == [1, 1, 1]
    assert s.members[2].locked_round == 0 and s.members[0].locked_round == -1
    # round 1: 2 is locked on X0 and prevotes nil
    for m in (0, 2):
        s.deliver(1, m, PROPOSE, 1)
    s.give(0, 3, Vote(PREVOTE, 1, x1))
    s.give(1, 3, Vote(PREVOTE, 1, x1))
    s.give(2, 3, Vote(PREVOTE, 1, NIL))
    for m in (0, 1, 2):
        for other in (0, 1, 2):
            if other != m:
                s.deliver(other, m, PREVOTE, 1)
    assert (s.members[0].locked_value, s.members[1].locked_value) == (honest_value(1), honest_value(1))
    s.tick(2)  # prevote timeout: 2 precommits nil
    for m in (0, 1, 2):
        s.give(m, 3, Vote(PRECOMMIT, 1, NIL))
    assert not s.decisions()
    s.settle(200)  # 3 is silent from now on; everything else reaches everyone
    assert s.decisions(), "nobody ever decides"


# ---------------------------------------------------------------------- messages before start


def test_messages_before_start_never_make_an_honest_member_equivocate():
    """Member 3 learns the deadline's beacon round later than the others: their proposal and prevotes
    reach it first.  Whatever it sends must still be one message per step and round."""
    s = Script(4)
    s.start(0, 1, 2)
    for m in (1, 2):
        s.deliver(0, m)
    for sender in (0, 1, 2):
        s.deliver(sender, 3)  # before member 3's start
    s.start(3)
    s.tick()
    s.tick()
    for step in (PREVOTE, PRECOMMIT):
        assert len(set(s.sent(3, step, 0))) <= 1, f"member 3 sent {s.sent(3, step, 0)}"


# ---------------------------------------------------------------------- equivocation evidence


def test_two_prevotes_in_one_round_are_evidence_at_every_honest_receiver():
    s = Script(4, byzantine={3})
    s.start()
    a, b = Vote(PREVOTE, 0, value_id(VALUE_A)), Vote(PREVOTE, 0, value_id(VALUE_B))
    for m in (0, 1, 2):
        first, second = (a, b) if m % 2 else (b, a)
        s.give(m, 3, first)
        s.give(m, 3, first)  # a duplicate is no evidence
        assert s.members[m].evidence == []
        s.give(m, 3, second)
        [e] = s.members[m].evidence
        assert (e.member, e.step, e.round, e.first, e.second) == (3, PREVOTE, 0, first.value, second.value)
    # a nil prevote against a value prevote, a precommit pair and a proposal pair are evidence too
    s.give(0, 3, Vote(PREVOTE, 1, NIL))
    s.give(0, 3, Vote(PREVOTE, 1, value_id(VALUE_A)))
    s.give(1, 3, Vote(PRECOMMIT, 0, value_id(VALUE_A)))
    s.give(1, 3, Vote(PRECOMMIT, 0, value_id(VALUE_B)))
    s.give(2, 3, Proposal(3, VALUE_A, -1))  # 3 proposes round 3 (offset 0)
    s.give(2, 3, Proposal(3, VALUE_B, -1))
    assert [(e.member, e.step, e.round) for e in s.members[0].evidence][1:] == [(3, PREVOTE, 1)]
    assert [(e.member, e.step, e.round) for e in s.members[1].evidence][1:] == [(3, PRECOMMIT, 0)]
    assert [(e.member, e.step, e.round) for e in s.members[2].evidence][1:] == [(3, PROPOSE, 3)]
    # the same step in different rounds, or different steps in one round, is no equivocation
    s.give(1, 3, Vote(PREVOTE, 2, value_id(VALUE_A)))
    s.give(1, 3, Vote(PRECOMMIT, 2, value_id(VALUE_B)))
    s.give(1, 3, Vote(PREVOTE, 4, value_id(VALUE_B)))
    assert len(s.members[1].evidence) == 2


def test_equivocation_over_the_hostile_network_names_the_equivocator():
    for seed in range(100):
        panel = case(seed, 7, ("equivocate",), live=True).run(max_beacon=40)
        panel.check_safety(label(seed, 7, ", ('equivocate',), live=True"))
        for a in panel.members.values():
            assert {e.member for e in a.evidence} <= set(panel.byzantine)
        if panel.decisions():
            # gossip relays the equivocators' messages, so every honest receiver ends up with a proof
            assert any(a.evidence for a in panel.members.values()), seed


# ---------------------------------------------------------------------- locking


def test_a_locked_value_survives_later_proposers_of_other_values():
    """n = 4, member 1 Byzantine, proposers 0, 1, 2, 3.  Round 0: members 0 and 3 lock X0 (member 2
    saw too few prevotes to lock).  Round 1: the Byzantine proposer proposes VALUE_B; round 2: the
    unlocked member 2 proposes its own X2; the Byzantine member prevotes and precommits each new
    value.  The locked members prevote nil, so neither gathers a quorum; round 3's proposer
    re-proposes X0 with valid round 0 and X0 is decided.  Then the same setup is left to random
    delivery orders (the Byzantine member pushing VALUE_B in every round): only X0 is ever decided."""
    x0 = honest_value(0)

    def setup() -> Script:
        s = Script(4, byzantine={1})
        s.start()
        for m in (2, 3):
            s.deliver(0, m)  # 2 and 3 prevote X0
        for m in (0, 3):
            s.give(m, 1, Vote(PREVOTE, 0, value_id(x0)))
            for other in (0, 2, 3):
                if other != m:
                    s.deliver(other, m, PREVOTE, 0)
        s.give(2, 1, Vote(PREVOTE, 0, NIL))
        s.deliver(0, 2, PREVOTE, 0)
        s.tick(2)  # prevote timeout: 2 precommits nil
        assert [(m, s.members[m].locked_value) for m in (0, 2, 3)] == [(0, x0), (2, None), (3, x0)]
        for m in (0, 2, 3):
            s.give(m, 1, Vote(PRECOMMIT, 0, NIL))
            for other in (0, 2, 3):
                if other != m:
                    s.deliver(other, m, PRECOMMIT, 0)
        assert not s.decisions()
        s.tick()  # precommit timeouts: round 1
        assert all(a.round == 1 for a in s.members.values())
        return s

    s = setup()
    honest = (0, 2, 3)
    for r, value in ((1, VALUE_B), (2, honest_value(2))):
        if r == 1:
            for m in honest:
                s.give(m, 1, Proposal(1, VALUE_B, -1))
        else:
            for m in (0, 3):
                s.deliver(2, m, PROPOSE, 2)
        for m in honest:
            s.give(m, 1, Vote(PREVOTE, r, value_id(value)))
        for m in honest:
            for other in honest:
                if other != m:
                    s.deliver(other, m, PREVOTE, r)
        # the locked members refuse the new value, so it has only two prevotes (2's and 1's)
        assert s.sent(0, PREVOTE, r) == s.sent(3, PREVOTE, r) == [Vote(PREVOTE, r, NIL)]
        assert s.sent(2, PREVOTE, r) == [Vote(PREVOTE, r, value_id(value))]
        s.tick_until(lambda: all(s.sent(m, PRECOMMIT, r) for m in honest))  # prevote timeouts
        assert all(s.sent(m, PRECOMMIT, r) == [Vote(PRECOMMIT, r, NIL)] for m in honest)
        for m in honest:
            s.give(m, 1, Vote(PRECOMMIT, r, value_id(value)))
            for other in honest:
                if other != m:
                    s.deliver(other, m, PRECOMMIT, r)
        assert not s.decisions()
        assert [s.members[m].locked_value for m in honest] == [x0, None, x0]
        s.tick_until(lambda: all(a.round == r + 1 for a in s.members.values()))  # precommit timeouts
    assert all(a.round == 3 for a in s.members.values())
    assert s.sent(3, PROPOSE, 3) == [Proposal(3, x0, 0)]
    s.settle(20)
    assert s.decisions() == {0: x0, 2: x0, 3: x0}

    def pusher(script, sender, message):
        # the Byzantine member answers every honest message of a new round with votes for VALUE_B
        if message.round not in pushed:
            pushed.add(message.round)
            for to in script.members:
                for step in (PREVOTE, PRECOMMIT):
                    script.pending.append((1, Vote(step, message.round, value_id(VALUE_B)), to))
                if script.members[to].proposer(message.round) == 1:
                    script.pending.append((1, Proposal(message.round, VALUE_B, -1), to))

    for seed in range(200):
        pushed: set = set()
        s = setup()
        s.settle(100, random.Random(seed), pusher)
        assert set(s.decisions().values()) == {x0}, f"seed {seed}: {s.decisions()}"


# ---------------------------------------------------------------------- certificates


def test_certificates_of_decided_members_check():
    checked = 0
    for n in (4, 7, 10, 31):
        for seed in range(40 if n < 31 else 3):
            panel = case(seed, n, CONSISTENT_KINDS, live=True).run(max_beacon=300)
            for m, a in panel.members.items():
                cert = certificate_of(a)
                if a.decision is None:
                    assert cert is None
                    continue
                checked += 1
                assert cert.check(n) and cert.value == a.decision and cert.round == a.decided_round
                assert len(set(cert.signers)) == len(cert.signers) >= quorum_size(n)
                assert set(cert.signers) <= set(range(n))
                # each signer's precommit, as this member holds it, is for the certified value
                box = a.votes[(PRECOMMIT, cert.round)]
                assert all(value_id(cert.value) in box[signer] for signer in cert.signers)
                # and more than f of them are honest members who really precommitted it
                honest = [s for s in cert.signers if s in panel.members]
                assert len(honest) > faults(n)
                assert all(Vote(PRECOMMIT, cert.round, value_id(cert.value)) in _sent(panel, s) for s in honest)
    assert checked > 500


def _sent(panel: Panel, member: int) -> set:
    return {message for signer, message in panel.net.signed if signer == member}


def test_forged_certificates_fail_check():
    for n in (1, 4, 7, 10, 31, 64, 100):
        q = quorum_size(n)
        value = honest_value(0)
        assert Certificate(0, value, tuple(range(q))).check(n)
        assert not Certificate(0, value, tuple(range(q - 1))).check(n)  # too few signers
        if n > 1:
            assert not Certificate(0, value, tuple(range(q - 1)) + (0,)).check(n)  # one signer twice
            assert not Certificate(0, value, (0,) * n).check(n)
        assert not Certificate(0, value, tuple(range(q - 1)) + (n,)).check(n)  # not a panel member
        assert not Certificate(0, value, tuple(range(q - 1)) + (-1,)).check(n)
        assert not Certificate(0, value, tuple(range(q))).check(n + q)  # a quorum of a smaller panel
    assert certificate_of(Agreement(4, 0, valid, lambda: None)) is None


def test_a_member_that_saw_a_polka_refuses_fresh_values_but_not_the_polka_value():
    """Member 2 of 4 precommitted nil, then saw a quorum prevote X0 (a polka: it holds X0 as its
    valid value without being locked).  In round 1 the Byzantine proposer offers a fresh value B:
    member 2 prevotes nil, so a proposer who knows the polka value's seed randomness is already
    public cannot choose a fresh value instead (docs/finality.md).  In round 2 member 2 itself
    proposes X0 again, with its valid round, and prevotes it."""
    x0 = honest_value(0)
    a = Agreement(4, 2, valid, lambda: honest_value(2), timeouts=Timeouts(propose=2, prevote=1, precommit=1, growth=0))
    a.start(1)
    assert a.receive(0, Proposal(0, x0, -1)) == [Vote(PREVOTE, 0, value_id(x0))]
    a.receive(0, Vote(PREVOTE, 0, value_id(x0)))
    a.receive(1, Vote(PREVOTE, 0, NIL))  # three prevotes: the prevote timer runs
    assert Vote(PRECOMMIT, 0, NIL) in a.tick(3)
    a.receive(3, Vote(PREVOTE, 0, value_id(x0)))  # the polka arrives after the precommit
    assert (a.valid_value, a.valid_round, a.locked_round) == (x0, 0, -1)
    a.receive(0, Vote(PRECOMMIT, 0, NIL))
    a.receive(1, Vote(PRECOMMIT, 0, NIL))
    a.tick(5)
    assert a.round == 1
    assert a.receive(1, Proposal(1, VALUE_B, -1)) == [Vote(PREVOTE, 1, NIL)]
    for m in (0, 1, 3):
        a.receive(m, Vote(PREVOTE, 1, NIL))
    for m in (0, 1, 3):
        a.receive(m, Vote(PRECOMMIT, 1, NIL))
    out = a.tick(9)
    assert a.round == 2 and Proposal(2, x0, 0) in out and Vote(PREVOTE, 2, value_id(x0)) in out


def test_a_proposer_whose_value_was_late_proposes_within_its_round():
    """A proposer that began its round before its value was ready (too few cut-offs had arrived)
    proposes as soon as ``poll`` finds one, in the same round, and the panel decides it there."""
    ready: list[bytes | None] = [None]
    members = [Agreement(4, m, valid, (lambda: ready[0]) if m == 0 else (lambda: None)) for m in range(4)]
    for a in members:
        assert a.start(10) == [] or a.me != 0
    assert members[0].poll() == []  # still nothing to propose
    ready[0] = VALUE_A
    out = members[0].poll()
    assert out and isinstance(out[0], Proposal) and out[0].round == 0 and out[0].value == VALUE_A
    assert members[0].poll() == []  # never a second proposal in a round
    queue = [(0, m) for m in out]
    for _ in range(200):
        if not queue:
            break
        sender, message = queue.pop(0)
        for a in members:
            if a.me != sender:
                queue += [(a.me, reply) for reply in a.receive(sender, message)]
    assert all(a.decision == VALUE_A and a.decided_round == 0 for a in members), [(a.decision, a.round) for a in members]
