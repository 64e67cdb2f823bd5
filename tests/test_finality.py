"""Decided stays decided: finality and liveness against any single bad key holder (issue 12).

Every attack here is signed with the simulation's own seeded keys (legitimate representatives)
against a real multi-cycle log of the demo charter, then the log is replayed from nothing:

* a fork signed *after* a deadline was certified — a committee member's second vote, a panel
  member's second cut-off, an author's second submission, a second lease — changes no decided
  tally, draw, seat, certificate or law (Hypothesis picks which event to fork and what to sign);
* a value naming a seed round beyond the charter's bound is invalid for every honest member
  and for ``verify``;
* one author's flood of submissions does not grow anyone's cut-off;
* amendment heads that are not the proposer's own changes descending from the base are refused;
* ancient beacon rounds are refused;
* panels with silent members give way to fresh ones, so ``klero simulate`` completes every
  cycle with up to 30 % of representatives absent (a sweep over seeds and shares).

Replays trust the simulation's signatures (``signature_checked``): the replica's checks are the
subject of tests/test_hostile.py; here the subject is what a legitimate key can still sign.
"""

from __future__ import annotations

import functools

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus.agreement import quorum_size
from consensus.events import event_id, sign_event, split_wire
from consensus.legislature import PASSED, PROMOTED, Legislature
from consensus.panel import CutOff, deadline_key, encode_value, proposer_offset, valid_value
from consensus.replica import Replica
from p2p.tools.bots import AssemblySim, Behaviour

HONEST = Behaviour(absent=0, late=0, equivocating=0, unauthorised=0)
SEED, CYCLES = 1, 4


def fields_of(wire: bytes) -> dict:
    return split_wire(wire, 1 << 20)[2]


def replay(charter: bytes, items) -> Replica:
    r = Replica(charter)
    for item in items:
        r.add_item(item, signature_checked=True)
    return r


def evaluate(replica: Replica):
    return Legislature(replica.charter, replica.charter_event.round).evaluate_replica(replica)


def decided(result) -> dict:
    """Everything a deadline decided: outcomes, tallies, draws, certificates, laws."""
    return {
        "cycles": result.cycles,
        "proposals": {p.id: (p.status, p.stage, p.revision, tuple(p.history)) for p in result.proposals.values()},
        "ballots": sorted((b.kind, b.proposal, b.amendment or b"", b.cycle, b.stage, b.revision, tuple(sorted(b.counts.items())),
                           b.outcome) for b in result.ballots),
        "draws": [(d.proposal, d.cycle, d.stage, d.seed, d.members) for d in result.draws],
        "deadlines": result.deadlines,
    }


@functools.lru_cache(maxsize=None)
def honest_run():
    """A demo assembly of honest bots over four cycles: every stage, amendments, a passed law."""
    sim = AssemblySim("demo", seed=SEED, cycles=CYCLES, behaviour=HONEST)
    items = list(sim.run())
    result = evaluate(replay(sim.charter_wire, items[1:]))
    assert result.cycles == CYCLES and any(p.status == PASSED for p in result.proposals.values())
    return sim, items, result


def other_body(f: dict) -> tuple[str, dict]:
    """A different, well-formed event at the same seq: what a key holder would sign to undo."""
    body = dict(f["body"])
    kind = f["kind"]
    if kind == "vote":
        flip = {"promote": "kill", "kill": "promote", "yes": "no", "no": "yes", "adopt": "reject", "reject": "adopt"}
        body["choice"] = flip[body["choice"]]
    elif kind == "proposal.submit":
        body["title"] = body["title"][:150] + " (withdrawn by a fork)"
    elif kind == "lease":
        body["cycle"] += 1000
    elif kind == "cutoff":
        body["cutoff"] = CutOff().to_body()
    elif kind in ("prevote", "precommit"):
        body["value"] = None if body["value"] is not None else bytes(32)
    elif kind == "propose":
        body["round"] += 1
    elif kind in ("amendment.propose", "comment"):
        body["summary" if kind != "comment" else "text"] += " (v2)"
    else:  # a document change: another kind altogether at that seq
        return "comment", {"proposal": body.get("proposal", bytes(32)), "text": "something else at this seq"}
    return kind, body


def fork_after(sim, items, pick) -> tuple[bytes, bytes, Replica]:
    """Fork the event ``pick`` chooses among the log's events; the twin is signed after the run."""
    wire = pick([i for i in items[1:] if i[:1] == b"\x82"])
    f = fields_of(wire)
    kind, body = other_body(f)
    key = next(b.key for b in sim.bots if b.public == f["author"])
    second = sign_event(key, assembly=f["assembly"], seq=f["seq"], prev=f["prev"], kind=kind, body=body,
                        round=f["round"][0], round_prefix=f["round"][1])
    return wire, second, replay(sim.charter_wire, items[1:] + [second])


# --------------------------------------------------------------------------- 1. retroactive equivocation


def test_a_promote_vote_forked_after_the_tally_changes_nothing():
    """A committee member who promoted a proposal signs a kill at the same seq after the ballot
    was certified: the proposal stays promoted with the same count, and nobody takes its slot."""
    sim, items, before = honest_run()
    ballot = next(b for b in before.ballots if b.kind == "stage" and b.outcome == PROMOTED and b.counts.get("promote"))
    vote = next(i for i in items if i[:1] == b"\x82" and fields_of(i)["kind"] == "vote"
                and fields_of(i)["body"]["proposal"] == ballot.proposal and fields_of(i)["body"]["choice"] == "promote"
                and fields_of(i)["body"]["stage"] == ballot.stage)
    wire, second, replica = fork_after(sim, items, lambda events: vote)
    assert replica.forks, "the fork is proven"
    after = evaluate(replica)
    assert decided(after) == decided(before)
    assert event_id(wire) in replica.evidence, "the decided vote is kept as evidence"


def test_a_panel_member_forking_a_used_cut_off_voids_no_certificate():
    sim, items, before = honest_run()
    used = {m for d in before.deadlines for m in d["certificate"]["cutoffs_from"]}
    cut = next(i for i in items if i[:1] == b"\x82" and fields_of(i)["kind"] == "cutoff" and fields_of(i)["author"].hex() in used)
    _, _, replica = fork_after(sim, items, lambda events: cut)
    assert decided(evaluate(replica)) == decided(before)


def test_an_author_forking_a_submission_after_the_draws_erases_nothing():
    sim, items, before = honest_run()
    pid = next(p.id for p in before.proposals.values() if p.status == PASSED)
    submission = next(i for i in items if event_id(i) == pid)
    _, _, replica = fork_after(sim, items, lambda events: submission)
    after = evaluate(replica)
    assert after.proposals[pid].status == PASSED
    assert decided(after) == decided(before)


def test_erasing_a_lease_changes_no_panel_and_unpasses_no_law():
    sim, items, before = honest_run()
    lease = next(i for i in items if i[:1] == b"\x82" and fields_of(i)["kind"] == "lease" and fields_of(i)["body"]["cycle"] == 2)
    _, _, replica = fork_after(sim, items, lambda events: lease)
    assert decided(evaluate(replica)) == decided(before)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(which=st.integers(0, 10**9), order=st.randoms(use_true_random=False))
def test_no_fork_of_any_decided_event_changes_a_decision(which, order):
    """Any event of the run, forked after the run with another body of its kind, in any order
    of the log: the same decisions as the honest run, and the whole report is a function of the
    set of items (in order or shuffled)."""
    sim, items, before = honest_run()
    wire, second, replica = fork_after(sim, items, lambda events: events[which % len(events)])
    after = evaluate(replica)
    assert decided(after) == decided(before), fields_of(wire)["kind"]
    shuffled = items[1:] + [second]
    order.shuffle(shuffled)
    again = replay(sim.charter_wire, shuffled)
    assert again.state_hash() == replica.state_hash()
    assert evaluate(again).as_dict() == after.as_dict()


# --------------------------------------------------------------------------- 2. seed rounds


def test_a_value_naming_a_far_seed_round_is_invalid_and_never_decides():
    """A Byzantine proposer names round 2^62 (or one past the charter's bound): honest members'
    validity and the certificate checker both refuse it, so nobody waits for that round."""
    sim, items, result = honest_run()
    replica = replay(sim.charter_wire, items[1:])
    leg = Legislature(replica.charter, replica.charter_event.round)
    leg.evaluate_replica(replica)
    first = result.deadlines[0]
    name = deadline_key(first["what"], first["cycle"], first["stage"])
    panel = tuple(bytes.fromhex(m) for m in first["panel"])
    cut_ids = sorted(r.id for r in replica.records.values() if r.kind == "cutoff" and r.body.deadline == name)[: quorum_size(len(panel))]
    low, high = leg.seed_window(first["round"], 0)
    assert valid_value(encode_value(cut_ids, high), name, panel, replica.records, (low, high))
    for far in (high + 1, 1 << 62):
        assert not valid_value(encode_value(cut_ids, far), name, panel, replica.records, (low, high))
    # a certificate for a far value: every panel member precommits it (a Byzantine quorum would
    # need two thirds of the panel; here the checker must refuse it on the seed round alone)
    from consensus.agreement import value_id

    value = encode_value(cut_ids, 1 << 62)
    keys = {b.public: b.key for b in sim.bots}
    cut = fields_of(next(i for i in items if i[:1] == b"\x82" and event_id(i) == cut_ids[0]))
    extra = []
    heads = {m: (replica.heads[m].seq, replica.heads[m].id, replica.heads[m].round) for m in panel}
    top = max(replica.beacon)
    for round_, kind in ((50, "propose"), (50, "precommit")):
        for pos, m in enumerate(panel):
            if kind == "propose" and pos != (round_ + proposer_offset(name)) % len(panel):
                continue
            seq, prev, _ = heads[m]
            body = ({"deadline": name, "round": round_, "valid_round": -1, "value": value} if kind == "propose"
                    else {"deadline": name, "round": round_, "value": value_id(value)})
            w = sign_event(keys[m], assembly=replica.assembly, seq=seq + 1, prev=prev, kind=kind, body=body,
                           round=top, round_prefix=replica.beacon[top][:8])
            heads[m] = (seq + 1, event_id(w), top)
            extra.append(w)
    assert cut["body"]["deadline"] == name
    attacked = replay(sim.charter_wire, items[1:] + extra)
    assert decided(evaluate(attacked)) == decided(result), "the far value certifies nothing"


# --------------------------------------------------------------------------- 3. bounded cut-offs


def test_a_flood_of_submissions_does_not_grow_a_cut_off():
    """One representative signs 2,000 submissions in a cycle: every honest intake cut-off lists
    at most the charter's quota of them, and the intake is decided as usual."""
    from consensus.duties import honest_cutoff

    sim = AssemblySim("demo", seed=5, cycles=1, behaviour=HONEST)
    items = list(sim.run())
    replica = replay(sim.charter_wire, items[1:])
    leg = Legislature(replica.charter, replica.charter_event.round)
    flooder = sim.bots[0]
    top = max(replica.beacon)
    head = replica.heads.get(flooder.public)
    seq, prev = (head.seq, head.id) if head else (0, None)
    for n in range(2000):
        w = sign_event(flooder.key, assembly=replica.assembly, seq=seq + 1, prev=prev, kind="proposal.submit",
                       body={"title": f"Flood {n}", "summary": ""}, round=top, round_prefix=replica.beacon[top][:8])
        assert replica.add(w, signature_checked=True).status == "applied"
        seq, prev = seq + 1, event_id(w)
    nxt = leg.cycle_start(1)
    for number in range(top + 1, nxt + 1):
        replica.add_round(sim.dev.sign(number))
    leg.evaluate_replica(replica)
    assert leg.reached("intake", 1, 0)
    cut = honest_cutoff(leg, replica.records, "intake", 1, 0, nxt)
    mine = [i for i in cut.items if replica.records[i].author == flooder.public]
    assert len(mine) <= leg.p.submissions_per_cycle
    size = len(cbor2.dumps(cut.to_body()))
    assert size < 4096, size


# --------------------------------------------------------------------------- 4. amendment heads


def test_amendments_whose_heads_are_not_the_proposers_own_descendants_are_refused():
    """Heads that match no change, another member's change, or a change not descending from the
    base: each amendment is refused with a reason and opens no ballot."""
    sim, items, result = honest_run()
    replica = replay(sim.charter_wire, items[1:])
    leg = Legislature(replica.charter, replica.charter_event.round)
    leg.evaluate_replica(replica)
    amendment = next(r for r in replica.records.values() if r.kind == "amendment.propose")
    members = set(next(d.members for d in result.draws if d.proposal == amendment.body.proposal and d.cycle == amendment.body.cycle
                       and d.stage == 2))
    base, d = amendment.body.base, leg.draw_round(amendment.body.cycle)
    assert leg.amendment_problem(amendment, members, base, d) is None
    other = next(r for r in replica.records.values() if r.kind == "doc.change" and r.author != amendment.author
                 and r.body.proposal == amendment.body.proposal)
    # the proposer's own change that does not descend from the base: a fresh text of its own
    from crdt import ProposalDocument

    bot = next(b for b in sim.bots if b.public == amendment.author)
    _, fresh = ProposalDocument.create(bot.public, "Another text", "", "Unrelated.\n", proposal=amendment.body.proposal)
    head = replica.heads[bot.public]
    top = max(replica.beacon)
    own = sign_event(bot.key, assembly=replica.assembly, seq=head.seq + 1, prev=head.id, kind="doc.change",
                     body=fresh.body(amendment.body.proposal), round=top, round_prefix=replica.beacon[top][:8])
    assert replica.add(own, signature_checked=True).status == "applied"
    leg.evaluate_replica(replica)
    for heads, why in (((bytes(32),), "not document changes its proposer signed"),
                       ((other.body.hash,), "not document changes its proposer signed"),
                       ((fresh.hash,), "does not descend from the revision the committee received")):
        fake = type(amendment)(amendment.id, amendment.author, amendment.seq, amendment.round, amendment.round_prefix,
                               amendment.kind, type(amendment.body)(amendment.body.proposal, amendment.body.cycle, base, heads,
                                                                    amendment.body.summary))
        assert why in leg.amendment_problem(fake, members, base, d)
    # the simulator's own logs hold no amendment whose heads match no change (they once did)
    refused = [b for b in result.ballots if b.kind == "amendment" and b.outcome == "refused"]
    assert not refused, [b.reason for b in refused]


# --------------------------------------------------------------------------- 5. ancient rounds


def test_rounds_older_than_the_assembly_are_refused():
    from consensus.charter import Charter
    from consensus.events import NO_ASSEMBLY
    from consensus.replica import ANCIENT_MARGIN

    sim, items, _ = honest_run()
    charter = sim.replica.charter
    late_start = Charter(name="Convened later", roster=charter.roster, beacon=charter.beacon,
                         parliament=charter.parliament.with_changes(start_round=500))
    wire = sign_event(sim.convenor.key, assembly=NO_ASSEMBLY, seq=1, prev=None, kind="charter", body=late_start)
    r = Replica(wire)
    old = sim.dev.sign(500 - ANCIENT_MARGIN - 1)
    out = r.add_round(old)
    assert out.status == "rejected" and out.rejection.code == "ancient_round" and len(out.rejection.reason) > 20
    assert r.add_round(sim.dev.sign(500 - ANCIENT_MARGIN)).status == "applied"
    assert 500 - ANCIENT_MARGIN - 1 not in r.beacon


# --------------------------------------------------------------------------- 6. liveness


@pytest.mark.slow
@pytest.mark.parametrize("absent", [0.2, 0.3])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_simulate_completes_every_cycle_with_absent_representatives(seed, absent):
    """``klero simulate --reps 60 --proposals 30 --cycles 5`` stalled for good in 3 of 5 seeds:
    a panel of 5 with 2 absent members never decides.  Now a panel that has not decided within
    the charter's ``panel_rounds`` gives way to a fresh one, drawn from those who have shown they
    are present, and every cycle completes."""
    sim = AssemblySim("demo", reps=60, proposals=30, cycles=5, seed=seed,
                      behaviour=Behaviour(absent=absent, late=0.05, equivocating=0.0, unauthorised=0.05))
    items = list(sim.run())
    result = evaluate(replay(sim.charter_wire, items[1:]))
    assert result.cycles == 5, result.waiting
    # every deadline decided by its panel within the charter's bound of generations
    assert all(d["rule"] == "cut-off panel" for d in result.deadlines)
    assert max(d["generation"] for d in result.deadlines) < 40


def test_a_panel_with_two_silent_members_gives_way_to_a_present_one():
    """Seed 3 of the demo with 30 % absent once stalled at cycle 0: a deadline needed a later
    generation, whose panel came from members who had shown they were present."""
    sim = AssemblySim("demo", reps=60, proposals=30, cycles=2, seed=3,
                      behaviour=Behaviour(absent=0.3, late=0, equivocating=0, unauthorised=0))
    items = list(sim.run())
    replica = replay(sim.charter_wire, items[1:])
    leg = Legislature(replica.charter, replica.charter_event.round)
    result = leg.evaluate_replica(replica)
    assert result.cycles == 2
    redrawn = [d for d in result.deadlines if d["generation"] > 0]
    assert redrawn, "some panel drew two or more absent members"
    absent = {b.public.hex() for b in sim.bots if b.kind == "absent"}
    for d in redrawn:
        assert len(d["panel"]) == leg.p.panel_size
        assert len(set(d["certificate"]["signers"]) & absent) == 0


# --------------------------------------------------------------------------- 7. reports are functions of the set


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.randoms(use_true_random=False), dups=st.lists(st.integers(0, 10_000), max_size=40))
def test_the_whole_verify_report_of_a_hostile_log_is_a_function_of_its_items(tmp_path_factory, order, dups):
    """The golden hostile vector (bad signatures, strangers, another assembly, an unknown kind, a
    retroactive fork, a third version, an ancient round, equivocating bots), shuffled and with
    duplicates: every field of ``klero verify --json`` but the item indices and the duplicate
    count is the same as for the log in order."""
    from pathlib import Path

    from p2p.audit import verify_log
    from p2p.logfile import read_items, write_log

    path = Path(__file__).resolve().parent / "vectors" / "demo-run-with-rejections.log"
    items = [i[2] for i in read_items(path)]
    shuffled = list(items)
    order.shuffle(shuffled)
    shuffled += [items[i % len(items)] for i in dups]
    other = tmp_path_factory.mktemp("shuffled") / "log"
    write_log(other, shuffled)

    def comparable(report) -> dict:
        d = report.as_dict()
        for key in ("path", "items", "duplicates"):
            del d[key]
        d["rejected"] = sorted((r["code"], r["reason"]) for r in d["rejected"])
        return d

    assert comparable(verify_log(other, workers=1)) == comparable(verify_log(path, workers=1))


def test_a_fork_proven_before_a_deadline_excludes_its_author_from_it():
    """The other half of the rule: an equivocating bot's fork is public at once, so at every
    ballot whose panel signed after it, the bot's seat counts neither way in the decided facts
    (its votes are listed, not counted)."""
    from consensus.panel import ballot_key, has_bit

    sim = AssemblySim("demo", seed=11, proposals=3, cycles=4, start_round=100,
                      behaviour=Behaviour(absent=0, late=0, equivocating=0.12, unauthorised=0))
    items = list(sim.run())
    replica = replay(sim.charter_wire, items[1:])
    result = evaluate(replica)
    assert replica.forks, "the equivocating bot forked"
    roster = tuple(sorted(replica.charter.roster))
    checked = 0
    for author, seq in replica.forks.items():
        fork_round = replica._decode(replica.ledger.get(author, seq).wire, check_signature=False).round
        for b in result.ballots:
            if b.outcome in ("refused", "withdrawn") or b.closes <= fork_round + 2:
                continue
            what = {"stage": "ballots", "amendment": "amendment ballots", "plenary": "plenary"}[b.kind]
            deadline = next(d for d in result.deadlines if (d["what"], d["cycle"], d["stage"]) == (what, b.cycle, b.stage))
            electorate = roster if b.kind == "plenary" else tuple(sorted(next(
                d.members for d in result.draws if (d.proposal, d.cycle, d.stage) == (b.proposal, b.cycle, b.stage))))
            if author not in electorate:
                continue
            first, second = (bytes.fromhex(x) for x in deadline["decided_ballots"][ballot_key(b.proposal, b.cycle, b.stage, b.amendment).hex()])
            i = electorate.index(author)
            assert not has_bit(first, i) and not has_bit(second, i), "a forked author's seat counted after the fork"
            checked += 1
    assert checked, "the forked bot sat on a later ballot"
