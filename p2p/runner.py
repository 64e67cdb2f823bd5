"""A node in a worker thread, for the desktop app (STACK.md: trio in its own thread, Qt signals
towards the GUI, ``trio.from_thread`` the other way; docs/network.md).

``NodeRunner`` owns the thread and the only event loop that touches the node and its replica
store.  Its methods are safe to call from any thread: they hand the work to the trio thread
and wait for it (briefly: a publish is a store write and a gossip send).  Callbacks
(``on_status``, ``on_stopped``) run in the trio thread; the Qt bridge (``desktop/bridge.py``)
turns them into signals, which Qt queues into the GUI thread.
"""

from __future__ import annotations

import threading
from typing import Callable

import trio

from .node import Node


class RunnerError(RuntimeError):
    """The node thread is not running, or stopped while asked to do something."""


class NodeRunner:
    def __init__(self, node: Node, *, status_every: float = 1.0,
                 on_status: Callable[[dict], None] | None = None, on_stopped: Callable[[str], None] | None = None):
        self.node = node
        self.status_every = status_every
        self.on_status = on_status
        self.on_stopped = on_stopped
        self._thread: threading.Thread | None = None
        self._token = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> str:
        """Start the node thread; returns the node's listen address once it is up."""
        if self._thread is not None:
            raise RunnerError("The node is already running.")
        self._thread = threading.Thread(target=self._main, name="klero-node", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RunnerError(f"The node did not start within {timeout:.0f} s.")
        if self.error is not None:
            raise RunnerError(f"The node could not start: {self.error}")
        return self.node.address

    def _main(self) -> None:
        reason = "stopped"
        try:
            trio.run(self._run)
        except BaseException as exc:  # reported to the GUI, never raised into nowhere
            self.error = exc
            reason = f"failed: {exc}"
        finally:
            self._ready.set()
            if self.on_stopped:
                self.on_stopped(reason)

    async def _run(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()

        async def report():
            while True:
                if self.on_status:
                    self.on_status(self.node.status())
                await trio.sleep(self.status_every)

        async with trio.open_nursery() as nursery:
            def ready(_node):
                self._ready.set()
                nursery.start_soon(report)

            await self.node.run(ready=ready, stop=self._stop)
            nursery.cancel_scope.cancel()

    # ------------------------------------------------------------------ thread-safe calls

    def _check(self) -> None:
        if self._token is None or self._thread is None or not self._thread.is_alive():
            raise RunnerError("The node is not running.")

    def publish(self, item: bytes) -> str:
        """Publish a signed event; returns the replica's verdict (applied, pending, ...)."""
        self._check()
        return trio.from_thread.run(self._publish, item, trio_token=self._token)

    async def _publish(self, item: bytes) -> str:
        with trio.fail_after(10):
            return await self.node.publish(item)

    def status(self) -> dict:
        self._check()
        return trio.from_thread.run_sync(self.node.status, trio_token=self._token)

    def call(self, fn: Callable, *args):
        """Run ``fn(*args)`` in the node thread (for reads of the replica store) and return its result."""
        self._check()
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the node (connections closed, replica flushed) and join its thread."""
        if self._thread is None:
            return
        if self._thread.is_alive() and self._token is not None:
            try:
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RunnerError(f"The node thread did not stop within {timeout:.0f} s.")
        self._thread = None
