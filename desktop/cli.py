"""The ``klero`` command line.

Every command imports what it needs inside its own function, so ``klero verify`` never pulls
in the network stack or Qt (STACK.md).  Errors are sentences on stderr with a non-zero exit;
set ``KLERO_DEBUG=1`` to see a traceback instead.

Exit codes: 0 success; 1 the command ran but found problems (``verify`` of a log with rejected
items, gaps or equivocations); 2 the command could not do its job (bad arguments, unreadable
files, wrong passphrase).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _progress(label: str):
    """A progress printer for long work: on a terminal only, at most every half second."""
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(count: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            print(f"\r{label}: {count:,} items", end="", file=sys.stderr, flush=True)

    return show


def _end_progress() -> None:
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- commands


def cmd_init(args) -> int:
    from p2p import profile

    passphrase = profile.read_passphrase(args.passphrase_file, confirm=True)
    p, public = profile.create(args.profile, passphrase, kdf=args.kdf)
    print(f"Created profile {p.name!r} in {p.path}")
    print(f"Public key: {public.hex()}")
    print("Keep your passphrase safe: without it the key cannot be unlocked, and nobody can recover it.")
    return 0


def cmd_import(args) -> int:
    from p2p import profile
    from p2p.audit import LogError, find_charters
    from p2p.logfile import LogDamage, read_items
    from p2p.store import ReplicaStore

    p = profile.existing(args.profile)
    path = Path(args.log)
    if not path.is_file():
        raise LogError(f"There is no log file at {path}.")
    if p.replica_path.exists():
        store = ReplicaStore(p.replica_path)
    else:
        charters = find_charters(path)
        if len(charters) != 1:
            raise LogError(f"{path} must hold exactly one charter to start a replica (it holds {len(charters)}).")
        store = ReplicaStore.create(p.replica_path, charters[0])
    counts: dict[str, int] = {}
    damage = None
    show = _progress("Importing")

    def wires():
        nonlocal damage
        for item in read_items(path):
            if isinstance(item, LogDamage):
                damage = item
                return
            yield item[2]

    with store:
        from p2p.pipeline import default_workers

        for n, outcome in enumerate(store.add_many(wires(), workers=default_workers()), 1):
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
            if show and n % 5000 == 0:
                show(n)
        _end_progress()
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing"
        print(f"Imported {path} into profile {p.name!r}: {summary}.")
        print(f"State hash: {store.state_hash().hex()}")
    if damage:
        print(f"Stopped early: {damage.reason}", file=sys.stderr)
        return 1
    return 0


def cmd_export(args) -> int:
    from p2p import profile
    from p2p.logfile import write_log
    from p2p.store import ReplicaStore

    p = profile.existing(args.profile)
    if not p.replica_path.exists():
        print(f"Profile {p.name!r} holds no replica yet; import a log first.", file=sys.stderr)
        return 2
    with ReplicaStore(p.replica_path) as store:
        count = write_log(args.out, store.wires())
        print(f"Wrote {count} events to {args.out}")
        print(f"State hash: {store.state_hash().hex()}")
    return 0


def cmd_verify(args) -> int:
    from p2p.audit import verify_log

    assembly = None
    if args.assembly:
        try:
            assembly = bytes.fromhex(args.assembly)
        except ValueError:
            print("--assembly must be the hexadecimal id of an assembly's charter.", file=sys.stderr)
            return 2
    report = verify_log(args.log, assembly=assembly, progress=_progress("Verifying"))
    _end_progress()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(f"Assembly: {report.name} ({report.assembly})")
        print(f"Items read: {report.items}")
        print(f"Valid events: {report.events} ({report.duplicates} duplicate items ignored)")
        if report.rejected:
            print(f"Rejected items: {len(report.rejected)}")
            for r in report.rejected[:200]:
                print(f"  item {r['index']}: {r['code']}: {r['reason']}")
            if len(report.rejected) > 200:
                print(f"  … and {len(report.rejected) - 200} more (use --json for all)")
        else:
            print("Rejected items: none")
        if report.equivocations:
            print(f"Equivocations (fraud proofs): {len(report.equivocations)}")
            for e in report.equivocations:
                print(f"  author {e['author'][:16]}… signed two events at seq {e['seq']}: {', '.join(x[:16] + '…' for x in e['events'])}")
            if report.excluded:
                print(f"  {report.excluded} events of equivocating authors from their fork on are kept as evidence: they count "
                      "only where a certificate decided them before the fork")
        else:
            print("Equivocations: none")
        if report.damage:
            print(f"The log is damaged: {report.damage['reason']}")
        _print_legislature(report, args.details)
        print(f"State hash: {report.state_hash}")
    return 0 if report.clean else 1


def _print_legislature(report, details: bool) -> None:
    """The legislature's decisions: a summary per cycle, or every draw, ballot and certificate."""
    from collections import Counter

    leg = report.legislature
    if not leg or not leg.get("proposals"):
        print(f"Beacon rounds: {report.rounds}; no proposals yet.")
        return
    print(f"Beacon rounds: {report.rounds}; cycles decided: {leg['cycles']}")
    short = lambda h: h[:12]  # noqa: E731
    if not details:
        for cycle in sorted({d["cycle"] for d in leg["draws"]} | {b["cycle"] for b in leg["ballots"]}):
            draws = [d for d in leg["draws"] if d["cycle"] == cycle]
            ballots = [b for b in leg["ballots"] if b["cycle"] == cycle]
            outcomes = Counter(b["outcome"] or "open" for b in ballots)
            unseen = Counter(n["code"] for b in ballots for n in b["neutralised"])
            certs = [d for d in leg.get("deadlines", []) if d["cycle"] == cycle]
            line = (f"  cycle {cycle}: {len(draws)} committees drawn ({sum(d['short'] for d in draws)} short), "
                    f"{len(ballots)} ballots ({', '.join(f'{v} {k}' for k, v in sorted(outcomes.items()))}), "
                    f"{len(certs)} deadlines settled")
            if unseen:
                line += f"; votes not counted: {', '.join(f'{v} {k}' for k, v in sorted(unseen.items()))}"
            print(line)
        if leg.get("panel_equivocations"):
            print(f"  panel equivocations (fraud proofs): {len(leg['panel_equivocations'])}")
        redrawn = [d for d in leg.get("deadlines", []) if d.get("generation")]
        if redrawn:
            print(f"  deadlines settled by a fresh panel after the first did not decide in time: {len(redrawn)}")
        if leg.get("stray_votes"):
            print(f"  votes on ballots that do not exist: {len(leg['stray_votes'])}")
        print("  (klero verify --details lists every draw, ballot, vote not counted and certificate)")
    else:
        for d in leg["draws"]:
            print(f"  draw  cycle {d['cycle']} stage {d['stage']} proposal {short(d['proposal'])}: "
                  f"{len(d['members'])} members from round {d['round']} (seed {d['seed'][:12]}…){' SHORT' if d['short'] else ''}")
        for b in leg["ballots"]:
            counts = ", ".join(f"{v} {k}" for k, v in b["counts"].items())
            what = f"amendment {short(b['amendment'])} of " if b["amendment"] else ""
            print(f"  ballot cycle {b['cycle']} stage {b['stage']} {what}proposal {short(b['proposal'])}: {counts or 'no votes'} "
                  f"-> {b['outcome'] or 'open'}{' (' + b['reason'] + ')' if b['reason'] else ''}")
            for n in b["neutralised"]:
                print(f"      not counted: {short(n['author'])}: {n['reason']}")
        for d in leg.get("deadlines", []):
            cert = d.get("certificate")
            if cert:
                gen = d.get("generation", 0)
                by = (f" (panel generation {gen}: the earlier panels had not decided within the charter's bound)" if gen else "")
                print(f"  deadline cycle {d['cycle']} {d['what']} (round {d['round']}): certificate of agreement round "
                      f"{cert['agreement_round']}, precommits by {len(cert['signers'])} of {len(d['panel'])} panel members "
                      f"({', '.join(short(x) for x in cert['signers'])}){by}; draws and tie-breaks use round {d['seed_round']}")
            else:
                print(f"  deadline cycle {d['cycle']} {d['what']} (round {d['round']}): settled by the {d['rule']} rule")
        for e in leg.get("panel_equivocations", []):
            print(f"  panel equivocation: {short(e['author'])} signed two different {e['kind']} messages "
                  f"({', '.join(short(x) for x in e['events'])})")
        for v in leg.get("stray_votes", []):
            print(f"  vote on no ballot: {short(v['author'])} ({short(v['event'])}): {v['reason']}")
    print("Proposals:")
    statuses = Counter(p["status"] for p in leg["proposals"])
    print("  " + ", ".join(f"{v} {k}" for k, v in sorted(statuses.items())))
    shown = leg["proposals"] if details else [p for p in leg["proposals"] if p["status"] in ("passed", "failed", "in plenary", "promoted")]
    for p in shown:
        where = " in the plenary" if p["status"] in ("passed", "failed", "in plenary") else (f" at stage {p['stage']}" if p["stage"] else "")
        print(f"  {short(p['id'])} {p['title'][:50]!r}: {p['status']}{where}")
    if leg.get("waiting"):
        print(f"Next: {leg['waiting']}")


def cmd_rebuild(args) -> int:
    from p2p import profile
    from p2p.store import ReplicaStore

    p = profile.existing(args.profile)
    if not p.replica_path.exists():
        print(f"Profile {p.name!r} holds no replica yet; there is nothing to rebuild.", file=sys.stderr)
        return 2
    store = ReplicaStore(p.replica_path)
    before = store.state_hash().hex()
    show = _progress("Rebuilding")
    store.rebuild(progress=show)
    _end_progress()
    after = store.state_hash().hex()
    store.close()
    print(f"Rebuilt the derived tables of profile {p.name!r} from its raw events.")
    print(f"State hash: {after}" + ("" if after == before else f" (was {before}: the old derived tables were inconsistent)"))
    return 0


def cmd_status(args) -> int:
    from p2p import profile
    from p2p.store import ReplicaStore

    p = profile.existing(args.profile)
    print(f"Profile: {p.name} ({p.path})")
    print(f"Public key: {p.public_key().hex()}")
    if not p.replica_path.exists():
        print("Replica: none yet (import a log to start one)")
        return 0
    with ReplicaStore(p.replica_path) as store:
        r = store.replica
        print(f"Assembly: {r.charter.name} ({r.assembly.hex()})")
        counts = store.counts()
        print("Stored events: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
        print(f"Proposals: {len(r.proposals)} ({sum(1 for x in r.proposals.values() if x.withdrawn)} withdrawn)")
        from consensus.beacon import beacon_status

        latest = max(r.beacon) if r.beacon else 0
        status = beacon_status(r.charter.beacon, latest, time.time())
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(status.since)) if status.since else ""
        print(f"Beacon: {status.sentence()}" + (f" Rounds stopped arriving at {when}." if status.stalled else ""))
        from consensus.legislature import Legislature

        result = Legislature(r.charter, r.charter_event.round).evaluate_replica(r, explain=False)
        print(f"Legislature: {result.cycles} cycles decided; {result.waiting or 'nothing pending'}")
        print(f"State hash: {store.state_hash().hex()}")
    return 0


def cmd_simulate(args) -> int:
    from p2p.bots import AssemblySim, Behaviour
    from p2p.logfile import write_log

    shares = {"absent": args.absent, "late": args.late, "equivocating": args.equivocating, "unauthorised": args.unauthorised}
    if any(not 0 <= v <= 1 for v in shares.values()) or sum(shares.values()) > 1:
        print("--absent, --late, --equivocating and --unauthorised are shares from 0 to 1, together at most 1.", file=sys.stderr)
        return 2
    if (args.reps is not None and args.reps < 2) or args.proposals < 0 or not 1 <= args.cycles <= 1000:
        print("--reps must be at least 2, --proposals at least 0, --cycles from 1 to 1000.", file=sys.stderr)
        return 2
    sim = AssemblySim(
        args.charter, reps=args.reps, proposals=args.proposals, cycles=args.cycles, seed=args.seed, behaviour=Behaviour(**shares)
    )
    count = write_log(args.out, sim.run())
    made = ", ".join(f"{v} {k}" for k, v in sorted(sim.counts.items()))
    print(f"Wrote {count} items ({made}, {len(sim.replica.beacon)} beacon rounds) of assembly {sim.assembly.hex()} to {args.out}")
    print(f"Check it with: klero verify {args.out}")
    return 0


def cmd_document(args) -> int:
    from crdt import footer, to_markdown
    from p2p.documents import proposal_text, replay_log

    out = Path(args.out)
    if out.suffix.lower() not in (".md", ".pdf"):
        print(f"--out must end in .md or .pdf (not {out.name!r}): the format follows the name.", file=sys.stderr)
        return 2
    if not Path(args.log).is_file():
        print(f"There is no log file at {args.log}.", file=sys.stderr)
        return 2
    found = proposal_text(replay_log(args.log), args.proposal, latest=args.latest)
    signers = [k.hex()[:16] for k in found.signers]
    if out.suffix.lower() == ".md":
        out.write_text(to_markdown(found.document, found.revision, signers, found.beacon_round), encoding="utf-8")
        pages = ""
    else:
        from desktop.export import write_pdf

        count = write_pdf(to_markdown(found.document, found.revision, signers, found.beacon_round),
                          footer(found.revision, signers, found.beacon_round), out, title=found.title)
        pages = f" ({count} page{'' if count == 1 else 's'})"
    print(f"Wrote {found.which} of {found.title!r} to {out}{pages}.")
    counted = sum(1 for h in found.history if h["in_revision"])
    rounds = [h["round"] for h in found.history]
    print(f"History: {len(found.history)} signed changes from beacon round {min(rounds)} to {max(rounds)}, "
          f"{counted} of them in this revision, by {len(found.signers)} signer(s).")
    for a in found.amendments:
        print(f"Amendment {a['id'][:12]} by {a['author'][:16]} (round {a['round']}): {a['summary']}")
    return 0


def cmd_node(args) -> int:
    import logging

    from p2p import profile
    from p2p.audit import _leading_charter, find_charters
    from p2p.store import ReplicaStore

    p = profile.existing(args.profile)
    settings = p.settings()
    observer = args.observer or settings.get("observer", False)
    if observer and args.publish:
        print("An observer never publishes events: drop --observer (or the setting) or --publish.", file=sys.stderr)
        return 2
    key = profile.unlock(p, profile.read_passphrase(args.passphrase_file))
    if not p.replica_path.exists():
        if not args.join:
            print(f"Profile {p.name!r} has no replica yet: import a log (klero import) or give --join LOG "
                  "with the assembly's charter.", file=sys.stderr)
            return 2
        charters = _leading_charter(args.join) or find_charters(args.join)
        if len(charters) != 1:
            print(f"{args.join} must hold exactly one assembly's charter to join it.", file=sys.stderr)
            return 2
        ReplicaStore.create(p.replica_path, charters[0]).close()
    logging.basicConfig(level=logging.WARNING if not args.verbose else logging.INFO, format="%(message)s")
    from p2p.node import Node, run_headless

    def say(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

    with ReplicaStore(p.replica_path) as store:
        reactor = None
        if not observer:
            from p2p.reactive import Reactor, load_bots

            if args.bots:
                bots = load_bots(args.bots, store.replica.charter_event.wire)
                reactor = Reactor(store.replica, [b.key for b in bots.hosted], bots=bots)
                say(f"Hosting {len(bots.hosted)} bot representatives from {args.bots}.")
            elif bytes(key.verify_key) in store.replica.charter.roster and settings.get("panel_duties", True):
                reactor = Reactor(store.replica, [key])
        node = Node(store, bytes(key), port=args.port if args.port is not None else settings.get("port", 0),
                    bootstrap=tuple(args.bootstrap or settings.get("bootstrap", ())), observer=observer,
                    sync_interval=args.sync_interval, status_path=p.path / "node-status.json", say=say,
                    trace=Path(args.trace) if args.trace else None,
                    beacon_relays=tuple(args.beacon_relay or settings.get("beacon_relays", ())),
                    mdns=args.mdns or settings.get("mdns", False), reactor=reactor)

        run_headless(node, say, publish=args.publish, pace=args.pace,
                     schedule=(args.start_at, args.round_zero, args.round_seconds) if args.start_at is not None else None)
        node.write_status()
        say(f"Stopped; state {store.state_hash().hex()}")
    return 0


def _testnet_behaviour(args):
    from p2p.bots import Behaviour

    shares = {"absent": args.absent, "late": args.late, "equivocating": args.equivocating, "unauthorised": args.unauthorised}
    if any(not 0 <= v <= 1 for v in shares.values()) or sum(shares.values()) > 1:
        raise SystemExit("--absent, --late, --equivocating and --unauthorised are shares from 0 to 1, together at most 1.")
    return Behaviour(**shares)


def _print_testnet(rows, expected: str | None) -> None:
    """One line a node; planned runs compare with the plan, reactive ones show the node's own work."""
    work = "published" if expected else "sent/panel"
    print(f"{'node':8} {'run':4} {'peers':>5} {'events':>7} {'round':>6} {'lag':>4} {work:>10} {'cycles':>6}  state")
    hashes = {r["state_hash"] for r in rows}
    for r in rows:
        if expected:
            mark, done = ("= plan" if r["state_hash"] == expected else ""), f"{r['published']:>5}/{r['planned']:<4}"
        else:
            signed = sum((r.get("duties") or {}).get("signed", {}).values())
            mark, done = ("= all" if len(hashes) == 1 and r["state_hash"] else ""), f"{r['published']:>5}/{signed:<4}"
        print(f"{r['name']:8} {'yes' if r['running'] else 'no':4} {r['peers']:>5} {r['events']:>7} {r['beacon_round']:>6} "
              f"{r['lag_rounds']:>4} {done:>10} {r['cycles_decided'] if r['cycles_decided'] is not None else '-':>6}  "
              f"{r['state_hash'][:16]} {mark}")


def cmd_testnet(args) -> int:
    from p2p.testnet import Testnet

    net = Testnet(args.dir)
    if args.action == "up":
        net.up(nodes=args.nodes, reps=args.reps, charter=args.charter, cycles=args.cycles, seed=args.seed,
               round_seconds=args.round_seconds, behaviour=_testnet_behaviour(args), planned=args.planned)
        print(f"Watch it with: klero testnet status --dir {args.dir}")
        return 0
    if args.action == "status":
        info = net.info()
        rows = net.status()
        if args.json:
            print(json.dumps({"expected_state_hash": info["expected_state_hash"], "nodes": rows}, indent=2))
        else:
            _print_testnet(rows, info["expected_state_hash"])
        return 0
    if args.action == "down":
        rows = net.down()
        if not args.json:
            _print_testnet(rows, net.info()["expected_state_hash"])
        return 0
    # run: up, wait, down, summary
    say = (lambda line: print(line, file=sys.stderr)) if args.json else print
    started = time.time()
    info = net.up(nodes=args.nodes, reps=args.reps, charter=args.charter, cycles=args.cycles, seed=args.seed,
                  round_seconds=args.round_seconds, behaviour=_testnet_behaviour(args), say=say, planned=args.planned)
    planned_s = (info["last_round"] - info["round_zero"] + 1) * info["round_seconds"]
    ok = False
    try:
        ok = net.wait(timeout=args.timeout or planned_s + 120, say=say)
        converged = time.time()
    finally:
        rows = net.down(say=say)
    summary = {
        "converged": ok,
        "expected_state_hash": info["expected_state_hash"],
        "nodes": {r["name"]: {"state_hash": r["state_hash"], "events": r["events"], "refused": r["refused"],
                              "published": r["published"], "planned": r["planned"], "duties": r["duties"]} for r in rows},
        "outcomes": info["expected"] if info.get("expected_state_hash") else net.outcomes(0),
        "mode": info.get("mode", "planned"),
        "timings": {"planned_s": round(planned_s, 1), "until_converged_s": round(converged - info["start_at"], 1),
                    "total_s": round(time.time() - started, 1)},
        "dir": str(args.dir),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_testnet(rows, info["expected_state_hash"])
        goal = "the plan's state" if info.get("expected_state_hash") else "one final state"
        print((f"Every node reached {goal}" if ok else f"The nodes did NOT all reach {goal}")
              + f" ({summary['timings']['until_converged_s']} s after the first round was due).")
        if not info.get("expected_state_hash"):
            o = summary["outcomes"]
            print(f"Outcomes: {o['cycles']} cycles, {o['deadlines_decided']} deadlines settled by panels, proposals "
                  + ", ".join(f"{v} {k}" for k, v in o["proposals"].items()) + (f"; passed: {'; '.join(o['passed'])}" if o["passed"] else ""))
    return 0 if ok else 1


def _hex_arg(value: str, what: str) -> bytes:
    from consensus.errors import KleroError

    text = value.strip().lower().removeprefix("0x")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise KleroError(f"The {what} must be hexadecimal (0-9, a-f); {value[:20]!r} is not.") from None


def cmd_beacon_verify(args) -> int:
    from consensus.beacon import BeaconRound
    from consensus.errors import InvalidInput
    from p2p.beacon import load_chain

    chain = load_chain(args.chain)
    signature = _hex_arg(args.signature, "signature")
    previous = _hex_arg(args.previous, "previous signature") if args.previous else None
    try:
        randomness = chain.verify(BeaconRound(args.round, signature, previous))
    except InvalidInput as exc:
        print(f"Invalid round: {exc.rejection.reason}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"chain": chain.hash.hex(), "round": args.round, "randomness": randomness.hex()}))
    else:
        print(randomness.hex())
    return 0


def cmd_beacon_dev_chain(args) -> int:
    from p2p.beacon import DevBeacon, write_dev_chain

    if not 50 <= args.period_ms <= 3_600_000:
        print("--period-ms must be between 50 and 3600000.", file=sys.stderr)
        return 2
    genesis = args.genesis if args.genesis is not None else int(time.time())
    chain, secret = DevBeacon.create(args.period_ms, genesis)
    secret_path = write_dev_chain(args.out, chain, secret)
    print(f"Wrote dev beacon chain {chain.hash.hex()} to {args.out}")
    print(f"Its secret key is in {secret_path} (keep it private; only the beacon server needs it).")
    print(f"Serve it with: klero beacon serve --charter {args.out}")
    return 0


def cmd_beacon_serve(args) -> int:
    import signal
    import threading

    from p2p.beacon import DevBeacon, load_chain, read_dev_secret, serve

    chain = load_chain(args.charter)
    secret = read_dev_secret(args.secret or f"{args.charter}.secret")
    beacon = DevBeacon(chain, secret)
    server = serve(beacon, host=args.host, port=args.port)
    host, port = server.server_address[:2]
    print(f"Dev beacon {chain.hash.hex()} serving drand's HTTP API on http://{host}:{port}", flush=True)
    print(f"Round {chain.round_at(time.time())} now; one round every {chain.period_ms} ms. Stop with Ctrl-C.", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.shutdown()
        server.server_close()
    print("Dev beacon stopped.")
    return 0


def cmd_beacon_fetch(args) -> int:
    from consensus.beacon import beacon_status
    from p2p.beacon import HttpRelay, load_chain

    chain = load_chain(args.chain)
    relay = HttpRelay(chain, args.relay, timeout=args.timeout, retries=args.retries)
    rnd = relay.fetch(args.round)
    if args.profile:
        from p2p import profile
        from p2p.store import ReplicaStore

        p = profile.existing(args.profile)
        if not p.replica_path.exists():
            print(f"Profile {p.name!r} holds no replica yet; the round was verified but not cached.", file=sys.stderr)
        else:
            with ReplicaStore(p.replica_path) as store:
                store.add_round(chain, rnd)
    print(f"Round {rnd.round} (due {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(chain.time_of(rnd.round)))}) verified.")
    print(f"Randomness: {rnd.randomness.hex()}")
    if args.round is None:
        print(beacon_status(chain, rnd.round, time.time()).sentence())
    return 0


# ---------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="klero",
        description="Kleroterion: a peer-to-peer stochastic parliament where anyone can verify every result.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def profile_arg(p):
        p.add_argument("--profile", required=True, help="name of the profile (an identity and its replica)")

    p = sub.add_parser("init", help="create an identity (an Ed25519 key encrypted with a passphrase)")
    profile_arg(p)
    p.add_argument("--passphrase-file", help="read the passphrase from the first line of this file (else $KLERO_PASSPHRASE, else ask)")
    p.add_argument("--kdf", default="moderate", choices=["interactive", "moderate", "sensitive"], help="Argon2id cost (default: moderate)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("import", help="add the events of a log file to a profile's replica")
    profile_arg(p)
    p.add_argument("log", help="a log file (CBOR sequence of signed events)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="write a profile's replica as a log file")
    profile_arg(p)
    p.add_argument("out", help="the log file to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("verify", help="replay a log from nothing and report what it proves")
    p.add_argument("log", help="a log file (CBOR sequence of signed events)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--details", action="store_true", help="list every draw, ballot, vote not counted and certificate")
    p.add_argument("--assembly", help="which assembly to check when the log holds several (hex id)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("rebuild", help="recompute a replica's derived tables from its raw events")
    profile_arg(p)
    p.set_defaults(func=cmd_rebuild)

    p = sub.add_parser("status", help="show a profile's identity and replica")
    profile_arg(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("simulate", help="run a simulated assembly with bot representatives; write its signed log")
    p.add_argument("out", help="the log file to write (charter, beacon rounds and events)")
    p.add_argument("--charter", default="demo", help="charter template: demo, testnet, or a JSON file (default demo)")
    p.add_argument("--reps", type=int, help="number of representatives (default: the template's)")
    p.add_argument("--proposals", type=int, default=5, help="proposals submitted per cycle (default 5)")
    p.add_argument("--cycles", type=int, default=5, help="cycles to run (default 5: enough for a plenary)")
    p.add_argument("--seed", type=int, default=0, help="seed: the same seed gives the same log")
    p.add_argument("--absent", type=float, default=0.1, help="share of representatives who never vote (default 0.1)")
    p.add_argument("--late", type=float, default=0.05, help="share who vote after deadlines (default 0.05)")
    p.add_argument("--equivocating", type=float, default=0.0, help="share who sign a fork once (default 0)")
    p.add_argument("--unauthorised", type=float, default=0.05, help="share who vote where they have no seat (default 0.05)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("document", help="export a proposal's text (a revision) as Markdown or PDF")
    p.add_argument("log", help="log file holding the proposal and its document changes")
    p.add_argument("--proposal", required=True, help="the proposal's id, or enough of its start to be unique")
    p.add_argument("--out", required=True, help="file to write: NAME.md or NAME.pdf")
    p.add_argument("--latest", action="store_true", help="the latest revision, not the one the assembly last decided on")
    p.set_defaults(func=cmd_document)

    p = sub.add_parser("node", help="run a headless peer-to-peer node for a profile's assembly")
    profile_arg(p)
    p.add_argument("--passphrase-file", help="read the passphrase from this file (else $KLERO_PASSPHRASE, else ask)")
    p.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: the profile's settings.json, else any free port)")
    p.add_argument("--bootstrap", action="append", metavar="ADDR", help="a peer's /ip4/.../tcp/.../p2p/... address (repeatable)")
    p.add_argument("--observer", action="store_true", help="validate, store and relay, never publish legislative events")
    p.add_argument("--join", metavar="LOG", help="start the replica from this log's charter if the profile has none")
    p.add_argument("--publish", metavar="LOG", help="publish this log's items (testing and testnets)")
    p.add_argument("--pace", type=float, default=0.0, help="seconds between published items (default 0)")
    p.add_argument("--start-at", type=float, help="with --publish: Unix time at which --round-zero is due; each item is "
                   "published when the beacon reaches the round it names (testnets)")
    p.add_argument("--round-zero", type=int, default=0, help="the round due at --start-at")
    p.add_argument("--round-seconds", type=float, default=1.0, help="seconds per beacon round for --start-at (default 1)")
    p.add_argument("--sync-interval", type=float, default=5.0, help="seconds between syncs with every peer (default 5)")
    p.add_argument("--verbose", action="store_true", help="log connection and sync details")
    p.add_argument("--mdns", action="store_true", help="find peers on the local network with mDNS")
    p.add_argument("--beacon-relay", action="append", metavar="URL",
                   help="a drand HTTP relay of the assembly's beacon (repeatable): fetch each round and gossip it")
    p.add_argument("--trace", metavar="FILE", help="append the arrival time of every new item to FILE (benchmarks)")
    p.add_argument("--bots", metavar="FILE", help="host the bot representatives this testnet file describes (testnets)")
    p.set_defaults(func=cmd_node)

    testnet = sub.add_parser("testnet", help="run a local network of node processes with bot representatives")
    tsub = testnet.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("up", "start the nodes and the bots"), ("run", "start, run the cycles, stop, summarise"),
                         ("status", "show each node's state hash, peers, lag and progress"),
                         ("down", "stop every node (logs and replicas are kept)")):
        t = tsub.add_parser(action, help=text)
        t.add_argument("--dir", default="testnet", help="folder of the testnet (default ./testnet)")
        t.add_argument("--json", action="store_true", help="machine-readable output")
        if action in ("up", "run"):
            t.add_argument("--nodes", type=int, default=5, help="node processes (default 5)")
            t.add_argument("--reps", type=int, default=25, help="bot representatives spread over the nodes (default 25)")
            t.add_argument("--charter", default="testnet", help="charter template (default testnet)")
            t.add_argument("--cycles", type=int, default=4, help="legislative cycles (default 4: every stage and a plenary)")
            t.add_argument("--seed", type=int, default=1, help="seed of the bots and the dev beacon")
            t.add_argument("--round-seconds", type=float, help="seconds per beacon round (default: the charter's period)")
            t.add_argument("--planned", action="store_true",
                           help="publish a precomputed simulation instead of reactive bots (every node must reach its known state)")
            for share in ("absent", "late", "equivocating", "unauthorised"):
                t.add_argument(f"--{share}", type=float, default=0.0, help=f"share of {share} bots (default 0)")
        if action == "run":
            t.add_argument("--timeout", type=float, help="seconds to wait for convergence (default: the run's length + 2 min)")
        t.set_defaults(func=cmd_testnet)

    beacon = sub.add_parser("beacon", help="verify, fetch or serve randomness beacon rounds")
    bsub = beacon.add_subparsers(dest="beacon_command", metavar="ACTION")
    beacon.set_defaults(func=lambda a: (beacon.print_help(), 2)[1])

    b = bsub.add_parser("verify", help="verify one round; print its randomness")
    b.add_argument("--chain", required=True, help="quicknet, mainnet, or a chain-info JSON file")
    b.add_argument("--round", required=True, type=int)
    b.add_argument("--signature", required=True, help="the round's signature (hex)")
    b.add_argument("--previous", help="the previous round's signature (hex; chained schemes only)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_beacon_verify)

    b = bsub.add_parser("dev-chain", help="create a dev beacon: a BLS key pair and its chain info")
    b.add_argument("out", help="chain-info JSON file to write (the secret goes to OUT.secret)")
    b.add_argument("--period-ms", type=int, default=1000, help="time between rounds in ms (default 1000)")
    b.add_argument("--genesis", type=int, help="unix time of round 1 (default: now)")
    b.set_defaults(func=cmd_beacon_dev_chain)

    b = bsub.add_parser("serve", help="publish a dev beacon's rounds over drand's HTTP API")
    b.add_argument("--charter", required=True, help="the dev chain file (or a charter that embeds it)")
    b.add_argument("--secret", help="the dev beacon's secret key file (default: CHARTER.secret)")
    b.add_argument("--host", default="127.0.0.1")
    b.add_argument("--port", type=int, default=8081)
    b.set_defaults(func=cmd_beacon_serve)

    b = bsub.add_parser("fetch", help="fetch a round from drand HTTP relays and verify it")
    b.add_argument("--chain", required=True, help="quicknet, mainnet, or a chain-info JSON file")
    b.add_argument("--relay", action="append", required=True, help="relay base URL (repeat for fallbacks)")
    b.add_argument("--round", type=int, help="round number (default: latest)")
    b.add_argument("--profile", help="also cache the verified round in this profile's replica")
    b.add_argument("--timeout", type=float, default=5.0, help="seconds per request (default 5)")
    b.add_argument("--retries", type=int, default=2, help="retries per relay (default 2)")
    b.set_defaults(func=cmd_beacon_fetch)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from consensus.errors import KleroError

    try:
        return args.func(args)
    except KleroError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``klero verify LOG | head``): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        if os.environ.get("KLERO_DEBUG"):
            raise
        print(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: say so in a sentence, keep the traceback for developers
        if os.environ.get("KLERO_DEBUG"):
            raise
        print(
            f"klero stopped because of an internal error ({type(exc).__name__}: {exc}). "
            "Please report it; run again with KLERO_DEBUG=1 to see the details.",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
