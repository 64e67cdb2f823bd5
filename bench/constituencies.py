"""Constituencies at scale: what each member costs a full replica, and what a nation would.

Usage: python bench/constituencies.py [--keys 100000 1000000] [--sample 20000] [--size 1000]
       python bench/constituencies.py --keys 100000 1000000 5000000      (the full run, ~10 min)
       python bench/constituencies.py --keys 100000 --profile             (where the Roll spends its time)

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
  an absolute claim: the machine has 2 cores and another job may hold one.
  - admission of each signed event through ``consensus.Replica.add`` (in memory) and through
    the SQLite store (``durable=False``: no fsync, whose cost is the disk's), per event and
    per member: the signature check is the floor of both;
  - the ``consensus.constituency.Roll`` replay a node runs at every evaluation
    (``Legislature.evaluate`` builds a fresh Roll and replays every representation record,
    and a node evaluates after every beacon round): ``load`` (sort), ``advance`` (apply),
    ``seats`` and ``settle`` for cycle 0's boundary, then one more boundary with no new acts
    (the cost every later cycle adds to each evaluation), plus the legislature's own scan of
    the records (``_Inputs``).  At millions of keys the records are built directly (unsigned
    ``Record`` objects with fresh byte strings for every field, as decoding makes them), with
    the same plan and rounds as the signed sample; each ``--keys`` value runs in a fresh
    process so its peak RSS is its own.
* **Memory.** RSS of the records alone (what ``Replica.records`` holds), peak RSS of the whole
  replay, and the in-memory state of a store-backed replica per member (heads, vouched keys,
  certifications, records, cached verify keys) from the signed sample.
* **Boundary certificates.** An intake cut-off with constituencies lists every seat's key; the
  bench signs real ``cutoff`` events whose ``seats`` hold one key per constituency (with the
  roster bitmaps of leases and absences, and no submissions: a lower bound) for the measured
  scales and for 250,000 seats, and a ``precommit``/``propose``; a certificate is a quorum (21
  of a 31-member panel) of each.

Extrapolation to a nation (250,000 constituencies x 1,000 = 250 million members) is linear per
member (the ``load`` sort is n log n: scaled by its log factor); the table says what it means and
what does not scale.  An observer who follows one constituency needs its members' events, their
certifications and, every cycle, the intake certificate that seats its representative; the
bench estimates those bytes, and says what the current replica would make it hold instead (the
replica applies an author's events only as a contiguous hash chain, so one certification is
accepted only with every earlier event of its registrar).

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


def make_charter(start_round: int, registrar: bytes, size: int):
    from consensus.beacon import QUICKNET
    from consensus.charter import Charter, Representation
    from consensus.parliament import Parliament
    from p2p.founding import canonical, load_template

    spec = load_template("city")
    parliament = Parliament.from_body(canonical({**spec["parliament"], "start_round": start_round}))
    return Charter(name="Bench: constituencies at scale", registrars=(registrar,), beacon=QUICKNET,
                   parliament=parliament, representation=Representation(max_constituency=size))


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
        t = time.perf_counter()
        for vk, msg, sig in jobs:
            vk.verify(msg, sig)
        times.append((time.perf_counter() - t) / len(jobs))
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
    t = time.perf_counter()
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
    sign_s = time.perf_counter() - t
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
        t = time.perf_counter()
        done = 0
        for x in only:
            out = store.add(x)
            if out.status != "applied":
                raise SystemExit(f"the signed sample did not apply: {out}")
            done += 1
            if done % 2000 == 0:
                store.flush()
        store.flush()
        store_s = time.perf_counter() - t
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
    for _ in range(2):
        replica = Replica(charter_wire)
        for rnd in rounds:
            replica.add_round(rnd, verified=True)
        t = time.perf_counter()
        add = replica.add
        for x in only:
            add(x)
        times.append(time.perf_counter() - t)
        assert len(replica.records) == len(only), "some acts did not apply"
        del replica
        gc.collect()
    mem_s = min(times)
    sig2 = sig_seconds(probe)
    sig = statistics.mean([sig0, sig1, sig2])
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
        "sig_s_passes": [sig0, sig1, sig2],
        "sign_s_per_event": sign_s / n,
        "admit_memory_x_sig": mem_s / n / sig,
        "admit_store_x_sig": store_s / n / sig,
        "admit_memory_per_member_x_sig": mem_s / members / sig,
        "admit_store_per_member_x_sig": store_s / members / sig,
    }


# ---------------------------------------------------------------- the Roll at millions of keys (child process)


def build_records(members: int, size: int) -> tuple[dict, object, list[int]]:
    """The representation records a replica would hold for the plan: fresh byte strings for every
    id, author and body field (as decoding each wire makes them), in a dict by id."""
    from consensus.kinds import Certify, Endorse, Found, Join, Serve
    from consensus.replica import Record

    rng = random.Random(1)
    rb = rng.randbytes
    registrar = rb(32)
    w = windows(members)
    charter = make_charter(R0, registrar, size)
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
    return records, charter, w


def roll_at(members: int, size: int, profile: bool) -> dict:
    from consensus.constituency import Roll
    from consensus.legislature import Legislature, _Inputs

    probe = sign_probe()
    sig0 = sig_seconds(probe)
    gc.collect()
    rss_start = rss()
    t = time.perf_counter()
    records, charter, w = build_records(members, size)
    build_s = time.perf_counter() - t
    gc.collect()
    rss_records = rss() - rss_start
    peak_reset = reset_peak()
    leg = Legislature(charter, 0)
    cycle_of = leg.cycle_of
    # cycle 0 starts at R0 and holds every act: they settle at cycle 1's boundary (boundary0
    # below); cycle 2's boundary (boundary1) has no new act: what each later cycle adds
    boundary0, boundary1 = leg.cycle_start(1), leg.cycle_start(2)
    assert leg.cycle_start(0) == R0 and w[4] < boundary0
    rand0, rand1 = hashlib.sha256(b"round0").digest(), hashlib.sha256(b"round1").digest()
    gc.collect()
    gc.disable()  # as in a long-lived node between collections; the replay allocates millions of objects
    try:
        t = time.perf_counter()
        _Inputs(records)
        inputs_s = time.perf_counter() - t
        if profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
        roll = Roll(charter)
        t0 = time.perf_counter()
        roll.load(records.values())
        t1 = time.perf_counter()
        roll.advance(boundary0, 1, rand0, cycle_of)
        t2 = time.perf_counter()
        seats = roll.seats(1, rand0)
        t3 = time.perf_counter()
        roster = sorted(s.holder for s in seats if s.holder is not None)
        roll.settle(roster, 2)
        t4 = time.perf_counter()
        roll.advance(boundary1, 2, rand1, cycle_of)
        seats1 = roll.seats(2, rand1)
        roll.settle(sorted(s.holder for s in seats1 if s.holder is not None), 3)
        t5 = time.perf_counter()
        if profile:
            prof.disable()
            stats = pstats.Stats(prof)
            stats.sort_stats("tottime").print_stats(14)
    finally:
        gc.enable()
    peak = peak_rss()
    groups = len(roll.groups)
    held = len(roster)
    problems = len(roll.problems)
    assert problems == 0 and held == groups == math.ceil(members / size), (problems, held, groups)
    sig1 = sig_seconds(probe)
    sig = (sig0 + sig1) / 2
    n_records = len(records)
    replay = t4 - t0
    return {
        "members": members,
        "constituencies": groups,
        "seats_held": held,
        "records": n_records,
        "sig_s": sig,
        "sig_s_passes": [sig0, sig1],
        "build_s": build_s,
        "load_s": t1 - t0,
        "advance_s": t2 - t1,
        "seats_s": t3 - t2,
        "settle_s": t4 - t3,
        "replay_s": replay,
        "next_boundary_s": t5 - t4,
        "inputs_scan_s": inputs_s,
        "replay_per_member_x_sig": replay / members / sig,
        "load_per_member_x_sig": (t1 - t0) / members / sig,
        "advance_per_member_x_sig": (t2 - t1) / members / sig,
        "next_boundary_per_member_x_sig": (t5 - t4) / members / sig,
        "inputs_scan_per_member_x_sig": inputs_s / members / sig,
        "rss_records_bytes_per_member": rss_records / members,
        "peak_rss_bytes": peak,
        "peak_rss_bytes_per_member": peak / members,
        "peak_rss_excludes_build": peak_reset,
        "roll_bytes_per_member": max(0, peak - rss_start - rss_records) / members,
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
    # the load sort is n log n: scale its per-member cost by the log factor
    log_factor = math.log2(nation * per_member_events) / math.log2(big["records"])
    replay_nation_sig = nation * (big["replay_per_member_x_sig"] + big["load_per_member_x_sig"] * (log_factor - 1))
    boundary_nation_sig = nation * big["next_boundary_per_member_x_sig"]
    inputs_nation_sig = nation * big["inputs_scan_per_member_x_sig"]
    admit_nation_sig = nation * sample["admit_store_per_member_x_sig"]
    checks_nation = nation * per_member_events
    certificate = quorum * (certs["cutoff"][NATION_CONSTITUENCIES] + certs["precommit"]) + certs["propose"]
    observer_events = sample["wire_bytes_per_constituency"]
    observer_store = observer_events * sample["store_bytes_per_member"] / wire_pm
    registrar_chain = nation * wb["certify"]["median"]

    result = {
        "command": "python bench/constituencies.py " + " ".join(sys.argv[1:]),
        "constituency_size": args.size,
        "plan": {"events_per_member": per_member_events, "candidates_share": CANDIDATES, "endorse_founder_share": FOR_FOUNDER},
        "sample": sample,
        "rolls": rolls,
        "gossip": {"envelope_bytes_per_event": env["envelope"], "ihave_bytes_per_id": env["ihave_per_id"],
                   "mesh_degree": MESH_D, "framed_bytes_per_member": framed_pm, "mesh_bytes_per_member_per_full_node": mesh_pm,
                   "ihave_bytes_per_member_per_full_node": ihave_pm, "total_bytes_per_member_per_full_node": gossip_pm,
                   "mesh_bytes_per_member_at_degree_high": framed_pm * (2 * MESH_D_HIGH - 1)},
        "certificates": {"panel": panel, "quorum": quorum, **certs,
                         "intake_certificate_bytes": {s: quorum * (c + certs["precommit"]) + certs["propose"]
                                                      for s, c in certs["cutoff"].items()}},
        "nation": {
            "members": nation,
            "constituencies": NATION_CONSTITUENCIES,
            "wire_bytes": nation * wire_pm,
            "store_bytes": nation * sample["store_bytes_per_member"],
            "replica_state_bytes": nation * sample["replica_state_bytes_per_member"],
            "gossip_bytes_per_full_node": nation * gossip_pm,
            "signature_checks": checks_nation,
            "signature_checks_core_s": checks_nation * sig,
            "admission_x_sig": admit_nation_sig,
            "admission_core_s": admit_nation_sig * sig,
            "roll_replay_x_sig": replay_nation_sig,
            "roll_replay_s": replay_nation_sig * sig,
            "roll_next_boundary_x_sig": boundary_nation_sig,
            "roll_next_boundary_s": boundary_nation_sig * sig,
            "inputs_scan_s": inputs_nation_sig * sig,
            "roll_peak_rss_bytes": nation * big["peak_rss_bytes_per_member"],
            "registrar_rounds_at_64_per_round": nation / 64,
            "intake_certificate_bytes": certificate,
            "intake_certificates_per_year_bytes": 52 * certificate,
            "observer_constituency_events_bytes": observer_events,
            "observer_constituency_store_bytes": observer_store,
            "observer_registrar_chains_bytes": registrar_chain,
        },
        "elapsed_s": time.perf_counter() - started,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "constituencies.json").write_text(json.dumps(result, indent=2, default=str))
    report(result)


def report(res: dict) -> None:
    s, rolls, g, c, nat = res["sample"], res["rolls"], res["gossip"], res["certificates"], res["nation"]
    size = res["constituency_size"]
    big = max(rolls, key=lambda r: r["members"])
    sig = big["sig_s"]
    print(f"Constituencies of {size:,}; baseline: one libsodium Ed25519 verification in the same process "
          f"(~{s['sig_s'] * 1e6:.0f} us in the sample's process, ~{sig * 1e6:.0f} us in the {big['members']:,}-key process).")
    print()
    print(f"Per member (plan: {s['events_per_member']:.3f} events a member: certify, join, endorse; "
          f"serve for 1 % and the founder; a found per constituency)")
    wb = s["wire_bytes"]
    print("  wire bytes of each act (median):  " + ", ".join(
        f"{k} {v['median']:.0f}" for k, v in sorted(wb.items(), key=lambda kv: -kv[1]["count"])))
    print(f"  wire bytes per member:            {s['wire_bytes_per_member']:.0f}")
    print(f"  stored bytes per member (SQLite): {s['store_bytes_per_member']:.0f}  "
          f"({s['store_bytes_per_member'] / s['wire_bytes_per_member']:.1f}x the wire; {s['members']:,}-member sample)")
    tables = sorted(s["store_tables_bytes"].items(), key=lambda kv: -kv[1])[:6]
    print("    by table/index per member:       " + ", ".join(f"{k} {v / s['members']:.0f}" for k, v in tables))
    print(f"  replica memory per member:        {s['replica_state_bytes_per_member']:.0f} B "
          "(store-backed replica: heads, vouched, certified, records, verify-key cache)")
    print(f"  gossip per member, one full node: {g['total_bytes_per_member_per_full_node']:.0f} B  "
          f"= {g['mesh_bytes_per_member_per_full_node']:.0f} mesh ({2 * g['mesh_degree'] - 1} x "
          f"{g['framed_bytes_per_member']:.0f} framed: ~{g['mesh_degree']} received, {g['mesh_degree'] - 1} sent)"
          f" + {g['ihave_bytes_per_member_per_full_node']:.0f} IHAVE adverts; at D=12: "
          f"{g['mesh_bytes_per_member_at_degree_high'] + g['ihave_bytes_per_member_per_full_node']:.0f}")
    print(f"  admission, per event:             {s['admit_memory_x_sig']:.2f} x sig (Replica.add, memory), "
          f"{s['admit_store_x_sig']:.2f} x sig (SQLite store, no fsync)")
    print(f"  admission, per member:            {s['admit_store_per_member_x_sig']:.2f} x sig "
          f"(of which signature checks {s['events_per_member']:.2f} x sig)")
    print()
    print("Roll replay (a fresh Roll at every evaluation: load + advance + seats + settle), per member, x sig:")
    print(f"  {'members':>10} {'groups':>7} {'load':>6} {'advance':>8} {'replay':>7} {'next bnd':>9} {'_Inputs':>8}"
          f" {'replay s':>9} {'records/member':>15} {'peak RSS':>9} {'peak/member':>12}")
    for r in rolls:
        print(f"  {r['members']:>10,} {r['constituencies']:>7,} {r['load_per_member_x_sig']:>6.2f} "
              f"{r['advance_per_member_x_sig']:>8.2f} {r['replay_per_member_x_sig']:>7.2f} "
              f"{r['next_boundary_per_member_x_sig']:>9.3f} {r['inputs_scan_per_member_x_sig']:>8.2f} "
              f"{r['replay_s']:>9.1f} {r['rss_records_bytes_per_member']:>13.0f} B {human(r['peak_rss_bytes']):>9} "
              f"{r['peak_rss_bytes_per_member']:>10.0f} B")
    print()
    print("Boundary certificate (intake: a quorum of cut-offs, each listing every seat, + precommits + the proposal):")
    for seats, size_ in c["intake_certificate_bytes"].items():
        print(f"  {int(seats):>8,} seats: cut-off {c['cutoff'][seats]:>10,} B  certificate {human(size_)}")
    print()
    n = nat["members"]
    print(f"A nation: {nat['constituencies']:,} constituencies x {size:,} = {n:,} members (linear extrapolation)")
    print(f"  wire bytes of the representation acts:  {human(nat['wire_bytes'])}")
    print(f"  stored per full replica (SQLite):       {human(nat['store_bytes'])}")
    print(f"  replica memory (records, heads, keys):  {human(nat['replica_state_bytes'])}")
    print(f"  gossiped per full node:                 {human(nat['gossip_bytes_per_full_node'])} "
          f"(registration spread over a year: {nat['gossip_bytes_per_full_node'] * 8 / 365.25 / 86400 / 1e6:.2g} Mbit/s, "
          "in and out together)")
    print(f"  signature checks per full replica:      {nat['signature_checks']:.3g}  "
          f"(~{duration(nat['signature_checks_core_s'])} of one core at this machine's rate; "
          f"admission as a whole ~{duration(nat['admission_core_s'])})")
    print(f"  Roll replay per evaluation:             {nat['roll_replay_x_sig']:.3g} x sig "
          f"(~{duration(nat['roll_replay_s'])}), + {duration(nat['roll_next_boundary_s'])} per later cycle, "
          f"+ {duration(nat['inputs_scan_s'])} legislature scan; a node evaluates every beacon round (3 s)")
    print(f"  Roll peak memory:                       {human(nat['roll_peak_rss_bytes'])}")
    print(f"  registrar throughput:                   {nat['registrar_rounds_at_64_per_round']:.3g} registrar-rounds at 64 "
          f"events a round (one registrar: {duration(nat['registrar_rounds_at_64_per_round'] * 3)}; 1,000: "
          f"{duration(nat['registrar_rounds_at_64_per_round'] * 3 / 1000)})")
    print(f"  intake certificate per cycle:           {human(nat['intake_certificate_bytes'])} "
          f"({human(nat['intake_certificates_per_year_bytes'])} a year of 52 cycles); its cut-off "
          f"({human(c['cutoff'][nat['constituencies']])}) "
          "is over the default 64 KiB event limit")
    print("  an observer of ONE constituency holds:  "
          f"{human(nat['observer_constituency_events_bytes'])} of its events and certifications "
          f"(~{human(nat['observer_constituency_store_bytes'])} stored) + {human(nat['intake_certificate_bytes'])} "
          "a cycle of certificate; but the replica applies a certification only with its registrar's whole chain: "
          f"up to {human(nat['observer_registrar_chains_bytes'])} if one registrar certified everyone")
    print(f"\n(elapsed {res['elapsed_s']:.0f} s; JSON in bench/out/constituencies.json)")


if __name__ == "__main__":
    main()
