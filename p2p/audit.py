"""Replay a log from nothing and report what it proves (``klero verify``).

Two streaming passes over the file: the first finds the charter (a log may be shuffled, so the
charter need not come first), the second replays every item through a fresh replica whose
ledger is a temporary SQLite file, so memory stays flat however long the log is.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from consensus.errors import InvalidInput, KleroError
from consensus.events import decode_charter, event_id, peek_kind, split_wire
from consensus.replica import DUPLICATE, EXCLUDED, INVALID, PENDING, REJECTED

from .logfile import LogDamage, read_items
from .pipeline import checked
from .store import ReplicaStore


#: the sentence for each chain rule an event can break (the replica stores only the code)
_INVALID_REASONS = {
    "prev_mismatch": "The event does not follow its author's previous event (its prev names another event).",
    "round_backwards": "The event names an older beacon round than its author's previous event.",
    "round_rate": "The author signed more events in one beacon round than the charter allows.",
    "wrong_round_prefix": "The event names a beacon round with randomness that is not that round's: it cannot have seen it.",
    "not_own_proposal": "A representative may withdraw only a proposal they submitted earlier.",
    "already_withdrawn": "The proposal was already withdrawn.",
    "already_certified": "The registrar already certified this key.",
    "nothing_to_revoke": "A registrar may revoke only a certification they hold.",
}


class LogError(KleroError):
    """The log cannot be verified at all (unreadable, no charter, several assemblies)."""


@dataclass
class Report:
    """The result of replaying one log."""

    path: str
    assembly: str = ""
    name: str = ""
    items: int = 0
    events: int = 0
    duplicates: int = 0
    #: items rejected or found invalid, and events still waiting for a predecessor at the end
    rejected: list[dict] = field(default_factory=list)
    equivocations: list[dict] = field(default_factory=list)
    #: events of equivocating authors from their fork on: kept as evidence, counted for no open deadline
    excluded: int = 0
    state_hash: str = ""
    damage: dict | None = None
    rounds: int = 0
    #: the legislature's decisions: cycles, proposals, draws, ballots (consensus.legislature.Result)
    legislature: dict = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not (self.rejected or self.equivocations or self.damage)

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "assembly": self.assembly,
            "name": self.name,
            "items": self.items,
            "events": self.events,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "equivocations": self.equivocations,
            "excluded": self.excluded,
            "state_hash": self.state_hash,
            "damage": self.damage,
            "rounds": self.rounds,
            **self.legislature,
        }


_CHARTER_MARK = b"\x64kind\x67charter"


def find_charters(path: str | os.PathLike) -> list[bytes]:
    """Distinct valid charters in a log, in order of first appearance."""
    found: dict[bytes, None] = {}
    for item in read_items(path):
        if isinstance(item, LogDamage):
            break
        _, _, wire = item
        # cheap prefilter: a charter's encoding holds the text key "kind" followed by "charter"
        if _CHARTER_MARK in wire and wire not in found and peek_kind(wire) == "charter":
            try:
                decode_charter(wire)
            except InvalidInput:
                continue
            found[wire] = None
    return list(found)


def _leading_charter(path) -> list[bytes]:
    """The charter when it is the log's first item (every exported log): no scan needed then.
    Events of any other assembly in the file are then reported as wrong_assembly."""
    first = next(iter(read_items(path)), None)
    if first is None or isinstance(first, LogDamage) or _CHARTER_MARK not in first[2]:
        return []
    try:
        decode_charter(first[2])
    except InvalidInput:
        return []
    return [first[2]]


def verify_log(
    path: str | os.PathLike,
    *,
    assembly: bytes | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> Report:
    """Replay ``path`` from nothing; raises :class:`LogError` only when nothing can be verified.

    Signatures are checked on ``workers`` processes (default: one per core) ahead of the
    single-threaded replica; the report is the same for any number of workers.
    """
    path = Path(path)
    if not path.is_file():
        raise LogError(f"There is no log file at {path}.")
    charters = _leading_charter(path) if assembly is None else []
    charters = charters or find_charters(path)
    if assembly is not None:
        charters = [c for c in charters if decode_charter(c).id == assembly]
    if not charters:
        first = next(iter(read_items(path)), None)
        if isinstance(first, LogDamage) or first is None:
            raise LogError(f"{path} is not a Kleroterion log: {first.reason if first else 'the file is empty.'}")
        raise LogError(f"{path} holds no charter{' of that assembly' if assembly else ''}, so its events cannot be checked.")
    if len(charters) > 1:
        ids = ", ".join(decode_charter(c).id.hex()[:16] for c in charters)
        raise LogError(f"{path} holds events of {len(charters)} assemblies ({ids}); choose one with --assembly.")
    report = Report(path=str(path))
    with tempfile.TemporaryDirectory(prefix="klero-verify-") as tmp:
        store = ReplicaStore.create(Path(tmp) / "replay.sqlite", charters[0], durable=False)
        replica = store.replica
        report.assembly = replica.assembly.hex()
        report.name = replica.charter.name
        first_index: dict[bytes, int] = {}
        refused: set[bytes] = set()

        def wire_of(item):
            return b"" if isinstance(item, LogDamage) else item[2]

        from consensus.beacon import chain_to_body

        chain_body = chain_to_body(replica.charter.beacon)
        for item, signature_ok in checked(read_items(path), key=wire_of, workers=workers, chain_body=chain_body):
            if isinstance(item, LogDamage):
                report.damage = {"index": item.index, "offset": item.offset, "reason": item.reason}
                break
            index, _, wire = item
            report.items += 1
            outcome = store.add_item(wire, signature_checked=signature_ok)
            if index % 2000 == 1999:
                store.flush()
                if progress:
                    progress(index + 1)
            status = outcome.status
            if outcome.event_id is not None and status != DUPLICATE:
                first_index.setdefault(outcome.event_id, index)
            if status == DUPLICATE:
                if outcome.event_id != replica.assembly:  # the charter founded the replay
                    report.duplicates += 1
            elif status == REJECTED and outcome.rejection.code not in ("excluded_after_fork",):
                digest = hashlib.sha256(wire).digest()
                if digest in refused:  # a copy of an item already refused: reported once
                    report.duplicates += 1
                else:
                    refused.add(digest)
                    report.rejected.append({"index": index, **outcome.rejection.as_dict()})
        store.flush()
        # what stays invalid or waiting is read from the replica at the end, not from the order the
        # items came in: the report is a function of the set of items (a shuffled log gives the same)
        for eid, code in store.db.execute("SELECT id, reason FROM events WHERE status = ?", [INVALID]):
            report.rejected.append({"index": first_index.get(eid, -1), "code": code, "reason": _INVALID_REASONS.get(code, code)})
        for eid, author, seq, wire in store.db.execute("SELECT id, author, seq, wire FROM events WHERE status = ?", [PENDING]):
            head = replica.heads.get(author)
            named = split_wire(wire, 1 << 24)[2]["round"][0]
            if author in replica.unvouched:
                code, reason = "not_certified", "No registrar in the log certified the event's author."
            elif seq == (head.seq if head else 0) + 1 and named not in replica.beacon:
                code, reason = "unknown_round", f"The event names beacon round {named}, which the log does not hold."
            else:
                code, reason = "missing_predecessor", "The event waits for an earlier event of its author that is not in the log."
            report.rejected.append({"index": first_index.get(eid, -1), "code": code, "reason": reason})
        report.rejected.sort(key=lambda r: (r["index"], r["code"]))
        report.excluded = (store.db.execute("SELECT count(*) FROM events WHERE status = ?", [EXCLUDED]).fetchone()[0]
                           + store.db.execute("SELECT count(*) FROM forks").fetchone()[0])
        for author, seq in sorted(replica.forks.items()):
            first, second = store.db.execute(
                "SELECT first, second FROM forks WHERE author = ? AND seq = ?", [author, seq]
            ).fetchone()
            more = [w for (w,) in store.db.execute("SELECT wire FROM versions WHERE author = ? AND seq = ?", [author, seq])]
            report.equivocations.append({
                "author": author.hex(),
                "seq": seq,
                "events": sorted(event_id(w).hex() for w in [first, second, *more]),
            })
        report.events = replica.applied_count()
        report.rounds = len(replica.beacon)
        from consensus.legislature import Legislature

        legislature = Legislature(replica.charter, replica.charter_event.round)
        report.legislature = legislature.evaluate_replica(replica).as_dict()
        report.state_hash = replica.state_hash().hex()
        store.close()
    return report
