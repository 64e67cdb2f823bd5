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


DISK_FULL = ("The disk is full. Nothing committed was lost: the replica keeps every item it had stored. Free some "
             "space (or move KLERO_HOME to a larger disk) and run the command again.")


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
        import errno

        if exc.errno == errno.ENOSPC:
            print(DISK_FULL, file=sys.stderr)
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            print(f"{exc.strerror}: {exc.filename or ''}. klero needs to write there: check the folder's permissions "
                  "(or that its disk is not read-only), or point KLERO_HOME at a folder you own.".replace(": .", "."),
                  file=sys.stderr)
        else:
            print(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: say so in a sentence, keep the traceback for developers
        if os.environ.get("KLERO_DEBUG"):
            raise
        import sqlite3

        if isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc):
            print(DISK_FULL, file=sys.stderr)
            return 2
        if isinstance(exc, sqlite3.OperationalError) and ("readonly" in str(exc) or "unable to open" in str(exc)):
            print(f"The replica cannot be written or opened ({exc}): check that you own the profile's folder and that its "
                  "disk is not read-only.", file=sys.stderr)
            return 2
        print(
            f"klero stopped because of an internal error ({type(exc).__name__}: {exc}). "
            "Please report it; run again with KLERO_DEBUG=1 to see the details.",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
