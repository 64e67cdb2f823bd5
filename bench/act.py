"""A person's act, from the call to every peer holding it (issue 13): signed by the person's node
(through its door, as the CLI and the app call it), written, gossiped, and traced on arrival at
each of 5 peer nodes.

Usage: python bench/act.py [--acts 40] [--round-seconds 0.5]

A reactive testnet on 127.0.0.1: 5 bot nodes (10 bot representatives, tracing every item's
arrival) and the person's node; the person comments ``--acts`` times at random intervals of 0.3 to
0.8 s while the bots legislate.  Reported: for each act, the time from the call to the last of the
5 peers receiving it (p50, p99, max), and the call's own round trip (the person waits only for it).
All 6 node processes share this machine's 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--acts", type=int, default=40)
    ap.add_argument("--round-seconds", type=float, default=0.5)
    args = ap.parse_args()
    from network import q, read_trace

    from consensus.events import event_id
    from p2p import control
    from p2p.store import ReplicaStore
    from p2p.tools.testnet import Testnet

    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        net = Testnet(Path(tmp) / "net")
        net.up(nodes=5, reps=10, cycles=2, round_seconds=args.round_seconds, trace=True, people=("alice",),
                      bot_proposals=2, say=lambda line: None)
        folder = net.home / "profiles" / "alice"
        calls: dict[str, tuple[float, float]] = {}
        try:
            client = None
            deadline = time.monotonic() + 60
            while client is None and time.monotonic() < deadline:
                client = control.connect(folder)
                time.sleep(0.2)
            pid = None
            while pid is None and time.monotonic() < deadline + 60:
                try:
                    pid = client.call("propose", title="Benches in every park", summary="Somewhere to sit.")["proposal"]
                except Exception:  # the beacon has not started yet
                    time.sleep(0.5)
            for n in range(args.acts):
                time.sleep(rng.uniform(0.3, 0.8))
                t = time.time()
                out = client.call("comment", ref=pid, text=f"Comment {n}: benches need shade too.")
                calls[out["id"]] = (t, time.time() - t)
            time.sleep(5)
        finally:
            net.down(say=lambda line: None)
        with ReplicaStore(folder / "replica.sqlite") as store:
            digest = {event_id(w).hex(): hashlib.sha256(w).hexdigest()[:16] for w in store.wires() if w[:1] == b"\x82"}
        traces = [read_trace(net.dir / f"node-{k}.trace") for k in range(5)]
        spans, missing = [], 0
        for eid, (t, _) in calls.items():
            arrivals = [tr.get(digest.get(eid, "")) for tr in traces]
            if any(a is None for a in arrivals):
                missing += 1
                continue
            spans.append(max(arrivals) - t)
        trips = [trip for _, trip in calls.values()]
        print(f"acts: {len(calls)} comments through the door; reached all 5 peers: {len(spans)} (missing {missing})")
        print(f"call to all 5 peers holding it: p50 {q(spans, .5) * 1000:.0f} ms, p99 {q(spans, .99) * 1000:.0f} ms, "
              f"max {max(spans) * 1000:.0f} ms")
        print(f"the call's round trip: p50 {statistics.median(trips) * 1000:.0f} ms, p99 {q(trips, .99) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
