"""Two app instances co-edit one text for 30 s over real node processes and converge (issue 14).

A charter whose drafting committee is everyone but the author, so the second person is sure to
sit on the first one's committee; the bots propose nothing.  Each window types a word at a random
place every 150 ms through its own node's door."""

from __future__ import annotations

import json
import random
import time

import pytest

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.slow


def test_two_app_instances_co_edit_for_30_seconds_and_converge(qtbot, tmp_path):
    from desktop.app.door import Door
    from desktop.app.window import MainWindow
    from p2p import control
    from p2p.tools.bots import load_template
    from p2p.tools.testnet import Testnet

    spec = load_template("testnet")
    spec["parliament"]["cycle_rounds"] = 200
    # a 75 s editing window: 30 s of typing fits in it even on a loaded machine
    spec["parliament"]["stages"][0].update(committee=11, work_rounds=150, ballot_rounds=10)
    template = tmp_path / "everyone-drafts.json"
    template.write_text(json.dumps(spec))
    net = Testnet(tmp_path / "net")
    net.up(nodes=1, reps=10, cycles=1, round_seconds=0.5, people=("you", "ann"), bot_proposals=0, charter=str(template),
           say=lambda line: None)
    windows = {}
    try:
        for name in ("you", "ann"):
            folder = net.home / "profiles" / name
            window = MainWindow(Door(lambda folder=folder: control.connect(folder)), folder, title=name)
            qtbot.addWidget(window)
            window.show()
            windows[name] = window
        qtbot.waitUntil(lambda: all(w.overview for w in windows.values()), timeout=60_000)
        ann = control.connect(net.home / "profiles" / "ann")
        pid = None
        deadline = time.monotonic() + 30
        while pid is None and time.monotonic() < deadline:
            try:
                pid = ann.call("propose", title="Benches in every park", summary="Somewhere to sit.",
                               text="Every park gets benches.\n\nThey face the sun.\n")["proposal"]
            except Exception:
                qtbot.wait(300)
        assert pid, "ann could not submit"
        # wait for the drafting window: the person has a seat on ann's committee
        qtbot.waitUntil(lambda: any(i["kind"] == "seat" and i["proposal"] == pid for i in windows["you"].inbox), timeout=60_000)
        for w in windows.values():
            w.open_proposal(pid)
        editors = lambda: [w.proposals.text for w in windows.values()]  # noqa: E731
        qtbot.waitUntil(lambda: all(getattr(e, "loaded", False) and not e.isReadOnly() for e in editors()), timeout=30_000)
        rng = random.Random(7)
        words = ["shade ", "oak ", "steel ", "blue ", "quiet ", "wide ", "new "]
        end = time.monotonic() + 30
        typed = 0
        while time.monotonic() < end:
            for e in editors():
                cursor = e.textCursor()
                cursor.setPosition(rng.randint(0, len(e.toPlainText())))
                e.setTextCursor(cursor)
                e.insertPlainText(rng.choice(words))
                typed += 1
            qtbot.wait(150)
        for e in editors():
            e.flush_now()

        def converged() -> bool:
            texts = [e.toPlainText() for e in editors()]
            return not any(e.dirty or e.sending for e in editors()) and texts[0] == texts[1]

        qtbot.waitUntil(converged, timeout=60_000)
        final = editors()[0].toPlainText()
        shown = ann.call("show", ref=pid)
        # the person's node holds that text too (each window shows its own node's document)
        qtbot.waitUntil(lambda: control.connect(net.home / "profiles" / "you").call("text", ref=pid) == final,
                        timeout=30_000)
    finally:
        for w in windows.values():
            w.close()
        net.down(say=lambda line: None)
    assert final == shown["text"]["body"], "both windows hold the text every node holds"
    assert {c["author"] for c in shown["changes"]} >= {windows["you"].me, windows["ann"].me}
    assert sum(final.count(w) for w in words) >= typed // 2, "the words both typed are in the text"
