"""Qt signals for a node running in its worker thread (``p2p.runner.NodeRunner``).

Signals emitted from the node thread are queued by Qt into the thread of each receiver (the
GUI thread for widgets), so slots never run inside the network loop and the GUI never blocks
on it.  Calls the other way (``publish``, ``status``) go through the runner, which hands them
to the trio thread and waits briefly.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from p2p.runner import NodeRunner


class NodeBridge(QObject):
    #: the node's status dict, about once a second
    status = Signal(dict)
    #: the node stopped ("stopped", or "failed: <reason>")
    stopped = Signal(str)

    def __init__(self, node, parent=None, status_every: float = 1.0):
        super().__init__(parent)
        self.runner = NodeRunner(node, status_every=status_every, on_status=self.status.emit, on_stopped=self.stopped.emit)

    def start(self) -> str:
        return self.runner.start()

    def publish(self, item: bytes) -> str:
        return self.runner.publish(item)

    def stop(self) -> None:
        self.runner.stop()
