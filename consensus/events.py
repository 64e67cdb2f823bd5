"""Signed events: canonical encoding, signing, and the stateless half of validation.

Wire form of an event: the canonical CBOR array ``[encoding, signature]`` where ``encoding`` is
the canonical CBOR map ``{v, assembly, author, seq, prev, round, kind, body}`` and
``signature`` is Ed25519 over ``b"klero/event/v1" + encoding``.  The id is
``sha256(wire)``: a hash of encoding and signature together.  The wire bytes are what is
stored, sent and exported; nothing is re-encoded before its signature is checked.

Checks run cheapest first: size, CBOR shape, header fields, assembly, kind and body, who may
sign the kind (charter only), and then the signature.  Checks that need other events (the
chain, the author's own history) are the reducer's (:mod:`consensus.replica`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from . import cbor
from .charter import Limits
from .errors import InvalidInput, names, reject
from .kinds import KINDS, CharterBody

VERSION = 1
DOMAIN = b"klero/event/v1"
ID_BYTES = KEY_BYTES = 32
SIG_BYTES = 64
#: the assembly field of the charter event itself (the assembly id is the charter's id)
NO_ASSEMBLY = bytes(32)
#: a charter may carry a large initial roster; every other event obeys ``max_event_bytes``
MAX_CHARTER_BYTES = 16 << 20
MAX_SEQ = 2**62
#: a round's randomness prefix: proof that the event was made after that round (DESIGN §3)
ROUND_PREFIX_BYTES = 8
HEADER = ("v", "assembly", "author", "seq", "prev", "round", "kind", "body")
HEADER_ORDER = tuple(sorted(HEADER, key=cbor.key_order))


@dataclass(frozen=True, slots=True)
class Event:
    """A structurally valid, correctly signed event.  ``wire`` is its exact stored form."""

    id: bytes
    wire: bytes
    author: bytes
    seq: int
    prev: bytes | None
    round: int
    round_prefix: bytes
    kind: str
    body: Any  # the kind's frozen dataclass
    assembly: bytes

    @property
    def short_id(self) -> str:
        return self.id.hex()[:12]


def event_id(wire: bytes) -> bytes:
    """The id of an event: sha256 of its wire form (encoding and signature)."""
    return hashlib.sha256(wire).digest()


def sign_event(
    key: SigningKey,
    *,
    assembly: bytes,
    seq: int,
    prev: bytes | None,
    kind: str,
    body,
    round: int = 0,
    round_prefix: bytes = b"",
) -> bytes:
    """Encode and sign an event; returns its wire bytes.

    ``body`` is the kind's dataclass or a plain map.  The caller is responsible for chain
    position (``seq``/``prev``) and must store the result durably before publishing it, so that
    a crash can never make it sign a second event at the same ``seq``.
    """
    if hasattr(body, "to_body"):
        body = body.to_body()
    fields = {
        "v": VERSION,
        "assembly": assembly,
        "author": bytes(key.verify_key),
        "seq": seq,
        "prev": prev,
        "round": [round, round_prefix],
        "kind": kind,
        "body": body,
    }
    encoding = cbor.encode(fields)
    signature = key.sign(DOMAIN + encoding).signature
    return cbor.encode([encoding, signature])


def _split_outer(wire: bytes) -> tuple[bytes, bytes]:
    """Frame ``[encoding, signature]`` by hand: it runs on every event, and a hand check of
    the three heads is both faster than a generic decode and exactly as strict (every head must
    be in its shortest form and nothing may follow the signature)."""
    n = len(wire)
    if n < 4 or wire[0] != 0x82:
        raise reject("bad_shape", "An event must be a CBOR array of its encoding and its signature.")
    head = wire[1]
    if 0x40 <= head <= 0x57:
        size, pos, shortest = head - 0x40, 2, 0
    elif head == 0x58:
        size, pos, shortest = wire[2], 3, 24
    elif head == 0x59:
        size, pos, shortest = int.from_bytes(wire[2:4], "big"), 4, 256
    elif head == 0x5A:
        size, pos, shortest = int.from_bytes(wire[2:6], "big"), 6, 65536
    else:
        raise reject("bad_shape", "An event must be a CBOR array of its encoding and its signature.")
    if size < shortest:
        raise reject("not_canonical", "The event is not in canonical CBOR form (a length is not in its shortest form).")
    end = pos + size
    if wire[end : end + 2] != b"\x58\x40":
        raise reject("bad_shape", f"An event signature must be a {SIG_BYTES}-byte string following the encoding.")
    if n != end + 2 + SIG_BYTES:
        raise reject("bad_shape", "The event's length does not match its contents (truncated, or trailing bytes).")
    return wire[pos:end], wire[end + 2 :]


def split_wire(wire: bytes, max_bytes: int) -> tuple[bytes, bytes, dict]:
    """Check size and shape of a wire event; return (encoding, signature, header map).

    The encoding must be canonical: strict decoding, re-encoding gives the same bytes, and the
    header keys come in canonical order.  Body maps are checked for key order, and all values
    for type, by the kind's validator (:mod:`consensus.kinds`).
    """
    if type(wire) is not bytes:
        raise reject("bad_shape", "An event must be a byte string.")
    if len(wire) > max_bytes:
        raise reject("too_large", f"The event is {len(wire)} bytes; the charter allows at most {max_bytes}.")
    encoding, signature = _split_outer(wire)
    fields = cbor.decode_fast(encoding, what="event encoding")
    if type(fields) is not dict:
        raise reject("bad_shape", "An event must be a map with exactly the fields " + ", ".join(HEADER) + ".")
    keys = tuple(fields)
    if keys != HEADER_ORDER:
        if set(keys) == set(HEADER):
            raise reject("not_canonical", "The event's fields are not in canonical order.")
        raise reject("bad_shape", "An event must be a map with exactly the fields " + ", ".join(HEADER) + ".")
    return encoding, signature, fields


def check_header(fields: dict) -> None:
    """Types and ranges of the header fields (not the body)."""
    v, assembly, author, seq, prev, rnd, kind = (
        fields["v"], fields["assembly"], fields["author"], fields["seq"], fields["prev"], fields["round"], fields["kind"]
    )
    if type(v) is not int or v != VERSION:
        raise reject("unsupported_version", f"This node understands event version {VERSION} only.")
    if type(assembly) is not bytes or len(assembly) != 32:
        raise reject("bad_field", "The event's assembly must be 32 bytes.")
    if type(author) is not bytes or len(author) != 32:
        raise reject("bad_field", "The event's author must be 32 bytes.")
    if type(seq) is not int or not 1 <= seq <= MAX_SEQ:
        raise reject("bad_field", "The event's seq must be a positive integer.")
    if seq == 1:
        if prev is not None:
            raise reject("bad_field", "An author's first event (seq 1) must have no predecessor.")
    elif type(prev) is not bytes or len(prev) != ID_BYTES:
        raise reject("bad_field", "The event's prev must be the 32-byte id of the author's previous event.")
    if (
        type(rnd) is not list
        or len(rnd) != 2
        or type(rnd[0]) is not int
        or type(rnd[1]) is not bytes
        or not 0 <= rnd[0] <= MAX_SEQ
        or len(rnd[1]) != (ROUND_PREFIX_BYTES if rnd[0] else 0)
    ):
        raise reject(
            "bad_field",
            f"The event's round must be [round number, first {ROUND_PREFIX_BYTES} bytes of its randomness] "
            "(or [0, empty] before any round).",
        )
    if type(kind) is not str:
        raise reject("bad_field", "The event's kind must be text.")


def verify_signature(author: bytes, encoding: bytes, signature: bytes, verify_keys: dict | None = None) -> None:
    """Check the Ed25519 signature; ``verify_keys`` is an optional cache of VerifyKey objects."""
    try:
        vk = verify_keys.get(author) if verify_keys is not None else None
        if vk is None:
            vk = VerifyKey(author)
            if verify_keys is not None and len(verify_keys) < 1_000_000:
                verify_keys[author] = vk
        vk.verify(DOMAIN + encoding, signature)
    except (BadSignatureError, ValueError, TypeError):
        raise reject("bad_signature", "The event's signature does not match its author and content.") from None


def parse_body(kind: str, body, limits: Limits):
    cls = KINDS.get(kind)
    if cls is None:
        raise reject("unknown_kind", f"This node does not know the event kind {names([kind])}.")
    return cls.from_body(body, limits)


def decode_charter(wire: bytes) -> Event:
    """Decode and verify the founding ``charter`` event of an assembly."""
    encoding, signature, fields = split_wire(wire, MAX_CHARTER_BYTES)
    check_header(fields)
    if fields["kind"] != CharterBody.KIND:
        raise reject("not_a_charter", "The first event of an assembly must be its charter.")
    if fields["assembly"] != NO_ASSEMBLY or fields["seq"] != 1:
        raise reject("bad_charter", "A charter must be its author's first event and name no assembly.")
    body = CharterBody.from_body(fields["body"], Limits())
    verify_signature(fields["author"], encoding, signature)
    return Event(
        id=event_id(wire),
        wire=wire,
        author=fields["author"],
        seq=1,
        prev=None,
        round=fields["round"][0],
        round_prefix=fields["round"][1],
        kind=CharterBody.KIND,
        body=body,
        assembly=event_id(wire),
    )


def peek_kind(wire: bytes) -> str | None:
    """The kind of a wire event if it is well formed enough to tell, else None (no signature check)."""
    try:
        _, _, fields = split_wire(wire, MAX_CHARTER_BYTES)
    except InvalidInput:
        return None
    kind = fields.get("kind")
    return kind if type(kind) is str else None
