"""The replica store: one SQLite file (WAL) per profile holding every accepted event.

Raw tables (the evidence, never derived): ``events`` (every accepted signed event, unique per
author and seq, in its exact wire form) and ``forks`` (the second event of each equivocation).
Derived tables (``authors``, ``proposals``, ``certifications`` and the ``status`` column of
``events``) are rewritten in the same transaction as the raw rows they follow from, so the file
is always consistent, and ``rebuild()`` recomputes them from the raw events alone.

Writes are buffered and committed in batches (``executemany``); an event counts as *stored*
(acknowledged) only once ``flush()`` has returned.  ``synchronous=FULL`` makes an acknowledged
event survive a power cut as well as a killed process.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator

import sqlite_utils
from sqlite_utils.migrations import Migrations

from consensus.errors import KleroError
from consensus.events import decode_charter
from consensus.replica import PENDING, Outcome, Replica, Stored

migrations = Migrations("kleroterion.replica")


@migrations()
def m001_raw_events(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    db.execute(
        """CREATE TABLE events (
            id BLOB PRIMARY KEY, author BLOB NOT NULL, seq INTEGER NOT NULL, wire BLOB NOT NULL,
            status TEXT NOT NULL, reason TEXT, UNIQUE (author, seq))"""
    )
    db.execute("CREATE INDEX events_status ON events (status) WHERE status != 'applied'")
    db.execute(
        """CREATE TABLE forks (author BLOB NOT NULL, seq INTEGER NOT NULL, first BLOB NOT NULL,
            second BLOB NOT NULL, PRIMARY KEY (author, seq))"""
    )


@migrations()
def m002_derived_state(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE authors (author BLOB PRIMARY KEY, head_seq INTEGER NOT NULL, head_id BLOB,
            round INTEGER NOT NULL, in_round INTEGER NOT NULL, fork_seq INTEGER,
            blocked_seq INTEGER, blocked_code TEXT)"""
    )
    db.execute("CREATE TABLE proposals (id BLOB PRIMARY KEY, author BLOB NOT NULL, withdrawn INTEGER NOT NULL)")
    db.execute("CREATE TABLE certifications (registrar BLOB NOT NULL, subject BLOB NOT NULL, PRIMARY KEY (registrar, subject))")




@migrations()
def m003_beacon_rounds(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE beacon_rounds (chain BLOB NOT NULL, round INTEGER NOT NULL, signature BLOB NOT NULL,
            previous_signature BLOB, PRIMARY KEY (chain, round))"""
    )


@migrations()
def m004_legislative_records(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE records (id BLOB PRIMARY KEY)")


@migrations()
def m005_peers(db: sqlite_utils.Database) -> None:
    # peer addresses a node learned (p2p/node.py); never libp2p's peerstore, which writes the
    # host's private key beside them
    db.execute("CREATE TABLE peers (address TEXT PRIMARY KEY, last_seen REAL NOT NULL)")


@migrations()
def m006_versions(db: sqlite_utils.Database) -> None:
    # a third or later version of one seq by an equivocator (the first two are events and forks):
    # every version is evidence a certificate may have decided (docs/finality.md)
    db.execute("CREATE TABLE versions (id BLOB PRIMARY KEY, author BLOB NOT NULL, seq INTEGER NOT NULL, wire BLOB NOT NULL)")


@migrations()
def m007_round_macs(db: sqlite_utils.Database) -> None:
    # each cached beacon round carries a MAC under the folder's key (ReplicaStore._round_mac):
    # rows written by something else (a forged row, a file from another machine) are verified
    # again when the replica is opened
    db.execute("ALTER TABLE beacon_rounds ADD COLUMN mac BLOB")


ROUND_INSERT = ("INSERT OR IGNORE INTO beacon_rounds (chain, round, signature, previous_signature, mac) "
                "VALUES (?, ?, ?, ?, ?)")
#: the key that authenticates cached beacon rounds, one per folder of replicas (0600)
ROUND_KEY_FILE = "replica-rounds.key"


def _round_key(folder: Path, create: bool) -> bytes | None:
    """The folder's round key (made when missing and ``create``), or None when it cannot be had."""
    path = folder / ROUND_KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) == 32:
            if create and os.name == "posix" and path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)  # the owner's only, as the replica is
            return key
    except OSError:
        pass
    if not create:
        return None
    key = os.urandom(32)
    tmp = folder / f".{ROUND_KEY_FILE}.{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key)
        os.replace(tmp, path)  # a key that is not 32 bytes (damaged) is replaced: every round is verified again
    except OSError:  # a folder we cannot write: SQLite's own files will say so with a sentence
        return None
    return key


class StoreError(KleroError):
    """The replica file cannot be used as asked."""


def _owner_only(path: Path) -> None:
    """The replica is readable by its owner only (0600), as are the WAL and shared-memory files
    SQLite makes beside it (they take the database file's mode): it holds the person's drafts
    before they are published, and who they are.  A looser existing file is tightened."""
    if os.name != "posix":
        return
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}.lock")):
        try:
            if p.stat().st_mode & 0o077:
                os.chmod(p, 0o600)
        except OSError:  # not there yet, or not ours (a read-only copy): nothing to tighten
            pass


class ReplicaStore:
    """A :class:`consensus.replica.Ledger` on SQLite, with the replica built over it.

    ``ReplicaStore.create(path, charter_wire)`` starts a replica of an assembly;
    ``ReplicaStore(path)`` reopens one (restoring the derived state without replaying).
    """

    def __init__(self, path: str | os.PathLike, *, durable: bool = True, _charter_wire: bytes | None = None,
                 read_only: bool = False):
        """``durable=False`` (synchronous=OFF) is for throwaway files only, such as the replay
        ledger of ``klero verify``: an OS crash may corrupt such a file, not just lose commits.

        ``read_only``: a snapshot for reading only, on a folder this process may not write
        (a read-only disk, another user's profile): no lock, no migration, and SQLite told the
        file will not change (``immutable``).  Nothing may be added or flushed."""
        self.path = Path(path)
        if _charter_wire is None and not self.path.exists():
            raise StoreError(f"There is no replica at {self.path}; import a log or join an assembly first.")
        self.durable = durable
        self.read_only = read_only
        self._lock = None if read_only else _lock_file(Path(str(self.path) + ".lock"))
        conn = None
        try:
            if read_only:
                from urllib.parse import quote

                conn = sqlite3.connect(f"file:{quote(str(self.path.resolve()))}?mode=ro&immutable=1", uri=True,
                                       isolation_level=None, check_same_thread=False)
                self.db = sqlite_utils.Database(conn)
            else:
                _owner_only(self.path)
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
                self.db = sqlite_utils.Database(conn)
                migrations.apply(self.db)
            self._key = _round_key(self.path.parent, create=not read_only)
            self._open(_charter_wire)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            self._unlock()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(f"{self.path} is not a usable replica file ({exc}).") from None
            raise

    def _open(self, _charter_wire: bytes | None) -> None:
        self._overlay: dict[tuple[bytes, int], Stored] = {}
        self._forks: list[tuple[bytes, int, bytes, bytes]] = []
        self._versions: list[tuple[bytes, bytes, int, bytes]] = []
        self._rounds: list[tuple[bytes, int, bytes, bytes | None]] = []
        self._spans: list[list[int]] | None = None  # round_spans(), built on first use
        stored = self._meta("charter")
        if stored is None:
            if _charter_wire is None:
                raise StoreError(f"{self.path} holds no assembly yet.")
            decode_charter(_charter_wire)  # raises with a reason before anything is written
            with self._transaction():
                self.db.execute("INSERT INTO meta (key, value) VALUES ('charter', ?)", [_charter_wire])
            stored = _charter_wire
        elif _charter_wire is not None and _charter_wire != stored:
            raise StoreError(f"{self.path} already holds another assembly.")
        self.replica = Replica(stored, ledger=self)
        #: cached rounds of the assembly's chain whose MAC failed and whose BLS signature failed
        #: too when verified again: dropped at opening (a forged row, a damaged file)
        self.dropped_rounds = 0
        self._restore()
        self.flush()

    @classmethod
    def create(cls, path: str | os.PathLike, charter_wire: bytes, *, durable: bool = True) -> "ReplicaStore":
        """Open the replica at ``path`` for the assembly founded by ``charter_wire`` (creating it).

        A replica this call creates and cannot finish (a full disk, a bad charter) is removed
        again, with its WAL: a half-made file would leave the profile unusable ("not a usable
        replica") where the person can simply try again."""
        path = Path(path)
        fresh = not path.exists()
        try:
            return cls(path, durable=durable, _charter_wire=charter_wire)
        except BaseException:
            if fresh:
                for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
                    try:
                        leftover.unlink()
                    except OSError:
                        pass
            raise

    # ------------------------------------------------------------------ the Ledger protocol

    def get(self, author: bytes, seq: int) -> Stored | None:
        stored = self._overlay.get((author, seq))
        if stored is not None:
            return stored
        row = self.db.execute(
            "SELECT id, wire, status, reason FROM events WHERE author = ? AND seq = ?", [author, seq]
        ).fetchone()
        return Stored(*row) if row else None

    def put(self, author: bytes, seq: int, stored: Stored) -> None:
        self._overlay[(author, seq)] = stored

    def add_fork(self, author: bytes, seq: int, first: bytes, second: bytes) -> None:
        self._forks.append((author, seq, first, second))

    def add_version(self, author: bytes, seq: int, wire: bytes) -> None:
        from consensus.events import event_id

        self._versions.append((event_id(wire), author, seq, wire))

    # ------------------------------------------------------------------ writing

    def add(self, wire: bytes, *, signature_checked: bool = False) -> Outcome:
        """Judge and buffer one event; it is acknowledged once :meth:`flush` returns."""
        return self.replica.add(wire, signature_checked=signature_checked)

    def add_item(self, item: bytes, *, signature_checked: bool = False) -> Outcome:
        """An event (buffered like :meth:`add`) or a beacon round of the assembly's chain (cached at once)."""
        if item[:1] == b"\x83":
            outcome = self.replica.add_item(item, signature_checked=signature_checked)
            if outcome.status == "applied":
                from consensus.beacon import decode_round

                rnd = decode_round(self.replica.charter.beacon, item, verify=False)  # verified by add_item
                self._rounds.append(self._round_row(self.replica.charter.beacon.hash, rnd.round, rnd.signature,
                                                    rnd.previous_signature))
                self._note_round(rnd.round)
            return outcome
        return self.replica.add(item, signature_checked=signature_checked)

    def add_many(self, wires: Iterable[bytes], batch: int = 2000, workers: int = 1) -> Iterator[Outcome]:
        """Add events, committing every ``batch``; yields each outcome once it is committed.

        ``workers`` > 1 checks signatures ahead in that many processes (``p2p.pipeline``).
        """
        from .pipeline import checked

        done: list[Outcome] = []
        from consensus.beacon import chain_to_body

        for wire, ok in checked(wires, workers=workers, chain_body=chain_to_body(self.replica.charter.beacon)):
            done.append(self.add_item(wire, signature_checked=ok))
            if len(done) >= batch:
                self.flush()
                yield from done
                done.clear()
        self.flush()
        yield from done

    def flush(self) -> None:
        """Commit buffered events and the derived rows that follow from them, atomically."""
        # Read the changes now but clear them only after COMMIT: a failed commit keeps them for a retry.
        changes = self.replica.changes
        if not self._overlay and not self._forks and not self._versions and not self._rounds and not (
            changes.authors or changes.proposals or changes.certifications or changes.records
        ):
            return
        r = self.replica
        with self._transaction():
            self.db.conn.executemany(
                """INSERT INTO events (id, author, seq, wire, status, reason) VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (author, seq) DO UPDATE SET status = excluded.status, reason = excluded.reason""",
                [(s.id, a, q, s.wire, s.status, s.reason) for (a, q), s in self._overlay.items()],
            )
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO forks (author, seq, first, second) VALUES (?, ?, ?, ?)", self._forks
            )
            self.db.conn.executemany("INSERT OR IGNORE INTO versions VALUES (?, ?, ?, ?)", self._versions)
            self.db.conn.executemany(ROUND_INSERT, self._rounds)
            rows = []
            for author in changes.authors:
                head = r.heads.get(author)
                blocked = r.blocked.get(author)
                rows.append((
                    author,
                    head.seq if head else 0,
                    head.id if head else None,
                    head.round if head else 0,
                    head.in_round if head else 0,
                    r.forks.get(author),
                    blocked[0] if blocked else None,
                    blocked[1] if blocked else None,
                ))
            self.db.conn.executemany("INSERT OR REPLACE INTO authors VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            for pid in changes.proposals:
                p = r.proposals.get(pid)
                if p is None:
                    self.db.execute("DELETE FROM proposals WHERE id = ?", [pid])
                else:
                    self.db.execute("INSERT OR REPLACE INTO proposals VALUES (?, ?, ?)", [pid, p.author, int(p.withdrawn)])
            for pair in changes.certifications:
                if pair in r.certified:
                    self.db.execute("INSERT OR IGNORE INTO certifications VALUES (?, ?)", list(pair))
                else:
                    self.db.execute("DELETE FROM certifications WHERE registrar = ? AND subject = ?", list(pair))
            # applied records and an equivocator's evidence alike (a fork's second version lives in forks)
            kept = [i for i in changes.records if i in r.records or i in r.evidence]
            self.db.conn.executemany("INSERT OR IGNORE INTO records VALUES (?)", [(i,) for i in kept])
            self.db.conn.executemany("DELETE FROM records WHERE id = ?",
                                     [(i,) for i in changes.records if i not in r.records and i not in r.evidence])
        self.replica.drain_changes()
        self._overlay.clear()
        self._forks.clear()
        self._versions.clear()
        self._rounds.clear()

    def close(self) -> None:
        if not self.read_only:
            self.flush()
        self.db.conn.close()
        self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            _HELD.discard(self._lock)
            self._lock.close()  # closing the descriptor releases the lock
            self._lock = None

    def __enter__(self) -> "ReplicaStore":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:  # do not commit half of a failed batch
            self.db.conn.close()
            self._unlock()

    # ------------------------------------------------------------------ reading

    @property
    def assembly(self) -> bytes:
        return self.replica.assembly

    def state_hash(self) -> bytes:
        return self.replica.state_hash()

    def counts(self) -> dict[str, int]:
        """Number of stored events by status, and of fork proofs."""
        result = dict(self.db.execute("SELECT status, count(*) FROM events GROUP BY status").fetchall())
        result["forks"] = self.db.execute("SELECT count(*) FROM forks").fetchone()[0]
        return result

    def wires(self) -> Iterator[bytes]:
        """What an exported log holds: the charter, the cached rounds of its beacon (as
        ``[round, signature, previous]`` items), every stored signed event by author and seq,
        and every version of every fork."""
        from consensus.beacon import BeaconRound, encode_round

        charter = self._meta("charter")
        yield charter
        for number, sig, prev in self.db.execute(
            "SELECT round, signature, previous_signature FROM beacon_rounds WHERE chain = ? ORDER BY round",
            [self.replica.charter.beacon.hash],
        ):
            yield encode_round(BeaconRound(number, sig, prev))
        for (wire,) in self.db.execute("SELECT wire FROM events WHERE wire != ? ORDER BY author, seq", [charter]):
            yield wire
        for (second,) in self.db.execute("SELECT second FROM forks ORDER BY author, seq"):
            yield second
        for (wire,) in self.db.execute("SELECT wire FROM versions ORDER BY author, seq, id"):
            yield wire

    # ------------------------------------------------------------------ beacon rounds

    def add_round(self, chain, rnd) -> bool:
        """Cache a beacon round after verifying it; returns False (storing nothing) if it is invalid.

        Rounds of the assembly's own chain also enter the replica's state.
        """
        from consensus.errors import InvalidInput

        if chain.hash == self.replica.charter.beacon.hash:
            if self.replica.add_round(rnd).status == "rejected":
                return False
            self._note_round(rnd.round)
        else:
            try:
                chain.verify(rnd)
            except InvalidInput:
                return False
        with self._transaction():
            self.db.execute(ROUND_INSERT, self._round_row(chain.hash, rnd.round, rnd.signature, rnd.previous_signature))
        return True

    def _round_mac(self, chain: bytes, number: int, signature: bytes, previous: bytes | None) -> bytes | None:
        if self._key is None:
            return None
        data = chain + number.to_bytes(8, "big") + signature + (previous or b"")
        return hashlib.blake2b(data, key=self._key, digest_size=16).digest()

    def _round_row(self, chain: bytes, number: int, signature: bytes, previous: bytes | None) -> tuple:
        return (chain, number, signature, previous, self._round_mac(chain, number, signature, previous))

    def holds_back(self, data: bytes, budget: int) -> bool:
        """Would this event wait for a gap in its author's chain, with that author's waiting
        events already past ``budget`` bytes?  The replica holds up to 4,096 events of one author
        ahead of a gap (64 KiB each: one key could fill 256 MiB); a node holds back more than a
        few MiB of them.  Which waiting events a replica holds is no part of its state, so this
        changes no state hash."""
        if data[:1] != b"\x82" or not self.replica.pending:
            return False  # (the usual case costs no decoding: nobody's events wait)
        head = self._author_seq(data)
        if head is None:
            return False  # the replica judges it, with its reason
        author, seq = head
        known = self.replica.heads.get(author)
        if seq <= (known.seq if known else 0) + 1 or author not in self.replica.pending:
            return False
        return self.pending_bytes(author) + len(data) > budget

    def ahead_guard(self, budget: int) -> Callable[[bytes], bool]:
        """:meth:`holds_back` for a stream of items read ahead of being applied (an import: the
        pipeline checks signatures far ahead of the replica, so the replica's pending set lags).
        It follows each author's chain through the stream itself: an event past the top of its
        author's chain so far counts against the budget.  A log in chain order (as exported)
        holds back only what truly waits; one out of order may hold back more, which a second
        import brings."""
        tops: dict[bytes, int] = {}
        ahead: dict[bytes, int] = {}

        def holds(data: bytes) -> bool:
            head = self._author_seq(data) if data[:1] == b"\x82" else None
            if head is None:
                return False
            author, seq = head
            known = self.replica.heads.get(author)
            top = tops.get(author, known.seq if known else 0)
            if seq <= top + 1:
                tops[author] = max(top, seq)
                return False
            waiting = ahead[author] if author in ahead else self.pending_bytes(author)
            if waiting + len(data) > budget:
                return True
            ahead[author] = waiting + len(data)
            return False

        return holds

    def _author_seq(self, data: bytes) -> tuple[bytes, int] | None:
        from consensus.events import split_wire

        try:
            _, _, fields = split_wire(data, self.replica.limits.max_event_bytes)
            author, seq = fields["author"], fields["seq"]
        except Exception:
            return None
        return (author, seq) if type(author) is bytes and type(seq) is int else None

    def pending_bytes(self, author: bytes) -> int:
        """Bytes of ``author``'s events waiting for a gap in its chain (stored and buffered)."""
        stored = self.db.execute("SELECT coalesce(sum(length(wire)), 0) FROM events WHERE author = ? AND status = ?",
                                 [author, PENDING]).fetchone()[0]
        buffered = sum(len(st.wire) for (a, _), st in self._overlay.items() if a == author and st.status == PENDING)
        return stored + buffered

    def round_spans(self) -> list[tuple[int, int]]:
        """The assembly's beacon rounds held, as sorted disjoint [first, last] spans (what a sync
        request names).  Built once from the replica, then kept as rounds arrive: preparing a
        request no longer reads every round number each time."""
        if self._spans is None:
            spans: list[list[int]] = []
            for n in sorted(self.replica.beacon):
                if spans and n == spans[-1][1] + 1:
                    spans[-1][1] = n
                else:
                    spans.append([n, n])
            self._spans = spans
        return [(a, b) for a, b in self._spans]

    def _note_round(self, n: int) -> None:
        import bisect

        spans = self._spans
        if spans is None:
            return
        i = bisect.bisect_right(spans, [n, float("inf")])  # spans[i-1] starts at or before n
        if i and spans[i - 1][0] <= n <= spans[i - 1][1]:
            return
        joins_left = i and spans[i - 1][1] == n - 1
        joins_right = i < len(spans) and spans[i][0] == n + 1
        if joins_left and joins_right:
            spans[i - 1][1] = spans[i][1]
            del spans[i]
        elif joins_left:
            spans[i - 1][1] = n
        elif joins_right:
            spans[i][0] = n
        else:
            spans.insert(i, [n, n])

    def beacon_round(self, chain, number: int):
        from consensus.beacon import BeaconRound

        row = self.db.execute(
            "SELECT round, signature, previous_signature FROM beacon_rounds WHERE chain = ? AND round = ?", [chain.hash, number]
        ).fetchone()
        return BeaconRound(*row) if row else None

    def latest_round(self, chain):
        """The highest cached round of ``chain``, or None."""
        from consensus.beacon import BeaconRound

        row = self.db.execute(
            "SELECT round, signature, previous_signature FROM beacon_rounds WHERE chain = ? ORDER BY round DESC LIMIT 1",
            [chain.hash],
        ).fetchone()
        return BeaconRound(*row) if row else None

    # ------------------------------------------------------------------ rebuilding derived state

    def rebuild(self, progress: Callable[[int], None] | None = None) -> None:
        """Recompute every derived table by replaying the raw events through a fresh replica.

        Signatures are checked again.  The new file is built beside the old one and swapped in
        atomically, so an interrupted rebuild leaves the old replica intact.
        """
        self.flush()
        target = self.path.with_name(self.path.name + ".rebuild")
        for suffix in ("", "-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        charter = self._meta("charter")
        fresh = ReplicaStore.create(target, charter, durable=self.durable)
        count = 0
        from .pipeline import default_workers

        for _ in fresh.add_many(self.wires(), workers=default_workers()):
            count += 1
            if progress and count % 10000 == 0:
                progress(count)
        # the assembly's own rounds went through add_many above and were verified again there (a
        # round forged into the file is dropped); rounds of other chains (``klero beacon fetch
        # --profile``) are a cache the assembly never reads: carried over as they are
        fresh.db.conn.executemany(
            ROUND_INSERT,
            (fresh._round_row(*row) for row in self.db.execute(
                "SELECT chain, round, signature, previous_signature FROM beacon_rounds WHERE chain != ?",
                [self.replica.charter.beacon.hash]).fetchall()),
        )
        fresh.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        fresh.db.conn.close()
        fresh._unlock()
        self.db.conn.close()
        self._unlock()
        for suffix in ("-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        os.replace(target, self.path)
        for suffix in ("-wal", "-shm", ".lock"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        self.__init__(self.path, durable=self.durable)

    # ------------------------------------------------------------------ internals

    def _meta(self, key: str) -> bytes | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def _restore(self) -> None:
        db = self.db
        authors = db.execute("SELECT author, head_seq, head_id, round, in_round, fork_seq, blocked_seq, blocked_code FROM authors").fetchall()
        self.replica.restore(
            heads=[(a, s, h, r, n) for a, s, h, r, n, _, _, _ in authors if s],
            forks=db.execute("SELECT author, seq FROM forks").fetchall(),
            blocked=[(a, b, c) for a, _, _, _, _, _, b, c in authors if b],
            pending=db.execute("SELECT author, seq FROM events WHERE status = ?", [PENDING]).fetchall(),
            proposals=db.execute("SELECT id, author, withdrawn FROM proposals").fetchall(),
            certified=db.execute("SELECT registrar, subject FROM certifications").fetchall(),
            records=(w for (w,) in db.execute("SELECT e.wire FROM records r JOIN events e ON e.id = r.id")),
            rounds=((n, hashlib.sha256(sig).digest()) for n, sig in self._authentic_rounds()),
            seconds=[w for (w,) in db.execute("SELECT second FROM forks")],
            versions=[w for (w,) in db.execute("SELECT wire FROM versions")],
            kept=db.execute(
                """SELECT author, sum(n) FROM (SELECT author, count(*) AS n FROM events WHERE status = 'excluded' AND reason = 'after_fork' GROUP BY author
                   UNION ALL SELECT author, count(*) FROM forks GROUP BY author
                   UNION ALL SELECT author, count(*) FROM versions GROUP BY author) GROUP BY author""").fetchall(),
        )

    def _authentic_rounds(self) -> list[tuple[int, bytes]]:
        """The cached rounds of the assembly's chain, (number, signature), each one this folder's
        stores wrote (its MAC holds) or verified again now.  Verifying a year of quicknet rounds
        at every start would take hours (2.1 ms each); checking a MAC costs about a microsecond.
        A row without a valid MAC (forged into the file, damaged, a file from another machine or
        from before MACs) has its BLS signature checked: a genuine one gets its MAC, a forged one
        is dropped (counted in ``dropped_rounds``).  A read-only snapshot (``klero status``) that
        cannot read the key trusts the file: it only displays."""
        from consensus.beacon import BeaconRound
        from consensus.errors import InvalidInput

        chain = self.replica.charter.beacon
        rows = self.db.execute("SELECT round, signature, previous_signature, mac FROM beacon_rounds WHERE chain = ?",
                               [chain.hash]).fetchall()
        if self._key is None:
            return [(n, sig) for n, sig, _, _ in rows]
        good, fixed, forged = [], [], []
        for n, sig, prev, mac in rows:
            if mac is not None and mac == self._round_mac(chain.hash, n, sig, prev):
                good.append((n, sig))
                continue
            try:
                chain.verify(BeaconRound(n, sig, prev))
            except InvalidInput:
                forged.append(n)
                continue
            good.append((n, sig))
            fixed.append((self._round_mac(chain.hash, n, sig, prev), chain.hash, n))
        if (fixed or forged) and not self.read_only:
            with self._transaction():
                self.db.conn.executemany("UPDATE beacon_rounds SET mac = ? WHERE chain = ? AND round = ?", fixed)
                self.db.conn.executemany("DELETE FROM beacon_rounds WHERE chain = ? AND round = ?",
                                         [(chain.hash, n) for n in forged])
        if forged:
            import logging

            logging.getLogger(__name__).warning("dropped %d forged beacon round(s) from %s", len(forged), self.path)
        self.dropped_rounds = len(forged)
        return good

    def _transaction(self):
        return _Transaction(self.db.conn)


#: lock files this process holds: a forked child closes its copies at once, so a child that
#: outlives us (an orphaned pool worker) never keeps our replica locked
_HELD: set = set()


def _close_held_in_child() -> None:
    for handle in list(_HELD):
        try:
            handle.close()  # the child's descriptor only: closing is no LOCK_UN, the parent's lock stands
        except OSError:
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


def _lock_file(path: Path):
    """Hold an exclusive lock beside the replica: its in-memory state must have one writer.

    Returns the open lock file (the lock lasts while it is open), or None where the platform
    has no ``fcntl`` (Windows: single-writer use is then up to the user).  The holder writes its
    process id and command into the file, so whoever finds the replica in use is told by whom;
    the kernel drops the lock when its holder dies, however it dies.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    handle = open(path, "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read(300).strip()
        handle.close()
        raise StoreError(f"The replica {path.with_suffix('')} is in use by another klero process"
                         f"{_describe_holder(holder)}; stop it (or wait for it) and try again.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()} {' '.join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200]}\n")
    handle.flush()
    _HELD.add(handle)
    return handle


def _describe_holder(holder: str) -> str:
    pid, _, command = holder.partition(" ")
    if not pid.isdigit():
        return ""
    return f" (process {pid}: {command.strip() or 'klero'})"


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on error (the connection is in autocommit mode)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        if self.conn.in_transaction:  # an error may already have ended it
            self.conn.execute("ROLLBACK")
