"""Sortition speed: a cycle's stage-1 committees on a city-sized roster (issue 4).

Usage: python bench/draws.py [--roster 250000] [--committees 100000] [--size 7] [--max-seats 5]

Draws ``--committees`` committees of ``--size`` from a roster of ``--roster`` sorted 32-byte keys
the way ``Legislature._draw`` does: one ``committee_seed`` per proposal, committees in seed
order, one ``seats`` dict shared by the whole cycle with the seat cap, the proposal's author
excluded, ``explain=False``.  Prints wall time, committees/s and seats/s; the same for 1/4 and
1/2 of the committees (time per committee should stay flat: the draw is linear in the number of
committees); peak memory (tracemalloc peak of a separate, instrumented run, and the process's
maxrss); and, measured in the same process, two baselines for the README: the time of exactly as
many raw ``hashlib.sha256`` calls as the draws made (seeds plus stream blocks), and the time to
sort the roster.  ``committees_sha256`` digests every committee in order, so two runs (or two
implementations) can be compared.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consensus import sortition  # noqa: E402
from consensus.sortition import committee_seed, draw_committee  # noqa: E402

RANDOMNESS = hashlib.sha256(b"klero/bench/beacon").digest()


def make_roster(n: int) -> list[bytes]:
    return [hashlib.sha256(b"klero/bench/roster" + i.to_bytes(4, "big")).digest() for i in range(n)]


def proposals(count: int, roster: list[bytes]) -> list[tuple[bytes, bytes]]:
    """(proposal id, author) of ``count`` stage-1 proposals, authors spread over the roster."""
    out = []
    for i in range(count):
        pid = hashlib.sha256(b"klero/bench/proposal" + i.to_bytes(4, "big")).digest()
        out.append((pid, roster[int.from_bytes(pid[:8], "big") % len(roster)]))
    return out


def cycle(roster, props, size: int, max_seats: int):
    """One cycle's stage-1 draws, as ``Legislature._draw`` makes them (seeds, order, shared seats)."""
    order = sorted((committee_seed(pid, 0, 1, RANDOMNESS), author) for pid, author in props)
    seats: dict[bytes, int] = {}
    committees = []
    short = 0
    for seed, author in order:
        members, _, s = draw_committee(roster, size, seed, exclude=(author,), seats=seats, max_seats=max_seats, explain=False)
        committees.append(members)
        short += s
    return committees, seats, short


def timed(fn, *args):
    gc.collect()
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


class CountingStream(sortition.Stream):
    """The real stream, counting the sha256 blocks and the 64-bit integers it produces."""

    __slots__ = ()
    blocks = 0
    integers = 0

    def next64(self) -> int:
        CountingStream.integers += 1
        if self.offset + 8 > len(self.buffer):
            CountingStream.blocks += 1
        return super().next64()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--roster", type=int, default=250_000)
    ap.add_argument("--committees", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=7)
    ap.add_argument("--max-seats", type=int, default=5)
    args = ap.parse_args()
    original = sortition.Stream
    n, count, size, cap = args.roster, args.committees, args.size, args.max_seats

    unsorted = make_roster(n)
    roster = sorted(unsorted)
    props = proposals(count, roster)
    result: dict[str, object] = {
        "python": sys.version.split()[0],
        "roster": n,
        "committees": count,
        "size": size,
        "max_seats": cap,
    }

    # scaling: 1/4, 1/2 and all of the committees, each a fresh cycle, timed with the plain
    # stream; then the same cycle again with a counting stream (untimed) for the number of
    # candidates looked at, since later committees skip more members already at the cap.  The
    # full-size counting run is also the one under tracemalloc.
    per_committee = {}
    for label, k in (("quarter", count // 4), ("half", count // 2), ("full", count)):
        seconds, (committees, seats, short) = timed(cycle, roster, props[:k], size, cap)
        CountingStream.blocks = CountingStream.integers = 0
        sortition.Stream = CountingStream
        try:
            gc.collect()
            if label == "full":
                tracemalloc.start()
            start = time.perf_counter()
            check, _, _ = cycle(roster, props[:k], size, cap)
            traced_seconds = time.perf_counter() - start
            if label == "full":
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
        finally:
            sortition.Stream = original
        assert check == committees
        del check
        per_committee[label] = seconds / max(k, 1)
        result[f"{label}_committees"] = k
        result[f"{label}_seconds"] = round(seconds, 3)
        result[f"{label}_us_per_committee"] = round(seconds / max(k, 1) * 1e6, 2)
        result[f"{label}_candidates_per_seat"] = round(CountingStream.integers / max(sum(len(c) for c in committees), 1), 4)
        result[f"{label}_us_per_candidate"] = round(seconds / max(CountingStream.integers, 1) * 1e6, 3)
    seated = sum(len(c) for c in committees)
    result["committees_per_s"] = round(count / seconds)
    result["seats_per_s"] = round(seated / seconds)
    result["seats_filled"] = seated
    result["short_committees"] = short
    result["members_at_cap"] = sum(1 for v in seats.values() if v >= cap)
    result["max_seats_held"] = max(seats.values(), default=0)
    result["full_over_quarter_per_committee"] = round(per_committee["full"] / per_committee["quarter"], 3)
    digest = hashlib.sha256()
    for c in committees:
        digest.update(b"".join(c))
    result["committees_sha256"] = digest.hexdigest()[:32]
    del committees, seats
    sha_calls = count + CountingStream.blocks  # one committee seed each, plus the stream blocks
    result["integers_drawn"] = CountingStream.integers
    result["sha256_calls"] = sha_calls
    result["tracemalloc_peak_mb_during_cycle"] = round(peak / 2**20, 1)
    result["traced_run_seconds"] = round(traced_seconds, 2)

    # baselines in the same process
    prefix = hashlib.sha256(b"klero/bench/baseline").digest()
    sha256 = hashlib.sha256

    def raw_hashes():
        for i in range(sha_calls):
            sha256(prefix + i.to_bytes(8, "big")).digest()

    sha_seconds, _ = timed(raw_hashes)
    shuffled = list(unsorted)
    random.Random(1).shuffle(shuffled)
    sort_seconds, _ = timed(sorted, shuffled)
    result["sha256_baseline_seconds"] = round(sha_seconds, 3)
    result["draw_over_sha256_baseline"] = round(seconds / sha_seconds, 2)
    result["roster_sort_seconds"] = round(sort_seconds, 3)
    result["draw_over_roster_sort"] = round(seconds / sort_seconds, 1)

    # memory of the whole process (roster, proposals, both runs); tracemalloc above counts only
    # what the cycle allocated (seeds, order, seats, committees), not the roster it reads
    result["maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux
    roster_bytes = sys.getsizeof(roster) + sum(sys.getsizeof(k) for k in roster)
    result["roster_mb"] = round(roster_bytes / 2**20, 1)
    print("\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
