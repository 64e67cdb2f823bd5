"""The sync protocol without a network: frontiers, what a peer lacks, frames, hostile requests."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.errors import InvalidInput
from p2p import sync
from p2p.logfile import read_items
from p2p.store import ReplicaStore

VECTORS = Path(__file__).resolve().parent / "vectors"


def store_with(path, items, charter):
    s = ReplicaStore.create(path, charter, durable=False)
    for item in items:
        s.add_item(item)
    s.flush()
    return s


def exchange(source, target, most=sync.MAX_ITEMS, limit=100):
    """Sync ``target`` from ``source`` until it learns nothing new; returns the items it stored.
    (Events the target holds beyond a gap are named in its request, so they are not sent again.)"""
    sent = 0
    for _ in range(limit):
        request = sync.decode_request(sync.request_for(target, most).encode())
        frames = list(sync.frames(sync.missing(source, request), max_frame=4096))
        assert frames[-1] == sync.frames(iter(())).__next__()  # ends with the empty frame
        items = [i for f in frames for i in sync.decode_frame(f, 1 << 16)]
        new = [o for o in (target.add_item(i) for i in items) if o.status != "duplicate"]
        target.flush()
        if not new:
            return sent
        sent += len(new)
    raise AssertionError("sync did not converge")


@pytest.fixture(scope="module")
def demo_items():
    return [item[2] for item in read_items(VECTORS / "demo-run-with-rejections.log")]


def test_a_late_joiner_catches_up_with_everything_in_bounded_batches(tmp_path, demo_items):
    charter = demo_items[0]
    full = store_with(tmp_path / "a.sqlite", demo_items, charter)
    empty = ReplicaStore.create(tmp_path / "b.sqlite", charter, durable=False)
    sent = exchange(full, empty, most=97)
    assert sent >= len(demo_items) - 1 - full.counts().get("duplicate", 0) - 50
    assert empty.state_hash() == full.state_hash()
    assert exchange(full, empty) == 0  # nothing left to send


def test_two_replicas_with_different_halves_converge(tmp_path, demo_items, small_log):
    charter, rest = demo_items[0], demo_items[1:]
    rng = random.Random(4)
    a_items = [i for i in rest if rng.random() < 0.6]
    b_items = [i for i in rest if rng.random() < 0.6]
    a = store_with(tmp_path / "a.sqlite", a_items, charter)
    b = store_with(tmp_path / "b.sqlite", b_items, charter)
    exchange(a, b)
    exchange(b, a)
    union = set(a_items) | set(b_items)
    whole = store_with(tmp_path / "w.sqlite", [i for i in rest if i in union], charter)
    assert a.state_hash() == b.state_hash() == whole.state_hash()


def test_fork_proofs_travel(tmp_path, small_log):
    charter = small_log[0]
    a = store_with(tmp_path / "a.sqlite", small_log[1:], charter)
    assert a.counts()["forks"] == 2
    b = ReplicaStore.create(tmp_path / "b.sqlite", charter, durable=False)
    exchange(a, b)
    assert b.counts()["forks"] == 2 and b.state_hash() == a.state_hash()


def test_intervals_compact_round_numbers():
    assert sync.intervals([1, 2, 3, 7, 8, 10]) == ((1, 3), (7, 8), (10, 10))
    assert sync.intervals([5, 5, 6]) == ((5, 6),)
    assert sync.intervals(list(range(1, 100, 2)), limit=3) == ((1, 1), (3, 3), (5, 5))
    spans = sync.intervals([1, 2, 3, 7, 8, 10])
    assert [n for n in range(12) if sync._covered(n, spans)] == [1, 2, 3, 7, 8, 10]


A32 = b"a" * 32


@pytest.mark.parametrize("value, fragment", [
    ({"assembly": A32}, "map of"),
    ({"assembly": b"x", "have": [], "forks": [], "rounds": [], "max": 5}, "32-byte"),
    ({"assembly": A32, "have": [[b"b" * 32, 1], [A32, 2]], "forks": [], "rounds": [], "max": 5}, "sorted"),
    ({"assembly": A32, "have": [[A32, -1]], "forks": [], "rounds": [], "max": 5}, "pairs"),
    ({"assembly": A32, "have": [], "forks": [A32, A32], "rounds": [], "max": 5}, "forks"),
    ({"assembly": A32, "have": [], "forks": [], "rounds": [[5, 9], [9, 12]], "max": 5}, "disjoint"),
    ({"assembly": A32, "have": [], "forks": [], "rounds": [[0, 3]], "max": 5}, "intervals"),
    ({"assembly": A32, "have": [], "forks": [], "rounds": [], "max": 0}, "items"),
    ({"assembly": A32, "have": [], "forks": [], "rounds": [], "max": 5, "more": 1}, "map of"),
    ({"assembly": A32, "have": [], "forks": [], "rounds": [], "max": 5, "beyond": [[A32, []]]}, "beyond"),
    ({"assembly": A32, "have": [[A32, 4]], "forks": [], "rounds": [], "max": 5, "beyond": [[A32, [[5, 9]]]]}, "past"),
    ({"assembly": A32, "have": [], "forks": [], "rounds": [], "max": 5, "beyond": [[A32, [[3, 4], [5, 9]]]]}, "disjoint"),
    ({"assembly": A32, "have": [], "forks": [], "rounds": [], "max": 5, "beyond": [[A32, [[3, 2]]]]}, "intervals"),
    ({"assembly": A32, "have": [], "forks": [], "rounds": [], "max": 5,
      "beyond": [[A32, [[2 * k + 3, 2 * k + 3] for k in range(sync.MAX_INTERVALS + 1)]]]}, "at most"),
])
def test_malformed_requests_are_refused_with_reasons(value, fragment):
    from consensus import cbor

    with pytest.raises(InvalidInput, match=fragment):
        sync.decode_request(cbor.encode(value))


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_refused_not_crashed_on(data):
    for decode in (sync.decode_request, lambda d: sync.decode_frame(d, 1 << 16)):
        try:
            decode(data)
        except InvalidInput:
            pass


def _head(wire: bytes) -> tuple[bytes, int]:
    from consensus.events import split_wire

    fields = split_wire(wire, 1 << 16)[2]
    return bytes(fields["author"]), fields["seq"]


def test_events_held_past_a_gap_are_named_and_not_sent_again(tmp_path, small_log):
    """A replica holding one author's later events but not the start of its chain used to get
    them all again at every exchange (only the gap-free run was named).  Now the request names
    them (``beyond``) and the server sends only the gap; once it is filled, nothing more."""
    charter, events = small_log[0], small_log[1:]
    author = _head(events[0])[0]
    chain = [e for e in events if _head(e)[0] == author]
    source = store_with(tmp_path / "source.sqlite", events, charter)
    target = store_with(tmp_path / "target.sqlite", chain[5:40], charter)  # seqs 6..40 of this author wait
    request = sync.decode_request(sync.request_for(target).encode())
    assert request.beyond == {author: ((6, 40),)}, request.beyond
    sent = [_head(w) for w in sync.missing(source, request) if w[:1] != b"\x83"]
    resent = [seq for a, seq in sent if a == author and 6 <= seq <= 40]
    assert not resent, f"events the requester holds past its gap were sent again: {resent}"
    assert sorted(seq for a, seq in sent if a == author) == [1, 2, 3, 4, 5] + list(range(41, len(chain) + 1))
    exchange(source, target)
    assert target.state_hash() == source.state_hash()
    assert sync.request_for(target).beyond == {}


@pytest.fixture(scope="module")
def one_chain(small_log, tmp_path_factory):
    """A store with the whole small log, and one author's first 30 events."""
    author = _head(small_log[1])[0]
    chain = [e for e in small_log[1:] if _head(e)[0] == author][:30]
    source = store_with(tmp_path_factory.mktemp("source") / "s.sqlite", small_log[1:], small_log[0])
    return source, chain, tmp_path_factory.mktemp("held"), small_log[0]


@settings(max_examples=40, deadline=None)
@given(held=st.sets(st.integers(min_value=1, max_value=30), max_size=30))
def test_what_is_sent_of_a_chain_is_exactly_what_the_requester_lacks(one_chain, held):
    """For any set of one author's events held (so any gaps), a real replica's request and a real
    server send exactly the events of that chain the requester lacks: ``have`` and ``beyond``
    together name what it holds."""
    import uuid

    source, chain, folder, charter = one_chain
    target = store_with(folder / f"{uuid.uuid4().hex}.sqlite", [chain[n - 1] for n in sorted(held)], charter)
    try:
        request = sync.decode_request(sync.request_for(target).encode())
        author = _head(chain[0])[0]
        sent = sorted(seq for a, seq in (_head(w) for w in sync.missing(source, request) if w[:1] != b"\x83")
                      if a == author and seq <= 30)
        assert sent == [n for n in range(1, 31) if n not in held], (sorted(held), request.have.get(author), request.beyond)
    finally:
        target.close()


def test_oversized_requests_and_frames_are_refused_before_decoding():
    with pytest.raises(InvalidInput, match="at most"):
        sync.decode_request(b"\xa0" * (sync.MAX_REQUEST + 1))
    with pytest.raises(InvalidInput, match="at most"):
        sync.decode_frame(b"\x80" * (sync.MAX_FRAME + 1), 100)


def test_a_request_for_another_assembly_is_refused(tmp_path, small_log):
    a = store_with(tmp_path / "a.sqlite", small_log[1:50], small_log[0])
    with pytest.raises(InvalidInput, match="another assembly"):
        list(sync.missing(a, sync.Request(b"z" * 32, {}, frozenset(), ())))


def test_a_node_refuses_what_it_cannot_judge_without_stopping(tmp_path, small_log, monkeypatch):
    """Items reach the replica through Node._accept (gossip validator and sync): bad bytes get
    their rejection code, and an unexpected failure refuses the item instead of raising into the
    network library (where one exception stops the whole host)."""
    from p2p.node import Node

    store = store_with(tmp_path / "n.sqlite", small_log[1:20], small_log[0])
    node = Node(store, b"\x01" * 32, say=lambda line: None)
    assert node._accept(b"\x82\x00", "gossip") is None
    assert node._accept(b"x" * 70_000, "sync") is None
    assert node._accept(small_log[5], "gossip") == "duplicate"

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(store, "add_item", broken)
    assert node._accept(small_log[30], "gossip") is None
    assert node.stats.refusals["internal_error"] == 1 and node.stats.refusals["too_large"] == 1
    assert node.stats.gossip_refused == 2 and node.stats.sync_refused == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 60), max_size=80))
def test_round_spans_kept_as_rounds_arrive_equal_spans_made_from_scratch(numbers):
    """Issue 17: a request's round spans were rebuilt from every stored round at each sync; they
    are now kept incrementally, which must give exactly the spans made from the whole set."""
    from p2p.store import ReplicaStore

    class Fake:
        _spans = None
        replica = type("R", (), {"beacon": {}})()
        round_spans = ReplicaStore.round_spans
        _note_round = ReplicaStore._note_round

    kept = Fake()
    kept.round_spans()  # built (empty) first, then kept
    for n in numbers:
        kept.replica.beacon[n] = b""
        kept._note_round(n)
    fresh = Fake()
    fresh.replica = type("R", (), {"beacon": dict.fromkeys(numbers, b"")})()
    assert kept.round_spans() == fresh.round_spans() == list(sync.intervals(sorted(set(numbers)), limit=10 ** 6))


def test_a_request_claiming_every_round_reads_only_the_gaps(tmp_path):
    """An 81-byte request naming [1, 10^9] made the server scan every stored round; the gaps
    between the spans it names are read by the primary key instead, and what the peer lacks is
    still sent, in order."""
    demo = [item[2] for item in read_items(VECTORS / "demo-run.log")]
    source = store_with(tmp_path / "a.sqlite", demo[1:], demo[0])
    rounds = sorted(source.replica.beacon)
    assert len(rounds) > 10
    request = sync.Request(source.assembly, {}, frozenset(), ((1, 10 ** 9),), 10)
    statements = []
    source.db.conn.set_trace_callback(statements.append)
    items = list(sync.missing(source, request))
    source.db.conn.set_trace_callback(None)
    assert not any(i[:1] == b"\x83" for i in items), "no round is sent to a peer that holds them all"
    assert sum("beacon_rounds" in s for s in statements) == 1, statements
    middle = rounds[len(rounds) // 2]
    request = sync.Request(source.assembly, {}, frozenset(), ((1, middle - 1), (middle + 1, 10 ** 9)), 10)
    sent = [i for i in sync.missing(source, request) if i[:1] == b"\x83"]
    assert len(sent) == 1 and sync.decode_frame(sync.frames(iter(sent)).__next__(), 1 << 16)
    source.close()
