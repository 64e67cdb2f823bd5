"""The main window: a view of the representative's service (``p2p.service``) through the door.

Screens: Inbox (what needs me now), Proposals (the workspace: text, changes, blame, thread,
history, and the vote panel), Pipeline, Committees, Constituency (``constituency.py``: the person
as a constituent), Record (a representative's public record), Network (the node's honest state),
Settings.  Views ask the service and
refresh only what changed (keyed updates: a selection and a screen reader's focus survive a
refresh); every act's refusal is shown as the service's sentence.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .coedit import CoEditor

KIND_LABELS = {"vote": "Vote", "amendment": "Amendment", "seat": "Seat", "reply": "Reply", "mention": "Mention",
               "comment": "Comment", "mine": "My proposal", "panel": "Panel duty", "constituency": "Constituency",
               "question": "Constituent's question"}
#: inbox items that the constituency screen answers (Enter opens it)
CONSTITUENCY_KINDS = ("constituency", "question")
OBSERVER_WHY = "This is an observer: it verifies everything and acts on nothing."


def _named(widget, name: str, description: str = ""):
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)
    return widget


def diff_html(ops: list) -> str:
    """A word diff as HTML: removed text struck through, added text underlined, as well as
    coloured; each change carries an anchor ``c1``, ``c2``… for next/previous-change keys."""
    out = []
    n = 0
    for k, (op, text) in enumerate(ops):
        t = html.escape(text).replace("\n", "<br>")
        if op == "=":
            out.append(t)
            continue
        if k == 0 or ops[k - 1][0] == "=":
            n += 1
            out.append(f'<a name="c{n}"></a>')
        if op == "-":
            out.append(f'<s style="color:#b00020;background:#fde7ea">{t}</s>')
        else:
            out.append(f'<u style="color:#0b6b2e;background:#e6f4ea">{t}</u>')
    return f"<p><small>{n} change(s): F8 next, Shift+F8 previous</small></p><div style='white-space:pre-wrap'>" + "".join(out) + "</div>"


def change_count(ops: list) -> int:
    return sum(1 for k, (op, _) in enumerate(ops) if op != "=" and (k == 0 or ops[k - 1][0] == "="))


class InboxScreen(QWidget):
    def __init__(self, window: "MainWindow"):
        super().__init__()
        self.window = window
        layout = QVBoxLayout(self)
        self.heading = _named(QLabel("Connecting to your node…"), "Where the assembly stands")
        self.heading.setWordWrap(True)
        layout.addWidget(self.heading)
        self.tree = _named(QTreeWidget(), "Inbox", "What needs you now, most urgent first; Enter opens the proposal "
                                                   "(or the constituency screen)")
        self.tree.setHeaderLabels(["What", "Proposal", "Due", "Details"])
        self.tree.setRootIsDecorated(False)
        self.tree.itemActivated.connect(self._open)
        layout.addWidget(self.tree)
        self._keys: list[tuple] | None = None

    def show_inbox(self, overview: dict, items: list[dict]) -> None:
        seat = "you hold a seat" if overview.get("seated") else "you hold no seat (observing)"
        waiting = f" Next: {overview['waiting']}" if overview.get("waiting") else ""
        self.heading.setText(f"<b>{html.escape(overview.get('name', ''))}</b> — cycle {overview.get('cycle')}, "
                             f"beacon round {overview.get('round', 0):,}; {seat}.{html.escape(waiting)}")
        keys = [(i["kind"], i.get("proposal"), i.get("amendment"), i.get("comment"), i["text"], i["due"]) for i in items]
        if keys == self._keys:
            return  # nothing changed: keep the selection and the reader's place
        current = self.tree.currentItem()
        selected = current.data(0, Qt.ItemDataRole.UserRole) if current else None
        self._keys = keys
        self.tree.clear()
        for item in items:
            row = QTreeWidgetItem([KIND_LABELS.get(item["kind"], item["kind"]), item.get("title") or "", item["due"], item["text"]])
            row.setData(0, Qt.ItemDataRole.UserRole, item.get("proposal"))
            row.setData(1, Qt.ItemDataRole.UserRole, item["kind"])
            if item.get("why"):
                row.setToolTip(3, item["why"])
            self.tree.addTopLevelItem(row)
            if selected and item.get("proposal") == selected and self.tree.currentItem() is None:
                self.tree.setCurrentItem(row)
        for column in range(3):
            self.tree.resizeColumnToContents(column)
        if not items:
            self.tree.addTopLevelItem(QTreeWidgetItem(["", "", "", "Nothing needs you now."]))

    def _open(self, row: QTreeWidgetItem) -> None:
        pid = row.data(0, Qt.ItemDataRole.UserRole)
        if pid:
            self.window.open_proposal(pid)
        elif row.data(1, Qt.ItemDataRole.UserRole) in CONSTITUENCY_KINDS:
            self.window.nav.setCurrentRow(self.window.stack.indexOf(self.window.constituency))


class ProposalScreen(QWidget):
    """The proposals on the left, one proposal's workspace on the right."""

    def __init__(self, window: "MainWindow"):
        super().__init__()
        self.window = window
        self.pid: str | None = None
        self.shown: dict = {}
        split = QSplitter(self)
        outer = QHBoxLayout(self)
        outer.addWidget(split)
        self.list = _named(QListWidget(), "Proposals", "Every proposal and its status; Enter opens it")
        self.list.itemActivated.connect(lambda it: self.open(it.data(Qt.ItemDataRole.UserRole)))
        self.list.currentItemChanged.connect(lambda it, _: it and self.open(it.data(Qt.ItemDataRole.UserRole)))
        split.addWidget(self.list)
        right = QWidget()
        box = QVBoxLayout(right)
        self.title = _named(QLabel("Choose a proposal."), "Proposal title and status")
        self.title.setWordWrap(True)
        box.addWidget(self.title)
        self.tabs = QTabWidget()
        self.text = _named(QPlainTextEdit(), "Proposal text")
        self.text.setReadOnly(True)
        self.edit_why = _named(QLabel(""), "Why the text is read-only")
        self.edit_why.setWordWrap(True)
        self.edit_why.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.save = _named(QPushButton("&Sign now"), "Sign now",
                           "Your edits are signed after a pause in typing; this signs them at once")
        self.save.clicked.connect(lambda: isinstance(self.text, CoEditor) and self.text.flush_now())
        text_tab = QWidget()
        self.text_box = t = QVBoxLayout(text_tab)
        t.addWidget(self.edit_why)
        t.addWidget(self.text)
        t.addWidget(self.save)
        self.tabs.addTab(text_tab, "&Text")
        self.changes = _named(QTextBrowser(), "Changes", "Removed text struck through, added text underlined; "
                                                         "F8 and Shift+F8 go to the next and previous change")
        from PySide6.QtWidgets import QComboBox

        changes_tab = QWidget()
        ct = QVBoxLayout(changes_tab)
        pick = QHBoxLayout()
        self.diff_from = _named(QComboBox(), "Compare from", "The earlier revision of the comparison")
        self.diff_to = _named(QComboBox(), "Compare to", "The later revision of the comparison")
        for combo in (self.diff_from, self.diff_to):
            combo.view().setAccessibleName("Revisions")
            combo.activated.connect(lambda _=0: self._compare())
        pick.addWidget(QLabel("From:"))
        pick.addWidget(self.diff_from, 1)
        pick.addWidget(QLabel("to:"))
        pick.addWidget(self.diff_to, 1)
        ct.addLayout(pick)
        ct.addWidget(self.changes)
        self._revisions: list[tuple[str, list]] = []
        self.tabs.addTab(changes_tab, "&Changes")
        self._change_at, self._changes_n = 0, 0
        for keys, step in (("F8", 1), ("Shift+F8", -1)):
            action = QAction(self)
            action.setShortcut(QKeySequence(keys))
            action.triggered.connect(lambda _=False, step=step: self._jump(step))
            self.addAction(action)
        self.amendments = _named(QTextBrowser(), "Amendments", "Each amendment's summary and its diff against the text "
                                                               "the committee received")
        self.tabs.addTab(self.amendments, "A&mendments")
        self.blame = _named(QTextBrowser(), "Blame", "Who wrote each passage")
        self.tabs.addTab(self.blame, "&Blame")
        thread_tab = QWidget()
        th = QVBoxLayout(thread_tab)
        self.thread = _named(QListWidget(), "Thread", "Comments and replies; anchored ones quote their passage")
        th.addWidget(self.thread)
        self.comment_box = _named(QLineEdit(), "New comment")
        self.comment_box.setPlaceholderText("Write a comment and press Enter (select a comment first to reply)")
        self.comment_box.returnPressed.connect(self._comment)
        th.addWidget(self.comment_box)
        self.tabs.addTab(thread_tab, "T&hread")
        self.history = _named(QTextBrowser(), "History", "Every status change with its reason, and every change to the text")
        self.tabs.addTab(self.history, "H&istory")
        box.addWidget(self.tabs)
        vote = QHBoxLayout()
        self.ballot = _named(QLabel(""), "Ballot")
        self.ballot.setWordWrap(True)
        vote.addWidget(self.ballot, 1)
        self.yes = _named(QPushButton("&Promote"), "Vote for", "Vote for the revision the ballot names")
        self.no = _named(QPushButton("&Kill"), "Vote against", "Vote against the revision the ballot names")
        self.yes.clicked.connect(lambda: self._vote(0))
        self.no.clicked.connect(lambda: self._vote(1))
        vote.addWidget(self.yes)
        vote.addWidget(self.no)
        box.addLayout(vote)
        split.addWidget(right)
        split.setStretchFactor(1, 3)
        self._ballot: dict | None = None
        self._rows: dict[str, QListWidgetItem] = {}
        self._set_ballot(None)

    # ---- the list

    def show_list(self, rows: list[dict]) -> None:
        for r in rows:
            label = f"{r['title']}  —  {r['status']}{' (yours)' if r['mine'] else ''}"
            item = self._rows.get(r["id"])
            if item is None:
                item = self._rows[r["id"]] = QListWidgetItem(label)
                item.setData(Qt.ItemDataRole.UserRole, r["id"])
                self.list.addItem(item)
            elif item.text() != label:
                item.setText(label)

    # ---- one proposal

    def open(self, pid: str | None) -> None:
        if not pid:
            return
        if pid != self.pid:
            self.pid = pid
            self._new_editor(pid)
            self.title.setText("Loading…")
        self.refresh()

    def refresh(self) -> None:
        if self.pid:
            pid = self.pid
            self.window.door.call("show", lambda v: self._shown(pid, v), self.window.say, ref=pid)

    def _shown(self, pid: str, v: dict) -> None:
        if pid != self.pid:
            return
        self.shown = v
        self.title.setText(f"<b>{html.escape(v['title'])}</b> — {v['status']}, stage {v['stage']}<br>"
                           f"<small>by {v['author'][:12]}…, id {v['id'][:12]}…</small>")
        if not v["text"] and self.text.toPlainText() != v["summary"]:
            self.text.setPlainText(v["summary"])  # no document yet: its summary is its text
        self.history.setHtml("<br>".join(
            [f"cycle {h['cycle']}, round {h['round']:,}: <b>{h['status']}</b> {html.escape(h['reason'])}" for h in v["history"]]
            + [f"change {c['change'][:8]} by {c['author'][:8]} at round {c['round']:,}" for c in v["changes"]]))
        self.thread.clear()
        for c in v["thread"]:
            where = ""
            if c.get("anchor"):
                where = " [orphaned: its passage was deleted]" if c.get("orphaned") else f" [on “{c.get('quote', '')[:40]}”]"
            reply = f"↳ " if c.get("reply") else ""
            item = QListWidgetItem(f"{reply}{c['author'][:8]} (round {c['round']:,}){where}: {c['text']}")
            item.setData(Qt.ItemDataRole.UserRole, c["id"])
            self.thread.addItem(item)
        self._offer_revisions(v)
        self._compare()
        self._show_amendments(pid, v)
        self.window.door.call("blame", lambda ps: pid == self.pid and self.blame.setHtml(self._blame_html(ps)),
                              lambda e: self.blame.setPlainText(e), ref=pid)
        self._update_rights()

    def _offer_revisions(self, v: dict) -> None:
        """The revisions one may compare: the first text, the text the committee received (what
        its ballot names), each amendment, each change as it was made, and the latest."""
        changes = v.get("changes", [])
        options: list[tuple[str, list]] = []
        if changes:
            options.append(("the first text", [changes[0]["change"]]))
        if v.get("revision"):
            options.append(("the text on the ballot", list(v["revision"])))
        options += [(f"amendment {a['id'][:8]}: {a['summary'][:40]}", a["heads"]) for a in v.get("amendments", [])]
        options += [(f"after change {c['change'][:8]} by {c['author'][:8]} (round {c['round']:,})", [c["change"]])
                    for c in changes[1:]]
        options.append(("the latest text", []))
        if options == self._revisions:
            return
        keep = (self.diff_from.currentIndex(), self.diff_to.currentIndex()) if self._revisions else None
        self._revisions = options
        for combo in (self.diff_from, self.diff_to):
            combo.clear()
            combo.addItems([label for label, _ in options])
        if keep and max(keep) < len(options):
            self.diff_from.setCurrentIndex(keep[0])
            self.diff_to.setCurrentIndex(keep[1])
        else:
            self.diff_from.setCurrentIndex(1 if v.get("revision") and len(options) > 2 else 0)
            self.diff_to.setCurrentIndex(len(options) - 1)

    def _compare(self) -> None:
        pid = self.pid
        if not pid or not self._revisions:
            return
        before = self._revisions[self.diff_from.currentIndex()][1] or None
        after = self._revisions[self.diff_to.currentIndex()][1] or None
        self.window.door.call("diff", lambda ops: pid == self.pid and self._show_changes(ops),
                              lambda e: self.changes.setPlainText(e), ref=pid, before=before, after=after)

    def _show_changes(self, ops: list) -> None:
        key = json.dumps(ops)
        if key == getattr(self, "_changes_key", None):
            return  # unchanged: keep the reader's place
        self._changes_key = key
        self._changes_n, self._change_at = change_count(ops), 0
        self.changes.setHtml(diff_html(ops))

    def _jump(self, step: int) -> None:
        """Next or previous change in the Changes tab (F8, Shift+F8)."""
        if not self._changes_n:
            return
        self.tabs.setCurrentWidget(self.changes)
        self._change_at = (self._change_at - 1 + step) % self._changes_n + 1
        self.changes.scrollToAnchor(f"c{self._change_at}")
        self.window.say(f"Change {self._change_at} of {self._changes_n}.")

    def _show_amendments(self, pid: str, v: dict) -> None:
        amendments = v.get("amendments", [])
        if not amendments:
            self.amendments.setPlainText("No amendment has been proposed to this proposal.")
            return
        parts: dict[str, str] = {}

        def show() -> None:
            self.amendments.setHtml("".join(parts.get(a["id"], f"<h4>{html.escape(a['summary'])}</h4><p>…</p>") for a in amendments))

        base = v.get("revision") or None
        for a in amendments:
            def got(ops, a=a) -> None:
                parts[a["id"]] = (f"<h4>{html.escape(a['summary'])}</h4><p><small>by {a['author'][:8]}, cycle {a['cycle']}, "
                                  f"id {a['id'][:8]}</small></p>" + diff_html(ops))
                if pid == self.pid:
                    show()

            self.window.door.call("diff", got, self.window.say, ref=pid, before=base, after=a["heads"])
        show()

    @staticmethod
    def _blame_html(passages: list[dict]) -> str:
        colours = ["#e3f2fd", "#fce4ec", "#e8f5e9", "#fff3e0", "#ede7f6", "#e0f7fa"]
        authors: dict[str, int] = {}
        out = []
        for p in passages:
            n = authors.setdefault(p["author"], len(authors))
            out.append(f'<span style="background:{colours[n % len(colours)]}" title="{p["author"][:8]} at round '
                       f'{p["round"]}">{html.escape(p["text"]).replace(chr(10), "<br>")}</span>')
        legend = " ".join(f'<span style="background:{colours[n % len(colours)]}">{a[:8]}</span>' for a, n in authors.items())
        return f"<p>{legend}</p><div>{''.join(out)}</div>"

    def _update_rights(self) -> None:
        """What this person may do here, from the inbox the service computed."""
        items = [i for i in self.window.inbox if i.get("proposal") == self.pid]
        if self.window.observer:
            self.text.setReadOnly(True)
            self.edit_why.setText(OBSERVER_WHY)
        else:
            editing = any(i["kind"] == "seat" and "edit the text" in i["text"] for i in items)
            # its author may edit before a committee is drawn and with the drafting committee
            # (the service refuses, with a sentence, once the editing window has closed)
            own_draft = self.shown.get("author") == self.window.me and (
                self.shown.get("status") == "submitted"
                or (self.shown.get("status") == "in committee" and self.shown.get("stage") == 1))
            self.text.setReadOnly(not (editing or own_draft))
            self.edit_why.setText("" if not self.text.isReadOnly() else
                                  "Read-only: only its author (before a committee is drawn) and its drafting committee, "
                                  "while the editing window is open, edit a text. Comment in the thread instead.")
        self.save.setEnabled(not self.text.isReadOnly())
        ballots = [i for i in items if i["kind"] in ("vote", "amendment") and "open now" in i["text"]]
        self._set_ballot(ballots[0] if ballots else None)

    def _set_ballot(self, item: dict | None) -> None:
        self._ballot = item
        enabled = item is not None and not self.window_observer() and "being settled" not in item["text"]
        for b in (self.yes, self.no):
            b.setEnabled(enabled)
        if item is None:
            self.ballot.setText("No ballot of yours is open on this proposal." if not self.window_observer() else OBSERVER_WHY)
            self.yes.setText("&Promote")
            self.no.setText("&Kill")
            return
        first, second = self._choices(item)
        self.yes.setText(f"&{first.capitalize()}")
        self.no.setText(f"&{second.capitalize()}")
        revision = ",".join(h[:8] for h in self.shown.get("revision", []))
        self.ballot.setText(f"{item['text']} Closes {item['due']}. The ballot names revision {revision or '(settling)'}.")

    def window_observer(self) -> bool:
        return getattr(self.window, "observer", False)

    @staticmethod
    def _choices(item: dict) -> tuple[str, str]:
        if item["kind"] == "amendment":
            return "adopt", "reject"
        return ("yes", "no") if "Plenary" in item["text"] else ("promote", "kill")

    # ---- acts

    def _new_editor(self, pid: str) -> None:
        """A live co-editor for this proposal's text (read-only until the person may edit it)."""
        old = self.text
        if isinstance(old, CoEditor):
            old.stop()
        self.text = CoEditor(self.window.door.call, pid)
        self.text.setReadOnly(True)
        self.text.said.connect(self.window.say)
        self.text_box.replaceWidget(old, self.text)
        old.deleteLater()
        self.text.start()

    def _comment(self) -> None:
        text = self.comment_box.text().strip()
        if not text or not self.pid:
            return
        reply = self.thread.currentItem().data(Qt.ItemDataRole.UserRole) if self.thread.currentItem() else None
        cursor = self.text.textCursor()
        anchor = None
        if cursor.hasSelection():  # a comment on the selected passage (code points, not UTF-16 units)
            body = self.text.toPlainText()
            start, end = sorted((cursor.selectionStart(), cursor.selectionEnd()))
            anchor = ["body", len(_utf16_prefix(body, start)), len(_utf16_prefix(body, end))]

        def done(out):
            self.comment_box.clear()
            self.window.say(out["what"])
            self.refresh()

        self.window.door.call("comment", done, self.window.say, ref=self.pid, text=text, reply=reply, anchor=anchor)

    def _vote(self, which: int) -> None:
        """Confirm, then vote on the revision the ballot names.  If the text on the person's screen
        is another revision (it changed since they read it), the confirmation shows what differs."""
        item = self._ballot
        if item is None or not self.pid:
            return
        choice = self._choices(item)[which]
        revision = list(self.shown.get("revision", []))
        seen = list(getattr(self.text, "heads", []))
        if not item.get("amendment") and revision and seen and sorted(seen) != sorted(revision):
            self.window.door.call("diff", lambda ops: self._confirm(item, choice, revision, ops), self.window.say,
                                  ref=self.pid, before=seen, after=revision)
        else:
            self._confirm(item, choice, revision, None)

    def _confirm(self, item: dict, choice: str, revision: list, ops: list | None) -> None:
        text = (f"Vote {choice!r} on {self.shown.get('title', '')!r}?\n\nThe vote names revision "
                f"{','.join(h[:8] for h in revision) or '(the proposal itself)'}. A vote cannot be changed.")
        if ops:
            text += ("\n\nThe ballot's text differs from the one on your screen (it changed since you read it): "
                     "read the differences below before you confirm.")
        answer = QMessageBox.question(self, "Confirm your vote", text + ("\n\n" + diff_text(ops) if ops else ""))
        if answer != QMessageBox.StandardButton.Yes:
            return
        args = {"ref": self.pid, "choice": choice}
        if item.get("amendment"):
            args["amendment"] = item["amendment"]
        elif revision:
            args["revision"] = revision
        self.window.door.call("vote", lambda out: (self.window.say(out["what"]), self.window.refresh()), self.window.say, **args)


def diff_text(ops: list, limit: int = 1500) -> str:
    """A diff for a plain-text box: [-removed-] and {+added+}, around each change a little context."""
    out = []
    for op, text in ops:
        if op == "=":
            out.append(text if len(text) <= 80 else text[:30] + " … " + text[-30:])
        else:
            out.append(("[-" if op == "-" else "{+") + text + ("-]" if op == "-" else "+}"))
    joined = "".join(out)
    return joined if len(joined) <= limit else joined[:limit] + " …"


def apply_font(app, step: int) -> None:
    """The app's text size: the platform's default plus ``step`` points."""
    from PySide6.QtGui import QFont, QFontDatabase

    base = QFontDatabase.systemFont(QFontDatabase.SystemFont.GeneralFont).pointSizeF()
    font = QFont(app.font())
    font.setPointSizeF(max(6.0, base + step))
    app.setFont(font)


def _utf16_prefix(text: str, units: int) -> str:
    """The prefix of ``text`` that is ``units`` UTF-16 code units long (Qt's positions), as a
    ``str`` of code points (the service's and Automerge's)."""
    count = 0
    for i, ch in enumerate(text):
        if count >= units:
            return text[:i]
        count += 2 if ord(ch) > 0xFFFF else 1
    return text


STATUS_COLOURS = {"promoted": "#2e7d32", "killed": "#c62828", "not advanced": "#757575", "in committee": "#1565c0",
                  "passed": "#2e7d32", "failed": "#c62828", "in plenary": "#1565c0", "withdrawn": "#8d6e63"}


class Funnel(QWidget):
    """This cycle's funnel as a chart: a column per stage and the plenary, one block per proposal
    coloured by its outcome (and labelled, so colour is never the only cue)."""

    def __init__(self):
        super().__init__()
        self.data: dict = {}
        self.setMinimumHeight(220)
        _named(self, "Pipeline chart", "Each stage's proposals this cycle, by outcome")

    def show_pipeline(self, data: dict) -> None:
        self.data = data
        columns = [f"Stage {s['stage']} {s['name']}: " + ", ".join(f"{r['title']} {r['status']}" for r in s["proposals"])
                   for s in data.get("stages", [])]
        self.setAccessibleDescription("; ".join(columns))
        self.update()

    def paintEvent(self, event) -> None:
        from PySide6.QtGui import QPainter

        if not self.data:
            return
        painter = QPainter(self)
        columns = [(f"{s['stage']}. {s['name']}", f"{s['committee']} drawn, {s['slots']} slots", s["proposals"])
                   for s in self.data["stages"]] + [("Plenary", "all representatives", self.data["plenary"])]
        width = self.width() / max(1, len(columns))
        tallest = max([len(c[2]) for c in columns] + [1])
        block = max(14.0, min(28.0, (self.height() - 50) / tallest))
        text = self.palette().color(self.foregroundRole())
        for k, (name, sub, rows) in enumerate(columns):
            x = k * width + 6
            painter.setPen(text)
            painter.drawText(int(x), 14, name)
            painter.drawText(int(x), 28, sub)
            for n, row in enumerate(rows):
                y = 36 + n * block
                painter.fillRect(int(x), int(y), int(width - 12), int(block - 3), QColor(STATUS_COLOURS.get(row["status"], "#9e9e9e")))
                painter.setPen(QColor("white"))
                label = painter.fontMetrics().elidedText(f"{row['status']}: {row['title']}", Qt.TextElideMode.ElideRight,
                                                         int(width - 20))
                painter.drawText(int(x + 4), int(y + block - 8), label)
        painter.end()


class PipelineScreen(QWidget):
    def __init__(self, window: "MainWindow"):
        super().__init__()
        self.window = window
        layout = QVBoxLayout(self)
        self.heading = _named(QLabel("This cycle's pipeline"), "Pipeline heading")
        layout.addWidget(self.heading)
        self.funnel = Funnel()
        layout.addWidget(self.funnel, 1)
        self.tree = _named(QTreeWidget(), "Pipeline", "Each stage's proposals, outcome and why; Enter opens one")
        self.tree.setHeaderLabels(["Stage / proposal", "Outcome", "Why"])
        self.tree.itemActivated.connect(lambda row: row.data(0, Qt.ItemDataRole.UserRole) and
                                        self.window.open_proposal(row.data(0, Qt.ItemDataRole.UserRole)))
        layout.addWidget(self.tree, 1)
        self._last = None

    def refresh(self) -> None:
        self.window.door.call("pipeline", self._show, self.window.say)

    def _show(self, data: dict) -> None:
        self.funnel.show_pipeline(data)
        if data == self._last:
            return
        self._last = data
        self.heading.setText(f"<b>Cycle {data['cycle']}</b>: who advanced and why")
        self.tree.clear()
        for s in data["stages"] + [{"stage": "", "name": "Plenary", "slots": "", "proposals": data["plenary"]}]:
            head = QTreeWidgetItem([f"{s['stage']} {s['name']}".strip() + (f" ({s['slots']} slots)" if s["slots"] else ""), "", ""])
            self.tree.addTopLevelItem(head)
            for r in s["proposals"]:
                row = QTreeWidgetItem([r["title"] + (" (your seat)" if r.get("mine") else ""), r["status"], r["why"]])
                row.setData(0, Qt.ItemDataRole.UserRole, r["proposal"])
                head.addChild(row)
            head.setExpanded(True)
        self.tree.resizeColumnToContents(0)


class CommitteesScreen(QWidget):
    def __init__(self, window: "MainWindow"):
        super().__init__()
        self.window = window
        layout = QVBoxLayout(self)
        self.tree = _named(QTreeWidget(), "My committee seats", "Your seats, their members and votes once public; "
                                                                  "select one to see why you were drawn")
        self.tree.setHeaderLabels(["Seat / member", "Vote or outcome"])
        self.tree.currentItemChanged.connect(self._why)
        layout.addWidget(self.tree, 2)
        self.why = _named(QTextBrowser(), "Why this committee", "The beacon round, seed, roster and every pick, recomputed here")
        layout.addWidget(self.why, 1)
        self._last = None

    def refresh(self) -> None:
        self.window.door.call("seats", self._show, self.window.say)

    def _show(self, seats: list) -> None:
        if seats == self._last:
            return
        self._last = seats
        self.tree.clear()
        if not seats:
            self.tree.addTopLevelItem(QTreeWidgetItem(["You have not been drawn onto a committee yet.", ""]))
        for seat in seats:
            head = QTreeWidgetItem([f"{seat['title']} — cycle {seat['cycle']}, stage {seat['stage']}", seat["outcome"] or "open"])
            head.setData(0, Qt.ItemDataRole.UserRole, (seat["proposal"], seat["stage"]))
            for m in seat["members"]:
                you = " (you)" if m["key"] == self.window.me else ""
                head.addChild(QTreeWidgetItem([m["key"][:16] + "…" + you, m["vote"] or ""]))
            self.tree.addTopLevelItem(head)
        self.tree.setColumnWidth(0, max(380, self.tree.width() * 2 // 3))
        if seats and self.tree.currentItem() is None:
            self.tree.setCurrentItem(self.tree.topLevelItem(0))  # why the newest seat, at once

    def _why(self, row, _previous=None) -> None:
        key = row.data(0, Qt.ItemDataRole.UserRole) if row else None
        if not key:
            return

        def show(v: dict) -> None:
            picks = "".join(f"<li>pick {p['position']}: roster position {p['roster_index']} = {p['key'][:12]}… — "
                            f"{html.escape(p['outcome'])}</li>" for p in v["picks"])
            self.why.setHtml(f"<p>{html.escape(v['sentence'])}</p><p>Beacon round {v['beacon_round']:,}; randomness "
                             f"<code>{v['randomness'][:32]}…</code>; seed <code>{v['seed'][:32]}…</code>; "
                             f"roster of {v['roster_size']}. Recomputed on this machine.</p><ol>{picks}</ol>")

        self.window.door.call("explain", show, self.window.say, ref=key[0], stage=key[1])


RECORD_GROUPS = (("seat", "Seats held", "Each cycle on the certified roster, proved by the boundary's certificate"),
                 ("vote", "Votes", "Each with the revision it named"),
                 ("attendance", "Attendance", ""),
                 ("proposal", "Proposals", ""),
                 ("amendment", "Amendments proposed", ""),
                 ("text", "Texts co-written", ""),
                 ("answer", "Answers to constituents", "In their constituency's thread, each with the question"),
                 ("post", "Other posts in constituency threads", ""),
                 ("absence", "Absences declared", ""))
EXPORTS = {".atom": "atom", ".xml": "atom", ".html": "html", ".htm": "html", ".json": "json"}
FORMAT_NAMES = {"atom": "an Atom feed", "html": "a web page", "json": "JSON"}


def record_html(record: dict, committees: dict | None = None, standing: dict | None = None) -> str:
    """A representative's public record as a page grouped by kind (seats, votes with revision,
    attendance, proposals, texts, answers…), each entry with how many signed events prove it; the
    committees sat on and whether each vote counted come from the service's ``record`` view."""
    counted = {}
    for v in (committees or {}).get("votes", []):
        counted[(v["proposal"], v["cycle"], v["stage"], v["amendment"], tuple(v["revision"]))] = v["counted"]
    who = f"Record of {html.escape(record['key'][:16])}…"
    if record["key"] == (standing or {}).get("me"):
        who += " (yours)"
    st = standing or {}
    where = ""
    if st.get("constituency_name"):
        where = f"Member of {html.escape(st['constituency_name'])}"
        where += f"; holds a seat in cycle {st.get('cycle')}." if st.get("seated") else "; holds no seat this cycle."
    out = [f"<h3>{who}</h3><p>{where} {html.escape(record['name'])}, up to beacon round {record['round']:,}. Every entry "
           "carries the signed events that prove it; Export saves them to check offline (<code>klero verify-record FILE</code>).</p>"]
    by_kind: dict[str, list] = {}
    for e in record["entries"]:
        by_kind.setdefault(e["kind"], []).append(e)
    known = {k for k, _, _ in RECORD_GROUPS}
    groups = list(RECORD_GROUPS) + [(k, k.capitalize(), "") for k in by_kind if k not in known]
    for kind, title, note in groups:
        entries = by_kind.get(kind, [])
        if not entries and kind not in ("seat", "vote", "attendance"):
            continue
        rows = []
        for e in entries:
            c = e["claim"]
            text = html.escape(e["text"])
            if kind == "vote":
                key = (c.get("proposal"), c.get("cycle"), c.get("stage"), c.get("amendment"), tuple(c.get("revision", [])))
                if counted.get(key) is False:
                    text += " — <i>did not count</i>"
            if kind == "answer" and c.get("question"):
                text = f"Asked: “{html.escape(c['question'])}” — answered: “{html.escape(c['text'])}”"
            if c.get("derived"):
                text += f" <small>({html.escape(c['derived'])})</small>"
            proof = f"{len(e['events'])} signed event(s)" if e["events"] else "derived"
            rows.append(f"<li>{text} <small>— round {e['round']:,}; {proof}</small></li>")
        out.append(f"<h4>{title} ({len(entries)})</h4>" + (f"<p><small>{note}</small></p>" if note and entries else "")
                   + ("<ul>" + "".join(rows) + "</ul>" if rows else "<p>None.</p>"))
    seats = (committees or {}).get("seats", [])
    if seats:
        out.append(f"<h4>Committees sat on ({len(seats)})</h4><ul>" + "".join(
            f"<li>{html.escape(x['title'])} — cycle {x['cycle']}, stage {x['stage']}</li>" for x in seats) + "</ul>")
    return "".join(out)


class RecordScreen(QWidget):
    """A representative's public record, as constituents read it: one's own by default, or anyone's
    by key ("See their record" on the constituency screen fills it in); exported as Atom, HTML or
    JSON, each entry with the signed events that prove it, to be checked offline."""

    STALE = 15.0  # seconds: a record is built from the whole log, so the timer does not rebuild it each tick

    def __init__(self, window: "MainWindow"):
        super().__init__()
        self.window = window
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.key = _named(QLineEdit(), "Representative's key", "Empty for your own record; a public key for anyone's")
        self.key.setPlaceholderText("Your record; or paste a representative's public key and press Enter")
        self.key.returnPressed.connect(lambda: self.refresh(force=True))
        row.addWidget(self.key, 1)
        self.mine = _named(QPushButton("M&y record"), "My record", "Show your own record")
        self.mine.clicked.connect(lambda: self.show_key(""))
        row.addWidget(self.mine)
        self.export_button = _named(QPushButton("E&xport…"), "Export the record",
                                    "Save it as an Atom feed, a web page or JSON, with the signed events that prove each entry")
        self.export_button.clicked.connect(self.export)
        row.addWidget(self.export_button)
        layout.addLayout(row)
        self.view = _named(QTextBrowser(), "Record", "Seats, votes with the revision named, attendance, proposals, "
                                                     "texts written, answers to constituents")
        layout.addWidget(self.view)
        self.record: dict | None = None
        self._committees: dict | None = None
        self._standing: dict | None = None
        self._fetched: tuple[str | None, float] | None = None
        self._html = ""

    def show_key(self, key: str) -> None:
        """Show the record of ``key`` ("" for one's own) now."""
        self.key.setText(key)
        self.refresh(force=True)

    def _key(self) -> str | None:
        key = self.key.text().strip().lower()
        if key and (len(key) != 64 or any(ch not in "0123456789abcdef" for ch in key)):
            self.window.say("A representative's key is 64 hex characters (the constituency screen's “See their record” "
                            "fills it in).")
            return ""
        return key or None

    def refresh(self, force: bool = False) -> None:
        import time

        key = self._key()
        if key == "":
            return
        if not force and self._fetched and self._fetched[0] == key and time.monotonic() - self._fetched[1] < self.STALE:
            return
        if not self._fetched or self._fetched[0] != key:
            self.record = self._committees = self._standing = None
        self._fetched = (key, time.monotonic())
        self.window.door.call("public_record", lambda text: self._got(key, "record", json.loads(text)), self._failed, key=key,
                              format="json")
        self.window.door.call("record", lambda r: self._got(key, "committees", r), lambda _e: None, key=key)
        self.window.door.call("standing", lambda s: self._got(key, "standing", s), lambda _e: None, key=key)

    def _failed(self, sentence: str) -> None:
        self.window.say(sentence)
        self.view.setPlainText(sentence)
        self._html = ""

    def _got(self, key: str | None, what: str, value: dict) -> None:
        if self._fetched is None or self._fetched[0] != key:
            return  # an answer for a key no longer shown
        if what == "record":
            self.record = value
        elif what == "committees":
            self._committees = value
        else:
            self._standing = {**value, "me": self.window.me}
        if self.record is None or (key and self.record["key"] != key):
            return
        page = record_html(self.record, self._committees if (self._committees or {}).get("key") == self.record["key"] else None,
                           self._standing if (self._standing or {}).get("key") == self.record["key"] else None)
        if page != self._html:  # unchanged: keep the reader's place
            self._html = page
            self.view.setHtml(page)

    def export(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        who = (self.record or {}).get("key", "record")[:12]
        path, chosen = QFileDialog.getSaveFileName(self, "Export the record", f"record-{who}.atom",
                                                   "Atom feed (*.atom);;Web page (*.html);;JSON record (*.json)")
        if path:
            fmt = EXPORTS.get(Path(path).suffix.lower()) or ("html" if "html" in chosen else "json" if "json" in chosen else "atom")
            self.save(path, fmt)

    def save(self, path: str | Path, fmt: str | None = None) -> None:
        """Save the shown record to ``path`` as Atom, HTML or JSON (from its suffix unless ``fmt``)."""
        fmt = fmt or EXPORTS.get(Path(path).suffix.lower(), "json")
        key = self._key()
        if key == "":
            return

        def write(text: str) -> None:
            try:
                Path(path).write_text(text, encoding="utf-8")
            except OSError as exc:
                self.window.say(f"Could not save the record to {path}: {exc.strerror or exc}.")
                return
            self.window.say(f"Saved the record as {FORMAT_NAMES[fmt]} to {path}; anyone can check it offline with "
                            f"klero verify-record {Path(path).name}.")

        self.window.door.call("public_record", write, self.window.say, key=key, format=fmt)


def sync_state(status: dict | None) -> str:
    """An honest sentence for the node's state: never "current" unless it is."""
    if not status:
        return "offline: the node has not reported yet"
    caught_up = (status.get("duties") or {}).get("caught_up", status.get("caught_up"))
    beacon = (status.get("beacon") or {}).get("sentence", "")
    if not status.get("peers"):
        state = "offline: no peer connected" if not caught_up else "alone: no peer connected (the first node of a network)"
    elif caught_up is False:
        state = f"catching up from {status['peers']} peer(s)"
        if status.get("currency"):  # e.g. why a whole sync did not count: the peer was stale too
            state += f". {status['currency']}"
    else:
        state = f"current with {status['peers']} peer(s)"
    if "STALLED" in beacon.upper() or "stalled" in beacon:
        state += f"; {beacon}"
    return state


class NetworkScreen(QWidget):
    def __init__(self, window: "MainWindow"):
        super().__init__()
        self.window = window
        layout = QVBoxLayout(self)
        self.view = _named(QTextBrowser(), "Network and audit", "The node's sync state, peers, beacon and state hash")
        layout.addWidget(self.view)
        self.deadlines = _named(QTreeWidget(), "This cycle's deadlines", "Each deadline, its panel and its certificate")
        self.deadlines.setHeaderLabels(["Deadline", "When", "Panel"])
        layout.addWidget(self.deadlines)
        self.reach = _named(QTextBrowser(), "Reach and proofs", "Which peers hold your latest acts; equivocation proofs")
        layout.addWidget(self.reach)
        self._last = None

    def refresh(self) -> None:
        self.window.door.call("deadlines", self._show_deadlines, self.window.say)
        self.window.door.call("reach", self._show_reach, self.window.say)

    def _show_reach(self, r: dict) -> None:
        acts = "".join(f"<li>#{a['seq']} {a['kind']} (round {a['round']:,}): held by {a['holding']} of {a['peers']} "
                       f"peer(s) at their last sync</li>" for a in r["acts"])
        proofs = "".join(f"<li>{p['author'][:16]}… signed two events at seq {p['seq']} (the proof is kept)</li>"
                         for p in r["equivocations"])
        self.reach.setHtml(f"<h4>Where your latest acts reached</h4><ul>{acts or '<li>none yet</li>'}</ul>"
                           f"<h4>Equivocation proofs</h4><ul>{proofs or '<li>none: nobody signed two versions of an event</li>'}</ul>")

    def _show_deadlines(self, rows: list) -> None:
        if rows == self._last:
            return
        self._last = rows
        self.deadlines.clear()
        for r in rows:
            what = f"{r['what']}" + (f", stage {r['stage']}" if r["stage"] else "")
            panel = (f"decided by generation {r['generation']} in agreement round {r['agreement_round']}, "
                     f"certificate of {r['signers']} signatures" if r["decided"] and r.get("agreement_round") is not None
                     else ("decided" if r["decided"] else r.get("state", "")))
            self.deadlines.addTopLevelItem(QTreeWidgetItem([what, r["when"], panel]))
        for column in range(2):
            self.deadlines.resizeColumnToContents(column)

    def show_status(self, overview: dict, status: dict | None) -> None:
        rows = [("Assembly", f"{overview.get('name', '')} ({overview.get('assembly', '')[:16]}…)"),
                ("Cycle", overview.get("cycle")), ("Beacon round", f"{overview.get('round', 0):,}"),
                ("Next", overview.get("waiting") or "—"), ("Outbox", overview.get("outbox"))]
        rows.insert(0, ("Sync", sync_state(status)))
        if status:
            beacon = status.get("beacon") or {}
            rows += [("Peers", status.get("peers")), ("Reachable", (status.get("reachable") or {}).get("sentence", "")),
                     ("Events", status.get("events")),
                     ("Pending", status.get("pending")), ("Beacon", beacon.get("sentence", "")),
                     ("Refused (gossip/sync)", f"{status.get('gossip_refused', 0)}/{status.get('sync_refused', 0)}"),
                     ("State hash", status.get("state_hash", "")), ("Address", status.get("address", ""))]
        else:
            rows.append(("Node", "no status yet"))
        try:
            log = (self.window.folder / "app.log").read_text(encoding="utf-8").splitlines()[-12:]
        except OSError:
            log = []
        self.view.setHtml("<table>" + "".join(f"<tr><td><b>{html.escape(str(k))}</b></td><td>{html.escape(str(v))}</td></tr>"
                                             for k, v in rows) + "</table>"
                          + ("<h4>What happened (app.log)</h4><pre>" + html.escape("\n".join(log)) + "</pre>" if log else ""))


class SettingsScreen(QWidget):
    """The profile, its key, the node's peers, the theme, and whether the node keeps running."""

    def __init__(self, window: "MainWindow"):
        super().__init__()
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout

        self.window = window
        self.store = QSettings("Kleroterion", "app")
        form = QFormLayout(self)
        self.key = _named(QLineEdit(), "Your public key", "Safe to share; select and copy it")
        self.key.setReadOnly(True)
        form.addRow("Public key:", self.key)
        self.folder = _named(QLabel(str(window.folder)), "Profile folder")
        self.folder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Profile folder:", self.folder)
        self.theme = _named(QComboBox(), "Theme")
        self.theme.addItems(["Light", "Dark"])
        self.theme.view().setAccessibleName("Themes")
        self.theme.setCurrentIndex(1 if self.store.value("theme", "light") == "dark" else 0)
        self.theme.currentIndexChanged.connect(self._theme)
        form.addRow("&Theme:", self.theme)
        self.keep = _named(QCheckBox("Keep my node running when this window closes (panel duties go on)"),
                           "Keep the node running")
        self.keep.setChecked(self.store.value("keep_node", "false") == "true")
        self.keep.toggled.connect(lambda on: self.store.setValue("keep_node", "true" if on else "false"))
        form.addRow(self.keep)
        self.peers = _named(QPlainTextEdit(), "Bootstrap peers", "One /ip4/…/tcp/…/p2p/… address a line; used at the next start")
        self.peers.setMaximumHeight(90)
        form.addRow("&Peers to dial:", self.peers)
        save = _named(QPushButton("Save peers"), "Save peers")
        save.clicked.connect(self._save_peers)
        form.addRow(save)
        backup = _named(QPushButton("Save an encrypted &backup of my key…"), "Save an encrypted backup")
        backup.clicked.connect(self._backup)
        form.addRow(backup)
        change = _named(QPushButton("&Change my passphrase…"), "Change the passphrase")
        change.clicked.connect(self._change)
        form.addRow(change)
        self._load()

    def _profile(self):
        from p2p import profile

        return profile.Profile(self.window.folder.name, self.window.folder)

    def _load(self) -> None:
        from consensus.errors import KleroError

        p = self._profile()
        try:
            self.key.setText(p.public_key().hex())
            self.peers.setPlainText("\n".join(p.settings().get("bootstrap", [])))
        except KleroError as exc:
            self.window.say(exc.message)

    def refresh(self) -> None:
        return None

    def _theme(self, index: int) -> None:
        from PySide6.QtWidgets import QApplication

        from .theme import apply_theme

        self.store.setValue("theme", "dark" if index else "light")
        apply_theme(QApplication.instance(), bool(index))

    def _save_peers(self) -> None:
        from consensus.errors import KleroError

        p = self._profile()
        peers = [line.strip() for line in self.peers.toPlainText().splitlines() if line.strip()]
        bad = [a for a in peers if not (a.startswith("/") and "/p2p/" in a)]
        if bad:
            self.window.say(f"{bad[0]!r} is not a peer address: it must look like /ip4/HOST/tcp/PORT/p2p/PEER-ID.")
            return
        try:
            settings = p.settings()
            settings["bootstrap"] = peers
            p.settings_path.write_text(json.dumps(settings, indent=2) + "\n")
            self.window.say("Saved; your node dials these peers from its next start.")
        except (KleroError, OSError) as exc:
            self.window.say(getattr(exc, "message", None) or str(exc))

    def _backup(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        from p2p import profile

        path, _ = QFileDialog.getSaveFileName(self, "Save an encrypted backup of your key", f"{self.window.folder.name}.key")
        if path:
            profile.backup(self._profile(), path)
            self.window.say(f"Saved an encrypted backup to {path}; it needs your passphrase to restore.")

    def _change(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        from consensus.errors import KleroError
        from p2p import profile

        old, ok = QInputDialog.getText(self, "Change your passphrase", "Current passphrase:", QLineEdit.EchoMode.Password)
        if not ok:
            return
        new, ok = QInputDialog.getText(self, "Change your passphrase", "New passphrase (8 characters or more):",
                                       QLineEdit.EchoMode.Password)
        if not ok:
            return
        again, ok = QInputDialog.getText(self, "Change your passphrase", "The new passphrase again:", QLineEdit.EchoMode.Password)
        if not ok or again != new:
            self.window.say("The two new passphrases differ; nothing was changed.")
            return
        try:
            profile.change_passphrase(self._profile(), old, new)
            self.window.say("Your passphrase is changed; your key and identity are the same.")
        except KleroError as exc:
            self.window.say(exc.message)


def notices(items: list[dict], round_: int, told: set, soon: int = 20) -> list[tuple[str, str]]:
    """What to notify the person of (title, text), once each: a new seat, a new ballot, and a
    ballot of theirs closing within ``soon`` rounds.  ``told`` remembers what was said."""
    out = []
    for i in items:
        key = (i["kind"], i.get("proposal"), i.get("amendment"), i.get("due_round"))
        if i["kind"] in ("seat", "vote", "amendment") and key not in told:
            told.add(key)
            out.append(("You were drawn onto a committee" if i["kind"] == "seat" else "A ballot is waiting for you",
                        f"{i.get('title', '')}: {i['text']}"))
        due = i.get("due_round")
        closing = ("closing",) + key
        if i["kind"] in ("vote", "amendment") and due is not None and 0 <= due - round_ <= soon and closing not in told:
            told.add(closing)
            out.append(("A ballot closes soon", f"{i.get('title', '')} closes {i['due']}; you have not voted."))
    return out


class MainWindow(QMainWindow):
    def __init__(self, door, folder: Path, *, observer: bool = False, title: str = "Kleroterion"):
        super().__init__()
        self.door, self.folder, self.observer = door, folder, observer
        self.me = ""
        self.inbox: list[dict] = []
        self.overview: dict = {}
        self.setWindowTitle(title + (" — observer" if observer else ""))
        self.resize(1100, 720)
        central = QWidget()
        layout = QHBoxLayout(central)
        self.nav = _named(QListWidget(), "Screens", "Inbox, proposals, pipeline, committees, constituency, record, network, "
                                                    "settings; Ctrl+1 to Ctrl+8")
        self.nav.setFixedWidth(150)
        self.stack = QStackedWidget()
        from .constituency import ConstituencyScreen  # it builds on this module's helpers

        self.inbox_screen = InboxScreen(self)
        self.proposals = ProposalScreen(self)
        self.pipeline = PipelineScreen(self)
        self.committees = CommitteesScreen(self)
        self.constituency = ConstituencyScreen(self)
        self.record = RecordScreen(self)
        self.network = NetworkScreen(self)
        self.settings = SettingsScreen(self)
        for n, (name, screen) in enumerate((("Inbox", self.inbox_screen), ("Proposals", self.proposals),
                                            ("Pipeline", self.pipeline), ("Committees", self.committees),
                                            ("Constituency", self.constituency), ("Record", self.record),
                                            ("Network", self.network), ("Settings", self.settings)), 1):
            self.nav.addItem(name)
            self.stack.addWidget(screen)
            action = QAction(name, self)
            action.setShortcut(QKeySequence(f"Ctrl+{n}"))
            action.triggered.connect(lambda _=False, k=n - 1: self.nav.setCurrentRow(k))
            self.addAction(action)
        for keys, what in (("F1", self.shortcuts), ("Ctrl+=", lambda: self.scale(1)), ("Ctrl++", lambda: self.scale(1)),
                           ("Ctrl+-", lambda: self.scale(-1)), ("Ctrl+0", lambda: self.scale(0))):
            action = QAction(self)
            action.setShortcut(QKeySequence(keys))
            action.triggered.connect(what)
            self.addAction(action)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.nav.currentRowChanged.connect(lambda _: self.refresh())
        # an observer is a constituent: their acts are on the constituency screen
        self.nav.setCurrentRow(self.stack.indexOf(self.constituency) if observer else 0)
        layout.addWidget(self.nav)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.statusBar().showMessage("Connecting to your node…")
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(1500)
        self.refresh()

    SHORTCUTS = (("Ctrl+1 … Ctrl+8", "Inbox, Proposals, Pipeline, Committees, Constituency, Record, Network, Settings"),
                 ("Enter", "open the selected inbox item or proposal"),
                 ("Alt+T, Alt+C, Alt+B, Alt+H, Alt+I, Alt+M", "the workspace's tabs: Text, Changes, Blame, Thread, History, Amendments"),
                 ("F8, Shift+F8", "next and previous change in Changes"),
                 ("Alt+P / Alt+K, Alt+Y / Alt+N, Alt+A / Alt+R", "vote: promote or kill, yes or no, adopt or reject (a confirmation follows)"),
                 ("Alt+S", "sign your edits now (they are signed after a pause anyway)"),
                 ("Alt+J, Alt+F, Alt+E (Alt+O), Alt+M, Alt+Y / Alt+N, Alt+L, Alt+A, Alt+P, Alt+R",
                  "constituency: join, found, endorse (nominate) the selected member, endorse me, willing to serve yes / no, "
                  "leave, ask, reply to the selected post, see their record"),
                 ("Alt+Y, Alt+X", "record: your own; export the one shown (Atom, HTML or JSON)"),
                 ("Ctrl+= , Ctrl+- , Ctrl+0", "larger, smaller, default text"),
                 ("F1", "this sheet"))

    def shortcuts(self) -> None:
        """The shortcut sheet (F1)."""
        QMessageBox.information(self, "Keyboard shortcuts", "\n".join(f"{k}:  {v}" for k, v in self.SHORTCUTS))

    def scale(self, step: int) -> None:
        """Font scaling for the whole app: larger, smaller, or back to the default (kept)."""
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        store = QSettings("Kleroterion", "app")
        size = 0 if step == 0 else int(store.value("font_step", 0)) + step
        size = max(-4, min(12, size))
        store.setValue("font_step", size)
        apply_font(QApplication.instance(), size)
        self.say(f"Text size {'default' if size == 0 else f'{size:+d} points'}.")

    def say(self, sentence: str) -> None:
        """An outcome or an error sentence, where the person looks (the status bar), and kept in
        the profile's ``app.log`` (the network screen shows its end)."""
        self.statusBar().showMessage(sentence)
        if sentence != getattr(self, "_last_said", None):
            self._last_said = sentence
            try:
                import time

                with open(self.folder / "app.log", "a", encoding="utf-8") as log:
                    log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {sentence}\n")
            except OSError:
                pass  # a read-only profile folder must not stop the app

    def refresh(self) -> None:
        self.door.call("overview", self._overview, self.say)
        self.door.call("inbox", self._inbox, self.say)
        self.door.call("proposals", self.proposals.show_list, self.say)
        current = self.stack.currentWidget()
        if current is self.proposals:
            self.proposals.refresh()
        elif current in (self.pipeline, self.committees, self.constituency, self.record, self.network):
            current.refresh()
        status = None
        try:
            status = json.loads((self.folder / "node-status.json").read_text())
        except (OSError, ValueError):
            pass
        self.network.show_status(self.overview, status)

    def _overview(self, overview: dict) -> None:
        if not self.overview:
            self.say(f"Connected to your node: {overview.get('name', '')}, beacon round {overview.get('round', 0):,}.")
        self.overview = overview
        self.me = overview.get("me") or ""

    def _inbox(self, items: list[dict]) -> None:
        first = not hasattr(self, "_told")
        if first:
            self._told: set = set()
        said = notices(items, self.overview.get("round", 0), self._told)
        if not first:  # what was already there when the app opened is in the inbox, not news
            for title, text in said:
                self.notify(title, text)
        self.inbox = items
        self.inbox_screen.show_inbox(self.overview, items)

    def notify(self, title: str, text: str) -> None:
        """A desktop notification where the platform has a tray, else the status bar."""
        from PySide6.QtWidgets import QSystemTrayIcon

        if QSystemTrayIcon.isSystemTrayAvailable():
            if not hasattr(self, "_tray"):
                self._tray = QSystemTrayIcon(self.windowIcon(), self)
                self._tray.show()
            self._tray.showMessage(title, text)
        self.say(f"{title}: {text}")

    def open_proposal(self, pid: str) -> None:
        self.nav.setCurrentRow(1)
        item = self.proposals._rows.get(pid)
        if item is not None:
            self.proposals.list.setCurrentItem(item)
        self.proposals.open(pid)

    def open_record(self, key: str) -> None:
        """The Record screen, showing ``key``'s record ("See their record")."""
        self.record.show_key(key)  # first: the screen's own refresh then finds it fresh
        self.nav.setCurrentRow(self.stack.indexOf(self.record))

    def closeEvent(self, event) -> None:
        self.timer.stop()
        if isinstance(self.proposals.text, CoEditor):
            self.proposals.text.stop()
        self.door.close()
        super().closeEvent(event)
