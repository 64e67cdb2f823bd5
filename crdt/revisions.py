"""Revisions of a proposal document: stable ids, diffs, blame and amendment conflicts.

The binding's own ``diff`` patches expose no fields (STACK.md), so texts are compared at word
or line level with rapidfuzz's longest-common-subsequence opcodes.  Blame reads the changes'
operations from their chunks (Automerge binary format) and replays the history once, comparing
words only around what each change inserted or deleted.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass

from .document import DocumentError, ProposalDocument

_WORDS = re.compile(r"\s+|[^\s]+")

#: tokens a side beyond which neighbouring changed blocks are not rejoined: rapidfuzz's alignment
#: holds a bit matrix of both sides (a whole bill's 144,000 tokens took 2.5 GB)
_JOIN_LIMIT = 10_000


def revision_id(heads) -> str:
    """A stable, short name for a revision (a set of heads)."""
    return hashlib.sha256(b"klero/revision/v1" + b"".join(sorted(heads))).hexdigest()[:16]


def _tokens(text: str, level: str) -> list[str]:
    if level == "line":
        return text.splitlines(keepends=True)
    if level == "word":
        return _WORDS.findall(text)
    raise ValueError("level is 'word' or 'line'")


def opcodes(a, b):
    """Opcodes ``(tag, i1, i2, j1, j2)`` turning sequence ``a`` into ``b`` (strings, or lists of
    tokens): a longest-common-subsequence alignment by rapidfuzz's bit-parallel C++ code, after
    trimming the common prefix and suffix.  difflib took 477 s for one word diff of a
    300,000-character bill before the trim, and minutes with the trim once the edits are
    scattered (a committee's 14,000 edits); this takes milliseconds to seconds."""
    from rapidfuzz.distance import Indel

    n, m = len(a), len(b)
    lo = _common_prefix(a, b)
    hi = _common_suffix(a, b, min(n, m) - lo)
    out = [("equal", 0, lo, 0, lo)] if lo else []
    if lo < n - hi or lo < m - hi:
        for op in Indel.opcodes(a[lo : n - hi], b[lo : m - hi]):
            out.append((op.tag, op.src_start + lo, op.src_end + lo, op.dest_start + lo, op.dest_end + lo))
    if hi:
        out.append(("equal", n - hi, n, m - hi, m))
    return out


def _common_prefix(a, b) -> int:
    """Length of the common prefix, by comparing slices (C speed) of doubling size, then halving
    inside the first that differs: proportional to the prefix, never a Python loop over it (a
    one-character change to a 300,000-character bill cost 200 ms compared one by one)."""
    n = min(len(a), len(b))
    lo, step = 0, 64
    while lo < n:
        k = min(step, n - lo)
        if a[lo : lo + k] == b[lo : lo + k]:
            lo, step = lo + k, step * 2
            continue
        hi = lo + k  # a[:lo] == b[:lo], and a differs from b somewhere before hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if a[lo:mid] == b[lo:mid]:
                lo = mid
            else:
                hi = mid
        return lo
    return lo


def _common_suffix(a, b, limit: int) -> int:
    """Length of the common suffix, at most ``limit`` (the part the prefix left), as above."""
    n, m = len(a), len(b)
    done, step = 0, 64
    while done < limit:
        k = min(step, limit - done)
        if a[n - done - k : n - done] == b[m - done - k : m - done]:
            done, step = done + k, step * 2
            continue
        lo, hi = done, done + k  # the last lo elements agree; they differ within the last hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if a[n - mid : n - lo] == b[m - mid : m - lo]:
                lo = mid
            else:
                hi = mid
        return lo
    return done


def diff_texts(before: str, after: str, level: str = "word") -> list[tuple[str, str]]:
    """``[(op, text)]`` with op ``=`` (kept), ``-`` (removed) or ``+`` (added); each run of
    changed words (or lines) is one removal followed by one addition.

    A word diff first aligns lines, then words only inside the blocks of lines that changed (as
    ``git diff --word-diff`` does): unchanged lines anchor the alignment, so the cost follows
    the size of the changes, not of the bill.  The line alignment can anchor on the wrong line,
    though (a blank line, when a paragraph is split next to a changed line), cutting moved words
    off from their match: neighbouring blocks are then compared as one (:func:`_word_regions`)."""
    if level not in ("word", "line"):
        raise ValueError("level is 'word' or 'line'")
    out: list[tuple[str, str]] = []

    def emit(op: str, text: str) -> None:
        if text:
            if out and out[-1][0] == op:
                out[-1] = (op, out[-1][1] + text)
            else:
                out.append((op, text))

    lines_a, lines_b = _tokens(before, "line"), _tokens(after, "line")
    if level == "line":
        regions = [(0, len(lines_a), 0, len(lines_b), lines_a, lines_b, _blocks(opcodes(lines_a, lines_b), lines_a))]
    else:
        regions = _word_regions(lines_a, lines_b)
    done = 0
    for i1, i2, _, _, a, b, blocks in regions:
        emit("=", "".join(lines_a[done:i1]))
        for tag, k1, k2, l1, l2 in blocks:
            if tag == "equal":
                emit("=", "".join(a[k1:k2]))
            else:
                emit("-", "".join(a[k1:k2]))
                emit("+", "".join(b[l1:l2]))
        done = i2
    emit("=", "".join(lines_a[done:]))
    return out


def _word_regions(lines_a: list[str], lines_b: list[str]) -> list[tuple]:
    """The blocks of lines that changed, as ``(i1, i2, j1, j2, words_a, words_b, word blocks)``.

    A block is aligned together with the one before it (and the unchanged lines between) when
    words one removes reappear in the other and the joint alignment reports fewer words
    changed: it keeps words that the two alignments reported removed from one and re-added
    to the other."""
    regions: list[tuple] = []
    for tag, i1, i2, j1, j2 in _blocks(opcodes(lines_a, lines_b)):
        if tag == "equal":
            continue
        region = _region(lines_a, lines_b, i1, i2, j1, j2)
        while regions:
            last = regions[-1]
            joined = _joined(last, region, lines_a, lines_b)
            if joined is None:
                break
            regions.pop()
            region = joined
        regions.append(region)
    return regions


def _region(lines_a, lines_b, i1, i2, j1, j2) -> tuple:
    a, b = _tokens("".join(lines_a[i1:i2]), "word"), _tokens("".join(lines_b[j1:j2]), "word")
    return i1, i2, j1, j2, a, b, _blocks(opcodes(a, b), a)


def _changed(region: tuple, side: int) -> Counter:
    """The words a region's alignment reports removed (side 0) or added (side 1)."""
    tokens = region[4 + side]
    return Counter(t for block in region[6] if block[0] != "equal"
                   for t in tokens[block[1 + 2 * side] : block[2 + 2 * side]] if not t.isspace())


def _joined(left: tuple, right: tuple, lines_a: list[str], lines_b: list[str]) -> tuple | None:
    """The two regions aligned as one, if that reports fewer words changed; else None."""
    if not (_changed(left, 0) & _changed(right, 1) or _changed(left, 1) & _changed(right, 0)):
        return None
    gap = len(_tokens("".join(lines_a[left[1] : right[0]]), "word"))
    if max(len(left[4]) + len(right[4]), len(left[5]) + len(right[5])) + gap > _JOIN_LIMIT:
        return None
    joined = _region(lines_a, lines_b, left[0], right[1], left[2], right[3])
    before = sum(sum(_changed(r, side).values()) for r in (left, right) for side in (0, 1))
    return joined if sum(_changed(joined, 0).values()) + sum(_changed(joined, 1).values()) < before else None


def _blocks(ops, tokens: list[str] | None = None):
    """Consecutive non-equal opcodes merged into one changed block; given the tokens of ``a``,
    the whitespace between two changes joins them too, so a replaced run of words is one block
    rather than word pairs cut at every space."""
    out = []
    for tag, i1, i2, j1, j2 in ops:
        if tag != "equal" and out and out[-1][0] != "equal":
            out[-1] = ("replace", out[-1][1], i2, out[-1][3], j2)
        elif (tag != "equal" and tokens is not None and len(out) > 1 and out[-2][0] != "equal"
              and all(t.isspace() for t in tokens[out[-1][1] : out[-1][2]])):
            out.pop()
            out[-1] = ("replace", out[-1][1], i2, out[-1][3], j2)
        else:
            out.append((tag, i1, i2, j1, j2))
    return out


def diff(doc: ProposalDocument, field: str, before, after, level: str = "word") -> list[tuple[str, str]]:
    """The diff of one field between two revisions of a document."""
    return diff_texts(doc.text(field, tuple(before)), doc.text(field, tuple(after)), level)


@dataclass(frozen=True, slots=True)
class Passage:
    text: str
    author: bytes
    change: bytes


def blame(doc: ProposalDocument, field: str) -> list[Passage]:
    """Who wrote each passage of the field's current text: every word belongs to the last change
    that altered it (a word edited mid-word belongs wholly to its editor; one deleted and typed
    again unchanged keeps its writer), and consecutive words by one change are one passage.

    The history is replayed once: each change is compared word by word only around the
    characters it inserted or deleted (:func:`_windows`), so the cost follows the size of the
    text and of the changes.  Reading the whole text at every change cost 140 ms a change on a
    490,000-character bill, half an hour for a committee's 14,000 changes; the binding's
    ``diff`` between consecutive heads walks the whole document too (48 ms on that bill), so
    the changes' own operations are read instead (:func:`_text_history`)."""
    changes, chars, born, died = _text_history(doc, field)
    inserted: list[list[int]] = [[] for _ in changes]
    deleted: list[list[int]] = [[] for _ in changes]
    for k, ch in enumerate(chars):
        if ch:
            inserted[born[k]].append(k)
            if died[k] is not None:
                deleted[died[k]].append(k)
    visible = bytearray(len(chars))  # before the change being replayed
    owner = list(born)
    for n in range(len(changes)):
        touched = sorted(set(inserted[n]).union(deleted[n]))
        for lo, hi in _windows(touched, visible, chars):
            members = set(touched[bisect_left(touched, lo) : bisect_right(touched, hi)])
            k = visible.find(1, lo, hi + 1)
            while k >= 0:
                members.add(k)
                k = visible.find(1, k + 1, hi + 1)
            members = sorted(members)
            old = _words([k for k in members if visible[k]], chars)
            new = _words([k for k in members if died[k] != n and (visible[k] or born[k] == n)], chars)
            a, b = ["".join(chars[k] for k in w) for w in old], ["".join(chars[k] for k in w) for w in new]
            updates = {}
            for tag, i1, i2, j1, j2 in _blocks(opcodes(a, b), a):
                if tag == "equal":  # unchanged words keep their owner, even if retyped
                    for was, now in zip(old[i1:i2], new[j1:j2]):
                        updates.update((y, owner[x]) for x, y in zip(was, now))
                else:
                    updates.update((y, n) for word in new[j1:j2] for y in word)
            for k, who in updates.items():
                owner[k] = who
        for k in inserted[n]:
            visible[k] = 1
        for k in deleted[n]:
            visible[k] = 0
    runs: list[tuple[int, list[str]]] = []
    for k in range(len(chars)):
        if visible[k]:
            if runs and runs[-1][0] == owner[k]:
                runs[-1][1].append(chars[k])
            else:
                runs.append((owner[k], [chars[k]]))
    if "".join(ch for _, text in runs for ch in text) != doc.text(field):
        raise DocumentError(f"The history of the {field} holds operations blame cannot replay.")
    return [Passage("".join(text), changes[n][1], changes[n][0]) for n, text in runs]


def _windows(touched: list[int], visible: bytearray, chars: list[str]) -> list[tuple[int, int]]:
    """The stretches ``(first, last)`` of the element sequence one change rewrote: runs of the
    elements it touched (``touched``, sorted) with the rest of the words they sit in or next
    to, so that a word edited mid-word is compared whole."""
    out = []
    x = 0
    while x < len(touched):
        lo = hi = touched[x]
        kind = None
        k = visible.rfind(1, 0, lo)
        while k >= 0 and kind in (None, chars[k].isspace()):
            kind, lo = chars[k].isspace(), k
            k = visible.rfind(1, 0, k)
        kind = None
        k = visible.find(1, hi + 1)  # found once per step past it: an initial chunk is 16,000 touched elements
        while True:
            if x + 1 < len(touched) and (k < 0 or touched[x + 1] <= k):
                x += 1
                hi, kind = touched[x], None
            elif k >= 0 and kind in (None, chars[k].isspace()):
                kind, hi = chars[k].isspace(), k
            else:
                break
            if hi == k:
                k = visible.find(1, hi + 1)
        out.append((lo, hi))
        x += 1
    return out


def _words(elements: list[int], chars: list[str]) -> list[list[int]]:
    """Elements grouped as the word tokens their characters form (runs of space or non-space)."""
    words: list[list[int]] = []
    for k in elements:
        if words and chars[k].isspace() == chars[words[-1][-1]].isspace():
            words[-1].append(k)
        else:
            words.append([k])
    return words


_HEAD = -1  # the key of an element inserted at the start of a sequence


def _text_history(doc: ProposalDocument, field: str):
    """Every element the field's text ever held, in the document's final order: its character
    ("" for a mark's boundary), the change that inserted it and the first that deleted it (None
    if none), as indices into ``[(hash, actor)]`` of the changes in causal order.

    Automerge's order: an element follows the element it was inserted after, and elements
    inserted after the same one are ordered newest first (by op id: counter, then actor)."""
    counter, actor = _object_id(doc._obj(field))
    changes = doc.all_changes()
    try:
        chunks = [_change_ops(c.bytes) for c in changes]
    except (ValueError, IndexError, zlib.error):
        raise DocumentError(f"The history of the {field} holds a change blame cannot read.") from None
    ranks = {a: r for r, a in enumerate(sorted({a for _, table, _ in chunks for a in table}))}
    width = len(ranks)
    parent: dict[int, int] = {}
    char: dict[int, str] = {}
    born: dict[int, int] = {}
    died: dict[int, int] = {}
    for n, (start, table, ops) in enumerate(chunks):
        if actor not in table:
            continue
        me, own = table.index(actor), ranks[table[0]]
        for i, (obj_actor, obj_ctr, key_actor, key_ctr, insert, action, value) in enumerate(ops):
            if obj_ctr != counter or obj_actor != me:
                continue
            key = key_ctr * width + ranks[table[key_actor]] if key_ctr else _HEAD
            if insert:
                element = (start + i) * width + own
                parent[element] = key
                char[element] = value if action == 1 and isinstance(value, str) else ""
                born[element] = n
            elif action == 3:
                died.setdefault(key, n)
    children: dict[int, list[int]] = {}
    for element, key in parent.items():
        children.setdefault(key, []).append(element)
    order: list[int] = []
    stack = sorted(children.get(_HEAD, ()))
    while stack:
        element = stack.pop()
        order.append(element)
        stack += sorted(children.get(element, ()))
    return ([(c.hash, table[0]) for c, (_, table, _) in zip(changes, chunks)], [char[e] for e in order],
            [born[e] for e in order], [died.get(e) for e in order])


def _object_id(exid: bytes) -> tuple[int, bytes]:
    """(counter, actor) of an object id as the binding serialises it: a tag byte, the actor
    (uLEB128 length, then bytes), the actor's index in the document, then the counter."""
    size, p = _uleb(exid, 1)
    actor = exid[p : p + size]
    _, p = _uleb(exid, p + size)
    return _uleb(exid, p)[0], actor


def _change_ops(chunk: bytes):
    """(counter of the first op, actor table, ops) of an uncompressed change chunk (Automerge
    binary format, "change chunk"): the table starts with the change's actor, and each op is
    ``(object actor, object counter, key actor, key counter, insert, action, value)`` with actors
    as indices into the table (None and 0 for the root object and for a sequence's head)."""
    _, p = _uleb(chunk, 9)  # magic, checksum and chunk type, then the length
    deps, p = _uleb(chunk, p)
    size, p = _uleb(chunk, p + 32 * deps)
    table = [chunk[p : p + size]]
    _, p = _uleb(chunk, p + size)  # seq
    start, p = _uleb(chunk, p)
    _, p = _sleb(chunk, p)  # time
    size, p = _uleb(chunk, p)
    count, p = _uleb(chunk, p + size)  # after the message: the other actors
    for _ in range(count):
        size, p = _uleb(chunk, p)
        table.append(chunk[p : p + size])
        p += size
    count, p = _uleb(chunk, p)
    specs = []
    for _ in range(count):
        spec, p = _uleb(chunk, p)
        size, p = _uleb(chunk, p)
        specs.append((spec, size))
    columns = {}
    for spec, size in specs:
        columns[spec & ~8] = zlib.decompress(chunk[p : p + size], -15) if spec & 8 else chunk[p : p + size]
        p += size
    actions = _runs(columns.get(0x42, b""), _uleb)
    values, raw, at = [], columns.get(0x57, b""), 0
    for meta in _runs(columns.get(0x56, b""), _uleb):
        size = (meta or 0) >> 4
        values.append(raw[at : at + size].decode() if meta is not None and meta & 15 == 6 else None)
        at += size

    def column(decoded):
        return decoded + [None] * (len(actions) - len(decoded))

    return start, table, list(zip(
        column(_runs(columns.get(0x01, b""), _uleb)), column(_runs(columns.get(0x02, b""), _uleb)),
        column(_runs(columns.get(0x11, b""), _uleb)), column(_deltas(columns.get(0x13, b""))),
        column(_booleans(columns.get(0x34, b""))), actions, column(values)))


def _runs(data: bytes, read) -> list:
    """A run-length encoded column: a signed count, then one value repeated (count > 0), -count
    literal values (count < 0), or a count of nulls (count = 0)."""
    out: list = []
    p = 0
    while p < len(data):
        count, p = _sleb(data, p)
        if count > 0:
            value, p = read(data, p)
            out += [value] * count
        elif count < 0:
            for _ in range(-count):
                value, p = read(data, p)
                out.append(value)
        else:
            nulls, p = _uleb(data, p)
            out += [None] * nulls
    return out


def _deltas(data: bytes) -> list:
    out: list = []
    total = 0
    for step in _runs(data, _sleb):
        if step is not None:
            total += step
        out.append(None if step is None else total)
    return out


def _booleans(data: bytes) -> list[bool]:
    """Alternating run lengths, starting with false."""
    out: list[bool] = []
    p, value = 0, False
    while p < len(data):
        count, p = _uleb(data, p)
        out += [value] * count
        value = not value
    return out


def _uleb(data: bytes, p: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[p]
        p += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, p


def _sleb(data: bytes, p: int) -> tuple[int, int]:
    value, p2 = _uleb(data, p)
    bits = 7 * (p2 - p)
    return (value - (1 << bits) if value >> (bits - 1) & 1 else value), p2


def touched(base: str, amended: str) -> list[tuple[int, int]]:
    """The ranges of ``base`` (character offsets) an amendment removes or writes next to,
    aligned word by word (a character alignment would split "dusk" -> "ten at night" around
    the letters the two happen to share)."""
    a, b = _tokens(base, "word"), _tokens(amended, "word")
    offsets = [0]
    for token in a:
        offsets.append(offsets[-1] + len(token))
    ranges = []
    for tag, i1, i2, _, _ in _blocks(opcodes(a, b), a):
        if tag != "equal":
            ranges.append((offsets[i1], max(offsets[i2], offsets[i1] + 1)))
    return ranges


def conflicts(base: str, amendments: dict[str, str]) -> list[tuple[str, str, str]]:
    """Pairs of adopted amendments that touch the same passage of the base text:
    ``[(name_a, name_b, passage)]``, for a report before merging."""
    spans = {name: touched(base, text) for name, text in amendments.items()}
    names = sorted(spans)
    found = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for a1, a2 in spans[a]:
                for b1, b2 in spans[b]:
                    if a1 < b2 and b1 < a2:
                        lo, hi = min(a1, b1), max(a2, b2)
                        found.append((a, b, base[lo:hi]))
    return found


def footer(revision, signers: list[str], beacon_round: int) -> str:
    """The line that names a revision wherever it is printed: its id, heads, round and signers."""
    revision = tuple(revision)
    return (f"Revision {revision_id(revision)} (heads {', '.join(h.hex()[:12] for h in sorted(revision))}), "
            f"as of beacon round {beacon_round}. Signed by: {', '.join(signers) if signers else 'nobody yet'}.")


def to_markdown(doc: ProposalDocument, revision, signers: list[str], beacon_round: int) -> str:
    """A revision as a Markdown file, with a footer naming the revision, its signers and the
    beacon round of its last change (the app's "export"; PDF comes from the desktop layer)."""
    revision = tuple(revision)
    title = doc.text("title", revision).strip() or "Untitled proposal"
    summary = doc.text("summary", revision).strip()
    body = doc.text("body", revision).rstrip()
    parts = [f"# {title}", ""]
    if summary:
        parts += [f"*{summary}*", ""]
    parts += [body, "", "---", "", footer(revision, signers, beacon_round), ""]
    return "\n".join(parts)
