"""The randomness beacon: drand chains, round verification and beacon time (DESIGN.md §4).

One verification path for every chain Kleroterion accepts:

* ``bls-unchained-g1-rfc9380`` (drand *quicknet*, and every dev beacon): the signature is a G1
  point over ``sha256(u64be(round))`` with the RFC 9380 G1 suite, the public key a G2 point.
* ``pedersen-bls-chained`` (drand's default *mainnet*): the signature is a G2 point over
  ``sha256(previous_signature || u64be(round))``, the public key a G1 point.

A round's randomness is ``sha256(signature)``.  Chain info is pinned by its hash, recomputed here
with drand's rule (``Info.Hash`` in drand's ``common/chain/info.go``: sha256 of
``u32be(period_s) || i64be(genesis) || public_key || group_hash || beacon_id``, the beacon id only
when it is not ``default``).  Dev chains may tick faster than once a second, which drand's
format cannot express, so their hash uses the same fields with the period in milliseconds under a
domain prefix of our own.

Pure: no clock here.  ``round_at`` and ``time_of`` take and return times as plain numbers and
serve display only; nothing is decided from a local clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache

from py_arkworks_bls12381 import GT, G1Point, G2Point

from . import cbor
from .errors import InvalidInput, reject

UNCHAINED_G1 = "bls-unchained-g1-rfc9380"
CHAINED = "pedersen-bls-chained"
SCHEMES = (UNCHAINED_G1, CHAINED)
DST_G1 = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"
DST_G2 = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_"
G1_BYTES, G2_BYTES = 48, 96
DEV_DOMAIN = b"klero/dev-chain/v1"
MAX_ROUND = 2**63 - 1

_NEG_G1 = -G1Point()
_NEG_G2 = -G2Point()


@dataclass(frozen=True, slots=True)
class BeaconRound:
    """One published round of a chain.  ``previous_signature`` only for chained schemes."""

    round: int
    signature: bytes
    previous_signature: bytes | None = None

    @property
    def randomness(self) -> bytes:
        return hashlib.sha256(self.signature).digest()


@dataclass(frozen=True)
class Chain:
    """A beacon chain's pinned parameters (drand's chain info)."""

    scheme: str
    public_key: bytes
    period_ms: int
    genesis_time: int  # unix seconds of round 1
    group_hash: bytes
    beacon_id: str
    dev: bool = False
    hash: bytes = field(default=b"", compare=False)

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise reject("beacon_bad_chain", f"Unknown beacon scheme {self.scheme[:60]!r}; Kleroterion accepts {', '.join(SCHEMES)}.")
        if self.period_ms <= 0 or (not self.dev and self.period_ms % 1000):
            raise reject("beacon_bad_chain", "A beacon period must be positive (whole seconds for drand chains).")
        expected = G2_BYTES if self.scheme == UNCHAINED_G1 else G1_BYTES
        if len(self.public_key) != expected:
            raise reject("beacon_bad_chain", f"A {self.scheme} public key has {expected} bytes.")
        _public_point(self.scheme, self.public_key)  # raises if not a valid group element
        object.__setattr__(self, "hash", self.compute_hash())

    def compute_hash(self) -> bytes:
        bid = b"" if self.beacon_id in ("", "default") else self.beacon_id.encode()
        if self.dev:
            head = DEV_DOMAIN + self.period_ms.to_bytes(4, "big")
        else:
            head = (self.period_ms // 1000).to_bytes(4, "big")
        return hashlib.sha256(
            head + self.genesis_time.to_bytes(8, "big", signed=True) + self.public_key + self.group_hash + bid
        ).digest()

    # ---------------------------------------------------------------- drand chain info JSON

    @classmethod
    def from_info(cls, info) -> "Chain":
        """Build from drand's chain-info JSON (as a dict); the ``hash`` it names must match."""
        if not isinstance(info, dict):
            raise reject("beacon_bad_chain", "Chain info must be a JSON object.")
        try:
            dev = bool(info.get("klero_dev", False))
            period_ms = int(info["period_ms"]) if dev else int(info["period"]) * 1000
            meta = info.get("metadata") or {}
            chain = cls(
                scheme=str(info.get("schemeID", CHAINED)),
                public_key=bytes.fromhex(info["public_key"]),
                period_ms=period_ms,
                genesis_time=int(info["genesis_time"]),
                group_hash=bytes.fromhex(info["groupHash"]),
                beacon_id=str(meta.get("beaconID", "default")) if isinstance(meta, dict) else "default",
                dev=dev,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise reject("beacon_bad_chain", f"Chain info is incomplete or malformed ({type(exc).__name__}: {str(exc)[:80]}).") from None
        named = info.get("hash")
        if named is not None and named != chain.hash.hex():
            raise reject(
                "beacon_bad_chain",
                f"The chain info names hash {str(named)[:64]} but its contents hash to {chain.hash.hex()}: it was altered.",
            )
        return chain

    def to_info(self) -> dict:
        info = {
            "public_key": self.public_key.hex(),
            "genesis_time": self.genesis_time,
            "hash": self.hash.hex(),
            "groupHash": self.group_hash.hex(),
            "schemeID": self.scheme,
            "metadata": {"beaconID": self.beacon_id},
        }
        if self.dev:
            info["klero_dev"] = True
            info["period_ms"] = self.period_ms
        else:
            info["period"] = self.period_ms // 1000
        return info

    # ---------------------------------------------------------------- verification

    def verify(self, rnd: BeaconRound) -> bytes:
        """Check one round; return its randomness or raise ``InvalidInput`` with a reason."""
        return verify_round(self, rnd.round, rnd.signature, rnd.previous_signature)

    # ---------------------------------------------------------------- beacon time (display only)

    def time_of(self, round_number: int) -> float:
        """Unix time (seconds) at which ``round_number`` is due to be published."""
        return self.genesis_time + (round_number - 1) * self.period_ms / 1000

    def round_at(self, unix_time: float) -> int:
        """The latest round due at ``unix_time`` (0 before genesis)."""
        if unix_time < self.genesis_time:
            return 0
        return int((unix_time - self.genesis_time) * 1000 // self.period_ms) + 1


@lru_cache(maxsize=64)
def _public_point(scheme: str, public_key: bytes):
    try:
        point = (G2Point if scheme == UNCHAINED_G1 else G1Point).from_compressed_bytes(public_key)
    except (ValueError, TypeError):
        raise reject("beacon_bad_chain", "The chain's public key is not a valid curve point.") from None
    if point == type(point).identity():
        raise reject("beacon_bad_chain", "The chain's public key is the identity point.")
    return point


def round_message(scheme: str, round_number: int, previous_signature: bytes | None = None) -> bytes:
    """The 32-byte digest a round's signature signs."""
    rb = round_number.to_bytes(8, "big")
    if scheme == UNCHAINED_G1:
        return hashlib.sha256(rb).digest()
    return hashlib.sha256((previous_signature or b"") + rb).digest()


def verify_round(chain: Chain, round_number: int, signature: bytes, previous_signature: bytes | None = None) -> bytes:
    """Verify a round of ``chain``; return its randomness (``sha256(signature)``).

    Raises ``InvalidInput`` for a round out of range, bytes of the wrong length, a point not on
    the curve or not in the subgroup (checked on decompression), the identity point, a missing
    previous signature on a chained scheme, and a signature that does not verify.
    """
    if type(round_number) is not int or not 1 <= round_number <= MAX_ROUND:
        raise reject("beacon_bad_round", "A beacon round number must be a positive integer.")
    if type(signature) is not bytes:
        raise reject("beacon_bad_signature", "A beacon signature must be bytes.")
    pk = _public_point(chain.scheme, chain.public_key)
    digest_ok = False
    if chain.scheme == UNCHAINED_G1:
        if len(signature) != G1_BYTES:
            raise reject("beacon_bad_signature", f"A {chain.scheme} signature has {G1_BYTES} bytes, not {len(signature)}.")
        sig = _point(G1Point, signature)
        hm = G1Point.hash_to_curve(round_message(chain.scheme, round_number), DST_G1)
        digest_ok = GT.pairing_check([sig, hm], [_NEG_G2, pk])
    else:
        if len(signature) != G2_BYTES:
            raise reject("beacon_bad_signature", f"A {chain.scheme} signature has {G2_BYTES} bytes, not {len(signature)}.")
        if type(previous_signature) is not bytes or not previous_signature:
            raise reject("beacon_previous_missing", "A chained beacon round needs the previous round's signature.")
        if len(previous_signature) > G2_BYTES:
            raise reject("beacon_bad_signature", "The previous signature is longer than any signature of this chain.")
        sig = _point(G2Point, signature)
        hm = G2Point.hash_to_curve(round_message(chain.scheme, round_number, previous_signature), DST_G2)
        digest_ok = GT.pairing_check([_NEG_G1, pk], [sig, hm])
    if not digest_ok:
        raise reject(
            "beacon_wrong_signature",
            f"Round {round_number} is not signed by this chain's key (wrong round, altered signature, or another chain).",
        )
    return hashlib.sha256(signature).digest()


def _point(cls, data: bytes):
    try:
        point = cls.from_compressed_bytes(data)  # checks on-curve and subgroup membership
    except (ValueError, TypeError):
        raise reject("beacon_bad_signature", "The beacon signature is not a valid curve point (not on the curve or not in the subgroup).") from None
    if point == cls.identity():
        raise reject("beacon_bad_signature", "The beacon signature is the identity point.")
    return point


# -------------------------------------------------------------------- rounds on the wire


def encode_round(rnd: BeaconRound) -> bytes:
    """Canonical CBOR ``[round, signature, previous_signature or null]`` (for relaying between peers)."""
    return cbor.encode([rnd.round, rnd.signature, rnd.previous_signature])


def decode_round(chain: Chain, data: bytes, *, verify: bool = True) -> BeaconRound:
    """Decode (and, unless told otherwise, verify) a relayed round; raises ``InvalidInput`` with a reason."""
    if type(data) is not bytes or len(data) > 512:
        raise reject("beacon_bad_round", "A relayed beacon round must be at most 512 bytes.")
    value = cbor.decode(data, what="beacon round")
    if type(value) is not list or len(value) != 3 or type(value[0]) is not int or type(value[1]) is not bytes:
        raise reject("beacon_bad_round", "A relayed beacon round must be [round, signature, previous signature].")
    if value[2] is not None and type(value[2]) is not bytes:
        raise reject("beacon_bad_round", "A relayed beacon round's previous signature must be bytes or null.")
    rnd = BeaconRound(value[0], value[1], value[2] if chain.scheme == CHAINED else None)
    if verify:
        chain.verify(rnd)
    return rnd


# -------------------------------------------------------------------- stalls (display only)


@dataclass(frozen=True, slots=True)
class BeaconStatus:
    """What to tell people about the beacon, given the latest verified round and the time now."""

    latest_round: int
    expected_round: int
    stalled: bool
    #: unix time at which the first missing round was due (when stalled)
    since: float | None

    def sentence(self) -> str:
        if self.latest_round == 0:
            return "No beacon round has been received yet; deadlines wait until rounds arrive."
        if self.stalled:
            return (
                f"The beacon has stalled: the latest round is {self.latest_round}, but round "
                f"{self.expected_round} is already due. Deadlines wait until rounds arrive again."
            )
        return f"The beacon is live (round {self.latest_round})."


def beacon_status(chain: Chain, latest_round: int, now: float, grace_rounds: int = 2) -> BeaconStatus:
    """Is the beacon stalled?  Stalled means more than ``grace_rounds`` rounds are overdue.

    ``now`` comes from the caller's clock and only decides what is *shown*; no deadline ever
    closes on it.
    """
    expected = chain.round_at(now)
    stalled = expected - latest_round > grace_rounds
    return BeaconStatus(latest_round, expected, stalled, chain.time_of(latest_round + 1) if stalled else None)


# -------------------------------------------------------------------- chains named by charters


#: drand quicknet, pinned (the same values as resources/beacon/quicknet.json; a test checks)
QUICKNET = Chain(
    scheme=UNCHAINED_G1,
    public_key=bytes.fromhex(
        "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d"
        "1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a"
    ),
    period_ms=3000,
    genesis_time=1692803367,
    group_hash=bytes.fromhex("f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e"),
    beacon_id="quicknet",
)

CHAIN_FIELDS = ("scheme", "public_key", "period_ms", "genesis_time", "group_hash", "beacon_id", "dev")


def chain_to_body(chain: Chain) -> dict:
    """The chain as a charter names it (a CBOR map: integers, bytes and text only)."""
    body = {
        "scheme": chain.scheme,
        "public_key": chain.public_key,
        "period_ms": chain.period_ms,
        "genesis_time": chain.genesis_time,
        "group_hash": chain.group_hash,
        "beacon_id": chain.beacon_id,
        "dev": int(chain.dev),
    }
    return {k: body[k] for k in sorted(body, key=cbor.key_order)}


def chain_from_body(body) -> Chain:
    if type(body) is not dict or set(body) != set(CHAIN_FIELDS):
        raise reject("bad_charter", "The charter's beacon must name " + ", ".join(CHAIN_FIELDS) + ".")
    types = {"scheme": str, "public_key": bytes, "period_ms": int, "genesis_time": int, "group_hash": bytes, "beacon_id": str, "dev": int}
    for name, t in types.items():
        if type(body[name]) is not t:
            raise reject("bad_charter", f"The charter's beacon field {name} has the wrong type.")
    if body["dev"] not in (0, 1) or len(body["group_hash"]) > 64 or len(body["beacon_id"]) > 64:
        raise reject("bad_charter", "The charter's beacon is malformed.")
    try:
        return Chain(
            scheme=body["scheme"],
            public_key=body["public_key"],
            period_ms=body["period_ms"],
            genesis_time=body["genesis_time"],
            group_hash=body["group_hash"],
            beacon_id=body["beacon_id"],
            dev=bool(body["dev"]),
        )
    except InvalidInput as exc:
        raise reject("bad_charter", f"The charter's beacon is invalid: {exc.rejection.reason}") from None
