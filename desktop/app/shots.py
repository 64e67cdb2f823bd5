"""Every screen of the app rendered to PNG, light and dark, against a live local testnet with one
person (for people to look at, and for the tests, which check the images are not blank).

Usage: python -m desktop.app.shots OUT_DIR
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

SCREENS = ("inbox", "proposals", "pipeline", "committees", "constituency", "record", "network", "settings")  # the nav's order


def render_all(window, app, out: Path, wait) -> list[Path]:
    """Show each screen in each theme, let it fill (``wait(seconds)`` runs the event loop), save it."""
    from .theme import apply_theme

    paths = []
    for dark in (False, True):
        apply_theme(app, dark)
        for n, name in enumerate(SCREENS):
            window.nav.setCurrentRow(n)
            if name == "proposals" and window.proposals.list.count():
                window.proposals.list.setCurrentRow(0)
            wait(1.0)
            path = out / f"{name}-{'dark' if dark else 'light'}.png"
            window.grab().save(str(path))
            paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    import os
    import tempfile

    out = Path((argv or sys.argv[1:] or ["screens"])[0])
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from p2p import control
    from p2p.tools.testnet import Testnet

    from .door import Door
    from .window import MainWindow

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        net = Testnet(Path(tmp) / "net")
        net.up(nodes=1, reps=12, cycles=3, round_seconds=0.3, people=("you",), bot_proposals=3, say=print)
        try:
            folder = net.home / "profiles" / "you"
            door = Door(lambda: control.connect(folder))
            window = MainWindow(door, folder)
            window.show()

            def wait(seconds: float) -> None:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    app.processEvents()
                    time.sleep(0.02)

            end = time.monotonic() + 90
            while time.monotonic() < end and not any(i["kind"] in ("seat", "vote") for i in window.inbox):
                wait(0.5)
            for path in render_all(window, app, out, wait):
                print(path)
            window.close()
        finally:
            net.down(say=print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
