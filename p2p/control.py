"""The running node's door for its own person: the CLI and the app call the representative's
service *inside* the node, so one process signs for a key and an act is gossiped at once.

A node listens on 127.0.0.1 on a free port and writes ``control.json`` (port, a random token,
its process id) into the profile, readable by the profile's owner only (0600 in a 0700 folder).
A client sends one JSON line ``{"token": …, "call": NAME, "args": {…}}`` and reads one JSON line
back: ``{"ok": result}`` or ``{"error": sentence}``.  The token is what keeps other local users
out (the port itself is open to every local process); TCP rather than a Unix socket because a
socket path must be under 108 bytes and profiles live in deep folders (and Windows).

Requests are bounded (``MAX_REQUEST``) and answered one at a time on the node's event loop,
like everything else the node does to its replica.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import socket
from pathlib import Path

from consensus.errors import KleroError

FILE = "control.json"
MAX_REQUEST = 8 << 20  # a whole bill's text fits; more is refused before it is parsed
#: the service's calls a client may make; acts sign, the rest only read
ACTS = ("propose", "edit", "comment", "amend", "vote", "withdraw",
        "found", "join", "leave", "endorse", "serve", "absent", "ask", "certify", "revoke")
VIEWS = ("overview", "inbox", "proposals", "show", "text", "diff", "blame", "explain", "thread", "comments", "changes_since", "pipeline",
         "seats", "record", "deadlines", "reach", "standing", "constituencies", "constituency", "roster", "posts", "public_record")


class ControlError(KleroError):
    """The node's door could not be used."""


def write_door(folder: Path, port: int) -> str:
    """Publish the door for this process; returns the token."""
    token = secrets.token_hex(16)
    path = folder / FILE
    tmp = folder / (FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"port": port, "token": token, "pid": os.getpid()}, out)
    os.replace(tmp, path)
    return token


def remove_door(folder: Path) -> None:
    try:
        door = json.loads((folder / FILE).read_text())
        if door.get("pid") == os.getpid():
            (folder / FILE).unlink()
    except (OSError, ValueError):
        pass


def handle(service, request: bytes, token: str) -> tuple[dict, bool]:
    """Answer one request line; returns (reply, whether it was an act)."""
    from .service import ActError

    try:
        message = json.loads(request)
    except ValueError:
        return {"error": "The request is not JSON."}, False
    if not isinstance(message, dict) or not isinstance(message.get("token"), str) \
            or not hmac.compare_digest(message["token"], token):
        return {"error": "The request does not carry this node's token (control.json)."}, False
    call, args = message.get("call"), message.get("args", {})
    if call not in ACTS + VIEWS or not isinstance(args, dict):
        return {"error": f"The node answers only {', '.join(ACTS + VIEWS)}."}, False
    try:
        return {"ok": getattr(service, call)(**args)}, call in ACTS
    except ActError as exc:
        return {"error": str(exc)}, call in ACTS
    except KleroError as exc:
        return {"error": str(exc)}, False
    except TypeError as exc:
        return {"error": f"Bad arguments for {call}: {exc}."}, False


class Client:
    """Calls the service inside a running node (see :func:`connect`)."""

    def __init__(self, port: int, token: str, pid: int, timeout: float = 120.0):
        self.port, self.token, self.pid, self.timeout = port, token, pid, timeout

    def call(self, name: str, /, **args):
        request = json.dumps({"token": self.token, "call": name, "args": args}).encode() + b"\n"
        if len(request) > MAX_REQUEST:
            raise ControlError(f"The request is {len(request):,} bytes; the node takes at most {MAX_REQUEST:,}.")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout) as s:
                s.sendall(request)
                chunks = []
                while True:
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    if chunk.endswith(b"\n"):
                        break
        except OSError as exc:
            raise ControlError(f"Lost the connection to the running node (process {self.pid}): {exc}. Is it still running?") from None
        try:
            reply = json.loads(b"".join(chunks))
        except ValueError:
            raise ControlError("The running node sent an unreadable answer; see its log.") from None
        if "error" in reply:
            from .service import ActError

            raise ActError(reply["error"])
        return reply["ok"]


def connect(folder: Path) -> Client | None:
    """The running node of the profile in ``folder``, or None if none runs."""
    try:
        door = json.loads((folder / FILE).read_text())
        port, token, pid = int(door["port"]), str(door["token"]), int(door["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return None
    return Client(port, token, pid)
