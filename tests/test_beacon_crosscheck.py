"""Beacon signatures re-checked with a second, independent BLS12-381 implementation (py_ecc).

``consensus.beacon`` verifies drand rounds with py-arkworks-bls12381 (Rust).  Every other beacon
test goes through that same library, so a bug in it (a wrong hash-to-curve, a pairing-check
argument order that happens to pass, a compression flag misread) could make our vectors and our
dev beacon agree with each other while disagreeing with drand.  py_ecc is a pure-Python
implementation written separately from arkworks; if both accept the real drand rounds, reject a
wrong one, and produce the same hash-to-curve points, a shared bug is very unlikely.

The checks here never call ``consensus.beacon``'s verification: keys and signatures are read from
the resource JSON and decoded, hashed and paired with py_ecc alone.  py_ecc is slow (a pairing
check takes about half a second), so the file checks only a handful of rounds.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import pytest

pytest.importorskip("py_ecc")

from py_arkworks_bls12381 import G1Point, G2Point  # noqa: E402
from py_ecc.bls import G2Basic  # noqa: E402
from py_ecc.bls.g2_primitives import subgroup_check  # noqa: E402
from py_ecc.bls.hash_to_curve import hash_to_G1, hash_to_G2  # noqa: E402
from py_ecc.bls.point_compression import compress_G1, compress_G2, decompress_G1, decompress_G2  # noqa: E402
from py_ecc.optimized_bls12_381 import (  # noqa: E402
    FQ12,
    G1,
    G2,
    final_exponentiate,
    is_inf,
    multiply,
    neg,
    normalize,
    pairing,
)

from consensus import beacon  # noqa: E402
from p2p.beacon import DevBeacon  # noqa: E402

# Written out here rather than imported, so a typo in consensus.beacon cannot hide.
DST_G1 = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"
DST_G2 = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_"


def _resource(name: str) -> dict:
    return json.loads(resources.files("resources").joinpath("beacon", name).read_text())


VECTORS = _resource("vectors.json")
QUICKNET_PK = bytes.fromhex(_resource("quicknet.json")["public_key"])
MAINNET_PK = bytes.fromhex(_resource("mainnet.json")["public_key"])


def _vector(chain: str, number: int) -> dict:
    return next(v for v in VECTORS[chain] if v["round"] == number)


# -------------------------------------------------------------------- py_ecc helpers


def _g1(data: bytes):
    """A 48-byte compressed G1 point, decoded by py_ecc, in the prime-order subgroup, not identity."""
    assert len(data) == 48
    point = decompress_G1(int.from_bytes(data, "big"))  # checks flags and the curve equation
    assert not is_inf(point)
    assert subgroup_check(point)  # py_ecc's decompression does not check the subgroup itself
    return point


def _g2(data: bytes):
    """A 96-byte compressed G2 point (imaginary part of x first, as drand and zcash encode it)."""
    assert len(data) == 96
    point = decompress_G2((int.from_bytes(data[:48], "big"), int.from_bytes(data[48:], "big")))
    assert not is_inf(point)
    assert subgroup_check(point)
    return point


def _g1_bytes(point) -> bytes:
    return compress_G1(point).to_bytes(48, "big")


def _g2_bytes(point) -> bytes:
    z1, z2 = compress_G2(point)
    return z1.to_bytes(48, "big") + z2.to_bytes(48, "big")


def _pairings_equal(p1, q1, p2, q2) -> bool:
    """``e(p1, q1) == e(p2, q2)`` for p in G1, q in G2.

    py_ecc's ``pairing`` takes its arguments the other way round (``pairing(Q in G2, P in G1)``).
    Two Miller loops and one final exponentiation of ``e(p1, q1) * e(-p2, q2)`` (the final
    exponentiation is a homomorphism), exactly as py_ecc's own ``_CoreVerify`` does it: about
    half the cost of two full pairings.
    """
    f = pairing(q1, p1, final_exponentiate=False) * pairing(q2, neg(p2), final_exponentiate=False)
    return final_exponentiate(f) == FQ12.one()


def _unchained_message(number: int) -> bytes:
    return hashlib.sha256(number.to_bytes(8, "big")).digest()


def _chained_message(number: int, previous_signature: bytes) -> bytes:
    return hashlib.sha256(previous_signature + number.to_bytes(8, "big")).digest()


def _quicknet_check(pk, number: int, signature: bytes) -> bool:
    """quicknet / dev beacons: signature in G1 over H1(sha256(u64be(round))), key in G2.

    Valid iff ``e(sig, G2) == e(H(m), pk)``.
    """
    hm = hash_to_G1(_unchained_message(number), DST_G1, hashlib.sha256)
    return _pairings_equal(_g1(signature), G2, hm, pk)


# -------------------------------------------------------------------- quicknet (unchained, G1)


@pytest.mark.slow
def test_quicknet_round_verifies_under_py_ecc():
    """A real quicknet round is accepted by py_ecc alone: the pinned key, the published signature
    and the RFC 9380 G1 suite agree without any arkworks code involved."""
    vector = _vector("quicknet", 2)
    signature = bytes.fromhex(vector["signature"])
    assert hashlib.sha256(signature).hexdigest() == vector["randomness"]
    assert _quicknet_check(_g2(QUICKNET_PK), 2, signature)


@pytest.mark.slow
def test_quicknet_signature_does_not_verify_for_another_round():
    """Round 2's signature presented as round 3 fails under py_ecc: the check above can fail, so
    its success means something (a degenerate pairing would accept everything)."""
    signature = bytes.fromhex(_vector("quicknet", 2)["signature"])
    assert not _quicknet_check(_g2(QUICKNET_PK), 3, signature)


# -------------------------------------------------------------------- default mainnet (chained, G2)


@pytest.mark.slow
def test_mainnet_chained_round_verifies_under_py_ecc():
    """A real chained mainnet round: signature in G2 over H2(sha256(previous || u64be(round))),
    key in G1; valid iff ``e(G1, sig) == e(pk, H(m))``.  Checked by hand with py_ecc's pairing, and
    again with py_ecc's own BLS verification (its G2Basic suite uses drand mainnet's DST), while
    round 3's message with round 2's signature is rejected."""
    vector = _vector("mainnet", 2)
    signature = bytes.fromhex(vector["signature"])
    previous = bytes.fromhex(vector["previous_signature"])
    assert hashlib.sha256(signature).hexdigest() == vector["randomness"]
    pk, sig = _g1(MAINNET_PK), _g2(signature)

    hm = hash_to_G2(_chained_message(2, previous), DST_G2, hashlib.sha256)
    assert _pairings_equal(G1, sig, pk, hm)

    assert G2Basic.DST == DST_G2
    assert G2Basic.Verify(MAINNET_PK, _chained_message(2, previous), signature)

    wrong = hash_to_G2(_chained_message(3, signature), DST_G2, hashlib.sha256)
    assert not _pairings_equal(G1, sig, pk, wrong)


# -------------------------------------------------------------------- arkworks and py_ecc agree

MESSAGES = [
    b"",
    b"abc",
    _unchained_message(1),
    _unchained_message(2**63 - 1),
    _chained_message(2, bytes.fromhex(_vector("mainnet", 2)["previous_signature"])),
    bytes(range(256)) * 2,
]


def test_the_project_uses_the_drand_suites():
    """consensus.beacon names the same ciphersuite tags as drand (checked against literals here)."""
    assert beacon.DST_G1 == DST_G1
    assert beacon.DST_G2 == DST_G2


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: f"{len(m)}B-{m[:4].hex()}")
def test_hash_to_g1_agrees(msg):
    """arkworks and py_ecc map messages to the same G1 point (compressed bytes compared): the
    hash that every quicknet and dev-beacon round is checked against."""
    ark = G1Point.hash_to_curve(msg, DST_G1).to_compressed_bytes()
    assert ark == _g1_bytes(hash_to_G1(msg, DST_G1, hashlib.sha256))


@pytest.mark.parametrize("msg", MESSAGES[:3] + MESSAGES[4:5], ids=lambda m: f"{len(m)}B-{m[:4].hex()}")
def test_hash_to_g2_agrees(msg):
    """The same for G2, used by chained mainnet rounds."""
    ark = G2Point.hash_to_curve(msg, DST_G2).to_compressed_bytes()
    assert ark == _g2_bytes(hash_to_G2(msg, DST_G2, hashlib.sha256))


# RFC 9380 Appendix J.9.1 (BLS12381G1_XMD:SHA-256_SSWU_RO_): the point P, x || y big-endian.
RFC9380_DST = b"QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_"
RFC9380_G1 = {
    b"": "052926add2207b76ca4fa57a8734416c8dc95e24501772c814278700eed6d1e4e8cf62d9c09db0fac349612b759e79a1"
    "08ba738453bfed09cb546dbb0783dbb3a5f1f566ed67bb6be0e8c67e2e81a4cc68ee29813bb7994998f3eae0c9c6a265",
    b"abc": "03567bc5ef9c690c2ab2ecdf6a96ef1c139cc0b2f284dca0a9a7943388a49a3aee664ba5379a7655d3c68900be2f6903"
    "0b9c15f3fe6e5cf4211f346271d7b01c8f3b28be689c8429c85b67af215533311f0b8dfaaa154fa6b88176c229f2885d",
}


@pytest.mark.parametrize("msg", sorted(RFC9380_G1), ids=repr)
def test_hash_to_g1_matches_rfc9380(msg):
    """Both libraries reproduce the RFC's own hash-to-G1 answers, so their agreement is agreement
    with the standard and not a shared deviation from it."""
    x, y = normalize(hash_to_G1(msg, RFC9380_DST, hashlib.sha256))
    assert (x.n.to_bytes(48, "big") + y.n.to_bytes(48, "big")).hex() == RFC9380_G1[msg]
    assert G1Point.hash_to_curve(msg, RFC9380_DST).to_xy_bytes_be().hex() == RFC9380_G1[msg]


# -------------------------------------------------------------------- the dev beacon


@pytest.mark.slow
def test_dev_beacon_signature_verifies_under_py_ecc():
    """A dev-beacon round, signed with arkworks, is what py_ecc computes from the same secret and
    passes py_ecc's pairing check: dev chains really are in quicknet's format, so nodes that
    verify them test the same path as real drand rounds."""
    chain, secret = DevBeacon.create(1000, 1_700_000_000)
    rnd = DevBeacon(chain, secret).sign(5)
    sk = int.from_bytes(secret, "little")

    assert _g2_bytes(multiply(G2, sk)) == chain.public_key
    hm = hash_to_G1(_unchained_message(5), DST_G1, hashlib.sha256)
    assert _g1_bytes(multiply(hm, sk)) == rnd.signature  # BLS signing is deterministic

    pk = _g2(chain.public_key)
    assert _quicknet_check(pk, 5, rnd.signature)
    assert not _quicknet_check(pk, 6, rnd.signature)
