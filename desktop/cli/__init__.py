"""The ``klero`` command line.

Every command imports what it needs inside its own function, so ``klero verify`` never pulls
in the network stack or Qt (STACK.md).  Errors are sentences on stderr with a non-zero exit;
set ``KLERO_DEBUG=1`` to see a traceback instead.

Exit codes: 0 success; 1 the command ran but found problems (``verify`` of a log with rejected
items, gaps or equivocations); 2 the command could not do its job (bad arguments, unreadable
files, wrong passphrase).
"""

from __future__ import annotations

import argparse
import os
import sys

from . import app, assembly, beacon, constituency, legislate, node, replica, tools


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="klero",
        description="Kleroterion: a peer-to-peer stochastic parliament where anyone can verify every result.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def profile_arg(p):
        p.add_argument("--profile", required=True, help="name of the profile (an identity and its replica)")

    for module in (replica, assembly, node, legislate, constituency, app, tools, beacon):
        module.register(sub, profile_arg)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from consensus.errors import KleroError

    try:
        return args.func(args)
    except KleroError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``klero verify LOG | head``): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        if os.environ.get("KLERO_DEBUG"):
            raise
        print(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: say so in a sentence, keep the traceback for developers
        if os.environ.get("KLERO_DEBUG"):
            raise
        print(
            f"klero stopped because of an internal error ({type(exc).__name__}: {exc}). "
            "Please report it; run again with KLERO_DEBUG=1 to see the details.",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
