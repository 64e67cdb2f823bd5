"""The desktop app (PySide6 Widgets): a view of the representative's service.

``run`` opens it on a profile: the profile's node runs in its own process (started here if it
is not running, and stopped on close only if started here) and the window talks to it through
its door (``p2p.control``).  ``klero app`` and ``klero demo`` call it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def start_node(name: str, *, observer: bool = False, passphrase: str | None = None, extra: tuple[str, ...] = ()):
    """Start ``klero node`` for a profile in its own process; returns the process."""
    env = {**os.environ}
    if passphrase is not None:
        env["KLERO_PASSPHRASE"] = passphrase
    args = [sys.executable, "-m", "desktop.cli", "node", "--profile", name, *(["--observer"] if observer else []), *extra]
    from p2p import profile

    log = open(profile.profile(name).path / "app-node.out", "ab")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def run(name: str, *, observer: bool = False, on_close=None, title: str = "Kleroterion", screenshot: str | None = None) -> int:
    """Open the app on profile ``name``; returns the exit code."""
    from PySide6.QtWidgets import QApplication, QInputDialog, QLineEdit

    from consensus.errors import KleroError
    from p2p import control, profile

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Kleroterion")
    p = profile.profile(name)
    passphrase = os.environ.get(profile.PASSPHRASE_ENV)
    if not p.identity_path.exists() or not p.replica_path.exists():
        from .first import DEMO, FirstStart

        wizard = FirstStart(name, existing=p if p.identity_path.exists() else None)
        if not wizard.exec() and wizard.joined is None:
            if wizard.choice != DEMO:
                return 1
        if wizard.choice == DEMO:
            from desktop.cli.app import start_demo

            return start_demo()
        if wizard.joined is None:
            raise KleroError(f"Profile {name!r} has not joined an assembly yet: klero join --profile {name} CHARTER.log.")
        passphrase = wizard.passphrase or passphrase
    p = profile.existing(name)
    started = None
    if control.connect(p.path) is None:
        if passphrase is None:
            # an observer's node unlocks the key too: it is the node's identity, and it signs the
            # person's constituency acts (joining, endorsing, asking), never legislation
            passphrase, ok = QInputDialog.getText(None, "Unlock your key", f"Passphrase of profile {name!r}:",
                                                  QLineEdit.EchoMode.Password)
            if not ok:
                return 1
            profile.unlock(p, passphrase)  # a wrong passphrase is said here, not in the node's log
        started = start_node(name, observer=observer, passphrase=passphrase or "")
    from PySide6.QtCore import QSettings

    from .door import Door
    from .theme import apply_theme
    from .window import MainWindow

    from .window import apply_font

    apply_theme(app, QSettings("Kleroterion", "app").value("theme", "light") == "dark")
    apply_font(app, int(QSettings("Kleroterion", "app").value("font_step", 0)))

    door = Door(lambda: control.connect(p.path))
    window = MainWindow(door, p.path, observer=observer, title=title)
    window.show()
    if screenshot:
        _shoot_later(app, window, screenshot)
    code = app.exec()
    if started is not None and QSettings("Kleroterion", "app").value("keep_node", "false") == "true":
        started = None  # the person asked for their panel duties to go on: the node keeps running
        started.terminate()
        try:
            started.wait(timeout=30)
        except subprocess.TimeoutExpired:
            started.kill()
    if on_close is not None:
        on_close()
    return code


def _shoot_later(app, window, path: str, wait_s: float = 180.0) -> None:
    """Save the window once the person holds a seat, showing that proposal's workspace (or after
    ``wait_s``), then quit (scripts, docs)."""
    from PySide6.QtCore import QTimer

    began = time.monotonic()
    opened: list[float] = []

    def check() -> None:
        seat = next((i for i in window.inbox if i["kind"] == "seat"), None)
        if seat is not None and not opened:
            window.open_proposal(seat["proposal"])
            opened.append(time.monotonic())
        if (opened and time.monotonic() - opened[0] > 8) or time.monotonic() - began > wait_s:
            window.grab().save(str(Path(path)))
            app.quit()
        else:
            QTimer.singleShot(300, check)

    QTimer.singleShot(300, check)
