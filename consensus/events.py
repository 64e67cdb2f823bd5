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
from .errors import InvalidInput, reject
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


def split_wire(wire: bytes, max_bytes: int) -> tuple[bytes, bytes, dict]:
    """Check size and shape of a wire event; return (encoding, signature, header map)."""
    if type(wire) is not bytes:
        raise reject("bad_shape", "An event must be a byte string.")
    if len(wire) > max_bytes:
        raise reject("too_large", f"The event is {len(wire)} bytes; the charter allows at most {max_bytes}.")
    outer = cbor.decode(wire, what="event")
    if type(outer) is not list or len(outer) != 2 or type(outer[0]) is not bytes or type(outer[1]) is not bytes:
        raise reject("bad_shape", "An event must be a CBOR array of its encoding and its signature.")
    encoding, signature = outer
    if len(signature) != SIG_BYTES:
        raise reject("bad_shape", f"An event signature must be {SIG_BYTES} bytes.")
    fields = cbor.decode(encoding, what="event encoding")
    if type(fields) is not dict or set(fields) != set(HEADER):
        raise reject("bad_shape", "An event must be a map with exactly the fields " + ", ".join(HEADER) + ".")
    return encoding, signature, fields


def check_header(fields: dict) -> None:
    """Types and ranges of the header fields (not the body)."""
    if type(fields["v"]) is not int or fields["v"] != VERSION:
        raise reject("unsupported_version", f"This node understands event version {VERSION} only.")
    for name in ("assembly", "author"):
        if type(fields[name]) is not bytes or len(fields[name]) != 32:
            raise reject("bad_field", f"The event's {name} must be 32 bytes.")
    seq = fields["seq"]
    if type(seq) is not int or not 1 <= seq <= MAX_SEQ:
        raise reject("bad_field", "The event's seq must be a positive integer.")
    prev = fields["prev"]
    if seq == 1:
        if prev is not None:
            raise reject("bad_field", "An author's first event (seq 1) must have no predecessor.")
    elif type(prev) is not bytes or len(prev) != ID_BYTES:
        raise reject("bad_field", "The event's prev must be the 32-byte id of the author's previous event.")
    rnd = fields["round"]
    if (
        type(rnd) is not list
        or len(rnd) != 2
        or type(rnd[0]) is not int
        or type(rnd[1]) is not bytes
        or rnd[0] < 0
        or len(rnd[1]) != (0 if rnd[0] == 0 else ROUND_PREFIX_BYTES)
    ):
        raise reject(
            "bad_field",
            f"The event's round must be [round number, first {ROUND_PREFIX_BYTES} bytes of its randomness] "
            "(or [0, empty] before any round).",
        )
    if type(fields["kind"]) is not str:
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
        raise reject("unknown_kind", f"This node does not know the event kind {kind[:40]!r}.")
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
