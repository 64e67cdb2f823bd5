"""The live co-editor (desktop/app/coedit.py) over the real service, in one process: the person
types into a real QPlainTextEdit while a bot author edits the same text through its own
service; Hypothesis interleaves keystrokes, remote edits, signing and polling (polls also land
while the person has unsigned words: others' edits are merged around them)."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

pytest.importorskip("pytestqt")

from consensus.replica import Replica  # noqa: E402
from p2p.logfile import item_round  # noqa: E402
from p2p.service import ActError, Service  # noqa: E402
from p2p.tools.bots import AssemblySim, Behaviour, load_template  # noqa: E402

ME = SigningKey(hashlib.sha256(b"klero-test/co-editor").digest())


def direct(service: Service):
    """The door's calling convention, answered at once by an in-process service."""

    def call(name, done, failed=None, **args):
        try:
            out = getattr(service, name)(**args)
        except ActError as exc:
            if failed is not None:
                failed(str(exc))
            return
        done(out)

    return call


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    spec = load_template("testnet")
    spec["parliament"]["deadline_rule"] = "declared"
    spec["parliament"]["cycle_rounds"] = 400
    spec["parliament"]["stages"][0]["work_rounds"] = 300  # room for one round per step
    path = tmp_path_factory.mktemp("coedit") / "long-drafting.json"
    path.write_text(json.dumps(spec))
    return str(path)


def drafting(template):
    """A replica at the start of a drafting window where the person sits on the committee of a
    bot's proposal; returns (replica, sim, person's service, author's service, proposal id)."""
    for n in range(20):
        sim = AssemblySim(template, reps=12, cycles=1, seed=1, people=(bytes(ME.verify_key),), start_round=20,
                          behaviour=Behaviour(0, 0, 0, 0), name=f"Co-editing {n}")
        items = list(sim.run())[1:]
        replica = Replica(sim.charter_wire)
        d = sim.legislature.draw_round(0)
        for k in range(1, d + 3):
            replica.add_round(sim.dev.sign(k))
        for item in items:
            if item[:1] != b"\x83" and item_round(item) <= d + 2:
                replica.add_item(item)
        person = Service(replica, ME)
        for draw in person.result().draws:
            if draw.stage == 1 and bytes(ME.verify_key) in draw.members:
                author = person.result().proposals[draw.proposal].author
                bot = next(b for b in sim.bots if b.public == author)
                if person._document(draw.proposal) is not None:
                    return replica, sim, person, Service(replica, bot.key), draw.proposal.hex()
    pytest.skip("no seed put the person on a drafting committee")


def next_round(replica, sim):
    n = max(replica.beacon) + 1
    replica.add_round(sim.dev.sign(n))


steps = st.lists(st.one_of(
    st.tuples(st.just("type"), st.floats(0, 1), st.sampled_from(["a", "é", "😀", " word", "\n", "e\u0301"])),
    st.tuples(st.just("remote"), st.floats(0, 1)),
    st.tuples(st.just("flush")),
    st.tuples(st.just("poll")),
), min_size=1, max_size=14)


@given(steps=steps)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_keystrokes_and_remote_edits_interleaved_converge_and_keep_the_cursor(qtbot, template, steps):
    from desktop.app.coedit import CoEditor, to_utf16, utf16_length

    replica, sim, person, author, pid = drafting(template)
    editor = CoEditor(direct(person), pid)
    qtbot.addWidget(editor)
    editor.poll_now()
    assert editor.loaded and editor.toPlainText() == person.text(pid)
    unique = iter(chr(0x4E00 + k) for k in range(1000))  # remote words nobody else types: unambiguous
    for step in steps:
        if step[0] == "type":
            # a place a person's cursor can be: between code points, never inside a surrogate pair
            text = editor.toPlainText()
            cursor = editor.textCursor()
            cursor.setPosition(to_utf16(text, int(step[1] * len(text))))
            editor.setTextCursor(cursor)
            editor.insertPlainText(step[2])
            assert editor.dirty
        elif step[0] == "remote":
            text = author.text(pid)
            at = int(step[1] * len(text))
            word = next(unique)
            author.edit(pid, text[:at] + word + text[at:])
            next_round(replica, sim)
        elif step[0] == "flush":
            editor.flush_now()
            next_round(replica, sim)
        else:
            before_text = editor.toPlainText()
            cursor = editor.textCursor().position()
            left = before_text[:cursor] if utf16_length(before_text) == len(before_text) else None
            editor.poll_now()
            after = editor.toPlainText()
            if after != before_text:
                assert not editor.document().isUndoAvailable(), "another's edit entered the undo history"
                if left is not None and utf16_length(after) == len(after):
                    # the text left of the cursor is the old text left of it, with others' words
                    # inserted into it: remove them and it is unchanged
                    kept = "".join(ch for ch in after[:editor.textCursor().position()] if not 0x4E00 <= ord(ch) < 0x4E00 + 1000)
                    assert kept == "".join(ch for ch in left if not 0x4E00 <= ord(ch) < 0x4E00 + 1000)
    editor.flush_now()
    next_round(replica, sim)
    editor.poll_now()
    assert not editor.dirty
    assert editor.toPlainText() == person.text(pid) == author.text(pid)
