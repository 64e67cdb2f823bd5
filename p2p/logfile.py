"""Log files: RFC 8742 CBOR sequences, one item per signed event in its wire form.

Reading is streaming (constant memory whatever the file size) and framing never decodes or
re-encodes an item: each item's exact bytes are handed on, so signatures are checked over the
bytes that were signed.  A file that ends inside an item, or bytes that are not CBOR at all,
end the reading with a :class:`LogDamage` that says where.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from consensus import cbor
from consensus.cbor import item_length
from consensus.events import MAX_CHARTER_BYTES

CHUNK = 1 << 20
#: no item of a log may be larger than the largest possible charter
MAX_ITEM = MAX_CHARTER_BYTES + 64


@dataclass(frozen=True, slots=True)
class LogDamage:
    """The log cannot be read past ``offset``: a sentence says why."""

    index: int
    offset: int
    reason: str


def _event_length(buf: bytes, pos: int) -> int:
    """Length of an item shaped like a wire event (``[bstr, bstr(64)]``), or 0 to fall back to
    the generic framer.  Almost every item of a log is an event, so this is worth a fast path."""
    if pos + 3 > len(buf) or buf[pos] != 0x82:
        return 0
    head = buf[pos + 1]
    if 0x40 <= head <= 0x57:
        start, size = pos + 2, head - 0x40
    elif head == 0x58:
        start, size = pos + 3, buf[pos + 2]
    elif head == 0x59 and pos + 4 <= len(buf):
        start, size = pos + 4, int.from_bytes(buf[pos + 2 : pos + 4], "big")
    else:
        return 0
    end = start + size
    if end + 2 + 64 > len(buf) or buf[end] != 0x58 or buf[end + 1] != 0x40:
        return 0
    return end + 66 - pos


def iter_items(stream: BinaryIO) -> Iterator[tuple[int, int, bytes] | LogDamage]:
    """Yield ``(index, offset, item_bytes)`` for each item, or one final :class:`LogDamage`."""
    buf = b""
    base = 0  # file offset of buf[0]
    pos = 0
    index = 0
    eof = False
    while True:
        if pos == len(buf) and eof:
            return
        try:
            size = _event_length(buf, pos) or item_length(buf, pos, max_bytes=MAX_ITEM)
        except IndexError:
            if eof:
                yield LogDamage(index, base + pos, f"The file ends in the middle of item {index} (byte {base + pos}); it is truncated.")
                return
            if len(buf) - pos > MAX_ITEM:
                yield LogDamage(index, base + pos, f"Item {index} (byte {base + pos}) is larger than any event can be.")
                return
            chunk = stream.read(CHUNK)
            if not chunk:
                eof = True
            base += pos
            buf = buf[pos:] + chunk
            pos = 0
            continue
        except ValueError as exc:
            yield LogDamage(index, base + pos, f"Item {index} (byte {base + pos}) is not well-formed CBOR ({exc}); the rest of the file cannot be read.")
            return
        if size > MAX_ITEM:
            yield LogDamage(index, base + pos, f"Item {index} (byte {base + pos}) is larger than any event can be.")
            return
        yield index, base + pos, bytes(buf[pos : pos + size])
        pos += size
        index += 1


def read_items(path: str | os.PathLike) -> Iterator[tuple[int, int, bytes] | LogDamage]:
    with open(path, "rb") as stream:
        yield from iter_items(stream)


def write_log(path: str | os.PathLike, wires: Iterable[bytes]) -> int:
    """Write events to ``path`` atomically (a temporary file renamed into place); returns the count."""
    path = Path(path)
    if path.is_dir():
        import errno

        raise IsADirectoryError(errno.EISDIR, f"{path} is a folder; give the name of a file to write, such as "
                                              f"{path / 'assembly.log'}")
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent or ".")
    count = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for wire in wires:
                out.write(wire)
                count += 1
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # a log is meant to be shared; mkstemp made it private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


def item_round(item: bytes) -> int:
    """The beacon round an item is due at: a round's own number, an event's named round."""
    value = cbor.decode_fast(item)
    if item[:1] == b"\x83":
        return int(value[0])
    fields = cbor.decode_fast(value[0])
    return int(fields["round"][0])
