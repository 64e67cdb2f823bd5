"""Replication over libp2p with real node processes on 127.0.0.1 (issue 7).

Usage: python bench/network.py [--nodes 20] [--pace 0.02] [--catchup 20000]

1. Propagation: ``--nodes`` node processes in a sparse topology (node k dials nodes 0, k-1 and
   k/2); node 0 publishes the golden demo log's ~1,170 items at one per ``--pace`` seconds; every
   node traces when each item first reaches it.  Reported: latency p50/p99/max over all
   (item, node) pairs, and the resident memory of each node process.
2. Catch-up: a node holding ``--catchup`` events (imported from a log) and a late observer that
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
    names = [f"n{k}" for k in range(nodes)]
    final = net.wait_for(names, lambda s: s["published"] > 1000 or s["events"] >= 568, 600, "every node to hold the log")
    final = net.wait_for(names, lambda s: s["state_hash"] == final["n0"]["state_hash"], 120, "every node to agree")
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


def catchup(net, home: Path, events: int) -> None:
    from consensus.replica import Replica
    from p2p.logfile import read_items, write_log
    from p2p.simulate import Simulation

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
    args = ap.parse_args()
    from netharness import Net

    with tempfile.TemporaryDirectory(prefix="klero-bench-net-") as tmp:
        home = Path(tmp)
        net = Net(home / "home")
        try:
            propagation(net, home, args.nodes, args.pace)
            if args.catchup:
                catchup(net, home, args.catchup)
        finally:
            net.close()


if __name__ == "__main__":
    main()
