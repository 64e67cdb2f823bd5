"""Feed a log into a :class:`p2p.store.ReplicaStore` and announce every acknowledged event.

Usage::

    python store_writer.py DB LOG START BATCH

Run as a separate process by ``tests/test_durability.py``, which kills it with SIGKILL at
random instants.  It exists so that the test can compare what a node *promised* with what is
on disk after the kill: the store's contract is that an event counts as stored
(acknowledged) once ``ReplicaStore.flush()`` has returned, so this script prints an ``ack``
line for an event only after the flush that committed it has returned, never before.  A line
printed earlier would let the test blame the store for a promise the store never made.

Protocol on stdout (one line each, stdout flushed after every group of lines):

``opening``
    imports are done and the store is about to be opened (lets the test aim kills at the
    opening, creation and restore code);
``ack 0 <assembly_hex> charter``
    the charter (item 0 of LOG) is stored: ``ReplicaStore.create`` flushes it before returning;
``ready <START>``
    the store is open and events are about to be added;
``ack <index> <event_id_hex> <status>``
    the item at ``index`` of LOG is stored (status is the replica's outcome: ``applied``,
    ``pending``, ``invalid``, ``duplicate`` when a previous, killed run had already committed
    it without getting to say so, or ``equivocation`` when it went to the ``forks`` table);
``rejected <index> <code>``
    the item was rejected, so nothing was stored and nothing is promised;
``done <items>``
    every item was added and the store was closed cleanly.

Items are added from index START onwards (START >= 1: item 0 is the charter) in batches of
BATCH; small batches mean many commits, so random kills land before, inside and after them.
"""

from __future__ import annotations

import sys

from consensus.replica import REJECTED
from p2p.logfile import LogDamage, read_items
from p2p.store import ReplicaStore


def say(lines: list[str]) -> None:
    if lines:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    db, log, start, batch = argv[1], argv[2], int(argv[3]), int(argv[4])
    if start < 1 or batch < 1:
        print("START and BATCH must be at least 1", file=sys.stderr)
        return 2

    def items():
        for item in read_items(log):
            if isinstance(item, LogDamage):
                raise SystemExit(f"damaged log: {item.reason}")
            yield item

    stream = items()
    _, _, charter = next(stream)
    say(["opening"])
    store = ReplicaStore.create(db, charter)  # returns only after the charter is committed
    say([f"ack 0 {store.assembly.hex()} charter", f"ready {start}"])

    count = 1
    pending: list[tuple[int, object]] = []  # (index, outcome) not yet committed

    def commit() -> None:
        store.flush()
        # flush() returned: only now may these events be announced as stored.
        lines = []
        for index, outcome in pending:
            if outcome.status == REJECTED:
                code = outcome.rejection.code if outcome.rejection else "?"
                lines.append(f"rejected {index} {code}")
            else:
                lines.append(f"ack {index} {outcome.event_id.hex()} {outcome.status}")
        pending.clear()
        say(lines)

    for index, _, wire in stream:
        count += 1
        if index < start:
            continue
        pending.append((index, store.add(wire)))
        if len(pending) >= batch:
            commit()
    commit()
    store.close()
    say([f"done {count}"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
