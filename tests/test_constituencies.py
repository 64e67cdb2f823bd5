"""Constituencies and seats (issue 15): who represents whom, and every bad act neutralised.

Two levels.  The rules (``consensus.constituency.Roll``) are tested on records made by hand, one
bad act per test, each with the reason a person would read.  The whole path (signed events, a
replica, cut-off panels deciding seats, per-cycle rosters) is tested on simulated assemblies
whose bots found constituencies and whose constituent bots join and endorse; the golden vector
``tests/vectors/constituencies.*`` pins every problem code and every certified seat.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from consensus.charter import DRAW, RANDOM, Charter, Representation
from consensus.constituency import Roll
from consensus.kinds import Certify, Endorse, Found, Join, Leave, Revoke, Serve
from consensus.replica import PENDING, REJECTED, Record, Replica
from p2p.tools.bots import AssemblySim, Behaviour

VECTORS = Path(__file__).parent / "vectors"
REG = [bytes([0xA0 + i]) * 32 for i in range(3)]
HONEST = Behaviour(0, 0, 0, 0)


def key(n: int) -> bytes:
    return hashlib.sha256(b"person%d" % n).digest()


class Acts:
    """Records made by hand, in the order given (each author's seq counts up)."""

    def __init__(self, **rep):
        self.charter = Charter(name="t", registrars=tuple(REG), representation=Representation(**{"min_constituency": 2, **rep}))
        self.records: list[Record] = []
        self.seqs: dict[bytes, int] = {}

    def act(self, author: bytes, body, round_: int = 1) -> bytes:
        seq = self.seqs[author] = self.seqs.get(author, 0) + 1
        rid = hashlib.sha256(author + seq.to_bytes(4, "big") + repr(body).encode()).digest()
        self.records.append(Record(rid, author, seq, round_, b"", body.KIND, body))
        return rid

    def certify(self, *people: int, by=(0,), round_: int = 1, **extra) -> None:
        for n in people:
            for r in by:
                self.act(REG[r], Certify(key(n), **extra), round_)

    def group(self, founder: int, members=(), round_: int = 1, serve=True) -> bytes:
        gid = self.act(key(founder), Found("Riverside", "Our streets."), round_)
        if serve:
            self.act(key(founder), Serve("yes"), round_)
        for m in members:
            self.act(key(m), Join(gid), round_)
        return gid

    def roll(self, before: int = 100, cycle: int = 0) -> Roll:
        roll = Roll(self.charter)
        roll.load(self.records)
        roll.advance(before, cycle, b"\x07" * 32, lambda r: r // 10)
        return roll

    def codes(self, roll: Roll) -> list[tuple[str, str]]:
        return [(p.kind, p.code) for p in roll.problems]


def seat_of(roll: Roll, gid: bytes):
    return next(s for s in roll.seats(0, b"\x07" * 32) if s.group == gid)


def test_majority_endorsement_holds_the_seat_and_losing_it_is_recall():
    a = Acts()
    a.certify(*range(5))
    gid = a.group(0, [1, 2, 3, 4])
    for m in (0, 1, 2):
        a.act(key(m), Endorse(gid, key(0)))
    seat = seat_of(a.roll(), gid)
    assert seat.holder == key(0) and seat.reason == "endorsed by 3 of its 5 members"
    # two endorsers change their minds in a later round: no majority, no seat (recall)
    a.act(key(1), Endorse(gid, key(3)), 5)
    a.act(key(2), Endorse(gid, key(3)), 5)
    assert seat_of(a.roll(before=5), gid).holder == key(0), "acts at or after the boundary wait for the next one"
    seat = seat_of(a.roll(before=6), gid)
    assert seat.holder is None and "more than half" in seat.reason and "most: 2 of 5" in seat.reason


def test_unwilling_member_is_not_seated_and_small_groups_hold_no_seat():
    a = Acts(min_constituency=3)
    a.certify(*range(4))
    gid = a.group(0, [1, 2], serve=False)
    for m in (0, 1, 2):
        a.act(key(m), Endorse(gid, key(0)))
    assert "has not said yes to serving" in seat_of(a.roll(), gid).reason
    a.act(key(0), Serve("yes"))
    assert seat_of(a.roll(), gid).holder == key(0)
    a.act(key(2), Leave(gid), 2)  # (in the same round, leaving would come before joining)
    seat = seat_of(a.roll(), gid)
    assert seat.holder is None and "a seat needs at least 3" in seat.reason


def test_bad_acts_each_get_a_reason():
    a = Acts(max_constituency=3, acts_per_cycle=4)
    a.certify(*range(8))
    gid = a.group(0, [1, 2])
    other = a.group(5, [])
    a.act(key(3), Join(gid))                      # beyond the cap of 3
    a.act(key(1), Join(other))                    # already in a constituency
    a.act(key(2), Endorse(gid, key(6)))           # endorses a non-member
    a.act(key(6), Endorse(gid, key(0)))           # endorses in a group it is not in
    a.act(key(99), Join(other))                   # never certified
    a.act(key(6), Join(b"\x00" * 32))             # no such constituency
    for _ in range(5):                            # a flood: the 5th act in one cycle
        a.act(key(7), Serve("yes"))
    roll = a.roll()
    # within one round acts apply by phase and author, so the problems come in that order, not as written
    assert sorted(a.codes(roll)) == sorted([
        ("constituency.join", "constituency_full"), ("constituency.join", "already_member"), ("endorse", "endorse_non_member"),
        ("endorse", "not_member"), ("constituency.join", "not_certified"), ("constituency.join", "no_constituency"),
        ("serve", "over_quota")])
    assert all(p.reason.endswith(".") and p.reason[0].isupper() for p in roll.problems)
    assert len(roll.groups[gid].members) == 3 and roll.member_of[key(1)] == gid and key(3) not in roll.member_of


def test_simultaneous_joins_at_the_cap_are_taken_in_a_fixed_order():
    """Whatever order the events arrive in, the same joiners get in: round, then author."""
    a = Acts(max_constituency=3)
    a.certify(*range(10))
    gid = a.group(0, [])
    for m in range(1, 10):
        a.act(key(m), Join(gid), 2)
    expected = set(a.roll().groups[gid].members)
    shuffled = list(a.records)
    random.Random(4).shuffle(shuffled)
    roll = Roll(a.charter)
    roll.load(shuffled)
    roll.advance(100, 0, b"\x07" * 32, lambda r: 0)
    assert set(roll.groups[gid].members) == expected and len(expected) == 3
    assert sorted(expected - {key(0)}) == sorted(key(m) for m in range(1, 10))[:2]


def test_threshold_revocation_and_replacement():
    a = Acts(threshold=2)
    a.certify(0, 1, 2, by=(0, 1))
    a.certify(3, by=(0,))  # one registrar only: not a constituent
    gid = a.group(0, [1, 2, 3])
    for m in (0, 1, 2):
        a.act(key(m), Endorse(gid, key(0)))
    roll = a.roll()
    assert ("constituency.join", "not_certified") in a.codes(roll) and key(3) not in roll.member_of
    # the holder loses a device: both registrars certify a new key replacing the old one
    a.certify(10, by=(0, 1), round_=3, replaces=key(0))
    roll = a.roll()
    assert key(10) in roll.groups[gid].members and key(0) not in roll.member_of
    assert seat_of(roll, gid).holder == key(10), "endorsements and willingness follow the person to their new key"
    assert roll.groups[gid].endorsements[key(1)] == key(10)
    a.act(key(0), Endorse(gid, key(1)), 4)  # the lost key acts no more
    assert a.codes(a.roll())[-1] == ("endorse", "not_certified")
    # one registrar's revocation drops a member below the threshold: they leave
    a.act(REG[1], Revoke(key(2)), 5)
    assert key(2) not in a.roll().member_of


def test_a_registrar_certifying_one_person_twice_is_shown():
    a = Acts()
    person = b"\x55" * 32
    a.certify(0, person=person)
    a.certify(1, person=person)
    roll = a.roll()
    assert a.codes(roll) == [("registrar.certify", "duplicate_person")]
    assert roll.duplicates[0]["first"] == key(0).hex() and roll.duplicates[0]["second"] == key(1).hex()
    assert roll.certified(key(0)) and not roll.certified(key(1))


def test_draw_rule_draws_among_willing_nominees_and_keeps_the_term():
    a = Acts(seat_rule=DRAW, term_cycles=2)
    a.certify(*range(6))
    gid = a.group(0, [1, 2, 3, 4, 5])
    a.act(key(1), Serve("yes"))
    a.act(key(2), Serve("yes"))
    for m, whom in ((0, 1), (3, 2), (4, 2), (5, 3)):  # 3 nominated but unwilling
        a.act(key(m), Endorse(gid, key(whom)))
    roll = a.roll()
    seat = roll.seats(0, b"\x07" * 32)[0]
    assert seat.holder in (key(1), key(2)) and "2 willing nominee(s)" in seat.reason
    # another boundary's randomness would draw again, but the term keeps the holder
    roll.settle([seat.holder], 1)
    kept = roll.seats(1, b"\x09" * 32)[0]
    assert kept.holder == seat.holder and "term" in kept.reason
    assert roll.seats(2, b"\x09" * 32)[0].reason.startswith("drawn by lot"), "the term ended: drawn again"


def test_random_grouping_places_everyone_by_lot_in_groups_of_the_target_size():
    a = Acts(grouping=RANDOM, group_size=4, min_constituency=2, max_constituency=10)
    a.certify(*range(10))
    a.act(key(0), Found("mine", ""))  # nobody founds under random grouping
    roll = a.roll()
    assert a.codes(roll) == [("constituency.found", "random_grouping")]
    sizes = sorted(len(g.members) for g in roll.groups.values())
    assert sizes == [2, 4, 4] and len(roll.member_of) == 10
    again = a.roll()
    assert {k: g for k, g in again.member_of.items()} == roll.member_of, "the lot is reproducible"


# ---------------------------------------------------------------------- signed events, panels, rosters


def sim_with(constituents=3, cycles=3, seed=3, **kw) -> AssemblySim:
    return AssemblySim("demo", seed=seed, cycles=cycles, behaviour=HONEST, constituents=constituents, **kw)


def test_seats_arise_from_constituencies_and_change_only_at_boundaries():
    sim = sim_with(cycles=3)
    n = len(sim.bots)
    # bot 0's constituents turn to one of themselves in the middle of cycle 1: the seat moves at
    # the boundary of cycle 2, never inside cycle 1
    leg = sim.legislature
    mid = leg.cycle_start(1) + 10
    group = []

    def found_id():
        return next(r.id for r in sim.replica.records.values() if r.kind == "constituency.found" and r.author == sim.bots[0].public)

    constituent = n  # the first constituent bot (it joined bot 0's constituency)
    sim.plan_act(mid, constituent, "serve", {"answer": "yes"})
    log = []
    for item in sim.run():
        log.append(item)
        if not group and sim.replica.records and any(r.kind == "constituency.found" for r in sim.replica.records.values()):
            group.append(found_id())
            gid = group[0]
            for c in range(n, n + 3):
                sim.plan_act(mid, c, "endorse", {"constituency": gid, "member": sim.signer(constituent).public})
    result = leg.evaluate_replica(sim.replica)
    assert result.cycles == 3, result.waiting
    me, new = sim.bots[0].public, sim.signer(constituent).public
    assert me in result.rosters[1] and me in result.rosters[2] and new not in result.rosters[2]
    assert new in result.rosters[3] and me not in result.rosters[3], "recalled at the boundary of cycle 2"
    assert all(d.get("decided_seats") for d in result.deadlines if d["what"] == "intake")
    # the same events in another order give the same state and the same rosters
    shuffled = log[1:]
    random.Random(1).shuffle(shuffled)
    other = Replica(log[0])
    for _ in range(3):  # rounds and predecessors arrive in any order: a few passes, as sync would
        for item in shuffled:
            other.add_item(item)
    assert other.state_hash() == sim.replica.state_hash()
    again = type(leg)(other.charter, other.charter_event.round).evaluate_replica(other)
    assert again.rosters == result.rosters


def test_declared_absence_makes_the_draws_skip_a_member():
    sim = sim_with(cycles=2, seed=5)
    target = sim.bots[2]
    sim.plan_act(sim.legislature.cycle_start(1) - 3, 2, "absence", {"cycle": 1})
    list(sim.run())
    result = sim.legislature.evaluate_replica(sim.replica)
    intake1 = next(d for d in result.deadlines if d["what"] == "intake" and d["cycle"] == 1)
    assert intake1["decided_absent"] == [target.public.hex()]
    assert all(target.public not in d.members for d in result.draws if d.cycle == 1)


def test_unvouched_keys_wait_for_a_registrar_and_are_bounded():
    sim = sim_with(cycles=1)
    log = list(sim.run())
    charter = log[0]
    # a constituent's events before the registrar's certification: held, then applied
    certify = [w for w in log if sim.replica.ledger and b"registrar.certify" in w]
    rest = [w for w in log[1:] if w not in certify]
    replica = Replica(charter)
    for _ in range(3):
        for w in rest:
            replica.add_item(w)
    assert replica.unvouched, "constituents' acts wait for a voucher"
    for w in certify:
        replica.add_item(w)
    for _ in range(2):
        for w in rest:
            replica.add_item(w)
    assert not replica.unvouched and replica.state_hash() == sim.replica.state_hash()


def test_a_flood_of_unregistered_keys_is_refused_without_penalty():
    from consensus.events import sign_event

    sim = sim_with(cycles=0, constituents=1)
    charter = next(iter(sim.run()))
    replica = Replica(charter)
    limit = replica.limits.max_pending_ahead
    outcomes = []
    for i in range(limit + 3):
        k = SigningKey(hashlib.sha256(b"flood%d" % i).digest())
        wire = sign_event(k, assembly=replica.assembly, seq=1, prev=None, kind="serve", body={"answer": "yes"})
        outcomes.append(replica.add(wire))
    assert [o.status for o in outcomes[:limit]] == [PENDING] * limit
    last = outcomes[-1]
    assert last.status == REJECTED and last.rejection.code == "not_certified" and not last.rejection.fatal


def test_golden_vector():
    """The log in tests/vectors/constituencies.log, replayed from nothing by ``verify``, gives
    exactly (tests/test_vectors.py) the problems, duplicates, seats, decided seats and rosters recorded beside it: one of
    each bad act (uncertified key, revoked key, join beyond the cap, double membership, endorsing
    a non-member, a flood, one person certified twice) and a seat moved mid-cycle that changes
    only at the next boundary.  Regenerate with ``python tests/vectors/make.py`` and read the diff."""
    # (tests/test_vectors.py replays the log and compares it with this file; here: what it must contain)
    got = json.loads((VECTORS / "constituencies.expected.json").read_text())
    codes = {p["code"] for p in got["representation_problems"]} | {r["code"] for r in got["rejected"]}
    assert codes == {"duplicate_person", "constituency_full", "not_certified", "not_member", "already_member", "over_quota",
                     "endorse_non_member"}
    moved = [s for s in got["seats"] if s["reason"] == "endorsed by 3 of its 4 members" and s["cycle"] == 2]
    assert moved and all(s["holder"] not in got["rosters"]["1"] for s in moved), "the seat moved at the boundary of cycle 1"


ACT = st.tuples(st.integers(0, 7), st.sampled_from(["found", "join", "leave", "endorse", "serve", "certify", "revoke"]),
                st.integers(0, 7), st.integers(1, 4))


@settings(max_examples=60, deadline=None)
@given(st.lists(ACT, max_size=40), st.randoms(use_true_random=False))
def test_any_acts_in_any_order_keep_the_invariants(acts, rnd):
    """Whatever people sign: nobody is in two constituencies, no constituency is over the cap,
    every endorsement that counts is between members, and the outcome depends only on the set."""
    a = Acts(max_constituency=3, threshold=1)
    gids = []
    for who, what, other, round_ in acts:
        if what == "certify":
            a.act(REG[other % 2], Certify(key(who)), round_)
        elif what == "revoke":
            a.act(REG[other % 2], Revoke(key(who)), round_)
        elif what == "found":
            gids.append(a.act(key(who), Found("g", ""), round_))
        elif what == "serve":
            a.act(key(who), Serve("yes"), round_)
        elif gids:
            gid = gids[other % len(gids)]
            body = Join(gid) if what == "join" else Leave(gid) if what == "leave" else Endorse(gid, key(other))
            a.act(key(who), body, round_)
    roll = a.roll()
    for gid, g in roll.groups.items():
        assert 0 < len(g.members) <= 3
        assert all(roll.member_of[m] == gid for m in g.members)
        assert all(w in g.members for w in g.endorsements)
    assert sum(len(g.members) for g in roll.groups.values()) == len(roll.member_of)
    shuffled = list(a.records)
    rnd.shuffle(shuffled)
    other = Roll(a.charter)
    other.load(shuffled)
    other.advance(100, 0, b"\x07" * 32, lambda r: r // 10)
    assert other.member_of == roll.member_of and [s for s in other.seats(0, b"\x07" * 32)] == roll.seats(0, b"\x07" * 32)


# ---------------------------------------------------------------------- people: the service, the record


ME = SigningKey(b"\x42" * 32)


@pytest.fixture(scope="module")
def assembly():
    sim = AssemblySim("demo", seed=3, cycles=3, behaviour=HONEST, constituents=3, people=(bytes(ME.verify_key),))
    log = list(sim.run())
    return sim, log


def test_a_constituent_acts_and_hears_sentences(assembly):
    from p2p.service import Service
    from consensus.errors import KleroError

    sim, _ = assembly
    me = Service(sim.replica, ME)
    st = me.standing()
    assert st["certified"] and st["constituency"] is None and not st["willing"]
    first = me.join("Neighbourhood 1")
    assert "Joined 'Neighbourhood 1'" in first["what"]
    with pytest.raises(KleroError, match="already a member of 'Neighbourhood 1'"):
        me.join("Neighbourhood 2")
    with pytest.raises(KleroError, match="only a member of your own constituency"):
        me.endorse(sim.bots[5].public.hex())
    with pytest.raises(KleroError, match="Leave it first"):
        me.found("Riverside")
    with pytest.raises(KleroError, match="not one of the charter's registrars"):
        me.certify(sim.bots[1].public.hex())
    assert "Endorsed yourself" in me.endorse("me")["what"]
    assert "said yes to serving" in me.serve("yes")["what"]
    asked = me.ask("Will you vote for the night buses?")
    # the representative (bot 0, who founded Neighbourhood 1) answers in the thread
    rep = Service(sim.replica, sim.bots[0].key)
    rep.ask("Yes: my vote and its revision are in my record.", reply=asked["id"][:8])
    view = Service(sim.replica, None, me=bytes(ME.verify_key))
    g = view.constituency()
    assert g["name"] == "Neighbourhood 1" and g["members"] == 5 and g["holder"] == sim.bots[0].public.hex()
    assert [p["text"][:4] for p in g["thread"]] == ["Will", "Yes:"] and g["thread"][1]["by_representative"]
    assert g["thread"][0]["replies"] == [g["thread"][1]["id"]]
    mine = next(m for m in g["members_list"] if m["key"] == bytes(ME.verify_key).hex())
    assert mine["willing"] and mine["support"] == 1 and mine["endorses"] == mine["key"]
    rows = view.constituencies()
    assert len(rows) == 10 and sum(r["mine"] for r in rows) == 1  # the bots' 9 and the person's neighbours' one
    roster = view.roster(2)
    assert roster["certified"] and len(roster["seats"]) == 9 and all(r["name"] for r in roster["seats"])
    with pytest.raises(KleroError, match="read-only"):
        view.join("Neighbourhood 3")
    assert "Left 'Neighbourhood 1'" in me.leave()["what"]
    assert me.standing()["constituency"] is None


def test_the_public_record_in_every_format_checks_and_feed_readers_show_it(assembly, tmp_path, capsys):
    import feedparser

    from desktop.cli import main
    from p2p.logfile import write_log

    sim, log = assembly
    path = tmp_path / "assembly.log"
    write_log(path, log)
    key = sim.bots[0].public.hex()
    for fmt in ("json", "atom", "html"):
        out = tmp_path / f"record.{fmt}"
        assert main(["record", key, "--log", str(path), "--format", fmt, "-o", str(out)]) == 0
        assert main(["verify-record", str(out)]) == 0, capsys.readouterr()
        assert "checks:" in capsys.readouterr().out
    feed = feedparser.parse((tmp_path / "record.atom").read_text())
    assert not feed.bozo, feed.bozo_exception
    kinds = [t["term"] for e in feed.entries for t in e.tags]
    assert {"seat", "vote", "attendance"} <= set(kinds) and len(feed.entries) == len(kinds)
    assert feed.feed.title.startswith("Record of") and all(e.id and e.title and e.summary for e in feed.entries)
    record = json.loads((tmp_path / "record.json").read_text())
    seats = [e for e in record["entries"] if e["kind"] == "seat"]
    assert [e["claim"]["cycle"] for e in seats] == [1, 2, 3]
    # a vote's claim changed after signing is caught, and so is a key that never held the seat
    vote = next(e for e in record["entries"] if e["kind"] == "vote")
    vote["claim"]["choice"] = "kill" if vote["claim"]["choice"] == "promote" else "promote"
    seats[0]["claim"]["panel"] = seats[0]["claim"]["panel"][:2]
    bad = tmp_path / "forged.json"
    bad.write_text(json.dumps(record))
    assert main(["verify-record", str(bad)]) == 1
    said = capsys.readouterr().out
    assert "claims a vote its signed event does not say" in said and "no quorum of precommits" in said


def test_the_inbox_says_what_constituencies_need_of_a_person(assembly):
    from p2p.service import Service

    sim, _ = assembly
    holder = Service(sim.replica, sim.bots[4].key)
    asker = Service(sim.replica, sim.constituents[3 * 4].key)  # a constituent of Neighbourhood 5
    asker.ask("What will you do about the bus lanes?")
    items = [i for i in holder.inbox() if i["kind"] == "question"]
    assert len(items) == 1 and "bus lanes" in items[0]["text"] and "--reply" in items[0]["text"]
    post = next(p for p in holder.posts() if "bus lanes" in p["text"])
    holder.ask("I will vote for them.", reply=post["id"][:8])
    assert not [i for i in holder.inbox() if i["kind"] == "question"], "answered questions leave the inbox"
    stranger = Service(sim.replica, ME)
    texts = [i["text"] for i in stranger.inbox() if i["kind"] == "constituency"]
    assert texts and ("join one" in texts[0])


def test_the_evaluation_reuses_applied_acts_and_a_late_act_replays_them():
    """A node evaluates every round: the representation acts already applied at a boundary are
    reused.  An act that arrives late naming an old round makes the next evaluation start over,
    and every evaluation equals one made from nothing."""
    from consensus.legislature import Legislature

    sim = sim_with(cycles=2, seed=7)
    log = list(sim.run())
    replica = Replica(log[0])
    leg = Legislature(replica.charter, replica.charter_event.round)
    held = []
    for k, item in enumerate(log[1:]):
        replica.add_item(item)
        held.append(item)
        if k % 97 == 0 or k == len(log) - 2:
            cached = leg.evaluate_replica(replica)
            fresh = Legislature(replica.charter, replica.charter_event.round).evaluate(dict(replica.records), replica.beacon)
            assert (cached.rosters, cached.seats, cached.representation_problems) == \
                   (fresh.rosters, fresh.seats, fresh.representation_problems), f"after {k + 1} items"
    # a constituent's endorsement backdated to before cycle 0's boundary, arriving now
    c = sim.constituents[0]
    from consensus.events import sign_event

    gid = next(r.id for r in replica.records.values() if r.kind == "constituency.found" and r.author == sim.bots[1].public)
    late = sign_event(c.key, assembly=replica.assembly, seq=c.seq + 1, prev=c.prev, kind="endorse",
                      body={"constituency": gid, "member": sim.bots[1].public}, round=c.last_round,
                      round_prefix=replica.beacon[c.last_round][:8])
    assert replica.add(late).status == "applied"
    cached = leg.evaluate_replica(replica)
    fresh = Legislature(replica.charter, replica.charter_event.round).evaluate(dict(replica.records), replica.beacon)
    assert cached.representation_problems == fresh.representation_problems
    assert cached.representation_problems[-1]["code"] == "not_member"


def test_the_charters_representation_round_trips_and_refuses_what_cannot_work():
    from consensus.cbor import decode, encode
    from consensus.errors import InvalidInput

    rep = Representation(threshold=2, max_constituency=500, min_constituency=20, seat_rule=DRAW, term_cycles=3)
    charter = Charter(name="c", registrars=tuple(REG), representation=rep)
    body = decode(encode(charter.to_body()))
    assert Charter.from_body(body) == charter
    assert body["representation"] == {"seat_rule": "draw", "threshold": 2, "term_cycles": 3, "max_constituency": 500,
                                      "min_constituency": 20}
    assert "representation" not in Charter(name="old").to_body(), "charters without it keep their bytes and id"
    for bad, said in ((dict(threshold=4), "names only 3"), (dict(min_constituency=2000), "above its max"),
                      (dict(seat_rule="loudest"), "must be one of"), (dict(grouping=RANDOM, group_size=5, min_constituency=50),
                                                                      "group_size must lie")):
        body = Charter(name="c", registrars=tuple(REG)).to_body()
        body["representation"] = {k: v for k, v in sorted({**Representation().to_body(), **bad}.items(),
                                                          key=lambda kv: (len(kv[0]), kv[0]))}
        with pytest.raises(InvalidInput, match=said):
            Charter.from_body(body)


def test_a_constituent_on_the_command_line(assembly, tmp_path, klero_home, capsys):
    """`klero constituency …` over a profile's replica (no node running): sentences, --json, and a
    refusal that says what to do, with exit 2."""
    from desktop.cli import main
    from p2p import profile
    from p2p.logfile import write_log

    sim, log = assembly
    path = tmp_path / "assembly.log"
    write_log(path, log)
    profile.create("me", "a long test passphrase", kdf="interactive", seed=b"\x42" * 32)
    assert main(["import", "--profile", "me", str(path)]) == 0
    capsys.readouterr()
    assert main(["constituency", "me", "--profile", "me"]) == 0
    assert "Not a member of any constituency" in capsys.readouterr().out
    assert main(["constituency", "join", "Neighbourhood 2", "--profile", "me"]) == 0
    assert "Joined 'Neighbourhood 2'" in capsys.readouterr().out
    assert main(["constituency", "join", "Neighbourhood 3", "--profile", "me"]) == 2
    assert "leave it first" in capsys.readouterr().err
    assert main(["constituency", "endorse", "me", "--profile", "me"]) == 0
    assert main(["constituency", "ask", "When do we meet?", "--profile", "me"]) == 0
    capsys.readouterr()
    assert main(["constituency", "show", "--profile", "me", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == "Neighbourhood 2" and shown["thread"][0]["text"] == "When do we meet?"
    assert main(["roster", "--profile", "me", "--cycle", "2"]) == 0
    assert "certified by the panel of the boundary of cycle 1" in capsys.readouterr().out
