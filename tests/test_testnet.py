"""`klero testnet`: a whole legislative run across node processes on 127.0.0.1 (issue 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def klero(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "desktop.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env={**os.environ, **(env or {})})


def test_five_nodes_and_25_representatives_run_every_stage_to_a_plenary_vote(tmp_path):
    folder = tmp_path / "net"
    done = klero("testnet", "run", "--dir", folder, "--nodes", 5, "--reps", 25, "--cycles", 4, "--round-seconds", 0.2, "--json")
    try:
        summary = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"no JSON summary: {done.stdout[-2000:]} {done.stderr[-3000:]}")
    assert done.returncode == 0 and summary["converged"], summary
    hashes = {n["state_hash"] for n in summary["nodes"].values()}
    assert hashes == {summary["expected_state_hash"]}, summary["nodes"]
    assert all(n["published"] == n["planned"] and n["refused"] == 0 for n in summary["nodes"].values())
    assert summary["outcomes"]["cycles"] == 4 and summary["outcomes"]["passed"], "the run reaches a plenary vote"
    # any node's export verifies from nothing to the same state
    env = {"KLERO_HOME": str(folder / "home")}
    export = klero("export", "--profile", "node-3", tmp_path / "node-3.log", env=env)
    assert export.returncode == 0, export.stderr
    verified = json.loads(klero("verify", tmp_path / "node-3.log", "--json").stdout)
    assert verified["state_hash"] == summary["expected_state_hash"] and not verified["rejected"]
    assert [p for p in verified["proposals"] if p["status"] == "passed"]
    # status and down work on a stopped testnet too, and every process is gone
    status = json.loads(klero("testnet", "status", "--dir", folder, "--json").stdout)
    assert not any(n["running"] for n in status["nodes"])


def test_testnet_commands_explain_what_is_missing(tmp_path):
    done = klero("testnet", "status", "--dir", tmp_path / "nothing")
    assert done.returncode == 2 and "There is no testnet" in done.stderr and "Traceback" not in done.stderr
