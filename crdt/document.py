"""A proposal's text as an Automerge document (DESIGN.md §8), wrapped once so nothing else meets
the binding's traps (STACK.md):

* a multi-character ``insert`` makes one element holding the whole string: insert one character
  per call;
* a slice ``delete`` raises a Rust panic (a ``BaseException``): delete one index per call;
* a change must be applied only once its dependencies are present, else loading raises.

The document is a map with three text fields (``title``, ``summary``, ``body``; the body is
Markdown), a ``meta`` map (the proposal's id and its authors) and an ``anchors`` map (the passage
each anchored comment quoted when it was anchored; the anchor itself is a mark on the text).  Every change's actor id is its author's Ed25519 public key, so every character has a
signer; changes travel in signed ``doc.change`` events whose declared hash and dependencies the
core checks against the bytes (``consensus/changes.py``).

A revision is a sorted tuple of change hashes (the document's heads); any revision can be read.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Iterable

from automerge.core import ROOT, Document, ExpandMark, Message, ObjType, ScalarType, SyncState

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


_MARK = "comment:"


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where an anchored comment stands: ``span`` is its passage's ``(start, end)`` now, or None
    once every character of it was deleted."""

    comment: bytes
    field: str
    quote: str
    span: tuple[int, int] | None
    now: str
    state: str  # "intact", "edited" or "deleted"

    def describe(self) -> str:
        if self.state == "intact":
            return f"The comment still points at its passage in the {self.field} (characters {self.span[0]} to {self.span[1]})."
        if self.state == "edited":
            return (f"The passage the comment points at was rewritten: it quoted {self.quote!r} and now reads "
                    f"{self.now!r} (characters {self.span[0]} to {self.span[1]} of the {self.field}).")
        return (f"The passage the comment points at was deleted from the {self.field} (or replaced as a whole); "
                f"it quoted {self.quote!r}.")


def _scalar(found):
    """The value of a ``get`` result that holds a scalar, else None."""
    if not found:
        return None
    value = found[0]
    if isinstance(value, tuple) and len(value) == 2:
        if value[0] == ScalarType.Bytes:  # the binding returns bytes as a list of ints
            return bytes(value[1])
        return value[1]
    return None


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _sync_message(changes: list[bytes]) -> bytes:
    """An Automerge sync message (type 0x42) carrying only ``changes``: empty heads, needs and
    haves, then each change length-prefixed (automerge's ``sync.rs`` encoding)."""
    out = bytearray(b"\x42") + _uleb(0) + _uleb(0) + _uleb(0) + _uleb(len(changes))
    for c in changes:
        out += _uleb(len(c)) + c
    return bytes(out)


class Editor:
    """What the desktop's text widget talks to: keystrokes become splices applied to a local
    overlay at once, and one signed change per pause of typing.

    Time comes from the caller (``now``, seconds from any monotonic clock: the GUI's timer), so
    this stays testable and the core stays clock-free.  Remote changes flush the pending batch
    first (positions in a batch refer to the local text), then arrive as splices for the widget.
    """

    #: seconds without a keystroke that end a batch (DESIGN.md: about a second)
    PAUSE = 1.0

    def __init__(self, doc: "ProposalDocument", pause: float = PAUSE):
        self.doc = doc
        self.pause = pause
        self._pending: list[tuple[str, list[tuple[int, int, str]]]] = []
        self._texts: dict[str, str] = {}
        self._last: float | None = None

    def text(self, field: str) -> str:
        """The field as the user sees it: the document plus the keystrokes not yet committed."""
        if field not in self._texts:
            self._texts[field] = self.doc.text(field)
        return self._texts[field]

    def splice(self, field: str, position: int, deleted: int, inserted: str, now: float) -> None:
        """One keystroke (or paste, or cut) at ``position`` of ``field``."""
        current = self.text(field)
        if not (0 <= position <= len(current) and 0 <= deleted <= len(current) - position):
            raise DocumentError(f"The edit at {position} (deleting {deleted}) is outside the {field}'s {len(current)} characters.")
        self._texts[field] = current[:position] + inserted + current[position + deleted:]
        if self._pending and self._pending[-1][0] == field:
            self._pending[-1][1].append((position, deleted, inserted))
        else:
            self._pending.append((field, [(position, deleted, inserted)]))
        self._last = now

    def due(self, now: float) -> bool:
        """True once the user paused long enough: time to :meth:`flush`."""
        return bool(self._pending) and self._last is not None and now - self._last >= self.pause

    def flush(self) -> Change | None:
        """Commit the pending keystrokes as one change (to sign and publish); None if none."""
        if not self._pending:
            return None
        pending, self._pending = self._pending, []
        self._texts.clear()
        return self.doc.edit_fields(pending)

    def receive(self, changes: Iterable[bytes], field: str) -> tuple["Change | None", list[tuple[int, int, str]], list[bytes]]:
        """Remote changes: (our flushed change to publish, if any; splices for ``field``'s widget;
        changes still waiting for their dependencies)."""
        mine = self.flush()
        splices, waiting = self.doc.receive(changes, field)
        self._texts.clear()
        return mine, splices, waiting


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

    The order is deterministic (Kahn's algorithm, smallest hash first among the ready), so
    every node that holds the same set of changes loads the same document.  Malformed chunks are left out (they never reach
    here through the core, which checked them).
    """
    headers = {}
    for data in changes:
        try:
            header = read_change(data)
        except InvalidInput:
            continue
        headers[header.hash] = (header, data)
    done: set[bytes] = set(known)
    pending = {h: v for h, v in headers.items() if h not in done}
    missing = {h: len({d for d in header.deps if d not in done}) for h, (header, _) in pending.items()}
    dependents: dict[bytes, list[bytes]] = {}
    for h, (header, _) in pending.items():
        for d in set(header.deps):
            if d not in done:
                dependents.setdefault(d, []).append(h)
    heap = [h for h, n in missing.items() if n == 0]
    heapq.heapify(heap)
    ready: list[bytes] = []
    while heap:
        h = heapq.heappop(heap)
        ready.append(pending.pop(h)[1])
        for child in dependents.get(h, ()):
            missing[child] -= 1
            if missing[child] == 0:
                heapq.heappush(heap, child)
    return ready, [data for _, data in pending.values()]


class ProposalDocument:
    """One proposal's document, as this node holds it."""

    def __init__(self, doc: Document):
        self.doc = doc
        self._known_hashes: set[bytes] | None = None  # hashes of the changes held, built lazily

    # ---- building

    #: characters of initial text per change: an uncompressed change costs about a byte per
    #: character, and every change must fit in one event (the charter's 64 KiB by default)
    CHUNK_CHARS = 16_000

    @classmethod
    def create(cls, author: bytes, title: str, summary: str = "", body: str = "",
               proposal: bytes | None = None) -> tuple["ProposalDocument", Change]:
        """A new document by ``author`` (32-byte public key) and its last creating change;
        ``proposal`` is the id of the ``proposal.submit`` event the document belongs to.

        A long body is written in several changes of at most ``CHUNK_CHARS`` characters, so that
        each fits in an event; publish them all with :meth:`all_changes`.
        """
        doc = Document()
        doc.set_actor(author)
        chunks = [body[i : i + cls.CHUNK_CHARS] for i in range(0, len(body), cls.CHUNK_CHARS)] or [""]
        with doc.transaction() as tx:
            meta = tx.put_object(ROOT, "meta", ObjType.Map)
            if proposal is not None:
                tx.put(meta, "proposal", ScalarType.Bytes, proposal)
            authors = tx.put_object(meta, "authors", ObjType.List)
            tx.insert(authors, 0, ScalarType.Bytes, author)
            tx.put_object(ROOT, "anchors", ObjType.Map)
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
        """Add remote changes (any order); returns those still waiting for dependencies.

        The binding has no public "apply changes", but its sync protocol applies the changes a
        message carries incrementally: a message holding just these changes (no heads, needs or
        bloom filters) applies one typical change in about 0.1 ms on a 300,000-character bill,
        where reloading the document took a second.  Only changes whose dependencies are all
        present are handed over, in dependency order, so the binding never queues anything.
        """
        ready, waiting = order_changes(changes, known=self._known())
        if ready:
            try:
                self.doc.receive_sync_message(SyncState(), Message.decode(_sync_message(ready)))
            except BaseException as exc:  # Rust panics are BaseExceptions
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                return self._apply_by_reload(ready) + waiting
            self._known_hashes.update(read_change(c).hash for c in ready)
        return waiting

    def _apply_by_reload(self, ready: list[bytes]) -> list[bytes]:
        """The slow, all-or-nothing path: reload the saved document with the changes appended;
        on failure the document stays as it was and the changes are returned as not applied."""
        actor = self.doc.get_actor()
        try:
            doc = Document.load(self.doc.save() + b"".join(ready))
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            self._known_hashes = None
            return list(ready)
        doc.set_actor(actor)
        self.doc = doc
        self._known_hashes = None
        return []

    def _known(self) -> set[bytes]:
        if self._known_hashes is None:
            self._known_hashes = {c.hash for c in self.doc.get_changes([])}
        return self._known_hashes

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
        return self.edit_fields([(field, list(splices))])

    def edit_fields(self, edits: list[tuple[str, list[tuple[int, int, str]]]]) -> Change | None:
        """Splices to several fields, in order, in one change.  Every splice is checked against
        the text as the earlier ones leave it before anything is written."""
        objs = [(self._obj(field), field, splices) for field, splices in edits]
        for obj, field, splices in objs:
            length = self.doc.length(obj)
            for pos, deleted, inserted in splices:
                if not (0 <= pos <= length and 0 <= deleted <= length - pos):
                    raise DocumentError(f"The edit at {pos} (deleting {deleted}) is outside the {field}'s {length} characters.")
                length += len(inserted) - deleted
        before = tuple(self.heads())
        with self.doc.transaction() as tx:
            for obj, _, splices in objs:
                for pos, deleted, inserted in splices:
                    for _ in range(deleted):
                        tx.delete(obj, pos)
                    for i, ch in enumerate(inserted):
                        tx.insert(obj, pos + i, ScalarType.Str, ch)
        changes = self._changes_since(before)
        return changes[-1] if changes else None

    # ---- anchored comments

    def anchor(self, comment: bytes, field: str, start: int, end: int) -> Change:
        """Anchor the deliberation comment ``comment`` (its event id) to the passage
        ``[start, end)`` of ``field`` in one change: a mark named after the comment, which
        Automerge keeps on the same characters through concurrent edits, plus the quoted passage
        so readers can tell later whether it was rewritten."""
        obj = self._obj(field)
        length = self.doc.length(obj)
        if not 0 <= start < end <= length:
            raise DocumentError(f"A comment must be anchored to a passage inside the {field}'s {length} characters.")
        if len(comment) != 32:
            raise DocumentError("A comment is anchored by its 32-byte event id.")
        before = tuple(self.heads())
        quote = self.doc.text(obj)[start:end]
        with self.doc.transaction() as tx:
            found = tx.get(ROOT, "anchors")
            anchors = found[1] if found and found[0] == ObjType.Map else tx.put_object(ROOT, "anchors", ObjType.Map)
            entry = tx.put_object(anchors, comment.hex(), ObjType.Map)
            tx.put(entry, "field", ScalarType.Str, field)
            tx.put(entry, "quote", ScalarType.Str, quote)
            tx.mark(obj, start, end, _MARK + comment.hex(), ScalarType.Bytes, comment, ExpandMark.Neither)
        return self._changes_since(before)[-1]

    def anchors(self, revision: tuple[bytes, ...] | None = None) -> list["Anchor"]:
        """Where every anchored comment stands in ``revision`` (default: now), in anchoring
        order of comment id: its passage then and now, and whether it is intact, edited or
        deleted."""
        heads = None if revision is None else list(revision)
        found = self.doc.get(ROOT, "anchors", heads)
        if not found or found[0] != ObjType.Map:
            return []
        table = found[1]
        spans: dict[tuple[str, str], list[int]] = {}
        texts: dict[str, str] = {}
        out = []
        for key in sorted(self.doc.keys(table, heads)):
            entry = self.doc.get(table, key, heads)
            if not entry or entry[0] != ObjType.Map:
                continue
            field = _scalar(self.doc.get(entry[1], "field", heads))
            quote = _scalar(self.doc.get(entry[1], "quote", heads))
            if field not in FIELDS or not isinstance(quote, str):
                continue
            if field not in texts:
                obj = self._obj(field)
                texts[field] = self.doc.text(obj, heads)
                for m in self.doc.marks(obj, heads):
                    if m.name.startswith(_MARK):
                        span = spans.setdefault((field, m.name[len(_MARK):]), [m.start, m.end])
                        span[0], span[1] = min(span[0], m.start), max(span[1], m.end)
            span = spans.get((field, key))
            now = texts[field][span[0]:span[1]] if span else ""
            state = "deleted" if span is None else ("intact" if now == quote else "edited")
            out.append(Anchor(bytes.fromhex(key), field, quote, tuple(span) if span else None, now, state))
        return out

    def metadata(self) -> dict:
        """The proposal id (None if the document was created without one) and the authors."""
        found = self.doc.get(ROOT, "meta")
        if not found or found[0] != ObjType.Map:
            return {"proposal": None, "authors": []}
        meta = found[1]
        proposal = _scalar(self.doc.get(meta, "proposal"))
        authors_obj = self.doc.get(meta, "authors")
        authors = []
        if authors_obj and authors_obj[0] == ObjType.List:
            authors = [bytes(v) for v in (_scalar(x) for x in self.doc.values(authors_obj[1])) if isinstance(v, bytes)]
        return {"proposal": bytes(proposal) if isinstance(proposal, bytes) else None, "authors": authors}

    # ---- reading

    def heads(self) -> tuple[bytes, ...]:
        """The current revision: sorted change hashes."""
        return tuple(sorted(self.doc.get_heads()))

    def length(self, field: str) -> int:
        """Characters in ``field`` now (without building the text)."""
        return self.doc.length(self._obj(field))

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
        made = [Change(bytes(c.raw_bytes), c.hash, tuple(sorted(c.deps))) for c in self.doc.get_changes(list(heads))]
        if self._known_hashes is not None:
            self._known_hashes.update(c.hash for c in made)
        return made
