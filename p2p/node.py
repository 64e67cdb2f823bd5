"""A headless node: a libp2p host that replicates one assembly (issue 7, DESIGN.md §9).

* **Host**: the peer id is the representative's own Ed25519 key (the libp2p key pair comes from
  the signing key's seed); Noise security, Yamux multiplexing, TCP; one connection per peer
  (else every dial waits ~250 ms, STACK.md).  No libp2p peerstore file is written (it would hold
  the private key in clear); peer addresses are kept in the replica store's ``peers`` table.
* **Gossip**: topics ``/klero/<assembly>/events/1`` and ``/klero/<assembly>/rounds/1``.  Message
  ids are content hashes, so an event relayed by several peers is one message.  The validator
  runs the item through the replica before gossipsub accepts or forwards it: an item the replica
  rejects (bad signature, wrong assembly, oversized...) is refused, which penalises the sender's
  score; duplicates are accepted quietly (the replica ignores them).  gossipsub's own spam limit,
  which drops even our own publishes above 10/s, is off; the charter's per-author limits apply.
* **Sync** (``p2p/sync.py``): on connect and every ``sync_interval`` seconds the node asks each
  peer for what it lacks, in bounded frames, until a round teaches it nothing new.
* **Status**: every second the node writes ``status.json`` next to its replica (state hash,
  peers, counts, beacon round, lag) and logs a line every few seconds.

Only this module imports libp2p (slow to import): the rest of ``p2p`` runs without it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import trio

from consensus import cbor
from consensus.errors import InvalidInput, KleroError

from . import sync
from .store import ReplicaStore

log = logging.getLogger("klero.node")

#: how long a sync exchange with one peer may take before it is abandoned (it resumes next time)
SYNC_TIMEOUT = 30.0
#: refused items in one sync after which the peer is disconnected (its items were checked by its
#: own replica, so an honest peer sends few: events another replica still waits on at most)
SYNC_REFUSALS = 100
#: seconds between commits of what gossip brought (group commit)
FLUSH_EVERY = 0.1
#: seconds between the node's looks at its own duties when only events (no beacon round) arrived
ACT_EVERY = 0.2
#: seconds between evaluations of the legislature when no new beacon round arrived
EVALUATE_EVERY = 1.0
#: seconds a node without any peer waits before acting alone on its replica
ALONE_AFTER = 10.0
#: a peer proves it is current by sending a beacon round at most this many seconds (and at
#: least 3 rounds) older than the round due now; a replica restored from a backup is hours or
#: days behind, and a live peer on a loaded machine a few rounds
CURRENT_WITHIN_S = 60.0
#: refusals of one code kept as examples (with the item and the reason) for the status file
REFUSAL_EXAMPLES = 5
#: bytes of one author's events a node holds while they wait for a gap in that author's chain
PENDING_BYTES_PER_AUTHOR = 8 << 20
#: sync requests served at once: by the whole node, and from any one peer (an honest peer asks
#: one at a time; more are reset unread, before their up to 4 MiB are decoded)
SYNC_SERVING = 4
SYNC_SERVING_PER_PEER = 1
#: gossip one peer may forward to us, sustained and in a burst, in items and bytes.  Far above
#: what an honest peer relays for a city (800 representatives); past it the peer's messages are
#: ignored for a moment (neither judged nor forwarded, no penalty: sync repairs any gap), so
#: one peer cannot take the whole event loop with items that are cheap to send
GOSSIP_ITEMS_PER_S, GOSSIP_ITEMS_BURST = 1_000.0, 5_000.0
GOSSIP_BYTES_PER_S, GOSSIP_BYTES_BURST = float(8 << 20), float(32 << 20)
#: peers remembered with a negative score (``penalised``, ``score_causes``) or a gossip rate: the
#: status and the node's memory stay bounded
PENALISED_KEPT = 256
#: seconds a peer we dropped (too many refused items in a sync) is disconnected again if it returns
BAN_S = 600.0
#: seconds between checks of whether other nodes can connect to this one (``p2p.reach``)
REACH_EVERY = 600.0
#: connections kept to peers we chose ourselves, however many others dial in (eclipse), and the
#: most connections kept at all (strangers beyond it are dropped first)
OUTBOUND_MIN = 3
MAX_PEERS = 96  # above the 64 nodes a testnet may have, so its seed never drops one


@dataclass
class NodeStats:
    gossip_accepted: int = 0
    gossip_refused: int = 0
    #: gossiped copies of what we hold, or refused without fault: neither forwarded nor penalised
    gossip_not_forwarded: int = 0
    gossip_rate_limited: int = 0
    #: events held back because their author already had too much waiting for a gap
    held_back: int = 0
    synced_items: int = 0
    sync_refused: int = 0
    published: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    #: sync exchanges that broke off (a closed or reset stream, a timeout), by role and exception:
    #: no item was refused, so these are not refusals
    sync_failures: dict[str, int] = field(default_factory=dict)
    #: the first few refusals of each code: where from, which item, why (``Node.status``)
    refusal_examples: dict[str, list[dict]] = field(default_factory=dict)


def _rss_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def describe_item(item: bytes) -> str:
    """A short description of a network item for refusal reports: a beacon round's number, an
    event's kind, author, seq and round (or its size when it cannot be read at all)."""
    try:
        from consensus import cbor

        value = cbor.decode_fast(item)
        if item[:1] == b"\x83":
            return f"beacon round {value[0]}"
        fields = cbor.decode_fast(value[0])
        return (f"{fields['kind']} by {bytes(fields['author']).hex()[:16]} seq {fields['seq']} "
                f"round {fields['round'][0]}, {len(item)} bytes")
    except Exception:
        return f"{len(item)} unreadable bytes {item[:16].hex()}"


def _explain(exc: BaseException) -> str:
    """An exception and what caused it, on one line (libp2p wraps a muxer's reason in a bare one)."""
    parts = []
    while exc is not None and len(parts) < 4:
        parts.append(f"{type(exc).__name__}({exc})" if str(exc) else type(exc).__name__)
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(parts)


def _is_transport_failure(exc: BaseException) -> bool:
    """A broken stream, connection or timeout (nobody's item was bad), as opposed to a bug."""
    from libp2p.exceptions import BaseLibp2pError  # streams, muxers, negotiation, I/O

    return isinstance(exc, (BaseLibp2pError, trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError,
                            OSError, EOFError))


#: a new member's node asks a peer for the assembly's charter (``klero join --bootstrap``)
CHARTER_PROTOCOL = "/klero/charter/1.0.0"


def make_host(seed: bytes, listen: list, *, mdns: bool = False):
    """A libp2p host as every node makes it: Ed25519 identity, Noise, Yamux, TCP."""
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair as ed25519_key_pair
    from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
    from libp2p.network.config import ConnectionConfig
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE, Transport as Noise
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX, Yamux
    from libp2p.transport.tcp.tcp import TCP

    logging.getLogger("libp2p").setLevel(logging.CRITICAL)  # its warnings would bypass our log
    pair = ed25519_key_pair(seed)
    return new_host(
        key_pair=pair,
        sec_opt={NOISE: Noise(pair, noise_privkey=x25519_key_pair().private_key)},
        muxer_opt={YAMUX: Yamux},
        transports=[TCP()],
        listen_addrs=listen,
        enable_mDNS=mdns,  # LAN discovery: it only fills the peerstore; we dial ourselves
        # one connection per peer (else each dial waits ~250 ms); no auto-connector: it would
        # redial every peer it ever saw, undoing our own choice of peers
        connection_config=ConnectionConfig(max_connections_per_peer=1, min_connections=0, low_watermark=0),
    )


def fetch_charter(address: str, timeout: float = 20.0) -> bytes:
    """The charter of the assembly the node at ``address`` (/ip4/…/tcp/…/p2p/…) replicates, as it
    sends it: the caller must check it is the assembly it means to join (its id)."""
    import multiaddr
    from libp2p.peer.peerinfo import info_from_p2p_addr

    from consensus.events import MAX_CHARTER_BYTES

    try:
        info = info_from_p2p_addr(multiaddr.Multiaddr(address))
    except Exception:
        raise KleroError(f"{address!r} is not a peer address: it must look like /ip4/HOST/tcp/PORT/p2p/PEER-ID.") from None

    async def main() -> bytes:
        host = make_host(os.urandom(32), [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")])
        async with host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            try:
                with trio.fail_after(timeout):
                    await host.connect(info)
                    stream = await host.new_stream(info.peer_id, [CHARTER_PROTOCOL])
                    data = await sync.read_frame(stream, MAX_CHARTER_BYTES)
                    await stream.close()
                    return data
            finally:
                with trio.CancelScope(shield=True):
                    await host.close()

    try:
        return trio.run(main)
    except trio.TooSlowError:
        raise KleroError(f"The node at {address} did not answer within {timeout:.0f} s; is it running and reachable?") from None
    except KleroError:
        raise
    except Exception as exc:
        raise KleroError(f"Could not fetch the charter from {address}: {_explain(exc)}.") from None


def topics(assembly: bytes) -> tuple[str, str]:
    a = assembly.hex()
    return f"/klero/{a}/events/1", f"/klero/{a}/rounds/1"


class Node:
    def __init__(self, store: ReplicaStore, seed: bytes, *, port: int = 0, bootstrap: tuple[str, ...] = (),
                 observer: bool = False, sync_interval: float = 5.0, status_path: Path | None = None,
                 say: Callable[[str], None] = print, trace: Path | None = None, beacon_relays: tuple[str, ...] = (),
                 mdns: bool = False, reactor=None, host: str = "127.0.0.1", act_alone: bool = False):
        self.store = store
        #: the IPv4 address the node listens on: loopback by default (tests, the demo); a
        #: testnet's network namespaces give each node its own
        self.listen_host = host
        #: the hosted representatives' own work (``p2p.reactor.Reactor``): panel duties, bots
        self.reactor = reactor
        self.caught_up = False  # acts only once a whole sync with a peer (or --act-alone) says we are current
        #: the first node of a new network may act with no peer to sync with (never by default)
        self.act_alone = act_alone
        self._said_alone = False
        self._complete: set = set()  # peers an exchange with ran to its end (they had nothing more for us)
        #: how this node came to act: the peer that proved it current and the round it sent, or
        #: why the last whole sync did not count
        self.currency = ""
        self.banned: dict[str, float] = {}  # peer id -> monotonic time until which it is dropped on sight
        self._outbound: set = set()  # peers we dialled ourselves
        self._dialling = False
        self._dial_failed: dict[str, float] = {}  # address -> when a dial to it last failed
        self._nursery = None
        self._roster_ids: set[str] | None = None
        self.duty_ms: list[float] = []
        self.loop_lag_ms: list[float] = []  # recent wake-up delays of the event loop (``_watch_loop``)
        self.loop_lag_max_ms = 0.0
        self.seed = seed
        self.port = port
        self.bootstrap = tuple(bootstrap)
        self.observer = observer
        self.sync_interval = sync_interval
        self.status_path = status_path
        self.say = say
        self.stats = NodeStats()
        # benchmarks: one line "<sha256 of the item> <unix time>" per item new to this node
        self._trace = open(trace, "a", buffering=1) if trace else None
        self.events_topic, self.rounds_topic = topics(store.assembly)
        self.started = time.monotonic()
        self.host = None
        self.pubsub = None
        self.router = None
        self.address = ""
        self.beacon_relays = tuple(beacon_relays)
        #: (start_at, round_zero, round_seconds) when the beacon runs on a known schedule (a
        #: testnet's dev beacon): stalls are judged by it rather than by the rounds' arrival
        self.beacon_schedule: tuple[float, int, float] | None = None
        self.mdns = mdns
        self._mdns_tried: dict = {}
        self.beacon_problem = ""
        self._syncing: set = set()
        self._serving: dict[str, int] = {}  # sync requests being served, by peer
        self._benign: bytes | None = None  # the message id the validator just refused without fault
        self._sync_slots = trio.CapacityLimiter(SYNC_SERVING)
        self._pool = None
        self._no_pool = False
        self._dirty = False
        self._legislature: dict = {}
        self.penalised: dict[str, None] = {}  # an ordered set: the oldest are forgotten first
        self._rates: dict[str, tuple[float, float, float]] = {}  # peer -> (items, bytes, when): gossip buckets
        #: what made a peer's gossip score negative, per component (the last time it was)
        self.score_causes: dict[str, dict] = {}
        #: the representative's service (p2p.service) and the profile folder its door is
        #: published in (p2p.control): the CLI and the app act through this node while it runs
        self.service = None
        self.control_folder: Path | None = None
        #: the keys whose events' spread this node follows (the person's), and per peer the
        #: highest seq of each it held at its last sync request: "what each act reached"
        self.reach_keys: set[bytes] = set()
        self.peer_have: dict[str, dict[bytes, int]] = {}

    # ------------------------------------------------------------------ building the host

    def _make_host(self):
        import multiaddr

        self._listen = [multiaddr.Multiaddr(f"/ip4/{self.listen_host}/tcp/{self.port}")]
        return make_host(self.seed, self._listen, mdns=self.mdns)

    def _make_pubsub(self, host):
        import libp2p.pubsub.pubsub as pubsub_module
        from libp2p.pubsub.rpc_queue import RpcQueue

        # two hidden 32-deep queues drop messages silently (STACK.md): the subscription channel
        # (read at subscribe time) and each peer's outbound queue (only its defaults can be set)
        pubsub_module.SUBSCRIPTION_CHANNEL_SIZE = 1024
        RpcQueue.__init__.__defaults__ = (1024, 1 << 20)
        from libp2p.pubsub.gossipsub import PROTOCOL_ID as V10, PROTOCOL_ID_V11 as V11, GossipSub
        from libp2p.pubsub.pubsub import Pubsub, get_content_addressed_msg_id
        from libp2p.pubsub.score import ScoreParams, TopicScoreParams

        score = ScoreParams(
            # each refused message costs its forwarder 10 points (capped), decaying by 10 % a beat
            p4_invalid_messages=TopicScoreParams(weight=10.0, cap=100.0, decay=0.9),
            # behaviour penalties (GRAFT floods, broken promises, "equivocations") fade by 10 % a
            # beat: by default they never decay, so one bad minute graylists a peer for good
            p5_behavior_penalty_weight=1.0,
            p5_behavior_penalty_threshold=20.0,
            p5_behavior_penalty_decay=0.9,
            publish_threshold=-50.0,  # below: we stop sending them what we publish
            gossip_threshold=-20.0,  # below: no gossip to or from them
            graylist_threshold=-80.0,  # below: everything from them is ignored
            accept_px_threshold=10.0,
        )
        router = GossipSub(
            protocols=[V11, V10], degree=6, degree_low=4, degree_high=12,
            heartbeat_initial_delay=0.1, heartbeat_interval=1, time_to_live=60,
            gossip_window=3, gossip_history=5,
            spam_protection_enabled=False,  # STACK.md: it silently drops our own publishes
            score_params=score,
        )
        # a benign refusal (``_validator``) is no invalid message: the forwarder keeps its score
        original = router.scorer.on_invalid_message

        def on_invalid_message(peer, topic) -> None:
            if self._benign is not None:
                self.pubsub.validation_cache._remove(self._benign)
                return
            original(peer, topic)

        router.scorer.on_invalid_message = on_invalid_message
        limit = self.store.replica.limits.max_event_bytes + 4096
        pubsub = Pubsub(host, router, strict_signing=True, msg_id_constructor=get_content_addressed_msg_id,
                        max_inbound_rpc_size=max(limit, 1 << 20))
        # pubsub numbers our messages from int(time.time()) up, one per message: a node that
        # published more than one a second and restarts reuses numbers, which its peers take for
        # gossip equivocation (-100 each, STACK.md) and graylist it.  Nanoseconds never repeat.
        pubsub.counter = time.time_ns()
        return pubsub, router

    # ------------------------------------------------------------------ validation

    def _accept(self, data: bytes, source: str, flush: bool = True, signature_checked: bool = False,
                peer: str = "") -> str | None:
        """Run one item from the network through the replica: its status, or None if refused
        (then it is neither stored nor relayed).  ``signature_checked``: a worker verified it;
        ``peer``: who sent it (for the refusal examples in the status)."""
        limit = self.store.replica.limits.max_event_bytes
        if len(data) > limit:
            self._refuse(source, "too_large", f"{len(data)} bytes, more than {limit}", data, peer)
            return None
        if self.store.holds_back(data, PENDING_BYTES_PER_AUTHOR):
            # held back, not refused: sync brings it again once the author's gap is filled
            self.stats.held_back += 1
            if self.stats.held_back == 1:
                self.say(f"Holding back events far ahead of their author's chain: more than {PENDING_BYTES_PER_AUTHOR >> 20} "
                         "MiB of one author's events already wait for a gap (they come again once it is filled).")
            return "duplicate"
        try:
            outcome = self.store.add_item(data, signature_checked=signature_checked)
        except InvalidInput as exc:
            self._refuse(source, exc.rejection.code, exc.rejection.reason, data, peer)
            return None
        except Exception as exc:  # a bug in our checks must refuse one item, never stop the node
            log.exception("refusing an item that made the replica fail")
            self._refuse(source, "internal_error", f"{type(exc).__name__}: {exc}", data, peer)
            return None
        if outcome.status == "rejected":
            if outcome.rejection is not None and not outcome.rejection.fatal:
                return "duplicate"  # e.g. the assembly's own charter: nothing wrong, nothing new
            rejection = outcome.rejection
            self._refuse(source, rejection.code if rejection else "rejected", rejection.reason if rejection else "", data, peer)
            return None
        if flush:
            self.store.flush()
        if self._trace is not None and outcome.status != "duplicate":
            self._trace_item(data)
        return outcome.status

    def _trace_item(self, data: bytes) -> None:
        import hashlib

        self._trace.write(f"{hashlib.sha256(data).hexdigest()[:16]} {time.time():.6f}\n")

    def _refuse(self, source: str, code: str, reason: str = "", item: bytes | None = None, peer: str = "") -> None:
        self.stats.refusals[code] = self.stats.refusals.get(code, 0) + 1
        if source == "gossip":
            self.stats.gossip_refused += 1
        else:
            self.stats.sync_refused += 1
        examples = self.stats.refusal_examples.setdefault(code, [])
        if len(examples) < REFUSAL_EXAMPLES:
            example = {"source": source, "peer": str(peer)[-8:], "reason": reason[:300],
                       "beacon_round": max(self.store.replica.beacon, default=0), "uptime_s": round(time.monotonic() - self.started, 1)}
            if item is not None:
                example["item"] = describe_item(item)
            examples.append(example)
            if len(examples) == 1:  # one log line per code: enough to find it, never a flood
                self.say(f"Refused an item ({code}, {source}" + (f" from {example['peer']}" if peer else "") + f"): {reason[:200]}"
                         + (f" [{example['item']}]" if item is not None else ""))

    def _validator(self, forwarder, msg) -> bool:
        """Gossip's gate: True forwards the message to our mesh.  Only what is new to us and
        accepted is forwarded.  A copy of what we hold, and an item refused without fault (too far
        ahead of its author's chain, an uncertified key while many wait), are not forwarded
        either: replayed history would otherwise echo through every node.  py-libp2p has no
        "ignore" verdict, so such a message is marked seen (later copies are dropped before
        validation) and its one failed validation costs the forwarder nothing (``_benign``,
        checked by the scorer wrapper in ``_make_pubsub``)."""
        self._benign = None
        if forwarder == self.host.get_id():
            return True  # what we publish ourselves was stored (and judged) before it left
        if not self._within_rate(str(forwarder), len(msg.data)):
            # not marked seen: the same message from another peer is still judged
            self.stats.gossip_rate_limited += 1
            self._benign = self.pubsub._msg_id_constructor(msg)
            return False
        # group commit: gossiped items are flushed by _flusher within FLUSH_EVERY (one fsync per
        # message per node made 20 nodes on one disk queue for seconds); what we publish
        # ourselves is flushed before it leaves, and sync flushes every frame
        status = self._accept(bytes(msg.data), "gossip", flush=False, peer=str(forwarder))
        if status is not None and status != "duplicate":
            self._dirty = True
            self.stats.gossip_accepted += 1
            return True
        if status == "duplicate":
            self.stats.gossip_not_forwarded += 1
            self.pubsub._mark_msg_seen(msg)
            self._benign = self.pubsub._msg_id_constructor(msg)
        return False

    def _within_rate(self, peer: str, size: int) -> bool:
        """Take one item of ``size`` bytes from ``peer``'s token buckets; False when either is empty."""
        now = time.monotonic()
        items, data, then = self._rates.get(peer, (GOSSIP_ITEMS_BURST, GOSSIP_BYTES_BURST, now))
        items = min(GOSSIP_ITEMS_BURST, items + (now - then) * GOSSIP_ITEMS_PER_S)
        data = min(GOSSIP_BYTES_BURST, data + (now - then) * GOSSIP_BYTES_PER_S)
        ok = items >= 1 and data >= size
        if ok:
            items, data = items - 1, data - size
        self._rates.pop(peer, None)  # most recently heard last: the oldest are forgotten first
        self._rates[peer] = (items, data, now)
        while len(self._rates) > PENALISED_KEPT:
            del self._rates[next(iter(self._rates))]
        return ok

    # ------------------------------------------------------------------ publishing

    async def publish(self, item: bytes) -> str:
        """Add a signed event (or a beacon round) to the replica and gossip it; returns its status.
        An observer relays beacon rounds but never publishes events."""
        if self.observer and item[:1] != b"\x83":
            raise PermissionError("An observer node never publishes events.")
        outcome = self.store.add_item(item)
        self.store.flush()
        if self._trace is not None:
            self._trace_item(item)
        if outcome.status in ("applied", "pending", "equivocation", "invalid", "excluded"):
            await self._gossip(item)
        return outcome.status

    async def _gossip(self, item: bytes) -> None:
        topic = self.rounds_topic if item[:1] == b"\x83" else self.events_topic
        # back-pressure: a full outbound queue would drop the message silently
        for _ in range(5000):
            if all(len(q) < 512 for q in list(self.pubsub.peer_queues.values())):
                break
            await trio.sleep(0.002)
        await self.pubsub.publish(topic, item)
        self.stats.published += 1

    # ------------------------------------------------------------------ own work

    async def _act(self) -> None:
        """Run the reactor whenever the replica changed: at once for a new beacon round, else at
        most every ``ACT_EVERY`` seconds, and never more than a fifth of the time (a step's cost
        grows with the assembly: relaying must keep the CPU).  The legislature is evaluated
        again for a new round, else at most every ``EVALUATE_EVERY`` seconds; in between, new
        panel messages only feed the agreements (no evaluation needed)."""
        r = self.store.replica
        seen = None
        last = last_evaluation = 0.0
        pause = ACT_EVERY
        while True:
            await trio.sleep(0.05)
            if not self.caught_up:
                continue
            version = (max(r.beacon, default=0), len(r.records), r.applied_count())
            now = time.monotonic()
            new_round = seen is None or version[0] != seen[0]
            if version == seen or (not new_round and now - last < pause):
                continue
            evaluate = new_round or now - last_evaluation >= EVALUATE_EVERY
            seen, last = version, now
            if evaluate:
                last_evaluation = now
            began = time.perf_counter()
            wires = self.reactor.step(self._add_own, evaluate=evaluate)  # never raises: see .problem
            spent = time.perf_counter() - began
            pause = max(ACT_EVERY, 4 * spent)
            self.duty_ms = (self.duty_ms + [round(spent * 1000, 1)])[-200:]
            if wires:
                self.store.flush()
                for wire in wires:
                    if self._trace is not None:
                        self._trace_item(wire)
                    await self._gossip(wire)
            seen = (max(r.beacon, default=0), len(r.records), r.applied_count())

    async def _serve_control(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """The door for this profile's own CLI and app (p2p.control): one request a connection."""
        from . import control

        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        token = control.write_door(self.control_folder, listeners[0].socket.getsockname()[1])

        async def serve(stream) -> None:
            data = b""
            with trio.move_on_after(30):
                while not data.endswith(b"\n") and len(data) <= control.MAX_REQUEST:
                    chunk = await stream.receive_some(1 << 16)
                    if not chunk:
                        break
                    data += chunk
            if len(data) > control.MAX_REQUEST:
                reply = {"error": f"The request is larger than {control.MAX_REQUEST:,} bytes."}
            else:
                reply = await self._answer(control, data, token)
            try:
                line = json.dumps(reply).encode() + b"\n"
            except (TypeError, ValueError) as exc:  # a bug in a view: say so, keep the node running
                log.error("a control answer could not be encoded: %s", exc)
                line = json.dumps({"error": f"The node could not encode its answer ({exc}); see its log."}).encode() + b"\n"
            try:
                await stream.send_all(line)
                await stream.aclose()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

        try:
            task_status.started()
            await trio.serve_listeners(serve, listeners)
        finally:
            control.remove_door(self.control_folder)

    async def _answer(self, control, data: bytes, token: str) -> dict:
        """Run one service call; what it signed is on disk before it is gossiped (write-ahead)."""
        hands = self.service.hands
        before = len(hands.out) if hands is not None else 0
        try:
            reply, _ = control.handle(self.service, data, token)
        except Exception as exc:  # a bug in a view must not stop the node
            log.exception("a control request failed")
            reply = {"error": f"The node could not answer ({type(exc).__name__}: {exc}); see its log."}
        new = hands.out[before:] if hands is not None else []
        if new:
            self.store.flush()
            for wire in new:
                if self._trace is not None:
                    self._trace_item(wire)
                await self._gossip(wire)
        return reply

    async def _pump_outbox(self) -> None:
        """Sign what waits in the person's outbox (a long text's later changes) as rounds come."""
        r = self.store.replica
        seen = -1
        while True:
            await trio.sleep(0.2)
            horizon = max(r.beacon, default=0)
            if horizon == seen or not self.service.outbox or not self.caught_up:
                continue
            seen = horizon
            try:
                wires = self.service.pump()
            except Exception as exc:
                log.warning("the outbox could not be sent: %s", exc)
                continue
            if wires:
                self.store.flush()
                for wire in wires:
                    await self._gossip(wire)

    def reach(self) -> dict:
        """For each followed key, how many connected peers held each of its seqs at their last
        sync request (peers sync every few seconds; gossip usually delivers sooner)."""
        peers = {str(p) for p in self.host.get_connected_peers()} if self.host else set()
        out = {}
        for key in self.reach_keys:
            held = [have.get(key, 0) for peer, have in self.peer_have.items() if peer in peers]
            out[key.hex()] = {"peers": len(peers), "held": held}
        return out

    def _add_own(self, wire: bytes) -> None:
        outcome = self.store.add_item(wire)
        if outcome.status not in ("applied", "equivocation"):
            raise RuntimeError(f"our own event was not applied: {outcome.status} {outcome.rejection}")

    # ------------------------------------------------------------------ sync

    async def _serve_charter(self, stream) -> None:
        """Send the assembly's charter to a node that is joining (it checks the id itself)."""
        try:
            with trio.fail_after(10):
                await sync.write_frame(stream, self.store.replica.charter_event.wire)
                await stream.close()
        except Exception as exc:
            log.info("a charter request failed: %s", _explain(exc))
            await self._reset(stream)

    async def _serve_sync(self, stream) -> None:
        try:
            peer = str(stream.muxed_conn.peer_id)
        except Exception:
            peer = ""
        if self._serving.get(peer, 0) >= SYNC_SERVING_PER_PEER:
            # a second request while its first is served: no honest peer does that
            why = f"more than {SYNC_SERVING_PER_PEER} sync request(s) at once from one peer"
            self._refuse("sync", "sync_busy", why, None, peer)
            await self._refuse_stream(stream, "sync_busy", why + "; ask again once the first is answered")
            return
        self._serving[peer] = self._serving.get(peer, 0) + 1
        try:
            async with self._sync_slots:
                await self._serve_sync_request(stream, peer)
        finally:
            self._serving[peer] -= 1
            if not self._serving[peer]:
                del self._serving[peer]

    async def _serve_sync_request(self, stream, peer: str) -> None:
        phase = "reading the request"
        try:
            with trio.fail_after(SYNC_TIMEOUT):
                raw = await sync.read_frame(stream, sync.MAX_REQUEST)
                # a request of up to 4 MiB is decoded off the event loop, which keeps gossip,
                # duties and other peers' syncs moving while it is checked
                request = await trio.to_thread.run_sync(sync.decode_request, raw)
                if peer and self.reach_keys:
                    self.peer_have[peer] = {k: request.have.get(k, 0) for k in self.reach_keys}
                for n, frame in enumerate(sync.frames(sync.missing(self.store, request))):
                    phase = f"writing frame {n}"
                    await sync.write_frame(stream, frame)
            phase = "closing"
            await stream.close()
        except InvalidInput as exc:  # the peer sent a malformed request: a real refusal
            log.info("sync request refused: %s", exc)
            self._refuse("sync", exc.rejection.code, f"serving a sync request, {phase}: {exc.rejection.reason}", None, peer)
            await self._refuse_stream(stream, exc.rejection.code, exc.rejection.reason)
        except Exception as exc:  # a peer's fault, or ours, must never stop the node
            if _is_transport_failure(exc):
                # The requester went away, or the stream or connection broke, or it took longer
                # than SYNC_TIMEOUT: no item was refused, so this is no refusal.  Under CPU load
                # py-libp2p's requester gives up on a stream whose protocol negotiation took
                # over 10 s (ConnectionConfig.outbound_stream_protocol_negotiation_timeout) and
                # closes it, and we read EOF where its request should be; counting that as a
                # refusal made an honest testnet report refused items (test_testnet, loaded CI).
                self._sync_failed("serving", peer, phase, exc)
            else:  # a bug in our own sync code: refused, and loudly
                log.exception("serving a sync request failed")
                self._refuse("sync", "internal_error", f"serving a sync request, {phase}: {_explain(exc)}", None, peer)
            await self._reset(stream)

    async def _refuse_stream(self, stream, code: str, reason: str) -> None:
        """Tell the requester why (one refusal frame, docs/sync.md), close our side, give it up to
        2 s to read that and close its own, then reset the stream.  (A reset at once can overtake
        the frame: py-libp2p's yamux drops what a stream buffered when its reset arrives.)"""
        with trio.move_on_after(2):
            try:
                await sync.write_frame(stream, sync.refusal(code, reason))
                await stream.close()
                while await stream.read(1 << 16):  # whatever else it sends is dropped unread
                    pass
            except Exception:
                pass
        await self._reset(stream)

    @staticmethod
    async def _reset(stream) -> None:
        with trio.CancelScope(shield=True):
            try:
                await stream.reset()
            except Exception:
                pass

    def _sync_failed(self, role: str, peer: str, phase: str, exc: BaseException) -> None:
        """An exchange that broke off (not a refusal): counted by role and cause in the status,
        the first of each kind said in the log, the rest at info level."""
        key = f"{role} {type(exc).__name__}"
        self.stats.sync_failures[key] = self.stats.sync_failures.get(key, 0) + 1
        line = f"Sync ({role}, peer {str(peer)[-8:]}) broke off" + (f" {phase}" if phase else "") + f": {_explain(exc)}"
        if self.stats.sync_failures[key] == 1:
            self.say(line + " (not a refusal; it resumes at the next exchange)")
        else:
            log.info(line)

    async def sync_with(self, peer_id) -> int:
        """Fetch what ``peer_id`` has and we lack, until it teaches nothing new (bounded)."""
        if peer_id in self._syncing:
            return 0
        self._syncing.add(peer_id)
        learned = refused = 0
        newest = 0  # the newest beacon round the peer sent (it proves the peer is current)
        due = None if self.caught_up else self._current_round()
        max_item = self.store.replica.limits.max_event_bytes
        try:
            for _ in range(1000):  # 1000 x 20,000 items: far beyond any assembly here
                new = 0
                stream = await self.host.new_stream(peer_id, [sync.PROTOCOL])
                try:
                    with trio.fail_after(SYNC_TIMEOUT):
                        # until a peer proves it is current, we do not name our newest rounds: a
                        # current peer then sends them, a stale one cannot
                        await sync.write_frame(stream, sync.request_for(self.store, rounds_below=due).encode())
                        # large frames have their signatures checked by worker processes while
                        # the replica applies the frame before (the one real cost, STACK.md)
                        queue: list = []
                        while True:
                            items = sync.decode_frame(await sync.read_frame(stream, sync.MAX_FRAME), max_item)
                            if items:
                                queue.append((items, self._check_ahead(items)))
                            while queue and (not items or len(queue) > 1):
                                batch, future = queue.pop(0)
                                oks = await trio.to_thread.run_sync(future.result) if future else [False] * len(batch)
                                for item, ok in zip(batch, oks):
                                    status = self._accept(item, "sync", flush=False, signature_checked=ok, peer=str(peer_id))
                                    if status is None:
                                        refused += 1
                                        continue
                                    if status != "duplicate":
                                        new += 1
                                    if due is not None and item[:1] == b"\x83":  # a beacon round (accepted: well formed)
                                        newest = max(newest, cbor.decode_fast(item)[0])
                                self.store.flush()
                                await trio.sleep(0)
                            if not items or refused >= SYNC_REFUSALS:  # judged frame by frame, not after 30 s of garbage
                                break
                    if refused >= SYNC_REFUSALS:
                        await stream.reset()
                    else:
                        await stream.close()
                except BaseException:
                    with trio.CancelScope(shield=True):
                        try:
                            await stream.reset()
                        except Exception:
                            pass
                    raise
                learned += new
                if refused >= SYNC_REFUSALS:  # an honest peer sends only what its replica accepted
                    self.say(f"Disconnecting {str(peer_id)[-8:]} for {BAN_S / 60:.0f} min: it sent {refused} items our "
                             "replica refuses.")
                    self.banned[str(peer_id)] = time.monotonic() + BAN_S
                    await self.host.disconnect(peer_id)
                    break
                if new == 0:  # duplicates teach nothing: the peer has nothing more for us
                    self._complete.add(peer_id)
                    if not self.caught_up:
                        self._judge_currency(peer_id, due, newest)
                    break
        except (InvalidInput, trio.TooSlowError, Exception) as exc:
            self._sync_failed("requesting", str(peer_id), "", exc)
        finally:
            self._syncing.discard(peer_id)
        self.stats.synced_items += learned
        return learned

    # ------------------------------------------------------------------ beacon

    async def _follow_beacon(self) -> None:
        """Fetch the latest round from the relays once a period, verify it through the replica
        and gossip it when it is new to us, so peers without relay access get it too."""
        from consensus.beacon import encode_round

        from .beacon import BeaconError, HttpRelay

        chain = self.store.replica.charter.beacon
        relay = HttpRelay(chain, list(self.beacon_relays), timeout=3.0, retries=1, backoff=0.2)
        period = max(chain.period_ms / 1000, 0.2)
        while True:
            try:
                rnd = await trio.to_thread.run_sync(relay.fetch, abandon_on_cancel=True)
            except Exception as exc:  # no answer of any shape from a relay may stop the node
                problem = exc.message if isinstance(exc, BeaconError) else f"the relay's answer broke the client ({type(exc).__name__})"
                if not isinstance(exc, BeaconError):
                    log.exception("a beacon relay's answer made the client fail")
                if self.beacon_problem != problem:
                    self.say(f"Beacon relays unreachable or wrong: {problem}")
                self.beacon_problem = problem
            else:
                self.beacon_problem = ""
                await self.offer_round(encode_round(rnd))
            await trio.sleep(period)

    async def offer_round(self, item: bytes) -> bool:
        """A beacon round from outside the network (a relay, or the dev beacon this node runs):
        verified through the replica and gossiped when it is new; True if it was."""
        if self._accept(item, "relay") in (None, "duplicate"):
            return False
        await self.pubsub.publish(self.rounds_topic, item)
        return True

    def beacon(self) -> dict:
        """The beacon as this node sees it: latest verified round, the round due now, stalled?
        (``p2p.beacon.beacon_health``: public chains by their schedule, a testnet's dev chain by
        the testnet's, any other dev chain by when its rounds arrive.)"""
        from .beacon import beacon_health

        r = self.store.replica
        latest = max(r.beacon) if r.beacon else 0
        now = time.monotonic()
        if latest != getattr(self, "_beacon_latest", None):
            self._beacon_latest, self._beacon_seen = latest, now
        out = beacon_health(r.charter.beacon, latest, time.time(), schedule=self.beacon_schedule,
                            quiet_s=now - self._beacon_seen)
        if self.beacon_problem:
            out["relay_problem"] = self.beacon_problem
        return out

    def _current_round(self) -> int | None:
        """The oldest beacon round a peer must send to prove it is current, or None when nothing
        says which round is due (a dev chain on no known schedule, or before its first round)."""
        info = self.beacon()
        if info.get("expected") is None:
            return None
        period = self.beacon_schedule[2] if self.beacon_schedule else self.store.replica.charter.beacon.period_ms / 1000
        period = max(period, 0.001)
        slack = max(3, int(CURRENT_WITHIN_S / period))
        return max(1, info["expected"] - slack)

    def _judge_currency(self, peer_id, due: int | None, newest: int) -> None:
        """After a whole exchange with ``peer_id``: act if it proved it is current.  A replica
        restored from an old backup would otherwise sign from a stale head and fork its own
        chain, and a peer as stale as it (offline as long) proves nothing about that chain."""
        who = str(peer_id)[-8:]
        if due is None:
            self.caught_up = True
            self.currency = f"a whole sync with {who} (the beacon's schedule is unknown here, so any peer counts)"
        elif newest >= due:
            self.caught_up = True
            self.currency = f"a whole sync with {who}, which sent beacon round {newest:,} (round {due:,} or later was needed)"
        else:
            sentence = (f"{'Not current yet' if self.observer else 'Not acting yet'}: peer {who} holds no recent beacon "
                        f"round (round {due:,} or later), so it may be as stale as this replica. Waiting for a current "
                        "peer" + ("." if self.observer else "; --act-alone overrides."))
            if sentence != self.currency:
                self.say(sentence)
            self.currency = sentence
            return
        self.say(f"{'Current' if self.observer else 'Acting'}: caught up by {self.currency}.")

    def _check_ahead(self, items: list[bytes]):
        """A future of the items' signature checks in the worker pool, or None for small frames
        (starting the pool costs about a second; it pays only for catching up)."""
        if len(items) < 256 or self._no_pool:
            return None
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            from .pipeline import default_workers, die_with_parent

            try:  # spawn, not fork: this process runs threads (trio's, the library's)
                self._pool = ProcessPoolExecutor(default_workers(), mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=die_with_parent, initargs=(os.getpid(),))
            except OSError as exc:
                log.info("no worker pool (%s): signatures are checked inline", exc)
                self._no_pool = True
                return None
        from consensus.beacon import chain_to_body

        from .pipeline import check_signatures

        return self._pool.submit(check_signatures, items, chain_to_body(self.store.replica.charter.beacon))

    # ------------------------------------------------------------------ peers

    def known_addresses(self) -> list[str]:
        rows = self.store.db.execute("SELECT address FROM peers ORDER BY last_seen DESC LIMIT 64").fetchall()
        return [a for (a,) in rows]

    def _remember(self, address: str) -> None:
        self.store.db.execute(
            "INSERT INTO peers VALUES (?, ?) ON CONFLICT (address) DO UPDATE SET last_seen = excluded.last_seen",
            [address, time.time()],
        )

    async def _dial_more(self) -> None:
        """One pass over the seeds until OUTBOUND_MIN peers we chose are connected.  The command
        line's, the settings' and the charter's seeds are tried at every pass (every 5 s); a
        remembered address that failed is tried again only after 30 s."""
        try:
            chosen = {p for p in self.host.get_connected_peers() if self._is_chosen(p)}
            named = set(self.bootstrap + self.store.replica.charter.bootstrap)
            for address in self._seeds():
                if len(chosen) >= OUTBOUND_MIN:
                    break
                if address not in named and time.monotonic() - self._dial_failed.get(address, -1e9) < 30:
                    continue
                if await self.connect(address):
                    chosen = {p for p in self.host.get_connected_peers() if self._is_chosen(p)}
                elif not any(address.endswith("/p2p/" + str(p)) for p in self.host.get_connected_peers()):
                    self._dial_failed[address] = time.monotonic()
                    if len(self._dial_failed) > 1024:
                        self._dial_failed.pop(next(iter(self._dial_failed)))
            if self.mdns:
                await self._dial_discovered()
        finally:
            self._dialling = False

    def _seeds(self) -> list[str]:
        """Addresses to dial, best first: the command line and settings, the charter's seed
        peers, then peers seen before, representatives' nodes ahead of the rest."""
        roster = self._roster_peers()
        known = sorted(self.known_addresses(), key=lambda a: a.rsplit("/p2p/", 1)[-1] not in roster)
        return list(dict.fromkeys(self.bootstrap + self.store.replica.charter.bootstrap + tuple(known)))

    def _roster_peers(self) -> set[str]:
        """Peer ids of the founding roster's and the registrars' nodes (a node's peer id is its
        owner's key), computed once."""
        if self._roster_ids is None:
            from libp2p.crypto.ed25519 import Ed25519PublicKey
            from libp2p.peer.id import ID

            charter = self.store.replica.charter
            ids = set()
            for key in set(charter.roster) | set(charter.registrars):
                try:
                    ids.add(str(ID.from_pubkey(Ed25519PublicKey.from_bytes(key))))
                except Exception:
                    continue
            self._roster_ids = ids
        return self._roster_ids

    def _is_chosen(self, peer) -> bool:
        """A peer we would have picked ourselves: one we dialled, a seed, or a representative."""
        text = str(peer)
        return (peer in self._outbound or text in self._roster_peers()
                or any(a.endswith("/p2p/" + text) for a in self.bootstrap + self.store.replica.charter.bootstrap))

    async def connect(self, address: str) -> bool:
        import multiaddr
        from libp2p.peer.peerinfo import info_from_p2p_addr

        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(address))
        except Exception:
            self.say(f"Ignoring the peer address {address!r}: it must look like /ip4/HOST/tcp/PORT/p2p/PEER-ID.")
            return False
        if info.peer_id == self.host.get_id() or info.peer_id in self.host.get_connected_peers():
            return False
        if self.banned.get(str(info.peer_id), 0) > time.monotonic():
            return False  # we dropped it a moment ago (docs/network.md)
        network = self.host.get_network()
        network.unblock_peer(info.peer_id)  # else a peer that was down stays refused for 60 s
        try:
            with trio.fail_after(10):
                await self.host.connect(info)
        except Exception as exc:
            log.info("could not reach %s: %s", address, exc)
            return False
        self._remember(address)
        self._outbound.add(info.peer_id)
        if len(self._outbound) > 4 * MAX_PEERS:
            self._outbound &= set(self.host.get_connected_peers())
        return True

    def _gossip_view(self) -> dict:
        """Who we exchange gossip with: pubsub streams, topic peers and mesh sizes per topic."""
        if self.pubsub is None:
            return {}
        out = {"streams": len(self.pubsub.peers), "topic_peers": {}, "mesh": {},
               "queued": max((len(q) for q in list(self.pubsub.peer_queues.values())), default=0)}
        for name, topic in (("events", self.events_topic), ("rounds", self.rounds_topic)):
            out["topic_peers"][name] = len(self.pubsub.peer_topics.get(topic, ()))
            out["mesh"][name] = len(getattr(self.router, "mesh", {}).get(topic, ()))
        return out

    async def _dial_discovered(self) -> None:
        """Dial peers mDNS found on the LAN (at most once a minute each); peers of other
        assemblies or other libp2p apps simply never answer our sync protocol."""
        store = self.host.get_peerstore()
        me = self.host.get_id()
        connected = set(self.host.get_connected_peers())
        for pid in store.peers_with_addrs():
            if pid == me or pid in connected or time.monotonic() - self._mdns_tried.get(pid, -1e9) < 60:
                continue
            self._mdns_tried[pid] = time.monotonic()
            addrs = [a for a in store.addrs(pid) if "/tcp/" in str(a)]
            if not addrs:
                continue
            address = f"{addrs[0]}/p2p/{pid}" if "/p2p/" not in str(addrs[0]) else str(addrs[0])
            if await self.connect(address):
                self.say(f"Found a peer on the local network: {address}")

    async def _keep_connected(self) -> None:
        """Dial seeds, representatives' nodes and remembered peers while fewer than OUTBOUND_MIN
        peers we chose are connected (every 5 s), drop strangers beyond MAX_PEERS, sync
        with each peer when it connects, and every ``sync_interval`` seconds with one peer in
        turn: gossip carries the traffic, sync only repairs gaps, and syncing with every peer
        each interval cost 20 nodes on 2 cores seconds of latency (bench/network.py)."""
        synced: set = set()
        last_dial = last_round = -1e9
        turn = 0
        while True:
            now = time.monotonic()
            peers = set(self.host.get_connected_peers())
            # a peer we dropped stays dropped for a while: reconnecting wipes gossipsub's memory
            # of its score, not ours
            for peer in [p for p in peers if self.banned.get(str(p), 0) > now]:
                await self.host.disconnect(peer)
                peers.discard(peer)
            for key in [k for k, until in self.banned.items() if until <= now]:
                del self.banned[key]
            # eclipse: strangers who dial in must not fill every slot.  We keep OUTBOUND_MIN
            # connections to peers we chose (seeds, representatives, those we dialled), dialling
            # more whenever we have fewer, however many others dialled us; past MAX_PEERS the
            # strangers go first
            chosen = {p for p in peers if self._is_chosen(p)}
            if len(chosen) < OUTBOUND_MIN and now - last_dial >= 5 and not self._dialling:
                last_dial = now
                # in the background: a dial to a peer that is down (or across a partition) may
                # take its 10 s, which must not hold up syncing with the peers we have
                self._dialling = True
                self._nursery.start_soon(self._dial_more)
            if len(peers) > MAX_PEERS:
                strangers = sorted((p for p in peers if not self._is_chosen(p)), key=str)
                for peer in strangers[:len(peers) - MAX_PEERS]:
                    await self.host.disconnect(peer)
                    peers.discard(peer)
            for peer in sorted(peers - synced, key=str):  # newly connected
                await self.sync_with(peer)  # a whole exchange with a current peer: we may act
            if (not peers or self.act_alone) and now - self.started >= ALONE_AFTER and not self.caught_up:
                # with nobody current to catch up from, acting could sign from a stale head (a
                # replica restored from an old backup) and fork our own chain: only when told to
                if self.act_alone:
                    self.caught_up = True
                    self.currency = "--act-alone (no current peer confirmed our chain)"
                    self.say("Acting alone (--act-alone): no current peer has confirmed our chain within "
                             f"{ALONE_AFTER:.0f} s; this must be the first node of a new network.")
                elif not self._said_alone:
                    self._said_alone = True
                    self.say("No peer yet: this node acts (signs, takes panel duties) only after a whole sync with one, so "
                             "it cannot sign from a stale head. The first node of a new network starts with --act-alone.")
            synced = peers
            if peers and now - last_round >= self.sync_interval:
                last_round = now
                ordered = sorted(peers, key=str)
                await self.sync_with(ordered[turn % len(ordered)])
                turn += 1
            await trio.sleep(0.5)

    async def _check_reach(self) -> None:
        """Whether other nodes can connect to this one (``p2p.reach``): asked of the peers once
        there are some, again every 10 minutes; the owner is told when the answer changes."""
        from .reach import sentence

        said = None
        last = -1e9
        while True:
            peers = sorted(self.host.get_connected_peers(), key=str)
            due = REACH_EVERY if self.reachability.verdict["state"] not in ("unknown",) else 5.0
            if (peers or self.listen_host.startswith("127.")) and time.monotonic() - last >= due:
                last = time.monotonic()
                verdict = await self.reachability.check(peers)
                if verdict["state"] != said and verdict["state"] != "unknown":
                    said = verdict["state"]
                    self.say(sentence(verdict))
            await trio.sleep(1.0)

    # ------------------------------------------------------------------ status

    def status(self) -> dict:
        r = self.store.replica
        beacon = max(r.beacon) if r.beacon else 0
        counts = self.store.counts()
        return {
            "peer_id": str(self.host.get_id()) if self.host else "",
            "address": self.address,
            "observer": self.observer,
            "caught_up": self.caught_up,
            "currency": self.currency,
            "state_hash": self.store.state_hash().hex(),
            "events": sum(v for k, v in counts.items() if k != "forks"),
            "applied": counts.get("applied", 0),
            "pending": counts.get("pending", 0),
            "peers": len(self.host.get_connected_peers()) if self.host else 0,
            "beacon_round": beacon,
            "beacon": self.beacon(),
            "uptime_s": round(time.monotonic() - self.started, 1),
            "gossip_accepted": self.stats.gossip_accepted,
            "gossip_refused": self.stats.gossip_refused,
            "gossip_not_forwarded": self.stats.gossip_not_forwarded,
            "gossip_rate_limited": self.stats.gossip_rate_limited,
            "held_back": self.stats.held_back,
            "synced_items": self.stats.synced_items,
            "sync_refused": self.stats.sync_refused,
            "published": self.stats.published,
            "gossip": self._gossip_view(),
            "refusals": dict(sorted(self.stats.refusals.items())),
            "refusal_examples": self.stats.refusal_examples,
            "sync_failures": self.stats.sync_failures,
            "loop_lag_ms": {"p50": sorted(self.loop_lag_ms)[len(self.loop_lag_ms) // 2] if self.loop_lag_ms else None,
                            "max_recent": max(self.loop_lag_ms, default=None), "max": self.loop_lag_max_ms},
            "scores": self._scores(),
            "penalised": sorted(self.penalised),
            "banned": sorted(self.banned),
            "reachable": self._reach_status(),
            "score_causes": self.score_causes,
            **self._duties(),
            **self._legislature,
            "pid": os.getpid(),
            "rss_mib": _rss_mib(),
        }

    def _reach_status(self) -> dict:
        from .reach import sentence

        verdict = dict(getattr(self, "reachability", None).verdict if getattr(self, "reachability", None) else {"state": "unknown"})
        verdict["sentence"] = sentence(verdict)
        return verdict

    def _scores(self) -> dict[str, float]:
        """Each connected peer's gossipsub score (negative: it sent what we refused); peers seen
        with a negative score are remembered in ``penalised`` (the scorer forgets a peer when it
        disconnects)."""
        if not self.router or not getattr(self.router, "scorer", None):
            return {}
        topics_ = [self.events_topic, self.rounds_topic]
        scores = {str(p): round(self.router.scorer.score(p, topics_), 2) for p in self.host.get_connected_peers()}
        for p in self.host.get_connected_peers():
            if scores.get(str(p), 0) < 0:
                stats = self.router.scorer.get_score_stats(p, self.events_topic)
                # the most recently seen last: the oldest are forgotten beyond PENALISED_KEPT
                self.penalised.pop(str(p), None)
                self.penalised[str(p)] = None
                self.score_causes.pop(str(p), None)
                self.score_causes[str(p)] = {k: round(v, 1) for k, v in stats.items() if isinstance(v, float) and v}
        for kept in (self.penalised, self.score_causes):
            while len(kept) > PENALISED_KEPT:
                kept.pop(next(iter(kept)))
        return scores

    def _duties(self) -> dict:
        if self.reactor is None:
            return {}
        ms = sorted(self.duty_ms)
        return {"duties": {"caught_up": self.caught_up, "members": len(self.reactor.duties.members),
                           "signed": dict(self.reactor.duties.signed), "evaluations": self.reactor.evaluations,
                           "problem": self.reactor.problem,
                           "step_ms_p50": ms[len(ms) // 2] if ms else None, "step_ms_max": ms[-1] if ms else None}}

    def _evaluate(self) -> None:
        """Where the legislature stands, for the status file (pure and fast at testnet scale)."""
        from consensus.legislature import Legislature

        r = self.store.replica
        try:
            leg = Legislature(r.charter, r.charter_event.round)
            result = leg.evaluate_replica(r)
        except Exception as exc:  # a status line must never stop the node
            log.warning("could not evaluate the legislature: %s", exc)
            return
        statuses: dict[str, int] = {}
        for p in result.proposals.values():
            statuses[p.status] = statuses.get(p.status, 0) + 1
        horizon = max(r.beacon, default=0)
        self._legislature = {"cycles_decided": result.cycles, "cycle": leg.cycle_of(horizon) if horizon else None,
                             "proposals": dict(sorted(statuses.items())),
                             "waiting": result.waiting, "waiting_on": _silent_panel(leg, r)}

    def write_status(self) -> None:
        if self.status_path is None:
            return
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status(), indent=1))
        os.replace(tmp, self.status_path)

    async def _report(self) -> None:
        last_line = 0.0
        while True:
            self.write_status()
            if time.monotonic() - last_line >= 5:
                last_line = time.monotonic()
                self._evaluate()
                s = self.status()
                beacon = s["beacon"]
                behind = f", {beacon['behind']} behind" if beacon.get("behind") else ""
                self.say(f"state {s['state_hash'][:16]}  events {s['events']} ({s['pending']} pending)  "
                         f"peers {s['peers']}  beacon round {beacon['round']}" + (f" (STALLED{behind})" if beacon["stalled"] else "")
                         + f"  refused {s['gossip_refused'] + s['sync_refused']}")
            await trio.sleep(1)

    # ------------------------------------------------------------------ running

    async def _watch_loop(self) -> None:
        """How late this node's event loop wakes up (a starved or blocked loop delays every stream's
        protocol negotiation, and libp2p abandons one after 10 s): the status's ``loop_lag_ms``."""
        while True:
            began = trio.current_time()
            await trio.sleep(0.25)
            lag = (trio.current_time() - began - 0.25) * 1000
            self.loop_lag_ms = (self.loop_lag_ms + [round(lag, 1)])[-400:]
            self.loop_lag_max_ms = max(self.loop_lag_max_ms, round(lag, 1))

    async def _flusher(self) -> None:
        while True:
            await trio.sleep(FLUSH_EVERY)
            if self._dirty:
                self._dirty = False
                self.store.flush()

    async def _read_topic(self, subscription) -> None:
        async for _ in subscription:  # validation already stored it; read promptly (32-message queue)
            pass

    async def run(self, *, ready: Callable[["Node"], None] | None = None, stop: trio.Event | None = None) -> None:
        """Run until ``stop`` is set or the task is cancelled; shuts down in order."""
        from libp2p.tools.anyio_service import background_trio_service

        self.host = self._make_host()
        self.pubsub, router = self._make_pubsub(self.host)
        self.router = router
        self.host.set_stream_handler(sync.PROTOCOL, self._serve_sync)
        self.host.set_stream_handler(CHARTER_PROTOCOL, self._serve_charter)
        from .reach import PROTOCOL as REACH_PROTOCOL, Reach

        self.reachability = Reach(self)
        self.host.set_stream_handler(REACH_PROTOCOL, self.reachability.serve)
        async with self.host.run(self._listen):
            try:
                async with background_trio_service(self.pubsub), background_trio_service(router):
                    await self.pubsub.wait_until_ready()
                    for topic in (self.events_topic, self.rounds_topic):
                        self.pubsub.set_topic_validator(topic, self._validator, is_async_validator=False)
                    subs = [await self.pubsub.subscribe(t) for t in (self.events_topic, self.rounds_topic)]
                    self.address = str(self.host.get_addrs()[0])
                    async with trio.open_nursery() as nursery:
                        self._nursery = nursery
                        for sub in subs:
                            nursery.start_soon(self._read_topic, sub)
                        nursery.start_soon(self._keep_connected)
                        nursery.start_soon(self._check_reach)
                        nursery.start_soon(self._flusher)
                        if self.beacon_relays:
                            nursery.start_soon(self._follow_beacon)
                        nursery.start_soon(self._report)
                        nursery.start_soon(self._watch_loop)
                        if self.reactor is not None and not self.observer:
                            nursery.start_soon(self._act)
                        if self.service is not None and self.control_folder is not None:
                            await nursery.start(self._serve_control)
                            if self.service.hands is not None and not self.observer:
                                nursery.start_soon(self._pump_outbox)
                        self.write_status()
                        if ready:
                            ready(self)
                        await (stop.wait() if stop is not None else trio.sleep_forever())
                        nursery.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    await self.host.close()
                self.pubsub.seen_messages.stop()  # else its cleanup thread outlives the node
                if self._pool is not None:
                    self._pool.shutdown(wait=False, cancel_futures=True)
                self.store.flush()


def run_headless(node: Node, say: Callable[[str], None], *, publish: str | None = None, pace: float = 0.0,
                 schedule: tuple[float, int, float] | None = None, dev_beacon: bytes | None = None,
                 beacon_until: str | None = None) -> None:
    """Run ``node`` in this thread until SIGINT or SIGTERM (``klero node``).

    ``publish``: a log whose items the node publishes (testing and testnets), one every ``pace``
    seconds, or, with ``schedule = (start_at, round_zero, round_seconds)``, each when the beacon
    reaches the round it names (round ``round_zero`` is due at Unix time ``start_at``).

    ``dev_beacon``: the secret of the charter's dev beacon; the node signs each round when the
    ``schedule`` says it is due and gossips it, for as long as it runs (a testnet's beacon), after
    first publishing any due round its replica lacks (a restart catches up).  ``beacon_until``: a
    file that, once it holds a round number, stops the beacon after that round (how a testnet
    ends its run: the state stops changing once the rounds do).
    """
    import signal

    from .logfile import LogDamage, read_items

    async def main() -> None:
        stop = trio.Event()

        def ready(n: Node) -> None:
            say(f"Listening on {n.address}")
            say(f"{'Observer' if n.observer else 'Representative'} node of {n.store.replica.charter.name!r}; "
                f"state {n.store.state_hash().hex()[:16]}; stop with Ctrl-C.")

        async def signals() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
                async for signum in received:
                    say(f"Stopping ({signal.Signals(signum).name}): closing connections and flushing the replica.")
                    stop.set()
                    return

        async def feed() -> None:
            from .logfile import item_round

            while not node.address:
                await trio.sleep(0.05)
            count = 0
            for item in read_items(publish):
                if isinstance(item, LogDamage):
                    say(f"Stopped publishing {publish}: {item.reason}")
                    break
                if schedule is not None:
                    start_at, round_zero, round_seconds = schedule
                    due = start_at + (item_round(item[2]) - round_zero) * round_seconds
                    await trio.sleep(max(0.0, due - time.time()))
                await node.publish(item[2])
                count += 1
                if pace:
                    await trio.sleep(pace)
            say(f"Published {count} items of {publish}.")

        async def beacon() -> None:
            from consensus.beacon import encode_round

            from .beacon import DevBeacon

            signer = DevBeacon(node.store.replica.charter.beacon, dev_beacon)
            start_at, round_zero, round_seconds = schedule
            while not node.address:
                await trio.sleep(0.05)
            n = 1
            while True:
                last = _round_in(beacon_until)
                if last is not None and n > last:
                    say(f"The dev beacon stopped after round {last:,} (as {beacon_until} asks).")
                    return
                due = start_at + (n - round_zero) * round_seconds
                if due > time.time():
                    await trio.sleep(min(due - time.time(), 1.0))  # re-read the stop file at least once a second
                    continue
                if n not in node.store.replica.beacon:
                    await node.offer_round(encode_round(signer.sign(n)))
                    if n % 10 == 0:
                        await trio.sleep(0)  # a restart catching up lets the node breathe between rounds
                n += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(signals)
            if publish:
                nursery.start_soon(feed)
            if dev_beacon is not None:
                nursery.start_soon(beacon)
            await node.run(ready=ready, stop=stop)
            nursery.cancel_scope.cancel()

    trio.run(main)


def _round_in(path: str | None) -> int | None:
    """The round number a stop file holds, or None (no file yet, or not a number yet)."""
    if not path:
        return None
    try:
        with open(path, encoding="ascii") as f:
            text = f.read(32).strip()
        return int(text) if text.isdigit() else None
    except (OSError, UnicodeDecodeError):
        return None


def _silent_panel(leg, replica) -> list[str]:
    """The members of the panel an open deadline waits for who have signed nothing for it yet
    (keys in hex): what a tester needs to see why an assembly stopped."""
    if leg.waiting_at is None or leg.p.deadline_rule != "panel":
        return []
    from consensus.panel import deadline_key

    what, cycle, stage, round_ = leg.waiting_at
    horizon = max(replica.beacon, default=0)
    if horizon < round_:
        return []
    gen = max(0, (horizon - round_) // leg.p.panel_rounds)
    try:
        panel = leg.panel_of(what, cycle, stage, round_, gen)
    except Exception:  # the round that draws it is not here yet
        return []
    name = deadline_key(what, cycle, stage, gen)
    spoke = {r.author for r in leg._inputs.panel.get(name, ())}  # the evaluation grouped them by deadline
    return [m.hex() for m in panel if m not in spoke]
