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


def _vectors(page: str) -> dict[str, bytes]:
    """The hex blocks a docs page marks with ``<!-- vector: NAME -->``."""
    import re

    text = (ROOT / "docs" / page).read_text()
    found = re.findall(r"<!-- vector: (\w+) -->\s*```\s*\n([0-9a-f\s]+?)```", text)
    return {name: bytes.fromhex("".join(body.split())) for name, body in found}


def test_the_sync_specs_vectors_are_what_the_node_reads_and_writes():
    """docs/sync.md is the protocol's specification for other implementations: its examples
    must decode, and re-encode, exactly as the node's own code does."""
    import pytest

    from consensus.beacon import BeaconRound
    from consensus.errors import InvalidInput
    from libp2p.utils import encode_varint_prefixed
    from p2p import sync
    from p2p.logfile import read_items
    from p2p.documents import replay_log

    v = _vectors("sync.md")
    assert set(v) == {"request", "request_beyond", "frame", "end", "refusal"}, v.keys()
    request = sync.decode_request(v["request"])
    assert request == sync.Request(bytes(range(32)), {b"\xaa" * 32: 3}, frozenset(), ((1, 10), (12, 12)), 100)
    assert request.encode() == v["request"] and len(v["request"]) == 113
    assert encode_varint_prefixed(v["request"])[:1] == b"\x71"
    beyond = sync.decode_request(v["request_beyond"])
    assert beyond == sync.Request(bytes(range(32)), {b"\xaa" * 32: 3}, frozenset(), ((1, 10), (12, 12)), 100,
                                  {b"\xaa" * 32: ((6, 9),), b"\xbb" * 32: ((2, 2),)})
    assert beyond.encode() == v["request_beyond"] and len(v["request_beyond"]) == 199
    assert encode_varint_prefixed(v["request_beyond"])[:2] == b"\xc7\x01"
    (item,) = sync.decode_frame(v["frame"], 1 << 16)
    assert next(sync.frames(iter([item]))) == v["frame"] and item[:1] == b"\x83"
    chain = replay_log(ROOT / "tests" / "vectors" / "demo-run.log").charter.beacon
    from consensus.beacon import decode_round

    rnd = decode_round(chain, item)  # verifies the BLS signature against the demo log's dev chain
    assert rnd == BeaconRound(63, rnd.signature, None)
    assert item in [i[2] for i in read_items(ROOT / "tests" / "vectors" / "demo-run.log")]
    assert sync.decode_frame(v["end"], 1 << 16) == [] and next(sync.frames(iter(()))) == v["end"]
    assert sync.refusal("sync_bad_request", "A sync request asks for 1 to 20000 items.") == v["refusal"]
    with pytest.raises(InvalidInput) as refused:
        sync.decode_frame(v["refusal"], 1 << 16)
    assert refused.value.rejection.code == "sync_refused_by_peer" and "1 to 20000 items" in refused.value.rejection.reason
    with pytest.raises(InvalidInput, match="1 to 20000"):
        sync.decode_request(v["request"].replace(b"\x63max\x18\x64", b"\x63max\x00"))
