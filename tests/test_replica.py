"""The state is a function of the set of valid events (DESIGN.md §3).

Arrival order, duplicates and restarts never change the state hash; equivocations exclude the
author's events from the fork on, whichever copy arrived first; events break a chain only with
a reason.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import Replica
from consensus.events import event_id, sign_event
from consensus.lthash import LtHash
from consensus.events import NO_ASSEMBLY
from consensus.replica import APPLIED, DUPLICATE, EQUIVOCATION, INVALID, PENDING
from p2p.tools.simulate import Simulation, fake_round_prefix


def hostile_log():
    """A simulated log plus chain-invalid events, an equivocation and an excluded suffix."""
    sim = Simulation(seed=11, reps=5)
    wires = list(sim.log(250, forks=1))
    probe = Replica(wires[0])
    for w in wires[1:]:
        probe.add(w)
    honest = [a for a in sim.rep_authors if a.public not in probe.forks]
    rep, other = honest[0], honest[1]
    foreign = other.proposals[0] if other.proposals else sim.all_proposals[0]
    # a withdrawal of somebody else's proposal: invalid, and it blocks rep's chain there
    bad = sign_event(rep.key, assembly=sim.assembly, seq=rep.seq + 1, prev=rep.prev, kind="proposal.withdraw",
                     body={"proposal": foreign})
    after = sign_event(rep.key, assembly=sim.assembly, seq=rep.seq + 2, prev=event_id(bad), kind="comment",
                       body={"proposal": foreign, "text": "after the invalid one"})
    wires += [bad, after]
    return sim, wires


@pytest.fixture(scope="module")
def reference():
    sim, wires = hostile_log()
    r = Replica(wires[0])
    outcomes = [r.add(w) for w in wires[1:]]
    return sim, wires, r.state_hash(), outcomes, r


def test_reference_log_exercises_every_path(reference):
    _, _, _, outcomes, r = reference
    statuses = {o.status for o in outcomes}
    assert {APPLIED, EQUIVOCATION, INVALID} <= statuses
    assert any(o.rejection and o.rejection.code == "not_own_proposal" for o in outcomes)
    assert len(r.forks) == 1


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32), dup_share=st.floats(0, 0.5))
def test_any_order_with_duplicates_gives_the_same_state(reference, seed, dup_share):
    _, wires, expected, _, ref = reference
    rng = random.Random(seed)
    body = wires[1:] + rng.sample(wires[1:], int(len(wires) * dup_share))
    rng.shuffle(body)
    r = Replica(wires[0])
    for w in body:
        r.add(w)
    assert r.state_hash() == expected, f"seed {seed}"
    assert r.forks == ref.forks
    assert {k: v.seq for k, v in r.heads.items()} == {k: v.seq for k, v in ref.heads.items()}
    assert r.proposals.keys() == ref.proposals.keys()
    assert r.certified == ref.certified


def test_charter_alone_and_duplicates_are_quiet(small_log):
    r = Replica(small_log[0])
    empty = r.state_hash()
    assert r.add(small_log[0]).status == DUPLICATE
    first = r.add(small_log[1])
    assert first.status == APPLIED
    assert r.add(small_log[1]).status == DUPLICATE
    assert r.state_hash() != empty


def test_equivocation_excludes_from_the_fork_on_whichever_copy_came_first():
    sim = Simulation(seed=3, reps=3)
    wires = list(sim.log(30))
    a, b = sim.fork(0)
    rep = sim.rep_authors[0]
    hashes = set()
    for order in ([a, b], [b, a]):
        r = Replica(wires[0])
        for w in wires[1:]:
            r.add(w)
        seq_before = r.heads[rep.public].seq
        first = r.add(order[0])
        assert first.status == APPLIED
        out = r.add(order[1])
        assert out.status == EQUIVOCATION and out.rejection.code == "equivocation"
        assert event_id(order[0]) in out.excluded
        assert r.heads[rep.public].seq == seq_before
        assert r.forks[rep.public] == seq_before + 1
        hashes.add(r.state_hash())
    assert len(hashes) == 1


def test_gap_waits_then_releases_in_order(small_log):
    r = Replica(small_log[0])
    body = small_log[1:]
    for w in reversed(body):
        r.add(w)
    ref = Replica(small_log[0])
    for w in body:
        ref.add(w)
    assert r.state_hash() == ref.state_hash()
    assert not r.pending


def test_round_rules_break_the_chain_with_reasons():
    """Rounds never go back along a chain, a prefix must be the named round's, and an event
    naming a round the replica does not hold yet waits for it (with its successors)."""
    sim = Simulation(seed=5, reps=2)
    charter = sim.charter_wire
    rep = sim.rep_authors[0]
    key = rep.key
    rounds = {n: sim.dev.sign(n) for n in (9, 10, 11)}

    def at(n):
        return dict(round=n, round_prefix=rounds[n].randomness[:8])

    w1 = sign_event(key, assembly=sim.assembly, seq=1, prev=None, kind="proposal.submit", body={"title": "t", "summary": ""}, **at(10))
    back = sign_event(key, assembly=sim.assembly, seq=2, prev=event_id(w1), kind="comment",
                      body={"proposal": event_id(w1), "text": "x"}, **at(9))
    r = Replica(charter)
    assert r.add(w1).status == PENDING, "round 10 is not known yet"
    r.add_round(rounds[9])
    assert r.add(back).status == PENDING and not r.heads.get(rep.public)
    r.add_round(rounds[10])  # releases w1, then back, which goes back in rounds
    assert r.heads[rep.public].seq == 1 and r.blocked[rep.public] == (2, "round_backwards")
    wrong_prev = sign_event(key, assembly=sim.assembly, seq=2, prev=bytes(32), kind="comment",
                            body={"proposal": event_id(w1), "text": "x"}, **at(10))
    r2 = Replica(charter)
    r2.add_round(rounds[10])
    r2.add(w1)
    assert r2.add(wrong_prev).rejection.code == "prev_mismatch"
    # two different signed events at seq 2, one of them invalid: still an equivocation
    assert r.add(wrong_prev).status == EQUIVOCATION
    # a prefix that is not the named round's: the event could not have seen it
    forged = sign_event(key, assembly=sim.assembly, seq=2, prev=event_id(w1), kind="comment",
                        body={"proposal": event_id(w1), "text": "y"}, round=11, round_prefix=fake_round_prefix(11))
    r3 = Replica(charter)
    r3.add_round(rounds[10])
    r3.add(w1)
    assert r3.add(forged).status == PENDING
    r3.add_round(rounds[11])
    assert r3.blocked[rep.public] == (2, "wrong_round_prefix")


def test_rate_limit_per_round():
    from consensus.charter import Charter, Limits

    sim = Simulation(seed=6, reps=2)
    charter = Charter(name="Default limits", roster=tuple(a.public for a in sim.rep_authors), limits=Limits(),
                      beacon=sim.dev.chain)
    wire = sign_event(sim.convenor.key, assembly=NO_ASSEMBLY, seq=1, prev=None, kind="charter", body=charter)
    r = Replica(wire)
    assembly = event_id(wire)
    limit = r.limits.max_events_per_round
    rep = sim.rep_authors[0]
    rnd = sim.dev.sign(3)
    r.add_round(rnd)
    prev, outcome = None, None
    first = None
    for seq in range(1, limit + 2):
        if seq == 1:
            w = sign_event(rep.key, assembly=assembly, seq=1, prev=None, kind="proposal.submit",
                           body={"title": "t", "summary": ""}, round=3, round_prefix=rnd.randomness[:8])
            first = event_id(w)
        else:
            w = sign_event(rep.key, assembly=assembly, seq=seq, prev=prev, kind="comment",
                           body={"proposal": first, "text": str(seq)}, round=3, round_prefix=rnd.randomness[:8])
        prev = event_id(w)
        outcome = r.add(w)
    assert outcome.status == INVALID and outcome.rejection.code == "round_rate"
    assert r.heads[rep.public].seq == limit


def test_pending_is_bounded():
    sim = Simulation(seed=8, reps=2)
    rep = sim.rep_authors[0]
    far = sim.charter_wire and Replica(sim.charter_wire).limits.max_pending_ahead + 5
    w = sign_event(rep.key, assembly=sim.assembly, seq=far, prev=bytes(32), kind="proposal.submit",
                   body={"title": "t", "summary": ""})
    r = Replica(sim.charter_wire)
    out = r.add(w)
    assert out.rejection.code == "too_far_ahead" and not out.rejection.fatal
    assert not r.pending
    near = sign_event(rep.key, assembly=sim.assembly, seq=3, prev=bytes(32), kind="proposal.submit",
                      body={"title": "t", "summary": ""})
    assert r.add(near).status == PENDING


def test_state_hash_work_follows_touched_authors_only(small_log, monkeypatch):
    """One more event costs the same on a big state: only the touched author is rehashed."""
    r = Replica(small_log[0])
    for w in small_log[1:-1]:
        r.add(w)
    r.state_hash()
    calls = []
    real_add, real_remove = LtHash.add, LtHash.remove
    monkeypatch.setattr(LtHash, "add", lambda self, f: (calls.append("+"), real_add(self, f)))
    monkeypatch.setattr(LtHash, "remove", lambda self, f: (calls.append("-"), real_remove(self, f)))
    r.add(small_log[-1])
    r.state_hash()
    assert len(calls) <= 2


def test_lthash_is_a_set_hash():
    facts = [bytes([i]) * 5 for i in range(20)]
    a, b = LtHash(), LtHash()
    for f in facts:
        a.add(f)
    for f in reversed(facts):
        b.add(f)
    assert a.digest() == b.digest()
    b.add(b"extra")
    assert a.digest() != b.digest()
    b.remove(b"extra")
    assert a.digest() == b.digest()
    for f in facts:
        b.remove(f)
    assert b.digest() == LtHash().digest()


class CheckedLedger:
    """A MemoryLedger that fails the test on any status change the lifecycle table forbids."""

    def __init__(self):
        from consensus import MemoryLedger

        self.inner = MemoryLedger()
        self.seen = set()

    def get(self, author, seq):
        return self.inner.get(author, seq)

    def put(self, author, seq, stored):
        from consensus.replica import TRANSITIONS

        old = self.inner.get(author, seq)
        before = old.status if old else None
        if before != stored.status:
            assert stored.status in TRANSITIONS[before], f"{before} -> {stored.status}"
            self.seen.add((before, stored.status))
        if old is not None:
            assert old.id == stored.id and old.wire == stored.wire, "a stored event was replaced"
        self.inner.put(author, seq, stored)

    def add_fork(self, author, seq, first, second):
        self.inner.add_fork(author, seq, first, second)


@settings(max_examples=10)
@given(seed=st.integers(0, 2**32))
def test_every_status_change_follows_the_lifecycle_table(reference, seed):
    _, wires, expected, _, _ = reference
    body = list(wires[1:])
    random.Random(seed).shuffle(body)
    ledger = CheckedLedger()
    r = Replica(wires[0], ledger=ledger)
    for w in body:
        r.add(w)
    assert r.state_hash() == expected


def test_convenor_on_the_roster_can_equivocate_after_the_charter():
    """The convenor's chain starts with the charter; a fork at seq 2 rewinds it to the charter."""
    from consensus.charter import Charter
    from consensus.events import NO_ASSEMBLY
    from p2p.tools.simulate import derived_key

    convenor = derived_key(1, "convenor", 0)
    charter = Charter(name="Tiny", roster=(bytes(convenor.verify_key),))
    charter_wire = sign_event(convenor, assembly=NO_ASSEMBLY, seq=1, prev=None, kind="charter", body=charter)
    assembly = event_id(charter_wire)
    a = sign_event(convenor, assembly=assembly, seq=2, prev=assembly, kind="proposal.submit", body={"title": "A", "summary": ""})
    b = sign_event(convenor, assembly=assembly, seq=2, prev=assembly, kind="proposal.submit", body={"title": "B", "summary": ""})
    r = Replica(charter_wire)
    empty = r.state_hash()
    assert r.add(a).status == APPLIED
    assert r.add(b).status == EQUIVOCATION
    head = r.heads[bytes(convenor.verify_key)]
    assert (head.seq, head.id) == (1, assembly)
    assert r.state_hash() != empty  # the fork itself is part of the state
