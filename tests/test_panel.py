"""Cut-off panels wired into the legislature: certificates settle deadlines, and settle them for good."""

from __future__ import annotations


import cbor2
import pytest

from consensus import Replica
from consensus.agreement import quorum_size
from consensus.events import event_id, sign_event
from consensus.legislature import Legislature
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.panel import CutOff, bitmap, bits_of, deadline_key, decode_value, encode_value, has_bit, layout, majority
from p2p.tools.bots import AssemblySim, Behaviour

HONEST = Behaviour(absent=0, late=0, equivocating=0, unauthorised=0)


@pytest.fixture(scope="module")
def run():
    sim = AssemblySim("demo", seed=5, cycles=3, proposals=4, behaviour=HONEST)
    items = list(sim.run())
    result = sim.legislature.evaluate(sim.replica.records, sim.replica.beacon)
    return sim, items, result


def replay(items):
    r = Replica(items[0])
    for item in items[1:]:
        r.add_item(item)
    return r


def outcome(result):
    return [(b.kind, b.proposal, b.cycle, b.stage, b.amendment, tuple(sorted(b.counts.items())), b.outcome) for b in result.ballots]


def test_every_deadline_is_settled_by_a_certificate(run):
    sim, _, result = run
    assert result.cycles == 3 and result.deadlines
    for d in result.deadlines:
        assert d["rule"] == "cut-off panel"
        cert = d["certificate"]
        assert len(cert["signers"]) >= quorum_size(len(d["panel"]))
        assert set(cert["signers"]) <= set(d["panel"]) and set(cert["cutoffs_from"]) <= set(d["panel"])
        assert d["seed_round"] > d["round"]  # the randomness used comes after the decision's inputs


def test_without_certificates_the_deadline_stays_open(run):
    sim, items, _ = run
    stripped = [i for i in items if not (i[:1] == b"\x82" and _kind(i) in ("precommit",))]
    r = replay(stripped)
    result = Legislature(r.charter, r.charter_event.round).evaluate(r.records, r.beacon)
    assert result.cycles == 0 and not result.ballots
    assert "stays open until a panel" in result.waiting


def _kind(item):
    from consensus.events import split_wire

    return split_wire(item, 1 << 20)[2]["kind"]


def test_a_vote_signed_after_the_certificate_never_counts_whatever_round_it_names(run):
    sim, items, result = run
    ballot = next(b for b in result.ballots if b.kind == "stage" and b.stage == 1)
    draw = next(d for d in result.draws if d.proposal == ballot.proposal and d.stage == 1 and d.cycle == ballot.cycle)
    voted = {n[0] for n in ballot.neutralised}
    counted_voters = _counted_voters(sim, ballot)
    silent = [m for m in draw.members if m not in counted_voters and m not in voted]
    assert counted_voters, "the honest run must have counted votes"
    member = silent[0] if silent else draw.members[0]
    bot = sim.bots[sim.by_key[member]]
    # backdated: it names the round the ballot opened, as if cast on time
    rnd = ballot.opens
    late = sign_event(bot.key, assembly=sim.assembly, seq=bot.seq + 1, prev=bot.prev, kind="vote",
                      body={"proposal": ballot.proposal, "cycle": ballot.cycle, "stage": 1, "choice": "promote",
                            "revision": list(ballot.revision)},
                      round=max(rnd, bot.last_round), round_prefix=sim.replica.beacon[max(rnd, bot.last_round)][:8])
    r = replay(items + [late])
    again = Legislature(r.charter, r.charter_event.round).evaluate(r.records, r.beacon)
    same = next(b for b in again.ballots if (b.kind, b.proposal, b.cycle, b.stage) == (ballot.kind, ballot.proposal, ballot.cycle, 1))
    if member in counted_voters:
        assert same.counts == ballot.counts  # its first vote already counted; this one is a second vote
    else:
        assert same.counts == ballot.counts
        assert any(n[1] == event_id(late) and n[2] == "late" for n in same.neutralised)
    assert outcome(again) == outcome(result)


def _counted_voters(sim, ballot):
    from consensus.kinds import Vote

    neutral = {n[1] for n in ballot.neutralised}
    return {r.author for r in sim.replica.records.values()
            if isinstance(r.body, Vote) and r.body.proposal == ballot.proposal and r.body.cycle == ballot.cycle
            and r.body.stage == ballot.stage and r.body.amendment is None and r.id not in neutral}


def test_the_more_than_half_rule_and_its_guarantee():
    n, q = 31, quorum_size(31)
    key = b"k" * 32
    # a vote seen by more than n - q/2 members counts in every choice of q cut-offs
    seen_by = int(n - q / 2) + 1
    cutoffs = [CutOff((bitmap([0] if i < seen_by else [], 1), bitmap([], 1))) for i in range(n)]
    for start in range(n):
        used = [cutoffs[(start + j) % n] for j in range(q)]
        # the worst case puts every member that missed it into the used set
        worst = sorted(cutoffs, key=lambda c: bits_of(c.votes[0], 1) != set())[:q]
        for chosen in (used, worst):
            decided = majority(chosen, {key: 1})
            assert has_bit(decided.ballots[key][0], 0)
    # a vote seen by fewer than half of the used cut-offs never counts
    few = [CutOff((bitmap([0] if i < q // 2 else [], 1), b"\x00")) for i in range(q)]
    assert not has_bit(majority(few, {key: 1}).ballots[key][0], 0)
    # items and leases follow the same rule
    item = b"i" * 32
    decided = majority([CutOff(items=(item,) if i < q // 2 + 1 else (), leases=b"\x01" if i < q // 2 else b"") for i in range(q)],
                       {}, roster_size=3)
    assert decided.items == {item} and decided.leases == b"\x00"


@settings(max_examples=200)
@given(st.lists(st.tuples(st.binary(min_size=5, max_size=5), st.binary(min_size=5, max_size=5)), min_size=1, max_size=12),
       st.lists(st.integers(1, 15), min_size=1, max_size=4, unique=True))
def test_bit_sliced_majority_equals_counting(maps, widths):
    """The big-integer majority must agree with plain counting, bit by bit, for both choices and
    every ballot laid out in the vote bitmaps."""
    sizes = {bytes([i]) * 32: w for i, w in enumerate(widths)}
    decided = majority([CutOff((a, b)) for a, b in maps], sizes)
    for key, offset, size in layout(sizes):
        got = decided.ballots[key]
        for which in (0, 1):
            for i in range(size):
                count = sum(1 for m in maps if offset + i in bits_of(m[which], 40))
                assert has_bit(got[which], i) == (2 * count > len(maps)), (which, i, count, len(maps))


def test_values_encode_and_refuse_malformed_ones():
    ids = [bytes([i]) * 32 for i in (3, 1, 2)]
    value = encode_value(ids, 99)
    assert decode_value(value) == (tuple(sorted(ids)), 99)
    for bad in (b"", b"\xa0", encode_value([], 0), b"\x00" * 10):
        assert decode_value(bad) is None


def test_precommits_from_outside_the_panel_do_not_make_a_certificate(run):
    sim, items, result = run
    first = result.deadlines[0]
    panel = {bytes.fromhex(m) for m in first["panel"]}
    outsiders = [b for b in sim.bots if b.public not in panel]
    name = deadline_key(first["what"], first["cycle"], first["stage"])
    r = replay([i for i in items if not (i[:1] == b"\x82" and _kind(i) == "precommit")])
    proposal = next(x for x in r.records.values() if x.kind == "propose" and x.body.deadline == name)
    from consensus.agreement import value_id

    forged = []
    for bot in outsiders:
        forged.append(sign_event(bot.key, assembly=sim.assembly, seq=bot.seq + 1, prev=bot.prev, kind="precommit",
                                 body={"deadline": name, "round": proposal.body.round, "value": value_id(proposal.body.value)},
                                 round=bot.last_round, round_prefix=r.beacon[bot.last_round][:8]))
    for w in forged:
        r.add(w)
    result2 = Legislature(r.charter, r.charter_event.round).evaluate(r.records, r.beacon)
    assert result2.cycles == 0 and "stays open" in result2.waiting


def test_simulated_panels_with_absent_slow_and_byzantine_members_still_decide():
    sim = AssemblySim("testnet", seed=3, cycles=4, proposals=5,
                      behaviour=Behaviour(absent=0.08, late=0.08, equivocating=0.04, unauthorised=0.04))
    list(sim.run())
    result = sim.legislature.evaluate(sim.replica.records, sim.replica.beacon)
    assert result.cycles == 4, result.waiting
    leased = [d for d in result.deadlines if d["cycle"] >= 2]
    absent = {b.public.hex() for b in sim.bots if b.kind == "absent"}
    assert leased and not any(absent & set(d["panel"]) for d in leased), "from cycle 2 on, panels come from leases"
    assert result.panel_equivocations, "the Byzantine panel members' double prevotes are fraud proofs"
    assert any(b.outcome for b in result.ballots)


def test_drafting_committees_vote_on_the_document_heads_and_outsiders_cannot_edit():
    """With proposal documents, the stage-1 ballot's revision is the document's heads when the
    editing window closed (decided by the edit deadline's panel); a change by someone who is
    neither author nor committee member is listed as ignored, with its reason, and changes nothing."""
    from consensus.kinds import DocChange
    from crdt import ProposalDocument

    sim = AssemblySim("demo", seed=5, cycles=2, proposals=3, behaviour=HONEST)
    items = list(sim.run())
    result = sim.legislature.evaluate(sim.replica.records, sim.replica.beacon)
    stage1 = [b for b in result.ballots if b.kind == "stage" and b.stage == 1]
    assert stage1 and all(b.revision != (b.proposal,) for b in stage1)
    assert not any(n[2] == "wrong_revision" for b in result.ballots for n in b.neutralised)
    assert any(d["what"] == "edit" for d in result.deadlines)
    # an outsider's change to a proposal in the drafting stage
    ballot = stage1[0]
    draw = next(d for d in result.draws if (d.proposal, d.stage, d.cycle) == (ballot.proposal, 1, ballot.cycle))
    changes = [r.body.change for r in sim.replica.records.values() if isinstance(r.body, DocChange) and r.body.proposal == ballot.proposal]
    author = result.proposals[ballot.proposal].author
    outsider = next(b for b in sim.bots if b.public not in draw.members and b.public != author)
    doc, _ = ProposalDocument.from_changes(changes, actor=outsider.public)
    change = doc.edit("body", [(0, 0, "Sneaky words. ")])
    at = sim.legislature.windows(ballot.cycle, 1)[0] + 1
    at = max(at, outsider.last_round)
    wire = sign_event(outsider.key, assembly=sim.assembly, seq=outsider.seq + 1, prev=outsider.prev, kind="doc.change",
                      body=change.body(ballot.proposal), round=at, round_prefix=sim.replica.beacon[at][:8])
    r = replay(items + [wire])
    again = Legislature(r.charter, r.charter_event.round).evaluate(r.records, r.beacon)
    assert outcome(again) == outcome(result)
    ignored = [c for c in again.ignored_changes if c["change"] == change.hash.hex()]
    # the outsider signed it after the edit deadline's cut-offs, or is not an editor: either way it does not count
    assert ignored and ignored[0]["reason"]


def test_the_honest_cutoff_is_what_the_bots_signed():
    """consensus.duties.honest_cutoff, recomputed from the golden run's own records at the moment
    each panel signed, equals the cut-off honest members signed there: the function a node's
    panel duty uses is the one the simulated panels used.  The log is replayed in the order the
    bots wrote it, so the replica holds what the signers held."""
    from pathlib import Path

    from consensus.duties import honest_cutoff
    from consensus.legislature import Legislature
    from consensus.panel import parse_deadline_key
    from consensus.replica import Replica
    from p2p.logfile import read_items

    items = [i[2] for i in read_items(Path(__file__).resolve().parent / "vectors" / "demo-run.log")]
    replica = Replica(items[0])
    leg = Legislature(replica.charter, replica.charter_event.round)
    ours: dict[bytes, dict] = {}
    theirs: dict[bytes, list[dict]] = {}
    for item in items[1:]:
        if item[:1] == b"\x82" and _kind(item) == "cutoff":
            fields = cbor2.loads(cbor2.loads(item)[0])
            name = fields["body"]["deadline"]
            if name not in ours:  # a panel's members sign one after another, from one view
                what, cycle, stage, gen = parse_deadline_key(name)
                at = next(d[2] for d in leg.deadlines(cycle) if d[:2] == (what, stage))
                leg.evaluate_replica(replica)
                ours[name] = honest_cutoff(leg, replica.records, what, cycle, stage, at, replica.forks).to_body()
            theirs.setdefault(name, []).append(fields["body"]["cutoff"])
        replica.add_item(item)
    assert len(ours) >= 20
    for name, body in ours.items():
        assert body in theirs[name], parse_deadline_key(name)  # the slow bots drop a few items
