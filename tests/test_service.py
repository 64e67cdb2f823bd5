"""The representative's service (p2p/service.py), in one process over a replica fed round by round
from a simulated assembly of bots in which one more seat belongs to a person (the test).

The assembly settles deadlines by their declared rounds (no panels: these tests are about what
the person may sign and sees, not about agreement), so it is deterministic and fast.  The
person's acts go through the service exactly as the node's door and the CLI call it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from consensus.replica import Replica
from p2p.tools.bots import AssemblySim, Behaviour, load_template
from p2p.service import ActError, Service, _carry, word_opcodes
from p2p.logfile import item_round

ROOT = Path(__file__).resolve().parent.parent
ME = SigningKey(hashlib.sha256(b"klero-test/person").digest())
MY_KEY = bytes(ME.verify_key)


class Assembly:
    """A bots' assembly (this name and seed: the person sits on a drafting committee in cycle 0 and a review
    committee in cycle 1), delivered to the person's replica up to any beacon round."""

    def __init__(self, tmp_path: Path, cycles: int = 2):
        spec = load_template("testnet")
        spec["parliament"]["deadline_rule"] = "declared"
        path = tmp_path / "declared.json"
        path.write_text(json.dumps(spec))
        self.sim = AssemblySim(str(path), reps=12, cycles=cycles, seed=1, people=(MY_KEY,), start_round=20,
                               behaviour=Behaviour(0, 0, 0, 0), name="A service test 2")  # the name fixes the assembly id
        self.items = list(self.sim.run())[1:]
        self.replica = Replica(self.sim.charter_wire)
        self.at = 0
        self.outbox = tmp_path / "outbox.cbor"
        self.service = Service(self.replica, ME, outbox=self.outbox)

    def to(self, round_: int) -> Service:
        for n in range(self.at + 1, round_ + 1):
            self.replica.add_round(self.sim.dev.sign(n))
        self.at = max(self.at, round_)
        for item in self.items:
            if item[:1] != b"\x83" and item_round(item) <= round_:
                self.replica.add_item(item)
        return self.service

    def seat(self, cycle: int, stage: int):
        result = self.service.result()
        return next(d for d in result.draws if d.cycle == cycle and d.stage == stage and MY_KEY in d.members)


def test_acts_are_checked_against_the_rules_before_anything_is_signed(tmp_path):
    a = Assembly(tmp_path)
    s = a.to(23)  # cycle 0 began at round 20; its committees were drawn at 22
    leg = s.leg
    mine = a.seat(0, 1)
    other = next(d for d in s.result().draws if d.cycle == 0 and d.stage == 1 and MY_KEY not in d.members)
    signed = len(s.hands.out)
    with pytest.raises(ActError, match="You have no ballot"):
        s.vote(other.proposal.hex()[:8], "promote")
    with pytest.raises(ActError, match="do not sit on the drafting committee"):
        s.edit(other.proposal.hex(), "A new text.")
    with pytest.raises(ActError, match="is not yours"):
        s.withdraw(other.proposal.hex())
    with pytest.raises(ActError, match="at least 4 hex"):
        s.show("zz")
    _, opens, closes = leg.windows(0, 1)
    with pytest.raises(ActError, match=f"opens at .*round {opens}"):
        s.vote(mine.proposal.hex(), "promote")
    assert len(s.hands.out) == signed, "a refused act signed nothing"
    # the inbox names the seat, its deadline in time and rounds, and why this person was drawn
    inbox = s.inbox()
    seat = next(i for i in inbox if i["kind"] == "seat" and i["proposal"] == mine.proposal.hex())
    assert "edit the text" in seat["text"] and f"round {opens}" in seat["due"] and "drawn" in seat["why"]
    why = s.explain(mine.proposal.hex(), stage=1)
    assert MY_KEY.hex() in why["members"] and why["beacon_round"] == mine.round and why["picks"]
    # editing the text as a committee member: one signed change, counted towards the text
    a.to(opens - 3)
    before = s.text(mine.proposal.hex())
    out = s.edit(mine.proposal.hex(), before + "The person adds a sentence.\n")
    assert out["ids"] and s.text(mine.proposal.hex()).endswith("The person adds a sentence.\n")
    blamed = s.blame(mine.proposal.hex())
    assert any(p["author"] == MY_KEY.hex() and "adds a sentence" in p["text"] and p["round"] == opens - 3 for p in blamed)
    assert "".join(p["text"] for p in blamed) == s.text(mine.proposal.hex())
    a.to(opens + 1)
    with pytest.raises(ActError, match=f"editing window .* closed at .*round {opens}"):
        s.edit(mine.proposal.hex(), "Too late.")
    with pytest.raises(ActError, match="choices are 'promote' and 'kill'"):
        s.vote(mine.proposal.hex(), "yes")
    with pytest.raises(ActError, match="text changed since you read it"):
        s.vote(mine.proposal.hex(), "promote", revision=[bytes(32).hex()])
    voted = s.vote(mine.proposal.hex(), "promote")
    assert voted["revision"] == [h.hex() for h in s.result().proposals[mine.proposal].revision]
    with pytest.raises(ActError, match="already voted 'promote'"):
        s.vote(mine.proposal.hex(), "kill")
    assert not [i for i in s.inbox() if i["kind"] == "vote" and i["proposal"] == mine.proposal.hex()]
    a.to(closes + 4)  # the tie-break randomness of the ballots comes two rounds after they close
    ballot = next(b for b in s.result().ballots if b.proposal == mine.proposal and b.stage == 1)
    assert MY_KEY not in {n[0] for n in ballot.neutralised}, "the person's vote counted"
    shown = s.show(mine.proposal.hex())
    assert shown["ballots"][0]["votes"][MY_KEY.hex()] == "promote"  # public once the ballot closed
    assert any(c["author"] == MY_KEY.hex() for c in shown["changes"])


def test_an_amendment_and_its_ballot(tmp_path):
    a = Assembly(tmp_path)
    s = a.to(a.sim.legislature.draw_round(1) + 1)
    seat = a.seat(1, 2)
    pid = seat.proposal.hex()
    with pytest.raises(ActError, match="needs a summary"):
        s.amend(pid, s.text(pid) + "More.\n", "")
    with pytest.raises(ActError, match="takes no amendments"):
        s.amend(next(d for d in s.result().draws if d.cycle == 1 and d.stage == 1).proposal.hex(), "x", "why")
    out = s.amend(pid, s.text(pid, revision=[h.hex() for h in s.result().proposals[seat.proposal].revision])
                  + "Costs are met from the parks budget.\n", "Say who pays")
    with pytest.raises(ActError, match="already proposed an amendment"):
        s.amend(pid, "Another.", "again")
    stage = a.sim.legislature.p.stages[1]
    d = a.sim.legislature.draw_round(1)
    a.to(d + stage.amend_rounds + 1)
    amendment = out["id"]
    items = [i for i in s.inbox() if i["kind"] == "amendment" and i["amendment"] == amendment]
    assert items and "open now" in items[0]["text"]
    s.vote(pid, "adopt", amendment=amendment[:10])
    a.to(d + stage.amend_rounds + stage.amend_ballot_rounds + 4)
    ballot = next(b for b in s.result().ballots if b.amendment is not None and b.amendment.hex() == amendment)
    assert MY_KEY not in {n[0] for n in ballot.neutralised}
    assert ballot.counts.get("adopt", 0) >= 1


def test_a_long_text_goes_out_round_by_round_through_the_outbox(tmp_path):
    """A bill of 200,000 characters is 13 changes; the charter allows 8 a beacon round: the rest
    wait in the outbox (on disk: a restart keeps them) and go out in the next round."""
    a = Assembly(tmp_path)
    s = a.to(5)
    bill = "".join(f"Section {i}. The council shall publish its budget line {i} each quarter.\n" for i in range(3000))
    out = s.propose("A long bill", "Many sections.", bill)
    per_round = a.replica.charter.limits.max_doc_changes_per_round
    assert out["changes"] > per_round and out["waiting"] == out["changes"] - per_round and a.outbox.exists()
    assert "wait in your outbox" in out["what"]
    assert s.pump() == []  # nothing more in this round
    again = Service(a.replica, ME, outbox=a.outbox)  # a restart: the outbox survives on disk
    assert len(again.outbox) == out["waiting"]
    a.to(6)
    sent = again.pump()
    assert len(sent) == out["waiting"] and not again.outbox and not a.outbox.exists()
    assert again.text(out["proposal"]) == bill


def test_quota_withdrawal_comments_replies_and_anchors(tmp_path):
    a = Assembly(tmp_path)
    s = a.to(5)
    first = s.propose("Clean water in every park", "Fountains.", "Every park gets ten fountains.\n\nThey are cleaned weekly.\n")
    second = s.propose("Second", "")
    with pytest.raises(ActError, match="allows 2 a cycle"):
        s.propose("Third", "")
    s.withdraw(first["proposal"][:8])
    with pytest.raises(ActError, match="already withdrawn"):
        s.withdraw(first["proposal"][:8])
    s.propose("Third, now that one is withdrawn", "")
    s.withdraw(second["proposal"])
    pid = s.propose("Shade trees", "", "Plant ten trees on Main Street.\n")["proposal"]
    body = s.text(pid)
    at = body.index("ten")
    c = s.comment(pid, "Ten is too few.", anchor=["body", at, at + 3])
    # another representative replies and mentions the person
    other = Service(a.replica, a.sim.bots[3].key)
    other.comment(pid, "Twenty would cost twice as much.", reply=c["id"][:12])
    other.comment(pid, f"@{MY_KEY.hex()[:8]} what do you think?")
    kinds = {i["kind"] for i in s.inbox()}
    assert {"reply", "mention"} <= kinds
    # the author edits the text: the anchored passage moves with it, then is deleted
    s.edit(pid, "Plant at least ten trees on Main Street.\n")
    thread = {t["id"]: t for t in s.thread(pid)}
    passage = thread[c["id"]]["passage"]
    assert s.text(pid)[passage[0]:passage[1]] == "ten" and not thread[c["id"]]["orphaned"]
    assert thread[c["id"]]["replies"]
    a.to(6)
    s.edit(pid, "Plant trees on Main Street.\n")
    assert {t["id"]: t for t in s.thread(pid)}[c["id"]]["orphaned"]
    with pytest.raises(ActError, match="outside the body"):
        s.comment(pid, "Where?", anchor=["body", 0, 10_000])


def test_a_read_only_service_acts_on_nothing(tmp_path):
    a = Assembly(tmp_path)
    a.to(5)
    view = Service(a.replica, None, me=MY_KEY)
    assert view.overview()["seated"] and view.hands is None
    assert view.inbox() == []  # no seat, ballot, proposal or comment of this person yet
    with pytest.raises(ActError, match="read-only"):
        view.propose("x", "")


@given(st.text(max_size=60), st.integers(0, 60), st.integers(1, 20), st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_a_carried_passage_is_what_survived_of_it(text, start, length, other):
    start = min(start, len(text))
    end = min(len(text), start + length)
    new_start, new_end = _carry(start, end, word_opcodes(text, other))
    assert 0 <= new_start <= new_end <= len(other)
    if end > start and other == text:
        assert (new_start, new_end) == (start, end)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_a_killed_import_never_leaves_the_replica_locked(tmp_path):
    """SIGKILL of `klero import` at random moments: its signature workers die with it, and the
    next command for the profile opens the replica (it used to say "in use" for ever)."""
    import random

    from p2p.logfile import write_log
    from p2p.tools.simulate import Simulation
    from p2p.store import ReplicaStore

    env = {**os.environ, "KLERO_HOME": str(tmp_path / "home"), "KLERO_PASSPHRASE": "a passphrase"}
    log = tmp_path / "big.log"
    write_log(log, Simulation(reps=40, seed=3).log(30_000))
    assert subprocess.run([sys.executable, "-m", "desktop.cli", "init", "--profile", "p", "--kdf", "interactive"],
                          env=env, cwd=ROOT, capture_output=True).returncode == 0
    replica = tmp_path / "home" / "profiles" / "p" / "replica.sqlite"
    rng = random.Random(5)
    for attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-m", "desktop.cli", "import", "--profile", "p", str(log)], env=env,
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while True:
            try:
                ReplicaStore(replica).close()
                break
            except Exception as exc:
                assert time.monotonic() < deadline, f"attempt {attempt}: the replica stayed locked after SIGKILL: {exc}"
                time.sleep(0.2)
    # and a lock held by a live process names it
    with ReplicaStore(replica):
        done = subprocess.run([sys.executable, "-m", "desktop.cli", "status", "--profile", "p"], env=env, cwd=ROOT,
                              capture_output=True, text=True)
    assert done.returncode == 2 and f"process {os.getpid()}" in done.stderr, done.stderr


@given(st.one_of(st.binary(max_size=300), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20).map(lambda v: json.dumps(v).encode())))
@settings(max_examples=300, deadline=None)
def test_the_door_answers_any_request_with_a_sentence_and_never_raises(request):
    """Whatever a local process sends the node's door, it gets a sentence back (without the token,
    nothing runs) and the node goes on."""
    from p2p.control import handle

    class Spy:
        called = False

        def overview(self):
            Spy.called = True
            return {}

    reply, acted = handle(Spy(), request, "the-token")
    assert set(reply) == {"error"} and isinstance(reply["error"], str) and not acted and not Spy.called


def test_a_representatives_record(tmp_path):
    a = Assembly(tmp_path)
    s = a.to(23)
    mine = a.seat(0, 1)
    _, opens, closes = s.leg.windows(0, 1)
    a.to(opens - 3)
    s.edit(mine.proposal.hex(), s.text(mine.proposal.hex()) + "One more line.\n")
    a.to(opens + 1)
    s.vote(mine.proposal.hex(), "promote")
    a.to(closes + 4)
    record = s.record()
    assert record["key"] == MY_KEY.hex()
    assert any(x["proposal"] == mine.proposal.hex() and x["stage"] == 1 for x in record["seats"])
    vote = next(v for v in record["votes"] if v["proposal"] == mine.proposal.hex())
    assert vote["choice"] == "promote" and vote["counted"] and vote["revision"]
    assert record["attendance"]["voted_on"] >= 1 and record["attendance"]["closed_ballots_sat_on"] >= record["attendance"]["voted_on"]
    assert any(t["proposal"] == mine.proposal.hex() and t["changes"] == 1 for t in record["texts"])
    other = s.record(a.sim.bots[0].public.hex())
    assert other["key"] == a.sim.bots[0].public.hex() and isinstance(other["votes"], list)


def test_the_deadlines_of_a_cycle_say_how_each_was_settled(tmp_path):
    a = Assembly(tmp_path)
    s = a.to(23)
    rows = s.deadlines()
    assert [r["what"] for r in rows][0] == "intake" and rows[0]["decided"]
    assert any(not r["decided"] and "due at" in r["state"] for r in rows)
    assert [r["round"] for r in rows] == sorted(r["round"] for r in rows)


def test_reach_lists_my_latest_acts_and_the_proofs(tmp_path):
    a = Assembly(tmp_path)
    s = a.to(5)
    s.propose("Trees", "")
    s.reach_of = lambda: {MY_KEY.hex(): {"peers": 3, "held": [1, 0, 1]}}
    r = s.reach()
    assert r["acts"][0]["kind"] == "proposal.submit" and r["acts"][0]["peers"] == 3 and r["acts"][0]["holding"] == 2
    assert r["equivocations"] == []
