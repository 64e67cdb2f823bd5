"""Constituencies at scale: what each member costs a full replica, and what a nation would.

Usage: python bench/constituencies.py [--keys 100000 1000000] [--sample 20000] [--size 1000]   (~3 min)
       python bench/constituencies.py --keys 100000 1000000 5000000      (the full run: ~18 min, 12 GB peak)
       python bench/constituencies.py --keys 100000 --profile             (where a cold replay spends its time)

Every representative's node holds a replica of every signed event, so every certified key (a
"member": one constituent) costs every full node the same.  Measured here, per member:

* **Wire bytes.** Each act is a real signed event (``consensus.events.sign_event``): the
  registrar's ``registrar.certify``, the member's ``constituency.join`` and ``endorse``, and, for
  some, ``serve``; the founder's ``constituency.found``.  Rounds are quicknet-era round numbers
  (~2e7, with their 8-byte prefix), so headers have their real size.  The plan per constituency
  of ``--size`` members: the founder founds, says yes and endorses itself; 1 % of the members
  (candidates) say yes; every other member joins and endorses (60 % the founder, the rest a
  candidate), so every constituency holds a seat.  That is 3.01 events a member.
* **Bytes stored.** A sample of ``--sample`` members (20 constituencies by default) goes, as
  signed events in arrival order, through ``p2p.store.ReplicaStore`` (SQLite, WAL; batches of
  2,000 a commit as ``add_many`` makes them); the file's growth divided by the members, with the
  per-table split from SQLite's ``dbstat``.  Nation figures are that, times 250 million: a
  **linear extrapolation** (B-tree depth grows by a level or two, so a little more in practice).
* **Bytes gossiped.** Wire size plus the real gossipsub envelope (a ``rpc_pb2.RPC`` built with
  py-libp2p's own protobuf: Ed25519 peer id, 8-byte seqno, the ``/klero/<assembly>/events/1``
  topic, the message signature and key) plus ~30 bytes of transport (yamux header, Noise length
  and tag), one message per RPC.  A full node in a gossipsub mesh of degree D = 6 (the node's
  setting; it ranges over 4..12) *receives* each message about D times (one useful copy, the
  rest mesh duplicates: gossipsub v1.1 has no IDONTWANT) and *sends* it D - 1 times; and it
  advertises each message id (45 bytes, base58 sha256) in IHAVE gossip for 3 heartbeats to at
  least 6 non-mesh peers, and hears as many adverts.  Both are estimates from the protocol's
  rules, not captures of a running network; sync (``p2p/sync.py``) is not counted.
* **Time**, always as a multiple of one raw libsodium Ed25519 verification measured in the same
  process (as ``bench/replay.py`` does: ``VerifyKey.verify`` on pre-built messages), never as
  an absolute claim: the machine has 2 cores and another job may hold one.  Both sides of each
  ratio are CPU time of the process (``time.process_time``), and each phase is divided by the
  mean of the baselines taken just before and just after it.  The seconds printed beside the
  ratios (and the nation's hours) are this machine's, for orientation only.
  - admission of each signed event through ``consensus.Replica.add`` (in memory) and through
    the SQLite store (``durable=False``: no fsync, whose cost is the disk's), per event and
    per member: the signature check is the floor of both;
  - the representation acts at the boundaries.  ``Legislature`` keeps its
    ``consensus.constituency.Roll`` between evaluations (``_RollCache``) and replays every
    representation record from scratch when a node starts and whenever an act arrives that
    names a round before the last boundary it applied (late, or backdated: any certified key
    may name an old round); a node evaluates after every beacon round.  Measured: the Roll's
    parts for the boundary that applies every act (``load``: the sort, ``advance``: the apply,
    ``seats``, ``settle``) and one more boundary with no new act; then whole evaluations as the
    reactor makes them (``Legislature.evaluate_replica``, ``explain=False``): *cold* (no cached
    Roll), *warm* (the next round, nothing new), after *one new act* in the open cycle (merged
    into the cached Roll) and after *one late act* (a rebuild); and ``Roll.merge`` of one act
    while every act of the plan still waits for its boundary (a registration drive's cycle:
    the merge re-sorts every waiting act).  The charter is the city template with the
    declared-round deadline rule, so an evaluation reaches the boundaries without simulated
    panels (the acts are applied the same way under the panel rule).  At millions of keys the
    records are built directly (unsigned ``Record`` objects with fresh byte strings for every
    field, as decoding makes them), with the same plan and rounds as the signed sample, in
    arrival order (by round); each ``--keys`` value runs in a fresh process, garbage collector
    on, so its peak RSS is its own.
* **Memory.** RSS of the records alone (what ``Replica.records`` holds), peak RSS of the
  evaluations (records + Roll; during a rebuild the old and the new Roll coexist), and the
  in-memory state of a store-backed replica per member from the signed sample (records, heads,
  vouched keys, certifications, state-hash facts, cached verify keys).
* **Boundary certificates.** An intake cut-off with constituencies lists every seat's key; the
  bench signs real ``cutoff`` events whose ``seats`` hold one key per constituency (with the
  roster bitmaps of leases and absences, and no submissions: a lower bound) for the measured
  scales and for 250,000 seats, and a ``precommit``/``propose``; a certificate is a quorum (21
  of a 31-member panel) of each.

Extrapolation to a nation (250,000 constituencies x 1,000 = 250 million members) is linear per
member from the largest ``--keys`` run (the ``load`` sort is n log n: its share is scaled by the
log factor), with seconds at this machine's signature rate: an order of magnitude, not a
prediction (no node would hold 250 million records as Python objects).  The per-member cost of a
cold replay grows with the number of keys (the Roll's dicts outgrow the caches: x1.4 to x1.6 per
5-10x keys here), so the nation's replay times are a floor.  An observer who follows one
constituency needs its members' events, their certifications and, every cycle, the intake
certificate that seats its representative; the bench estimates those bytes, and says what the
current replica would make it hold instead (the replica applies an author's events only as a
contiguous hash chain, so one certification is accepted only with every earlier event of its
registrar).  One registrar signs at most ``max_events_per_round`` (64) events a round, so the
certifications take registrar-rounds the table counts.

Output: a table on stdout and everything in bench/out/constituencies.json.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"

#: a quicknet-era beacon round (quicknet passed 2e7 in 2025): headers carry 5-byte round numbers
R0 = 20_000_000
#: rounds of each window of acts: ~8 hours of 3-second rounds
WINDOW = 10_000
#: the city template's cycle: 7 days of 3-second rounds
CYCLE_ROUNDS = 201_600
CANDIDATES = 0.01
FOR_FOUNDER = 0.6
NATION_CONSTITUENCIES = 250_000
NATION_SIZE = 1_000
#: gossipsub as p2p/node.py configures it
MESH_D, MESH_D_HIGH, LAZY_PEERS, GOSSIP_WINDOW = 6, 12, 6, 3
#: yamux data-frame header (12) + Noise frame length (2) and AEAD tag (16), one frame per RPC
TRANSPORT = 30


def clock() -> float:
    """CPU seconds of this process: another job on the machine's other core (or time-sharing this
    one) inflates it far less than wall time.  Every ratio divides two such times."""
    return time.process_time()


def rss() -> int:
    """Current resident set size in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    """Peak RSS in bytes since the last :func:`reset_peak` (VmHWM), else since the start."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def reset_peak() -> bool:
    """Forget the peak so far (Linux: ``clear_refs`` 5), so the build's transient lists do not count."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- the plan (shared by both paths)


def plan(members: int, size: int, rng: random.Random):
    """The acts of ``members`` members in constituencies of ``size``, as
    (window, round offset, author index, kind, payload) where author -1 is the registrar.
    Windows: 0 certifications (64 a round, the default ``max_events_per_round``), 1 foundings,
    2 joins, 3 willingness (first half) and endorsements (second half).  Per author the rounds
    never go back and its acts keep this order, so the same plan is a valid signed log."""
    half = WINDOW // 2
    for i in range(members):
        yield 0, i // 64, -1, "certify", i
    for g0 in range(0, members, size):
        count = min(size, members - g0)
        founder = g0
        cands = list(range(g0 + 1, g0 + 1 + max(1, int(count * CANDIDATES)) - 1)) or [founder]
        yield 1, rng.randrange(WINDOW), founder, "found", g0
        yield 3, rng.randrange(half), founder, "serve", None
        yield 3, WINDOW - 1, founder, "endorse", (g0, founder)
        for m in range(g0 + 1, g0 + count):
            yield 2, rng.randrange(WINDOW), m, "join", g0
            if m in cands:
                yield 3, rng.randrange(half), m, "serve", None
            whom = founder if rng.random() < FOR_FOUNDER else cands[rng.randrange(len(cands))]
            yield 3, half + rng.randrange(half), m, "endorse", (g0, whom)


def windows(members: int) -> list[int]:
    """First round of each window: all in cycle 0 (it starts at ``R0``; certifications take
    members / 64 rounds), so the acts settle at the boundary of cycle 1."""
    w0 = R0 + 1
    w1 = w0 + members // 64 + 1
    out = [w0, w1, w1 + WINDOW, w1 + 2 * WINDOW, w1 + 3 * WINDOW]
    if out[-1] > R0 + CYCLE_ROUNDS:
        raise SystemExit(f"{members:,} certifications by one registrar at 64 a round do not fit one 7-day cycle")
    return out


def make_charter(start_round: int, registrar: bytes, size: int, *, declared: bool = False, roster: tuple = ()):
    """The city template's parliament (7-day cycles on quicknet) with constituencies of ``size``;
    ``declared``: the declared-round deadline rule, so an evaluation reaches the boundaries
    without simulated panels (the representation acts are applied the same way under both)."""
    from consensus.beacon import QUICKNET
    from consensus.charter import Charter, Representation
    from consensus.parliament import Parliament
    from p2p.founding import canonical, load_template

    spec = load_template("city")
    body = {**spec["parliament"], "start_round": start_round}
    if declared:
        body["deadline_rule"] = "declared"
    parliament = Parliament.from_body(canonical(body))
    return Charter(name="Bench: constituencies at scale", registrars=(registrar,), roster=roster, beacon=QUICKNET,
                   parliament=parliament, representation=Representation(max_constituency=size, min_constituency=min(50, size)))


NAME = "Riverside and the Old Docks"
STATEMENT = ("Streets, schools and parks of our part of town: the river path, the two schools, the market hall "
             "and the bus lines that serve them.  Join, say what matters, endorse whom you trust.")


# ---------------------------------------------------------------- baseline


def sign_probe(n: int = 3000) -> list[bytes]:
    """``n`` signed constituency acts by fresh keys (what the baseline verifies)."""
    from nacl.signing import SigningKey

    from consensus.events import sign_event

    rng = random.Random(7)
    out = []
    assembly = rng.randbytes(32)
    for i in range(n):
        key = SigningKey(rng.randbytes(32))
        body = {"constituency": rng.randbytes(32), "member": rng.randbytes(32)}
        out.append(sign_event(key, assembly=assembly, seq=2, prev=rng.randbytes(32), kind="endorse", body=body,
                              round=R0 + i, round_prefix=rng.randbytes(8)))
    return out


def sig_seconds(wires: list[bytes], passes: int = 5) -> float:
    """Seconds per raw libsodium Ed25519 verification (VerifyKey objects built beforehand,
    message pre-built: the floor any replica pays per event)."""
    import cbor2
    from nacl.signing import VerifyKey

    from consensus.events import DOMAIN

    jobs, keys = [], {}
    for w in wires:
        enc, sig = cbor2.loads(w)
        author = cbor2.loads(enc)["author"]
        jobs.append((keys.setdefault(author, VerifyKey(author)), DOMAIN + enc, sig))
    times = []
    for _ in range(passes):
        t = clock()
        for vk, msg, sig in jobs:
            vk.verify(msg, sig)
        times.append((clock() - t) / len(jobs))
    return statistics.median(times)


# ---------------------------------------------------------------- the signed sample (child process)


def signed_sample(members: int, size: int) -> dict:
    """Sign the plan for ``members``; admit it through a SQLite store and an in-memory replica."""
    from nacl.signing import SigningKey

    from consensus.beacon import BeaconRound
    from consensus.events import NO_ASSEMBLY, event_id, sign_event
    from consensus.replica import Replica
    from p2p.store import ReplicaStore

    rng = random.Random(1)
    probe = sign_probe()
    sig0 = sig_seconds(probe)
    registrar = SigningKey(rng.randbytes(32))
    convenor = SigningKey(rng.randbytes(32))
    w = windows(members)
    charter = make_charter(R0, bytes(registrar.verify_key), size)
    charter_wire = sign_event(convenor, assembly=NO_ASSEMBLY, seq=1, prev=None, kind="charter", body=charter)
    assembly = event_id(charter_wire)
    keys = [SigningKey(rng.randbytes(32)) for _ in range(members)]
    pubs = [bytes(k.verify_key) for k in keys]
    randomness = {}

    def prefix(r: int) -> bytes:
        if r not in randomness:
            randomness[r] = hashlib.sha256(hashlib.sha256(b"bench-beacon" + r.to_bytes(8, "big")).digest()).digest()
        return randomness[r][:8]

    chains: dict[int, tuple[int, bytes | None]] = {}
    group_of: dict[int, bytes] = {}
    acts = sorted(plan(members, size, rng), key=lambda a: (a[0], a[1]))
    wires: list[tuple[str, bytes]] = []
    t = clock()
    for window, offset, who, kind, payload in acts:
        r = w[window] + offset
        if kind == "certify":
            body, kname = {"subject": pubs[payload]}, "registrar.certify"
        elif kind == "found":
            body, kname = {"name": NAME, "statement": STATEMENT}, "constituency.found"
        elif kind == "join":
            body, kname = {"constituency": group_of[payload]}, "constituency.join"
        elif kind == "serve":
            body, kname = {"answer": "yes"}, "serve"
        else:
            g0, whom = payload
            body, kname = {"constituency": group_of[g0], "member": pubs[whom]}, "endorse"
        seq, prev = chains.get(who, (0, None))
        wire = sign_event(registrar if who < 0 else keys[who], assembly=assembly, seq=seq + 1, prev=prev, kind=kname,
                          body=body, round=r, round_prefix=prefix(r))
        chains[who] = (seq + 1, event_id(wire))
        if kind == "found":
            group_of[payload] = event_id(wire)
        wires.append((kind, wire))
    sign_s = clock() - t
    rounds = [BeaconRound(r, hashlib.sha256(b"bench-beacon" + r.to_bytes(8, "big")).digest()) for r in sorted(randomness)]
    only = [x for _, x in wires]
    sig1 = sig_seconds(only[: min(len(only), 20000)], passes=3)

    sizes: dict[str, list[int]] = {}
    for kind, x in wires:
        sizes.setdefault(kind, []).append(len(x))

    # the SQLite store: file growth and the replica's in-memory state per member
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "replica.sqlite"
        store = ReplicaStore.create(path, charter_wire, durable=False)
        for rnd in rounds:
            store.replica.add_round(rnd, verified=True)
        store.flush()
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        empty = path.stat().st_size
        gc.collect()
        rss0 = rss()
        t = clock()
        done = 0
        for x in only:
            out = store.add(x)
            if out.status != "applied":
                raise SystemExit(f"the signed sample did not apply: {out}")
            done += 1
            if done % 2000 == 0:
                store.flush()
        store.flush()
        store_s = clock() - t
        sig_store = sig_seconds(probe, passes=3)
        store.state_hash()  # a running node hashes its state every second: per-author facts are kept
        gc.collect()
        state_bytes = rss() - rss0
        tables = dict(store.db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        full = path.stat().st_size + sum(p.stat().st_size for p in Path(tmp).glob("replica.sqlite-*"))
        del store
    gc.collect()

    # the in-memory replica: admission cost alone (the ledger is dictionaries)
    times = []
    for _ in range(1):
        replica = Replica(charter_wire)
        for rnd in rounds:
            replica.add_round(rnd, verified=True)
        t = clock()
        add = replica.add
        for x in only:
            add(x)
        times.append(clock() - t)
        assert len(replica.records) == len(only), "some acts did not apply"
        del replica
        gc.collect()
    mem_s = min(times)
    sig2 = sig_seconds(probe, passes=3)
    sig = statistics.mean([sig0, sig1, sig_store, sig2])
    store_sig = statistics.mean([sig1, sig_store])  # the baselines just before and just after
    mem_sig = statistics.mean([sig_store, sig2])
    n = len(only)
    return {
        "members": members,
        "events": n,
        "events_per_member": n / members,
        "wire_bytes": {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "count": len(v)} for k, v in sizes.items()},
        "wire_bytes_per_member": sum(len(x) for x in only) / members,
        "wire_bytes_per_constituency": sum(len(x) for x in only) / math.ceil(members / size),
        "wire_bytes_certify_per_constituency": sum(len(x) for k, x in wires if k == "certify") / math.ceil(members / size),
        "store_bytes_per_member": (full - empty) / members,
        "store_tables_bytes": tables,
        "replica_state_bytes_per_member": state_bytes / members,
        "sig_s": sig,
        "sig_s_passes": [sig0, sig1, sig_store, sig2],
        "sign_s_per_event": sign_s / n,
        "admit_memory_x_sig": mem_s / n / mem_sig,
        "admit_store_x_sig": store_s / n / store_sig,
        "admit_memory_per_member_x_sig": mem_s / members / mem_sig,
        "admit_store_per_member_x_sig": store_s / members / store_sig,
    }


# ---------------------------------------------------------------- the Roll at millions of keys (child process)


def build_records(members: int, size: int) -> tuple[dict, object, list[int], bytes]:
    """The representation records a replica would hold for the plan: fresh byte strings for every
    id, author and body field (as decoding each wire makes them), in a dict by id in arrival
    order (by round; within a round, authors in random order).  Plus one founding
    representative's leases for cycles 2 and 3, so an evaluation runs on to cycle 2's boundary."""
    from consensus.kinds import Certify, Endorse, Found, Join, Lease, Serve
    from consensus.replica import Record

    rng = random.Random(1)
    rb = rng.randbytes
    registrar, founding = rb(32), rb(32)
    w = windows(members)
    charter = make_charter(R0, registrar, size, declared=True, roster=(founding,))
    keys = [rb(32) for _ in range(members)]
    copy = lambda b: bytes(bytearray(b))  # noqa: E731  a distinct object, as a decoded field is
    seqs: dict[int, int] = {}
    groups: dict[int, bytes] = {}
    records: dict = {}
    serve = Serve("yes")
    for window, offset, who, kind, payload in sorted(plan(members, size, random.Random(2)), key=lambda a: (a[0], a[1])):
        r = w[window] + offset
        seq = seqs[who] = seqs.get(who, 0) + 1
        author = copy(registrar) if who < 0 else copy(keys[who])
        rid = rb(32)
        if kind == "certify":
            body = Certify(copy(keys[payload]))
        elif kind == "found":
            body = Found(NAME, STATEMENT[:len(STATEMENT) - 1] + ".")  # a fresh str, as decoded
            groups[payload] = rid
        elif kind == "join":
            body = Join(copy(groups[payload]))
        elif kind == "serve":
            body = serve
        else:
            g0, whom = payload
            body = Endorse(copy(groups[g0]), copy(keys[whom]))
        records[rid] = Record(rid, author, seq, r, rb(8), body.KIND, body)
    for seq, cycle in ((1, 2), (2, 3)):
        rid = rb(32)
        records[rid] = Record(rid, founding, seq, w[4] + seq, rb(8), Lease.KIND, Lease(cycle))
    extra = (keys[1], groups[0], keys[0])  # a member, its constituency, its founder: for the late acts
    return records, charter, w, extra


class _Replica:
    """What ``Legislature.evaluate_replica`` reads of a replica: records, beacon, evidence, and
    the log of representation changes (the replica's own methods, so the cache sees what it
    would see on a node)."""

    from consensus.replica import Replica as _Real

    REP_CHANGES_KEPT = _Real.REP_CHANGES_KEPT
    _note_rep = _Real._note_rep
    rep_version = _Real.rep_version
    rep_since = _Real.rep_since
    del _Real

    def __init__(self, records: dict, beacon: dict):
        from consensus.kinds import REPRESENTATION

        self.records, self.beacon, self.evidence = records, beacon, {}
        self._rep_changes: list = []
        self._rep_base = 0
        for r in records.values():
            if r.kind in REPRESENTATION:
                self._note_rep(r.round, r.id, True)

    def add(self, record) -> None:
        self.records[record.id] = record
        self._note_rep(record.round, record.id, True)


def roll_at(members: int, size: int, profile: bool) -> dict:
    from consensus.constituency import Roll
    from consensus.kinds import Endorse
    from consensus.legislature import Legislature, _Inputs
    from consensus.replica import Record

    probe = sign_probe()
    sig0 = sig_seconds(probe, passes=3)
    gc.collect()
    rss_start = rss()
    t = clock()
    records, charter, w, (member, gid, founder) = build_records(members, size)
    build_s = clock() - t
    gc.collect()
    rss_records = rss() - rss_start
    leg = Legislature(charter, 0)
    cycle_of = leg.cycle_of
    # cycle 0 starts at R0 and holds every act: they settle at cycle 1's boundary (boundary0
    # below); cycle 2's boundary (boundary1) has no new act: what each later cycle adds
    boundary0, boundary1 = leg.cycle_start(1), leg.cycle_start(2)
    assert leg.cycle_start(0) == R0 and w[4] < boundary0
    rand0, rand1 = hashlib.sha256(b"round0").digest(), hashlib.sha256(b"round1").digest()
    gc.collect()
    peak_reset = reset_peak()

    # ---- the parts of a cold replay, one by one (gc on, as in a node)
    t = clock()
    _Inputs(records)
    inputs_s = clock() - t
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
    roll = Roll(charter)
    t0 = clock()
    roll.load(records.values())
    t1 = clock()
    # one act arriving while every act of the plan still waits for its boundary (the open cycle of
    # a registration drive): what an evaluation pays to merge it into the cached Roll
    t = clock()
    roll.merge([Record(hashlib.sha256(b"open act").digest(), bytes(bytearray(member)), 9, boundary0 - 10, rand0[:8],
                       Endorse.KIND, Endorse(gid, founder))], [])
    merge_open_s = clock() - t
    t1b = clock()
    roll.advance(boundary0, 1, rand0, cycle_of)
    t2 = clock() - (t1b - t1)  # the merge is not part of the replay
    seats = roll.seats(1, rand0)
    t3 = clock() - (t1b - t1)
    roster = sorted(s.holder for s in seats if s.holder is not None)
    roll.settle(roster, 2)
    t4 = clock() - (t1b - t1)
    roll.advance(boundary1, 2, rand1, cycle_of)
    seats1 = roll.seats(2, rand1)
    roll.settle(sorted(s.holder for s in seats1 if s.holder is not None), 3)
    t5 = clock() - (t1b - t1)
    if profile:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(14)
    peak_replay = peak_rss()
    groups = len(roll.groups)
    held = len(roster)
    problems = len(roll.problems)
    # every constituency holds its seat (a last, smaller one may be below the charter's minimum)
    assert problems == 0 and groups == math.ceil(members / size) and held >= groups - 1, (problems, held, groups)
    del roll, seats, seats1
    gc.collect()
    sig_mid = sig_seconds(probe, passes=3)

    # ---- whole evaluations, as a node makes them (Legislature.evaluate_replica, explain=False)
    beacon = {leg.cycle_start(c): hashlib.sha256(b"round%d" % c).digest() for c in range(3)}
    horizon = leg.cycle_start(2) + 100
    beacon[horizon] = hashlib.sha256(b"horizon").digest()
    replica = _Replica(records, beacon)
    reset_peak()

    def evaluate() -> tuple[float, object]:
        t = clock()
        result = leg.evaluate_replica(replica, explain=False)
        return clock() - t, result

    cold_s, result = evaluate()
    assert result.cycles == 3 and sum(1 for x in result.seats if x["holder"]) == 2 * held, (result.cycles, result.waiting)
    peak_cold = peak_rss()
    warm_s = evaluate()[0]
    # an act in the open cycle (after the last boundary applied): merged into the cached Roll
    rid = hashlib.sha256(b"new act").digest()
    replica.add(Record(rid, bytes(bytearray(member)), 3, boundary1 + 50, rand1[:8], Endorse.KIND, Endorse(gid, founder)))
    merge_s = evaluate()[0]
    # a late (or backdated) act: it names a round before the last boundary applied: full rebuild
    rid = hashlib.sha256(b"late act").digest()
    replica.add(Record(rid, bytes(bytearray(founder)), 4, boundary1 - 50, rand0[:8], Endorse.KIND, Endorse(gid, member)))
    late_s, result = evaluate()
    assert result.cycles == 3
    peak_eval = peak_rss()
    sig1 = sig_seconds(probe, passes=3)
    sig = statistics.mean([sig0, sig_mid, sig1])
    parts_sig, eval_sig = (sig0 + sig_mid) / 2, (sig_mid + sig1) / 2  # the baselines either side
    replay = t4 - t0
    x = lambda seconds: seconds / members / parts_sig  # noqa: E731  per member, in signature checks
    y = lambda seconds: seconds / members / eval_sig  # noqa: E731
    return {
        "members": members,
        "constituencies": groups,
        "seats_held": held,
        "records": len(records),
        "sig_s": sig,
        "sig_s_passes": [sig0, sig_mid, sig1],
        "build_s": build_s,
        "load_s": t1 - t0,
        "advance_s": t2 - t1,
        "seats_s": t3 - t2,
        "settle_s": t4 - t3,
        "replay_s": replay,
        "next_boundary_s": t5 - t4,
        "inputs_scan_s": inputs_s,
        "evaluate_cold_s": cold_s,
        "evaluate_warm_s": warm_s,
        "evaluate_new_act_s": merge_s,
        "evaluate_late_act_s": late_s,
        "replay_per_member_x_sig": x(replay),
        "load_per_member_x_sig": x(t1 - t0),
        "advance_per_member_x_sig": x(t2 - t1),
        "next_boundary_per_member_x_sig": x(t5 - t4),
        "inputs_scan_per_member_x_sig": x(inputs_s),
        "merge_open_cycle_s": merge_open_s,
        "merge_open_cycle_per_member_x_sig": x(merge_open_s),
        "evaluate_cold_per_member_x_sig": y(cold_s),
        "evaluate_warm_per_member_x_sig": y(warm_s),
        "evaluate_new_act_per_member_x_sig": y(merge_s),
        "evaluate_late_act_per_member_x_sig": y(late_s),
        "rss_records_bytes_per_member": rss_records / members,
        "peak_rss_replay_bytes": peak_replay,
        "peak_rss_replay_bytes_per_member": peak_replay / members,
        "peak_rss_evaluations_bytes": max(peak_cold, peak_eval),
        "peak_rss_evaluations_bytes_per_member": max(peak_cold, peak_eval) / members,
        "peak_rss_excludes_build": peak_reset,
    }


# ---------------------------------------------------------------- sizes computed in the parent


def gossip_envelope(wire: bytes) -> dict:
    """Bytes of one event as one gossipsub RPC, built with py-libp2p's protobuf, and of one id in
    an IHAVE advert."""
    from libp2p.pubsub.pb import rpc_pb2

    rng = random.Random(3)
    peer_id = b"\x00\x24\x08\x01\x12\x20" + rng.randbytes(32)  # identity multihash of an Ed25519 key
    topic = f"/klero/{rng.randbytes(32).hex()}/events/1"
    msg = rpc_pb2.Message(from_id=peer_id, data=wire, seqno=time.time_ns().to_bytes(8, "big"), topicIDs=[topic],
                          signature=rng.randbytes(64), key=b"\x08\x01\x12\x20" + rng.randbytes(32))
    rpc = rpc_pb2.RPC(publish=[msg]).SerializeToString()
    varint = len(rpc).bit_length() // 7 + 1
    mid = b"z" + b"1" * 44  # base58btc multibase of a sha256 digest: 'z' + ~44 characters
    one = rpc_pb2.RPC(control=rpc_pb2.ControlMessage(ihave=[rpc_pb2.ControlIHave(topicID=topic, messageIDs=[mid] * 100)]))
    per_id = (len(one.SerializeToString()) - len(rpc_pb2.RPC(control=rpc_pb2.ControlMessage(ihave=[
        rpc_pb2.ControlIHave(topicID=topic, messageIDs=[mid])])).SerializeToString())) / 99
    return {"framed": len(rpc) + varint + TRANSPORT, "envelope": len(rpc) + varint + TRANSPORT - len(wire),
            "ihave_per_id": per_id}


def certificate_sizes(seat_counts: list[int]) -> dict:
    """Signed intake cut-off (seats of every constituency, roster bitmaps), precommit, propose."""
    from nacl.signing import SigningKey

    from consensus.events import sign_event
    from consensus.panel import CutOff, bitmap, deadline_key, encode_value

    rng = random.Random(5)
    key = SigningKey(rng.randbytes(32))
    assembly = rng.randbytes(32)
    deadline = deadline_key("intake", 52, 0)
    common = dict(assembly=assembly, seq=123_456, prev=rng.randbytes(32), round=R0 + 4_000_000, round_prefix=rng.randbytes(8))
    out = {}
    for seats in seat_counts:
        cut = CutOff(seats=tuple(sorted(rng.randbytes(32) for _ in range(seats))), leases=bitmap(range(seats), seats),
                     absent=bitmap([], seats), represent=True)
        wire = sign_event(key, kind="cutoff", body={"deadline": deadline, "cutoff": cut.to_body()}, **common)
        out[seats] = len(wire)
    precommit = sign_event(key, kind="precommit", body={"deadline": deadline, "round": 0, "value": rng.randbytes(32)}, **common)
    value = encode_value([rng.randbytes(32) for _ in range(21)], R0 + 4_000_010)
    propose = sign_event(key, kind="propose", body={"deadline": deadline, "round": 0, "valid_round": -1, "value": value}, **common)
    return {"cutoff": out, "precommit": len(precommit), "propose": len(propose)}


# ---------------------------------------------------------------- driver


def child(kind: str, args: list[str]) -> dict:
    """Run one measurement in a fresh interpreter (its own peak RSS, no heap left by another)."""
    cmd = [sys.executable, __file__, "--child", kind, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{' '.join(cmd)} failed")
    if proc.stdout.strip() and not proc.stdout.lstrip().startswith("{"):
        head, _, tail = proc.stdout.rpartition("\n{")
        print(head)  # the profile
        return json.loads("{" + tail)
    return json.loads(proc.stdout)


def code_version() -> str:
    """The commit measured (and whether consensus/ or p2p/ differ from it)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "consensus", "p2p"], cwd=ROOT, capture_output=True,
                               text=True).stdout.strip()
    except OSError:
        return "unknown"
    return head + (" (consensus/ or p2p/ modified)" if dirty else "")


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} EB"


def duration(s: float) -> str:
    if s < 120:
        return f"{s:.3g} s"
    if s < 7200:
        return f"{s / 60:.3g} min"
    if s < 172800:
        return f"{s / 3600:.3g} h"
    return f"{s / 86400:.3g} days"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, nargs="+", default=[100_000, 1_000_000],
                    help="certified keys (members) for the Roll replay, one fresh process each (up to 5,000,000)")
    ap.add_argument("--sample", type=int, default=20_000, help="members of the signed sample (store, admission)")
    ap.add_argument("--size", type=int, default=1_000, help="members per constituency")
    ap.add_argument("--profile", action="store_true", help="cProfile the Roll replay at the smallest --keys")
    ap.add_argument("--child", nargs="?", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "sample":
        print(json.dumps(signed_sample(args.sample, args.size)))
        return
    if args.child == "roll":
        print(json.dumps(roll_at(args.keys[0], args.size, args.profile)))
        return

    started = time.perf_counter()
    print(f"signed sample: {args.sample:,} members ...", file=sys.stderr)
    sample = child("sample", ["--sample", str(args.sample), "--size", str(args.size)])
    rolls = []
    for i, n in enumerate(sorted(args.keys)):
        print(f"Roll replay: {n:,} members ...", file=sys.stderr)
        extra = ["--profile"] if args.profile and i == 0 else []
        rolls.append(child("roll", ["--keys", str(n), "--size", str(args.size), *extra]))

    # sizes
    from consensus.agreement import quorum_size
    from consensus.parliament import Parliament

    panel = Parliament().panel_size
    quorum = quorum_size(panel)
    nation = NATION_CONSTITUENCIES * NATION_SIZE
    seat_counts = sorted({r["constituencies"] for r in rolls} | {NATION_CONSTITUENCIES})
    certs = certificate_sizes(seat_counts)
    wb = sample["wire_bytes"]
    env = gossip_envelope(b"\0" * int(wb["endorse"]["median"]))
    per_member_events = sample["events_per_member"]
    wire_pm = sample["wire_bytes_per_member"]
    framed_pm = wire_pm + per_member_events * env["envelope"]
    mesh_pm = framed_pm * (2 * MESH_D - 1)
    ihave_pm = per_member_events * 2 * GOSSIP_WINDOW * LAZY_PEERS * env["ihave_per_id"]
    gossip_pm = mesh_pm + ihave_pm

    big = max(rolls, key=lambda r: r["members"])
    sig = big["sig_s"]
    # linear per member, but the load sort is n log n: its share scaled by the log factor
    log_factor = math.log2(nation * per_member_events) / math.log2(big["records"])
    sort_extra = big["load_per_member_x_sig"] * (log_factor - 1)
    cold_x = nation * (big["evaluate_cold_per_member_x_sig"] + sort_extra)
    late_x = nation * (big["evaluate_late_act_per_member_x_sig"] + sort_extra)
    warm_x = nation * big["evaluate_warm_per_member_x_sig"]
    boundary_x = nation * big["next_boundary_per_member_x_sig"]
    admit_x = nation * sample["admit_store_per_member_x_sig"]
    checks = nation * per_member_events
    certificate = quorum * (certs["cutoff"][NATION_CONSTITUENCIES] + certs["precommit"]) + certs["propose"]
    from consensus.charter import Limits

    limit = Limits().max_event_bytes
    small = min(certs["cutoff"])
    per_seat = (certs["cutoff"][NATION_CONSTITUENCIES] - certs["cutoff"][small]) / (NATION_CONSTITUENCIES - small)
    # how the per-member cost of a cold replay moved between the two largest runs
    ordered = sorted(rolls, key=lambda r: r["members"])
    growth = (ordered[-1]["evaluate_cold_per_member_x_sig"] / ordered[-2]["evaluate_cold_per_member_x_sig"]
              if len(ordered) > 1 else None)
    observer_events = sample["wire_bytes_per_constituency"]
    result = {
        "command": "python bench/constituencies.py " + " ".join(sys.argv[1:]),
        "code": code_version(),
        "profiled": args.profile,
        "constituency_size": args.size,
        "plan": {"events_per_member": per_member_events, "candidates_share": CANDIDATES, "endorse_founder_share": FOR_FOUNDER},
        "sample": sample,
        "rolls": rolls,
        "gossip": {"envelope_bytes_per_event": env["envelope"], "ihave_bytes_per_id": env["ihave_per_id"],
                   "mesh_degree": MESH_D, "framed_bytes_per_member": framed_pm, "mesh_bytes_per_member_per_full_node": mesh_pm,
                   "ihave_bytes_per_member_per_full_node": ihave_pm, "total_bytes_per_member_per_full_node": gossip_pm,
                   "mesh_bytes_per_member_at_degree_high": framed_pm * (2 * MESH_D_HIGH - 1)},
        "certificates": {"panel": panel, "quorum": quorum, **certs, "bytes_per_seat": per_seat,
                         "default_event_limit": limit, "max_seats_default_limit": int(small + (limit - certs["cutoff"][small]) / per_seat),
                         "intake_certificate_bytes": {n: quorum * (c + certs["precommit"]) + certs["propose"]
                                                      for n, c in certs["cutoff"].items()}},
        "nation": {
            "members": nation,
            "constituencies": NATION_CONSTITUENCIES,
            "extrapolated_from_members": big["members"],
            "cold_per_member_growth_between_largest_runs": growth,
            "growth_between": [r["members"] for r in ordered[-2:]],
            "sig_s": sig,
            "wire_bytes": nation * wire_pm,
            "store_bytes": nation * sample["store_bytes_per_member"],
            "replica_memory_bytes": nation * sample["replica_state_bytes_per_member"],
            "gossip_bytes_per_full_node": nation * gossip_pm,
            "signature_checks": checks,
            "signature_checks_core_s": checks * sig,
            "admission_x_sig": admit_x,
            "admission_core_s": admit_x * sig,
            "evaluate_cold_x_sig": cold_x,
            "evaluate_cold_s": cold_x * sig,
            "evaluate_late_act_x_sig": late_x,
            "evaluate_late_act_s": late_x * sig,
            "evaluate_warm_x_sig": warm_x,
            "evaluate_warm_s": warm_x * sig,
            "merge_open_x_sig": nation * big["merge_open_cycle_per_member_x_sig"],
            "merge_open_s": nation * big["merge_open_cycle_per_member_x_sig"] * sig,
            "roll_next_boundary_s": boundary_x * sig,
            "evaluation_peak_rss_bytes": nation * big["peak_rss_evaluations_bytes_per_member"],
            "registrar_rounds_at_64_per_round": nation / 64,
            "intake_cutoff_bytes": certs["cutoff"][NATION_CONSTITUENCIES],
            "intake_certificate_bytes": certificate,
            "intake_certificates_per_year_bytes": 52 * certificate,
            "observer_constituency_events_bytes": observer_events,
            "observer_constituency_store_bytes": observer_events * sample["store_bytes_per_member"] / wire_pm,
            "observer_registrar_chain_bytes": nation * wb["certify"]["median"],
        },
        "elapsed_s": time.perf_counter() - started,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "constituencies.json").write_text(json.dumps(result, indent=2, default=str))
    report(result)


def report(res: dict) -> None:
    s, rolls, g, c, nat = res["sample"], res["rolls"], res["gossip"], res["certificates"], res["nation"]
    size = res["constituency_size"]
    p = print
    p(f"Code: {res['code']}.  Constituencies of {size:,} members.")
    p("Time: CPU time in units of one raw libsodium Ed25519 verification measured in the same process (\"x sig\"; "
      f"~{s['sig_s'] * 1e6:.0f} us")
    p("in the sample's process, " + ", ".join(f"~{r['sig_s'] * 1e6:.0f} us at {r['members']:,}" for r in rolls) + ").")
    p()
    p(f"Per member ({s['events_per_member']:.3f} signed events: certify, join, endorse; serve for 1 %; a found per constituency)")
    wb = s["wire_bytes"]
    p("  wire bytes per act (median)       " + ", ".join(
        f"{k} {v['median']:.0f}" for k, v in sorted(wb.items(), key=lambda kv: -kv[1]["count"])))
    p(f"  wire bytes                        {s['wire_bytes_per_member']:.0f}")
    p(f"  stored (SQLite file growth)       {s['store_bytes_per_member']:.0f}  "
      f"({s['store_bytes_per_member'] / s['wire_bytes_per_member']:.1f}x the wire; {s['members']:,}-member sample)")
    tables = sorted(s["store_tables_bytes"].items(), key=lambda kv: -kv[1])[:7]
    p("    by table/index                  " + ", ".join(f"{k} {v / s['members']:.0f}" for k, v in tables))
    p(f"  replica memory (store-backed)     {s['replica_state_bytes_per_member']:.0f} B  "
      "(records, heads, vouched, certified, state-hash facts, verify-key cache; RSS growth, SQLite's cache included)")
    p(f"  gossiped, one full node           {g['total_bytes_per_member_per_full_node']:.0f} B  = mesh "
      f"{g['mesh_bytes_per_member_per_full_node']:.0f} ({2 * g['mesh_degree'] - 1} x {g['framed_bytes_per_member']:.0f} framed: "
      f"~{g['mesh_degree']} copies in, {g['mesh_degree'] - 1} out) + IHAVE {g['ihave_bytes_per_member_per_full_node']:.0f}"
      f"; at D = 12: {g['mesh_bytes_per_member_at_degree_high'] + g['ihave_bytes_per_member_per_full_node']:.0f}")
    p(f"  gossipsub envelope per event      {g['envelope_bytes_per_event']:.0f} B (peer id, seqno, topic, signature, key, framing)")
    p(f"  admission per event               {s['admit_memory_x_sig']:.2f} x sig (Replica.add, memory); "
      f"{s['admit_store_x_sig']:.2f} x sig (SQLite store, no fsync)")
    p(f"  admission per member              {s['admit_store_per_member_x_sig']:.2f} x sig "
      f"(of which {s['events_per_member']:.2f} x sig are the signature checks)")
    p()
    p("Representation acts at a boundary, per member, x sig (records built directly; each row a fresh process):")
    p(f"  {'members':>9} {'seats':>5} | {'load':>5} {'advance':>7} {'replay':>6} {'+cycle':>6} | {'cold eval':>9} "
      f"{'warm eval':>9} {'new act':>7} {'open':>7} {'late act':>8} | {'cold eval':>9} {'warm eval':>9} | {'records':>7} {'peak RSS':>9}")
    p(f"  {'':>9} {'':>5} | {'':>5} {'':>7} {'':>6} {'':>6} | {'':>9} {'':>9} {'':>7} {'merge':>7} {'':>8} | {'seconds':>9} "
      f"{'seconds':>9} | {'B/member':>7} {'':>9}")
    for r in rolls:
        p(f"  {r['members']:>9,} {r['constituencies']:>5,} | {r['load_per_member_x_sig']:>5.2f} "
          f"{r['advance_per_member_x_sig']:>7.2f} {r['replay_per_member_x_sig']:>6.2f} {r['next_boundary_per_member_x_sig']:>6.3f} | "
          f"{r['evaluate_cold_per_member_x_sig']:>9.2f} {r['evaluate_warm_per_member_x_sig']:>9.3f} "
          f"{r['evaluate_new_act_per_member_x_sig']:>7.3f} {r['merge_open_cycle_per_member_x_sig']:>7.3f} "
          f"{r['evaluate_late_act_per_member_x_sig']:>8.2f} | "
          f"{r['evaluate_cold_s']:>9.1f} {r['evaluate_warm_s']:>9.2f} | {r['rss_records_bytes_per_member']:>7.0f} "
          f"{human(r['peak_rss_evaluations_bytes']):>9}")
    p("  load/advance/replay: the Roll's sort, apply and the whole cold replay (+ seats, settle) of cycle 1's boundary;")
    p("  +cycle: one more boundary with no new act; cold eval: Legislature.evaluate_replica with no cached Roll (node")
    p("  start); warm: the next evaluation (every beacon round), nothing new; new act: one act in the open cycle (merged);")
    p("  open merge: Roll.merge of one act while all the plan's acts still wait in the open cycle (the merge alone);")
    p("  late act: one act naming a round before the last boundary applied (a full rebuild).  Peak RSS: records + Roll.")
    if res["profiled"]:
        p("  (the smallest row's load/advance/replay/+cycle ran under cProfile: slower than without it)")
    p()
    p(f"Intake certificate (a quorum of {c['quorum']} cut-offs of a {c['panel']}-member panel, each listing every seat, "
      "+ precommits + the proposal):")
    for n, b in c["intake_certificate_bytes"].items():
        p(f"  {int(n):>8,} seats: one cut-off {human(c['cutoff'][n]):>9}, the certificate {human(b):>9}")
    p(f"  a cut-off grows by {c['bytes_per_seat']:.1f} B a seat: above ~{c['max_seats_default_limit']:,} seats it exceeds the "
      f"default {c['default_event_limit'] // 1024} KiB event limit (a charter may raise it to 16 MiB)")
    p()
    n = nat["members"]
    sig = nat["sig_s"]
    p(f"A nation: {nat['constituencies']:,} constituencies x {n // nat['constituencies']:,} = {n:,} members "
      f"(linear extrapolation from {nat['extrapolated_from_members']:,}; seconds at ~{sig * 1e6:.0f} us a signature check)")
    p(f"  representation acts, wire            {human(nat['wire_bytes'])}")
    p(f"  stored by every full replica         {human(nat['store_bytes'])}")
    p(f"  replica memory (records etc.)        {human(nat['replica_memory_bytes'])}")
    p(f"  gossiped per full node               {human(nat['gossip_bytes_per_full_node'])} "
      f"(if registration took a year: {nat['gossip_bytes_per_full_node'] * 8 / 365.25 / 86400 / 1e6:.2g} Mbit/s)")
    p(f"  signature checks per full replica    {nat['signature_checks']:.3g} (~{duration(nat['signature_checks_core_s'])} "
      f"of one core; admission in all ~{duration(nat['admission_core_s'])})")
    p(f"  cold evaluation (start, late act)    {nat['evaluate_cold_x_sig']:.3g} x sig (~{duration(nat['evaluate_cold_s'])}); "
      f"after a late act ~{duration(nat['evaluate_late_act_s'])}")
    growth = nat["cold_per_member_growth_between_largest_runs"]
    if growth:
        a, b = nat["growth_between"]
        why = "bigger dicts, fewer cache hits; " if growth > 1.05 else ""
        p(f"                                       (per member: x{growth:.2f} from {a:,} to {b:,}; {why}"
          "the figure assumes no further growth)")
    p(f"  warm evaluation (every 3 s round)    {nat['evaluate_warm_x_sig']:.3g} x sig (~{duration(nat['evaluate_warm_s'])}): "
      "the legislature's scan of every record")
    p(f"  merging one new act, open cycle      {nat['merge_open_x_sig']:.3g} x sig (~{duration(nat['merge_open_s'])}) "
      "per evaluation while a registration drive's acts wait for their boundary")
    p(f"  evaluation peak memory               {human(nat['evaluation_peak_rss_bytes'])}")
    p(f"  registrar throughput                 {nat['registrar_rounds_at_64_per_round']:.3g} registrar-rounds at 64 events "
      f"a round: one registrar {duration(nat['registrar_rounds_at_64_per_round'] * 3)}, 1,000 registrars "
      f"{duration(nat['registrar_rounds_at_64_per_round'] * 3 / 1000)}")
    p(f"  intake cut-off / certificate         {human(nat['intake_cutoff_bytes'])} / {human(nat['intake_certificate_bytes'])} "
      f"a cycle ({human(nat['intake_certificates_per_year_bytes'])} a year); the cut-off needs a charter limit above 64 KiB")
    p(f"  observer of ONE constituency         {human(nat['observer_constituency_events_bytes'])} of its acts and "
      f"certifications (~{human(nat['observer_constituency_store_bytes'])} stored) + {human(nat['intake_certificate_bytes'])} "
      "of certificate a cycle;")
    p(f"                                       but a replica takes a certification only with its registrar's chain up to it: "
      f"{human(nat['observer_registrar_chain_bytes'])} if one registrar certified all")
    p(f"\n(elapsed {res['elapsed_s']:.0f} s; JSON in bench/out/constituencies.json)")


if __name__ == "__main__":
    main()
