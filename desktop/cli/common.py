"""What every command module shares: progress output for long work."""

from __future__ import annotations

import sys
import time


def progress(label: str):
    """A progress printer for long work: on a terminal only, at most every half second."""
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(count: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            print(f"\r{label}: {count:,} items", end="", file=sys.stderr, flush=True)

    return show


def end_progress() -> None:
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr, flush=True)
