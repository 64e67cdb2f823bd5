"""A city representative's inbox (issue 13): how much it costs after a new event, as multiples of
one ``Legislature.evaluate`` of the same replica in the same process.

Usage: python bench/inbox.py [--cycles 4]

The city charter (800 representatives, 200 proposals a cycle, 7-day cycles on a quicknet-period
dev beacon), simulated by ``p2p.tools.bots`` (the log is cached in bench/out/).  A year is 52
cycles; the simulation here holds ``--cycles`` of them (4 by default: generating more takes
long on this machine), so the numbers are for that history and the text says how they grow.

Measured, for the representative holding the most seats:
* one evaluation as a node makes it (``explain=False``): the baseline;
* the first inbox (the service's own evaluation, with explanations);
* the inbox after a new comment and after a new vote (no evaluation: neither can change a
  decided result under the panel rule);
* the inbox after a new beacon round when the node's own evaluation is shared (the node pays
  one evaluation a round anyway), and when it is not.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=4)
    args = ap.parse_args()
    from nacl.signing import SigningKey

    from consensus import Replica
    from consensus.legislature import Legislature
    from p2p.duties import Hands
    from p2p.logfile import LogDamage, read_items, write_log
    from p2p.service import Service
    from p2p.tools.bots import AssemblySim, Behaviour

    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"city-800-200-{args.cycles}.log"
    sim = AssemblySim("city", reps=800, proposals=200, cycles=args.cycles, seed=1, behaviour=Behaviour(), dev_beacon=True)
    items = [i[2] for i in read_items(path) if not isinstance(i, LogDamage)] if path.exists() else []
    if not items or items[0] != sim.charter_wire:  # none yet, or made by an older simulator
        print(f"generating {path} (minutes) ...", file=sys.stderr)
        items = list(sim.run())
        write_log(path, items)
    replica = Replica(items[0])
    for item in items[1:]:
        replica.add_item(item)
    keys = {bytes(k.verify_key): k for k in
            (SigningKey(hashlib.sha256(f"klero-sim/1/rep/{i}".encode()).digest()) for i in range(800))}
    leg = Legislature(replica.charter, replica.charter_event.round)
    result = leg.evaluate_replica(replica, explain=False)
    seats: dict[bytes, int] = {}
    for d in result.draws:
        for m in d.members:
            seats[m] = seats.get(m, 0) + 1
    me = max(seats, key=lambda m: (seats[m], m))
    evaluate = _timed(lambda: Legislature(replica.charter, replica.charter_event.round).evaluate_replica(replica, explain=False), 3)

    service = Service(replica, keys[me])
    t = time.perf_counter()
    first = service.inbox()
    cold = time.perf_counter() - t
    warm = _timed(service.inbox)

    # a new comment by another representative on a proposal this one sits on (a reply and a mention)
    other = next(k for k in sorted(keys) if k != me and k in set(replica.charter.roster)
                 and not replica.pending.get(k) and k not in replica.forks and k not in replica.blocked)
    pid = next(d.proposal for d in reversed(result.draws) if me in d.members)
    hands = Hands(replica, [keys[other]])
    comment_costs, vote_costs = [], []
    for n in range(5):
        hands.sign(other, "comment", {"proposal": pid, "text": f"@{me.hex()[:8]} a question, number {n}."})
        t = time.perf_counter()
        service.inbox()
        comment_costs.append(time.perf_counter() - t)
    # a new vote (a panel's cut-off counts it later; the evaluation stays valid)
    for n, stage in enumerate((1, 2, 3)):
        hands.sign(other, "vote", {"proposal": pid, "cycle": result.cycles, "stage": stage, "choice": "promote",
                                   "revision": [pid]})
        t = time.perf_counter()
        service.inbox()
        vote_costs.append(time.perf_counter() - t)

    # a new beacon round: the node's reactor evaluates once; the service reuses it
    class Shared:
        leg = result = evaluated = None

    shared = Shared()
    with_round = Service(replica, keys[me], shared=shared)
    with_round.inbox()
    from p2p.tools.bots import seeded_dev_beacon

    dev = seeded_dev_beacon(1, 3000)
    nxt = max(replica.beacon) + 1
    replica.add_round(dev.sign(nxt))
    shared.leg = Legislature(replica.charter, replica.charter_event.round)
    shared.result = shared.leg.evaluate_replica(replica, explain=False)
    shared.evaluated = (max(replica.beacon), len(replica.records), len(replica.forks))
    t = time.perf_counter()
    with_round.inbox()
    round_shared = time.perf_counter() - t
    alone = Service(replica, keys[me])
    alone.inbox()
    replica.add_round(dev.sign(nxt + 1))
    t = time.perf_counter()
    alone.inbox()
    round_alone = time.perf_counter() - t

    rows = {
        "cycles_of_history": result.cycles,
        "records": len(replica.records),
        "representative_seats": seats[me],
        "inbox_items": len(first),
        "evaluate_ms (baseline)": round(evaluate * 1000, 1),
        "inbox_first_ms": round(cold * 1000, 1),
        "inbox_unchanged_ms": round(warm * 1000, 2),
        "inbox_after_comment_ms (median)": round(statistics.median(comment_costs) * 1000, 2),
        "inbox_after_vote_ms (median)": round(statistics.median(vote_costs) * 1000, 2),
        "inbox_after_round_shared_ms": round(round_shared * 1000, 2),
        "inbox_after_round_alone_ms": round(round_alone * 1000, 1),
        "after_comment_x_evaluate": round(statistics.median(comment_costs) / evaluate, 3),
        "after_vote_x_evaluate": round(statistics.median(vote_costs) / evaluate, 3),
        "after_round_shared_x_evaluate": round(round_shared / evaluate, 3),
        "after_round_alone_x_evaluate": round(round_alone / evaluate, 2),
    }
    print("\n".join(f"{k}: {v}" for k, v in rows.items()))


if __name__ == "__main__":
    main()
