"""Strict, deterministic CBOR (RFC 8949 §4.2.1, core deterministic encoding).

Only integers, byte strings, text strings, lists, maps with text keys, and null are allowed:
no floats, no tags, no indefinite lengths.  Decoding accepts only the canonical encoding of the
value: we decode, re-encode and compare bytes, and check that map keys are in the canonical
order.  The bytes that were signed are therefore the only possible encoding of the value, and
nothing is ever re-encoded before its signature is checked.
"""

from __future__ import annotations

import cbor2

from .errors import reject

MAX_DEPTH = 16
#: integers in events are bounded so they never need a bignum tag
MAX_INT = 2**63 - 1
MIN_INT = -(2**63)


def key_order(key: str) -> tuple[int, bytes]:
    """Canonical order of a text key: bytewise order of its encoding, which for text strings
    is length first (the length is in the head), then the UTF-8 bytes."""
    raw = key.encode("utf-8", "surrogatepass")
    return len(raw), raw


def encode(value) -> bytes:
    """Encode ``value`` canonically.  Raises ``ValueError`` for types events must not hold."""
    _check_types(value, 0)
    return cbor2.dumps(value, canonical=True)


def _check_types(value, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    t = type(value)
    if t is int:
        if not MIN_INT <= value <= MAX_INT:
            raise ValueError("integer out of range")
    elif t is bytes or t is str or value is None:
        return
    elif t is list or t is tuple:
        for item in value:
            _check_types(item, depth + 1)
    elif t is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise ValueError("map keys must be text")
            _check_types(v, depth + 1)
    else:
        raise ValueError(f"type {t.__name__} is not allowed in events")


def _loads(data: bytes, what: str):
    try:
        return cbor2.loads(
            data,
            max_depth=MAX_DEPTH,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            strict_hashable_types=True,
        )
    except Exception as exc:  # cbor2 raises several types for hostile input
        raise reject("not_cbor", f"The {what} is not valid CBOR ({type(exc).__name__}).") from None


def decode(data: bytes, *, what: str = "item"):
    """Decode canonical CBOR or raise :class:`~consensus.errors.InvalidInput`.

    The check is: the input decodes with strict options, every value has an allowed type,
    re-encoding the value gives the same bytes (shortest forms, definite lengths, no tags, no
    duplicate keys), and every map's keys are in canonical order.
    """
    value = _loads(data, what)
    try:
        _check_canonical_value(value, 0)
    except ValueError as exc:
        raise reject("not_canonical", f"The {what} uses a value events may not hold: {exc}.") from None
    try:
        again = cbor2.dumps(value)
    except Exception:
        raise reject("not_canonical", f"The {what} cannot be re-encoded.") from None
    if again != data:
        raise reject(
            "not_canonical",
            f"The {what} is not in canonical CBOR form (RFC 8949 §4.2), or has trailing bytes.",
        )
    return value


def decode_fast(data: bytes, *, what: str = "item"):
    """Decode canonical CBOR whose value a schema validator will check next.

    Like :func:`decode` but leaves types and map key order to the caller's schema (which must
    check both): strict decoding plus the re-encoding comparison catch every non-shortest
    head, indefinite length, duplicate key and tag that decodes to a plain value.  It exists
    because it halves the cost of accepting an event.
    """
    value = _loads(data, what)
    try:
        again = cbor2.dumps(value)
    except Exception:
        raise reject("not_canonical", f"The {what} uses a value events may not hold.") from None
    if again != data:
        raise reject("not_canonical", f"The {what} is not in canonical CBOR form (RFC 8949 §4.2), or has trailing bytes.")
    return value


def _check_canonical_value(value, depth: int) -> None:
    """Allowed types only, integers in range, map keys text and in canonical order.

    Written for speed: it runs on every event received, so scalars are checked inline and only
    containers recurse.
    """
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    t = type(value)
    if t is dict:
        keys = list(value)
        for k in keys:
            if type(k) is not str:
                raise ValueError("map keys must be text")
        if len(keys) > 1 and keys != sorted(keys, key=key_order):
            raise ValueError("map keys are not in canonical order")
        items = value.values()
    elif t is list:
        items = value
    else:
        items = (value,)
    for item in items:
        t = type(item)
        if t is bytes or t is str or item is None:
            continue
        if t is int:
            if not MIN_INT <= item <= MAX_INT:
                raise ValueError("integer out of range")
        elif t is dict or t is list:
            _check_canonical_value(item, depth + 1)
        else:
            raise ValueError(f"type {t.__name__}")


def item_length(buf: bytes | memoryview, pos: int = 0, *, max_bytes: int = 1 << 24) -> int:
    """Length in bytes of the CBOR data item starting at ``buf[pos]``, without decoding it.

    Used to frame items of a CBOR sequence (RFC 8742) so that each item's exact bytes can be
    kept.  Raises ``IndexError`` when the buffer ends inside the item and ``ValueError`` for
    things a strict encoder never writes (indefinite lengths, reserved values) or for an item
    that claims to be longer than ``max_bytes``.  Every head is at least one byte, so the work
    is bounded by ``max_bytes`` whatever the input claims.
    """
    start = pos
    todo = 1
    seen = 0
    n = len(buf)
    while todo:
        todo -= 1
        seen += 1
        if seen > max_bytes:
            raise ValueError("too many nested items")
        if pos >= n:
            raise IndexError("truncated")
        initial = buf[pos]
        major, info = initial >> 5, initial & 0x1F
        pos += 1
        if info < 24:
            arg = info
        elif info <= 27:
            size = 1 << (info - 24)
            if pos + size > n:
                raise IndexError("truncated")
            arg = int.from_bytes(buf[pos : pos + size], "big")
            pos += size
        else:
            raise ValueError("indefinite length or reserved value")
        if major in (2, 3):
            if arg > max_bytes:
                raise ValueError("claimed length too large")
            pos += arg
            if pos > n:
                raise IndexError("truncated")
        elif major == 4:
            todo += arg
        elif major == 5:
            todo += 2 * arg
        elif major == 6:
            todo += 1
        if todo > max_bytes or pos - start > max_bytes:
            raise ValueError("claimed length too large")
    return pos - start
