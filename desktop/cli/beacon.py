"""Randomness beacon commands: verify, dev-chain, serve, fetch."""

from __future__ import annotations

import json
import sys
import time



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


def register(sub, profile_arg) -> None:
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
