"""Beacon sources: pinned chains, drand HTTP relays, and the dev beacon (issue 3).

* :func:`load_chain` reads pinned chain info (``quicknet``, ``mainnet`` from ``resources/beacon``,
  or a JSON file) and checks its hash.
* :class:`HttpRelay` fetches rounds from drand HTTP relays (``/{chain-hash}/public/{round}`` and
  ``/{chain-hash}/public/latest``), with timeouts, bounded retries and a size cap, and verifies
  every round before returning it.  Several relay URLs are tried in turn.
* :class:`DevBeacon` holds a BLS secret key for a dev or demo chain and signs rounds in exactly
  quicknet's format; :func:`serve` publishes them over HTTP with drand's API, so nodes fetch and
  verify dev rounds exactly like drand's.

Relaying verified rounds between peers uses ``consensus.beacon.encode_round``/``decode_round``;
the gossip transport that carries them arrives with the libp2p node (issue 7).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import threading
import time
import urllib.error
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Callable

from py_arkworks_bls12381 import G1Point, G2Point, Scalar

from consensus.beacon import DST_G1, UNCHAINED_G1, BeaconRound, Chain, round_message
from consensus.errors import InvalidInput, KleroError

NAMED_CHAINS = ("quicknet", "mainnet")
MAX_RESPONSE = 64 * 1024


class BeaconError(KleroError):
    """A beacon source failed or answered something unusable."""


def load_chain(spec: str) -> Chain:
    """``quicknet``, ``mainnet``, or the path of a chain-info JSON file; its hash is checked."""
    if spec in NAMED_CHAINS:
        text = importlib_resources.files("resources").joinpath("beacon", f"{spec}.json").read_text()
        where = f"the pinned {spec} chain"
    else:
        path = Path(spec)
        if not path.is_file():
            raise BeaconError(f"Unknown chain {spec!r}: use quicknet, mainnet, or the path of a chain-info JSON file.")
        if path.stat().st_size > MAX_RESPONSE:
            raise BeaconError(f"{path} is too large to be chain info.")
        text = path.read_text(encoding="utf-8", errors="replace")
        where = str(path)
    try:
        info = json.loads(text)
    except ValueError:
        raise BeaconError(f"{where} is not JSON.") from None
    if isinstance(info, dict) and isinstance(info.get("beacon"), dict):
        info = info["beacon"]  # a charter file that embeds its chain
    try:
        return Chain.from_info(info)
    except InvalidInput as exc:
        raise BeaconError(f"{where}: {exc.rejection.reason}") from None


def parse_round_json(chain: Chain, data: bytes, expected_round: int | None = None) -> BeaconRound:
    """Turn a relay's JSON answer into a verified round (or raise BeaconError with a reason).
    Any bytes at all give a round or a reason: a relay is a stranger."""
    if not data.lstrip()[:1] == b"{":
        # a drand answer is one flat object: anything else (60 KB of "[" would make json recurse
        # until Python gives up) is refused before it is parsed
        raise BeaconError("The relay's answer is not a drand round (JSON with round and signature).")
    try:
        obj = json.loads(data)
        number = obj["round"]
        signature = bytes.fromhex(obj["signature"])
        previous = bytes.fromhex(obj["previous_signature"]) if obj.get("previous_signature") else None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise BeaconError("The relay's answer is not a drand round (JSON with round and signature).") from None
    if type(number) is not int or number < 1:
        raise BeaconError("The relay's answer names no round number.")
    if expected_round is not None and number != expected_round:
        raise BeaconError(f"The relay answered round {number} when asked for round {expected_round}.")
    rnd = BeaconRound(number, signature, previous)
    try:
        randomness = chain.verify(rnd)
    except InvalidInput as exc:
        raise BeaconError(f"The relay's round {number} is invalid: {exc.rejection.reason}") from None
    claimed = obj.get("randomness")
    if claimed is not None and claimed != randomness.hex():
        raise BeaconError(f"The relay's round {number} claims randomness that is not the hash of its signature.")
    return rnd


#: relays asked at once (a thread each) when a node names several
MAX_RELAYS_AT_ONCE = 8


class HttpRelay:
    """Fetch verified rounds from one or more drand HTTP relays.

    Every request is bounded in time as a whole (``deadline``, default twice ``timeout``), not
    only per socket operation: a relay that sends one byte every second would otherwise hold a
    fetch for ever.  A public chain's "latest" round must be recent by the chain's schedule (a
    relay serving round 1 as the latest is stale or lying, and the next relay is asked)."""

    def __init__(self, chain: Chain, urls: list[str], *, timeout: float = 5.0, retries: int = 2, backoff: float = 0.5,
                 deadline: float | None = None, clock: Callable[[], float] = time.time):
        if not urls:
            raise BeaconError("No relay URL given.")
        for url in urls:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise BeaconError(f"{url!r} is not a relay address: give one like https://api.drand.sh.")
        self.chain = chain
        self.urls = [u.rstrip("/") for u in urls]
        self.timeout = timeout
        self.deadline = deadline if deadline is not None else 2 * timeout
        self.retries = retries
        self.backoff = backoff
        self.clock = clock

    def fetch(self, round_number: int | None = None) -> BeaconRound:
        """Round ``round_number`` (or the latest), verified.  Every relay is asked at once (each
        with its retries, each bounded in time) and the first valid answer wins: a slow or
        hostile relay delays nothing while another one answers."""
        path = f"/{self.chain.hash.hex()}/public/{'latest' if round_number is None else round_number}"
        if len(self.urls) == 1:
            rnd, problems = self._fetch_from(self.urls[0], path, round_number)
        else:
            from concurrent.futures import ThreadPoolExecutor, as_completed

            problems = []
            pool = ThreadPoolExecutor(max_workers=min(len(self.urls), MAX_RELAYS_AT_ONCE), thread_name_prefix="relay")
            try:
                rnd = None
                for future in as_completed([pool.submit(self._fetch_from, url, path, round_number) for url in self.urls]):
                    rnd, said = future.result()
                    problems += said
                    if rnd is not None:
                        break
            finally:
                pool.shutdown(wait=False, cancel_futures=True)  # the others end by their own deadlines
        if rnd is None:
            raise BeaconError("No relay gave a valid round. " + "; ".join(problems[-4:]))
        return rnd

    def _fetch_from(self, url: str, path: str, round_number: int | None) -> tuple[BeaconRound | None, list[str]]:
        """One relay, with retries: (the round or None, what went wrong)."""
        problems = []
        for attempt in range(self.retries + 1):
            try:
                data = self._get(url + path)
                rnd = parse_round_json(self.chain, data, round_number)
                if round_number is None and not self.chain.dev:
                    due = self.chain.round_at(self.clock())
                    if rnd.round < due - 2:
                        raise BeaconError(f"The relay's latest round is {rnd.round}, but round {due} is due: it is stale.")
                return rnd, problems
            except BeaconError as exc:
                problems.append(f"{url}: {exc.message}")
                if "invalid" in exc.message or "claims" in exc.message or "stale" in exc.message:
                    break  # a relay that serves forged or stale rounds is not retried
            except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                problems.append(f"{url}: {reason or type(exc).__name__}")
            if attempt < self.retries:
                time.sleep(self.backoff * (2**attempt))
        return None, problems

    def _get(self, url: str) -> bytes:
        """One GET, bounded in time as a whole: a timer closes the socket at the deadline."""
        parts = urllib.parse.urlsplit(url)
        make = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = make(parts.hostname, parts.port, timeout=self.timeout)
        expired = threading.Event()

        def cut() -> None:
            expired.set()
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(2)
                except OSError:
                    pass

        timer = threading.Timer(self.deadline, cut)
        timer.daemon = True
        timer.start()
        try:
            conn.request("GET", parts.path or "/", headers={"User-Agent": "kleroterion"})
            response = conn.getresponse()
            if response.status != 200:
                raise BeaconError(f"HTTP {response.status}")
            data = response.read(MAX_RESPONSE + 1)
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set():
                raise TimeoutError(f"no whole answer within {self.deadline:g} s") from None
            raise exc
        finally:
            timer.cancel()
            conn.close()
        if expired.is_set():
            raise TimeoutError(f"no whole answer within {self.deadline:g} s")
        if len(data) > MAX_RESPONSE:
            raise BeaconError("The relay's answer is too large.")
        return data


# -------------------------------------------------------------------- is the beacon alive?


def beacon_health(chain: Chain, latest: int, now: float, *, schedule: tuple[float, int, float] | None = None,
                  quiet_s: float | None = None, grace_rounds: int = 2) -> dict:
    """What a node tells its owner about the beacon: ``{"round", "expected", "behind", "stalled",
    "sentence"}``.  Display only: no deadline ever closes on a clock.

    Each kind of chain is judged by what says when its rounds are due:

    * a public chain (quicknet, mainnet) by its genesis and period (``now`` is Unix time);
    * a dev chain run on a known schedule (a testnet: round ``round_zero`` due at ``start_at``,
      one every ``round_seconds``) by that schedule;
    * any other dev chain by when its rounds arrive (``quiet_s``: seconds since the latest new
      round came): its genesis says nothing, its operator starts it whenever they like.

    Stalled means more than ``grace_rounds`` rounds are overdue (for arrival: no new round for
    three periods and two seconds)."""
    from consensus.beacon import beacon_status

    period = chain.period_ms / 1000
    if not chain.dev:
        status = beacon_status(chain, latest, now, grace_rounds)
        return {"round": latest, "expected": status.expected_round, "behind": max(0, status.expected_round - latest),
                "stalled": status.stalled, "sentence": status.sentence()}
    if schedule is not None:
        start_at, round_zero, round_seconds = schedule
        if now < start_at:
            return {"round": latest, "expected": None, "behind": 0, "stalled": False,
                    "sentence": f"The testnet's first round ({round_zero}) is due in {start_at - now:.0f} s."}
        expected = round_zero + int((now - start_at) / round_seconds)
        behind = max(0, expected - latest)
        stalled = behind > grace_rounds
        sentence = (f"The testnet's beacon has stalled: the latest round is {latest:,}, but round {expected:,} is due "
                    f"({behind:,} behind, {behind * round_seconds:.0f} s). Deadlines wait until rounds arrive again."
                    if stalled else f"Dev beacon round {latest:,}, on schedule (one every {round_seconds:g} s).")
        return {"round": latest, "expected": expected, "behind": behind, "stalled": stalled, "sentence": sentence}
    quiet = quiet_s or 0.0
    if latest == 0:
        return {"round": 0, "expected": None, "behind": 0, "stalled": False,
                "sentence": "No beacon round has been received yet; deadlines wait until rounds arrive."}
    stalled = quiet > 3 * period + 2
    sentence = (f"The dev beacon has stalled: no new round for {quiet:.0f} s (one is due every {period:g} s)."
                if stalled else f"Dev beacon round {latest:,} (one every {period:g} s).")
    return {"round": latest, "expected": None, "behind": None, "stalled": stalled, "sentence": sentence}


# -------------------------------------------------------------------- dev beacon


class DevBeacon:
    """A dev or demo beacon: a BLS key that signs rounds in quicknet's format."""

    def __init__(self, chain: Chain, secret: bytes):
        if chain.scheme != UNCHAINED_G1:
            raise BeaconError("A dev beacon signs in quicknet's format (bls-unchained-g1-rfc9380).")
        self.chain = chain
        self._scalar = Scalar.from_le_bytes(secret)
        if (G2Point() * self._scalar).to_compressed_bytes() != chain.public_key:
            raise BeaconError("The dev beacon's secret key does not belong to this chain.")

    @staticmethod
    def create(period_ms: int, genesis_time: int, beacon_id: str = "klero-dev") -> tuple[Chain, bytes]:
        """A fresh key pair and the chain info naming it; returns (chain, secret)."""
        scalar = Scalar.from_be_bytes_mod_order(secrets.token_bytes(64))
        public = (G2Point() * scalar).to_compressed_bytes()
        chain = Chain(
            scheme=UNCHAINED_G1,
            public_key=public,
            period_ms=period_ms,
            genesis_time=genesis_time,
            group_hash=secrets.token_bytes(32),
            beacon_id=beacon_id,
            dev=True,
        )
        return chain, bytes(scalar.to_le_bytes())

    @property
    def secret(self) -> bytes:
        """The secret key, as :func:`read_dev_secret` reads it (dev chains only: nothing of value)."""
        return bytes(self._scalar.to_le_bytes())

    def sign(self, round_number: int) -> BeaconRound:
        hm = G1Point.hash_to_curve(round_message(UNCHAINED_G1, round_number), DST_G1)
        return BeaconRound(round_number, (hm * self._scalar).to_compressed_bytes())


def write_dev_chain(path: str | os.PathLike, chain: Chain, secret: bytes) -> Path:
    """Write the public chain info to ``path`` and the secret beside it (``.secret``, mode 0600)."""
    path = Path(path)
    secret_path = path.with_name(path.name + ".secret")
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    if os.name == "posix":
        os.fchmod(fd, 0o600)  # O_CREAT's mode applies only to a new file: an existing one keeps its own
    with os.fdopen(fd, "w") as out:
        out.write(secret.hex() + "\n")
    path.write_text(json.dumps(chain.to_info(), indent=2) + "\n")
    return secret_path


def read_dev_secret(path: str | os.PathLike) -> bytes:
    try:
        text = Path(path).read_text().strip()
        secret = bytes.fromhex(text)
    except (OSError, ValueError):
        raise BeaconError(f"Cannot read a dev beacon secret from {path}.") from None
    if len(secret) != 32:
        raise BeaconError(f"{path} does not hold a 32-byte dev beacon secret.")
    return secret


#: a dev beacon server's bounds: connections served at once (one thread each), seconds a
#: connection may stay silent, and seconds a whole request may take
SERVE_MAX_CONNECTIONS = 64
SERVE_IDLE_S = 5.0
SERVE_REQUEST_S = 15.0


class _BoundedHTTPServer(ThreadingHTTPServer):
    """At most ``SERVE_MAX_CONNECTIONS`` connections at once (more are closed at once, so 300
    idle sockets cannot make 300 threads), each cut after ``SERVE_REQUEST_S`` even if it keeps
    sending a byte now and then (one watchdog thread checks them every second)."""

    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 leaves a burst of clients retrying their SYNs for seconds

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(SERVE_MAX_CONNECTIONS)
        self._open: dict = {}  # request socket -> when it was accepted
        self._open_lock = threading.Lock()
        self._closing = threading.Event()
        threading.Thread(target=self._watch, name="klero-dev-beacon-watchdog", daemon=True).start()

    def _watch(self) -> None:
        while not self._closing.wait(1.0):
            now = time.monotonic()
            with self._open_lock:
                late = [r for r, since in self._open.items() if now - since > SERVE_REQUEST_S]
            for request in late:
                try:
                    request.shutdown(2)
                except OSError:
                    pass

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        with self._open_lock:
            self._open[request] = time.monotonic()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._forget(request)
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def _forget(self, request) -> None:
        with self._open_lock:
            if self._open.pop(request, None) is not None:
                self._slots.release()

    def server_close(self) -> None:
        self._closing.set()
        super().server_close()


def serve(
    beacon: DevBeacon,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], float] = time.time,
) -> ThreadingHTTPServer:
    """Publish the dev beacon's rounds with drand's HTTP API; returns the running server.

    A round is published once its time has come by ``clock`` (the beacon operator's clock: for a
    dev beacon that *is* the definition of beacon time).  Call ``server.shutdown()`` to stop.
    """
    chain = beacon.chain
    prefix = "/" + chain.hash.hex()
    cache: dict[int, BeaconRound] = {}
    lock = threading.Lock()

    def round_json(number: int) -> bytes:
        with lock:
            rnd = cache.get(number)
            if rnd is None:
                rnd = cache[number] = beacon.sign(number)
                if len(cache) > 4096:
                    cache.pop(min(cache))
        return json.dumps({"round": number, "randomness": rnd.randomness.hex(), "signature": rnd.signature.hex()}).encode()

    class Handler(BaseHTTPRequestHandler):
        timeout = SERVE_IDLE_S  # per socket operation: an idle connection is closed

        def log_message(self, *args) -> None:  # quiet: the CLI reports what matters
            pass

        def _send(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path.startswith(prefix):
                path = path[len(prefix):]
            current = chain.round_at(clock())
            if path in ("/info", "/chains"):
                body = json.dumps(chain.to_info() if path == "/info" else [chain.hash.hex()]).encode()
                return self._send(200, body)
            if path == "/public/latest":
                if current < 1:
                    return self._send(404, b'{"error": "no round yet"}')
                return self._send(200, round_json(current))
            if path.startswith("/public/"):
                try:
                    number = int(path[len("/public/"):])
                except ValueError:
                    return self._send(400, b'{"error": "bad round"}')
                if not 1 <= number <= current:
                    return self._send(404, b'{"error": "round not yet published"}')
                return self._send(200, round_json(number))
            return self._send(404, b'{"error": "not found"}')

    server = _BoundedHTTPServer((host, port), Handler)
    thread = threading.Thread(target=server.serve_forever, name="klero-dev-beacon", daemon=True)
    thread.start()
    return server
