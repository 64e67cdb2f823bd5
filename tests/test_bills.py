"""Reading real bills: word diffs, blame and the PDF on a 490,000-character Act (resources/corpus)."""

from __future__ import annotations

import random
import re
import unicodedata
import zlib
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt import ProposalDocument
from crdt import revisions
from crdt.revisions import blame, diff_texts

A, B, C = b"A" * 32, b"B" * 32, b"C" * 32
BILL = (Path(__file__).resolve().parent.parent / "resources" / "corpus" / "wrrda-2014.md").read_text()


def changed_words(ops, op):
    return [w for o, text in ops if o == op for w in text.split()]


def split_next_to_a_change(text: str, paragraph: int) -> tuple[str, str, str]:
    """The text with one paragraph split in two after its first sentence and the second word of
    the next paragraph replaced; also that word."""
    paragraphs = text.split("\n\n")
    first = paragraphs[paragraph]
    cut = first.index(". ") + 1
    paragraphs[paragraph] = first[:cut] + "\n\n" + first[cut + 1 :]
    words = paragraphs[paragraph + 1].split(" ")
    old, words[1] = words[1], "CHANGED"
    paragraphs[paragraph + 1] = " ".join(words)
    return "\n\n".join(paragraphs), old, "CHANGED"


def test_splitting_a_paragraph_next_to_a_changed_line_flags_only_the_changed_word():
    """The line alignment anchored on the blank line after the first half and reported the
    second half's words (up to 547) as removed from one block and added to the next."""
    paragraphs = BILL.split("\n\n")
    splittable = [i for i, p in enumerate(paragraphs[:-1]) if ". " in p and len(paragraphs[i + 1].split()) > 3]
    goose_creek = next(i for i in splittable if paragraphs[i].startswith("(11) Goose creek"))
    for i in [goose_creek] + random.Random(6).sample(splittable, 12):
        after, old, new = split_next_to_a_change(BILL, i)
        ops = diff_texts(BILL, after)
        assert changed_words(ops, "-") == [old] and changed_words(ops, "+") == [new], paragraphs[i][:60]
        assert "".join(t for o, t in ops if o != "+") == BILL and "".join(t for o, t in ops if o != "-") == after


@settings(max_examples=150)
@given(st.lists(st.lists(st.sampled_from("the council shall publish each decision within seven days of adoption".split()),
                         min_size=4, max_size=12), min_size=3, max_size=8),
       st.data())
def test_a_split_paragraph_keeps_every_unchanged_word(paragraphs, data):
    i = data.draw(st.integers(0, len(paragraphs) - 2))
    cut = data.draw(st.integers(1, len(paragraphs[i]) - 1))
    j = data.draw(st.integers(0, len(paragraphs[i + 1]) - 1))
    before = "\n\n".join(" ".join(p) for p in paragraphs)
    new = [list(p) for p in paragraphs]
    new[i + 1][j] = "CHANGED"
    after = "\n\n".join([" ".join(p) for p in new[:i]] + [" ".join(new[i][:cut]), " ".join(new[i][cut:])]
                        + [" ".join(p) for p in new[i + 1 :]])
    ops = diff_texts(before, after)
    assert len(changed_words(ops, "-")) == 1 and changed_words(ops, "+") == ["CHANGED"]


def test_a_replaced_line_is_one_removal_and_one_addition():
    """Word pairs cut at every space took 54 runs for one 27-word line."""
    lines = BILL.split("\n")
    n = next(k for k, line in enumerate(lines) if line.startswith("“(6) Project sponsor.—"))
    replacement = " ".join(w.upper() + "Z" for w in lines[n].split())
    after = "\n".join(lines[:n] + [replacement] + lines[n + 1 :])
    assert diff_texts(BILL, after) == [("=", "\n".join(lines[:n]) + "\n"), ("-", lines[n]), ("+", replacement),
                                       ("=", "\n" + "\n".join(lines[n + 1 :]))]
    assert diff_texts("Fees apply.\nDogs must be leashed.\n", "Fees apply.\nCats may roam freely.\n") == [
        ("=", "Fees apply.\n"), ("-", "Dogs must be leashed."), ("+", "Cats may roam freely."), ("=", "\n")]


TOKENS = ["the", "council", "shall", " ", "  ", "\n", "\n\n", "7", "days.", "—"]
TEXTS = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


@settings(max_examples=300)
@given(TEXTS, TEXTS, st.sampled_from(["word", "line"]))
def test_a_diff_rebuilds_both_texts_and_puts_each_removal_before_its_addition(before, after, level):
    ops = diff_texts(before, after, level)
    assert "".join(t for o, t in ops if o != "+") == before
    assert "".join(t for o, t in ops if o != "-") == after
    assert all(t for _, t in ops)
    assert all(a != b and (a, b) != ("+", "-") for (a, _), (b, _) in zip(ops, ops[1:]))


def owners(doc, field="body"):
    return [(p.text, p.author) for p in blame(doc, field)]


def test_blame_gives_a_word_edited_mid_word_wholly_to_its_editor():
    doc, first = ProposalDocument.create(A, "T", "", "The goods were Recieved on time, for $50,000,000 in goods.")
    b, _ = ProposalDocument.from_changes([first.bytes], actor=B)
    c, _ = ProposalDocument.from_changes([first.bytes], actor=C)
    at = len("The goods were Rec")
    fix = b.edit("body", [(at, 2, "ei")])  # Rec|ie|ved -> Rec|ei|ved: letters in the middle of A's word
    cut = c.edit("body", [(len("The goods were Recieved on time, for $5"), 1, "")])  # a deletion alone changes a word too
    doc.apply([fix.bytes, cut.bytes])
    assert doc.text("body") == "The goods were Received on time, for $5,000,000 in goods."
    assert owners(doc) == [("The goods were ", A), ("Received", B), (" on time, for ", A), ("$5,000,000", C), (" in goods.", A)]
    # a word deleted and typed again as it was keeps its writer; one typed differently does not
    c.apply([fix.bytes])
    retype = c.edit("body", [(4, 5, "goods"), (len("The goods were Received on time, for $5,000,000 in "), 5, "wares")])
    doc.apply([retype.bytes])
    assert owners(doc) == [("The goods were ", A), ("Received", B), (" on time, for ", A), ("$5,000,000", C),
                           (" in ", A), ("wares.", C)]


@settings(max_examples=60)
@given(st.randoms(use_true_random=False))
def test_blame_follows_concurrent_histories_and_never_splits_a_word(rng):
    """Any history, merged in any order, with anchored comments (marks) among the characters:
    blame rebuilds the text (it checks that against the document) and owns words whole."""
    doc, first = ProposalDocument.create(A, "T", "", "The library opens on Sundays.")
    peers = [doc] + [ProposalDocument.from_changes([first.bytes], actor=a)[0] for a in (B, C)]
    pieces = ["alpha", "beta", " ", "  ", "x", "Received", "\n", "—", "é", ",", "🙂"]
    for _ in range(rng.randrange(2, 20)):
        peer = rng.choice(peers)
        n = peer.length("body")
        if rng.random() < 0.1 and n:
            at = rng.randrange(n)
            peer.anchor(bytes([rng.randrange(256)]) * 32, "body", at, at + 1)
        else:
            at = rng.randrange(n + 1)
            typed = "".join(rng.choice(pieces) for _ in range(rng.randrange(3)))
            peer.edit("body", [(at, rng.randrange(min(4, n - at) + 1), typed)])
        if rng.random() < 0.3:
            everything = [c.bytes for p in peers for c in p.all_changes()]
            for p in peers:
                p.apply(everything)
    merged, waiting = ProposalDocument.from_changes([c.bytes for p in peers for c in p.all_changes()])
    assert not waiting
    passages = blame(merged, "body")
    assert "".join(p.text for p in passages) == merged.text("body")
    for left, right in zip(passages, passages[1:]):
        assert left.change != right.change
        assert left.text[-1].isspace() or right.text[0].isspace(), (left, right)


def test_blame_reads_the_history_once_not_the_text_at_every_change(monkeypatch):
    """Blame used to read the whole text at every change and align it character by character
    with the one before (140 ms a change on a real bill); now the text is read once (to check
    the replay) and each change is compared only around what it touched."""
    body = "\n\n".join(f"({n}) The council shall publish decision {n} within seven days of its adoption." for n in range(60))
    doc, first = ProposalDocument.create(A, "T", "", body)
    peers = {a: ProposalDocument.from_changes([first.bytes], actor=a)[0] for a in (B, C)}
    rng = random.Random(4)
    for k in range(300):
        peer = peers[(B, C)[k % 2]]
        text = peer.text("body")
        start = text.index(" ", rng.randrange(len(text) - 40)) + 1
        peer.edit("body", [(start, text.index(" ", start) - start, rng.choice(["amended", "revised", "shall"]))])
        peers[(C, B)[k % 2]].apply([c.bytes for c in peer.all_changes()])
    doc.apply([c.bytes for p in peers.values() for c in p.all_changes()])
    assert len(doc.history()) > 300

    reads, compared = [], []
    text_of, opcodes = ProposalDocument.text, revisions.opcodes
    monkeypatch.setattr(ProposalDocument, "text", lambda self, *a: reads.append(a) or text_of(self, *a))
    monkeypatch.setattr(revisions, "opcodes", lambda a, b: compared.append(len(a) + len(b)) or opcodes(a, b))
    passages = blame(doc, "body")
    assert len(reads) == 1  # the check, not one read per change
    assert "".join(p.text for p in passages) == doc.text("body")
    words = len(re.findall(r"\s+|\S+", doc.text("body")))
    assert len(compared) <= 2 * len(doc.history())  # a window or two per change
    assert sum(compared) < 2 * words + 40 * len(doc.history())  # tokens near each change, not the whole text
    assert {p.author for p in passages} == {A, B, C}


def pdf_pages(path: Path) -> list[list[str]]:
    """The text lines of each page of a PDF written by Qt: each line a BT…ET block of one-glyph
    hex ``Tj`` strings in Identity-H fonts, decoded with the fonts' ToUnicode maps."""
    data = path.read_bytes()
    starts = {int(m.group(1)): m.end() for m in re.finditer(rb"(\d+) 0 obj", data)}

    def body(n):
        return data[starts[n] : data.index(b"endobj", starts[n])]

    def stream(n):
        head = data[starts[n] : data.index(b"stream", starts[n])]
        length = re.search(rb"/Length (\d+)( 0 R)?", head)
        size = int(re.match(rb"\s*(\d+)", body(int(length.group(1)))).group(1)) if length.group(2) else int(length.group(1))
        at = data.index(b"stream", starts[n]) + len(b"stream")
        at += 2 if data[at : at + 2] == b"\r\n" else 1
        return zlib.decompress(data[at : at + size]) if b"/FlateDecode" in head else data[at : at + size]

    def to_unicode(n):
        found = {}
        cmap = stream(n)
        for block in re.findall(rb"beginbfchar(.*?)endbfchar", cmap, re.S):
            for glyph, text in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                found[int(glyph, 16)] = bytes.fromhex(text.decode()).decode("utf-16-be")
        for block in re.findall(rb"beginbfrange(.*?)endbfrange", cmap, re.S):
            for lo, hi, to in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*(<[0-9A-Fa-f]+>|\[[^\]]*\])", block):
                texts = [bytes.fromhex(t.decode()).decode("utf-16-be") for t in re.findall(rb"<([0-9A-Fa-f]+)>", to)]
                for k, glyph in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                    found[glyph] = texts[k] if to.startswith(b"[") else texts[0][:-1] + chr(ord(texts[0][-1]) + k)
        return found

    pages = []
    kids = re.search(rb"/Kids\s*\[(.*?)\]", body(int(re.search(rb"/Pages (\d+) 0 R", data).group(1))), re.S).group(1)
    for ref in re.findall(rb"(\d+) 0 R", kids):
        page = body(int(ref))
        resources = body(int(re.search(rb"/Resources (\d+) 0 R", page).group(1)))
        fonts = {name: to_unicode(int(re.search(rb"/ToUnicode (\d+) 0 R", body(int(font))).group(1)))
                 for name, font in re.findall(rb"/(F\d+) (\d+) 0 R", resources)}
        lines = []
        for text in re.findall(rb"\bBT\b(.*?)\bET\b", stream(int(re.search(rb"/Contents (\d+) 0 R", page).group(1))), re.S):
            glyphs = fonts[re.search(rb"/(F\d+) [\d.]+ Tf", text).group(1)]
            hexes = b"".join(re.findall(rb"<([0-9A-Fa-f]+)>\s*Tj", text))
            line = "".join(glyphs[int(hexes[k : k + 4], 16)] for k in range(0, len(hexes), 4))
            lines.append(" ".join(unicodedata.normalize("NFKC", line).split()))
        pages.append(lines)
    return pages


def test_the_pdf_of_a_bill_has_each_line_once(tmp_path):
    """A page's last line was drawn again, clipped, at the top of the next page when its
    paragraph went on there: 64 of the Act's 139 page starts repeated the line before."""
    from PySide6.QtGui import QTextDocument

    from desktop.export import write_pdf

    footer = "Revision 0123456789abcdef, as of beacon round 7. Signed by: ada."
    count = write_pdf(BILL, footer, tmp_path / "bill.pdf", title="WRRDA 2014")
    pages = pdf_pages(tmp_path / "bill.pdf")
    assert count == len(pages) > 100
    bodies = []
    for n, lines in enumerate(pages, 1):
        assert "".join("".join(lines[-2:]).split()) == "".join(f"{footer}Page {n} of {count}".split())
        bodies.append(lines[:-2])
    assert [n for n in range(1, count) if bodies[n][0] == bodies[n - 1][-1]] == []
    # and the whole text layer is the Act's text exactly once, with the numbers of its lists
    document = QTextDocument()
    document.setMarkdown(BILL)
    expected = unicodedata.normalize("NFKC", document.toPlainText() + "".join(re.findall(r"^(\d+\.) ", BILL, re.M)))
    got = Counter(c for lines in bodies for line in lines for c in line if not c.isspace())
    assert got == Counter(c for c in expected if not c.isspace())


@pytest.mark.parametrize("level", ["word", "line"])
def test_scattered_edits_on_a_whole_bill_diff_quickly(level):
    """A committee's edits all over the Act: the word diff stays an alignment of the changed
    blocks (rapidfuzz), not of the whole text, and rebuilds both texts."""
    rng = random.Random(5)
    words = BILL.split(" ")
    for _ in range(2000):
        words[rng.randrange(len(words))] = "amended"
    after = " ".join(words)
    ops = diff_texts(BILL, after, level)
    assert "".join(t for o, t in ops if o != "+") == BILL and "".join(t for o, t in ops if o != "-") == after
    assert len(changed_words(ops, "+")) <= (2000 if level == "word" else len(after.split()))


@given(st.text(alphabet="ab \n", max_size=200), st.text(alphabet="ab \n", max_size=200))
@settings(max_examples=300, deadline=None)
def test_the_fast_trim_finds_the_same_common_prefix_and_suffix(a, b):
    """``opcodes`` trims by comparing slices; the result is the one-by-one comparison's."""
    from crdt.revisions import _common_prefix, _common_suffix

    lo = 0
    while lo < min(len(a), len(b)) and a[lo] == b[lo]:
        lo += 1
    hi = 0
    while hi < min(len(a), len(b)) - lo and a[len(a) - 1 - hi] == b[len(b) - 1 - hi]:
        hi += 1
    assert _common_prefix(a, b) == lo
    assert _common_suffix(a, b, min(len(a), len(b)) - lo) == hi
    assert _common_prefix(list(a), list(b)) == lo
