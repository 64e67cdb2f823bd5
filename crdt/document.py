"""A proposal's text as an Automerge document (DESIGN.md §8), wrapped once so nothing else meets
the binding's traps (STACK.md):

* a multi-character ``insert`` makes one element holding the whole string: insert one character
  per call;
* a slice ``delete`` raises a Rust panic (a ``BaseException``): delete one index per call;
* a change must be applied only once its dependencies are present, else loading raises.

The document is a map with three text fields (``title``, ``summary``, ``body``; the body is
Markdown).  Every change's actor id is its author's Ed25519 public key, so every character has a
signer; changes travel in signed ``doc.change`` events whose declared hash and dependencies the
core checks against the bytes (``consensus/changes.py``).

A revision is a sorted tuple of change hashes (the document's heads); any revision can be read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from automerge.core import ROOT, Document, ObjType, ScalarType

from consensus.changes import read_change
from consensus.errors import InvalidInput, KleroError

FIELDS = ("title", "summary", "body")


class DocumentError(KleroError):
    """A document cannot be built or edited as asked."""


@dataclass(frozen=True, slots=True)
class Change:
    """A change ready to travel in a ``doc.change`` event."""

    bytes: bytes
    hash: bytes
    deps: tuple[bytes, ...]

    def body(self, proposal: bytes) -> dict:
        return {"proposal": proposal, "change": self.bytes, "hash": self.hash, "deps": sorted(self.deps)}


def move_cursor(position: int, splices: Iterable[tuple[int, int, str]]) -> int:
    """Where a cursor at ``position`` belongs after remote splices (in order): text inserted or
    deleted before it moves it by as much; if it sat inside a replaced passage it goes to the end
    of the replacement; splices after it leave it alone."""
    for pos, deleted, inserted in splices:
        if pos + deleted <= position:
            position += len(inserted) - deleted
        elif pos < position:
            position = pos + len(inserted)
    return position


def order_changes(changes: Iterable[bytes], known: Iterable[bytes] = ()) -> tuple[list[bytes], list[bytes]]:
    """Split change chunks into (applicable, in dependency order; waiting for a missing change),
    given the hashes of changes already ``known`` (applied).

    The order is deterministic (Kahn's algorithm, ties by hash), so every node that holds the same
    set of changes loads the same document.  Malformed chunks are left out (they never reach
    here through the core, which checked them).
    """
    headers = {}
    for data in changes:
        try:
            header = read_change(data)
        except InvalidInput:
            continue
        headers[header.hash] = (header, data)
    ready: list[bytes] = []
    done: set[bytes] = set(known)
    pending = {h: v for h, v in headers.items() if h not in done}
    progress = True
    while progress:
        progress = False
        for h in sorted(pending):
            header, data = pending[h]
            if all(d in done for d in header.deps):
                ready.append(data)
                done.add(h)
                del pending[h]
                progress = True
    return ready, [data for _, data in pending.values()]


class ProposalDocument:
    """One proposal's document, as this node holds it."""

    def __init__(self, doc: Document):
        self.doc = doc

    # ---- building

    #: characters of initial text per change: an uncompressed change costs about a byte per
    #: character, and every change must fit in one event (the charter's 64 KiB by default)
    CHUNK_CHARS = 16_000

    @classmethod
    def create(cls, author: bytes, title: str, summary: str = "", body: str = "") -> tuple["ProposalDocument", Change]:
        """A new document by ``author`` (32-byte public key) and its last creating change.

        A long body is written in several changes of at most ``CHUNK_CHARS`` characters, so that
        each fits in an event; publish them all with :meth:`all_changes`.
        """
        doc = Document()
        doc.set_actor(author)
        chunks = [body[i : i + cls.CHUNK_CHARS] for i in range(0, len(body), cls.CHUNK_CHARS)] or [""]
        with doc.transaction() as tx:
            objs = {}
            for name, text in (("title", title), ("summary", summary), ("body", chunks[0])):
                objs[name] = obj = tx.put_object(ROOT, name, ObjType.Text)
                for i, ch in enumerate(text):
                    tx.insert(obj, i, ScalarType.Str, ch)
        offset = len(chunks[0])
        for chunk in chunks[1:]:
            with doc.transaction() as tx:
                for i, ch in enumerate(chunk):
                    tx.insert(objs["body"], offset + i, ScalarType.Str, ch)
            offset += len(chunk)
        made = cls(doc)
        return made, made._changes_since(())[-1]

    def all_changes(self) -> list[Change]:
        """Every change of the document, in causal order (to publish or to seed another node)."""
        return self._changes_since(())

    @classmethod
    def from_changes(cls, changes: Iterable[bytes], actor: bytes | None = None) -> tuple["ProposalDocument", list[bytes]]:
        """The document made of every applicable change; also returns the waiting ones."""
        ready, waiting = order_changes(changes)
        if not ready:
            raise DocumentError("No applicable change: a document starts with its author's first change.")
        try:
            doc = Document.load(b"".join(ready))
        except BaseException as exc:  # the binding raises Rust panics as BaseException
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise DocumentError(f"The changes do not form a readable document ({type(exc).__name__}).") from None
        if actor is not None:
            doc.set_actor(actor)
        return cls(doc), waiting

    def apply(self, changes: Iterable[bytes]) -> list[bytes]:
        """Add remote changes (any order); returns those still waiting for dependencies."""
        ready, waiting = order_changes(changes, known=self.heads_all())
        if ready:
            actor = self.doc.get_actor()
            try:
                doc = Document.load(self.doc.save() + b"".join(ready))
            except BaseException as exc:
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                return list(ready) + waiting  # leave the document as it was
            doc.set_actor(actor)
            self.doc = doc
        return waiting

    def receive(self, changes: Iterable[bytes], field: str) -> tuple[list[tuple[int, int, str]], list[bytes]]:
        """Apply remote changes and say what they did to ``field`` as splices
        ``(position, deleted, inserted)`` in order, so an editor can update its widget without
        losing the cursor (see :func:`move_cursor`); also returns the changes still waiting."""
        from .revisions import opcodes

        before = self.text(field)
        waiting = self.apply(changes)
        after = self.text(field)
        splices = []
        shift = 0
        for tag, i1, i2, j1, j2 in opcodes(before, after):
            if tag != "equal":
                splices.append((i1 + shift, i2 - i1, after[j1:j2]))
                shift += (j2 - j1) - (i2 - i1)
        return splices, waiting

    def fork(self, revision, actor: bytes) -> "ProposalDocument":
        """A copy of the document at ``revision`` for an amendment's proposer to edit: its
        changes depend on that revision only, so its diff against the base is the amendment."""
        forked = self.doc.fork(list(revision))
        forked.set_actor(actor)
        return ProposalDocument(forked)

    # ---- editing

    def edit(self, field: str, splices: Iterable[tuple[int, int, str]]) -> Change | None:
        """Apply local splices ``(position, deleted, inserted)`` in one change (one per pause
        of typing); returns it, or None if nothing changed."""
        obj = self._obj(field)
        before = tuple(self.heads())
        with self.doc.transaction() as tx:
            for pos, deleted, inserted in splices:
                length = tx.length(obj)
                if not (0 <= pos <= length and 0 <= deleted <= length - pos):
                    raise DocumentError(f"The edit at {pos} (deleting {deleted}) is outside the {field}'s {length} characters.")
                for _ in range(deleted):
                    tx.delete(obj, pos)
                for i, ch in enumerate(inserted):
                    tx.insert(obj, pos + i, ScalarType.Str, ch)
        changes = self._changes_since(before)
        return changes[-1] if changes else None

    # ---- reading

    def heads(self) -> tuple[bytes, ...]:
        """The current revision: sorted change hashes."""
        return tuple(sorted(self.doc.get_heads()))

    def heads_all(self) -> list[bytes]:
        return [c.hash for c in self.doc.get_changes([])]

    def text(self, field: str, revision: tuple[bytes, ...] | None = None) -> str:
        obj = self._obj(field)
        if revision is None:
            return self.doc.text(obj)
        return self.doc.text(obj, list(revision))

    def history(self) -> list[tuple[bytes, bytes, tuple[bytes, ...]]]:
        """(change hash, actor, deps) of every change, in the document's order."""
        return [(c.hash, bytes(c.actor_id), tuple(sorted(c.deps))) for c in self.doc.get_changes([])]

    def _obj(self, field: str):
        if field not in FIELDS:
            raise DocumentError(f"A proposal has no field {field!r}; its fields are {', '.join(FIELDS)}.")
        found = self.doc.get(ROOT, field)
        if not found or found[0] != ObjType.Text:
            raise DocumentError(f"The document has no text field {field!r}.")
        return found[1]

    def _changes_since(self, heads) -> list[Change]:
        # raw_bytes: the uncompressed chunk, whose header the core can read (Automerge compresses
        # large changes in ``bytes``; both load the same)
        return [Change(bytes(c.raw_bytes), c.hash, tuple(sorted(c.deps))) for c in self.doc.get_changes(list(heads))]
