"""Live co-editing of one field of a proposal's text, through the service.

The widget's text is always *the text at ``heads``* (a revision) plus the person's own edits not
yet signed.  Typing marks the text dirty; after a pause (``PAUSE_MS``) the whole field is sent
with ``base = heads`` (``Service.edit``): the service diffs it against that revision, so the
signed change depends on what the person saw and merges with whatever others wrote meanwhile.
Others' changes arrive as splices (``Service.changes_since``) and are applied only while the
person has nothing unsigned (as ``crdt.Editor.receive`` flushes first): they go through a
separate ``QTextCursor``, so the person's cursor and selection move with the text around them
and never jump; the undo history is cleared instead of receiving them (Qt cannot keep an edit
out of its stack), so Ctrl+Z never undoes someone else's words.  Positions: Qt counts UTF-16
code units, the service code points; every splice is converted.
"""

from __future__ import annotations

import time
from typing import Callable

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit

PAUSE_MS = 1000
POLL_MS = 1000
#: a person typing without a pause still signs at least this often, so others see the words
MAX_BATCH_S = 3.0
HIGHLIGHT_MS = 3000


def utf16_length(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def to_utf16(text: str, position: int) -> int:
    """Qt's position of code point ``position`` of ``text``."""
    return utf16_length(text[:position])


class CoEditor(QPlainTextEdit):
    """``call(name, done, failed, **args)`` reaches the service (the app's door, or a service in
    tests); ``ref`` names the proposal."""

    #: a sentence for the person (signed, refused, who else is editing)
    said = Signal(str)

    def __init__(self, call: Callable, ref: str, field: str = "body", parent=None):
        super().__init__(parent)
        self.setAccessibleName(f"Proposal {field}")
        self.call, self.ref, self.field = call, ref, field
        self.heads: list[str] = []
        #: the text at ``heads``: what the widget shows less the person's unsigned edits
        self.base_text = ""
        self._dirty_since = 0.0
        self.loaded = False
        self.dirty = False
        self.sending = False
        self.polling = False
        self._remote = False  # applying others' splices: not the person's typing
        self.closed = False  # stopped: answers still on their way are dropped
        self.pause = QTimer(self, singleShot=True, interval=PAUSE_MS)
        self.pause.timeout.connect(self.flush_now)
        self.poller = QTimer(self, interval=POLL_MS)
        self.poller.timeout.connect(self.poll_now)
        self.document().contentsChanged.connect(self._typed)
        self._marks: list[QTextEdit.ExtraSelection] = []

    def start(self) -> None:
        self.poll_now()
        self.poller.start()

    def stop(self) -> None:
        """Sign what is unsigned, and take no more answers (the widget is going away)."""
        self.poller.stop()
        if self.dirty:
            self.flush_now()
        self.closed = True

    # ---- the person's edits

    def _typed(self) -> None:
        if self._remote or not self.loaded:
            return
        now = time.monotonic()
        if not self.dirty:
            self._dirty_since = now
        self.dirty = True
        self.pause.start()
        if now - self._dirty_since > MAX_BATCH_S and not self.sending:
            QTimer.singleShot(0, self, self.flush_now)  # typing without a pause: sign what is there

    def flush_now(self) -> None:
        """Sign what the person typed since the last change (now, not after the pause)."""
        if not self.dirty or self.sending or self.isReadOnly():
            return
        self.sending, self.dirty = True, False
        text = self.toPlainText()

        def done(out: dict) -> None:
            if self.closed:
                return
            self.sending = False
            self.heads, self.base_text = out["heads"], text
            self._dirty_since = time.monotonic()
            self.said.emit(out["what"])
            if self.dirty:
                self.pause.start()  # more was typed meanwhile: sign it on the new base

        def failed(sentence: str) -> None:
            if self.closed:
                return
            self.sending = False
            self.dirty = self.dirty or sentence != "The text is unchanged: there is nothing to sign."
            self.said.emit(sentence)
            if self.dirty and not self.isReadOnly():
                self.pause.start()  # e.g. the node was catching up: try again after another pause

        self.call("edit", done, failed, ref=self.ref, text=text, field=self.field, base=self.heads)

    # ---- others' edits

    def poll_now(self) -> None:
        if self.polling or self.sending:
            return  # a batch of the person's is on its way: the next poll starts from its revision
        self.polling = True
        asked = list(self.heads)

        def done(out: dict) -> None:
            if self.closed:
                return
            self.polling = False
            if self.sending or self.heads != asked:
                return  # the person's batch changed the revision meanwhile: these splices are stale
            if out.get("splices") is None:  # first load, or a revision this replica lacks
                if self.dirty:
                    return  # never overwrite unsigned words: sign them first, then reload
                self._replace_all(out.get("text", ""))
                self.base_text = out.get("text", "")
            else:
                self.merge(out["splices"])
            self.heads = out["heads"]
            self.loaded = True
            if out.get("authors"):
                self.said.emit("Also editing: " + ", ".join(a[:8] for a in out["authors"]))

        def failed(sentence: str) -> None:
            if self.closed:
                return
            self.polling = False
            self.said.emit(sentence)

        self.call("changes_since", done, failed, ref=self.ref, heads=self.heads if self.loaded else [], field=self.field)

    def _replace_all(self, text: str) -> None:
        self._remote = True
        try:
            position = self.textCursor().position()
            self.setPlainText(text)
            cursor = self.textCursor()
            cursor.setPosition(min(position, utf16_length(text)))
            self.setTextCursor(cursor)
        finally:
            self._remote = False

    def merge(self, remote: list) -> None:
        """Others' splices (code points, in order, on the text at ``heads``), merged into the
        widget around the person's unsigned edits: each is moved past the person's edits before
        it, so both survive; the person's edits stay unsigned, now on the new revision."""
        if not remote:
            return
        base = self.base_text
        new_base = base
        for position, deleted, inserted in remote:
            new_base = new_base[:position] + inserted + new_base[position + deleted:]
        if not self.dirty:
            self.apply_splices(remote)
        else:
            from crdt.revisions import opcodes

            mine = [op for op in opcodes(base, self.toPlainText()) if op[0] != "equal"]

            def moved(p: int) -> int:
                """A position in ``base`` as a position in the widget's text."""
                shift = 0
                for _, i1, i2, j1, j2 in mine:
                    if i2 <= p and not (i1 == i2 == p):
                        shift += (j2 - j1) - (i2 - i1)
                    elif i1 < p < i2:
                        return j2  # inside a passage the person rewrote: after their words
                return p + shift

            theirs = [op for op in opcodes(base, new_base) if op[0] != "equal"]
            # from the end, so earlier positions stay valid; each in widget positions
            self.apply_splices([(moved(i1), moved(i2) - moved(i1), new_base[j1:j2]) for _, i1, i2, j1, j2 in reversed(theirs)])
        self.base_text = new_base

    def apply_splices(self, splices: list) -> None:
        """Others' splices ``(position, deleted, inserted)`` in code points, in order."""
        if not splices:
            return
        self._remote = True
        marks = []
        try:
            text = self.toPlainText()
            for position, deleted, inserted in splices:
                start = to_utf16(text, position)
                end = to_utf16(text, position + deleted)
                cursor = QTextCursor(self.document())
                cursor.setPosition(start)
                cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
                cursor.insertText(inserted)
                text = text[:position] + inserted + text[position + deleted:]
                if inserted:
                    mark = QTextEdit.ExtraSelection()
                    mark.cursor = QTextCursor(self.document())
                    mark.cursor.setPosition(start)
                    mark.cursor.setPosition(start + utf16_length(inserted), QTextCursor.MoveMode.KeepAnchor)
                    mark.format = QTextCharFormat()
                    mark.format.setBackground(QColor("#fff3b0"))
                    marks.append(mark)
            # others' words never enter the person's undo history
            self.document().setUndoRedoEnabled(False)
            self.document().setUndoRedoEnabled(True)
        finally:
            self._remote = False
        self._marks = marks
        self.setExtraSelections(marks)  # where others just wrote, for a moment
        # with the editor as context: the timer dies with it (a closed window's editor fired into
        # a deleted C++ object before)
        QTimer.singleShot(HIGHLIGHT_MS, self, lambda: self._marks is marks and self.setExtraSelections([]))
