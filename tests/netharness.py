"""Real `klero node` processes on 127.0.0.1 for the network tests: start, watch, kill, stop.

Every process is started in its own session, watched through its status file, and stopped at
the end of the test (SIGTERM, then SIGKILL after a bounded wait)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSPHRASE = "a long test passphrase"


class Net:
    def __init__(self, home: Path):
        self.home = home
        self.env = {**os.environ, "KLERO_HOME": str(home), "KLERO_PASSPHRASE": PASSPHRASE, "PYTHONUNBUFFERED": "1"}
        self.procs: dict[str, subprocess.Popen] = {}
        self.addresses: dict[str, str] = {}

    def klero(self, *args, timeout=120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "desktop.cli", *map(str, args)], capture_output=True, text=True,
                              env=self.env, cwd=ROOT, timeout=timeout)

    def profile(self, name: str) -> Path:
        if not (self.home / "profiles" / name).exists():
            done = self.klero("init", "--profile", name, "--kdf", "interactive")
            assert done.returncode == 0, done.stderr
        return self.home / "profiles" / name

    def start(self, name: str, *args, port: int | None = None) -> str:
        """Start a node; returns its listen address once it is up."""
        self.profile(name)
        out = open(self.home / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "desktop.cli", "node", "--profile", name, *(["--port", str(port)] if port is not None else []),
             "--sync-interval", "2", *map(str, args)],
            stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = self.status(name)
            if status and status.get("pid") == self.procs[name].pid and status.get("address"):
                self.addresses[name] = status["address"]
                return status["address"]
            if self.procs[name].poll() is not None:
                raise AssertionError(f"node {name} exited: {self.output(name)[-2000:]}")
            time.sleep(0.1)
        raise AssertionError(f"node {name} did not start: {self.output(name)[-2000:]}")

    def output(self, name: str) -> str:
        path = self.home / f"{name}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def status(self, name: str) -> dict | None:
        path = self.home / "profiles" / name / "node-status.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def wait_for(self, names, predicate, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        statuses = {}
        while time.monotonic() < deadline:
            statuses = {n: self.status(n) for n in names}
            if all(s and predicate(s) for s in statuses.values()):
                return statuses
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}: " + json.dumps(
            {n: {k: (s or {}).get(k) for k in ("state_hash", "events", "peers", "pid")} for n, s in statuses.items()}))

    def kill(self, name: str, sig=signal.SIGKILL) -> int:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, sig)
        return proc.wait(timeout=30)

    def stop(self, name: str) -> int:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            raise AssertionError(f"node {name} ignored SIGTERM for 30 s")

    def close(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


def refusal_report(statuses: dict[str, dict | None], logs: dict[str, str], tail: int = 30) -> str:
    """What a failed network test needs to be diagnosed: each node's refusals by code, with the
    examples its status file keeps (source, peer, item, reason), and the tail of its log."""
    lines = []
    for name in sorted(statuses):
        s = statuses[name] or {}
        lines.append(f"--- {name}: refused {s.get('gossip_refused', '?')} by gossip, {s.get('sync_refused', '?')} by sync; "
                     f"by code {json.dumps(s.get('refusals', {}), sort_keys=True)}; beacon round {s.get('beacon_round')}, "
                     f"events {s.get('events')}, state {str(s.get('state_hash', ''))[:16]}; "
                     f"sync exchanges broken off (not refusals) {json.dumps(s.get('sync_failures', {}), sort_keys=True)}; "
                     f"event-loop lag ms {json.dumps(s.get('loop_lag_ms'))}")
        for code, examples in sorted((s.get("refusal_examples") or {}).items()):
            for e in examples:
                lines.append(f"    {code}: {json.dumps(e, sort_keys=True)}")
        log = logs.get(name, "").splitlines()
        lines += [f"    | {line}" for line in log[-tail:]]
    return "\n".join(lines)

