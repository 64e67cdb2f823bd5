"""Proposal documents at bill scale (issue 6, first measurements).

Usage: python bench/documents.py [--chars 300000] [--edits 200]

Builds a document of ``--chars`` characters (generated legislative-style prose), then measures
the time to create it, to apply one typical remote change (a one-word edit by another member)
with ``ProposalDocument.apply``, to read an old revision, to diff two revisions at word level,
and the saved size.  Then two members co-edit it, ``--edits`` one-word changes in turn, and
blame is measured on that history, as a ratio to reading the text once in the same process:
blame replays the history once, so the ratio should follow the text, not the number of
changes (reading the text at every change cost 140 ms a change on a 490,000-character bill).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=300_000)
    ap.add_argument("--edits", type=int, default=200)
    args = ap.parse_args()
    from crdt import ProposalDocument
    from crdt.revisions import blame, diff

    sentence = "Section {n}. The council shall publish every decision within seven days of its adoption. "
    text, n = [], 0
    while sum(map(len, text)) < args.chars:
        n += 1
        text.append(sentence.format(n=n))
    body = "".join(text)[: args.chars]
    t = time.perf_counter()
    doc, first = ProposalDocument.create(b"A" * 32, "A long bill", "", body)
    create = time.perf_counter() - t
    initial = doc.all_changes()
    other, _ = ProposalDocument.from_changes([c.bytes for c in initial], actor=b"B" * 32)
    remote = other.edit("body", [(len(body) // 2, 0, "promptly ")])
    t = time.perf_counter()
    doc.apply([remote.bytes])
    apply_s = time.perf_counter() - t
    t = time.perf_counter()
    doc.text("body", (initial[0].hash,))
    old = time.perf_counter() - t
    t = time.perf_counter()
    d = diff(doc, "body", (first.hash,), doc.heads())  # the full initial text against the edited one
    diff_s = time.perf_counter() - t
    saved = len(doc.doc.save())
    print(f"chars: {len(body)}")
    print(f"create_s: {create:.2f}")
    print(f"apply_one_remote_change_ms: {apply_s * 1000:.0f}")
    print(f"read_old_revision_ms: {old * 1000:.0f}")
    print(f"word_diff_ms: {diff_s * 1000:.0f} ({len(d)} runs)")
    print(f"saved_kib: {saved / 1024:.0f}")
    print(f"initial_changes: {len(initial)}, largest {max(len(c.bytes) for c in initial) / 1024:.0f} KiB")

    members = [other, ProposalDocument.from_changes([c.bytes for c in other.all_changes()], actor=b"C" * 32)[0]]
    text = other.text("body")
    starts = [i + 1 for i in range(len(text) - 1) if text[i] == " " and text[i + 1] != " "]
    step = max(1, len(starts) // (args.edits + 1))
    for k, at in enumerate(reversed(starts[step::step][: args.edits])):  # from the end: earlier positions stay put
        member = members[k % 2]
        change = member.edit("body", [(at, text.index(" ", at) - at, "promptly")])
        members[1 - k % 2].apply([change.bytes])
    history = members[0]
    read_s = best(lambda: history.text("body"))
    short_s = best(lambda: blame(doc, "body"))
    blame_s = best(lambda: blame(history, "body"))
    short, long = len(doc.history()), len(history.history())
    print(f"read_text_ms: {read_s * 1000:.1f} (baseline)")
    print(f"blame_{short}_changes_s: {short_s:.2f} ({short_s / read_s:.0f}x baseline)")
    print(f"blame_{long}_changes_s: {blame_s:.2f} ({blame_s / read_s:.0f}x baseline; "
          f"{long / short:.0f}x the changes, {blame_s / short_s:.2f}x the time)")


def best(run, times: int = 3) -> float:
    """The fastest of a few runs, in seconds: the machine is shared."""
    spent = []
    for _ in range(times):
        t = time.perf_counter()
        run()
        spent.append(time.perf_counter() - t)
    return min(spent)

if __name__ == "__main__":
    main()
