"""The SQLite replica store: restarts, rebuilds, locking, migrations and hostile files."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import Replica
from p2p.tools.simulate import Simulation
from p2p.store import ReplicaStore, StoreError


def memory_hash(wires):
    r = Replica(wires[0])
    for w in wires[1:]:
        r.add(w)
    return r.state_hash()


@settings(max_examples=12)
@given(seed=st.integers(0, 2**32), cut=st.floats(0.1, 0.9))
def test_restart_in_the_middle_keeps_the_state(small_log, tmp_path_factory, seed, cut):
    """Stop after any prefix of a shuffled stream, reopen, finish: same hash as in memory."""
    body = list(small_log[1:])
    random.Random(seed).shuffle(body)
    path = tmp_path_factory.mktemp("restart") / "r.sqlite"
    k = int(len(body) * cut)
    with ReplicaStore.create(path, small_log[0], durable=False) as store:
        list(store.add_many(body[:k], batch=37))
    with ReplicaStore(path, durable=False) as store:
        middle = store.state_hash()
        assert middle == memory_hash([small_log[0], *body[:k]])
        list(store.add_many(body[k:], batch=37))
    with ReplicaStore(path) as store:
        assert store.state_hash() == memory_hash(small_log)


def test_only_one_writer_at_a_time(tmp_path, small_log):
    path = tmp_path / "r.sqlite"
    first = ReplicaStore.create(path, small_log[0])
    with pytest.raises(StoreError, match="in use by another klero process"):
        ReplicaStore(path)
    first.close()
    ReplicaStore(path).close()


def test_another_assembly_is_refused(tmp_path, small_log):
    path = tmp_path / "r.sqlite"
    ReplicaStore.create(path, small_log[0]).close()
    other = Simulation(seed=999).charter_wire
    with pytest.raises(StoreError, match="another assembly"):
        ReplicaStore.create(path, other)


def test_a_file_that_is_not_a_replica(tmp_path):
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable replica file"):
        ReplicaStore(path)


def test_migrations_are_named_and_recorded(tmp_path, small_log):
    path = tmp_path / "r.sqlite"
    with ReplicaStore.create(path, small_log[0]) as store:
        names = [r[0] for r in store.db.execute("SELECT name FROM _sqlite_migrations ORDER BY rowid")]
        assert names == ["m001_raw_events", "m002_derived_state", "m003_beacon_rounds", "m004_legislative_records", "m005_peers", "m006_versions", "m007_round_macs"]
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_rejected_input_touches_no_stored_data(tmp_path, small_log):
    path = tmp_path / "r.sqlite"
    with ReplicaStore.create(path, small_log[0]) as store:
        list(store.add_many(small_log[1:100]))
        before = list(store.db.execute("SELECT id, status FROM events ORDER BY id"))
        for junk in (b"", b"\x82\x40\x40", small_log[5][:-1] + b"\x00", b"\xa0" * 10):
            assert store.add(junk).status == "rejected"
        store.flush()
        assert list(store.db.execute("SELECT id, status FROM events ORDER BY id")) == before


def test_rebuild_keeps_the_hash_and_leaves_no_temporary_files(tmp_path, small_log):
    path = tmp_path / "r.sqlite"
    with ReplicaStore.create(path, small_log[0]) as store:
        list(store.add_many(small_log[1:]))
        before = store.state_hash()
        store.rebuild()
        assert store.state_hash() == before
        assert store.counts()["applied"] == store.replica.applied_count()
    leftovers = [p.name for p in tmp_path.iterdir() if "rebuild" in p.name]
    assert leftovers == []


def test_an_event_waiting_for_its_round_survives_a_restart(tmp_path):
    """An event naming a beacon round the replica lacks waits for it; reopened, the store still
    knows what waits, and the round releases it (and its successor)."""
    from consensus.beacon import encode_round
    from consensus.events import event_id, sign_event

    sim = Simulation(seed=21, reps=2)
    rep = sim.rep_authors[0]
    rnd = sim.dev.sign(7)
    first = sign_event(rep.key, assembly=sim.assembly, seq=1, prev=None, kind="proposal.submit",
                       body={"title": "t", "summary": ""}, round=7, round_prefix=rnd.randomness[:8])
    second = sign_event(rep.key, assembly=sim.assembly, seq=2, prev=event_id(first), kind="comment",
                        body={"proposal": event_id(first), "text": "next"}, round=7, round_prefix=rnd.randomness[:8])
    path = tmp_path / "r.sqlite"
    with ReplicaStore.create(path, sim.charter_wire) as store:
        assert store.add(first).status == "pending" and store.add(second).status == "pending"
        store.flush()
    with ReplicaStore(path) as store:
        assert store.replica.awaiting == {7: {rep.public}}
        store.add_item(encode_round(rnd))
        store.flush()
        assert store.replica.heads[rep.public].seq == 2
    with ReplicaStore(path) as store:
        assert store.replica.heads[rep.public].seq == 2 and not store.replica.pending
        memory = Replica(sim.charter_wire)
        memory.add_round(rnd)
        memory.add(second)
        memory.add(first)
        assert store.state_hash() == memory.state_hash()


def test_the_replica_and_its_wal_are_readable_by_their_owner_only(tmp_path, small_log):
    """Issue 17: replica, WAL and shared-memory files were 0644 (any local user could read a
    person's unpublished drafts); a looser file found on disk is tightened when opened."""
    import os
    import stat

    path = tmp_path / "r.sqlite"
    with ReplicaStore.create(path, small_log[0]) as store:
        for item in small_log[1:20]:
            store.add_item(item)
        store.flush()
        for p in (path, tmp_path / "r.sqlite-wal", tmp_path / "r.sqlite-shm"):
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, (p, oct(p.stat().st_mode))
    os.chmod(path, 0o644)
    with ReplicaStore(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_dev_beacon_secret_is_owner_only_even_over_an_existing_file(tmp_path):
    import os
    import stat

    from p2p.beacon import DevBeacon, write_dev_chain

    chain, secret = DevBeacon.create(1000, 1_700_000_000)
    (tmp_path / "b.json.secret").write_text("old\n")
    os.chmod(tmp_path / "b.json.secret", 0o644)
    path = write_dev_chain(tmp_path / "b.json", chain, secret)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _demo_replica(path):
    """A replica of the demo log at ``path``: (the log's items, its state hash, chain hash, top round)."""
    from pathlib import Path

    from p2p.logfile import read_items

    demo = [item[2] for item in read_items(Path(__file__).parent / "vectors" / "demo-run.log")]
    with ReplicaStore.create(path, demo[0]) as store:
        for item in demo[1:]:
            store.add_item(item)
        store.flush()
        return demo, store.state_hash(), store.replica.charter.beacon.hash, max(store.replica.beacon)


def test_a_beacon_round_forged_or_damaged_in_the_file_is_dropped_when_it_is_opened(tmp_path):
    """Issue 17: the store trusted its own file.  Each cached round now carries a MAC under the
    folder's key: a row whose MAC fails is verified again when the replica is opened, and a
    forged one is dropped (and counted); the genuine round, synced again, restores the state."""
    from consensus import cbor

    path = tmp_path / "r.sqlite"
    demo, genuine, chain, top = _demo_replica(path)
    with ReplicaStore(path) as store:
        # someone with write access adds a round from the future with a made-up signature
        store.db.execute("INSERT INTO beacon_rounds (chain, round, signature) VALUES (?, ?, ?)", [chain, top + 5, b"\x01" * 48])
        # and changes a genuine round's signature (a damaged file looks the same)
        store.db.execute("UPDATE beacon_rounds SET signature = ? WHERE chain = ? AND round = ?", [b"\x02" * 48, chain, top])
    with ReplicaStore(path) as store:
        assert top + 5 not in store.replica.beacon and top not in store.replica.beacon
        assert store.dropped_rounds == 2
        assert store.db.execute("SELECT count(*) FROM beacon_rounds WHERE round IN (?, ?)", [top, top + 5]).fetchone()[0] == 0
    with ReplicaStore(path) as store:
        assert store.dropped_rounds == 0
        store.add_item(next(i for i in demo if i[:1] == b"\x83" and cbor.decode_fast(i)[0] == top))
        store.flush()
        assert store.state_hash() == genuine, "the genuine round, synced again, gives back the genuine state"


def test_a_beacon_round_forged_with_the_folders_key_does_not_survive_rebuild(tmp_path):
    """Someone who can read the key beside the file can give a forged row a valid MAC: it is
    loaded.  ``klero rebuild`` verifies every round of the assembly's chain again and drops it."""
    path = tmp_path / "r.sqlite"
    demo, genuine, chain, top = _demo_replica(path)
    with ReplicaStore(path) as store:
        forged = store._round_row(chain, top + 5, b"\x01" * 48, None)
        store.db.execute("INSERT INTO beacon_rounds (chain, round, signature, previous_signature, mac) VALUES (?, ?, ?, ?, ?)",
                         forged)
    with ReplicaStore(path) as store:
        assert top + 5 in store.replica.beacon, "its MAC holds: loaded as the file says"
        store.rebuild()
        assert top + 5 not in store.replica.beacon
        assert store.state_hash() == genuine
        assert store.db.execute("SELECT count(*) FROM beacon_rounds WHERE round = ?", [top + 5]).fetchone()[0] == 0


def test_a_replica_file_without_its_folders_key_has_every_round_verified_once(tmp_path):
    """A replica copied from another machine (or from before rounds carried MACs) comes without
    this folder's key: every cached round is verified again when it is opened, genuine ones get
    their MAC, and the next opening checks MACs only."""
    import stat

    from p2p.store import ROUND_KEY_FILE

    path = tmp_path / "r.sqlite"
    _, genuine, chain, _ = _demo_replica(path)
    with ReplicaStore(path) as store:
        rounds = len(store.replica.beacon)
    assert stat.S_IMODE((tmp_path / ROUND_KEY_FILE).stat().st_mode) == 0o600
    (tmp_path / ROUND_KEY_FILE).unlink()
    with ReplicaStore(path) as store:
        assert store.dropped_rounds == 0 and len(store.replica.beacon) == rounds and store.state_hash() == genuine
        macs = store.db.execute("SELECT count(*) FROM beacon_rounds WHERE mac IS NOT NULL").fetchone()[0]
    assert rounds > 10 and macs == rounds
