"""A hostile peer for the network tests: it joins an assembly's topics and sends garbage,
oversized messages, forged and replayed events, and malformed sync traffic to one node.

Usage: python hostile_peer.py LOG TARGET_ADDR WORKDIR   (prints "SENT <json>" when done)
It relays without validating (its validator accepts everything), like a broken or malicious
implementation would."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from p2p import sync  # noqa: E402
from p2p.logfile import read_items  # noqa: E402
from p2p.node import Node  # noqa: E402
from p2p.store import ReplicaStore  # noqa: E402


class Hostile(Node):
    forged: list[bytes] = []
    #: set once the gossip attack is over: sync answers are forged only from then on, so the
    #: target sees the gossip attack (and scores it) before it drops us for the sync one
    forge_sync = False

    def _validator(self, forwarder, msg) -> bool:
        return True  # relays anything

    async def _serve_sync(self, stream) -> None:
        """Answer every sync request with forged events (their signatures flipped)."""
        try:
            await sync.read_frame(stream, sync.MAX_REQUEST)
            for frame in sync.frames(iter(self.forged if self.forge_sync else ())):
                await sync.write_frame(stream, frame)
            await stream.close()
        except Exception:
            pass


async def main(log: str, target: str, work: str) -> None:
    items = [i[2] for i in read_items(log)]
    Hostile.forged = [w[:-1] + bytes([w[-1] ^ 1]) for w in items[1:] if w[:1] != b"\x83"][:150]
    store = ReplicaStore.create(Path(work) / "hostile.sqlite", items[0], durable=False)
    node = Hostile(store, b"\x66" * 32, bootstrap=(target,), sync_interval=3600, say=lambda line: None)
    stop = trio.Event()
    sent = {}

    async def attack(n: Node) -> None:
        import multiaddr
        from libp2p.peer.peerinfo import info_from_p2p_addr

        peer = info_from_p2p_addr(multiaddr.Multiaddr(target)).peer_id
        with trio.fail_after(30):
            while n.events_topic not in n.pubsub.peer_topics or peer not in n.pubsub.peer_topics[n.events_topic]:
                await trio.sleep(0.05)
        event = next(i for i in items[1:] if i[:1] != b"\x83")
        forged = event[:-1] + bytes([event[-1] ^ 1])  # the last byte of the signature
        other = bytes(32)
        batch = {
            "garbage": [b"\x00garbage" * 10, b"\xff" * 100],
            "oversized": [b"\x82" + b"x" * 70_000],
            "forged": [forged],
            "replayed": [event, event],
            "other_assembly": [event.replace(store.assembly, other, 1)],
        }
        for name, payloads in batch.items():
            for payload in payloads:
                await n.pubsub.publish(n.events_topic, payload)
                await trio.sleep(0.01)
            sent[name] = len(payloads)
        # the sync protocol: a garbage request, then a frame announcing 2 GiB
        for payload in (b"\x00" * 64, None):
            stream = await n.host.new_stream(peer, [sync.PROTOCOL])
            try:
                with trio.move_on_after(5):
                    if payload is None:
                        await stream.write(b"\xff\xff\xff\xff\x07")
                    else:
                        await sync.write_frame(stream, payload)
                    await stream.read(10)
            except Exception:
                pass
            try:
                await stream.reset()
            except Exception:
                pass
        sent["sync"] = 2
        await trio.sleep(3)  # stay connected while the node's score of us is read
        Hostile.forge_sync = True
        await trio.sleep(10)  # the target's next syncs with us get forged events
        stop.set()

    async with trio.open_nursery() as nursery:
        def ready(n):
            nursery.start_soon(attack, n)

        await node.run(ready=ready, stop=stop)
    print("SENT " + json.dumps(sent), flush=True)


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:4])
