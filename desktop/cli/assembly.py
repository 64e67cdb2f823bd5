"""Founding and joining an assembly: whoami, convene, join."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def cmd_whoami(args) -> int:
    from p2p import profile

    p = profile.existing(args.profile)
    key = p.public_key()
    out = {"profile": p.name, "public_key": key.hex()}
    if args.recovery_phrase:
        secret = profile.unlock(p, profile.read_passphrase(args.passphrase_file))
        print(profile.recovery_phrase(secret))
        print("These 24 words recreate your key (klero init --recover): anyone who reads them holds it. "
              "Write them down and keep them offline.", file=sys.stderr)
        return 0
    if args.backup:
        path = profile.backup(p, args.backup)
        print(f"Wrote an encrypted backup of your key to {path}; with your passphrase it restores the profile "
              f"(klero init --profile NAME --from-backup {path}).")
        return 0
    if p.replica_path.exists():
        from p2p.store import ReplicaStore, StoreError

        try:
            with ReplicaStore(p.replica_path) as store:
                charter = store.replica.charter
                out.update(assembly=store.assembly.hex(), name=charter.name, on_roster=key in set(charter.roster))
        except StoreError:
            pass  # the node holds it: the key is what matters here
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(key.hex())
    if "assembly" in out:
        where = "holds a seat on its founding roster" if out["on_roster"] else "is not on its founding roster (an observer)"
        print(f"Profile {p.name!r} belongs to {out['name']!r} ({out['assembly'][:16]}…) and {where}.", file=sys.stderr)
    else:
        print(f"Send this public key to your assembly's organiser; it is safe to share (it identifies you; only "
              f"the secret key, which never leaves this machine, signs). Then: klero join --profile {p.name} CHARTER.log", file=sys.stderr)
    return 0


def cmd_convene(args) -> int:
    from consensus.errors import KleroError
    from p2p import founding, profile
    from p2p.logfile import write_log

    p = profile.existing(args.profile)
    roster = founding.read_keys(args.roster)
    registrars = []
    for text in args.registrar or ():
        if not founding.HEX_KEY.match(text.strip()):
            raise KleroError(f"--registrar {text[:20]!r} is not a public key of 64 hex characters.")
        registrars.append(bytes.fromhex(text.strip()))
    out = Path(args.out)
    if out.exists() and not args.force:
        raise KleroError(f"{out} already exists; a charter founds a new assembly, so choose a new file (or --force).")
    plan = founding.plan(args.name, args.template, roster, registrars=registrars, beacon=args.beacon, threshold=args.threshold,
                         seed_peers=args.seed_peer or [], start_in_seconds=args.start_in * 60)
    print("This charter founds an assembly. Once signed it cannot be changed: its hash is the assembly's id.\n")
    for line in plan.lines:
        print(f"  {line}")
    print()
    if not args.yes:
        if not sys.stdin.isatty():
            raise KleroError("Read the parameters above, then run again with --yes to sign (no terminal to ask on).")
        if input("Sign this charter? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Nothing was signed.")
            return 1
    key = profile.unlock(p, profile.read_passphrase(args.passphrase_file))
    wire = founding.sign(key, plan.charter)
    write_log(out, [wire])
    from consensus.events import event_id

    print(f"Wrote the charter of {plan.charter.name!r} to {out}.")
    print(f"Assembly id: {event_id(wire).hex()}")
    if plan.dev_secret is not None:
        from p2p.beacon import write_dev_chain

        secret = write_dev_chain(out.with_name(out.name + ".beacon.json"), plan.charter.beacon, plan.dev_secret)
        print(f"Its dev beacon's secret is in {secret}: serve the rounds with "
              f"klero beacon serve --charter {out.name}.beacon.json")
    print("Publish the assembly id where members can check it, and send them the charter file: "
          "each runs klero join --profile NAME CHARTER.log")
    return 0


def cmd_join(args) -> int:
    from consensus.errors import KleroError
    from consensus.events import decode_charter, event_id
    from p2p import founding, profile

    p = profile.existing(args.profile)
    if args.charter:
        wire = founding.charter_from(args.charter)
    elif args.bootstrap:
        wire = founding.charter_from(args.bootstrap[0], fetch=True)
        if not args.assembly:
            charter = decode_charter(wire).body.charter
            print(f"The node at {args.bootstrap[0]} replicates {charter.name!r}: assembly {event_id(wire).hex()}, "
                  f"{len(charter.roster)} representatives.")
            if not sys.stdin.isatty():
                raise KleroError("Check that id against the one your organiser published, then run again with "
                                 "--assembly ID (no terminal to ask on).")
            if input("Is this the id your organiser published? Join it? [y/N] ").strip().lower() not in ("y", "yes"):
                print("Nothing was joined.")
                return 1
    else:
        raise KleroError("Give the charter file your organiser sent, or --bootstrap ADDR of a member's node to fetch it from.")
    charter, seated = founding.join(p, wire, assembly=args.assembly, bootstrap=tuple(args.bootstrap or ()))
    print(f"Joined {charter.name!r} (assembly {event_id(wire).hex()}).")
    print("Your key holds a seat on its founding roster." if seated else
          "Your key is not on its roster: this replica observes (it verifies everything and acts on nothing).")
    peers = len(charter.bootstrap) + len(args.bootstrap or ())
    print(f"Start your node: klero node --profile {p.name}" + ("" if peers else " --bootstrap ADDR (the charter names no seed peer)"))
    return 0


def register(sub, profile_arg) -> None:
    p = sub.add_parser("whoami", help="print the profile's public key (to send to an organiser)")
    profile_arg(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--recovery-phrase", action="store_true", help="print the 24 words that recreate the key (asks the passphrase)")
    p.add_argument("--backup", metavar="FILE", help="write an encrypted backup of the key (it needs the passphrase to restore)")
    p.add_argument("--passphrase-file")
    p.set_defaults(func=cmd_whoami)

    p = sub.add_parser("convene", help="found an assembly: sign a charter over real representatives' public keys")
    p.add_argument("--profile", required=True, help="the organiser's profile (it signs the charter)")
    p.add_argument("--name", required=True, help="the assembly's name")
    p.add_argument("--template", default="city", help="city, demo, testnet, or a JSON template file (default city)")
    p.add_argument("--roster", required=True, metavar="KEYS", help="file of representatives' public keys, one hex key a line")
    p.add_argument("--registrar", action="append", metavar="KEY", help="a registrar's public key (repeatable); with "
                   "registrars the charter has constituencies, whose seats replace the roster after the first boundary")
    p.add_argument("--threshold", type=int, default=1, help="registrars that must certify a constituent (default 1)")
    p.add_argument("--beacon", choices=["quicknet", "mainnet", "dev"], help="randomness beacon (default: the template's)")
    p.add_argument("--seed-peer", action="append", metavar="ADDR", help="/ip4/…/tcp/…/p2p/… of a node members dial first")
    p.add_argument("--start-in", type=float, default=60.0, metavar="MINUTES",
                   help="minutes from now until cycle 0 starts (default 60: time for members to join)")
    p.add_argument("--out", required=True, metavar="CHARTER.log")
    p.add_argument("--yes", action="store_true", help="sign without asking (scripts)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--passphrase-file")
    p.set_defaults(func=cmd_convene)

    p = sub.add_parser("join", help="start a replica of an assembly from its charter file (or a member's node)")
    profile_arg(p)
    p.add_argument("charter", metavar="CHARTER.log", nargs="?", help="the charter file your organiser sent")
    p.add_argument("--assembly", metavar="ID", help="the assembly id your organiser published: refused if it differs")
    p.add_argument("--bootstrap", action="append", metavar="ADDR",
                   help="a member's node address (saved in settings); without a charter file, the charter is fetched from it")
    p.set_defaults(func=cmd_join)
