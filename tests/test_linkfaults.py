"""Emulated delay and loss on a node's links (``p2p.tools.linkfaults``, issue 16): this kernel has no
netem, so testnets make them in the node, on the TCP streams under libp2p.  Tested on py-libp2p's
own TCP transport over 127.0.0.1; the testnet scenario in test_testnet plays them between
network namespaces."""

from __future__ import annotations

import json
import time

import multiaddr
import pytest
import trio

from p2p.tools import linkfaults


def _read_times(faults_file, messages: int = 3, burst: int = 1) -> list[float]:
    """Seconds each of ``messages`` writes of ``burst`` bytes took to be read one byte at a time,
    over libp2p's TCP transport (dialled after the shim is installed)."""
    from libp2p.transport.tcp.tcp import TCP

    took: list[float] = []

    async def main() -> None:
        sent_at: list[float] = []

        async def handler(stream) -> None:
            for _ in range(messages):
                for _ in range(burst):
                    data = await stream.read(1)
                    assert data == b"x"
                took.append(time.monotonic() - sent_at[len(took)])
            await trio.sleep_forever()

        transport = TCP()
        listener = transport.create_listener(handler)
        await listener.listen(multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0"))
        try:
            conn = await transport.dial(listener.get_addrs()[0])
            for _ in range(messages):
                sent_at.append(time.monotonic())
                await conn.write(b"x" * burst)
                with trio.fail_after(60):
                    while len(took) < len(sent_at):
                        await trio.sleep(0.01)
            await conn.close()
        finally:
            await listener.close()

    trio.run(main)
    return took


@pytest.fixture
def faults_file(tmp_path):
    path = tmp_path / "links.json"
    linkfaults.install(path)
    yield path
    linkfaults.uninstall()


def test_a_delayed_link_hands_over_what_it_reads_no_sooner_than_the_delay(faults_file):
    linkfaults.write(faults_file, {"127.0.0.1": {"delay_ms": 300, "loss": 0}})
    took = _read_times(faults_file)
    assert min(took) >= 0.3, took


def test_a_delayed_link_holds_a_chunk_once_not_each_small_read(faults_file, monkeypatch):
    """yamux reads a 12-byte header, then the body: a wait on every read would cap a delayed link
    at a few frames a second.  A chunk read off the socket is held once and handed out in pieces."""
    linkfaults.write(faults_file, {"127.0.0.1": {"delay_ms": 200, "loss": 0}})
    faults = linkfaults.LinkFaults(faults_file)
    stalls = []
    monkeypatch.setattr(linkfaults.LinkFaults, "stall", lambda self, host: stalls.append(host) or 0.2)
    took = _read_times(faults_file, messages=2, burst=100)
    assert len(stalls) <= 4 and min(took) >= 0.2, (stalls, took)  # 200 one-byte reads, a stall or two per write
    assert faults.towards("127.0.0.1") == (0.2, 0.0)


def test_a_lossy_link_stalls_like_tcp_resending(faults_file):
    """Loss 0.9 makes most reads wait for resends: 200 ms, then 400, then 800."""
    linkfaults.write(faults_file, {"127.0.0.1": {"delay_ms": 0, "loss": 0.9}})
    took = _read_times(faults_file, messages=4)
    assert sum(took) >= 4 * 0.2, took  # every read stalls at least once unless all four escape (p = 0.0001)


def test_faults_apply_only_to_the_peer_they_name_and_change_while_running(tmp_path):
    faults = linkfaults.LinkFaults(tmp_path / "links.json", clock=iter(range(0, 1000, 2)).__next__)
    assert faults.towards("10.0.0.2") == (0.0, 0.0), "no file: no fault"
    linkfaults.write(tmp_path / "links.json", {"10.0.0.2": {"delay_ms": 150, "loss": 0.25}})
    assert faults.towards("10.0.0.2") == (0.15, 0.25)
    assert faults.towards("10.0.0.3") == (0.0, 0.0)
    linkfaults.write(tmp_path / "links.json", {})
    import os

    os.utime(tmp_path / "links.json", (time.time() + 5, time.time() + 5))
    assert faults.towards("10.0.0.2") == (0.0, 0.0), "healed"


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"links": 3}', '{"links": {"h": {"delay_ms": "x"}}}',
                                  '{"links": {"h": {"delay_ms": 1e309, "loss": 5}}}'])
def test_a_malformed_faults_file_means_no_faults_or_bounded_ones(tmp_path, text):
    path = tmp_path / "links.json"
    path.write_text(text)
    links = linkfaults.parse(str(path))
    assert all(0 <= d <= linkfaults.MAX_DELAY_MS / 1000 and 0 <= p <= 0.9 for d, p in links.values()), links
    json.dumps(links)
