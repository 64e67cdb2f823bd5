"""DESIGN.md §2: the layers may import only what the table allows.  Checked by parsing imports."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("consensus", "crdt", "p2p", "desktop", "resources")
STDLIB = set(sys.stdlib_module_names)
# the pure core may not touch the clock, the network, the disk, threads or randomness
FORBIDDEN_IN_CORE = {
    "time", "datetime", "random", "secrets", "socket", "sqlite3", "os", "threading", "asyncio",
    "subprocess", "tempfile", "pathlib", "io", "shutil", "urllib", "http", "multiprocessing", "concurrent",
}
ALLOWED = {
    "consensus": {"nacl", "cbor2", "py_arkworks_bls12381", "consensus"},
    "crdt": {"automerge", "rapidfuzz", "consensus", "crdt"},
    "p2p": {"consensus", "crdt", "p2p", "libp2p", "trio", "multiaddr", "nacl", "cbor2", "sqlite_utils", "platformdirs", "py_arkworks_bls12381", "resources",
            "mnemonic"},
    "desktop": {"consensus", "crdt", "p2p", "desktop", "PySide6", "nacl", "cbor2", "platformdirs"},
    "resources": set(),
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_every_package_imports_only_what_its_layer_allows():
    problems = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for name in imports_of(path):
                if name == "__future__":
                    continue
                if name in STDLIB:
                    if package == "consensus" and name in FORBIDDEN_IN_CORE:
                        problems.append(f"{path.relative_to(ROOT)} imports {name}: the core has no clock, I/O or randomness")
                    continue
                if name not in ALLOWED[package]:
                    problems.append(f"{path.relative_to(ROOT)} imports {name}, which {package}/ may not")
    assert not problems, "\n".join(problems)


def test_the_checker_sees_a_violation(tmp_path):
    """The layering test must be able to fail: a core module importing sqlite3 is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlite3\nfrom p2p.store import ReplicaStore\n")
    assert imports_of(bad) == {"sqlite3", "p2p"}


def test_verify_does_not_import_the_network_or_qt():
    """STACK.md: `klero verify` must not pay for libp2p or PySide6."""
    import subprocess

    code = "import sys; from desktop import cli; from p2p import audit; print(' '.join(sorted(m for m in ('libp2p','PySide6','trio') if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    assert out == ""


def test_the_node_shell_never_imports_the_testers_tooling():
    """p2p/tools/ (bots, simulations, testnets) is for testers: a representative's node must
    run without it (issue 13's layout)."""
    problems = []
    for path in sorted((ROOT / "p2p").glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and ((node.level == 1 and (node.module or "").startswith("tools"))
                                                     or (node.level == 0 and (node.module or "").startswith("p2p.tools"))):
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}")
    assert not problems, "\n".join(problems)
