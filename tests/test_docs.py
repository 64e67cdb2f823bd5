"""The README is the newcomer's entry point: its commands must exist and match CI."""

from __future__ import annotations

from pathlib import Path

from desktop.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line.strip() for line in readme[:10] if line.startswith("    ")]
    assert len(commands) == 2, "the README opens with two commands"
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines(), "CI must run the README's test command verbatim"
    assert "klero" in commands[0]


def test_every_command_is_documented():
    readme = (ROOT / "README.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:
        assert f"`klero {name}" in readme, f"README misses klero {name}"
