"""Replication over libp2p with real `klero node` processes on 127.0.0.1 (issue 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netharness import Net

VECTORS = Path(__file__).resolve().parent / "vectors"
LOG = VECTORS / "demo-run.log"

pytestmark = pytest.mark.slow


@pytest.fixture
def net(tmp_path):
    n = Net(tmp_path / "home")
    yield n
    n.close()


@pytest.fixture(scope="module")
def expected():
    """The state hash `klero verify` computes for the log the nodes will replicate."""
    n = Net(Path("/nonexistent"))
    done = n.klero("verify", LOG, "--json")
    return json.loads(done.stdout)["state_hash"]


def test_a_published_log_reaches_every_node_of_a_line_and_all_agree_with_verify(net, expected):
    a = net.start("a", "--join", LOG, "--publish", LOG, "--pace", "0.002")
    b = net.start("b", "--join", LOG, "--bootstrap", a)
    c = net.start("c", "--join", LOG, "--bootstrap", b)  # a line: c hears a only through b
    net.start("d", "--join", LOG, "--bootstrap", c, "--observer")
    final = net.wait_for("abcd", lambda s: s["state_hash"] == expected, 120, "every node to reach the log's state")
    assert all(s["refusals"] == {} for s in final.values()), final
    assert final["d"]["observer"] and final["d"]["published"] == 0
    for name in "abcd":
        assert net.stop(name) == 0
        assert "Stopped; state " + expected in net.output(name)


def test_a_node_killed_mid_stream_catches_up_after_restart(net, expected):
    a = net.start("a", "--join", LOG, "--publish", LOG, "--pace", "0.01")
    net.start("b", "--join", LOG, "--bootstrap", a)
    net.start("c", "--join", LOG, "--bootstrap", a)
    net.wait_for("c", lambda s: s["events"] > 100, 60, "c to store some events")
    net.kill("c")  # SIGKILL, mid-stream
    net.wait_for("ab", lambda s: s["state_hash"] == expected, 120, "the others to finish")
    net.start("c", "--bootstrap", a)  # same profile, same replica file
    net.wait_for("abc", lambda s: s["state_hash"] == expected, 60, "the restarted node to catch up")


def test_a_partition_heals(net, tmp_path, expected):
    """Two halves publish different parts of one log without reaching each other; a node
    restarted with a link across the partition heals it and everyone converges."""
    from p2p.logfile import read_items, write_log

    items = [i[2] for i in read_items(LOG)]
    half = len(items) // 2
    write_log(tmp_path / "first.log", items[:half])
    write_log(tmp_path / "second.log", items[:1] + items[half:])
    a = net.start("a", "--join", LOG, "--publish", tmp_path / "first.log")
    net.start("b", "--join", LOG, "--bootstrap", a)
    c = net.start("c", "--join", LOG, "--publish", tmp_path / "second.log")
    net.start("d", "--join", LOG, "--bootstrap", c)
    split = net.wait_for("abcd", lambda s: s["published"] > 0 or s["events"] > 1, 60, "both halves to publish")
    net.wait_for("ab", lambda s: s["state_hash"] == net.status("a")["state_hash"], 60, "the first half to agree")
    assert net.status("a")["state_hash"] != net.status("c")["state_hash"] and split
    net.stop("d")
    net.start("d", "--bootstrap", c, "--bootstrap", a)  # the healing link
    net.wait_for("abcd", lambda s: s["state_hash"] == expected, 120, "the healed network to converge")


def test_a_hostile_peer_is_refused_and_penalised_and_the_network_carries_on(net, tmp_path, expected):
    import subprocess
    import sys

    a = net.start("a", "--join", LOG)
    net.start("b", "--join", LOG, "--bootstrap", a)
    hostile = subprocess.Popen([sys.executable, str(Path(__file__).parent / "helpers" / "hostile_peer.py"), LOG, a, tmp_path],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=net.env)
    try:
        # five refusals: two garbage, one oversized, one forged, one of another assembly
        status = net.wait_for("a", lambda s: s["gossip_refused"] >= 5 and s["penalised"], 60,
                              "a to refuse the hostile messages and lower the sender's score")["a"]
        out, _ = hostile.communicate(timeout=60)
    finally:
        if hostile.poll() is None:
            hostile.kill()
            hostile.wait(timeout=10)
    assert "SENT" in out, out
    assert {"too_large", "bad_signature", "wrong_assembly"} <= set(status["refusals"]), status["refusals"]
    # its garbage sync request was refused, and the forged events it served when a synced from it
    # got it disconnected
    net.wait_for("a", lambda s: s["sync_refused"] >= 101, 30, "a to refuse the hostile sync request and forged events")
    assert "items our replica refuses" in net.output("a")
    assert net.status("b")["gossip_refused"] == 0  # nothing bad was forwarded to b
    # the network carries on: a publishes the whole log and both replicas agree with verify
    net.stop("a")
    net.start("a", "--publish", LOG, "--bootstrap", net.addresses["b"])
    net.wait_for("ab", lambda s: s["state_hash"] == expected, 120, "the network to carry on")


def test_a_late_observer_catches_up_with_100000_events(net, tmp_path):
    import time

    from p2p.logfile import write_log
    from p2p.tools.simulate import Simulation

    log = tmp_path / "big.log"
    write_log(log, Simulation(seed=42, reps=200, events_per_round=50).log(100_000))
    net.profile("a")
    imported = net.klero("import", "--profile", "a", log, timeout=600)
    assert imported.returncode == 0, imported.stderr
    expected = imported.stdout.split("State hash: ")[1].strip()
    a = net.start("a")
    started = time.monotonic()
    net.start("late", "--join", log, "--bootstrap", a, "--observer")
    status = net.wait_for(["late"], lambda s: s["state_hash"] == expected, 300, "the late observer to catch up")["late"]
    elapsed = time.monotonic() - started
    assert status["events"] >= 100_000 and status["refusals"] == {}
    print(f"late joiner: {status['events']} events in {elapsed:.1f} s ({status['events'] / elapsed:.0f} events/s)")


def test_a_node_follows_the_beacon_relay_and_gossips_rounds_to_peers_without_one(net):
    """Node a fetches rounds from the assembly's (dev) beacon over drand's HTTP API and gossips
    them; node b has no relay and still sees the beacon live; a relay that is down is reported."""
    import time

    from p2p.beacon import serve
    from p2p.tools.bots import seeded_dev_beacon
    from p2p.documents import replay_log

    chain = replay_log(LOG).charter.beacon
    beacon = seeded_dev_beacon(11, chain.period_ms)
    assert beacon.chain.hash == chain.hash, "the golden demo log's beacon is the seed-11 dev beacon"
    server = serve(beacon)
    hostile = _nested_json_relay()  # issue 17: 60 KB of "[" made json recurse until the node died
    try:
        url = "http://127.0.0.1:%d" % server.server_address[1]
        a = net.start("a", "--join", LOG, "--beacon-relay", url)
        net.start("b", "--join", LOG, "--bootstrap", a)
        net.start("c", "--join", LOG, "--bootstrap", a, "--beacon-relay", "http://127.0.0.1:9")  # nothing listens there
        net.start("d", "--join", LOG, "--bootstrap", a, "--beacon-relay", "http://127.0.0.1:%d" % hostile.server_address[1])

        def live(s):
            return s["beacon"]["round"] >= chain.round_at(time.time()) - 3 and not s["beacon"]["stalled"]

        net.wait_for("ab", live, 60, "both nodes to see the beacon live")
        c = net.wait_for("c", lambda s: "relay_problem" in s["beacon"] and live(s), 60, "c to report its relay and still follow")["c"]
        assert "No relay gave a valid round" in c["beacon"]["relay_problem"]
        first = net.status("b")["beacon"]["round"]
        net.wait_for("b", lambda s: s["beacon"]["round"] >= first + 2, 30, "new rounds to keep arriving")
        d = net.wait_for("d", lambda s: "relay_problem" in s["beacon"] and live(s), 60, "d to survive its relay and say so")["d"]
        assert "not a drand round" in d["beacon"]["relay_problem"], d["beacon"]
    finally:
        for httpd in (server, hostile):
            httpd.shutdown()
            httpd.server_close()


def _nested_json_relay():
    """An HTTP relay on 127.0.0.1 that answers every request with 60 KB of "[" (a hostile relay)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Nested(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = b"[" * (60 * 1024)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Nested)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def test_two_nodes_find_each_other_on_the_local_network_with_mdns(net, expected):
    net.start("a", "--join", LOG, "--mdns", "--publish", LOG)
    net.start("b", "--join", LOG, "--mdns")  # no bootstrap address at all
    net.wait_for("ab", lambda s: s["state_hash"] == expected, 90, "b to find a by mDNS and catch up")
    assert "Found a peer on the local network" in net.output("a") + net.output("b")


def test_a_node_takes_its_bootstrap_peers_and_port_from_the_profile_settings(net, expected):
    import socket

    a = net.start("a", "--join", LOG, "--publish", LOG)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (net.profile("b") / "settings.json").write_text(json.dumps({"port": port, "bootstrap": [a], "observer": True}))
    net.start("b", "--join", LOG)
    status = net.wait_for("b", lambda s: s["state_hash"] == expected, 60, "b to reach a from its settings")["b"]
    assert f"/tcp/{port}/" in status["address"] and status["observer"]
    (net.profile("c") / "settings.json").write_text(json.dumps({"bootstrap": "not a list"}))
    done = net.klero("node", "--profile", "c", "--join", LOG)
    assert done.returncode == 2 and "must be a list of strings" in done.stderr and "Traceback" not in done.stderr


def test_representatives_nodes_take_their_panel_duties_on_their_own(net, tmp_path):
    """Four representatives' own profiles on a charter's roster: with nothing but beacon rounds
    arriving, their nodes lease, sign cut-offs and run the intake's agreement by themselves;
    an observer of the same assembly signs nothing."""
    import hashlib
    import time

    from nacl.signing import SigningKey

    from consensus.beacon import encode_round
    from consensus.charter import Charter
    from consensus.events import NO_ASSEMBLY, sign_event
    from consensus.legislature import Legislature
    from consensus.parliament import Parliament
    from p2p.tools.bots import canonical, load_template, seeded_dev_beacon
    from p2p.logfile import write_log
    from p2p.store import ReplicaStore

    reps = [f"r{i}" for i in range(4)]
    keys = [bytes.fromhex(json.loads((net.profile(r) / "identity.json").read_text())["public_key"]) for r in reps]
    dev = seeded_dev_beacon(7, 300)
    spec = load_template("testnet")["parliament"]
    charter = Charter(name="Four representatives", roster=tuple(sorted(keys)), beacon=dev.chain,
                      parliament=Parliament.from_body(canonical({**spec, "start_round": 2, "panel_size": 4})))
    wire = sign_event(SigningKey(hashlib.sha256(b"convenor").digest()), assembly=NO_ASSEMBLY, seq=1, prev=None,
                      kind="charter", body=charter)
    write_log(tmp_path / "charter.log", [wire])
    last = 24
    write_log(tmp_path / "beacon.log", [wire, *(encode_round(dev.sign(n)) for n in range(1, last + 1))])
    first = net.start(reps[0], "--join", tmp_path / "charter.log")
    for r in reps[1:]:
        net.start(r, "--join", tmp_path / "charter.log", "--bootstrap", first)
    net.start("observer", "--join", tmp_path / "charter.log", "--observer", "--bootstrap", first)
    net.wait_for(reps, lambda s: s["peers"] >= 1, 60, "every representative to have a peer")
    net.start("beacon", "--join", tmp_path / "charter.log", "--bootstrap", first, "--publish", tmp_path / "beacon.log",
              "--start-at", time.time() + 1, "--round-zero", 1, "--round-seconds", 0.3)
    names = reps + ["observer"]
    final = net.wait_for(names, lambda s: s["beacon_round"] == last, 90, "every node to see the last round")
    final = net.wait_for(names, lambda s: s["state_hash"] == final[reps[0]]["state_hash"], 60, "one state everywhere")
    for r in reps:
        signed = final[r]["duties"]["signed"]
        # with no proposal, only the intake needs a decision (a deadline nothing depends on gets no
        # panel); a member that sees a quorum of precommits first decides without its own
        assert final[r]["duties"]["members"] == 1 and signed["lease"] == 1 and signed["cutoff"] >= 1, final[r]
        assert signed["prevote"] + signed["precommit"] >= 1, final[r]
    assert sum(final[r]["duties"]["signed"]["precommit"] for r in reps) >= 3, "a quorum of the panel of 4 precommitted"
    assert "duties" not in final["observer"] and final["observer"]["published"] == 0
    for name in names + ["beacon"]:
        net.stop(name)
    with ReplicaStore(net.home / "profiles" / "observer" / "replica.sqlite") as store:
        leg = Legislature(store.replica.charter, store.replica.charter_event.round)
        leg.evaluate(store.replica.records, store.replica.beacon)
        intake = leg.decision("intake", 0, 0)
        leases = {(r.author, r.body.cycle) for r in store.replica.records.values() if r.kind == "lease"}
    assert intake is not None and intake.certificate is not None and set(intake.panel) == set(keys)
    assert leases == {(k, 2) for k in keys}
