"""The `klero` command as a person uses it: profiles, import, export, verify, rebuild."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.cli import main
from p2p.logfile import read_items, write_log

ROOT = Path(__file__).resolve().parent.parent


def klero(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    """Run the real command in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "desktop.cli", *map(str, args)],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd or ROOT, timeout=120,
    )


def items(path):
    return [item[2] for item in read_items(path)]


@pytest.fixture
def log(tmp_path, small_log):
    path = tmp_path / "assembly.log"
    write_log(path, small_log)
    return path


def verify_json(path, capsys) -> tuple[int, dict]:
    code = main(["verify", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_init_keeps_the_secret_key_encrypted(klero_home, capsys):
    from p2p import profile

    assert main(["init", "--profile", "alice", "--kdf", "interactive"]) == 0
    out = capsys.readouterr().out
    p = profile.existing("alice")
    key = profile.unlock(p, "a long test passphrase")
    secret = bytes(key).hex()
    assert secret not in out
    for f in klero_home.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert bytes(key) not in data and secret.encode() not in data
    assert oct(p.identity_path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(profile.ProfileError, match="passphrase .* is wrong"):
        profile.unlock(p, "not the passphrase")
    assert main(["init", "--profile", "alice"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_passphrase_file_and_bad_names(klero_home, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KLERO_PASSPHRASE")
    pw = tmp_path / "pw"
    pw.write_text("from a file, not the env\n")
    assert main(["init", "--profile", "bob", "--kdf", "interactive", "--passphrase-file", str(pw)]) == 0
    from p2p import profile

    profile.unlock(profile.existing("bob"), "from a file, not the env")
    assert main(["init", "--profile", "../evil", "--passphrase-file", str(pw)]) == 2
    assert "not a usable profile name" in capsys.readouterr().err


def test_import_export_verify_round_trip(klero_home, log, tmp_path, capsys):
    assert main(["init", "--profile", "alice", "--kdf", "interactive"]) == 0
    assert main(["import", "--profile", "alice", str(log)]) == 0
    out = tmp_path / "export.log"
    assert main(["export", "--profile", "alice", str(out)]) == 0
    capsys.readouterr()
    code_a, a = verify_json(log, capsys)
    code_b, b = verify_json(out, capsys)
    assert a["state_hash"] == b["state_hash"]
    assert a["events"] == b["events"] > 400
    assert len(a["equivocations"]) == len(b["equivocations"]) == 2
    assert code_a == code_b == 1  # equivocations are findings
    # importing twice changes nothing
    assert main(["import", "--profile", "alice", str(out)]) == 0
    assert a["state_hash"] in capsys.readouterr().out


def test_shuffled_duplicated_copy_gives_the_same_hash(log, tmp_path, capsys):
    wires = items(log)
    rng = random.Random(99)
    copy = wires + rng.sample(wires, 200)
    rng.shuffle(copy)
    shuffled = tmp_path / "shuffled.log"
    write_log(shuffled, copy)
    _, a = verify_json(log, capsys)
    _, b = verify_json(shuffled, capsys)
    assert a["state_hash"] == b["state_hash"]
    assert a["events"] == b["events"]
    assert b["items"] == len(copy) and b["duplicates"] > 100
    assert sorted(e["seq"] for e in a["equivocations"]) == sorted(e["seq"] for e in b["equivocations"])


def test_tampered_copy_reports_the_tampered_items(log, tmp_path, capsys):
    wires = items(log)
    tampered = list(wires)
    targets = [50, 200, 333]
    for i in targets:
        w = bytearray(tampered[i])
        pos = w.find(b"Comment") if b"Comment" in w else w.find(b"Proposal")
        w[pos] ^= 0x01  # one bit in the text: the signature no longer matches
        tampered[i] = bytes(w)
    path = tmp_path / "tampered.log"
    write_log(path, tampered)
    code, report = verify_json(path, capsys)
    assert code == 1
    bad = {r["index"]: r["code"] for r in report["rejected"]}
    for i in targets:
        assert bad.get(i) == "bad_signature", (i, bad)
    _, clean = verify_json(log, capsys)
    assert report["state_hash"] != clean["state_hash"]


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "not a Kleroterion log"),
        (b"\xff\xfe garbage that is not cbor at all", "not a Kleroterion log"),
        (b"\x83\x01\x02\x03\x64text", "holds no charter"),
    ],
)
def test_verify_refuses_garbage_with_a_sentence(tmp_path, content, expected):
    path = tmp_path / "bad.log"
    path.write_bytes(content)
    result = klero("verify", path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_truncated_log_and_non_event_items(log, tmp_path, capsys):
    data = log.read_bytes()
    cut = tmp_path / "cut.log"
    cut.write_bytes(data[: len(data) - 40])
    code, report = verify_json(cut, capsys)
    assert code == 1 and "truncated" in report["damage"]["reason"]
    mixed = tmp_path / "mixed.log"
    wires = items(log)
    import cbor2

    write_log(mixed, [wires[0], cbor2.dumps({"hello": "world"}), cbor2.dumps([b"x", b"y"]), *wires[1:]])
    code, report = verify_json(mixed, capsys)
    codes = {r["index"]: r["code"] for r in report["rejected"]}
    assert codes[1] == "bad_shape" and codes[2] == "bad_shape"
    result = klero("verify", mixed)
    assert result.returncode == 1 and "item 1: bad_shape" in result.stdout


def test_verify_of_a_missing_file_and_unknown_profile(tmp_path, klero_home):
    result = klero("verify", tmp_path / "nope.log")
    assert result.returncode == 2 and "no log file" in result.stderr
    result = klero("export", "--profile", "ghost", tmp_path / "x.log", env={"KLERO_HOME": str(klero_home)})
    assert result.returncode == 2 and "klero init --profile ghost" in result.stderr


def test_rebuild_restores_damaged_derived_tables(klero_home, log, capsys):
    import sqlite3

    from p2p import profile

    assert main(["init", "--profile", "carol", "--kdf", "interactive"]) == 0
    assert main(["import", "--profile", "carol", str(log)]) == 0
    capsys.readouterr()
    _, report = verify_json(log, capsys)
    db = sqlite3.connect(profile.existing("carol").replica_path)
    db.execute("DELETE FROM authors")
    db.execute("UPDATE events SET status = 'pending'")
    db.commit()
    db.close()
    assert main(["rebuild", "--profile", "carol"]) == 0
    out = capsys.readouterr().out
    assert report["state_hash"] in out
    assert main(["status", "--profile", "carol"]) == 0
    assert report["state_hash"] in capsys.readouterr().out


def test_simulate_then_verify_reports_draws_and_ballots(tmp_path):
    out = tmp_path / "sim.log"
    result = klero("simulate", out, "--seed", "4", "--cycles", "5", "--late", "0.1", "--unauthorised", "0.1")
    assert result.returncode == 0, result.stderr
    result = klero("verify", out)
    assert result.returncode == 0, result.stdout
    assert "Rejected items: none" in result.stdout and "Equivocations: none" in result.stdout
    assert "cycle 0: 5 committees drawn" in result.stdout and "votes not counted" in result.stdout
    result = klero("verify", out, "--details")
    assert "draw  cycle 0 stage 1" in result.stdout and "ballot cycle 0 stage 1" in result.stdout
    assert "not counted" in result.stdout  # late and unauthorised votes are shown, with reasons
    assert "certificate of agreement round" in result.stdout
    as_json = json.loads(klero("verify", out, "--json").stdout)
    assert as_json["draws"] and as_json["ballots"] and as_json["proposals"]
    assert {"late", "not_a_member"} <= {n["code"] for b in as_json["ballots"] for n in b["neutralised"]}


def test_simulate_refuses_impossible_shares(tmp_path):
    result = klero("simulate", tmp_path / "x.log", "--absent", "0.8", "--late", "0.5")
    assert result.returncode == 2 and "together at most 1" in result.stderr


def test_verify_workers_do_not_change_the_report(log):
    from p2p.audit import verify_log

    one = verify_log(log, workers=1).as_dict()
    two = verify_log(log, workers=2).as_dict()
    assert one == two


def test_export_counts_events_and_rounds_status_does_not_judge_a_dev_beacon_by_its_genesis_and_join_names_one_assembly(
        klero_home, tmp_path, capsys):
    """Issue 16's findings that touch every person: numbers that add up, no false stall alarm, and
    a --join of another assembly refused with a sentence instead of silently ignored."""
    from p2p.tools.bots import AssemblySim, Behaviour

    logs = []
    for seed in (1, 2):
        sim = AssemblySim("demo", seed=seed, cycles=1, behaviour=Behaviour(0, 0, 0, 0))
        path = tmp_path / f"s{seed}.log"
        write_log(path, sim.run())
        logs.append(path)
    env = {"KLERO_HOME": str(klero_home), "KLERO_PASSPHRASE": "correct horse battery"}
    assert klero("init", "--profile", "a", "--kdf", "interactive", env=env).returncode == 0
    assert klero("import", "--profile", "a", logs[0], env=env).returncode == 0
    out = klero("export", "--profile", "a", tmp_path / "out.log", env=env)
    held = items(tmp_path / "out.log")
    rounds = sum(1 for i in held if i[:1] == b"\x83")
    assert f"Wrote {len(held) - rounds:,} events and {rounds:,} beacon rounds" in out.stdout, out.stdout
    status = klero("status", "--profile", "a", env=env).stdout
    assert "a dev beacon" in status and "stopped arriving" not in status and "STALLED" not in status, status
    refused = klero("node", "--profile", "a", "--join", logs[1], env=env)
    assert refused.returncode == 2 and "founds another one" in refused.stderr, refused.stderr


def test_verify_reads_like_a_report_titles_members_plenary_and_knock_ons_under_their_cause(tmp_path, capsys):
    vector = ROOT / "tests" / "vectors" / "demo-run.log"
    main(["verify", str(vector), "--details"])
    out = capsys.readouterr().out
    draw = next(line for line in out.splitlines() if line.startswith("  draw "))
    assert "'Proposal" in draw and "members " in draw and "members from" not in draw, draw
    assert "stage 4" not in out, "the plenary is named so, never stage 4"
    deadlines = [line for line in out.splitlines() if line.startswith("  deadline cycle 1 ")]
    assert any("stage 1 ballots" in line for line in deadlines) and any("stage 2 ballots" in line for line in deadlines)
    rounds = [int(line.split("(round ")[1].split(")")[0]) for line in deadlines]
    assert rounds == sorted(rounds), deadlines
    flipped = bytearray(vector.read_bytes())
    flipped[5000] ^= 1
    (tmp_path / "flipped.log").write_bytes(bytes(flipped))
    assert main(["verify", str(tmp_path / "flipped.log")]) == 1
    out = capsys.readouterr().out
    listed = [line for line in out.splitlines() if line.startswith("  item ")]
    assert len(listed) == 1 and "bad_signature" in listed[0], out
    assert "later event(s) that wait for an earlier event" in out


def test_a_run_warns_when_the_shares_make_panels_unlikely_to_decide():
    from argparse import Namespace

    from desktop.cli.tools import panel_odds, warn_about_panels

    assert panel_odds(25, 0, 7) == 1.0 and panel_odds(7, 3, 7) == 0.0  # 4 of 7 present is below two thirds
    assert panel_odds(25, 5, 7) > panel_odds(25, 8, 7) > panel_odds(25, 12, 7)
    said = []
    warn_about_panels(Namespace(reps=25, absent=0.2, equivocating=0.1, charter="testnet"), said.append)
    assert said and "has two thirds present only" in said[0] and "may stall" in said[0], said
    said.clear()
    warn_about_panels(Namespace(reps=25, absent=0.0, equivocating=0.0, charter="testnet"), said.append)
    assert not said


def test_a_passphrase_file_others_can_read_is_used_with_a_warning_and_no_core_dumps(klero_home, tmp_path, capsys):
    """Issue 17: a world-readable passphrase file was used silently; a process holding an
    unlocked key could dump it to disk in a core file."""
    import os
    import resource

    pw = tmp_path / "pw"
    pw.write_text("a long test passphrase\n")
    os.chmod(pw, 0o644)
    from p2p import profile

    assert profile.read_passphrase(str(pw)) == "a long test passphrase"
    assert "chmod 600" in capsys.readouterr().err
    assert resource.getrlimit(resource.RLIMIT_CORE)[0] == 0
    os.chmod(pw, 0o600)
    profile.read_passphrase(str(pw))
    assert "chmod" not in capsys.readouterr().err


def test_importing_another_assemblys_log_is_refused_with_a_sentence(klero_home, log, tmp_path, capsys):
    """Issue 17: it exited 0 with "135 rejected" and no reason."""
    from p2p.tools.simulate import Simulation

    assert main(["init", "--profile", "alice", "--kdf", "interactive"]) == 0
    assert main(["import", "--profile", "alice", str(log)]) == 0
    other = tmp_path / "other.log"
    write_log(other, list(Simulation(seed=999, reps=4).log(30)))
    capsys.readouterr()
    assert main(["import", "--profile", "alice", str(other)]) == 2
    err = capsys.readouterr().err
    assert "another assembly" in err and "nothing was imported" in err and "klero init --profile" in err, err
    # a log with bad items among good ones: the rejections are counted by reason, with an example
    mixed = tmp_path / "mixed.log"
    wires = items(log)
    write_log(mixed, [wires[0], *(w[:-1] + bytes([w[-1] ^ 1]) for w in wires[1:6])])
    assert main(["import", "--profile", "alice", str(mixed)]) == 0
    out = capsys.readouterr().out
    assert "Rejected, by reason: " in out and "(e.g. " in out, out


def test_disk_full_is_a_sentence_and_leaves_the_profile_usable(tmp_path, log):
    """A real full disk: a 600 KiB tmpfs (needs root to mount; skipped elsewhere)."""
    import subprocess as sp

    mnt = tmp_path / "small"
    mnt.mkdir()
    if sp.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        env = {**os.environ, "KLERO_HOME": str(mnt / "home"), "KLERO_PASSPHRASE": "a long test passphrase"}
        assert klero("init", "--profile", "p", "--kdf", "interactive", env=env).returncode == 0
        big = tmp_path / "big.log"
        from p2p.tools.simulate import Simulation

        write_log(big, list(Simulation(seed=5, reps=6).log(3000)))
        done = klero("import", "--profile", "p", big, env=env)
        assert done.returncode == 2 and "The disk is full" in done.stderr and "internal error" not in done.stderr, done.stderr
        status = klero("status", "--profile", "p", env=env)
        assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
    finally:
        sp.run(["umount", str(mnt)], capture_output=True)


@pytest.mark.parametrize("field, value", [("memlimit", 1), ("opslimit", 0), ("memlimit", 1 << 62), ("opslimit", "x")])
def test_an_identity_file_with_nonsense_key_derivation_is_refused_with_a_sentence(klero_home, capsys, field, value):
    """Issue 17: a memlimit below libsodium's minimum raised from inside nacl (an internal error)."""
    assert main(["init", "--profile", "alice", "--kdf", "interactive"]) == 0
    from p2p import profile

    path = profile.existing("alice").identity_path
    record = json.loads(path.read_text())
    record[field] = value
    path.write_text(json.dumps(record))
    with pytest.raises(profile.ProfileError) as refused:
        profile.unlock(profile.existing("alice"), "a long test passphrase")
    assert "identity file of profile 'alice'" in refused.value.message


def test_exporting_to_a_folder_says_to_name_a_file(klero_home, log, tmp_path, capsys):
    assert main(["init", "--profile", "alice", "--kdf", "interactive"]) == 0
    assert main(["import", "--profile", "alice", str(log)]) == 0
    capsys.readouterr()
    assert main(["export", "--profile", "alice", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a folder; give the name of a file" in err and ".part" not in err, err


def test_status_reads_a_profile_on_a_read_only_disk(tmp_path, log):
    """Issue 17: a read-only profile folder broke even `klero status` (its lock file cannot be
    made); it now shows the replica as it is on disk.  A read-only bind mount (needs root)."""
    import subprocess as sp

    env = {**os.environ, "KLERO_HOME": str(tmp_path / "home"), "KLERO_PASSPHRASE": "a long test passphrase"}
    assert klero("init", "--profile", "p", "--kdf", "interactive", env=env).returncode == 0
    assert klero("import", "--profile", "p", log, env=env).returncode == 0
    before = klero("status", "--profile", "p", env=env).stdout
    folder = tmp_path / "home" / "profiles" / "p"
    if sp.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode:
        pytest.skip("a read-only bind mount needs root")
    try:
        assert sp.run(["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True).returncode == 0
        done = klero("status", "--profile", "p", env=env)
        assert done.returncode == 0 and "cannot be written" in done.stdout, done.stdout + done.stderr
        state = [line for line in before.splitlines() if line.startswith("State hash")]
        assert state and state[0] in done.stdout
    finally:
        sp.run(["umount", str(folder)], capture_output=True)


def test_an_import_holds_back_one_authors_events_far_ahead_of_a_gap(klero_home, small_log, tmp_path, capsys, monkeypatch):
    """Issue 17: the node held back more than 8 MiB of one author's events waiting for a gap,
    but ``klero import`` did not.  A log holding one author's events without the start of the
    chain is imported up to the budget (here 3 KB), the rest held back with a sentence; once the
    gap is filled, importing it again brings the rest, and the state is whole."""
    from consensus.events import split_wire
    from p2p import node as node_module
    from p2p.store import ReplicaStore

    monkeypatch.setattr(node_module, "PENDING_BYTES_PER_AUTHOR", 3000)
    author_of = lambda w: split_wire(w, 1 << 16)[2]["author"]
    author = author_of(small_log[1])
    chain = [w for w in small_log[1:] if author_of(w) == author]
    ahead, start = tmp_path / "ahead.log", tmp_path / "start.log"
    write_log(ahead, [small_log[0], *chain[2:]])
    write_log(start, [small_log[0], *chain[:2]])
    assert main(["init", "--profile", "alice", "--kdf", "interactive"]) == 0
    capsys.readouterr()
    assert main(["import", "--profile", "alice", str(ahead)]) == 0
    out = capsys.readouterr().out
    assert "Held back" in out and "Import a log that fills the gap first" in out, out
    assert main(["import", "--profile", "alice", str(start)]) == 0
    assert main(["import", "--profile", "alice", str(ahead)]) == 0
    assert "Held back" not in capsys.readouterr().out
    from p2p import profile

    with ReplicaStore(profile.existing("alice").replica_path) as store:
        assert store.counts().get("pending", 0) == 0
        heads = store.replica.heads
        assert heads[author].seq == len(chain), (heads[author], len(chain))
