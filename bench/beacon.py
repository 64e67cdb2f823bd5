"""Beacon verification speed per chain (issue 3).

Usage: python bench/beacon.py [--seconds 3]

Verifies the real rounds of resources/beacon/vectors.json (quicknet and mainnet) and freshly
signed dev-beacon rounds in a loop for a fixed time each, and prints verifications per second,
plus dev-beacon signing speed.  Baseline for comparison: one Ed25519 verification (PyNaCl) in the
same process, so the README can state the cost of a round in "event signatures".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rate(fn, items, seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for item in items:
            fn(item)
        count += len(items)
    return count / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=5000, help="cached rounds in the replica opened (default 5,000)")
    args = ap.parse_args()
    from nacl.signing import SigningKey

    from consensus.beacon import BeaconRound
    from p2p.beacon import DevBeacon, load_chain

    vectors = json.loads((ROOT / "resources" / "beacon" / "vectors.json").read_text())
    result = {}
    for name in ("quicknet", "mainnet"):
        chain = load_chain(name)
        rounds = [
            BeaconRound(r["round"], bytes.fromhex(r["signature"]), bytes.fromhex(r["previous_signature"]) if "previous_signature" in r else None)
            for r in vectors[name]
        ]
        result[f"{name}_verify_per_s"] = round(rate(chain.verify, rounds, args.seconds), 1)
    chain, secret = DevBeacon.create(1000, 1_700_000_000)
    dev = DevBeacon(chain, secret)
    dev_rounds = [dev.sign(n) for n in range(1, 21)]
    result["dev_verify_per_s"] = round(rate(chain.verify, dev_rounds, args.seconds), 1)
    result["dev_sign_per_s"] = round(rate(dev.sign, list(range(1, 21)), args.seconds), 1)
    key = SigningKey.generate()
    msg = b"x" * 200
    sig = key.sign(msg).signature
    vk = key.verify_key
    ed = rate(lambda _: vk.verify(msg, sig), [None] * 100, args.seconds)
    result["ed25519_verify_per_s"] = round(ed)
    result["quicknet_round_in_ed25519_verifications"] = round(ed / result["quicknet_verify_per_s"], 1)
    result.update(opening(dev, args.rounds))
    print("\n".join(f"{k}: {v}" for k, v in result.items()))


def opening(dev, count: int) -> dict:
    """What opening a replica with ``count`` cached rounds costs (issue 17): each round's MAC is
    checked; without the folder's key (a file from elsewhere) every round is verified again."""
    import tempfile

    from consensus.beacon import encode_round
    from p2p.store import ROUND_KEY_FILE, ReplicaStore
    from p2p.tools.simulate import Simulation

    sim = Simulation(seed=7, reps=6)
    charter = sim.charter_wire
    rounds = [encode_round(sim.dev.sign(n)) for n in range(1, count + 1)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.sqlite"
        with ReplicaStore.create(path, charter, durable=False) as store:
            for item in rounds:
                store.add_item(item)
            store.flush()
        timed = []
        for forget_key in (False, False, True):
            if forget_key:
                (Path(folder) / ROUND_KEY_FILE).unlink()
            start = time.perf_counter()
            ReplicaStore(path, durable=False).close()
            timed.append(time.perf_counter() - start)
    with_macs, verifying = min(timed[:2]), timed[2]
    return {"open_rounds": count, "open_ms_with_macs": round(with_macs * 1000, 1),
            "open_ms_verifying_every_round": round(verifying * 1000, 1),
            "open_us_per_round_with_macs": round(with_macs / count * 1e6, 2)}


if __name__ == "__main__":
    main()
