"""The constituent's screen: one's standing, the constituencies, and one constituency's members,
seat and thread (issue 15).

Everything here is a constituency act (join, found, leave, endorse, say yes or no to serving,
ask and answer), which an observer's node signs too: a constituent who holds no seat runs an
observer, and this screen is where they act.  Legislation stays disabled elsewhere.  Seats change
only at cycle boundaries, so what the acts so far make of the next boundary is shown beside the
seat as it stands.  Every refusal is the service's sentence, said through the window's ``say``.
"""

from __future__ import annotations

import html
import textwrap

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .window import _named

PRIVACY = ("Posts are signed with your key and public: anyone who holds the assembly's log can read them, "
           "now and later, and they appear in the record of whoever wrote them.")
BOUNDARY = "Seats change only at cycle boundaries: until the next one, the seat stays with whoever holds it now."


def short(key: str | None, me: str = "") -> str:
    """A key as people see it until keys have names: its first characters, and "you" for one's own."""
    if not key:
        return "nobody"
    return "you" if me and key == me else key[:8] + "…"


def standing_sentence(st: dict) -> str:
    """A person's standing in plain sentences: certified or not (and what to do), member of,
    endorsing, willing to serve, seated now and at the next boundary."""
    if not st.get("constituencies"):
        return "This assembly's charter has no constituencies: its founding roster holds every seat."
    me = st.get("key", "")
    out = []
    if st.get("replaced_by"):
        out.append(f"This key was replaced by a newer one of yours ({st['replaced_by'][:12]}…): act with the new key.")
    elif not st.get("vouched"):
        out.append(f"No registrar has certified your key yet: give a registrar your public key ({me}) and proof that "
                   "you are eligible; you can act once they sign.")
    elif not st.get("certified"):
        out.append(f"Your key is not (or no longer) certified by {st.get('threshold', 1)} registrar(s), so your acts "
                   "would count for nothing: ask the registrars to certify it again.")
    else:
        out.append(f"Certified by {len(st.get('registrars', []))} registrar(s).")
    if st.get("constituency_name"):
        out.append(f"Member of <b>{html.escape(st['constituency_name'])}</b>.")
    elif st.get("grouping") == "random":
        out.append("In no constituency yet: under this charter the lot places you at the next boundary.")
    else:
        out.append("In no constituency: join one below, or found one.")
    verb = "Nominating" if st.get("rule") == "draw" else "Endorsing"
    if st.get("endorsing"):
        out.append(f"{verb} {'yourself' if st['endorsing'] == me else short(st['endorsing'])}.")
    elif st.get("constituency_name"):
        out.append(f"{verb} nobody yet.")
    out.append("Willing to serve." if st.get("willing") else "Not willing to serve (say yes to be seated if chosen).")
    now = f"You hold a seat in cycle {st.get('cycle', 0)}" if st.get("seated") else "You hold no seat now"
    later = "the next boundary would seat you" if st.get("seated_next") else "the acts so far would not seat you at the next boundary"
    out.append(f"{now}; {later}.")
    problems = st.get("problems") or []
    if problems:
        out.append(f"{len(problems)} of your acts count for nothing; the latest: {html.escape(problems[-1]['reason'])}")
    return " ".join(out)


class ConstituencyScreen(QWidget):
    """Standing on top; the constituencies on the left (join, found); one constituency on the right:
    its statement, seat, members (endorse, serve, leave, see their record) and thread (ask, reply)."""

    def __init__(self, window):
        super().__init__()
        self.window = window
        self.gid: str | None = None  # the constituency shown on the right
        self.detail: dict = {}
        self.st: dict = {}
        self._rows: list | None = None
        self._members: list | None = None
        self._thread: list | None = None
        layout = QVBoxLayout(self)
        self.standing = _named(QLabel("Asking your node for your standing…"), "Your standing",
                               "Certified or not, your constituency, whom you endorse, whether you serve, your seat")
        self.standing.setWordWrap(True)
        self.standing.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.standing)
        split = QSplitter(self)
        layout.addWidget(split, 1)

        # ---- the constituencies
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        title = QLabel("<b>Constituencies</b> (yours marked ●)")
        lv.addWidget(title)
        self.list = _named(QTreeWidget(), "Constituencies", "Each constituency, its members, its seat holder and what "
                                                            "the next boundary makes of it; yours is marked")
        self.list.setHeaderLabels(["Constituency", "Members", "Seat holder", "At the next boundary"])
        self.list.setRootIsDecorated(False)
        self.list.currentItemChanged.connect(self._picked)
        title.setBuddy(self.list)
        lv.addWidget(self.list, 1)
        self.join = _named(QPushButton("&Join the selected constituency"), "Join the selected constituency",
                           "One constituency at a time; leave yours first to change")
        self.join.clicked.connect(self._join)
        lv.addWidget(self.join)
        lv.addWidget(QLabel("Found a new one (you become its first member):"))
        self.found_name = _named(QLineEdit(), "New constituency's name")
        self.found_name.setPlaceholderText("Name, e.g. Riverside")
        self.found_statement = _named(QLineEdit(), "New constituency's statement", "What its members have in common")
        self.found_statement.setPlaceholderText("What its members have in common")
        self.found_statement.returnPressed.connect(self._found)
        self.found = _named(QPushButton("&Found"), "Found a constituency")
        self.found.clicked.connect(self._found)
        lv.addWidget(self.found_name)
        row = QHBoxLayout()
        row.addWidget(self.found_statement, 1)
        row.addWidget(self.found)
        lv.addLayout(row)
        split.addWidget(left)

        # ---- one constituency
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        self.title = _named(QLabel("Choose a constituency."), "Constituency name and statement")
        self.title.setWordWrap(True)
        rv.addWidget(self.title)
        self.seat = _named(QLabel(""), "The seat now and at the next boundary")
        self.seat.setWordWrap(True)
        rv.addWidget(self.seat)
        self.members = _named(QTreeWidget(), "Members", "Each member, how many endorse them, whether they are willing "
                                                        "to serve and who holds the seat; select one to endorse them")
        self.members.setHeaderLabels(["Member", "Support", "Willing", "Seat", "Endorses"])
        self.members.setRootIsDecorated(False)
        self.members.currentItemChanged.connect(lambda *_: self._update_buttons())
        rv.addWidget(self.members, 2)
        acts = QHBoxLayout()
        self.endorse = _named(QPushButton("&Endorse selected"), "Endorse the selected member",
                              "Your endorsement of one member of your constituency; you may change it")
        self.endorse.clicked.connect(self._endorse_selected)
        self.endorse_me = _named(QPushButton("Endorse &me"), "Endorse yourself")
        self.endorse_me.clicked.connect(lambda: self._act("endorse", member="me"))
        self.record = _named(QPushButton("See their &record"), "See their record",
                             "The public record of the selected member, or of the seat holder if none is selected")
        self.record.clicked.connect(self._see_record)
        for b in (self.endorse, self.endorse_me, self.record):
            acts.addWidget(b)
        acts.addStretch(1)
        rv.addLayout(acts)
        serve = QHBoxLayout()
        serve.addWidget(QLabel("Willing to serve if chosen:"))
        self.yes = _named(QPushButton("&Yes"), "Willing to serve: yes", "You can be seated if your constituency chooses you")
        self.yes.clicked.connect(lambda: self._act("serve", answer="yes"))
        self.no = _named(QPushButton("&No"), "Willing to serve: no", "You will not be seated; a seat you hold ends at the next boundary")
        self.no.clicked.connect(lambda: self._act("serve", answer="no"))
        self.leave = _named(QPushButton("&Leave my constituency"), "Leave my constituency",
                            "Your endorsement goes with you; seats change at the next boundary")
        self.leave.clicked.connect(lambda: self._act("leave"))
        for b in (self.yes, self.no):
            serve.addWidget(b)
        serve.addStretch(1)
        serve.addWidget(self.leave)
        rv.addLayout(serve)
        heading = QLabel("<b>Thread</b>: questions to the representative and answers (★ the representative's)")
        rv.addWidget(heading)
        self.thread = _named(QTreeWidget(), "Thread", "Members' posts, oldest first, replies under what they answer; "
                                                      "the representative's posts are marked")
        self.thread.setHeaderLabels(["By", "Post"])
        self.thread.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.thread.itemActivated.connect(lambda *_: self.ask_box.isEnabled() and self.ask_box.setFocus())  # Enter: reply
        heading.setBuddy(self.thread)
        rv.addWidget(self.thread, 3)
        self.privacy = _named(QLabel(PRIVACY), "Posts are public")
        self.privacy.setWordWrap(True)
        rv.addWidget(self.privacy)
        ask = QHBoxLayout()
        self.ask_box = _named(QLineEdit(), "Your post", "A question to your representative; Enter posts it. Signed and public.")
        self.ask_box.returnPressed.connect(lambda: self._post(reply=False))
        self.ask = _named(QPushButton("&Ask"), "Ask", "Post a new question in your constituency's thread")
        self.ask.clicked.connect(lambda: self._post(reply=False))
        self.reply = _named(QPushButton("Re&ply to selected"), "Reply to the selected post")
        self.reply.clicked.connect(lambda: self._post(reply=True))
        ask.addWidget(self.ask_box, 1)
        ask.addWidget(self.ask)
        ask.addWidget(self.reply)
        rv.addLayout(ask)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setSizes([520, 600])  # the list's four columns fit; the thread takes the rest
        self._update_buttons()

    # ---- views

    def refresh(self) -> None:
        self.window.door.call("standing", self._show_standing, self.window.say)
        self.window.door.call("constituencies", self._show_list, self.window.say)

    def me(self) -> str:
        return self.st.get("key") or self.window.me or ""

    def _show_standing(self, st: dict) -> None:
        self.st = st
        self.standing.setText(standing_sentence(st))
        self._update_buttons()

    def _show_list(self, rows: list[dict]) -> None:
        if not self.gid or not any(r["id"] == self.gid for r in rows):
            own = next((r for r in rows if r["mine"]), None)
            self.gid = (own or (rows[0] if rows else {})).get("id")
        me = self.me()
        self.list.blockSignals(True)  # placing the selection is not the person picking
        if (rows, me) != self._rows:
            self._rows = (rows, me)
            self.list.clear()
            for r in rows:
                nxt = r["next"] + (f" → {short(r['next_holder'], me)}" if r.get("next_holder") else "")
                item = QTreeWidgetItem([("● " if r["mine"] else "") + r["name"], str(r["members"]),
                                        short(r["holder"], me) if r.get("holder") else "no seat", nxt])
                item.setData(0, Qt.ItemDataRole.UserRole, r["id"])
                item.setToolTip(0, r.get("statement") or "")
                item.setToolTip(3, nxt)
                self.list.addTopLevelItem(item)
            for column in range(3):
                self.list.resizeColumnToContents(column)
            if not rows:
                self.list.addTopLevelItem(QTreeWidgetItem(["No constituency yet: found the first."]))
        if self._selected(self.list) != self.gid:  # e.g. the one just joined or founded
            for k in range(self.list.topLevelItemCount()):
                if self.list.topLevelItem(k).data(0, Qt.ItemDataRole.UserRole) == self.gid:
                    self.list.setCurrentItem(self.list.topLevelItem(k))
        self.list.blockSignals(False)
        self._load_detail()

    def _picked(self, item, _previous=None) -> None:
        gid = item.data(0, Qt.ItemDataRole.UserRole) if item else None
        if gid and gid != self.gid:
            self.gid = gid
            self._load_detail()

    def _load_detail(self) -> None:
        gid = self.gid
        if gid:
            self.window.door.call("constituency", lambda v: v["id"] == self.gid and self._show_detail(v), self.window.say, ref=gid)

    def _show_detail(self, v: dict) -> None:
        me = self.me()
        self.detail = v
        self.title.setText(f"<b>{html.escape(v['name'])}</b> — {v['members']} member(s)"
                           f"{' (yours)' if v['mine'] else ''}, id {v['id'][:12]}…<br>{html.escape(v['statement'] or '')}")
        holder = short(v.get("holder"), me)
        nxt = f"{short(v.get('next_holder'), me)} ({v['next']})"
        rule = ("the lot draws among willing nominees" if v.get("rule") == "draw"
                else "the member endorsed by more than half of the members, if willing")
        self.seat.setText(f"Seat now: <b>{holder}</b>; at the next cycle boundary: <b>{html.escape(nxt)}</b>. {BOUNDARY} "
                          f"<small>Rule: {rule}; {v['min']} to {v['max']} members.</small>")
        rows = [(m["key"], m["support"], m["willing"], m["holder"], m["endorses"]) for m in v["members_list"]]
        if (rows, me, v.get("next_holder")) != self._members:
            self._members = (rows, me, v.get("next_holder"))
            selected = self._selected(self.members)
            self.members.clear()
            for key, support, willing, holds, endorses in rows:
                seat = "holds the seat" if holds else ("next holder" if key == v.get("next_holder") else "")
                item = QTreeWidgetItem([short(key, me), str(support), "yes" if willing else "no", seat,
                                        "themself" if endorses == key else short(endorses, me) if endorses else "—"])
                item.setData(0, Qt.ItemDataRole.UserRole, key)
                item.setToolTip(0, key)
                self.members.addTopLevelItem(item)
                if key == selected:
                    self.members.setCurrentItem(item)
            for column in range(5):
                self.members.resizeColumnToContents(column)
        self._show_thread(v["thread"], me)
        self._update_buttons()

    def _show_thread(self, posts: list[dict], me: str) -> None:
        if posts == self._thread:
            return
        self._thread = posts
        selected = self._selected(self.thread)
        self.thread.clear()
        items: dict[str, QTreeWidgetItem] = {}
        # a post is read whole: broken into lines to the column's width (a tree's rows do not wrap)
        chars = max(40, (self.thread.viewport().width() - 260) // max(1, self.thread.fontMetrics().averageCharWidth()))
        for p in posts:
            who = short(p["author"], me)
            by = f"★ representative {who}" if p["by_representative"] else who
            text = textwrap.fill(f"{p['text']}  (round {p['round']:,})", chars)
            items[p["id"]] = item = QTreeWidgetItem([by, text])
            item.setData(0, Qt.ItemDataRole.UserRole, p["id"])
            item.setToolTip(0, p["author"])
            item.setTextAlignment(0, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            item.setToolTip(1, p["text"])
        # then placed: posts of one round come in id order, so an answer may precede its question
        for p in posts:
            parent = items.get(p["reply"] or "")
            if parent is not None:
                parent.addChild(items[p["id"]])
            else:
                self.thread.addTopLevelItem(items[p["id"]])
        if selected in items:
            self.thread.setCurrentItem(items[selected])
        self.thread.expandAll()
        self.thread.setColumnWidth(0, min(self.thread.sizeHintForColumn(0) + 8, 240))
        if not posts:
            self.thread.addTopLevelItem(QTreeWidgetItem(["", "No posts yet: members ask their representative here."]))

    @staticmethod
    def _selected(tree: QTreeWidget) -> str | None:
        item = tree.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item else None

    def _update_buttons(self) -> None:
        """What makes sense here: acting on one's own constituency.  Joining another while in one
        stays possible, so the service can say why not (leave first)."""
        mine = bool(self.detail.get("mine"))
        lot = self.st.get("grouping") == "random" or self.st.get("constituencies") is False
        self.join.setEnabled(not lot and not mine)
        self.found.setEnabled(not lot)
        for b in (self.endorse_me, self.ask, self.ask_box):
            b.setEnabled(mine)
        self.endorse.setEnabled(mine and bool(self._selected(self.members)))
        self.reply.setEnabled(mine and bool(self._selected(self.thread)))
        self.leave.setEnabled(bool(self.st.get("constituency")))
        self.record.setEnabled(bool(self._selected(self.members) or self.detail.get("holder")))
        self.ask_box.setPlaceholderText("Ask your representative; Enter posts it" if mine
                                        else "Join this constituency to ask or reply here")
        draw = self.st.get("rule") == "draw"
        self.endorse.setText("N&ominate selected" if draw else "&Endorse selected")
        self.endorse_me.setText("Nominate &me" if draw else "Endorse &me")

    # ---- acts

    def _act(self, call: str, then=None, /, **args) -> None:
        """Sign one constituency act through the door; its sentence (or refusal) is said, then all refreshes."""
        def done(out: dict) -> None:
            if out.get("constituency") and call in ("join", "found"):
                self.gid = out["constituency"]
            if then is not None:
                then(out)
            self.window.say(out["what"])
            self.window.refresh()

        self.window.door.call(call, done, self.window.say, **args)

    def _join(self) -> None:
        gid = self._selected(self.list) or self.gid
        if not gid:
            self.window.say("Select a constituency to join.")
            return
        self._act("join", ref=gid)

    def _found(self) -> None:
        name = self.found_name.text().strip()
        if not name:
            self.window.say("A constituency needs a name: type it, then Found.")
            self.found_name.setFocus()
            return

        def clear(_out) -> None:
            self.found_name.clear()
            self.found_statement.clear()

        self._act("found", clear, name=name, statement=self.found_statement.text().strip())

    def _endorse_selected(self) -> None:
        key = self._selected(self.members)
        if key:
            self._act("endorse", member=key)

    def _post(self, reply: bool) -> None:
        text = self.ask_box.text().strip()
        if not text:
            self.window.say("Write your question or answer first.")
            return
        args = {"text": text}
        if reply:
            post = self._selected(self.thread)
            if not post:
                self.window.say("Select the post to reply to.")
                return
            args["reply"] = post
        self._act("ask", lambda _out: self.ask_box.clear(), **args)

    def _see_record(self) -> None:
        key = self._selected(self.members) or self.detail.get("holder")
        if key:
            self.window.open_record(key)
