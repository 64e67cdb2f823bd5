"""A node under a hostile peer keeps serving honest ones (issue 17).

Usage: python bench/hostile.py [--pace 0.02] [--seconds 0]

Three processes on 127.0.0.1: an honest publisher P, the target node T (both `klero node`), and
a hostile libp2p peer H (this script, as a subprocess).  P publishes the golden demo log's items
at one per ``--pace`` seconds; T traces when each first arrives.  The run is made twice: calm
(H absent) and under attack, where H connects to T and, as fast as the transport lets it:

* gossips garbage items (refused: they cost H its score),
* replays events T already holds (refused without fault: neither forwarded nor penalised),
* gossips oversized messages (beyond the event size limit),
* sends 4 MiB sync requests that decode to four million integers (decode bombs), and opens
  sync streams several at a time (all but one refused as ``sync_busy``).

Reported: P→T latency p50/p99 in each run and their ratio (the goal is within 2x), T's resident
memory at the end of each run, and what T's status says it refused.  All processes share this
machine's 2 cores, so the hostile peer's CPU competes with the target's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
LOG = ROOT / "tests" / "vectors" / "demo-run.log"

from network import q, read_trace  # noqa: E402  (bench/network.py: quantiles, arrival traces)


def run(home: Path, pace: float, hostile: bool) -> dict:
    from netharness import Net
    from p2p.documents import replay_log

    net = Net(home / "home")
    tag = "attack" if hostile else "calm"
    attacker = None
    try:
        target = net.start("t", "--join", LOG, "--trace", home / f"t-{tag}.trace")
        if hostile:
            attacker = subprocess.Popen([sys.executable, __file__, "--attack", target, "--store", str(home / "h.sqlite")],
                                        stdout=open(home / "h.out", "wb"), stderr=subprocess.STDOUT, cwd=ROOT)
            net.wait_for(["t"], lambda s: s["refusals"] or s.get("gossip_not_forwarded"), 60, "the attack to begin")
        net.start("p", "--join", LOG, "--bootstrap", target)
        net.wait_for(["t"], lambda s: s["peers"] >= 1, 60, "p and t to connect")
        time.sleep(3)  # gossip meshes form
        net.stop("p")
        net.start("p", "--publish", LOG, "--pace", pace, "--trace", home / f"p-{tag}.trace", "--bootstrap", target)
        expected = replay_log(LOG).state_hash().hex()
        final = net.wait_for(["t"], lambda s: s["state_hash"] == expected, 900, "t to hold the whole log")["t"]
        sent, got = read_trace(home / f"p-{tag}.trace"), read_trace(home / f"t-{tag}.trace")
        lat = [got[h] - t for h, t in sent.items() if h in got]
        return {"p50": q(lat, .5), "p99": q(lat, .99), "n": len(lat), "rss": final["rss_mib"],
                "refusals": final["refusals"], "not_forwarded": final.get("gossip_not_forwarded", 0),
                "banned": final.get("banned", []), "penalised": final.get("penalised", [])}
    finally:
        if attacker is not None:
            attacker.kill()
            attacker.wait()
        net.close()


def attack(target: str, store_path: str) -> None:
    """The hostile peer: floods the target until killed."""
    import trio

    from libp2p.utils import encode_uvarint

    from helpers.hostile_peer import Hostile  # the network tests' hostile peer: it relays anything
    from p2p import sync
    from p2p.logfile import read_items
    from p2p.store import ReplicaStore

    items = [i[2] for i in read_items(LOG)]
    store = ReplicaStore.create(store_path, items[0], durable=False)
    node = Hostile(store, b"\x66" * 32, say=lambda line: None)
    sent = {"bombs": 0, "busy": 0, "errors": 0}
    count = (4 << 20) - 5
    bomb = b"\x9a" + count.to_bytes(4, "big") + b"\x00" * count

    async def main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.run)
            while not node.address:
                await trio.sleep(0.05)
            await node.connect(target)
            peer = next(iter(node.host.get_connected_peers()))
            await trio.sleep(2)

            async def gossip():
                n = 0
                while True:
                    n += 1
                    for data in (b"\x82\x41\x00" + n.to_bytes(8, "big"), items[1 + n % (len(items) - 1)], b"\x82" + b"\x00" * 70_000):
                        try:
                            await node.pubsub.publish(node.events_topic, data)
                        except Exception:
                            pass
                    await trio.sleep(0)

            async def bomb():
                stream = await node.host.new_stream(peer, [sync.PROTOCOL])
                await stream.write(encode_uvarint(len(bomb)) + bomb)
                await sync.read_frame(stream, 1 << 20)  # the refusal
                await stream.close()
                sent["bombs"] += 1

            async def busy():
                extra = await node.host.new_stream(peer, [sync.PROTOCOL])
                await sync.write_frame(extra, b"\x00")
                sent["busy"] += 1

            async def bombs():
                while True:
                    try:
                        async with trio.open_nursery() as inner:
                            inner.start_soon(bomb)
                            for _ in range(3):  # more at once: refused as busy
                                inner.start_soon(busy)
                    except BaseException as exc:  # noqa: BLE001 (a hostile peer shrugs everything off)
                        if isinstance(exc, trio.Cancelled):
                            raise
                        sent["errors"] += 1
                        await trio.sleep(0.2)
                        if peer not in node.host.get_connected_peers():
                            await node.connect(target)
                    print(json.dumps(sent), flush=True)

            nursery.start_soon(gossip)
            nursery.start_soon(bombs)

    trio.run(main)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pace", type=float, default=0.02)
    ap.add_argument("--attack", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.attack:
        attack(args.attack, args.store)
        return
    results = {}
    for hostile in (False, True):
        with tempfile.TemporaryDirectory(prefix="klero-bench-hostile-") as tmp:
            results["attack" if hostile else "calm"] = run(Path(tmp), args.pace, hostile)
            r = results["attack" if hostile else "calm"]
            print(f"{'under attack' if hostile else 'calm'}: {r['n']} items P->T, latency p50 {r['p50'] * 1000:.0f} ms, "
                  f"p99 {r['p99'] * 1000:.0f} ms; T's memory {r['rss']:.0f} MiB", flush=True)
    calm, hot = results["calm"], results["attack"]
    print(f"p99 under attack / calm: {hot['p99'] / calm['p99']:.2f}x (goal: within 2x); p50 {hot['p50'] / calm['p50']:.2f}x")
    print("T refused: " + json.dumps(hot["refusals"]) + f"; copies not forwarded: {hot['not_forwarded']}; "
          f"banned: {len(hot['banned'])}; penalised: {len(hot['penalised'])}")


if __name__ == "__main__":
    main()
