"""Reactive panel duties and bots (p2p/duties.py, p2p/reactive.py), driven in one process.

Each "node" is a Reactor on its own in-memory replica; what it signs reaches the others one
beacon round later, in a shuffled order (so proposals can arrive before the cut-offs they name,
and events before their author's previous one).  The network itself is tested with real
processes in test_testnet.py.
"""

from __future__ import annotations

import json
import random

import pytest

from consensus.legislature import Legislature
from consensus.replica import Replica
from p2p.tools.bots import AssemblySim, Behaviour
from p2p.duties import Hands, PanelDuties
from p2p.reactor import Reactor
from p2p.tools.reactive import HostedBot, ReactiveBots, chance, load_bots, write_bots_file

pytestmark = pytest.mark.slow


class Network:
    """Reactors on separate replicas; deliveries are delayed and shuffled by a seeded rng."""

    def __init__(self, nodes: int, reps: int, behaviour: Behaviour, seed: int = 1):
        self.sim = AssemblySim("testnet", reps=reps, seed=seed, behaviour=behaviour)
        self.rng = random.Random(seed)
        everyone = [b.public for b in self.sim.bots]
        self.replicas = [Replica(self.sim.charter_wire) for _ in range(nodes)]
        self.reactors = []
        for k in range(nodes):
            hosted = [HostedBot(i, b.key, b.kind) for i, b in enumerate(self.sim.bots) if i % nodes == k]
            self.reactors.append(Reactor(self.replicas[k], [h.key for h in hosted], bots=ReactiveBots(seed, everyone, hosted)))
        self.in_flight: list[tuple[int, bytes]] = []
        self.sent: list[bytes] = []
        self.leg = Legislature(self.replicas[0].charter, self.replicas[0].charter_event.round)

    def restart(self, k: int) -> None:
        """Node k loses everything but its replica (a crash and a restart)."""
        old = self.reactors[k]
        self.reactors[k] = Reactor(self.replicas[k], old.keys, bots=ReactiveBots(old.bots.seed, old.bots.everyone, old.bots.hosted))

    def run(self, last_round: int, on_round=None) -> None:
        for number in range(1, last_round + 1):
            rnd = self.sim.dev.sign(number)
            delivered, self.in_flight = self.in_flight, []
            self.rng.shuffle(delivered)
            for k, replica in enumerate(self.replicas):
                replica.add_round(rnd)
                for origin, wire in delivered:
                    if origin != k:
                        replica.add(wire)
            for _ in range(4):  # a node reacts to what it received several times within a round
                for k, reactor in enumerate(self.reactors):
                    out = reactor.step()
                    self.in_flight += [(k, w) for w in out]
                    self.sent += out
            if on_round:
                on_round(number)
        for origin, wire in self.in_flight:
            for k, replica in enumerate(self.replicas):
                if k != origin:
                    replica.add(wire)


def test_reactive_nodes_run_every_stage_to_a_plenary_with_real_panels():
    net = Network(nodes=4, reps=25, behaviour=Behaviour(absent=0.08, late=0.08, equivocating=0.04, unauthorised=0.08))
    last = net.leg.cycle_start(4) - 1
    net.run(last)
    hashes = {r.state_hash() for r in net.replicas}
    assert len(hashes) == 1, "every node holds the same state"
    replica = net.replicas[0]
    result = net.leg.evaluate(replica.records, replica.beacon)
    assert result.cycles == 4, result.waiting
    assert any(p.status in ("passed", "failed") for p in result.proposals.values()), "a plenary vote was held"
    assert result.deadlines and all(d["rule"] == "cut-off panel" for d in result.deadlines)
    # every panel decided, and no honest node ever signed two messages for one step
    assert not result.panel_equivocations
    equivocators = {b.public for b in net.sim.bots if b.kind == "equivocating"}
    assert set(replica.forks) <= equivocators
    # the seed round each panel chose was still in the future when it was proposed
    assert all(d["seed_round"] > d["round"] for d in result.deadlines)
    # a replay of the signed events from nothing gives the same state (what klero verify does)
    fresh = Replica(net.sim.charter_wire)
    for number in sorted(replica.beacon):
        fresh.add_round(net.sim.dev.sign(number))
    wires = list(net.sent)
    random.Random(2).shuffle(wires)
    fresh.add_all(wires)
    assert fresh.state_hash() == replica.state_hash()


def test_a_restarted_node_resumes_its_duties_without_signing_twice():
    net = Network(nodes=3, reps=12, behaviour=Behaviour(0, 0, 0, 0), seed=3)
    restarts = {net.leg.cycle_start(1) + 3, net.leg.cycle_start(2) + 1, net.leg.draw_round(2) + 9}

    def crash(number: int) -> None:
        if number in restarts:
            net.restart(number % 3)

    net.run(net.leg.cycle_start(3) - 1, on_round=crash)
    replica = net.replicas[0]
    result = net.leg.evaluate(replica.records, replica.beacon)
    assert result.cycles == 3, result.waiting
    assert not replica.forks and not result.panel_equivocations
    # at most one message per member, deadline, step and agreement round
    seen = set()
    for r in replica.records.values():
        if r.kind in ("propose", "prevote", "precommit"):
            key = (r.author, r.body.deadline, r.kind, r.body.round)
            assert key not in seen
            seen.add(key)


def test_panel_duties_alone_lease_cut_and_agree():
    """A representative's node without bots: its one key takes leases, cut-offs and agreement."""
    sim = AssemblySim("testnet", reps=7, seed=5, behaviour=Behaviour(0, 0, 0, 0))
    replica = Replica(sim.charter_wire)
    leg = Legislature(replica.charter, replica.charter_event.round)
    duties = [PanelDuties([b.public]) for b in sim.bots]
    keys = [b.key for b in sim.bots]
    for number in range(1, leg.cycle_start(3) + 1):
        replica.add_round(sim.dev.sign(number))
        for _ in range(6):
            hands = Hands(replica, keys)
            leg.evaluate(replica.records, replica.beacon, explain=False)
            for d in duties:
                d.step(leg, hands)
            if not hands.out:
                break
    result = leg.evaluate(replica.records, replica.beacon)
    # nothing was submitted, but every intake was settled by its panel, and everyone leased
    assert result.waiting == "Nothing is in the pipeline." or result.cycles >= 2
    assert leg.decision("intake", 0, 0) is not None and leg.decision("intake", 2, 0) is not None
    leases = {(r.author, r.body.cycle) for r in replica.records.values() if r.kind == "lease"}
    assert {(b.public, 2) for b in sim.bots} <= leases
    assert all(d.signed["cutoff"] >= 1 and d.signed["prevote"] >= 1 for d in duties)


def test_seeded_choices_are_the_same_everywhere():
    assert chance(1, "vote", b"x") == chance(1, "vote", b"x")
    assert chance(1, "vote", b"x") != chance(2, "vote", b"x")
    assert all(0 <= chance(i) < 1 for i in range(100))


def test_a_bots_file_is_checked_before_use(tmp_path):
    sim = AssemblySim("testnet", reps=6, seed=9, behaviour=Behaviour(0, 0, 0, 0))
    good = tmp_path / "bots.json"
    write_bots_file(good, template="testnet", reps=6, seed=9, behaviour={"absent": 0, "late": 0, "equivocating": 0, "unauthorised": 0},
                    indices=[0, 2, 4])
    bots = load_bots(good, sim.charter_wire)
    assert [b.index for b in bots.hosted] == [0, 2, 4] and bots.hosted[0].public == sim.bots[0].public
    from consensus.errors import KleroError

    other = AssemblySim("testnet", reps=6, seed=10, behaviour=Behaviour(0, 0, 0, 0))
    with pytest.raises(KleroError, match="another assembly"):
        load_bots(good, other.charter_wire)
    cases = {
        "garbage": b"\x00\xffnot json",
        "shape": json.dumps({"template": "testnet"}).encode(),
        "range": json.dumps({"template": "testnet", "reps": 6, "seed": 9, "behaviour": {}, "indices": [7], "proposals": 4}).encode(),
        "behaviour": json.dumps({"template": "testnet", "reps": 6, "seed": 9, "behaviour": {"rude": 1}, "indices": [1],
                                 "proposals": 4}).encode(),
        "nan": b'{"template": "testnet", "reps": 6, "seed": 9, "behaviour": {"late": NaN}, "indices": [1], "proposals": 4}',
        "share": json.dumps({"template": "testnet", "reps": 6, "seed": 9, "behaviour": {"absent": 0.8, "late": 0.5},
                             "indices": [1], "proposals": 4}).encode(),
        "template": json.dumps({"template": "/nonexistent/x.json", "reps": 6, "seed": 9, "behaviour": {}, "indices": [1],
                                "proposals": 4}).encode(),
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(data)
        with pytest.raises(KleroError) as caught:
            load_bots(path, sim.charter_wire)
        assert str(path) in str(caught.value), name


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_MESSAGE = st.tuples(
    st.sampled_from(["propose", "prevote", "precommit", "cutoff"]),
    st.integers(0, 6),  # agreement round
    st.one_of(st.none(), st.binary(min_size=32, max_size=32), st.binary(min_size=1, max_size=80)),
    st.integers(-1, 3),  # valid round
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 1), _MESSAGE), max_size=25))
def test_byzantine_panel_members_cannot_stop_the_honest_ones(messages):
    """Two of seven members sign whatever Hypothesis invents for the first deadline (well-formed
    events, hostile content: junk values, values naming missing cut-offs, far rounds, empty
    cut-offs); the five honest members' duties never fail and still decide it."""
    from consensus.agreement import value_id
    from consensus.panel import deadline_key, encode_value

    sim = AssemblySim("testnet", reps=7, seed=11, behaviour=Behaviour(0, 0, 0, 0))
    replica = Replica(sim.charter_wire)
    leg = Legislature(replica.charter, replica.charter_event.round)
    liars = [b.key for b in sim.bots[:2]]
    honest = PanelDuties([b.public for b in sim.bots[2:]])
    keys = [b.key for b in sim.bots]
    name = deadline_key("intake", 0, 0)
    for number in range(1, 30):
        replica.add_round(sim.dev.sign(number))
        if number == leg.start:

            def add(wire: bytes) -> None:
                outcome = replica.add(wire)
                assert outcome.status == "applied", outcome.rejection  # the hostile content reaches the duties

            hands = Hands(replica, liars, add)
            for who, (kind, round_, value, valid_round) in messages:
                author = bytes(liars[who].verify_key)
                if kind == "cutoff":
                    body = {"deadline": name, "cutoff": {"votes": [b"", b""], "items": [], "leases": b"", "revisions": [], "withdrawn": b""}}
                elif kind == "propose":
                    # junk, a value naming one unknown cut-off, or one naming round 2^62 (invalid: past the charter's bound)
                    junk = value if value and len(value) != 32 else encode_value([value or bytes(32)], number + 2 if valid_round < 2 else 1 << 62)
                    body = {"deadline": name, "round": round_, "valid_round": min(valid_round, round_ - 1), "value": junk}
                else:
                    body = {"deadline": name, "round": round_, "value": value_id(value) if value and len(value) != 32 else value}
                hands.sign(author, kind, body)
        for _ in range(6):
            hands = Hands(replica, keys)
            leg.evaluate(replica.records, replica.beacon, explain=False)
            honest.step(leg, hands)
            if not hands.out:
                break
        if leg.decision("intake", 0, 0) is not None:
            break
    assert leg.decision("intake", 0, 0) is not None, "the honest two thirds decided the deadline"


def test_a_failing_step_keeps_what_it_signed_and_says_why():
    """If storing one of its own events fails (a bug, a full disk), the events signed before it
    in that step are still returned for gossip, and the reason is kept for the status file."""
    sim = AssemblySim("testnet", reps=7, seed=13, behaviour=Behaviour(0, 0, 0, 0))
    replica = Replica(sim.charter_wire)
    reactor = Reactor(replica, [b.key for b in sim.bots])
    for number in range(1, 3):
        replica.add_round(sim.dev.sign(number))
    stored = []

    def add(wire: bytes) -> None:
        if len(stored) == 2:
            raise OSError("disk full")
        replica.add(wire)
        stored.append(wire)

    out = reactor.step(add)
    assert out == stored and len(out) == 2
    assert reactor.problem == "OSError: disk full"
    assert reactor.step() and reactor.problem == ""  # the next step carries on from the replica


def test_typing_bots_keep_writing_through_the_editing_window_and_the_text_counts():
    """The demo's bots: a drafting member adds a phrase every other round of the editing window;
    every node converges and the drafted text holds those changes."""
    net = Network(nodes=2, reps=12, behaviour=Behaviour(0, 0, 0, 0), seed=3)
    for reactor in net.reactors:
        reactor.bots.typing = True
    net.run(net.leg.cycle_start(1) - 1)
    assert len({r.state_hash() for r in net.replicas}) == 1
    replica = net.replicas[0]
    changes: dict = {}
    for r in replica.records.values():
        if r.kind == "doc.change":
            changes.setdefault((r.body.proposal, r.author), []).append(r)
    typed = max(len(v) for v in changes.values())
    assert typed >= 3, f"a drafting bot made only {typed} changes"
    result = net.leg.evaluate(replica.records, replica.beacon)
    assert not [c for c in result.ignored_changes if "more than" in c.get("reason", "")], "no change over the per-round limit"
