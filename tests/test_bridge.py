"""The desktop's view of a node: trio in a worker thread, Qt signals into the GUI thread."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from netharness import Net

pytest.importorskip("pytestqt")
VECTORS = Path(__file__).resolve().parent / "vectors"
LOG = VECTORS / "demo-run.log"


@pytest.fixture
def net(tmp_path):
    n = Net(tmp_path / "home")
    yield n
    n.close()


def test_a_node_thread_publishes_for_the_gui_and_reports_through_signals(qtbot, tmp_path, net):
    from desktop.bridge import NodeBridge
    from p2p.logfile import read_items
    from p2p.node import Node
    from p2p.store import ReplicaStore

    items = [i[2] for i in read_items(LOG)]
    expected = json.loads(net.klero("verify", LOG, "--json").stdout)["state_hash"]
    peer = net.start("peer", "--join", LOG)
    store = ReplicaStore.create(tmp_path / "gui.sqlite", items[0])
    bridge = NodeBridge(Node(store, b"\x42" * 32, bootstrap=(peer,), sync_interval=2, say=lambda line: None), status_every=0.2)
    seen_threads = set()
    bridge.status.connect(lambda s: seen_threads.add(threading.current_thread().name))
    try:
        assert bridge.start().startswith("/ip4/127.0.0.1/tcp/")
        with qtbot.waitSignal(bridge.status, timeout=10_000, check_params_cb=lambda s: s["peers"] >= 1):
            pass
        verdicts = [bridge.publish(item) for item in items[1:]]  # from the GUI thread
        # the demo run's equivocating bot forks once; what it signs after is kept as evidence
        assert verdicts.count("equivocation") == 1 and verdicts.count("excluded") >= 1
        assert verdicts.count("applied") + verdicts.count("excluded") == len(items) - 2
        with qtbot.waitSignal(bridge.status, timeout=30_000, check_params_cb=lambda s: s["state_hash"] == expected):
            pass
        net.wait_for(["peer"], lambda s: s["state_hash"] == expected, 60, "the peer to receive what the GUI published")
        assert seen_threads == {threading.main_thread().name}  # slots ran in the GUI thread
    finally:
        with qtbot.waitSignal(bridge.stopped, timeout=30_000) as stopped:
            bridge.stop()
        store.close()
    assert stopped.args == ["stopped"]
