"""Automerge change chunks, read without Automerge (DESIGN.md §2, §8).

The core reasons about document revisions only as hashes and dependencies, so it must be able to
check, from the bytes alone, that a signed ``doc.change`` event declares the truth about the
change it carries.  An Automerge change chunk is laid out as (Automerge binary format, "change
chunk"):

    magic (4 bytes, 85 6f 4a 83) | checksum (4) | chunk type (1; 1 = change) | length (uLEB128) | data

with ``hash = sha256(chunk type | length | data)`` and ``checksum = hash[:4]``; the data starts
with the dependencies (uLEB128 count, then 32-byte hashes) and the actor id (uLEB128 length, then
bytes).  Only uncompressed change chunks are accepted: they are what ``Document.get_changes``
produces, and a compressed one would hide its data from this check.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .errors import reject

MAGIC = bytes.fromhex("856f4a83")
CHANGE_CHUNK = 1


@dataclass(frozen=True, slots=True)
class ChangeHeader:
    hash: bytes
    deps: tuple[bytes, ...]
    actor: bytes


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(10):
        if pos >= len(data):
            raise IndexError
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos
    raise ValueError("uLEB128 too long")


def read_change(data: bytes) -> ChangeHeader:
    """Hash, dependencies and actor of an Automerge change chunk; ``InvalidInput`` if malformed."""
    try:
        if type(data) is not bytes or data[:4] != MAGIC or len(data) < 10 or data[8] != CHANGE_CHUNK:
            raise ValueError("not an uncompressed Automerge change chunk")
        length, pos = _uleb(data, 9)
        if pos + length != len(data):
            raise ValueError("the chunk's length does not match its bytes")
        digest = hashlib.sha256(data[8:]).digest()
        if digest[:4] != data[4:8]:
            raise ValueError("the chunk's checksum does not match its contents")
        count, p = _uleb(data, pos)
        if count > 1024:
            raise ValueError("too many dependencies")
        deps = tuple(data[p + 32 * i : p + 32 * i + 32] for i in range(count))
        p += 32 * count
        actor_len, p = _uleb(data, p)
        actor = data[p : p + actor_len]
        if p + actor_len > len(data) or any(len(d) != 32 for d in deps):
            raise ValueError("the chunk ends inside its header")
    except (ValueError, IndexError) as exc:
        raise reject("bad_change", f"The document change is not a valid Automerge change ({exc}).") from None
    return ChangeHeader(digest, deps, actor)
