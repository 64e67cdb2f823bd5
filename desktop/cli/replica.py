"""Identity, replica and log commands: init, whoami, import, export, verify, rebuild, status."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .common import end_progress, progress


def cmd_init(args) -> int:
    from p2p import profile

    if args.from_backup:
        passphrase = profile.read_passphrase(args.passphrase_file)
        p, public = profile.restore(args.profile, args.from_backup, passphrase)
        print(f"Restored profile {p.name!r} from {args.from_backup}: public key {public.hex()}")
        return 0
    seed = None
    if args.recover:
        words = sys.stdin.readline() if not sys.stdin.isatty() else input("Your 24 recovery words: ")
        seed = profile.seed_from_phrase(words)
    passphrase = profile.read_passphrase(args.passphrase_file, confirm=True)
    p, public = profile.create(args.profile, passphrase, kdf=args.kdf, seed=seed)
    print(f"{'Recovered' if seed else 'Created'} profile {p.name!r} in {p.path}")
    print(f"Public key: {public.hex()}")
    print("Send the public key to your assembly's organiser (klero whoami prints it again); it is safe to share.")
    print("Keep your passphrase safe: without it the key cannot be unlocked. Write down your recovery phrase "
          f"once (klero whoami --profile {p.name} --recovery-phrase) and keep it offline: it recreates the key.")
    return 0


def cmd_import(args) -> int:
    from p2p import profile
    from p2p.audit import LogError, find_charters
    from p2p.logfile import LogDamage, read_items
    from p2p.node import PENDING_BYTES_PER_AUTHOR
    from p2p.store import ReplicaStore

    p = profile.existing(args.profile)
    path = Path(args.log)
    if not path.is_file():
        raise LogError(f"There is no log file at {path}.")
    if p.replica_path.exists():
        store = ReplicaStore(p.replica_path)
        from consensus.events import event_id

        charters = find_charters(path)
        if charters and all(event_id(c) != store.assembly for c in charters):
            name = store.replica.charter.name
            store.close()
            raise LogError(f"{path} is the log of another assembly than the one profile {p.name!r} holds ({name!r}, "
                           f"{store.assembly.hex()[:16]}…): nothing was imported. A profile holds one assembly: import it "
                           "into another profile (klero init --profile NEW).")
    else:
        charters = find_charters(path)
        if len(charters) != 1:
            raise LogError(f"{path} must hold exactly one charter to start a replica (it holds {len(charters)}).")
        store = ReplicaStore.create(p.replica_path, charters[0])
    counts: dict[str, int] = {}
    damage = None
    show = progress("Importing")

    held_back = 0
    holds = store.ahead_guard(PENDING_BYTES_PER_AUTHOR)  # as a node holds back (p2p/node.py)

    def wires():
        nonlocal damage, held_back
        for item in read_items(path):
            if isinstance(item, LogDamage):
                damage = item
                return
            if holds(item[2]):
                held_back += 1
                continue
            yield item[2]

    with store:
        from p2p.pipeline import default_workers

        reasons: dict[str, tuple[int, str]] = {}  # rejection code -> (how many, the first reason)
        for n, outcome in enumerate(store.add_many(wires(), workers=default_workers()), 1):
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
            if outcome.status == "rejected" and outcome.rejection is not None:
                seen, why = reasons.get(outcome.rejection.code, (0, outcome.rejection.reason[:160]))
                reasons[outcome.rejection.code] = (seen + 1, why)
            if show and n % 5000 == 0:
                show(n)
        end_progress()
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing"
        print(f"Imported {path} into profile {p.name!r}: {summary}.")
        if reasons:
            print("Rejected, by reason: " + "; ".join(f"{n} {code} (e.g. {why})" for code, (n, why) in sorted(reasons.items())) + ".")
        if held_back:
            print(f"Held back {held_back} event(s) far ahead of their author's chain: more than {PENDING_BYTES_PER_AUTHOR >> 20} "
                  "MiB of one author's events already wait for a gap. Import a log that fills the gap first (or let the "
                  "node sync it), then import this one again.")
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
        rounds = [0]

        def counted(items):
            for item in items:
                rounds[0] += item[:1] == b"\x83"  # a beacon round is a 3-array; an event a 2-array
                yield item

        count = write_log(args.out, counted(store.wires()))
        print(f"Wrote {count - rounds[0]:,} events and {rounds[0]:,} beacon rounds to {args.out}")
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
    report = verify_log(args.log, assembly=assembly, progress=progress("Verifying"))
    end_progress()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(f"Assembly: {report.name} ({report.assembly})")
        print(f"Items read: {report.items}")
        print(f"Valid events: {report.events} ({report.duplicates} duplicate items ignored)")
        if report.rejected:
            print(f"Rejected items: {len(report.rejected)}")
            # events that only wait for a rejected or missing predecessor are knock-ons: grouped
            # under the causes, so one flipped byte does not bury its cause under a page of them
            causes = [r for r in report.rejected if r["code"] != "missing_predecessor"]
            knock_on = len(report.rejected) - len(causes)
            for r in causes[:200]:
                print(f"  item {r['index']}: {r['code']}: {r['reason']}")
            if len(causes) > 200:
                print(f"  … and {len(causes) - 200} more (use --json for all)")
            if knock_on:
                print(f"  and {knock_on} later event(s) that wait for an earlier event of their author the log lacks "
                      f"(knock-ons of {'the rejections above' if causes else 'a gap in the log'}; --json lists them)")
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


def _print_representation(leg: dict, details: bool) -> None:
    """Seats from constituencies: each cycle's roster and who certified it, and the acts that
    count for nothing, grouped by reason (every one with --details)."""
    from collections import Counter

    if not leg.get("rosters"):
        return
    print("Seats (from constituencies; the charter's roster serves until the first are certified):")
    for cycle, keys in sorted(leg["rosters"].items(), key=lambda kv: int(kv[0])):
        cycle = int(cycle)
        seats = [s for s in leg["seats"] if s["cycle"] == cycle]
        source = "the charter's founding roster" if cycle == 0 else (
            f"certified at the boundary of cycle {cycle - 1}" if any(s["certified"] for s in seats) else "kept from the cycle before")
        print(f"  cycle {cycle}: {len(keys)} seats, {source}")
        if details:
            for s in seats:
                who = short_key(s["holder"]) if s["holder"] else "no seat"
                where = short_key(s["constituency"]) if s["constituency"] else "?"
                print(f"    constituency {where}: {who} ({s['reason']}){'' if s['certified'] or not s['holder'] else ' — not certified'}")
    problems = leg.get("representation_problems", [])
    if problems:
        codes = Counter(p["code"] for p in problems)
        print(f"  constituency acts that count for nothing: {', '.join(f'{n} {c}' for c, n in sorted(codes.items()))}")
        if details:
            for p in problems:
                print(f"    {p['kind']} by {short_key(p['author'])} ({short_key(p['event'])}): {p['reason']}")
    for d in leg.get("duplicates", []):
        print(f"  registrar {short_key(d['registrar'])} certified one person twice: {short_key(d['first'])} and "
              f"{short_key(d['second'])} (the second counts for nothing)")


def short_key(h: str | None) -> str:
    return f"{h[:12]}…" if h else "-"


def _print_legislature(report, details: bool) -> None:
    """The legislature's decisions: a summary per cycle, or every draw, ballot and certificate."""
    from collections import Counter

    leg = report.legislature
    if not leg or not leg.get("proposals"):
        print(f"Beacon rounds: {report.rounds}; no proposals yet.")
        return
    print(f"Beacon rounds: {report.rounds}; cycles decided: {leg['cycles']}")
    short = lambda h: h[:12]  # noqa: E731
    _print_representation(leg, details)
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
        titles = {p["id"]: p["title"] for p in leg["proposals"]}
        plenary = 1 + max([d["stage"] for d in leg["draws"]] + [b["stage"] for b in leg["ballots"] if b["kind"] != "plenary"], default=0)
        plenary = min([b["stage"] for b in leg["ballots"] if b["kind"] == "plenary"], default=plenary)

        def named(pid: str) -> str:
            return f"{short(pid)} {titles.get(pid, '')[:40]!r}"

        def stage_name(stage: int) -> str:
            return "plenary" if stage == plenary else f"stage {stage}"

        for d in leg["draws"]:
            print(f"  draw  cycle {d['cycle']} {stage_name(d['stage'])} {named(d['proposal'])}: members "
                  f"{', '.join(short(m) for m in d['members'])} from round {d['round']} (seed {d['seed'][:12]}…)"
                  f"{' SHORT' if d['short'] else ''}")
        for b in leg["ballots"]:
            counts = ", ".join(f"{v} {k}" for k, v in b["counts"].items())
            what = f"amendment {short(b['amendment'])} of " if b["amendment"] else ""
            print(f"  ballot cycle {b['cycle']} {stage_name(b['stage'])} {what}{named(b['proposal'])}: {counts or 'no votes'} "
                  f"-> {b['outcome'] or 'open'}{' (' + b['reason'] + ')' if b['reason'] else ''}")
            for n in b["neutralised"]:
                print(f"      not counted: {short(n['author'])}: {n['reason']}")
        for d in sorted(leg.get("deadlines", []), key=lambda d: (d["round"], d["stage"])):
            cert = d.get("certificate")
            if cert:
                gen = d.get("generation", 0)
                by = (f" (panel generation {gen}: the earlier panels had not decided within the charter's bound)" if gen else "")
                print(f"  deadline cycle {d['cycle']} {_deadline_name(d, plenary)} (round {d['round']}): certificate of agreement round "
                      f"{cert['agreement_round']}, precommits by {len(cert['signers'])} of {len(d['panel'])} panel members "
                      f"({', '.join(short(x) for x in cert['signers'])}){by}; draws and tie-breaks use round {d['seed_round']}")
            else:
                print(f"  deadline cycle {d['cycle']} {_deadline_name(d, plenary)} (round {d['round']}): settled by the {d['rule']} rule")
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


def _deadline_name(d: dict, plenary: int) -> str:
    """A deadline's name for a person: each of a cycle's ballot deadlines says which stage."""
    if d["what"] == "ballots":
        return f"stage {d['stage']} ballots"
    if d["what"] in ("edit", "amendments", "amendment ballots"):
        return f"stage {d['stage']} {d['what']}"
    return d["what"]


def cmd_rebuild(args) -> int:
    from p2p import profile
    from p2p.store import ReplicaStore

    p = profile.existing(args.profile)
    if not p.replica_path.exists():
        print(f"Profile {p.name!r} holds no replica yet; there is nothing to rebuild.", file=sys.stderr)
        return 2
    store = ReplicaStore(p.replica_path)
    before = store.state_hash().hex()
    show = progress("Rebuilding")
    store.rebuild(progress=show)
    end_progress()
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
    try:
        store = ReplicaStore(p.replica_path)
    except OSError as exc:  # a folder this process cannot write: read a snapshot instead
        import errno

        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        print(f"(The profile's folder cannot be written ({exc.strerror}): showing the replica as it is on disk.)")
        store = ReplicaStore(p.replica_path, read_only=True)
    with store:
        r = store.replica
        print(f"Assembly: {r.charter.name} ({r.assembly.hex()})")
        counts = store.counts()
        print("Stored events: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
        print(f"Proposals: {len(r.proposals)} ({sum(1 for x in r.proposals.values() if x.withdrawn)} withdrawn)")
        from consensus.beacon import beacon_status

        latest = max(r.beacon) if r.beacon else 0
        if r.charter.beacon.dev:
            # a dev chain runs on whatever clock its operator started: its genesis says nothing
            # about whether rounds still come (the running node judges that by their arrival)
            print(f"Beacon: a dev beacon; the latest round held is {latest:,}. Whether rounds still arrive shows in the "
                  "running node's output, not here.")
        else:
            status = beacon_status(r.charter.beacon, latest, time.time())
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(status.since)) if status.since else ""
            print(f"Beacon: {status.sentence()}" + (f" Rounds stopped arriving at {when}." if status.stalled else ""))
        from consensus.legislature import Legislature

        result = Legislature(r.charter, r.charter_event.round).evaluate_replica(r, explain=False)
        print(f"Legislature: {result.cycles} cycles decided; {result.waiting or 'nothing pending'}")
        print(f"State hash: {store.state_hash().hex()}")
    return 0


def register(sub, profile_arg) -> None:
    p = sub.add_parser("init", help="create an identity (an Ed25519 key encrypted with a passphrase)")
    profile_arg(p)
    p.add_argument("--passphrase-file", help="read the passphrase from the first line of this file (else $KLERO_PASSPHRASE, else ask)")
    p.add_argument("--kdf", default="moderate", choices=["interactive", "moderate", "sensitive"], help="Argon2id cost (default: moderate)")
    p.add_argument("--recover", action="store_true", help="recreate a key from its 24 recovery words (read from the terminal or stdin)")
    p.add_argument("--from-backup", metavar="FILE", help="restore a profile from an encrypted backup file")
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
