"""Running a node: klero node."""

from __future__ import annotations

import sys
import time
from pathlib import Path


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
    if args.dev_beacon and args.start_at is None:
        print("--dev-beacon needs the beacon's schedule: give --start-at (and --round-zero, --round-seconds).", file=sys.stderr)
        return 2
    dev_secret = None
    if args.dev_beacon:
        from p2p.beacon import BeaconError, read_dev_secret

        try:
            dev_secret = read_dev_secret(args.dev_beacon)
        except BeaconError as exc:
            print(exc.message, file=sys.stderr)
            return 2
    key = profile.unlock(p, profile.read_passphrase(args.passphrase_file))
    import os

    os.environ.pop(profile.PASSPHRASE_ENV, None)  # the node's worker processes must not inherit it
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
    elif args.join:
        # the profile already holds an assembly: --join must name the same one, never be ignored
        from consensus.events import event_id

        charters = _leading_charter(args.join) or find_charters(args.join)
        with ReplicaStore(p.replica_path) as store:
            held, name = store.assembly, store.replica.charter.name
        if not charters or event_id(charters[0]) != held:
            print(f"Profile {p.name!r} already holds the assembly {name!r} ({held.hex()[:16]}…), and {args.join} "
                  f"{'founds another one' if charters else 'holds no charter'}. A profile joins one assembly: create "
                  "another profile (klero init) to join this one, or drop --join.", file=sys.stderr)
            return 2
    logging.basicConfig(level=logging.WARNING if not args.verbose else logging.INFO, format="%(message)s")
    if args.link_faults:
        from p2p.tools.linkfaults import install

        install(args.link_faults)  # before any connection exists (testnets: emulated delay and loss)
    from p2p.node import Node, run_headless

    def say(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

    with ReplicaStore(p.replica_path) as store:
        if store.dropped_rounds:
            say(f"Dropped {store.dropped_rounds} beacon round(s) from the replica file: their signatures are forged or "
                "damaged (someone or something wrote them into the file). Peers send the genuine ones again; `klero "
                "rebuild` recomputes everything from the verified events and rounds.")
        if dev_secret is not None:
            from p2p.beacon import BeaconError, DevBeacon

            try:
                DevBeacon(store.replica.charter.beacon, dev_secret)
            except BeaconError as exc:
                print(f"{args.dev_beacon}: {exc.message} Use the secret written with this assembly's charter.", file=sys.stderr)
                return 2
        # where to listen: the command line, else the profile's settings ("listen"), else loopback
        try:
            listen = args.listen or _ipv4(str(settings.get("listen", "127.0.0.1")))
        except Exception:
            print(f"The profile's settings name {settings.get('listen')!r} as the address to listen on; it must be an IPv4 "
                  "address such as 0.0.0.0 (every interface) or 192.168.1.20.", file=sys.stderr)
            return 2
        relays = tuple(args.beacon_relay or settings.get("beacon_relays", ()))
        if relays:
            from p2p.beacon import BeaconError, HttpRelay

            try:
                HttpRelay(store.replica.charter.beacon, list(relays))  # checks every address before the node starts
            except BeaconError as exc:
                print(exc.message, file=sys.stderr)
                return 2
        reactor = None
        if not observer:
            from p2p.reactor import Reactor
            from p2p.tools.reactive import load_bots

            if args.bots:
                bots = load_bots(args.bots, store.replica.charter_event.wire)
                reactor = Reactor(store.replica, [b.key for b in bots.hosted] + bots.extra_keys(), bots=bots)
                say(f"Hosting {len(bots.hosted)} bot representatives from {args.bots}.")
            elif settings.get("panel_duties", True) and (bytes(key.verify_key) in store.replica.charter.roster
                                                         or store.replica.charter.representation is not None):
                # with constituencies anyone may be seated at a boundary: duties come with the seat
                reactor = Reactor(store.replica, [key])
        node = Node(store, bytes(key), port=args.port if args.port is not None else settings.get("port", 0),
                    bootstrap=tuple(args.bootstrap or settings.get("bootstrap", ())), observer=observer,
                    sync_interval=args.sync_interval, status_path=p.path / "node-status.json", say=say,
                    trace=Path(args.trace) if args.trace else None,
                    beacon_relays=relays,
                    mdns=args.mdns or settings.get("mdns", False), reactor=reactor, host=listen,
                    act_alone=args.act_alone or settings.get("act_alone", False))
        from p2p.service import Service

        # the person's CLI and app act through this node while it runs (p2p.control)
        node.service = Service(store.replica, None if args.bots else key, add=node._add_own,
                               outbox=p.path / "outbox.cbor", me=bytes(key.verify_key), shared=reactor,
                               constituent_only=observer)
        node.control_folder = p.path
        node.reach_keys = {bytes(key.verify_key)}
        node.service.reach_of = node.reach
        from p2p.service import CATCHING_UP

        node.service.readiness = lambda: "" if node.caught_up else (
            f"{CATCHING_UP} with the assembly; it acts once it is current"
            + (f" ({node.currency.rstrip('.')})" if node.currency else ", in a few seconds") + ". Try again then.")

        schedule = (args.start_at, args.round_zero, args.round_seconds) if args.start_at is not None else None
        if store.replica.charter.beacon.dev:
            node.beacon_schedule = schedule  # stalls are then judged by the schedule the rounds keep
        run_headless(node, say, publish=args.publish, pace=args.pace, schedule=schedule, dev_beacon=dev_secret,
                     beacon_until=args.beacon_until)
        node.write_status()
        say(f"Stopped; state {store.state_hash().hex()}")
    return 0


def _ipv4(text: str) -> str:
    import argparse
    import ipaddress

    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 address (like 127.0.0.1 or 10.1.2.3)") from None


def register(sub, profile_arg) -> None:
    p = sub.add_parser("node", help="run a headless peer-to-peer node for a profile's assembly")
    profile_arg(p)
    p.add_argument("--passphrase-file", help="read the passphrase from this file (else $KLERO_PASSPHRASE, else ask)")
    p.add_argument("--listen", metavar="IPV4", type=_ipv4,
                   help="the IPv4 address to listen on: 0.0.0.0 for every interface (default: the profile's settings' "
                        "\"listen\", else 127.0.0.1, which other machines cannot reach)")
    p.add_argument("--port", type=int, help="TCP port to listen on (default: the profile's settings.json, else any free port; a fixed one is "
                   "what a router forwards)")
    p.add_argument("--bootstrap", action="append", metavar="ADDR", help="a peer's /ip4/.../tcp/.../p2p/... address (repeatable)")
    p.add_argument("--observer", action="store_true", help="validate, store and relay, never publish legislative events")
    p.add_argument("--join", metavar="LOG", help="start the replica from this log's charter if the profile has none")
    p.add_argument("--publish", metavar="LOG", help="publish this log's items (testing and testnets)")
    p.add_argument("--pace", type=float, default=0.0, help="seconds between published items (default 0)")
    p.add_argument("--start-at", type=float, help="with --publish: Unix time at which --round-zero is due; each item is "
                   "published when the beacon reaches the round it names (testnets)")
    p.add_argument("--round-zero", type=int, default=0, help="the round due at --start-at")
    p.add_argument("--round-seconds", type=float, default=1.0, help="seconds per beacon round for --start-at (default 1)")
    p.add_argument("--dev-beacon", metavar="SECRET", help="sign and gossip the charter's dev beacon rounds on the "
                   "--start-at schedule, for as long as the node runs (testnets; the file holds the dev secret)")
    p.add_argument("--beacon-until", metavar="FILE", help="with --dev-beacon: stop after the round this file names, "
                   "once it exists (how a testnet ends its run)")
    p.add_argument("--act-alone", action="store_true", help="act (sign, take panel duties) even with no peer to sync "
                   "with: only for the first node of a new network (by default a node acts after a whole sync with a peer, so "
                   "a replica restored from an old backup cannot fork its own chain)")
    p.add_argument("--link-faults", metavar="FILE", help="emulate delay and loss on links to the peers this JSON file "
                   "names, re-read as it changes (testnets: `klero testnet delay|loss`)")
    p.add_argument("--sync-interval", type=float, default=5.0, help="seconds between syncs with every peer (default 5)")
    p.add_argument("--verbose", action="store_true", help="log connection and sync details")
    p.add_argument("--mdns", action="store_true", help="find peers on the local network with mDNS")
    p.add_argument("--beacon-relay", action="append", metavar="URL",
                   help="a drand HTTP relay of the assembly's beacon (repeatable): fetch each round and gossip it")
    p.add_argument("--trace", metavar="FILE", help="append the arrival time of every new item to FILE (benchmarks)")
    p.add_argument("--bots", metavar="FILE", help="host the bot representatives this testnet file describes (testnets)")
    p.set_defaults(func=cmd_node)
