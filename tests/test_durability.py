"""A node killed with SIGKILL at any instant loses no event it had acknowledged as stored.

``p2p.store`` promises that an event counts as stored once ``ReplicaStore.flush()`` has
returned, and that raw and derived rows are committed together so the file is always
consistent.  A unit test inside one process cannot check that promise: the process never
dies, so nothing it had in memory is lost.  Here a separate writer process
(``tests/helpers/store_writer.py``) feeds a simulated log into a store and prints an ``ack``
line only after the flush that stored each event has returned; the test kills it with
SIGKILL at random instants (while it opens or creates the file, while it adds events, while
it commits, and between the commit and the ack), then restarts it where the acks stopped.

After every kill, a copy of the files exactly as the dead process left them (the database
and its WAL, but not the shared-memory index, so SQLite has to recover from the WAL alone)
is checked: every acknowledged event is in it, what is in it is exactly a prefix of the log
ending on a batch boundary (a commit is all or nothing), and the derived state restored from
it has the same state hash as an in-memory replica fed that prefix.  At the end, after a last
run to completion, the real file must hold every acknowledged event, pass
``PRAGMA integrity_check`` and reopen with the state hash of the whole log.

SIGKILL tests the crash of the process, not of the machine: what was written to the OS
survives it whatever the ``synchronous`` setting, so this test does not prove that
``synchronous=FULL`` survives a power cut.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from consensus.events import event_id
from consensus.replica import APPLIED, Replica
from p2p.logfile import write_log
from p2p.tools.simulate import Simulation
from p2p.store import ReplicaStore

ROOT = Path(__file__).resolve().parents[1]
WRITER = Path(__file__).resolve().parent / "helpers" / "store_writer.py"

SEED = int(os.environ.get("KLERO_DURABILITY_SEED", "20260211"))
EVENTS = 3000
ROUNDS = 40
LOOP_SECONDS = 40.0  # the kill loop stops here even if ROUNDS are not done (slow machines)
MIN_MID_RUN_KILLS = 12
START_TIMEOUT = 20.0  # seconds to wait for a writer to reach its anchor line


@dataclass
class Run:
    """One writer process and everything it printed (read by a thread so the pipe never fills)."""

    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    opening: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)  # stdout reached EOF
    reader: threading.Thread | None = None

    def read(self) -> None:
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                break  # EOF: the process is dead (a line cut off by the kill is no ack)
            buf += chunk
            *complete, buf = buf.split(b"\n")
            for raw in complete:
                line = raw.decode()
                self.lines.append(line)
                if line == "opening":
                    self.opening.set()
                elif line.startswith("ready "):
                    self.ready.set()
                elif line.startswith("done "):
                    self.done.set()
        self.closed.set()

    def wait_for(self, line: threading.Event, timeout: float) -> bool:
        """Wait until ``line`` was printed; give up early if the writer died without it."""
        end = time.monotonic() + timeout
        while not line.is_set() and not self.closed.is_set() and time.monotonic() < end:
            line.wait(0.05)
        return line.is_set()


def start_writer(db: Path, log: Path, start: int, batch: int, stderr) -> Run:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(db), str(log), str(start), str(batch)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
    )
    run = Run(proc)
    run.reader = threading.Thread(target=run.read, daemon=True)
    run.reader.start()
    return run


def stop(run: Run) -> None:
    """SIGKILL the writer if it still runs, reap it, and wait until its output is all read."""
    if run.proc.poll() is None:
        run.proc.send_signal(signal.SIGKILL)
    run.proc.wait(timeout=30)
    run.reader.join(timeout=30)
    run.proc.stdout.close()


def parse_acks(lines: list[str], ctx: str) -> dict[int, tuple[bytes, str]]:
    """index -> (event id, status) for every ``ack`` line; rejections are a failure here."""
    acks = {}
    for line in lines:
        word, *rest = line.split()
        if word == "ack":
            acks[int(rest[0])] = (bytes.fromhex(rest[1]), rest[2])
        elif word == "rejected":
            raise AssertionError(f"{ctx}: the writer rejected a valid event: {line}")
    return acks


def snapshot(db: Path, dest: Path) -> Path | None:
    """Copy the database and its WAL as the dead writer left them (no -shm: force WAL recovery)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    if not db.exists():
        return None
    for suffix in ("", "-wal"):
        src = Path(str(db) + suffix)
        if src.exists():
            shutil.copyfile(src, Path(str(dest / db.name) + suffix))
    return dest / db.name


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def stored_ids(path: Path) -> tuple[set[bytes], set[bytes]] | None:
    """Ids in ``events`` and second sides in ``forks``, or None if the store was never set up."""
    conn = read_only(path)
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "events" not in tables:
            return None
        events = {row[0] for row in conn.execute("SELECT id FROM events")}
        forks = {row[0] for row in conn.execute("SELECT second FROM forks")}
        return events, forks
    finally:
        conn.close()


def check_acked_present(acks: dict[int, tuple[bytes, str]], ids, ctx: str) -> None:
    events, forks = ids if ids is not None else (set(), set())
    lost = [
        (i, eid.hex()[:16], status)
        for i, (eid, status) in sorted(acks.items())
        if (eid not in forks if status == "equivocation" else eid not in events)
    ]
    assert not lost, f"{ctx}: {len(lost)} acknowledged events are missing from the store, first {lost[:5]}"


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_sigkill_loses_no_acknowledged_event(tmp_path):
    """Kill the writer at random instants; no acknowledged event may ever be missing.

    The kills are aimed at two anchors the writer prints: ``opening`` (a kill a few ms later
    lands in ``ReplicaStore.create``: migrations, the charter insert, the restore) and
    ``ready`` (a kill up to ~150 ms later lands among the adds and commits of the batches).
    Every run restarts from the item after the last acknowledged one, so events committed
    but not yet acknowledged when a kill landed come back as duplicates, which must be
    harmless.  Batch sizes vary per run, from 1 (a commit per event) to 50.
    """
    rng = random.Random(SEED)
    ctx = f"seed={SEED}"
    log_path = tmp_path / "assembly.cbor"
    stderr_path = tmp_path / "writer.stderr"

    wires = list(Simulation(seed=SEED, reps=8).log(EVENTS))
    assert write_log(log_path, wires) == len(wires)
    ids = [event_id(w) for w in wires]

    # Reference: the state hash of an in-memory replica after every prefix of the log.  The
    # simulated log has no forks and is in chain order, so every event applies and whatever
    # a store holds after a crash must be a prefix of it.
    reference = Replica(wires[0])
    prefix_hash = [b"", reference.state_hash()]  # prefix_hash[n]: after the first n items
    for w in wires[1:]:
        assert reference.add(w).status == APPLIED, ctx
        prefix_hash.append(reference.state_hash())
    full_hash = prefix_hash[-1]

    # When the whole log is stored before the rounds are done (a fast machine), the next
    # round starts over on a new file, so the number of kills does not depend on speed.
    epoch = 0
    db = tmp_path / "replica-0.db"
    acked: dict[int, tuple[bytes, str]] = {}
    committed = 0  # items in the current file as of the last check (only writers change it)
    stats = {"rounds": 0, "files": 1, "killed_opening": 0, "killed_mid_run": 0, "finished_first": 0,
             "committed_not_acked": 0, "duplicates_replayed": 0}
    deadline = time.monotonic() + LOOP_SECONDS
    started = time.monotonic()

    with open(stderr_path, "wb") as stderr:
        def writer_output(run: Run) -> str:
            stderr.flush()
            return f"last lines {run.lines[-3:]}, stderr: {stderr_path.read_text()[-2000:]}"

        for rnd in range(ROUNDS):
            if time.monotonic() > deadline:
                break
            if len(acked) == len(wires):
                check_final(db, acked, ids, full_hash, f"{ctx} file={epoch}")
                epoch += 1
                stats["files"] += 1
                db = tmp_path / f"replica-{epoch}.db"
                acked, committed = {}, 0
            start = max(acked) + 1 if acked else 1
            batch = rng.choice([1, 1, 2, 3, 5, 8, 13, 20, 32, 50])
            aim_at_opening = rnd % 5 == 0  # round 0 included: a kill inside create() itself
            # log-uniform: mostly short runs (a few batches), sometimes long ones (up to ~150 ms)
            delay = rng.uniform(0.0, 0.06) if aim_at_opening else 0.002 * 75 ** rng.random()
            rctx = f"{ctx} round={rnd} file={epoch} start={start} batch={batch} delay={delay * 1000:.1f}ms"

            run = start_writer(db, log_path, start, batch, stderr)
            try:
                anchor = run.opening if aim_at_opening else run.ready
                reached = run.wait_for(anchor, START_TIMEOUT)
                if reached:
                    time.sleep(delay)
                running = run.proc.poll() is None
                was_ready, was_done = run.ready.is_set(), run.done.is_set()
            finally:
                stop(run)
            assert reached, f"{rctx}: the writer never reached its anchor line ({writer_output(run)})"
            assert run.proc.returncode in (0, -signal.SIGKILL), f"{rctx}: writer failed ({writer_output(run)})"
            stats["rounds"] += 1
            if not running or was_done:
                stats["finished_first"] += 1
            elif was_ready:
                stats["killed_mid_run"] += 1
            else:
                stats["killed_opening"] += 1

            new = parse_acks(run.lines, rctx)
            stats["duplicates_replayed"] += sum(1 for _, status in new.values() if status == "duplicate")
            for index, (eid, _) in new.items():
                assert eid == ids[index], f"{rctx}: ack for item {index} names another event"
            acked.update(new)
            assert sorted(acked) == list(range(len(acked))), f"{rctx}: the acks are not a prefix of the log"

            # The files exactly as the dead writer left them.
            copy = snapshot(db, tmp_path / "snapshot")
            found = stored_ids(copy) if copy is not None else None
            check_acked_present(acked, found, rctx)
            if found is None:
                assert not acked, rctx
                continue
            events, forks = found
            n = len(events)
            assert not forks, rctx
            assert events == set(ids[:n]), f"{rctx}: the store holds {n} events that are not a prefix of the log"
            assert n >= committed, f"{rctx}: the store shrank from {committed} to {n} events"
            # A commit is all or nothing: the file grows by whole batches of this run.
            assert n in (committed, 1, len(wires)) or (n > start and (n - start) % batch == 0), (
                f"{rctx}: {n} events stored, not on a batch boundary (had {committed})"
            )
            if n > len(acked):
                stats["committed_not_acked"] += 1  # the kill landed between COMMIT and the acks
            committed = n
            # killed inside create() before its first flush: the file holds no event, and at most
            # the charter in its meta table (no event was acknowledged); create(), which the next
            # run calls, completes it to the charter's state
            reopened = ReplicaStore(copy) if n else ReplicaStore.create(copy, wires[0])
            try:
                assert reopened.state_hash() == prefix_hash[max(n, 1)], (
                    f"{rctx}: derived state restored after the kill differs from a replay of the {n} stored events"
                )
            finally:
                reopened.db.conn.close()

        loop_seconds = time.monotonic() - started

        # One last run on the current file, left to finish.
        start = max(acked) + 1 if acked else 1
        run = start_writer(db, log_path, start, 25, stderr)
        try:
            finished = run.wait_for(run.done, 60)
            if finished:
                run.proc.wait(timeout=30)
        finally:
            stop(run)
        assert finished and run.proc.returncode == 0, f"{ctx}: the final run did not finish ({writer_output(run)})"
        acked.update(parse_acks(run.lines, f"{ctx} final run"))

    print(f"\ndurability {ctx}: {stats}, kill loop {loop_seconds:.1f}s")
    assert stats["killed_mid_run"] >= MIN_MID_RUN_KILLS, (
        f"{ctx}: only {stats['killed_mid_run']} kills landed while the writer was adding events: {stats}"
    )
    check_final(db, acked, ids, full_hash, f"{ctx} file={epoch}")


def check_final(db: Path, acked: dict[int, tuple[bytes, str]], ids: list[bytes], full_hash: bytes, ctx: str) -> None:
    """The whole log is acknowledged, stored, the file is sound and reopens to the right state."""
    assert sorted(acked) == list(range(len(ids))), f"{ctx}: not every item of the log was acknowledged"
    conn = read_only(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], ctx
        events = {row[0] for row in conn.execute("SELECT id FROM events")}
        forks = {row[0] for row in conn.execute("SELECT second FROM forks")}
    finally:
        conn.close()
    check_acked_present(acked, (events, forks), ctx)
    assert events == set(ids), f"{ctx}: the final store does not hold exactly the log"
    store = ReplicaStore(db)
    try:
        assert store.state_hash() == full_hash, f"{ctx}: the reopened store's state differs from a replay of the log"
    finally:
        store.close()
