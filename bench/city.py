"""A city-scale simulated run, replayed and tallied (issue 4).

Usage: python bench/city.py [--reps 800] [--proposals 200] [--cycles 4]

The city charter (7-day cycles, stages 7 -> 31 -> 127 -> plenary) on a dev beacon with
quicknet's 3 s period; 800 bot representatives, 200 proposals per cycle, 4 cycles.  Prints the
time to generate the log, to replay it from nothing (``klero verify``'s path, one core and one
worker per core), to run the legislature over it, peak memory, and the ratio of replay speed to
raw Ed25519 verification of the same events in the same process.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=800)
    ap.add_argument("--proposals", type=int, default=200)
    ap.add_argument("--cycles", type=int, default=4)
    args = ap.parse_args()
    from consensus import Replica
    from consensus.legislature import Legislature
    from p2p.audit import verify_log
    from p2p.tools.bots import AssemblySim, Behaviour
    from p2p.logfile import write_log
    from replay import baseline

    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"city-{args.reps}-{args.proposals}-{args.cycles}.log"
    t = time.perf_counter()
    sim = AssemblySim("city", reps=args.reps, proposals=args.proposals, cycles=args.cycles, seed=1, behaviour=Behaviour(), dev_beacon=True)
    items = list(sim.run())
    write_log(path, items)
    generate = time.perf_counter() - t
    events = [i for i in items if i[:1] == b"\x82"]
    base = baseline(events)

    t = time.perf_counter()
    r = Replica(items[0])
    for item in items[1:]:
        r.add_item(item)
    replay_memory = time.perf_counter() - t
    t = time.perf_counter()
    result = Legislature(r.charter, r.charter_event.round).evaluate_replica(r)
    tally = time.perf_counter() - t
    # a representative's node (p2p/duties.py): what it pays per beacon round to evaluate and
    # to look at its own panel duties, as multiples of one Ed25519 verification
    from nacl.signing import SigningKey

    from p2p.duties import Hands, PanelDuties

    leg = Legislature(r.charter, r.charter_event.round)
    t = time.perf_counter()
    leg.evaluate_replica(r, explain=False)
    node_evaluate = time.perf_counter() - t
    member = sorted(r.charter.roster)[0]
    duties = PanelDuties([member])
    hands = Hands(r, [], add=lambda wire: None)  # signs nothing into the replica: cost only
    hands.keys = {member: SigningKey.generate()}
    steps = []
    for _ in range(5):
        t = time.perf_counter()
        duties.step(leg, hands)
        steps.append(time.perf_counter() - t)
    duty_step = sorted(steps)[2]
    t = time.perf_counter()
    report = verify_log(path, workers=1)
    verify_one = time.perf_counter() - t
    t = time.perf_counter()
    verify_log(path)
    verify_par = time.perf_counter() - t
    assert report.state_hash == r.state_hash().hex()
    ballots = sum(1 for b in result.ballots)
    passed = sum(1 for p in result.proposals.values() if p.status == "passed")
    rows = {
        "items": len(items),
        "events": len(events),
        "beacon_rounds": len(r.beacon),
        "draws": len(result.draws),
        "ballots": ballots,
        "passed": passed,
        "generate_s": round(generate, 1),
        "replay_in_memory_s": round(replay_memory, 2),
        "replay_events_per_s": round(len(events) / replay_memory),
        "ed25519_baseline_per_s": round(base),
        "replay_ratio_to_ed25519": round(len(events) / replay_memory / base, 3),
        "legislature_evaluate_s": round(tally, 3),
        "node_evaluate_s": round(node_evaluate, 3),
        "node_evaluate_in_signature_checks": round(node_evaluate * base),
        "duty_step_ms": round(duty_step * 1000, 1),
        "duty_step_in_signature_checks": round(duty_step * base),
        "verify_log_1_worker_s": round(verify_one, 2),
        "verify_log_all_cores_s": round(verify_par, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print("\n".join(f"{k}: {v}" for k, v in rows.items()))


if __name__ == "__main__":
    main()
