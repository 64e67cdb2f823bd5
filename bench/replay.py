"""Replay throughput of a large generated log, as a ratio to raw signature verification.

Usage: python bench/replay.py [--events 200000] [--reps 800]

Generates (or reuses, in bench/out/) a valid signed log, then measures in one process:
  * baseline: raw libsodium Ed25519 verification of exactly the same events' signatures;
  * replay through ``consensus.Replica`` with an in-memory ledger (``MemoryLedger``);
  * ``klero verify``'s path (``p2p.audit.verify_log``: streaming file reader, temporary SQLite
    ledger), the one whose memory must stay flat, with signatures checked on one core and on
    one worker process per core (``p2p.pipeline``);
and the peak RSS of ``verify_log`` in fresh processes on logs of growing size.
Prints events/s and ratios; the README's performance section records them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"


def make_log(events: int, reps: int) -> Path:
    from p2p.logfile import write_log
    from p2p.tools.simulate import Simulation

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"replay-{events}-{reps}.log"
    if not path.exists():
        t = time.perf_counter()
        sim = Simulation(seed=42, reps=reps, events_per_round=reps // 4 or 1)
        write_log(path, sim.log(events))
        print(f"generated {path.name} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path


def wires_of(path: Path) -> list[bytes]:
    from p2p.logfile import read_items

    return [item[2] for item in read_items(path)]


def baseline(wires: list[bytes]) -> float:
    """Events/s of bare Ed25519 verification (VerifyKey objects cached, message pre-built)."""
    import cbor2
    from nacl.signing import VerifyKey

    from consensus.events import DOMAIN

    jobs = []
    keys: dict[bytes, VerifyKey] = {}
    for w in wires:
        enc, sig = cbor2.loads(w)
        author = cbor2.loads(enc)["author"]
        vk = keys.setdefault(author, VerifyKey(author))
        jobs.append((vk, DOMAIN + enc, sig))
    t = time.perf_counter()
    for vk, msg, sig in jobs:
        vk.verify(msg, sig)
    return len(jobs) / (time.perf_counter() - t)


def replay_memory(wires: list[bytes]) -> tuple[float, str]:
    from consensus import Replica

    t = time.perf_counter()
    r = Replica(wires[0])
    add = r.add
    for w in wires[1:]:
        add(w)
    h = r.state_hash().hex()
    return len(wires) / (time.perf_counter() - t), h


def replay_verify(path: Path, n: int, workers: int) -> tuple[float, str]:
    from p2p.audit import verify_log

    t = time.perf_counter()
    report = verify_log(path, workers=workers)
    assert report.clean, report.rejected[:3]
    return n / (time.perf_counter() - t), report.state_hash


def peak_rss_of_verify(path: Path) -> int:
    """Peak RSS in KiB of a fresh process that runs verify_log on ``path``."""
    code = (
        "import sys, resource; sys.path.insert(0, %r); from p2p.audit import verify_log; "
        "verify_log(%r); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)" % (str(ROOT), str(path))
    )
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=800)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    path = make_log(args.events, args.reps)
    wires = wires_of(path)
    n = len(wires)
    base = baseline(wires)
    mem_rate, h1 = replay_memory(wires)
    del wires
    ver_rate, h2 = replay_verify(path, n, workers=1)
    par_workers = os.cpu_count() or 1
    par_rate, h3 = replay_verify(path, n, workers=par_workers)
    assert h1 == h2 == h3, "the replays disagree"
    small = make_log(args.events // 4, args.reps)
    rss_small, rss_large = peak_rss_of_verify(small), peak_rss_of_verify(path)
    result = {
        "events": n,
        "baseline_verify_per_s": round(base),
        "replay_memory_per_s": round(mem_rate),
        "replay_memory_ratio": round(mem_rate / base, 3),
        "verify_log_per_s": round(ver_rate),
        "verify_log_ratio": round(ver_rate / base, 3),
        f"verify_log_{par_workers}_workers_per_s": round(par_rate),
        f"verify_log_{par_workers}_workers_ratio": round(par_rate / base, 3),
        "verify_peak_rss_mib": {f"{args.events // 4}": round(rss_small / 1024), f"{args.events}": round(rss_large / 1024)},
        "log_mib": round(path.stat().st_size / 2**20, 1),
        "state_hash": h1,
    }
    print(json.dumps(result, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
