"""Revisions of a proposal document: stable ids, diffs, blame and amendment conflicts.

The binding's own ``diff`` patches expose no fields (STACK.md), so texts are compared at word
or line level with rapidfuzz's longest-common-subsequence opcodes.  Blame replays the document's changes in causal order and
attributes each inserted character to the change's actor (its author's public key).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .document import ProposalDocument

_WORDS = re.compile(r"\s+|[^\s]+")


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
    lo = 0
    while lo < n and lo < m and a[lo] == b[lo]:
        lo += 1
    hi = 0
    while hi < n - lo and hi < m - lo and a[n - 1 - hi] == b[m - 1 - hi]:
        hi += 1
    out = [("equal", 0, lo, 0, lo)] if lo else []
    if lo < n - hi or lo < m - hi:
        for op in Indel.opcodes(a[lo : n - hi], b[lo : m - hi]):
            out.append((op.tag, op.src_start + lo, op.src_end + lo, op.dest_start + lo, op.dest_end + lo))
    if hi:
        out.append(("equal", n - hi, n, m - hi, m))
    return out


def diff_texts(before: str, after: str, level: str = "word") -> list[tuple[str, str]]:
    """``[(op, text)]`` with op ``=`` (kept), ``-`` (removed) or ``+`` (added).

    A word diff first aligns lines, then words only inside the blocks of lines that changed (as
    ``git diff --word-diff`` does): unchanged lines anchor the alignment, so the cost follows
    the size of the changes, not of the bill."""
    out: list[tuple[str, str]] = []

    def emit(op: str, text: str) -> None:
        if text:
            if out and out[-1][0] == op:
                out[-1] = (op, out[-1][1] + text)
            else:
                out.append((op, text))

    def run(a: list[str], b: list[str], inner) -> None:
        for tag, i1, i2, j1, j2 in _blocks(opcodes(a, b)):
            if tag == "equal":
                emit("=", "".join(a[i1:i2]))
            elif inner is not None and i2 > i1 and j2 > j1:
                inner("".join(a[i1:i2]), "".join(b[j1:j2]))
            else:
                emit("-", "".join(a[i1:i2]))
                emit("+", "".join(b[j1:j2]))

    lines_a, lines_b = _tokens(before, "line"), _tokens(after, "line")
    if level == "line":
        run(lines_a, lines_b, None)
    else:
        run(lines_a, lines_b, lambda x, y: run(_tokens(x, level), _tokens(y, level), None))
    return _pair_replacements(out)


def _blocks(ops):
    """Consecutive non-equal opcodes merged into one changed block."""
    out = []
    for tag, i1, i2, j1, j2 in ops:
        if tag != "equal" and out and out[-1][0] != "equal":
            out[-1] = ("replace", out[-1][1], i2, out[-1][3], j2)
        else:
            out.append((tag, i1, i2, j1, j2))
    return out


def _pair_replacements(ops: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Put each removal before the addition that replaces it (``- old`` then ``+ new``)."""
    out: list[tuple[str, str]] = []
    for op, text in ops:
        if op == "-" and out and out[-1][0] == "+" and (len(out) < 2 or out[-2][0] != "-"):
            out.insert(len(out) - 1, (op, text))
        else:
            out.append((op, text))
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
    """Who wrote each passage of the field's current text (consecutive characters by one change
    are one passage)."""
    history = doc.history()
    seen: set[bytes] = set()
    deps_of = {h: deps for h, _, deps in history}
    attribution: list[tuple[bytes, bytes]] = []  # per character: (author, change)
    before = ""
    for h, actor, _ in history:
        seen.add(h)
        referenced = {d for x in seen for d in deps_of[x]}
        heads = tuple(sorted(seen - referenced))
        after = doc.text(field, heads)
        merged: list[tuple[bytes, bytes]] = []
        for tag, i1, i2, j1, j2 in opcodes(before, after):
            if tag == "equal":
                merged.extend(attribution[i1:i2])
            elif j2 > j1:
                merged.extend([(actor, h)] * (j2 - j1))
        attribution, before = merged, after
    passages: list[Passage] = []
    for ch, (author, change) in zip(before, attribution):
        if passages and passages[-1].change == change:
            last = passages[-1]
            passages[-1] = Passage(last.text + ch, author, change)
        else:
            passages.append(Passage(ch, author, change))
    return passages


def touched(base: str, amended: str) -> list[tuple[int, int]]:
    """The ranges of ``base`` (character offsets) an amendment removes or writes next to,
    aligned word by word (a character alignment would split "dusk" -> "ten at night" around
    the letters the two happen to share)."""
    a, b = _tokens(base, "word"), _tokens(amended, "word")
    offsets = [0]
    for token in a:
        offsets.append(offsets[-1] + len(token))
    ranges = []
    for tag, i1, i2, _, _ in _blocks(opcodes(a, b)):
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
