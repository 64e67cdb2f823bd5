"""Exporting a proposal's text: `klero document` to Markdown and to PDF (real Qt, offscreen)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from test_cli import klero

VECTORS = Path(__file__).resolve().parent / "vectors"


def pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", path.read_bytes()))


@pytest.fixture(scope="module")
def furthest():
    """The proposal of the golden demo run that went furthest, and its document."""
    done = klero("verify", VECTORS / "demo-run.log", "--json")
    # a proposal whose decided revision is a text (not its own id: no document was drafted)
    drafted = [p for p in json.loads(done.stdout)["proposals"] if p["stage"] >= 1 and p["revision"] and p["revision"] != [p["id"]]]
    assert drafted, "the demo run drafts documents"
    return max(drafted, key=lambda p: (p["stage"], p["id"]))


def test_markdown_export_names_the_decided_revision_its_signers_and_round(tmp_path, furthest):
    out = tmp_path / "bill.md"
    done = klero("document", VECTORS / "demo-run.log", "--proposal", furthest["id"][:12], "--out", out)
    assert done.returncode == 0, done.stderr
    assert "the revision the assembly last decided on" in done.stdout
    text = out.read_text()
    assert text.startswith(f"# {furthest['title']}")
    assert "The council shall" in text and "It takes effect next year." in text
    from crdt import revision_id

    heads = tuple(bytes.fromhex(h) for h in furthest["revision"])
    assert f"Revision {revision_id(heads)}" in text and "Signed by: " in text and "beacon round" in text


def test_pdf_export_writes_pages_with_the_footer(tmp_path, furthest):
    out = tmp_path / "bill.pdf"
    done = klero("document", VECTORS / "demo-run.log", "--proposal", furthest["id"], "--out", out, env={"QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr
    assert "(1 page)" in done.stdout
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and pdf_pages(out) == 1


def test_a_long_bill_breaks_into_pages_each_with_its_footer(tmp_path, monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    from desktop.export import write_pdf

    text = "\n\n".join(f"## Section {n}\n\nThe council shall publish decision {n} within seven days." for n in range(300))
    pages = write_pdf(text, "Revision abc, as of beacon round 7. Signed by: ada.", tmp_path / "long.pdf", title="Long")
    assert pages > 5 and pdf_pages(tmp_path / "long.pdf") == pages


@pytest.mark.parametrize("args, message", [
    (["--proposal", "zz", "--out", "x.md"], "No proposal's id starts with"),
    (["--proposal", "", "--out", "x.md"], "proposals' ids start with"),
    (["--proposal", "aa", "--out", "x.txt"], "must end in .md or .pdf"),
])
def test_document_errors_are_sentences(tmp_path, args, message):
    done = klero("document", VECTORS / "demo-run.log", *[a if a != "x.md" else tmp_path / a for a in args])
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_the_export_says_where_the_proposal_stands_and_a_summary_only_proposal_names_those_with_a_text(tmp_path, furthest):
    out = tmp_path / "bill.md"
    done = klero("document", VECTORS / "demo-run.log", "--proposal", furthest["id"][:12], "--out", out)
    assert done.returncode == 0 and f"({furthest['status']}" in done.stdout, done.stdout
    text = out.read_text()
    assert "Status in the assembly: " + furthest["status"] in text and text.count("Signed by: ") == 1
    listed = json.loads(klero("verify", VECTORS / "demo-run.log", "--json").stdout)["proposals"]
    bare = [p for p in listed if p["revision"] in ([], [p["id"]])]
    if bare:  # a proposal submitted without a document: said so, with those that have one
        done = klero("document", VECTORS / "demo-run.log", "--proposal", bare[0]["id"][:12], "--out", tmp_path / "x.md")
        assert done.returncode == 2 and "without a text document" in done.stderr and "Proposals with a document: " in done.stderr
