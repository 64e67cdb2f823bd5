"""Beacon rounds: real drand vectors, the dev beacon, relays, beacon time and hostile input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.beacon import (
    BeaconRound,
    Chain,
    beacon_status,
    decode_round,
    encode_round,
    verify_round,
)
from consensus.errors import InvalidInput
from p2p.beacon import BeaconError, DevBeacon, HttpRelay, load_chain, serve

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads(resources.files("resources").joinpath("beacon", "vectors.json").read_text())
QUICKNET = load_chain("quicknet")
MAINNET = load_chain("mainnet")
DEV_CHAIN, DEV_SECRET = DevBeacon.create(500, 1_700_000_000)
DEV = DevBeacon(DEV_CHAIN, DEV_SECRET)


def rounds(name):
    for r in VECTORS[name]:
        prev = bytes.fromhex(r["previous_signature"]) if "previous_signature" in r else None
        yield BeaconRound(r["round"], bytes.fromhex(r["signature"]), prev), r


def flip(data: bytes, byte: int = -1, bit: int = 0) -> bytes:
    b = bytearray(data)
    b[byte] ^= 1 << bit
    return bytes(b)


def test_pinned_chain_hashes_are_recomputed():
    assert QUICKNET.hash.hex() == "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"
    assert MAINNET.hash.hex() == "8990e7a9aaed2ffed73dbd7092123d6f289930540d7651336225dc172e51b2ce"
    assert (QUICKNET.period_ms, MAINNET.period_ms) == (3000, 30000)


def test_altered_chain_info_is_refused(tmp_path):
    info = QUICKNET.to_info()
    info["genesis_time"] += 1
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(info))
    with pytest.raises(BeaconError, match="altered"):
        load_chain(str(path))
    info = QUICKNET.to_info()
    info["public_key"] = MAINNET.public_key.hex()
    with pytest.raises(InvalidInput):
        Chain.from_info(info)


def test_the_issue_quicknet_signatures_are_in_the_vectors():
    known = {r.round: r.signature.hex() for r, _ in rounds("quicknet")}
    assert known[2].startswith("b6b6a585") and known[3].startswith("b3fab6df") and known[123].startswith("b75c69d0")


@pytest.mark.parametrize("name, chain", [("quicknet", QUICKNET), ("mainnet", MAINNET)])
def test_real_rounds_verify_and_fail_when_altered(name, chain):
    other = MAINNET if chain is QUICKNET else QUICKNET
    assert len(VECTORS[name]) >= 3
    for rnd, raw in rounds(name):
        randomness = chain.verify(rnd)
        assert randomness == rnd.randomness
        if "randomness" in raw:
            assert randomness.hex() == raw["randomness"]
        bad = [
            BeaconRound(rnd.round + 1, rnd.signature, rnd.previous_signature),  # wrong round
            BeaconRound(rnd.round, flip(rnd.signature), rnd.previous_signature),  # flipped bit
            BeaconRound(rnd.round, flip(rnd.signature, 10, 3), rnd.previous_signature),
        ]
        if rnd.previous_signature:
            bad.append(BeaconRound(rnd.round, rnd.signature, flip(rnd.previous_signature)))
        for b in bad:
            with pytest.raises(InvalidInput) as info:
                chain.verify(b)
            assert info.value.rejection.code.startswith("beacon_")
        with pytest.raises(InvalidInput):
            other.verify(rnd)  # the other chain's key


def test_another_key_of_the_same_scheme_is_refused():
    rnd, _ = next(rounds("quicknet"))
    with pytest.raises(InvalidInput) as info:
        DEV_CHAIN.verify(rnd)
    assert info.value.rejection.code == "beacon_wrong_signature"


def test_points_off_the_curve_outside_the_subgroup_or_at_infinity():
    identity = b"\xc0" + bytes(47)
    not_on_curve = b"\x80" + bytes(46) + b"\x03"
    outside_subgroup = b"\x80" + bytes(46) + b"\x04"  # on the curve, not in the r-torsion subgroup
    for sig in (identity, not_on_curve, outside_subgroup, bytes(48), b"\xff" * 48):
        with pytest.raises(InvalidInput) as info:
            verify_round(QUICKNET, 5, sig)
        assert info.value.rejection.code == "beacon_bad_signature"
    with pytest.raises(InvalidInput, match="previous"):
        verify_round(MAINNET, 5, next(rounds("mainnet"))[0].signature, None)
    for number in (0, -1, 2**64):
        with pytest.raises(InvalidInput) as info:
            verify_round(QUICKNET, number, next(rounds("quicknet"))[0].signature)
        assert info.value.rejection.code == "beacon_bad_round"


@settings(max_examples=60)
@given(round_number=st.integers(-5, 2**64), signature=st.binary(max_size=120), previous=st.none() | st.binary(max_size=120))
def test_arbitrary_input_only_ever_gives_a_reason(round_number, signature, previous):
    for chain in (QUICKNET, MAINNET):
        try:
            verify_round(chain, round_number, signature, previous)
        except InvalidInput as exc:
            assert exc.rejection.code.startswith("beacon_") and exc.rejection.reason


def test_dev_beacon_rounds_verify_like_drands():
    for number in (1, 2, 1000):
        rnd = DEV.sign(number)
        assert DEV_CHAIN.verify(rnd) == rnd.randomness
        assert len(rnd.signature) == 48
    with pytest.raises(InvalidInput):
        DEV_CHAIN.verify(BeaconRound(3, DEV.sign(4).signature))
    reloaded = Chain.from_info(json.loads(json.dumps(DEV_CHAIN.to_info())))
    assert reloaded.hash == DEV_CHAIN.hash and reloaded.period_ms == 500
    with pytest.raises(BeaconError, match="does not belong"):
        DevBeacon(DEV_CHAIN, bytes(31) + b"\x01")


def test_relayed_rounds_round_trip_and_hostile_ones_are_refused():
    rnd = DEV.sign(7)
    assert decode_round(DEV_CHAIN, encode_round(rnd)) == rnd
    mainnet_round, _ = next(rounds("mainnet"))
    assert decode_round(MAINNET, encode_round(mainnet_round)) == mainnet_round
    for junk in (b"", b"\x80", encode_round(BeaconRound(8, rnd.signature)), b"\x83\x07\x40\xf6" * 200):
        with pytest.raises(InvalidInput):
            decode_round(DEV_CHAIN, junk)


def test_beacon_time_and_stalls():
    chain = QUICKNET
    assert chain.round_at(chain.genesis_time - 1) == 0
    assert chain.round_at(chain.genesis_time) == 1
    for r in (1, 2, 1000, 30_662_982):
        assert chain.round_at(chain.time_of(r)) == r
        assert chain.round_at(chain.time_of(r) + 2.999) == r
    now = chain.time_of(500) + 1
    live = beacon_status(chain, 499, now)
    assert not live.stalled and "live" in live.sentence()
    stalled = beacon_status(chain, 400, now)
    assert stalled.stalled and stalled.since == chain.time_of(401)
    assert "stalled" in stalled.sentence()


@pytest.mark.parametrize("name", ["quicknet", "mainnet"])
def test_a_public_chain_is_judged_by_its_genesis_and_period(name):
    """Issue 16: quicknet (3 s) and mainnet (30 s) are due by their own schedule."""
    from p2p.beacon import beacon_health

    chain = {"quicknet": QUICKNET, "mainnet": MAINNET}[name]
    now = chain.time_of(10_000) + 0.5
    live = beacon_health(chain, 9_999, now, quiet_s=10 ** 6)  # arrival does not matter for a public chain
    assert not live["stalled"] and live["expected"] == 10_000 and live["behind"] == 1, live
    late = beacon_health(chain, 9_990, now)
    assert late["stalled"] and late["behind"] == 10 and "round 10000 is already due" in late["sentence"], late
    assert not beacon_health(chain, 9_998, now)["stalled"], "two rounds of grace"


def test_a_testnets_dev_chain_is_judged_by_the_testnets_schedule_not_its_genesis():
    """A testnet's dev chain has a genesis years ago and ticks on the testnet's own clock."""
    from p2p.beacon import beacon_health

    start_at, step = 1_900_000_000.0, 0.25
    schedule = (start_at, 1, step)
    early = beacon_health(DEV_CHAIN, 0, start_at - 5, schedule=schedule)
    assert not early["stalled"] and "due in 5 s" in early["sentence"], early
    on_time = beacon_health(DEV_CHAIN, 40, start_at + 40 * step, schedule=schedule)
    assert not on_time["stalled"] and on_time["expected"] == 41 and on_time["behind"] == 1, on_time
    behind = beacon_health(DEV_CHAIN, 40, start_at + 80 * step, schedule=schedule)
    assert behind["stalled"] and behind["behind"] == 41 and "41 behind, 10 s" in behind["sentence"], behind


def test_a_dev_chain_without_a_schedule_is_judged_by_when_its_rounds_arrive():
    from p2p.beacon import beacon_health

    far_future = DEV_CHAIN.genesis_time + 10 ** 8  # its genesis says nothing
    assert not beacon_health(DEV_CHAIN, 7, far_future, quiet_s=1.0)["stalled"]
    quiet = beacon_health(DEV_CHAIN, 7, far_future, quiet_s=60.0)
    assert quiet["stalled"] and "no new round for 60 s" in quiet["sentence"], quiet
    assert "No beacon round" in beacon_health(DEV_CHAIN, 0, far_future, quiet_s=60.0)["sentence"]


def test_a_node_running_a_dev_beacon_signs_rounds_on_schedule_until_told_to_stop(tmp_path):
    """``klero node --dev-beacon`` (a testnet's node 0): rounds come as the schedule makes them
    due, the node says the beacon is live, and once ``--beacon-until`` names a round it signs
    no further one, and then says the beacon stalled (it has: the run ended it)."""
    from p2p.beacon import write_dev_chain
    from p2p.tools.bots import AssemblySim

    sim = AssemblySim("testnet", reps=4, seed=5)
    home = tmp_path / "home"
    env = {**os.environ, "KLERO_HOME": str(home), "KLERO_PASSPHRASE": "dev-beacon-test"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "desktop.cli", *map(str, a)], env=env, capture_output=True,
                                    text=True, timeout=120)
    assert run("init", "--profile", "b", "--kdf", "interactive").returncode == 0
    from p2p.logfile import write_log

    write_log(tmp_path / "charter.log", [sim.charter_wire])
    write_dev_chain(tmp_path / "beacon.json", sim.dev.chain, sim.dev.secret)
    wrong = tmp_path / "wrong.secret"
    wrong.write_text(DEV_SECRET.hex() + "\n")
    refused = run("node", "--profile", "b", "--join", tmp_path / "charter.log", "--dev-beacon", wrong, "--start-at", time.time())
    assert refused.returncode == 2 and "does not belong to this chain" in refused.stderr, refused.stderr
    until = tmp_path / "beacon.last"
    status_path = home / "profiles" / "b" / "node-status.json"
    proc = subprocess.Popen([sys.executable, "-m", "desktop.cli", "node", "--profile", "b", "--join", tmp_path / "charter.log",
                             "--dev-beacon", tmp_path / "beacon.json.secret", "--beacon-until", until, "--start-at",
                             str(time.time() + 1), "--round-seconds", "0.2", "--round-zero", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def status():
            try:
                return json.loads(status_path.read_text())
            except (OSError, ValueError):
                return {}

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and status().get("beacon_round", 0) < 15:
            time.sleep(0.2)
        s = status()
        assert s.get("beacon_round", 0) >= 15 and not s["beacon"]["stalled"], s.get("beacon")
        assert "on schedule" in s["beacon"]["sentence"], s["beacon"]
        until.write_text(f"{s['beacon_round'] + 2}\n")
        stop_round = s["beacon_round"] + 2
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not status().get("beacon", {}).get("stalled"):
            time.sleep(0.2)
        s = status()
        assert s["beacon_round"] == stop_round and s["beacon"]["stalled"], s.get("beacon")
        assert "has stalled" in s["beacon"]["sentence"], s["beacon"]
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert f"stopped after round {stop_round}" in out, out[-2000:]


def test_relay_fetches_from_a_dev_beacon_over_http():
    start = time.time() - 10
    chain, secret = DevBeacon.create(1000, int(start))
    server = serve(DevBeacon(chain, secret))
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        relay = HttpRelay(chain, [url], timeout=2, retries=0)
        assert relay.fetch(3).round == 3
        latest = relay.fetch()
        assert latest.round >= 10
        with pytest.raises(BeaconError):
            relay.fetch(latest.round + 1000)  # not yet published
    finally:
        server.shutdown()
        server.server_close()


class _Hostile(BaseHTTPRequestHandler):
    mode = "garbage"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.mode == "slow":
            time.sleep(1.5)
        if self.mode == "drip":  # a byte every 0.2 s: never slow enough for a per-read timeout
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            try:
                for _ in range(100):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
            return
        body = {
            "garbage": b"\x00\xffnot json",
            "forged": json.dumps({"round": 5, "signature": "ab" * 48}).encode(),
            "wrong_round": json.dumps({"round": 6, "signature": DEV.sign(6).signature.hex()}).encode(),
            "huge": b"[" * (200 * 1024),
            "nested": b"[" * (60 * 1024),
            "nested_object": b'{"round": ' + b"[" * (60 * 1024),
            "slow": b"{}",
        }[self.mode]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass


@pytest.mark.parametrize("mode, words", [
    ("garbage", "not a drand round"), ("forged", "invalid"), ("wrong_round", "asked for round 5"),
    ("huge", "too large"), ("slow", "timed out"), ("nested", "not a drand round"), ("nested_object", "not a drand round"),
    ("drip", "no whole answer within 1 s"),
])
def test_bad_relays_are_survived_with_a_reason(mode, words):
    handler = type("H", (_Hostile,), {"mode": mode})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        relay = HttpRelay(DEV_CHAIN, [f"http://127.0.0.1:{server.server_address[1]}"], timeout=0.5, retries=1, backoff=0.05)
        started = time.monotonic()
        with pytest.raises(BeaconError) as info:
            relay.fetch(5)
        assert words in info.value.message
        assert time.monotonic() - started < 10  # bounded: timeouts and retries, never a hang
    finally:
        server.shutdown()
        server.server_close()


def test_a_relay_serving_an_old_round_as_the_latest_is_not_believed():
    """A real quicknet round, served as "latest" long after it was due: stale (or lying)."""
    rnd, raw = next(rounds("quicknet"))
    body = json.dumps({"round": rnd.round, "signature": rnd.signature.hex()}).encode()
    handler = type("H", (_Hostile,), {"do_GET": lambda self: (self.send_response(200), self.send_header("Content-Length", str(len(body))),
                                                              self.end_headers(), self.wfile.write(body))})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        fresh = HttpRelay(QUICKNET, [url], timeout=2, retries=0, clock=lambda: QUICKNET.time_of(rnd.round) + 1)
        assert fresh.fetch().round == rnd.round
        late = HttpRelay(QUICKNET, [url], timeout=2, retries=0, clock=lambda: QUICKNET.time_of(rnd.round + 100))
        with pytest.raises(BeaconError) as info:
            late.fetch()
        assert f"latest round is {rnd.round}, but round {rnd.round + 100} is due" in info.value.message, info.value.message
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("url", ["not-a-url", "ftp://x", "http://"])
def test_a_relay_address_that_is_no_url_gets_a_sentence(url):
    with pytest.raises(BeaconError) as info:
        HttpRelay(QUICKNET, [url])
    assert "is not a relay address" in info.value.message


def test_dead_relay_falls_back_to_the_next():
    chain, secret = DevBeacon.create(1000, int(time.time()) - 5)
    server = serve(DevBeacon(chain, secret))
    try:
        relay = HttpRelay(chain, ["http://127.0.0.1:9", f"http://127.0.0.1:{server.server_address[1]}"], timeout=0.5, retries=0)
        assert relay.fetch(2).round == 2
    finally:
        server.shutdown()
        server.server_close()


def test_relays_are_asked_at_once_so_a_slow_one_delays_nothing():
    """A relay dripping its answer (a byte every 0.2 s for 20 s; the client's deadline is 60 s)
    is named first; the honest relay named second answers while the first still drips.  Asked
    one after another, the answer would come only after the drip ended: no clock is compared,
    only whether the dripping relay was still sending when the answer came."""
    finished = threading.Event()

    class Dripping(_Hostile):
        mode = "drip"

        def do_GET(self):
            try:
                super().do_GET()
            finally:
                finished.set()

    dripping = ThreadingHTTPServer(("127.0.0.1", 0), Dripping)
    dripping.daemon_threads = True
    threading.Thread(target=dripping.serve_forever, daemon=True).start()
    chain, secret = DevBeacon.create(1000, int(time.time()) - 5)
    honest = serve(DevBeacon(chain, secret))
    try:
        relay = HttpRelay(chain, [f"http://127.0.0.1:{dripping.server_address[1]}",
                                  f"http://127.0.0.1:{honest.server_address[1]}"], timeout=30, retries=0)
        assert relay.fetch(2).round == 2
        assert not finished.is_set(), "the honest relay's answer waited for the dripping one"
    finally:
        for server in (dripping, honest):
            server.shutdown()
            server.server_close()


def test_store_caches_only_verified_rounds(tmp_path):
    from p2p.tools.simulate import Simulation
    from p2p.store import ReplicaStore

    with ReplicaStore.create(tmp_path / "r.sqlite", Simulation().charter_wire) as store:
        good = DEV.sign(9)
        assert store.add_round(DEV_CHAIN, good)
        assert not store.add_round(DEV_CHAIN, BeaconRound(10, good.signature))
        assert store.latest_round(DEV_CHAIN) == good
        assert store.beacon_round(DEV_CHAIN, 10) is None
        store.rebuild()
        assert store.latest_round(DEV_CHAIN) == good


def klero(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "desktop.cli", *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_cli_beacon_verify():
    rnd, _ = next(rounds("mainnet"))
    ok = klero("beacon", "verify", "--chain", "mainnet", "--round", rnd.round, "--signature", rnd.signature.hex(), "--previous", rnd.previous_signature.hex())
    assert ok.returncode == 0 and ok.stdout.strip() == rnd.randomness.hex()
    bad = klero("beacon", "verify", "--chain", "mainnet", "--round", rnd.round + 1, "--signature", rnd.signature.hex(), "--previous", rnd.previous_signature.hex())
    assert bad.returncode == 1 and "not signed by this chain" in bad.stderr
    junk = klero("beacon", "verify", "--chain", "quicknet", "--round", 2, "--signature", "xyz")
    assert junk.returncode == 2 and "hexadecimal" in junk.stderr and "Traceback" not in junk.stderr
    short = klero("beacon", "verify", "--chain", "quicknet", "--round", 2, "--signature", "abcd")
    assert short.returncode == 1 and "48 bytes" in short.stderr


def test_cli_dev_chain_serve_and_fetch(tmp_path):
    chain_file = tmp_path / "dev.json"
    made = klero("beacon", "dev-chain", chain_file, "--period-ms", "200", "--genesis", int(time.time()) - 2)
    assert made.returncode == 0, made.stderr
    assert oct((tmp_path / "dev.json.secret").stat().st_mode & 0o777) == "0o600"
    proc = subprocess.Popen(
        [sys.executable, "-m", "desktop.cli", "beacon", "serve", "--charter", chain_file, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        line = proc.stdout.readline()
        assert "serving drand's HTTP API" in line, line + proc.stderr.read()
        url = line.rsplit(" ", 1)[1].strip()
        fetched = klero("beacon", "fetch", "--chain", chain_file, "--relay", url)
        assert fetched.returncode == 0, fetched.stderr
        assert "verified" in fetched.stdout and "The beacon is live" in fetched.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


def test_the_dev_beacon_server_bounds_idle_connections_and_keeps_serving(monkeypatch):
    """Issue 17: `klero beacon serve` made a thread for each of 300 idle connections and kept
    them for ever.  Connections beyond the cap are closed at once; idle ones are cut after the
    idle timeout, after which an honest relay client is served again."""
    import socket

    import p2p.beacon as beacon_module

    monkeypatch.setattr(beacon_module, "SERVE_IDLE_S", 1.0)
    monkeypatch.setattr(beacon_module, "SERVE_MAX_CONNECTIONS", 8)
    chain, secret = DevBeacon.create(1000, int(time.time()) - 5)
    server = serve(DevBeacon(chain, secret))
    idle = []
    try:
        before = threading.active_count()
        for _ in range(100):
            idle.append(socket.create_connection(server.server_address, timeout=5))
        time.sleep(0.5)
        assert threading.active_count() - before <= 8 + 1, threading.active_count() - before  # and the watchdog
        url = f"http://127.0.0.1:{server.server_address[1]}"
        relay = HttpRelay(chain, [url], timeout=2, retries=3, backoff=0.5)
        assert relay.fetch(2).round == 2  # once the idle ones are cut (1 s), a slot is free
    finally:
        for s in idle:
            s.close()
        server.shutdown()
        server.server_close()


def test_the_dev_beacon_server_cuts_a_request_that_drips_for_ever(monkeypatch):
    """A client that sends a header byte every 0.2 s never trips the idle timeout; the whole
    request's deadline cuts it."""
    import socket

    import p2p.beacon as beacon_module

    monkeypatch.setattr(beacon_module, "SERVE_REQUEST_S", 1.0)
    chain, secret = DevBeacon.create(1000, int(time.time()) - 5)
    server = serve(DevBeacon(chain, secret))
    try:
        with socket.create_connection(server.server_address, timeout=5) as s:
            cut = False
            for n in range(150):  # 30 s at most
                try:
                    s.sendall(b"GET /info HTTP/1.1\r\nX: "[n:n + 1] or b"a")
                    time.sleep(0.2)
                except OSError:
                    cut = True
                    break
            assert cut, "the dripping request was never cut"
    finally:
        server.shutdown()
        server.server_close()
