"""A homomorphic set hash (LtHash16, Bellare–Micciancio / Lewi et al. 2019).

The hash of a set of facts is the lane-wise sum, modulo 2**16, of a 1024-lane expansion of each
fact.  Adding or removing one fact costs one expansion and one vector addition, whatever the
size of the set, which is what lets the state hash follow a state of millions of events
incrementally.  1024 lanes of 16 bits is the parameter set Facebook deployed (about 200 bits of
security against finding two sets with one hash).

The vector is held as one Python integer with 32-bit lanes, so a vector addition is one big-int
addition and one mask; the upper half of every lane only ever holds the carry that the mask
removes.
"""

from __future__ import annotations

import hashlib

LANES = 1024
_LANE_BYTES = 4
_MASK = int.from_bytes(b"\xff\xff\x00\x00" * LANES, "little")
#: 2**16 in every lane: subtracting x is adding (2**16 - x), lane by lane, without borrows
_MODULUS = int.from_bytes(b"\x00\x00\x01\x00" * LANES, "little")


def _expand(fact: bytes) -> int:
    return int.from_bytes(hashlib.shake_256(fact).digest(LANES * _LANE_BYTES), "little") & _MASK


class LtHash:
    """A mutable multiset hash; ``digest()`` is its 32-byte summary."""

    __slots__ = ("_acc",)

    def __init__(self) -> None:
        self._acc = 0

    def add(self, fact: bytes) -> None:
        self._acc = (self._acc + _expand(fact)) & _MASK

    def remove(self, fact: bytes) -> None:
        self._acc = (self._acc + _MODULUS - _expand(fact)) & _MASK

    def digest(self) -> bytes:
        return hashlib.sha256(b"klero/lthash16/v1" + self._acc.to_bytes(LANES * _LANE_BYTES, "little")).digest()
