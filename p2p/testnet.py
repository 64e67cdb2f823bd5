"""Local test networks: N `klero node` processes on 127.0.0.1, bot representatives spread over
them, a dev beacon, and a whole legislative run carried over the network (issue 7).

How the bots act: the assembly is planned by the seeded bot simulation (``p2p.bots``: bots
submit, draft, comment, amend, vote, and sit on real cut-off panels whose agreement messages are
signed events).  Each representative is hosted by one node, which publishes that bot's signed
events when the beacon reaches the round they name; node 0 also relays the dev beacon's rounds
as they come due.  Every item therefore travels over gossip and sync, and every node must
reach the plan's state hash on its own.  The bots follow their plan: they do not yet react to
what the network delivers (a late node does not change what a bot votes), which is what the
reactive panel duties of a later issue add.

Layout of a testnet folder: ``testnet.json`` (nodes, pids, addresses, schedule), ``plan.log`` (the
whole planned log), ``node-K.plan`` (what node K publishes), ``node-K.out`` (its output),
``home/`` (the nodes' profiles and replicas).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from consensus import cbor
from consensus.errors import KleroError

from .logfile import read_items, write_log

PASSPHRASE = "testnet-dev-profile"  # dev profiles only: their keys guard nothing of value


class TestnetError(KleroError):
    """The testnet cannot be started, read or stopped as asked."""


def item_round(item: bytes) -> int:
    """The beacon round an item is due at: a round's own number, an event's named round."""
    value = cbor.decode_fast(item)
    if item[:1] == b"\x83":
        return int(value[0])
    fields = cbor.decode_fast(value[0])
    return int(fields["round"][0])


@dataclass
class Plan:
    items: list[bytes]
    per_node: list[list[bytes]]
    round_zero: int
    last_round: int
    state_hash: str
    summary: dict


def make_plan(charter: str, reps: int, nodes: int, cycles: int, seed: int, behaviour=None) -> Plan:
    from .audit import verify_log
    from .bots import AssemblySim

    sim = AssemblySim(charter, reps=reps, cycles=cycles, seed=seed, behaviour=behaviour)
    items = list(sim.run())
    owner = {bot.public: i % nodes for i, bot in enumerate(sim.bots)}
    per_node: list[list[bytes]] = [[] for _ in range(nodes)]
    for item in items[1:]:
        if item[:1] == b"\x83":
            per_node[0].append(item)
            continue
        author = cbor.decode_fast(cbor.decode_fast(item)[0])["author"]
        per_node[owner.get(author, 0)].append(item)
    rounds = [item_round(i) for i in items[1:]]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write_log(Path(tmp) / "plan.log", items)
        report = verify_log(Path(tmp) / "plan.log", workers=1)
    return Plan(items, per_node, min(rounds), max(rounds), report.state_hash, _outcomes(report.as_dict()))


def _outcomes(report: dict) -> dict:
    statuses: dict[str, int] = {}
    for p in report.get("proposals", []):
        statuses[p["status"]] = statuses.get(p["status"], 0) + 1
    return {"cycles": report.get("cycles"), "proposals": statuses,
            "passed": [p["title"] for p in report.get("proposals", []) if p["status"] == "passed"]}


class Testnet:
    def __init__(self, folder: str | Path):
        self.dir = Path(folder)
        self.home = self.dir / "home"
        self.env = {**os.environ, "KLERO_HOME": str(self.home), "KLERO_PASSPHRASE": PASSPHRASE, "PYTHONUNBUFFERED": "1"}

    # ------------------------------------------------------------------ state on disk

    @property
    def info_path(self) -> Path:
        return self.dir / "testnet.json"

    def info(self) -> dict:
        try:
            return json.loads(self.info_path.read_text())
        except FileNotFoundError:
            raise TestnetError(f"There is no testnet in {self.dir}: start one with `klero testnet up --dir {self.dir}`.") from None

    def _save(self, info: dict) -> None:
        tmp = self.info_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=1))
        os.replace(tmp, self.info_path)

    def _klero(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "desktop.cli", *map(str, args)], capture_output=True, text=True,
                              env=self.env, timeout=120)

    # ------------------------------------------------------------------ up / status / down

    def up(self, *, nodes: int, reps: int, charter: str = "testnet", cycles: int = 4, seed: int = 1,
           round_seconds: float | None = None, behaviour=None, say=print, trace: bool = False) -> dict:
        if nodes < 1 or reps < 2 or nodes > 64:
            raise TestnetError("A testnet has 1 to 64 nodes and at least 2 representatives.")
        if self.info_path.exists() and any(_alive(n.get("pid")) for n in self.info().get("nodes", [])):
            raise TestnetError(f"A testnet is already running in {self.dir}; stop it with `klero testnet down --dir {self.dir}`.")
        self.dir.mkdir(parents=True, exist_ok=True)
        say(f"Planning {cycles} cycles of the {charter!r} charter with {reps} bot representatives ...")
        plan = make_plan(charter, reps, nodes, cycles, seed, behaviour)
        write_log(self.dir / "plan.log", plan.items)
        from .bots import load_template

        period = load_template(charter).get("period_ms", 1000) / 1000
        step = round_seconds if round_seconds is not None else period
        for k, part in enumerate(plan.per_node):
            write_log(self.dir / f"node-{k}.plan", [plan.items[0], *part])
        for k in range(nodes):
            if not (self.home / "profiles" / f"node-{k}").exists():
                done = self._klero("init", "--profile", f"node-{k}", "--kdf", "interactive")
                if done.returncode:
                    raise TestnetError(f"Could not create profile node-{k}: {done.stderr.strip()}")
        start_at = time.time() + 4 + 0.6 * nodes  # every node is up before the first round is due
        info = {"charter": charter, "nodes": [], "reps": reps, "cycles": cycles, "seed": seed,
                "round_seconds": step, "round_zero": plan.round_zero, "last_round": plan.last_round,
                "start_at": start_at, "expected_state_hash": plan.state_hash, "expected": plan.summary,
                "planned_items": [len(p) for p in plan.per_node], "started": time.time()}
        for k in range(nodes):
            bootstrap = []
            for j in sorted({0, k - 1, (k // 2)} - {k}):
                if 0 <= j < k:
                    bootstrap += ["--bootstrap", info["nodes"][j]["address"]]
            if trace:
                bootstrap += ["--trace", str(self.dir / f"node-{k}.trace")]
            node = self._start(k, bootstrap, start_at, step, plan.round_zero)
            info["nodes"].append(node)
            self._save(info)
        say(f"Testnet of {nodes} nodes up in {self.dir}; {plan.last_round - plan.round_zero + 1} beacon rounds "
            f"at {step} s each (about {(plan.last_round - plan.round_zero + 1) * step / 60:.1f} min).")
        return info

    def _start(self, k: int, bootstrap: list[str], start_at: float, step: float, round_zero: int) -> dict:
        out = open(self.dir / f"node-{k}.out", "ab")
        args = [sys.executable, "-m", "desktop.cli", "node", "--profile", f"node-{k}", "--join", str(self.dir / "plan.log"),
                "--publish", str(self.dir / f"node-{k}.plan"), "--start-at", f"{start_at:.3f}",
                "--round-seconds", str(step), "--round-zero", str(round_zero), "--sync-interval", "3", *bootstrap]
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        status_path = self.home / "profiles" / f"node-{k}" / "node-status.json"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = _read_json(status_path)
            if status and status.get("pid") == proc.pid and status.get("address"):
                return {"name": f"node-{k}", "pid": proc.pid, "address": status["address"], "status": str(status_path)}
            if proc.poll() is not None:
                raise TestnetError(f"node-{k} exited at start; see {self.dir / f'node-{k}.out'}.")
            time.sleep(0.1)
        proc.kill()
        raise TestnetError(f"node-{k} did not start within 60 s; see {self.dir / f'node-{k}.out'}.")

    def status(self) -> list[dict]:
        info = self.info()
        rows = []
        now = time.time()
        due = int((now - info["start_at"]) / info["round_seconds"]) + info["round_zero"] if now > info["start_at"] else 0
        for k, node in enumerate(info["nodes"]):
            s = _read_json(Path(node["status"])) or {}
            rows.append({
                "name": node["name"], "running": _alive(node["pid"]), "state_hash": s.get("state_hash", ""),
                "peers": s.get("peers", 0), "events": s.get("events", 0), "beacon_round": s.get("beacon_round", 0),
                "lag_rounds": max(0, min(due, info["last_round"]) - s.get("beacon_round", 0)) if due else 0,
                "published": s.get("published", 0), "planned": info["planned_items"][k],
                "cycles_decided": s.get("cycles_decided"), "proposals": s.get("proposals", {}),
                "refused": s.get("gossip_refused", 0) + s.get("sync_refused", 0),
            })
        return rows

    def down(self, say=print) -> list[dict]:
        info = self.info()
        for node in info["nodes"]:
            if _alive(node["pid"]):
                os.kill(node["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(n["pid"]) for n in info["nodes"]):
            time.sleep(0.1)
        for node in info["nodes"]:
            if _alive(node["pid"]):
                os.killpg(node["pid"], signal.SIGKILL)
                say(f"{node['name']} ignored SIGTERM for 30 s and was killed.")
        rows = self.status()
        say(f"Testnet in {self.dir} stopped; logs kept in {self.dir}/node-*.out and replicas in {self.home}.")
        return rows

    def wait(self, timeout: float, say=print) -> bool:
        """Until every node has published its plan and holds the plan's state; False on timeout."""
        info = self.info()
        deadline = time.monotonic() + timeout
        last = 0.0
        while time.monotonic() < deadline:
            rows = self.status()
            done = all(r["published"] >= r["planned"] and r["state_hash"] == info["expected_state_hash"] for r in rows)
            if done:
                return True
            if not all(r["running"] for r in rows):
                say("A node stopped unexpectedly: " + ", ".join(r["name"] for r in rows if not r["running"]))
                return False
            if time.monotonic() - last > 10:
                last = time.monotonic()
                say("  " + "  ".join(f"{r['name']}: {r['events']} ev, round {r['beacon_round']}" for r in rows))
            time.sleep(0.5)
        return False


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _alive(pid) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
