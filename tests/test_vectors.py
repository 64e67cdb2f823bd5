"""Golden vectors (tests/vectors/): logs with what any correct implementation must conclude.

If this fails after an intended change of format or rules, regenerate with
`python tests/vectors/make.py` and say so in the commit; otherwise it caught a regression.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "vectors"
spec = importlib.util.spec_from_file_location("make_vectors", HERE / "make.py")
make = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make)

LOGS = sorted(HERE.glob("*.log"))


def test_there_are_vectors():
    assert len(LOGS) >= 2


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.stem)
def test_vector(log):
    expected = json.loads(log.with_suffix(".expected.json").read_text())
    # each vector's summary has its own shape: the constituency vector's is about seats
    actual = make.representation_of(log) if log.stem == "constituencies" else make.expected_of(log)
    for key in expected:
        assert actual[key] == expected[key], f"{log.name}: {key} differs"


def test_vectors_cover_rejections_equivocations_and_neutralised_votes():
    data = json.loads((HERE / "demo-run-with-rejections.expected.json").read_text())
    codes = {r["code"] for r in data["rejected"]}
    assert {"bad_signature", "unknown_author", "wrong_assembly", "unknown_kind", "ancient_round", "wrong_round_prefix",
            "unknown_round"} <= codes
    assert any(e["versions"] == 3 for e in data["equivocations"]), "a fork with a third version, all kept as evidence"
    # the equivocation came after the run: it changed no decision of the run without it
    plain = json.loads((HERE / "demo-run.expected.json").read_text())
    for key in ("cycles", "proposals", "ballots", "draws", "deadlines"):
        assert data[key] == plain[key], key
    assert {"late", "not_a_member"} <= {c for b in data["ballots"] for c in b["neutralised"]}
    assert any(p["status"] == "promoted" for p in data["proposals"])
    assert data["deadlines"] and all("certificate" in d for d in data["deadlines"])
    assert data["panel_equivocations"]
