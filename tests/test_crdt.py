"""Proposal documents (issue 6, first part): signed Automerge changes, any order, any revision."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import Replica
from consensus.changes import read_change
from consensus.errors import InvalidInput
from consensus.events import sign_event
from crdt import DocumentError, ProposalDocument
from p2p.tools.simulate import Simulation

A, B, C = b"A" * 32, b"B" * 32, b"C" * 32


def co_edit():
    doc, first = ProposalDocument.create(A, "Open the library", "On Sundays too", "The library opens on Sundays.")
    b, _ = ProposalDocument.from_changes([first.bytes], actor=B)
    c, _ = ProposalDocument.from_changes([first.bytes], actor=C)
    changes = [first]
    changes.append(doc.edit("body", [(4, 7, "city library")]))
    changes.append(b.edit("body", [(28, 1, ", 10 to 4 ✓.")]))
    changes.append(c.edit("title", [(0, 4, "Keep")]))
    changes.append(doc.edit("summary", [(0, 0, "Also ")]))
    return changes


def test_concurrent_edits_merge_into_one_text_in_any_order():
    changes = co_edit()
    results = set()
    for seed in range(12):
        order = [c.bytes for c in changes]
        random.Random(seed).shuffle(order)
        doc, waiting = ProposalDocument.from_changes(order + order[:2])  # duplicates too
        assert not waiting
        results.add((doc.text("title"), doc.text("summary"), doc.text("body"), doc.heads()))
    assert len(results) == 1
    title, summary, body, heads = results.pop()
    assert (title, summary, body) == ("Keep the library", "Also On Sundays too", "The city library opens on Sundays, 10 to 4 ✓.")
    assert len(heads) == 3  # three concurrent branches


def test_every_revision_can_be_read_and_every_change_has_its_signer():
    changes = co_edit()
    doc, _ = ProposalDocument.from_changes([c.bytes for c in changes])
    assert doc.text("body", (changes[0].hash,)) == "The library opens on Sundays."
    assert doc.text("body", (changes[1].hash,)) == "The city library opens on Sundays."
    actors = {actor for _, actor, _ in doc.history()}
    assert actors == {A, B, C}


def test_a_change_waits_for_its_dependencies():
    changes = co_edit()
    doc, waiting = ProposalDocument.from_changes([changes[0].bytes, changes[4].bytes])
    assert waiting == [changes[4].bytes]  # it depends on changes[1], which is missing
    assert doc.apply([changes[1].bytes, changes[4].bytes]) == []
    assert doc.text("summary") == "Also On Sundays too"


def test_edits_outside_the_text_are_refused_and_change_nothing():
    doc, _ = ProposalDocument.create(A, "T", "", "short")
    before = doc.heads()
    with pytest.raises(DocumentError, match="outside"):
        doc.edit("body", [(3, 10, "x")])
    with pytest.raises(DocumentError, match="no field"):
        doc.edit("preamble", [(0, 0, "x")])
    assert doc.edit("body", []) is None and doc.heads() == before


def test_the_core_reads_hash_deps_and_actor_from_the_bytes():
    changes = co_edit()
    for change in changes:
        header = read_change(change.bytes)
        assert header.hash == change.hash and tuple(sorted(header.deps)) == change.deps
    assert read_change(changes[2].bytes).actor == B


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_not_a_change(data):
    try:
        read_change(data)
    except InvalidInput as exc:
        assert exc.rejection.code == "bad_change"


def test_signed_doc_change_events_are_checked_against_their_bytes():
    sim = Simulation(seed=3, reps=3)
    rep = sim.rep_authors[0]
    r = Replica(sim.charter_wire)
    doc, first = ProposalDocument.create(rep.public, "T", "", "text")
    pid = bytes(32)

    def event(seq, body):
        return sign_event(rep.key, assembly=sim.assembly, seq=seq, prev=None if seq == 1 else prev[0], kind="doc.change", body=body)

    prev = [None]
    good = event(1, first.body(pid))
    assert r.add(good).status == "applied"
    from consensus.events import event_id

    prev[0] = event_id(good)
    edit = doc.edit("body", [(0, 0, "More ")])
    lying_hash = {**edit.body(pid), "hash": bytes(32)}
    lying_deps = {**edit.body(pid), "deps": []}
    flipped = {**edit.body(pid), "change": edit.bytes[:-1] + bytes([edit.bytes[-1] ^ 1])}
    for body, code in ((lying_hash, "bad_change"), (lying_deps, "bad_change"), (flipped, "bad_change")):
        out = r.add(event(2, body))
        assert out.status == "rejected" and out.rejection.code == code, out
    # a change whose actor is somebody else, signed by this representative
    other, theirs = ProposalDocument.create(sim.rep_authors[1].public, "T", "", "x")
    out = r.add(event(2, theirs.body(pid)))
    assert out.rejection.code == "bad_change" and "actor" in out.rejection.reason
    assert r.add(event(2, edit.body(pid))).status == "applied"


def test_diff_between_revisions_at_word_and_line_level():
    from crdt.revisions import diff, diff_texts, revision_id

    changes = co_edit()
    doc, _ = ProposalDocument.from_changes([c.bytes for c in changes])
    words = diff(doc, "body", (changes[0].hash,), doc.heads(), "word")
    assert any(op == "+" and "city" in t for op, t in words)
    assert "".join(t for op, t in words if op != "+") == "The library opens on Sundays."
    assert "".join(t for op, t in words if op != "-") == doc.text("body")
    lines = diff_texts("one\ntwo\nthree\n", "one\n2\nthree\n", "line")
    assert lines == [("=", "one\n"), ("-", "two\n"), ("+", "2\n"), ("=", "three\n")]
    assert revision_id(doc.heads()) == revision_id(list(reversed(doc.heads())))


def test_blame_names_who_wrote_each_passage():
    from crdt.revisions import blame

    changes = co_edit()
    doc, _ = ProposalDocument.from_changes([c.bytes for c in changes])
    passages = blame(doc, "body")
    assert "".join(p.text for p in passages) == doc.text("body")
    by_author = {}
    for p in passages:
        by_author.setdefault(p.author, "")
        by_author[p.author] += p.text
    assert "city library" in by_author[A] and "10 to 4" in by_author[B]


def test_adopted_amendments_touching_one_passage_are_reported():
    from crdt.revisions import conflicts

    base = "Parks close at dusk. Dogs must be leashed. Fees are waived on Sundays."
    amendments = {
        "a": base.replace("dusk", "ten at night"),
        "b": base.replace("close at dusk", "stay open all night"),
        "c": base.replace("Fees are waived", "Entry is free"),
    }
    found = conflicts(base, amendments)
    assert [(a, b) for a, b, _ in found] == [("a", "b")]
    assert "dusk" in found[0][2]


def test_remote_changes_arrive_as_splices_that_keep_the_local_cursor():
    from crdt import move_cursor

    mine, first = ProposalDocument.create(A, "T", "", "The library opens on Sundays.")
    theirs, _ = ProposalDocument.from_changes([first.bytes], actor=B)
    remote = theirs.edit("body", [(0, 3, "Our"), (len("Our library opens on "), 7, "weekends")])
    cursor = mine.text("body").index("opens")  # the local user's cursor before "opens"
    splices, waiting = mine.receive([remote.bytes], "body")
    assert not waiting
    text = "The library opens on Sundays."
    for pos, deleted, inserted in splices:  # the editor applies the splices to its widget
        text = text[:pos] + inserted + text[pos + deleted:]
    assert text == mine.text("body") == "Our library opens on weekends."
    assert mine.text("body")[move_cursor(cursor, splices):].startswith("opens")
    assert move_cursor(5, [(2, 6, "xy")]) == 4  # inside a replaced passage: after the replacement
    assert move_cursor(1, [(3, 0, "abc")]) == 1  # after the cursor: no move


def test_markdown_export_of_any_revision_names_it_in_the_footer():
    from crdt import revision_id, to_markdown

    changes = co_edit()
    doc, _ = ProposalDocument.from_changes([c.bytes for c in changes])
    old = (changes[0].hash,)
    text = to_markdown(doc, old, ["Ada (a1b2…)", "Ben (c3d4…)"], 1234)
    assert text.startswith("# Open the library") and "The library opens on Sundays." in text
    assert "city library" not in text  # the old revision, not the current one
    assert revision_id(old) in text and "beacon round 1234" in text and "Ada" in text


def test_amendments_are_forks_whose_adopted_changes_merge_into_the_base():
    from crdt.revisions import conflicts, diff

    base_doc, first = ProposalDocument.create(A, "Parks", "", "Parks close at dusk. Dogs must be leashed.")
    base = base_doc.heads()
    one = base_doc.fork(base, B)
    c1 = one.edit("body", [(len("Parks close at "), 4, "ten at night")])
    two = base_doc.fork(base, C)
    c2 = two.edit("body", [(len("Parks close at dusk. "), 0, "Bikes are welcome. ")])
    assert c1.deps == base and c2.deps == base  # each amendment depends on the base revision only
    assert any(op == "+" and "ten at night" in t for op, t in diff(one, "body", base, one.heads()))
    assert conflicts(base_doc.text("body"), {"one": one.text("body"), "two": two.text("body")}) == []
    assert base_doc.apply([c1.bytes, c2.bytes]) == []
    assert base_doc.text("body") == "Parks close at ten at night. Bikes are welcome. Dogs must be leashed."
    assert base_doc.heads() == tuple(sorted((c1.hash, c2.hash)))  # the merged revision: the union of the forks' heads


def test_a_long_initial_text_is_split_into_changes_that_fit_in_events():
    from consensus.charter import Limits

    body = "Section 1. The council shall publish its decisions. " * 800  # about 42,000 characters
    doc, last = ProposalDocument.create(A, "A long bill", "", body)
    changes = doc.all_changes()
    assert len(changes) == 3 and changes[-1] == last
    assert all(len(c.bytes) < Limits().max_event_bytes for c in changes)
    again, waiting = ProposalDocument.from_changes([c.bytes for c in reversed(changes)])
    assert not waiting and again.text("body") == body


# ---- incremental apply, anchored comments, metadata


def edit_session(seed: int, n: int = 30):
    """Three members editing concurrently, syncing now and then: the changes, in order made."""
    rng = random.Random(seed)
    doc, _ = ProposalDocument.create(A, "Parks", "", "Parks close at dusk. Dogs must be leashed.")
    made = [c.bytes for c in doc.all_changes()]
    members = [doc] + [ProposalDocument.from_changes(made, actor=k)[0] for k in (B, C)]
    for _ in range(n):
        m = rng.choice(members)
        text = m.text("body")
        pos = rng.randrange(len(text) + 1)
        cut = rng.randrange(min(5, len(text) - pos) + 1)
        made.append(m.edit("body", [(pos, cut, rng.choice(["the ", "é", "", "council ", "🙂"]) or "x")]).bytes)
        if rng.random() < 0.3:
            other = rng.choice(members)
            other.apply(made)
    return made


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.randoms(use_true_random=False), st.integers(1, 6))
def test_incremental_apply_in_any_batches_equals_loading_everything(seed, rng, batches):
    made = edit_session(seed)
    whole, waiting = ProposalDocument.from_changes(made)
    assert not waiting
    shuffled = made[:]
    rng.shuffle(shuffled)
    doc, waiting = ProposalDocument.from_changes(made[:1])
    held = waiting
    for i in range(batches):
        part = shuffled[i::batches]
        held = doc.apply(held + part)
    held = doc.apply(held)
    assert held == []
    assert doc.heads() == whole.heads() and doc.text("body") == whole.text("body")
    # and it saves to the same document another node would load
    assert ProposalDocument.from_changes([c.bytes for c in doc.all_changes()])[0].text("body") == whole.text("body")


def test_a_corrupt_change_leaves_the_document_readable():
    doc, _ = ProposalDocument.create(A, "T", "", "Some text here.")
    other, _ = ProposalDocument.from_changes([c.bytes for c in doc.all_changes()], actor=B)
    good = other.edit("body", [(0, 0, "Really, ")])
    text, heads = doc.text("body"), doc.heads()
    for bad in (good.bytes[:-3], good.bytes[:8] + bytes(len(good.bytes) - 8), b"\x85o\x4a\x83" + bytes(40)):
        left = doc.apply([bad])
        assert left in ([], [bad])
        assert doc.text("body") == text and doc.heads() == heads
    assert doc.apply([good.bytes]) == [] and doc.text("body") == "Really, Some text here."


def test_anchored_comments_follow_their_passage_and_say_when_it_changed():
    doc, _ = ProposalDocument.create(A, "Parks", "", "Parks close at dusk. Dogs must be leashed. Bikes are welcome.", proposal=b"P" * 32)
    dusk, dogs, bikes = b"1" * 32, b"2" * 32, b"3" * 32
    anchored = [doc.anchor(dusk, "body", 0, 19), doc.anchor(dogs, "body", 21, 42), doc.anchor(bikes, "body", 43, 61)]
    assert all(a.deps for a in anchored)  # anchors are ordinary signed changes
    other, _ = ProposalDocument.from_changes([c.bytes for c in doc.all_changes()], actor=B)
    # concurrently: A inserts at the start, B rewrites "close" and deletes the dogs sentence
    doc.edit("body", [(0, 0, "New rule: ")])
    other.edit("body", [(21, 22, "")])
    other.edit("body", [(6, 5, "shut")])
    assert doc.apply([c.bytes for c in other.all_changes()]) == []
    text = doc.text("body")
    assert text == "New rule: Parks shut at dusk. Bikes are welcome."
    now = {a.comment: a for a in doc.anchors()}
    assert now[bikes].state == "intact" and text[slice(*now[bikes].span)] == "Bikes are welcome."
    assert now[dusk].state == "edited" and now[dusk].quote == "Parks close at dusk" and now[dusk].now == "Parks shut at dusk"
    assert "rewritten" in now[dusk].describe() and "'Parks close at dusk'" in now[dusk].describe()
    assert now[dogs].state == "deleted" and now[dogs].span is None and "deleted" in now[dogs].describe()
    # at the revision where it was anchored, every anchor was intact
    assert {a.state for a in doc.anchors(anchored[-1].deps + (anchored[-1].hash,))} == {"intact"}
    with pytest.raises(DocumentError, match="inside"):
        doc.anchor(b"4" * 32, "body", 5, 500)
    assert doc.metadata() == {"proposal": b"P" * 32, "authors": [A]}


def test_a_flood_of_document_changes_does_not_count_towards_the_text():
    from consensus.legislature import over_rate
    from consensus.replica import Record

    def rec(author, seq, rnd):
        return Record(bytes([seq]) * 32, author, seq, rnd, b"", "doc.change", None)

    records = [rec(A, s, 10) for s in range(1, 13)] + [rec(B, 20 + s, 10 + s) for s in range(12)]
    over = over_rate(records, 8)
    assert over == {bytes([s]) * 32 for s in range(9, 13)}  # A's 9th to 12th in round 10; B spread out


def test_keystrokes_become_one_change_per_pause_and_remote_changes_flush_first():
    from crdt import Editor

    doc, _ = ProposalDocument.create(A, "Parks", "", "Parks close at dusk.")
    other, _ = ProposalDocument.from_changes([c.bytes for c in doc.all_changes()], actor=B)
    editor = Editor(doc)
    heads = doc.heads()
    for i, ch in enumerate("late "):  # typing "late " before "dusk", a key every 0.2 s
        editor.splice("body", 15 + i, 0, ch, now=10.0 + 0.2 * i)
    editor.splice("title", 5, 0, "!", now=11.0)
    assert editor.text("body") == "Parks close at late dusk." and doc.heads() == heads  # nothing signed yet
    assert not editor.due(11.5) and editor.due(12.0)
    change = editor.flush()
    assert change is not None and doc.heads() == (change.hash,)  # six keystrokes, two fields: one change
    assert doc.text("body") == "Parks close at late dusk." and doc.text("title") == "Parks!"
    assert editor.flush() is None
    with pytest.raises(DocumentError, match="outside"):
        editor.splice("body", 99, 0, "x", now=13.0)
    # a remote change arrives while the user is typing: the batch is committed first
    remote = other.edit("body", [(0, 0, "All ")])
    editor.splice("body", len(editor.text("body")), 0, " Really.", now=20.0)
    mine, splices, waiting = editor.receive([remote.bytes], "body")
    assert mine is not None and not waiting and splices == [(0, 0, "All ")]
    assert editor.text("body") == "All Parks close at late dusk. Really."
