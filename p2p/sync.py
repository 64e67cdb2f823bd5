"""The sync protocol: what a peer lacks, computed from its frontier, sent in chain order.

This is the path a third-party observer would implement first (STACK.md: gossip is best effort),
so it stays small and is specified in docs/sync.md (with test vectors, tests/test_docs.py):

* **Request** (canonical CBOR map, at most ``MAX_REQUEST`` bytes)::

      {"assembly": 32 bytes, "have": [[author, seq], ...], "forks": [author, ...],
       "rounds": [[first, last], ...], "max": n, ?"beyond": [[author, [[first, last], ...]], ...]}

  ``have`` is the requester's frontier: for each author, the highest seq up to which it stores
  every event (sorted by author, distinct); ``forks`` the authors whose fork proof it holds
  (informative: every version of every fork is sent anyway); ``rounds`` the intervals of
  beacon rounds it holds (sorted, disjoint); ``max`` how many items it wants at most;
  ``beyond`` (optional, left out when empty) the intervals of seqs it already holds past a
  gap in an author's chain, so they are not sent again at every exchange.
* **Response**: frames of at most ``MAX_FRAME`` bytes, each a CBOR array of items (beacon rounds
  ``[round, signature, previous]`` first, then signed events by author and seq, then every
  further version of every fork: evidence a certificate may have decided, docs/finality.md); an
  empty array ends the response.  Items are exactly what a log holds,
  so the requester feeds them to ``ReplicaStore.add_item`` like a log import.
* **Refusal**: a request the server refuses gets one frame ``{"refused": code, "reason": text}``
  (:func:`refusal`); the server closes its side, then resets the stream.

Everything that arrives is validated by the replica as if it came from a file: the protocol
trusts nothing but framing sizes, and those are checked before decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from consensus import cbor
from consensus.errors import reject

PROTOCOL = "/klero/sync/1.0.0"
MAX_REQUEST = 4 << 20  # a frontier of ~100,000 authors
MAX_FRAME = 1 << 20
MAX_ITEMS = 20_000  # per response; the requester asks again for more
MAX_INTERVALS = 4096
PAGE = 64  # rows read from the store at a time while serving (64 events of at most 64 KiB)


@dataclass(frozen=True)
class Request:
    assembly: bytes
    have: dict[bytes, int]
    forks: frozenset[bytes]
    rounds: tuple[tuple[int, int], ...]
    max: int = MAX_ITEMS
    #: author -> intervals of seqs held past a gap in its chain (not to be sent again)
    beyond: dict = field(default_factory=dict)

    def encode(self) -> bytes:
        body = {
            "assembly": self.assembly,
            "have": [[a, s] for a, s in sorted(self.have.items())],
            "forks": sorted(self.forks),
            "rounds": [list(r) for r in self.rounds],
            "max": self.max,
        }
        if self.beyond:  # optional: a request without it is byte for byte what it always was
            body["beyond"] = [[a, [list(r) for r in spans]] for a, spans in sorted(self.beyond.items())]
        return cbor.encode(body)


def decode_request(data: bytes) -> Request:
    """A request from a peer, or ``InvalidInput`` with the reason."""
    if type(data) is not bytes or len(data) > MAX_REQUEST:
        raise reject("sync_bad_request", f"A sync request must be at most {MAX_REQUEST} bytes.")
    value = cbor.decode(data, what="sync request")
    if type(value) is not dict or set(value) - {"beyond"} != {"assembly", "have", "forks", "rounds", "max"}:
        raise reject("sync_bad_request", "A sync request is a map of assembly, have, forks, rounds and max (and "
                                         "optionally beyond).")
    assembly, have, forks, rounds, most = (value[k] for k in ("assembly", "have", "forks", "rounds", "max"))
    if type(assembly) is not bytes or len(assembly) != 32:
        raise reject("sync_bad_request", "A sync request names its assembly by a 32-byte id.")
    if type(have) is not list or any(
        type(p) is not list or len(p) != 2 or type(p[0]) is not bytes or len(p[0]) != 32 or type(p[1]) is not int or p[1] < 0
        for p in have
    ):
        raise reject("sync_bad_request", "A sync request's frontier lists [author, seq] pairs.")
    authors = [p[0] for p in have]
    if authors != sorted(set(authors)):
        raise reject("sync_bad_request", "A sync request's frontier must be sorted by author, each once.")
    if type(forks) is not list or any(type(a) is not bytes or len(a) != 32 for a in forks) or forks != sorted(set(forks)):
        raise reject("sync_bad_request", "A sync request's forks must be sorted, distinct 32-byte authors.")
    if type(rounds) is not list or len(rounds) > MAX_INTERVALS or any(
        type(r) is not list or len(r) != 2 or any(type(x) is not int for x in r) or not 1 <= r[0] <= r[1] for r in rounds
    ):
        raise reject("sync_bad_request", f"A sync request's rounds must be at most {MAX_INTERVALS} [first, last] intervals.")
    if any(a[1] >= b[0] for a, b in zip(rounds, rounds[1:])):
        raise reject("sync_bad_request", "A sync request's round intervals must be sorted and disjoint.")
    if type(most) is not int or not 1 <= most <= MAX_ITEMS:
        raise reject("sync_bad_request", f"A sync request asks for 1 to {MAX_ITEMS} items.")
    frontier = {a: s for a, s in have}
    return Request(assembly, frontier, frozenset(forks), tuple((r[0], r[1]) for r in rounds), most,
                   _decode_beyond(value.get("beyond", []), frontier))


def _decode_beyond(beyond, frontier: dict[bytes, int]) -> dict[bytes, tuple[tuple[int, int], ...]]:
    """The optional ``beyond``: per author (sorted, each once) sorted disjoint seq intervals past
    that author's frontier, at most ``MAX_INTERVALS`` in all."""
    problem = ("A sync request's beyond lists [author, [[first, last], ...]] with sorted, disjoint intervals past the "
               f"author's frontier, at most {MAX_INTERVALS} in all.")
    if type(beyond) is not list or any(type(p) is not list or len(p) != 2 or type(p[0]) is not bytes or len(p[0]) != 32
                                       or type(p[1]) is not list or not p[1] for p in beyond):
        raise reject("sync_bad_request", problem)
    authors = [p[0] for p in beyond]
    if authors != sorted(set(authors)) or sum(len(p[1]) for p in beyond) > MAX_INTERVALS:
        raise reject("sync_bad_request", problem)
    out = {}
    for author, spans in beyond:
        if any(type(r) is not list or len(r) != 2 or any(type(x) is not int for x in r) or not r[0] <= r[1] for r in spans):
            raise reject("sync_bad_request", problem)
        if spans[0][0] <= frontier.get(author, 0) + 1 or any(a[1] + 1 >= b[0] for a, b in zip(spans, spans[1:])):
            raise reject("sync_bad_request", problem)  # past the gap (so the gap is asked for), disjoint, not adjacent
        out[author] = tuple((r[0], r[1]) for r in spans)
    return out


def intervals(numbers: list[int], limit: int = MAX_INTERVALS) -> tuple[tuple[int, int], ...]:
    """Sorted numbers as disjoint [first, last] intervals; beyond ``limit`` intervals the rest is
    left out (the peer then sends those rounds again, which costs bandwidth, never correctness)."""
    out: list[list[int]] = []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        elif out and n <= out[-1][1]:
            continue
        else:
            if len(out) == limit:
                break
            out.append([n, n])
    return tuple((a, b) for a, b in out)


def _covered(n: int, spans: tuple[tuple[int, int], ...]) -> bool:
    import bisect

    i = bisect.bisect_right(spans, (n, float("inf"))) - 1
    return i >= 0 and spans[i][0] <= n <= spans[i][1]


def request_for(store, most: int = MAX_ITEMS, rounds_below: int | None = None) -> Request:
    """This replica's frontier, as a request to a peer.  With ``rounds_below``, rounds from that
    one on are not named, so the peer sends those it holds: how a peer proves it is current."""
    db = store.db
    # the frontier is the top of each author's gap-free run from seq 1 (applied, invalid, excluded
    # or pending alike): what lies beyond a gap is sent again, which costs bytes, never correctness
    have = {a: s for a, s in db.execute(
        """SELECT author, min(seq) FROM events e
           WHERE NOT EXISTS (SELECT 1 FROM events n WHERE n.author = e.author AND n.seq = e.seq + 1)
             AND EXISTS (SELECT 1 FROM events f WHERE f.author = e.author AND f.seq = 1)
           GROUP BY author""")}
    forks = frozenset(a for (a,) in db.execute("SELECT DISTINCT author FROM forks"))
    spans = store.round_spans()
    if rounds_below is not None:
        spans = [(a, min(b, rounds_below - 1)) for a, b in spans if a < rounds_below]
    if len(spans) > MAX_INTERVALS:  # the rest is sent again, which costs bandwidth, never correctness
        spans = spans[:MAX_INTERVALS]
    # what we hold past a gap waits there (pending, found by the status index): named so that it
    # is not sent again at every exchange.  Past MAX_INTERVALS intervals the rest is sent again.
    held: dict[bytes, list[int]] = {}
    for author, seq in db.execute("SELECT author, seq FROM events WHERE status = 'pending' ORDER BY author, seq"):
        if seq > have.get(author, 0) + 1:
            held.setdefault(author, []).append(seq)
    beyond, room = {}, MAX_INTERVALS
    for author in sorted(held):
        if room <= 0:
            break
        beyond[author] = intervals(held[author], room)
        room -= len(beyond[author])
    return Request(store.assembly, have, forks, tuple(spans), most, beyond)


def missing(store, request: Request) -> Iterator[bytes]:
    """The items ``request``'s sender lacks, in the order it can apply them, at most ``request.max``."""
    if request.assembly != store.assembly:
        raise reject("sync_wrong_assembly", "The peer asked for another assembly.")
    budget = request.max
    db = store.db
    chain = store.replica.charter.beacon.hash
    from consensus.beacon import BeaconRound, encode_round

    # only the gaps between the rounds the peer holds are read (by the primary key), so a request
    # claiming every round costs a few index probes, not a scan of a million rows; rows are read
    # a page at a time and each page whole (``fetchall``), so no cursor stays open while a slow
    # reader takes its frames (an open read cursor blocks the WAL checkpoints) and a page of
    # large events stays a few MiB
    low = 1
    for first, last in [*request.rounds, (None, None)]:
        high = first - 1 if first is not None else None
        while budget > 0 and (high is None or low <= high):
            rows = db.execute(
                "SELECT round, signature, previous_signature FROM beacon_rounds WHERE chain = ? AND round >= ?"
                + (" AND round <= ?" if high is not None else "") + " ORDER BY round LIMIT ?",
                [chain, low, *([high] if high is not None else []), min(budget, PAGE)]).fetchall()
            for number, sig, prev in rows:
                budget -= 1
                yield encode_round(BeaconRound(number, sig, prev))
            if len(rows) < PAGE:
                break
            low = rows[-1][0] + 1
        if budget <= 0:
            return
        if last is not None:
            low = max(low, last + 1)
    charter = store.assembly
    for author, top in db.execute("SELECT author, max(seq) FROM events GROUP BY author ORDER BY author").fetchall():
        after = request.have.get(author, 0)
        # the seqs past the peer's frontier but for those it holds past a gap: [after+1, first-1], …
        for first, last in [*request.beyond.get(author, ()), (None, None)]:
            high = first - 1 if first is not None else top
            while budget > 0 and after < high:
                rows = db.execute("SELECT seq, wire FROM events WHERE author = ? AND seq > ? AND seq <= ? AND id != ? "
                                  "ORDER BY seq LIMIT ?", [author, after, high, charter, min(budget, PAGE)]).fetchall()
                for seq, wire in rows:
                    budget -= 1
                    yield wire
                if len(rows) < PAGE:
                    break
                after = rows[-1][0]
            if budget <= 0:
                return
            if last is None or last >= top:
                break
            after = max(after, last)
    # every version of every fork, even to a peer that holds a fork proof of that author: it may
    # lack another version, and an equivocator's versions are evidence a certificate may have
    # decided (docs/finality.md); they are few and bounded, so resending them costs little
    for (second,) in db.execute("SELECT second FROM forks ORDER BY author, seq").fetchall():
        if budget <= 0:
            return
        budget -= 1
        yield second
    for (wire,) in db.execute("SELECT wire FROM versions ORDER BY author, seq, id").fetchall():
        if budget <= 0:
            return
        budget -= 1
        yield wire


def frames(items: Iterator[bytes], max_frame: int = MAX_FRAME) -> Iterator[bytes]:
    """Items packed into CBOR-array frames of at most ``max_frame`` bytes; then the empty frame."""
    batch: list[bytes] = []
    size = 0
    for item in items:
        if batch and size + len(item) + 16 > max_frame:
            yield cbor.encode(batch)
            batch, size = [], 0
        batch.append(item)
        size += len(item) + 9
    if batch:
        yield cbor.encode(batch)
    yield cbor.encode([])


def decode_frame(data: bytes, max_item: int) -> list[bytes]:
    """One response frame: a list of byte strings, each at most ``max_item`` bytes."""
    if type(data) is not bytes or len(data) > MAX_FRAME:
        raise reject("sync_bad_frame", f"A sync frame must be at most {MAX_FRAME} bytes.")
    value = cbor.decode(data, what="sync frame")
    if type(value) is dict and set(value) == {"refused", "reason"}:
        code, why = value["refused"], value["reason"]
        if type(code) is str and type(why) is str:
            raise reject("sync_refused_by_peer", f"The peer refused the request ({code[:40]}): {why[:300]}", fatal=False)
    if type(value) is not list or any(type(i) is not bytes or not 0 < len(i) <= max_item for i in value):
        raise reject("sync_bad_frame", "A sync frame is a list of items (byte strings within the event size limit).")
    return value


# ---------------------------------------------------------------------- framing on a stream
# Frames are uvarint-length-prefixed, with libp2p's own helpers (imported only where the network
# is used: ``import libp2p`` costs ~0.9 s); the length is checked before the body is read.


async def read_frame(stream, limit: int) -> bytes:
    from libp2p.utils import read_varint_prefixed_bytes_limited

    from libp2p.exceptions import ParseError
    from libp2p.io.exceptions import IncompleteReadError, MessageTooLarge

    try:
        return await read_varint_prefixed_bytes_limited(stream, limit)
    except (ParseError, MessageTooLarge, IncompleteReadError) as exc:
        raise reject("sync_bad_frame", f"The peer sent a malformed, oversized or cut frame ({exc}).") from None


def refusal(code: str, reason: str) -> bytes:
    """The frame a server sends before it resets a stream whose request it refuses: a canonical
    CBOR map ``{"reason": text, "refused": code}`` (docs/sync.md), so the requester learns why."""
    return cbor.encode({"refused": code[:40], "reason": reason[:300]})


async def write_frame(stream, data: bytes) -> None:
    from libp2p.utils import encode_varint_prefixed

    await stream.write(encode_varint_prefixed(data))
