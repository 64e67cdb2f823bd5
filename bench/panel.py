"""Cut-off panel costs (issue 5).

Usage: python bench/panel.py [--reps 250000] [--panel 31]

* the size of one plenary cut-off for a national roster (a bitmap over 250,000 representatives),
  encoded as the signed event a panel member publishes, and the time to sign and verify it;
* the time to derive the decided set from a quorum of such cut-offs (the more-than-half rule);
* the time to find and check a commit certificate among the events of a simulated testnet run.
Baseline for ratios: one Ed25519 verification in the same process.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=250_000)
    ap.add_argument("--panel", type=int, default=31)
    args = ap.parse_args()
    from nacl.signing import SigningKey

    from consensus.agreement import quorum_size
    from consensus.charter import Limits
    from consensus.events import sign_event, split_wire, verify_signature
    from consensus.kinds import Cut
    from consensus.panel import CutOff, bitmap, majority
    from p2p.bots import AssemblySim, Behaviour

    rng = random.Random(1)
    key = bytes(32)
    turnout = [i for i in range(args.reps) if rng.random() < 0.8]
    cutoffs = []
    for _ in range(args.panel):
        seen = [i for i in turnout if rng.random() < 0.98]
        cutoffs.append(CutOff(((key, bitmap(seen, args.reps)),), ()))
    signer = SigningKey(bytes(range(32)))
    t = time.perf_counter()
    wire = sign_event(signer, assembly=bytes(32), seq=2, prev=bytes(32), kind="cutoff",
                      body={"deadline": b"plenary", "cutoff": cutoffs[0].to_body()})
    sign_s = time.perf_counter() - t
    t = time.perf_counter()
    enc, sig, fields = split_wire(wire, 1 << 22)
    verify_signature(fields["author"], enc, sig)
    Cut.from_body(fields["body"], Limits())
    check_s = time.perf_counter() - t
    q = quorum_size(args.panel)
    t = time.perf_counter()
    ballots, _ = majority(cutoffs[:q], {key: args.reps})
    majority_s = time.perf_counter() - t

    sim = AssemblySim("testnet", seed=1, cycles=2, proposals=5, behaviour=Behaviour(absent=0, late=0, equivocating=0, unauthorised=0))
    list(sim.run())
    r = sim.replica
    t = time.perf_counter()
    result = sim.legislature.evaluate_replica(r)
    evaluate_s = time.perf_counter() - t
    deadlines = len(result.deadlines)
    panel_events = sum(1 for x in r.records.values() if x.kind in ("cutoff", "propose", "prevote", "precommit"))

    vk = signer.verify_key
    msg, s = b"x" * 200, signer.sign(b"x" * 200).signature
    t = time.perf_counter()
    for _ in range(2000):
        vk.verify(msg, s)
    ed = (time.perf_counter() - t) / 2000
    rows = {
        "plenary_cutoff_event_bytes": len(wire),
        "plenary_cutoff_kib": round(len(wire) / 1024, 1),
        "sign_cutoff_ms": round(sign_s * 1000, 2),
        "decode_and_verify_cutoff_ms": round(check_s * 1000, 2),
        f"majority_of_{q}_cutoffs_ms": round(majority_s * 1000, 1),
        "counted_votes": sum(bin(b).count("1") for b in ballots[key]),
        "testnet_deadlines": deadlines,
        "testnet_panel_events_per_deadline": round(panel_events / max(1, deadlines), 1),
        "testnet_evaluate_with_certificates_ms": round(evaluate_s * 1000, 1),
        "ed25519_verify_us": round(ed * 1e6, 1),
    }
    print("\n".join(f"{k}: {v}" for k, v in rows.items()))


if __name__ == "__main__":
    main()
