"""A representative's node doing its own panel work from what its replica holds (DESIGN.md §7).

Nothing here follows a plan: after each new beacon round or new panel message the node looks at
its replica and signs what an honest member owes.

* **Leases**: once cycle *c*'s intake is decided, each hosted representative promises to be
  available in cycle *c + 2* (decided at the next boundary).
* **Cut-offs**: when a deadline's round is out and a hosted representative sits on its panel,
  it signs the honest cut-off (``consensus.duties.honest_cutoff``) at once.
* **Agreement**: one ``consensus.agreement.Agreement`` per (deadline, seat), fed the panel's
  propose/prevote/precommit records and ticked with every beacon round; what it says to send is
  signed as events.  A proposal is fed only once every cut-off it names has arrived (validity
  is decided once per value).

Safety across restarts: a member never signs two messages for one (deadline, step, round); the
replica is the memory (the records of its own earlier messages), so a restarted node resumes
without equivocating.  A node acts only on a replica that has caught up (the node decides when).

Everything a hosted key signs goes through :class:`Hands`: seq and prev from the replica's head
of that author, the latest beacon round and its prefix, and the event is applied to the replica
before the next one is signed.  Pure apart from the signatures: tests drive it on an in-memory
replica.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from nacl.signing import SigningKey

from consensus.agreement import PRECOMMIT, PREVOTE, PROPOSE, Agreement, Proposal, Vote, quorum_size
from consensus.duties import honest_cutoff
from consensus.events import event_id, sign_event
from consensus.kinds import PANEL_KINDS
from consensus.legislature import Legislature, Waiting
from consensus.panel import deadline_key, decode_value, encode_value, proposer_offset, valid_value
from consensus.replica import APPLIED, Outcome

#: beacon rounds after a deadline's round at which a member starts its agreement even without a
#: quorum of cut-offs in hand (the proposer then waits, the others time out to the next round)
START_WAIT = 2
_STEP_ORDER = {PROPOSE: 0, PREVOTE: 1, PRECOMMIT: 2}


class Hands:
    """Signs for hosted keys on top of a replica and remembers what was signed, in order."""

    def __init__(self, replica, keys: Iterable[SigningKey], add: Callable[[bytes], object] | None = None):
        self.replica = replica
        self.keys = {bytes(k.verify_key): k for k in keys}
        self._add = add or replica.add
        self.out: list[bytes] = []

    def sign(self, author: bytes, kind: str, body: dict, *, twin: dict | None = None) -> bytes:
        """Sign ``body`` as the author's next event at the latest beacon round; ``twin``: also
        sign a second body at the same seq (an equivocation: only misbehaving test bots)."""
        r = self.replica
        head = r.heads.get(author)
        at = max(max(r.beacon, default=0), head.round if head else 0)
        prefix = r.beacon[at][:8] if at in r.beacon else b""
        common = dict(assembly=r.assembly, seq=head.seq + 1 if head else 1, prev=head.id if head else None,
                      kind=kind, round=at, round_prefix=prefix)
        wire = sign_event(self.keys[author], body=body, **common)
        outcome = self._add(wire)
        if isinstance(outcome, Outcome) and outcome.status != APPLIED:
            # never believe we signed what our own replica refused (a cut-off over the event
            # limit once did): the step stops and says why (Reactor.problem)
            raise RuntimeError(f"our own {kind} was not applied ({outcome.status}): "
                               f"{outcome.rejection.reason if outcome.rejection else ''}")
        self.out.append(wire)
        if twin is not None:
            other = sign_event(self.keys[author], body=twin, **common)
            self._add(other)
            self.out.append(other)
        return wire


@dataclass
class _Seat:
    agent: Agreement
    fed: set = field(default_factory=set)  # ids of the records already given to the agent


@dataclass
class _Deadline:
    name: bytes
    panel: tuple[bytes, ...]
    start: int  # the round this generation's panel took over
    seeds: tuple[int, int]  # where its values' seed rounds may lie


class PanelDuties:
    """Leases, cut-offs and agreement messages for the hosted representatives ``members``."""

    def __init__(self, members: Iterable[bytes], *, lease: bool = True):
        self.members = set(members)
        self.lease = lease
        self._seats: dict[tuple[tuple[str, int, int, int], bytes], _Seat] = {}  # (deadline and generation, member)
        self._settled: set[tuple[str, int, int]] = set()
        self._panels: dict[tuple[str, int, int, int], _Deadline] = {}
        self._low = 0  # the first cycle that may still hold an open deadline of ours
        self.signed = {"lease": 0, "cutoff": 0, PROPOSE: 0, PREVOTE: 0, PRECOMMIT: 0}

    def step(self, leg: Legislature, hands: Hands) -> int:
        """Sign what is owed now (``leg`` holds the last evaluation of ``hands.replica``); returns
        how many events were signed."""
        replica = hands.replica
        horizon = max(replica.beacon, default=0)
        if not self.members or horizon < leg.start:
            return 0
        before = len(hands.out)
        panel_records, leased = self._index(replica)
        now = leg.cycle_of(horizon)
        if self.lease and now >= 0 and leg.decision("intake", now, 0) is not None:
            # promised during cycle c, counted at the intake that opens cycle c + 1; with
            # constituencies only by keys seated now or next (a constituent's node has no duties)
            seated = set(leg.roster_of(now)) | set(leg.roster_of(now + 1))
            for m in sorted(self.members):
                if (m, now + 2) not in leased and (leg.charter.representation is None or m in seated):
                    hands.sign(m, "lease", {"cycle": now + 2})
                    self.signed["lease"] += 1
        for c in range(self._low, now + 1):
            open_here = self._cycle(leg, hands, c, horizon, panel_records)
            if not open_here and c == self._low and c < now:
                self._low += 1
        return len(hands.out) - before

    # ------------------------------------------------------------------ reading the replica

    def _index(self, replica) -> tuple[dict[bytes, list], set[tuple[bytes, int]]]:
        by_deadline: dict[bytes, list] = {}
        leased: set[tuple[bytes, int]] = set()
        for r in replica.records.values():
            if r.kind in PANEL_KINDS:
                by_deadline.setdefault(r.body.deadline, []).append(r)
            elif r.kind == "lease" and r.author in self.members:
                leased.add((r.author, r.body.cycle))
        return by_deadline, leased

    # ------------------------------------------------------------------ deadlines

    def _cycle(self, leg: Legislature, hands: Hands, c: int, horizon: int, records: dict[bytes, list]) -> bool:
        """Serve cycle ``c``'s due deadlines; True while one of them may still need us."""
        pending = False
        for what, stage, at in leg.deadlines(c):
            key = (what, c, stage)
            if key in self._settled:
                continue
            if at > horizon:
                return True
            if leg.decision(what, c, stage) is not None:
                self._close(key)
                continue
            if not leg.reached(what, c, stage):
                # the evaluation stopped earlier (wait), or went past it: nothing to decide there
                w = leg.waiting_at
                if w is not None and (c, at, stage) < (w[1], w[3], w[2]):
                    self._close(key)
                    continue
                return True
            # the generation whose window is open now; older ones gave way (DESIGN.md §7)
            gen = (horizon - at) // leg.p.panel_rounds
            for old in [k for k in self._seats if k[0][:3] == key and k[0][3] < gen]:
                del self._seats[old]
            pending |= self._serve(leg, hands, what, c, stage, at, gen, horizon, records)
        return pending

    def _close(self, key: tuple) -> None:
        self._settled.add(key)
        for name in [n for n in self._panels if n[:3] == key]:
            del self._panels[name]
        for k in [k for k in self._seats if k[0][:3] == key]:
            del self._seats[k]

    def _serve(self, leg, hands: Hands, what, c, stage, at, gen, horizon, records: dict[bytes, list]) -> bool:
        tag = (what, c, stage, gen)
        d = self._panels.get(tag)
        if d is None:
            try:
                panel = leg.panel_of(what, c, stage, at, gen)
            except Waiting:
                return True
            start = leg.generation_start(at, gen)
            d = self._panels[tag] = _Deadline(deadline_key(what, c, stage, gen), panel, start, leg.seed_window(at, gen))
        seats = [(pos, m) for pos, m in enumerate(d.panel) if m in self.members]
        if not seats:
            return True  # another generation may draw us
        name = d.name
        messages = records.get(name, [])
        replica = hands.replica
        members = set(d.panel)
        cutoffs: dict[bytes, bytes] = {}
        mine: set[tuple[bytes, str, int]] = set()
        for r in messages:
            if r.author not in members:
                continue
            if r.kind == "cutoff":
                cutoffs.setdefault(r.author, r.id)
            elif r.author in self.members:
                mine.add((r.author, r.kind, r.body.round))
        missing = [m for _, m in seats if m not in cutoffs]
        if missing:
            cut = honest_cutoff(leg, replica.records, what, c, stage, at, forked=replica.forks)
            body = {"deadline": name, "cutoff": cut.to_body()}
            for m in missing:
                cutoffs[m] = event_id(hands.sign(m, "cutoff", body))
                self.signed["cutoff"] += 1
        quorum = quorum_size(len(d.panel))
        decided = True
        for pos, m in seats:
            seat = self._seats.get((tag, m))
            if seat is None:
                if len(cutoffs) < quorum and horizon < d.start + START_WAIT:
                    decided = False
                    continue
                seat = self._seats[(tag, m)] = self._seat(leg, d, pos, m, replica, messages)
                self._send(hands, d, m, seat, seat.agent.start(horizon), mine)
            out = []
            steps = (r for r in messages if r.kind != "cutoff")
            for r in sorted(steps, key=lambda r: (r.body.round, _STEP_ORDER[r.kind], r.author, r.seq)):
                if r.id in seat.fed or r.author not in members:
                    continue
                if r.kind == PROPOSE:
                    ids = (decode_value(r.body.value) or ((), 0))[0]
                    if any(i not in replica.records for i in ids):
                        continue  # its cut-offs are still on their way: judge it when they are here
                    message = Proposal(r.body.round, r.body.value, r.body.valid_round)
                else:
                    message = Vote(r.kind, r.body.round, r.body.value)
                seat.fed.add(r.id)
                out += seat.agent.receive(d.panel.index(r.author), message)
            out += seat.agent.tick(horizon)
            if len(cutoffs) >= quorum:
                out += seat.agent.poll()  # a proposer that started without a value may have one now
            self._send(hands, d, m, seat, out, mine)
            decided &= seat.agent.decision is not None
        return not decided

    def _seat(self, leg, d: _Deadline, pos: int, member: bytes, replica, messages: list) -> _Seat:
        """A fresh agreement for one seat.  After a restart its own earlier proposal per round is
        reused (never a second value), and its earlier votes reach it like anyone's."""
        earlier = {r.body.round: r.body.value for r in messages if r.author == member and r.kind == PROPOSE}
        delay = leg.p.draw_delay
        agent: Agreement

        def value() -> bytes | None:
            if agent.round in earlier:
                return earlier[agent.round]
            ids = sorted(_first_cutoffs(replica, d))
            if len(ids) < quorum_size(len(d.panel)):
                return None
            return encode_value(ids, agent.beacon_round + delay)

        agent = Agreement(
            len(d.panel), pos,
            valid=lambda v: valid_value(v, d.name, d.panel, replica.records, d.seeds),
            get_value=value,
            offset=proposer_offset(d.name),
            fresh=lambda v, b: (decode_value(v) or ((), 0))[1] > b,
        )
        return _Seat(agent)

    def _send(self, hands: Hands, d: _Deadline, member: bytes, seat: _Seat, messages: list, mine: set) -> None:
        for message in messages:
            if isinstance(message, Proposal):
                kind, body = PROPOSE, {"deadline": d.name, "round": message.round, "valid_round": message.valid_round,
                                       "value": message.value}
            elif isinstance(message, Vote):
                kind, body = message.step, {"deadline": d.name, "round": message.round, "value": message.value}
            else:
                continue
            if (member, kind, message.round) in mine:
                continue  # signed before (e.g. before a restart): never a second message
            mine.add((member, kind, message.round))
            seat.fed.add(event_id(hands.sign(member, kind, body)))
            self.signed[kind] += 1


def _first_cutoffs(replica, d: _Deadline) -> set[bytes]:
    """The first cut-off of each panel member for ``d`` (one per member: values need distinct authors)."""
    first: dict[bytes, tuple[int, bytes]] = {}
    members = set(d.panel) - set(replica.forks)  # a proven equivocator takes part in no open deadline
    for r in replica.records.values():
        if r.kind == "cutoff" and r.body.deadline == d.name and r.author in members:
            if r.author not in first or r.seq < first[r.author][0]:
                first[r.author] = (r.seq, r.id)
    return {i for _, i in first.values()}
