"""Emulated delay and loss on a node's links, for testnets (``klero testnet delay|loss``).

Real ones would be made with ``tc netem`` between the testnet's network namespaces, but this
machine's kernel has no ``netem`` queueing discipline and no packet classifiers
(``p2p.tools.netns.probe``).  So, as a fallback and only in a testnet's nodes, the delay and loss
are made *in the node process*, on the TCP byte streams that carry libp2p's connections:

* **delay** ``d``: bytes the node reads from a peer's connection are handed to libp2p no sooner
  than ``d`` after they were read from the socket.  What arrives while a chunk is held waits
  in the kernel until the next read, so a steady stream sees between ``d`` and ``2d``; a
  testnet applies it at both ends, so a round trip takes ``2d`` more.
* **loss** ``p``: a lost TCP segment is not lost to the application; it is sent again after the
  retransmission timeout, and the reader stalls.  So each chunk read stalls, with probability
  ``p``, for 200 ms, doubling while the resend is lost too (at most three times): what loss
  does to a TCP connection, which is all libp2p ever sees of it.

The faults are read from a JSON file the testnet writes and changes while the node runs:
``{"links": {"10.201.7.4": {"delay_ms": 200, "loss": 0.05}}}``, keyed by the peer's IPv4
address (each testnet node has its own in its namespace).  The file is re-read at most once a
second; a missing or unreadable file means no faults.
"""

from __future__ import annotations

import json
import os
import random
import time

import trio

#: the first retransmission stall of a lost segment (Linux's minimum RTO), and how many doublings
RTO_S = 0.2
MAX_RESENDS = 3
MAX_DELAY_MS = 10_000


class LinkFaults:
    """The delay and loss towards each peer address, as the faults file says now."""

    def __init__(self, path: str | os.PathLike, clock=time.monotonic):
        self.path = os.fspath(path)
        self.clock = clock
        self._links: dict[str, tuple[float, float]] = {}
        self._checked = float("-inf")
        self._mtime: float | None = None
        self.random = random.Random()

    def towards(self, host: str) -> tuple[float, float]:
        """(delay in seconds, loss probability) on the link from ``host``."""
        now = self.clock()
        if now - self._checked >= 1.0:
            self._checked = now
            self._reload()
        return self._links.get(host, (0.0, 0.0))

    def _reload(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            self._links, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        self._links = parse(self.path)

    def stall(self, host: str) -> float:
        """How long one read from ``host`` waits: the delay plus any retransmission stalls."""
        delay, loss = self.towards(host)
        wait, rto = delay, RTO_S
        for _ in range(MAX_RESENDS):
            if not loss or self.random.random() >= loss:
                break
            wait += rto
            rto *= 2
        return wait


def parse(path: str) -> dict[str, tuple[float, float]]:
    """The faults file's links; anything malformed counts as no fault (it is the testnet's own file,
    and a typo must not stop a node)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.loads(f.read(1 << 20))
        links = data["links"]
        out = {}
        for host, fault in links.items():
            delay = min(max(float(fault.get("delay_ms", 0)), 0.0), MAX_DELAY_MS) / 1000
            loss = min(max(float(fault.get("loss", 0)), 0.0), 0.9)
            if delay or loss:
                out[str(host)] = (delay, loss)
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def write(path: str | os.PathLike, links: dict[str, dict]) -> None:
    """Replace the faults file atomically (a node never reads half of it)."""
    path = os.fspath(path)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"links": links}, f, indent=1)
    os.replace(tmp, path)


def install(path: str | os.PathLike) -> LinkFaults:
    """Make every TCP connection this process opens or accepts from now on obey the faults file.

    py-libp2p builds each connection's byte stream from ``TrioTCPStream`` in its TCP transport
    module, when dialling and when accepting; the shim swaps in a subclass whose ``read`` waits
    as the faults say.  Testnet nodes only (``klero node --link-faults``)."""
    import libp2p.transport.tcp.tcp as tcp_module
    from libp2p.io.trio import TrioTCPStream

    faults = LinkFaults(path)

    class FaultyTCPStream(TrioTCPStream):
        """Reads whole chunks off the socket, holds each until its delay (and any resend stall)
        has passed, then hands it out in the pieces libp2p asks for: yamux reads a 12-byte
        header, then the body, and a wait on every small read would cap the link at a few
        frames a second instead of delaying it."""

        def __init__(self, stream) -> None:
            super().__init__(stream)
            self._held = bytearray()
            self._ready_at = 0.0
            self._shim_lock = trio.Lock()

        async def read(self, n: int | None = None) -> bytes:
            async with self._shim_lock:
                if not self._held:
                    remote = self.get_remote_address()
                    if remote is None or faults.towards(remote[0]) == (0.0, 0.0):
                        return await super().read(n)
                    data = await super().read(None)  # what has arrived, up to trio's default chunk
                    if not data:
                        return data
                    self._held += data
                    self._ready_at = trio.current_time() + faults.stall(remote[0])
                wait = self._ready_at - trio.current_time()
                if wait > 0:
                    await trio.sleep(wait)
                if n is None or n >= len(self._held):
                    out = bytes(self._held)
                    self._held.clear()
                else:
                    out = bytes(self._held[:n])
                    del self._held[:n]
                return out

    tcp_module.TrioTCPStream = FaultyTCPStream
    return faults


def uninstall() -> None:
    """Connections opened from now on are plain again (tests)."""
    import libp2p.transport.tcp.tcp as tcp_module
    from libp2p.io.trio import TrioTCPStream

    tcp_module.TrioTCPStream = TrioTCPStream
