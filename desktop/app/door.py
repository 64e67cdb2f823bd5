"""The app's line to the representative's service inside the profile's node (``p2p.control``).

The node runs in its own process: networking, signing, evaluating the legislature and the
Automerge documents all live off the GUI's interpreter, so nothing they do (a long bill holds
the GIL for a second or more, STACK.md) can freeze the window, and the node keeps serving its
panel duties when the window closes.  Each call runs on a worker thread of a ``QThreadPool``
and its answer comes back as a queued signal, so slots run in the GUI thread and never wait.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Call(QRunnable):
    def __init__(self, door: "Door", ticket: int, name: str, args: dict):
        super().__init__()
        self.door, self.ticket, self.name, self.args = door, ticket, name, args

    def run(self) -> None:
        from consensus.errors import KleroError

        try:
            client = self.door.connected()
            if client is None:
                raise KleroError("Your node is starting; the app fills in as soon as it answers.")
            result, error = client.call(self.name, **self.args), ""
        except KleroError as exc:
            result, error = None, str(exc)
        except Exception as exc:  # a bug must reach the person as a sentence, not kill a thread
            result, error = None, f"The app could not reach its node ({type(exc).__name__}: {exc})."
        self.door.answered.emit(self.ticket, result, error)


class Door(QObject):
    """Asynchronous calls into the node's service; ``call`` returns at once."""

    answered = Signal(int, object, str)  # ticket, result, error sentence ("" if none)

    def __init__(self, connect: Callable[[], object], parent=None):
        """``connect``: returns the node's door client, or None while the node is not up yet."""
        super().__init__(parent)
        self._connect = connect
        self.client = None
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)  # one slow call (a long bill's edit) must not hold the others
        self._next = 0
        self._waiting: dict[int, tuple[Callable, Callable | None]] = {}
        self.answered.connect(self._deliver)

    def call(self, name: str, done: Callable[[object], None], failed: Callable[[str], None] | None = None, /, **args) -> None:
        self._next += 1
        self._waiting[self._next] = (done, failed)
        self.pool.start(_Call(self, self._next, name, args))

    def _deliver(self, ticket: int, result, error: str) -> None:
        done, failed = self._waiting.pop(ticket, (None, None))
        if error:
            if failed is not None:
                failed(error)
        elif done is not None:
            done(result)

    def connected(self):
        """The door's client, found again if the node was (re)started."""
        if self.client is None:
            self.client = self._connect()
        return self.client

    def close(self) -> None:
        self.pool.waitForDone(5000)
