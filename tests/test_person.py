"""A person at the helm (issue 13): one more representative in a reactive testnet of bots, acting
through the representative's service inside their own node (the door the CLI and the app use),
over real node processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from p2p import control
from p2p.service import ActError
from p2p.tools.testnet import PASSPHRASE, Testnet

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
# the bots judge proposals by a hash of their title: this one at 0.95 (the most they give), so a
# drafting committee of 3 kills it only if two of them draw a 5% chance (about 0.7% of runs)
TITLE = "Shade trees on every street, ward 243"
TEXT = "The council shall plant a shade tree every twenty metres on every street.\n\nResidents choose the species.\n"


def klero(home: Path, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "desktop.cli", *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env={**os.environ, "KLERO_HOME": str(home), "KLERO_PASSPHRASE": PASSPHRASE})


class Person:
    """What a representative does each time they look at their inbox: submit once, edit where
    they draft, vote promote (and yes in the plenary) where they sit, adopt amendments."""

    def __init__(self, net: Testnet, name: str):
        self.net, self.name = net, name
        self.folder = net.home / "profiles" / name
        self.log: list[str] = []
        self.errors: list[str] = []
        self.proposal = None
        self.done: set = set()

    def client(self):
        return control.connect(self.folder)

    def step(self) -> None:
        client = self.client()
        if client is None:
            return
        try:
            if self.proposal is None:
                out = client.call("propose", title=TITLE, summary="Shade, cooler streets, cleaner air.", text=TEXT)
                self.proposal = out["proposal"]
                self.log.append(out["what"])
            for item in client.call("inbox"):
                key = (item["kind"], item.get("proposal"), item.get("amendment"), item["due_round"])
                if key in self.done:
                    continue
                if item["kind"] == "seat" and "edit the text" in item["text"]:
                    text = client.call("text", ref=item["proposal"])
                    out = client.call("edit", ref=item["proposal"], text=text + "Costs are met from the parks budget.\n")
                elif item["kind"] == "vote" and "open now" in item["text"] and "being settled" not in item["text"]:
                    out = client.call("vote", ref=item["proposal"], choice="yes" if "Plenary" in item["text"] else "promote")
                elif item["kind"] == "amendment" and "open now" in item["text"]:
                    out = client.call("vote", ref=item["proposal"], choice="adopt", amendment=item["amendment"])
                elif item["kind"] == "constituency" and "join one" in item["text"]:
                    # seats come from constituencies after cycle 0: the person joins the one their
                    # neighbours founded for them and says yes; the neighbours then endorse them
                    ours = next(g for g in client.call("constituencies") if g["name"].startswith("Neighbourhood of "))
                    self.log.append(client.call("join", ref=ours["id"][:12])["what"])
                    out = client.call("serve", answer="yes")
                else:
                    continue
                self.done.add(key)
                self.log.append(out["what"])
        except ActError as exc:
            self.errors.append(str(exc))
        except control.ControlError:
            pass  # the node was just stopped (the test kills it on purpose)


def test_a_person_joins_a_testnet_of_bots_and_takes_a_proposal_to_the_plenary(tmp_path):
    net = Testnet(tmp_path / "net")
    # the bots propose nothing: the person's proposal competes for no slot (the Floor has one,
    # and which proposal wins it would depend on the draws)
    info = net.up(nodes=3, reps=12, cycles=4, round_seconds=0.3, people=("alice",), bot_proposals=0, say=lambda line: None)
    alice = Person(net, "alice")
    k = next(i for i, n in enumerate(info["nodes"]) if n["name"] == "alice")
    rng = random.Random(13)
    kills = []
    try:
        deadline = time.monotonic() + 300
        killed_at = info["last_round"] // 2
        while time.monotonic() < deadline:
            rows = net.status()
            now = min(r["beacon_round"] for r in rows if r["running"]) if any(r["running"] for r in rows) else 0
            if now >= info["last_round"]:
                break
            alice.step()
            if not kills and now >= killed_at:
                # SIGKILL the node mid-run; act from the CLI on the replica meanwhile (one more comment,
                # then a CLI killed mid-act); restart: nothing may be signed twice
                net.kill(k)
                kills.append(now)
                done = klero(net.home, "comment", "--profile", "alice", alice.proposal, "Still for it, after a restart.")
                assert done.returncode == 0, done.stderr
                assert "goes out when it runs" in done.stderr
                cli = subprocess.Popen([sys.executable, "-m", "desktop.cli", "comment", "--profile", "alice", alice.proposal,
                                        "A comment killed mid-flight."], cwd=ROOT, env={**net.env}, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
                time.sleep(rng.uniform(0.2, 1.5))
                cli.kill()
                cli.wait()
                net.restart(k)
            time.sleep(0.3)
        converged = net.wait(timeout=120, say=lambda line: None)
    finally:
        rows = net.down(say=lambda line: None)
    diagnosis = f"log: {alice.log}\nerrors: {alice.errors}\nrows: {[(r['name'], r['state_hash'][:12], r['beacon_round']) for r in rows]}"
    assert converged and len({r["state_hash"] for r in rows}) == 1, diagnosis
    assert kills, diagnosis

    from p2p.service import Service
    from p2p.store import ReplicaStore

    with ReplicaStore(alice.folder / "replica.sqlite") as store:
        replica = store.replica
        me = bytes.fromhex(info["nodes"][k]["public_key"])
        assert me not in replica.forks, "the person's chain forked: a seq was signed twice"
        service = Service(replica, None, me=me)
        shown = service.show(alice.proposal)
        # the person's proposal went through every committee and reached the plenary
        assert shown["status"] in ("in plenary", "passed", "failed"), f"{shown['history']}\n{diagnosis}"
        # others edited the person's text, and the person edited others' where they drafted
        authors = {c["author"] for c in shown["changes"]}
        assert len(authors) >= 2, shown["changes"]
        # every vote the person cast counted: none is listed among the votes that did not count
        result = service.result()
        mine = me.hex()
        neutralised = [n for b in result.ballots for n in b.as_dict()["neutralised"] if n["author"] == mine]
        assert not neutralised, neutralised
        votes = [r for r in replica.records.values() if r.author == me and r.kind == "vote"]
        assert votes and any(v.body.stage == 4 for v in votes), f"no plenary vote\n{diagnosis}"
        # the founding roster served cycle 0; from cycle 1 the constituencies' seats, the person's among them
        rosters = result.rosters
        assert me in rosters[0] and all(me in rosters[c] for c in range(2, result.cycles + 1)), \
            f"{ {c: me in r for c, r in rosters.items()} }\n{diagnosis}"
        comments = [c for c in service.thread(alice.proposal) if c["author"] == mine]
        assert any(c["text"] == "Still for it, after a restart." for c in comments)
    # the lock of a SIGKILLed node or CLI never blocks the person, and every node agrees with verify
    export = klero(net.home, "export", "--profile", "alice", tmp_path / "alice.log")
    assert export.returncode == 0, export.stderr
    verified = json.loads(klero(net.home, "verify", tmp_path / "alice.log", "--json").stdout)
    assert verified["state_hash"] in {r["state_hash"] for r in rows} and not verified["rejected"]


def test_the_door_refuses_strangers_and_bad_requests(tmp_path):
    """The node answers only requests carrying its token, of bounded size, naming the service's calls."""
    from p2p.control import handle

    class Echo:
        def overview(self):
            return {"ok": True}

    assert handle(Echo(), b"not json", "t")[0]["error"].startswith("The request is not JSON")
    assert "token" in handle(Echo(), json.dumps({"token": "wrong", "call": "overview"}).encode(), "t")[0]["error"]
    assert "answers only" in handle(Echo(), json.dumps({"token": "t", "call": "__init__"}).encode(), "t")[0]["error"]
    assert handle(Echo(), json.dumps({"token": "t", "call": "overview"}).encode(), "t")[0] == {"ok": {"ok": True}}
    assert "Bad arguments" in handle(Echo(), json.dumps({"token": "t", "call": "overview", "args": {"x": 1}}).encode(), "t")[0]["error"]
