"""Replication over libp2p with real node processes on 127.0.0.1 (issue 7).

Usage: python bench/network.py [--nodes 20] [--pace 0.02] [--catchup 20000]

1. Propagation: ``--nodes`` node processes in a sparse topology (node k dials nodes 0, k-1 and
   k/2); node 0 publishes the golden demo log's ~1,170 items at one per ``--pace`` seconds; every
   node traces when each item first reaches it.  Reported: latency p50/p99/max over all
   (item, node) pairs, and the resident memory of each node process.
2. Deadlines: a 5-node testnet (25 bots, 4 cycles, 0.25 s rounds) with traces; for every
   deadline, on every node, the time from the arrival of the deadline's beacon round to the
   arrival of the precommit that completes its commit certificate (a quorum).  The bots sign on
   the plan's schedule, so this is what the network adds to an agreement decided within its
   deadline round (bench/panel.py measures agreement rounds under loss and silence).
3. Catch-up: a node holding ``--catchup`` events (imported from a log) and a late observer that
   joins it; reported: events/s of the catch-up, and its ratio to replaying the same log into an
   in-memory replica in this process (the local replay rate, same machine, same moment).

All processes run on this machine's 2 cores, so latency includes CPU contention between
``--nodes`` Python processes; a real deployment has one node per machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def read_trace(path: Path) -> dict[str, float]:
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            h, t = line.split()
            out.setdefault(h, float(t))
    return out


def propagation(net, home: Path, nodes: int, pace: float) -> None:
    from netharness import Net  # noqa: F401  (the tests' process harness)

    log = ROOT / "tests" / "vectors" / "demo-run.log"
    addresses = []
    for k in range(nodes):
        boot = []
        for j in sorted({0, k - 1, k // 2} - {k}):
            if 0 <= j < k:
                boot += ["--bootstrap", addresses[j]]
        addresses.append(net.start(f"n{k}", "--join", log, "--trace", home / f"n{k}.trace", *boot))
        print(f"  node {k} up", file=sys.stderr, flush=True)
    net.wait_for([f"n{k}" for k in range(nodes)], lambda s: s["peers"] >= 1, 60, "every node to have a peer")
    time.sleep(3)  # let the gossip meshes form
    net.stop("n0")
    net.start("n0", "--publish", log, "--pace", pace, "--trace", home / "n0.trace", "--bootstrap", addresses[1])
    from p2p.documents import replay_log

    expected = replay_log(log).state_hash().hex()
    names = [f"n{k}" for k in range(nodes)]
    final = net.wait_for(names, lambda s: s["state_hash"] == expected, 900, "every node to hold the whole log")
    sent = read_trace(home / "n0.trace")
    lat = []
    for k in range(1, nodes):
        got = read_trace(home / f"n{k}.trace")
        lat += [got[h] - t for h, t in sent.items() if h in got]
    rss = [s["rss_mib"] for s in final.values()]
    print(f"propagation: {nodes} nodes, {len(sent)} items at {1 / pace:.0f}/s: latency p50 {q(lat, .5) * 1000:.0f} ms, "
          f"p99 {q(lat, .99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms over {len(lat)} deliveries")
    print(f"memory per node: median {statistics.median(rss):.0f} MiB, max {max(rss):.0f} MiB")
    for name in names:
        net.stop(name)


def deadlines(home: Path) -> None:
    import hashlib
    from collections import defaultdict

    from consensus import cbor
    from consensus.agreement import quorum_size
    from p2p.logfile import read_items
    from p2p.logfile import item_round
    from p2p.tools.testnet import Testnet

    net = Testnet(home / "testnet")
    info = net.up(nodes=5, reps=25, cycles=4, round_seconds=0.25, trace=True, say=lambda line: None)
    try:
        assert net.wait(timeout=400, say=lambda line: None), "the testnet did not converge"
    finally:
        net.down(say=lambda line: None)
    n = 7  # the testnet charter's panel size
    quorum = quorum_size(n)
    round_item: dict[int, str] = {}
    precommits: dict[bytes, list[str]] = defaultdict(list)
    deadline_round: dict[bytes, int] = {}
    from p2p.store import ReplicaStore

    with ReplicaStore(net.home / "profiles" / "node-0" / "replica.sqlite") as store:
        events = list(store.wires())
    # reactive testnet: the rounds node 0 published, the events every node signed on its own
    items = [item for _, _, item in read_items(net.dir / "beacon.log")][1:] + events
    for item in items:
        h = hashlib.sha256(item).hexdigest()[:16]
        if item[:1] == b"\x83":
            round_item[item_round(item)] = h
            continue
        fields = cbor.decode_fast(cbor.decode_fast(item)[0])
        if fields["kind"] == "cutoff":
            name = fields["body"]["deadline"]
            deadline_round[name] = min(deadline_round.get(name, 1 << 62), fields["round"][0])
        elif fields["kind"] == "precommit" and fields["body"]["value"] is not None:
            precommits[fields["body"]["deadline"]].append(h)
    spans = []
    for k in range(len(info["nodes"])):
        arrived = read_trace(net.dir / f"node-{k}.trace")
        for name, at in deadline_round.items():
            start = arrived.get(round_item.get(at, ""))
            times = sorted(arrived[h] for h in precommits.get(name, []) if h in arrived)
            if start is not None and len(times) >= quorum:
                spans.append(max(0.0, times[quorum - 1] - start))
    print(f"deadlines: {len(deadline_round)} deadlines x {len(info['nodes'])} nodes; deadline round to commit certificate "
          f"p50 {q(spans, .5) * 1000:.0f} ms, p99 {q(spans, .99) * 1000:.0f} ms, max {max(spans) * 1000:.0f} ms")


def catchup(net, home: Path, events: int) -> None:
    from consensus.replica import Replica
    from p2p.logfile import read_items, write_log
    from p2p.tools.simulate import Simulation

    log = home / "big.log"
    write_log(log, Simulation(seed=42, reps=200, events_per_round=50).log(events))
    wires = [i[2] for i in read_items(log)]
    t = time.perf_counter()
    r = Replica(wires[0])
    for w in wires[1:]:
        r.add(w)
    local = (len(wires) - 1) / (time.perf_counter() - t)
    net.profile("big")
    done = net.klero("import", "--profile", "big", log, timeout=900)
    expected = done.stdout.split("State hash: ")[1].strip()
    a = net.start("big")
    t = time.monotonic()
    net.start("late", "--join", log, "--bootstrap", a, "--observer")
    s = net.wait_for(["late"], lambda s: s["state_hash"] == expected, 900, "the late joiner")["late"]
    rate = s["events"] / (time.monotonic() - t)
    print(f"catch-up: {s['events']} events at {rate:.0f} events/s; local in-memory replay {local:.0f} events/s "
          f"(ratio {rate / local:.2f}); late joiner RSS {s['rss_mib']:.0f} MiB")
    net.stop("late")
    net.stop("big")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--pace", type=float, default=0.02)
    ap.add_argument("--catchup", type=int, default=20_000)
    ap.add_argument("--phases", default="propagation,deadlines,catchup", help="comma-separated phases to run")
    args = ap.parse_args()
    from netharness import Net

    with tempfile.TemporaryDirectory(prefix="klero-bench-net-") as tmp:
        home = Path(tmp)
        net = Net(home / "home")
        try:
            phases = set(args.phases.split(","))
            if "propagation" in phases:
                propagation(net, home, args.nodes, args.pace)
            if "deadlines" in phases:
                deadlines(home)
            if args.catchup and "catchup" in phases:
                catchup(net, home, args.catchup)
        finally:
            net.close()


if __name__ == "__main__":
    main()
