"""Revisions of a proposal document: stable ids, diffs, blame and amendment conflicts.

The binding's own ``diff`` patches expose no fields (STACK.md), so texts are compared with
``difflib`` at word or line level.  Blame replays the document's changes in causal order and
attributes each inserted character to the change's actor (its author's public key).
"""

from __future__ import annotations

import difflib
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
    """difflib's opcodes, after trimming the common prefix and suffix.  Revisions of a bill differ
    in a few places; without the trim, SequenceMatcher spends minutes on a 300,000-character text
    (measured: 477 s for one word diff), with it milliseconds."""
    n, m = len(a), len(b)
    lo = 0
    while lo < n and lo < m and a[lo] == b[lo]:
        lo += 1
    hi = 0
    while hi < n - lo and hi < m - lo and a[n - 1 - hi] == b[m - 1 - hi]:
        hi += 1
    out = [("equal", 0, lo, 0, lo)] if lo else []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a[lo : n - hi], b[lo : m - hi], autojunk=False).get_opcodes():
        out.append((tag, i1 + lo, i2 + lo, j1 + lo, j2 + lo))
    if hi:
        out.append(("equal", n - hi, n, m - hi, m))
    return out


def diff_texts(before: str, after: str, level: str = "word") -> list[tuple[str, str]]:
    """``[(op, text)]`` with op ``=`` (kept), ``-`` (removed) or ``+`` (added)."""
    a, b = _tokens(before, level), _tokens(after, level)
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in opcodes(a, b):
        if tag == "equal":
            out.append(("=", "".join(a[i1:i2])))
        else:
            if i2 > i1:
                out.append(("-", "".join(a[i1:i2])))
            if j2 > j1:
                out.append(("+", "".join(b[j1:j2])))
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
    """The ranges of ``base`` (character offsets) an amendment removes or writes next to."""
    ranges = []
    for tag, i1, i2, _, _ in opcodes(base, amended):
        if tag != "equal":
            ranges.append((i1, max(i2, i1 + 1)))
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
