"""The desktop app from the command line: klero app, klero demo."""

from __future__ import annotations

import os
from pathlib import Path


def cmd_app(args) -> int:
    from desktop.app import run

    return run(args.profile, observer=args.observer, screenshot=args.screenshot)


DEMO_DIR = str(Path.home() / ".cache" / "kleroterion-demo") if os.name != "nt" else "kleroterion-demo"


def cmd_demo(args) -> int:
    return start_demo(args.dir, reps=args.reps, cycles=args.cycles, screenshot=args.screenshot)


def start_demo(folder: str = DEMO_DIR, *, reps: int = 9, cycles: int = 10, screenshot: str | None = None) -> int:
    """A local assembly of bots on a dev beacon, and the app as one more representative."""
    from p2p.tools.testnet import Testnet

    folder = Path(folder)
    net = Testnet(folder)
    print(f"Starting a demo assembly in {folder}: {reps} bot representatives in one node process, a dev beacon "
          f"ticking every second, and you as one more representative ...")
    net.up(nodes=1, reps=reps, charter="demo", cycles=cycles, people=("you",), bot_proposals=3, typing=True,
           say=lambda line: print(line))
    os.environ["KLERO_HOME"] = str(net.home)  # the app opens the demo's profile "you"
    stopped = []

    def stop() -> None:
        if not stopped:
            stopped.append(True)
            net.down(say=lambda line: print(line))

    try:
        from desktop.app import run

        return run("you", title="Kleroterion demo", on_close=stop, screenshot=screenshot)
    finally:
        stop()


def register(sub, profile_arg) -> None:
    p = sub.add_parser("app", help="open the desktop app on a profile (starts its node if it is not running)")
    profile_arg(p)
    p.add_argument("--observer", action="store_true", help="read-only: verify and watch, never act")
    p.add_argument("--screenshot", metavar="PNG", help=argparse_hidden())
    p.set_defaults(func=cmd_app)

    p = sub.add_parser("demo", help="a local assembly of bots and the app as one more representative (no set-up)")
    p.add_argument("--dir", default=DEMO_DIR,
                   help="folder for the demo's nodes and logs (default ~/.cache/kleroterion-demo)")
    p.add_argument("--reps", type=int, default=9, help="bot representatives (default 9)")
    p.add_argument("--cycles", type=int, default=10, help="cycles the bots plan for (default 10, about 20 minutes; the dev beacon ticks while the demo runs)")
    p.add_argument("--screenshot", metavar="PNG", help=argparse_hidden())
    p.set_defaults(func=cmd_demo)


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS
