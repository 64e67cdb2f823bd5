"""The desktop app (issue 14) against real nodes: a reactive testnet of bots with one person, whose
node runs in its own process and whose window talks to it through the door.  Real Qt widgets
under ``QT_QPA_PLATFORM=offscreen``."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.slow


@pytest.fixture
def person_net(tmp_path):
    from p2p.tools.testnet import Testnet

    net = Testnet(tmp_path / "net")
    info = net.up(nodes=1, reps=12, cycles=4, round_seconds=0.25, people=("you",), bot_proposals=3, say=lambda line: None)
    try:
        yield net, info
    finally:
        net.down(say=lambda line: None)


def _widgets_without_names(window):
    """Interactive widgets a screen reader would meet without a name (Qt's own parts excluded)."""
    from PySide6.QtWidgets import (QAbstractButton, QAbstractItemView, QHeaderView, QLineEdit, QPlainTextEdit, QTextEdit,
                                   QWidget)

    kinds = (QAbstractButton, QAbstractItemView, QLineEdit, QPlainTextEdit, QTextEdit)
    return [w for w in window.findChildren(QWidget)
            if isinstance(w, kinds) and not isinstance(w, QHeaderView) and not w.accessibleName()
            and type(w).__module__.startswith("PySide6") and w.objectName() != "qt_scrollarea_viewport"]


def test_a_vote_cast_by_keyboard_alone_signs_one_vote_naming_the_displayed_revision(qtbot, person_net, tmp_path, monkeypatch):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    from desktop.app.door import Door
    from desktop.app.window import MainWindow
    from p2p import control

    net, info = person_net
    folder = net.home / "profiles" / "you"
    door = Door(lambda: control.connect(folder))
    window = MainWindow(door, folder)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: bool(window.overview), timeout=60_000)
    assert window.overview["seated"] and window.overview["name"]
    assert not _widgets_without_names(window), [type(w).__name__ for w in _widgets_without_names(window)]

    def open_ballot():
        return [i for i in window.inbox if i["kind"] in ("vote", "amendment") and "open now" in i["text"]
                and "being settled" not in i["text"]]

    qtbot.waitUntil(lambda: bool(open_ballot()), timeout=150_000)
    item = open_ballot()[0]
    # keyboard only: focus the inbox, move to the ballot's row, Enter opens its proposal
    tree = window.inbox_screen.tree
    tree.setFocus()
    row = next(k for k in range(tree.topLevelItemCount()) if tree.topLevelItem(k).data(0, Qt.ItemDataRole.UserRole) == item["proposal"])
    qtbot.keyClick(tree, Qt.Key.Key_Home)
    for _ in range(row):
        qtbot.keyClick(tree, Qt.Key.Key_Down)
    qtbot.keyClick(tree, Qt.Key.Key_Return)
    screen = window.proposals
    qtbot.waitUntil(lambda: screen.pid == item["proposal"] and screen.shown.get("id") == item["proposal"] and screen.yes.isEnabled(),
                    timeout=30_000)
    displayed = list(screen.shown["revision"])
    confirmations = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: confirmations.append(a) or QMessageBox.StandardButton.Yes)
    mnemonic = screen.yes.text()[screen.yes.text().index("&") + 1]
    qtbot.keyClick(window, getattr(Qt.Key, f"Key_{mnemonic.upper()}"), Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: "Voted" in window.statusBar().currentMessage(), timeout=30_000)
    assert len(confirmations) == 1 and displayed[0][:8] in confirmations[0][2]
    # the vote's spread: the person's node follows which peers hold it (from their sync requests)
    qtbot.waitUntil(lambda: door.client.call("reach")["acts"][0]["holding"] >= 1, timeout=30_000)
    # every screen, light and dark, rendered and not blank
    from desktop.app.shots import SCREENS, render_all

    from PySide6.QtWidgets import QApplication

    shots = render_all(window, QApplication.instance(), tmp_path, lambda seconds: qtbot.wait(int(seconds * 1000)))
    assert len(shots) == 2 * len(SCREENS)
    for path in shots:
        _non_blank(path)
    # observer mode: every act disabled, saying why
    watcher = MainWindow(Door(lambda: control.connect(folder)), folder, observer=True)
    qtbot.addWidget(watcher)
    watcher.show()
    qtbot.waitUntil(lambda: bool(watcher.overview), timeout=30_000)
    watcher.open_proposal(item["proposal"])
    qtbot.waitUntil(lambda: watcher.proposals.shown.get("id") == item["proposal"], timeout=30_000)
    assert watcher.proposals.text.isReadOnly() and not watcher.proposals.yes.isEnabled() and not watcher.proposals.save.isEnabled()
    assert "observer" in watcher.proposals.ballot.text()
    watcher.close()
    window.close()
    door.close()
    net.down(say=lambda line: None)

    from p2p.store import ReplicaStore

    with ReplicaStore(folder / "replica.sqlite") as store:
        me = bytes.fromhex(window.me)
        votes = [r for r in store.replica.records.values() if r.author == me and r.kind == "vote"
                 and r.body.proposal.hex() == item["proposal"] and (r.body.amendment.hex() if r.body.amendment else None) == item.get("amendment")]
    assert len(votes) == 1, votes
    if item["kind"] == "vote":
        assert [h.hex() for h in votes[0].body.revision] == sorted(displayed)


def _non_blank(path: Path) -> None:
    from PySide6.QtGui import QImage

    image = QImage(str(path))
    assert not image.isNull() and image.width() > 400
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 8, f"{path} looks blank ({len(colours)} colours)"


def test_the_sync_state_is_never_current_unless_it_is():
    from desktop.app.window import sync_state

    assert sync_state(None).startswith("offline")
    assert sync_state({"peers": 0, "caught_up": False}).startswith("offline")
    assert sync_state({"peers": 0, "caught_up": True}).startswith("alone")
    assert sync_state({"peers": 2, "caught_up": False}) == "catching up from 2 peer(s)"
    assert sync_state({"peers": 1, "caught_up": False, "currency": "Not acting yet: peer x sent no beacon round since 90."}) \
        == "catching up from 1 peer(s). Not acting yet: peer x sent no beacon round since 90."
    assert sync_state({"peers": 2, "caught_up": True}) == "current with 2 peer(s)"
    stalled = sync_state({"peers": 2, "caught_up": True, "beacon": {"sentence": "Beacon round 37 (STALLED, 9 behind)."}})
    assert stalled.startswith("current") and "STALLED" in stalled


def test_a_dev_beacon_is_judged_by_its_rounds_arrival_not_its_genesis(tmp_path):
    """A testnet's dev chain runs on the testnet's clock: the node must not call it stalled
    because its genesis is long past (every status line used to), and must when rounds stop."""
    from p2p.node import Node
    from p2p.store import ReplicaStore
    from p2p.tools.bots import AssemblySim

    sim = AssemblySim("testnet", reps=12, seed=3)
    with ReplicaStore.create(tmp_path / "r.sqlite", sim.charter_wire) as store:
        node = Node(store, bytes(32), say=lambda line: None)
        for n in range(1, 4):
            store.replica.add_round(sim.dev.sign(n))
        live = node.beacon()
        assert not live["stalled"] and "Dev beacon round 3" in live["sentence"]
        node._beacon_seen -= 60  # a minute without a new round
        stalled = node.beacon()
        assert stalled["stalled"] and "no new round for 60 s" in stalled["sentence"]


def test_the_first_start_makes_a_key_shows_its_words_and_joins(qtbot, tmp_path, monkeypatch):
    """Create a key (its 24 words shown, to be confirmed), then join by charter file; a wrong id
    or a bad phrase is refused with the command line's sentence, and nothing half-made is left."""
    import os

    from nacl.signing import SigningKey

    from consensus.events import event_id
    from desktop.app.first import RECOVER, FirstStart
    from p2p import founding, profile
    from p2p.logfile import write_log

    monkeypatch.setenv("KLERO_HOME", str(tmp_path / "home"))
    roster = [os.urandom(32) for _ in range(12)]
    wizard = FirstStart("alice", kdf="interactive")
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.next()  # create a new key (the default)
    key_page = wizard.currentPage()
    key_page.passphrase.setText("a long test passphrase")
    key_page.repeat.setText("another passphrase")
    wizard.next()
    assert "differ" in key_page.problem.text() and wizard.currentId() == FirstStart.KEY
    key_page.repeat.setText("a long test passphrase")
    wizard.next()
    assert wizard.currentId() == FirstStart.PHRASE
    p = profile.existing("alice")
    key = profile.unlock(p, "a long test passphrase")
    assert wizard.words == profile.recovery_phrase(key).split() and len(wizard.words) == 24
    assert not wizard.button(wizard.WizardButton.NextButton).isEnabled(), "the words must be confirmed written down"
    wizard.currentPage().done.setChecked(True)
    wizard.next()
    assert wizard.currentId() == FirstStart.JOIN
    # a charter whose roster holds the new key
    plan = founding.plan("Riverside rehearsal", "testnet", [bytes(key.verify_key), *roster])
    wire = founding.sign(SigningKey.generate(), plan.charter)
    write_log(tmp_path / "charter.log", [wire])
    join = wizard.currentPage()
    join.charter.setText(str(tmp_path / "charter.log"))
    join.assembly.setText("00ff")
    wizard.next()
    assert "do not join it" in join.problem.text() and not p.replica_path.exists()
    join.assembly.setText(event_id(wire).hex()[:12])
    assert join.validatePage()
    assert wizard.joined[1] is True and p.replica_path.exists()
    wizard.close()
    # recovering with a wrong phrase says why
    again = FirstStart("bob", kdf="interactive")
    qtbot.addWidget(again)
    again.show()
    again.currentPage().choices[RECOVER].setChecked(True)
    again.next()
    page = again.currentPage()
    page.words.setPlainText("abandon " * 23 + "zoo")
    page.passphrase.setText("a long test passphrase")
    page.repeat.setText("a long test passphrase")
    again.next()
    assert "checksum" in page.problem.text() and not profile.profile("bob").identity_path.exists()
    again.close()


def test_diff_changes_are_numbered_for_the_keys_and_marked_without_colour():
    from desktop.app.window import change_count, diff_html

    ops = [("=", "Plant "), ("-", "ten"), ("+", "twenty"), ("=", " trees "), ("+", "now"), ("=", ".")]
    page = diff_html(ops)
    assert change_count(ops) == 2 and 'name="c1"' in page and 'name="c2"' in page and 'name="c3"' not in page
    assert "<s " in page and "<u " in page  # struck and underlined, not colour alone


def test_a_diff_for_the_vote_confirmation_keeps_changes_and_shortens_context():
    from desktop.app.window import diff_text

    ops = [("=", "A" * 200), ("-", "ten"), ("+", "twenty"), ("=", " trees.")]
    shown = diff_text(ops)
    assert "[-ten-]{+twenty+}" in shown and " … " in shown and len(shown) < 120


def test_notices_come_once_for_new_seats_ballots_and_closing_deadlines():
    from desktop.app.window import notices

    told: set = set()
    seat = {"kind": "seat", "proposal": "aa", "due_round": 100, "due": "14:03 (round 100)", "text": "edit it", "title": "Trees"}
    vote = {"kind": "vote", "proposal": "aa", "due_round": 130, "due": "14:05 (round 130)", "text": "vote", "title": "Trees"}
    assert [t for t, _ in notices([seat], 90, told)] == ["You were drawn onto a committee"]
    assert notices([seat], 91, told) == []
    assert [t for t, _ in notices([seat, vote], 100, told)] == ["A ballot is waiting for you"]
    assert [t for t, _ in notices([vote], 115, told)] == ["A ballot closes soon"]
    assert notices([vote], 120, told) == []
