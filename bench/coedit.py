"""A bill co-edited by its drafting committee (issue 6): 7 members x 2,000 edits on a real,
public-domain law of about 300,000 characters (``resources/corpus``).

Usage: python bench/coedit.py [--members 7] [--edits 2000] [--sync-every 50] [--chars 300000]

Each member edits a random passage (types or deletes a few words, one signed change per edit,
as the editor makes one change per pause of typing) and merges the others' changes every
``--sync-every`` of its own edits.  A separate reader, as the desktop app would, applies every
remote change one at a time the moment it arrives.  Reported:

* apply: time to apply one remote change on the reader (p50, p99, max): the 16 ms frame budget;
* merge: loading every change of all members into a new document;
* read: the text of a random old revision (p50, p99);
* diff: a word diff between the first and the final revision;
* saved size, and the peak RSS of this process.

Baseline for ratios: one Ed25519 verification (PyNaCl) measured in the same process.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def corpus(chars: int) -> tuple[str, str]:
    files = sorted((ROOT / "resources" / "corpus").glob("*.md"))
    files = [f for f in files if f.name != "README.md"]
    if not files:
        sys.exit("No corpus in resources/corpus: the bench needs a real law's text.")
    text = files[0].read_text(encoding="utf-8")
    return files[0].name, text[:chars]


def verify_baseline(n: int = 2000) -> float:
    from nacl.signing import SigningKey

    key = SigningKey(b"k" * 32)
    signed = key.sign(b"x" * 200)
    verify = key.verify_key.verify
    t = time.perf_counter()
    for _ in range(n):
        verify(signed)
    return (time.perf_counter() - t) / n


WORDS = "the council shall may not publish within days notice of each every public hearing".split()


def one_edit(rng: random.Random, length: int) -> tuple[int, int, str]:
    """Type a few words, delete a few characters, or replace them: somewhere in the text."""
    pos = rng.randrange(length + 1)
    roll = rng.random()
    if roll < 0.5 or length < 20:
        return pos, 0, " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))) + " "
    cut = min(rng.randint(1, 12), length - pos)
    return pos, cut, "" if roll < 0.75 else rng.choice(WORDS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=7)
    ap.add_argument("--edits", type=int, default=2000)
    ap.add_argument("--sync-every", type=int, default=50)
    ap.add_argument("--chars", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    from crdt import ProposalDocument
    from crdt.revisions import diff

    rng = random.Random(args.seed)
    name, body = corpus(args.chars)
    base = verify_baseline()
    keys = [bytes([i + 1]) * 32 for i in range(args.members)]
    t = time.perf_counter()
    author, _ = ProposalDocument.create(keys[0], name, "Benchmark corpus", body)
    initial = [c.bytes for c in author.all_changes()]
    create_s = time.perf_counter() - t
    members = [author] + [ProposalDocument.from_changes(initial, actor=k)[0] for k in keys[1:]]
    reader, _ = ProposalDocument.from_changes(initial, actor=b"\xff" * 32)
    outbox: list[list[bytes]] = [[] for _ in members]  # changes each member made since its last sync
    log: list[bytes] = list(initial)
    revisions = [reader.heads()]
    apply_times: list[float] = []
    sync_times: list[float] = []
    edit_times: list[float] = []
    total = args.members * args.edits
    order = [m for m in range(args.members) for _ in range(args.edits)]
    rng.shuffle(order)
    made = [0] * args.members
    next_report = time.perf_counter() + 10
    for step, m in enumerate(order, 1):
        doc = members[m]
        t = time.perf_counter()
        change = doc.edit("body", [one_edit(rng, doc.length("body"))])
        edit_times.append(time.perf_counter() - t)
        outbox[m].append(change.bytes)
        log.append(change.bytes)
        t = time.perf_counter()  # the reader applies each change as it arrives
        left = reader.apply([change.bytes])
        apply_times.append(time.perf_counter() - t)
        assert not left, "a member's change depends only on changes the reader holds"
        if step % 500 == 0:
            revisions.append(reader.heads())
        made[m] += 1
        if made[m] % args.sync_every == 0:  # this member merges everything the others sent
            t = time.perf_counter()
            theirs = [c for o, box in enumerate(outbox) if o != m for c in box]
            doc.apply(theirs)
            sync_times.append(time.perf_counter() - t)
        if time.perf_counter() > next_report:
            print(f"  ... {step} of {total} edits", file=sys.stderr, flush=True)
            next_report = time.perf_counter() + 10
    print("  merging every change into a new document ...", file=sys.stderr, flush=True)
    t = time.perf_counter()
    merged, waiting = ProposalDocument.from_changes(log)
    merge_s = time.perf_counter() - t
    assert not waiting and merged.heads() == reader.heads()
    print("  every member applies what it lacks ...", file=sys.stderr, flush=True)
    for doc in members:  # everyone converges on the reader's text
        doc.apply(log)
    assert all(doc.text("body") == reader.text("body") for doc in members)
    reads = []
    for rev in rng.sample(revisions, min(20, len(revisions))):
        t = time.perf_counter()
        reader.text("body", rev)
        reads.append(time.perf_counter() - t)
    print("  reading old revisions and diffing the first against the last ...", file=sys.stderr, flush=True)
    t = time.perf_counter()
    runs = diff(reader, "body", revisions[0], reader.heads())
    diff_s = time.perf_counter() - t
    saved = len(reader.doc.save())
    apply_times.sort()
    reads.sort()

    def q(xs, p):
        return xs[min(len(xs) - 1, int(p * len(xs)))]

    ms = 1000
    print(f"corpus: {name}, {len(body):,} characters; {args.members} members x {args.edits} edits, sync every {args.sync_every}")
    print(f"baseline_ed25519_verify_us: {base * 1e6:.0f}")
    print(f"create_s: {create_s:.1f}")
    print(f"edit_local_ms: p50 {statistics.median(edit_times) * ms:.2f}")
    print(f"apply_remote_change_ms: p50 {q(apply_times, .5) * ms:.2f}, p99 {q(apply_times, .99) * ms:.2f}, "
          f"max {apply_times[-1] * ms:.1f} (p50 = {q(apply_times, .5) / base:.1f} verifications; frame budget 16 ms)")
    print(f"member_sync_ms: p50 {statistics.median(sync_times) * ms:.0f} ({args.sync_every * (args.members - 1)} changes each)")
    print(f"merge_all_s: {merge_s:.2f} ({len(log)} changes)")
    print(f"read_old_revision_ms: p50 {q(reads, .5) * ms:.1f}, p99 {q(reads, .99) * ms:.1f}")
    print(f"word_diff_first_to_last_ms: {diff_s * ms:.0f} ({len(runs)} runs)")
    print(f"saved_kib: {saved / 1024:.0f} (text {len(reader.text('body').encode()) / 1024:.0f} KiB)")
    print(f"peak_rss_mib: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


if __name__ == "__main__":
    main()
