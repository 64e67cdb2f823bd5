"""Agreement cost per deadline: messages, bytes and beacon rounds to decision (issue 5).

Usage: python bench/agreement.py [--seeds 200] [--sizes 31 64] [--networks calm lossy]

Runs cut-off panels of each size over the seeded in-memory network of ``tests/test_agreement.py``
(``Panel``, ``HostileNetwork``), once with every member honest and once with f = (n - 1) // 3
members silent (drawn at random, as is the proposer rotation's offset), for ``--seeds`` seeds each,
and prints per deadline:

* signed messages (proposals, prevotes, precommits of all members): mean and p99;
* bytes, if every message is a ~200-byte signed event and a proposal also carries its value, the
  ids of the cut-offs it uses (n x 32 bytes, 992 for n = 31): stored (each event once) and carried
  (each event to each of the other n - 1 members once; duplicates not counted);
* deliveries (messages received, duplicates included);
* beacon rounds from the deadline's round until every honest member decided (0: before the next
  beacon round): mean and p99; and the agreement round of the decision (mean, max).

Networks: ``calm`` delivers everything within a beacon round, in random order; ``lossy`` makes 5%
of messages a beacon round late, duplicates 5%, and drops 1% that sync repairs 2 to 4 rounds later.
Timeouts are the defaults of ``consensus.agreement.Timeouts``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EVENT_BYTES = 200  # a signed event: header, author, signature, small body

NETWORKS = {
    "calm": dict(max_delay=400, p_dup=0.0, p_late=0.0, p_drop=0.0, tick_jitter=50),
    "lossy": dict(max_delay=400, p_dup=0.05, p_late=0.05, late=1, p_drop=0.01, repair=4, tick_jitter=50),
}


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def run(n: int, silent: int, seeds: int, network: str) -> dict:
    from tests.test_agreement import PROPOSE, Panel, Schedule, _step

    schedule = Schedule(**NETWORKS[network])
    messages, stored, carried, deliveries, beacons, rounds = [], [], [], [], [], []
    for seed in range(seeds):
        rng = random.Random(f"bench-agreement/{n}/{silent}/{network}/{seed}")
        byzantine = {m: "silent" for m in rng.sample(range(n), silent)}
        panel = Panel(n, seed, byzantine, schedule, offset=rng.randrange(n)).run(max_beacon=500)
        if set(panel.decided_at) != set(panel.honest):
            raise SystemExit(f"n={n} silent={silent} seed={seed}: not every honest member decided")
        signed = panel.net.signed
        proposals = sum(1 for _, message in signed if _step(message) == PROPOSE)
        size = len(signed) * EVENT_BYTES + proposals * n * 32
        messages.append(len(signed))
        stored.append(size)
        carried.append(size * (n - 1))
        deliveries.append(panel.net.deliveries)
        beacons.append(max(panel.decided_at.values()) - panel.start_beacon)
        rounds.append(max(a.decided_round for a in panel.members.values()))
    return dict(messages=messages, stored=stored, carried=carried, deliveries=deliveries, beacons=beacons, rounds=rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--sizes", type=int, nargs="+", default=[31, 64])
    ap.add_argument("--networks", nargs="+", default=["calm", "lossy"], choices=sorted(NETWORKS))
    args = ap.parse_args()
    print(f"{args.seeds} seeds per line; bytes: {EVENT_BYTES} per event + n x 32 per proposal; p99 over seeds")
    header = (f"{'network':7} {'n':>3} {'silent':>6} | {'msgs mean':>9} {'p99':>5} | {'stored KB':>9} {'p99':>6} | "
              f"{'carried MB':>10} {'p99':>6} | {'deliveries':>10} | {'beacons mean':>12} {'p99':>4} | "
              f"{'round mean':>10} {'max':>3} | {'s':>5}")
    print(header)
    print("-" * len(header))
    for network in args.networks:
        for n in args.sizes:
            for silent in (0, (n - 1) // 3):
                start = time.perf_counter()
                r = run(n, silent, args.seeds, network)
                mean = statistics.fmean
                print(f"{network:7} {n:>3} {silent:>6} | {mean(r['messages']):>9.1f} {p99(r['messages']):>5} | "
                      f"{mean(r['stored']) / 1e3:>9.1f} {p99(r['stored']) / 1e3:>6.1f} | "
                      f"{mean(r['carried']) / 1e6:>10.2f} {p99(r['carried']) / 1e6:>6.2f} | "
                      f"{mean(r['deliveries']):>10.0f} | {mean(r['beacons']):>12.2f} {p99(r['beacons']):>4} | "
                      f"{mean(r['rounds']):>10.2f} {max(r['rounds']):>3} | {time.perf_counter() - start:>5.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
