"""Local test networks: N `klero node` processes on 127.0.0.1, bot representatives spread over
them, a dev beacon, and a whole legislative run carried over the network (issue 7).

How the bots act (the default, *reactive*): each node hosts some of the bot representatives
(``p2p.reactive``).  After every beacon round and every panel message a node evaluates the
legislature on its own replica; its bots submit, draft, comment, amend and vote in the
committees they were drawn to, and take their panel duties (leases, cut-offs, agreement
messages, ``p2p.duties``) as any representative's node does.  Nothing is signed ahead: what a
panel decides, and when, follows from what the network delivered.  Node 0 runs the dev beacon:
it signs each round as it comes due, for as long as it runs, so a deadline a fault holds open
still closes.  A run is over once every node has decided the cycles asked for: the beacon then
stops (``beacon.last``) and every node must settle on one state that no longer changes.  If the
cycles are not decided within ``extra`` rounds after the plan's last one, the run has stalled:
the beacon stops all the same and the nodes must still agree on where they stand.

With ``--planned`` the nodes instead publish a precomputed simulation (``p2p.bots``), each
item when the beacon reaches the round it names: every node must then reach the plan's known
state hash (useful to measure the network alone).

Layout of a testnet folder: ``testnet.json`` (nodes, pids, addresses, schedule), ``charter.log``,
``beacon.json`` and ``beacon.json.secret`` (the dev beacon node 0 runs), ``beacon.last`` (once
the run is over: the last round node 0 signs) and ``bots-K.json`` (who node K hosts), or
``plan.log`` and ``node-K.plan`` when planned; ``node-K.out`` (each node's output) and ``home/``
(the nodes' profiles and replicas).
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

from ..logfile import item_round, write_log

#: seconds a reactive testnet's common state must stay unchanged after the last round to count as done
SETTLE_S = 3.0
PASSPHRASE = "testnet-dev-profile"  # dev profiles only: their keys guard nothing of value


class TestnetError(KleroError):
    """The testnet cannot be started, read or stopped as asked."""


@dataclass
class Plan:
    items: list[bytes]
    per_node: list[list[bytes]]
    round_zero: int
    last_round: int
    state_hash: str
    summary: dict


def make_plan(charter: str, reps: int, nodes: int, cycles: int, seed: int, behaviour=None) -> Plan:
    from ..audit import verify_log
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
    __test__ = False  # not a pytest class, whatever its name

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
           round_seconds: float | None = None, behaviour=None, say=print, trace: bool = False, planned: bool = False,
           people: tuple[str, ...] = (), bot_proposals: int = 4, typing: bool = False, netns: bool = False,
           nat: dict[int, bool] | None = None) -> dict:
        """Start the nodes.  By default the bots are *reactive*: each node hosts some and they act on
        what its replica holds, panels included (``p2p.reactive``); ``planned``: the nodes publish
        a precomputed simulation instead (every node must then reach its known state hash).

        ``people``: profile names of persons who join as representatives beside the bots, each
        with a node of their own and no bot acting for them; the first intake then waits 20
        rounds so they can submit for it.  ``bot_proposals``: proposals the bots submit a cycle.

        ``nat`` (with ``netns``): the nodes that sit behind a home router, each mapped to whether
        the router forwards its port (``p2p.tools.netns``); node 0, the seed, cannot."""
        if nodes < 1 or reps < 2 or nodes > 64:
            raise TestnetError("A testnet has 1 to 64 nodes and at least 2 representatives.")
        if cycles < 1:
            raise TestnetError("A testnet runs at least one cycle.")
        nat = {int(k): bool(v) for k, v in (nat or {}).items()}
        if nat and not netns:
            raise TestnetError("Home routers (--behind-nat) need a testnet in network namespaces: add --netns.")
        if any(not 0 < k < nodes for k in nat):
            raise TestnetError(f"Only nodes 1 to {nodes - 1} can sit behind a home router: node 0 is the seed everyone dials.")
        if self.info_path.exists() and any(_ours(n) for n in self.info().get("nodes", [])):
            raise TestnetError(f"A testnet is already running in {self.dir}; stop it with `klero testnet down --dir {self.dir}`.")
        self.dir.mkdir(parents=True, exist_ok=True)
        from .bots import Behaviour, load_template

        behaviour = behaviour or Behaviour(0, 0, 0, 0)
        for k in range(nodes):
            if not (self.home / "profiles" / f"node-{k}").exists():
                done = self._klero("init", "--profile", f"node-{k}", "--kdf", "interactive")
                if done.returncode:
                    raise TestnetError(f"Could not create profile node-{k}: {done.stderr.strip()}")
        keys = []
        for name in people:
            if not (self.home / "profiles" / name).exists():
                done = self._klero("init", "--profile", name, "--kdf", "interactive")
                if done.returncode:
                    raise TestnetError(f"Could not create profile {name}: {done.stderr.strip()}")
            keys.append(_public_key(self.home / "profiles" / name))
        if planned and people:
            raise TestnetError("People join reactive testnets only (a planned one publishes a fixed log).")
        board = None
        if netns:
            from .netns import Switchboard, nat_usable, usable

            why = usable() or (nat_usable() if nat else "")
            if why:
                raise TestnetError(f"A testnet with real partitions needs network namespaces, but {why}.")
            if people or planned:
                raise TestnetError("A testnet in network namespaces runs reactive bots only (a person's app reaches its node "
                                   "over 127.0.0.1, which a namespace hides).")
            board = Switchboard(self.dir, nodes, nat)
            board.setup()
        seed_port = 0
        if planned:
            say(f"Planning {cycles} cycles of the {charter!r} charter with {reps} bot representatives ...")
            plan = make_plan(charter, reps, nodes, cycles, seed, behaviour)
            write_log(self.dir / "plan.log", plan.items)
            for k, part in enumerate(plan.per_node):
                write_log(self.dir / f"node-{k}.plan", [plan.items[0], *part])
            round_zero, last_round, expected, summary = plan.round_zero, plan.last_round, plan.state_hash, plan.summary
            planned_items = [len(p) for p in plan.per_node]
        else:
            # node 0 is the charter's seed peer: the others find it there, not on their command line
            seed_port = _free_port()
            seed_host = board.address(0) if board else "127.0.0.1"
            seed_peer = f"/ip4/{seed_host}/tcp/{seed_port}/p2p/{_peer_id(self.home / 'profiles' / 'node-0')}"
            round_zero, last_round = self._reactive(charter, reps, nodes, cycles, seed, behaviour, (seed_peer,),
                                                    tuple(keys), bot_proposals, typing)
            # every replica starts from the charter log: the charter, and with constituencies the
            # registrations and constituencies the assembly starts from (``--join`` takes the charter only)
            for name in [f"node-{k}" for k in range(nodes)] + list(people):
                self._seed_replica(name)
            expected, summary, planned_items = None, {}, [None] * nodes
        period = load_template(charter).get("period_ms", 1000) / 1000
        step = round_seconds if round_seconds is not None else period
        start_at = time.time() + 4 + 0.6 * nodes  # every node is up before the first round is due
        info = {"charter": charter, "mode": "planned" if planned else "reactive", "nodes": [], "reps": reps,
                "cycles": cycles, "seed": seed, "round_seconds": step, "round_zero": round_zero, "last_round": last_round,
                "start_at": start_at, "expected_state_hash": expected, "expected": summary, "netns": nodes if board else 0,
                "nat": {str(k): v for k, v in nat.items()},
                "planned_items": planned_items, "started": time.time()}
        for k in range(nodes):
            extra = []
            for j in sorted({0, k - 1, (k // 2)} - {k} - ({0} if not planned else set())):
                if 0 <= j < k:
                    extra += ["--bootstrap", info["nodes"][j]["address"]]
            if trace:
                extra += ["--trace", str(self.dir / f"node-{k}.trace")]
            if board is not None:  # delay and loss between namespaces: emulated in the node (p2p.tools.linkfaults)
                extra += ["--link-faults", str(self.dir / f"node-{k}.links.json")]
            if planned:
                extra += ["--join", str(self.dir / "plan.log"), "--publish", str(self.dir / f"node-{k}.plan")]
            else:
                extra += ["--join", str(self.dir / "charter.log"), "--bots", str(self.dir / f"bots-{k}.json")]
                if k == 0:  # the seed of a fresh network: it acts before any peer has connected
                    extra += ["--act-alone", "--dev-beacon", str(self.dir / "beacon.json.secret"), "--beacon-until", str(self.dir / "beacon.last"),
                              "--port", str(seed_port)]
            node = self._start(k, extra, start_at, step, round_zero, board=board)
            node["extra"] = extra
            info["nodes"].append(node)
            self._save(info)
        for name, key in zip(people, keys):
            extra = ["--join", str(self.dir / "charter.log"), "--bootstrap", info["nodes"][0]["address"]]
            node = self._start(len(info["nodes"]), extra, start_at, step, round_zero, name=name)
            node.update(extra=extra, person=True, public_key=key.hex())
            info["nodes"].append(node)
            self._save(info)
        rounds = last_round - round_zero + 1
        say(f"Testnet of {nodes} node{'s' if nodes != 1 else ''} up in {self.dir}; {cycles} cycle{'s' if cycles != 1 else ''} "
            f"planned over {rounds} beacon rounds at {step} s each (about {rounds * step / 60:.1f} min)"
            + ("." if planned else "; the beacon goes on until the run ends."))
        return info

    def _reactive(self, charter: str, reps: int, nodes: int, cycles: int, seed: int, behaviour,
                  bootstrap: tuple[str, ...], people: tuple[bytes, ...] = (), proposals: int = 4,
                  typing: bool = False) -> tuple[int, int]:
        """Files for reactive bots: the charter, the dev beacon's rounds (node 0 publishes them on
        time) and each node's share of the bots; returns the first and last round."""
        from dataclasses import asdict

        from .bots import AssemblySim
        from .reactive import write_bots_file

        start_round = 20 if people else 2
        from .bots import load_template

        # seats come from constituencies after cycle 0 (the template's suggestion; 0: the founding roster for ever)
        constituents = int(load_template(charter).get("suggested_constituents", 0))
        sim = AssemblySim(charter, reps=reps, cycles=cycles, seed=seed, behaviour=behaviour, bootstrap=bootstrap,
                          people=people, start_round=start_round, proposals=proposals, constituents=constituents)
        if sim.dev is None:
            raise TestnetError(f"The {charter!r} charter uses a public beacon; a testnet needs a dev beacon (try testnet or demo).")
        last_round = sim.legislature.cycle_start(cycles)
        # the charter and the acts the assembly starts from (registrations, constituencies, endorsements)
        person_keys = {}
        if constituents:
            # the testnet made the persons' profiles (dev keys under PASSPHRASE): it signs their
            # joining their neighbours' constituency before the first boundary, as they would
            from .. import profile

            for folder in (self.home / "profiles").iterdir():
                if (folder / "identity.json").exists() and _public_key(folder) in people:
                    key = profile.unlock(profile.Profile(folder.name, folder), PASSPHRASE)
                    person_keys[bytes(key.verify_key)] = key
        write_log(self.dir / "charter.log", [sim.charter_wire, *(sim.setup_acts(person_keys) if constituents else [])])
        # node 0 runs the dev beacon: it signs each round when due, for as long as the run needs
        # (a deadline a fault holds open still closes); the run ends it by writing beacon.last
        from ..beacon import write_dev_chain

        write_dev_chain(self.dir / "beacon.json", sim.dev.chain, sim.dev.secret)
        (self.dir / "beacon.last").unlink(missing_ok=True)
        for k in range(nodes):
            write_bots_file(self.dir / f"bots-{k}.json", template=charter, reps=reps, seed=seed, behaviour=asdict(behaviour),
                            indices=[i for i in range(reps) if i % nodes == k], proposals=sim.proposals_per_cycle,
                            people=people, start_round=start_round, typing=typing, constituents=constituents)
        return 1, last_round

    def _seed_replica(self, name: str) -> None:
        from ..logfile import LogDamage, read_items
        from ..store import ReplicaStore

        path = self.home / "profiles" / name / "replica.sqlite"
        if path.exists():
            return
        items = [i[2] for i in read_items(self.dir / "charter.log") if not isinstance(i, LogDamage)]
        with ReplicaStore.create(path, items[0]) as store:
            for item in items[1:]:
                store.add_item(item)

    def _board(self, info: dict | None = None):
        info = info or self.info()
        if not info.get("netns"):
            return None
        from .netns import Switchboard

        return Switchboard(self.dir, info["netns"], {int(k): v for k, v in info.get("nat", {}).items()})

    def _start(self, k: int, extra: list[str], start_at: float, step: float, round_zero: int, name: str = "",
               board=None) -> dict:
        """Start node ``k`` (in its network namespace when ``board`` is given)."""
        name = name or f"node-{k}"
        out = open(self.dir / f"{name}.out", "ab")
        prefix, listen = [], []
        if board is not None:
            host, port = board.listen(k)
            prefix, listen = board.prefix(k), ["--listen", host, *(["--port", str(port)] if port else [])]
        args = [*prefix, sys.executable, "-m", "desktop.cli", "node", "--profile", name, *listen, "--start-at", f"{start_at:.3f}",
                "--round-seconds", str(step), "--round-zero", str(round_zero), "--sync-interval", "3", *extra]
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        status_path = self.home / "profiles" / name / "node-status.json"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = _read_json(status_path)
            if status and status.get("pid") == proc.pid and status.get("address"):
                address = status["address"]
                if board is not None and k in board.nat:  # others dial its router (which may forward the port)
                    address = address.replace(f"/ip4/{board.listen(k)[0]}/", f"/ip4/{board.address(k)}/")
                return {"name": name, "pid": proc.pid, "address": address, "status": str(status_path)}
            if proc.poll() is not None:
                raise TestnetError(f"{name} exited at start; see {self.dir / f'{name}.out'}.")
            time.sleep(0.1)
        proc.kill()
        raise TestnetError(f"{name} did not start within 60 s; see {self.dir / f'{name}.out'}.")

    def outcomes(self, k: int = 0) -> dict:
        """The legislature's outcomes in node ``k``'s replica (the node must be stopped)."""
        from ..store import ReplicaStore

        with ReplicaStore(self.home / "profiles" / f"node-{k}" / "replica.sqlite") as store:
            return outcomes_of(store.replica)

    def status(self) -> list[dict]:
        info = self.info()
        rows = []
        now = time.time()
        due = int((now - info["start_at"]) / info["round_seconds"]) + info["round_zero"] if now > info["start_at"] else 0
        # the beacon goes on past the plan (reactive runs) until the run ends it; planned runs end at their plan
        stopped_at = self.beacon_end() if info.get("mode") == "reactive" else info["last_round"]
        faults = self.faults(info)
        end = due if stopped_at is None else stopped_at
        for k, node in enumerate(info["nodes"]):
            s = _read_json(Path(node["status"])) or {}
            rows.append({
                "name": node["name"], "running": _ours(node), "state_hash": s.get("state_hash", ""),
                "peers": s.get("peers", 0), "events": s.get("events", 0), "beacon_round": s.get("beacon_round", 0),
                "lag_rounds": max(0, min(due, end) - s.get("beacon_round", 0)) if due else 0,
                "published": s.get("published", 0), "planned": (info["planned_items"] + [None] * len(info["nodes"]))[k],
                "cycles_decided": s.get("cycles_decided"), "cycle": s.get("cycle"), "proposals": s.get("proposals", {}),
                "refused": s.get("gossip_refused", 0) + s.get("sync_refused", 0),
                "refusals": s.get("refusals", {}), "refusal_examples": s.get("refusal_examples", {}),
                "duties": s.get("duties", {}), "paused": bool(node.get("paused")),
                "waiting": s.get("waiting", ""), "waiting_on": [self._who(key, info) for key in s.get("waiting_on", [])],
                "round_of": info["last_round"], "round_seconds": info["round_seconds"], "beacon_end": stopped_at, "due_round": due,
                "cycles_asked": info["cycles"], "faults": faults,
                "reach": (s.get("reachable") or {}).get("state"),
                "home_router": {True: "forwarded", False: "not forwarded"}.get(info.get("nat", {}).get(str(k))),
            })
        return rows

    def kill(self, k: int) -> bool:
        """SIGKILL node ``k`` (fault tests: no shutdown, no flush); False if it was not running."""
        node = self.info()["nodes"][k]
        if not _ours(node):
            return False
        os.killpg(node["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(node["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        return True

    def restart(self, k: int) -> dict:
        """Start node ``k`` again on its replica, with the arguments it first had."""
        info = self.info()
        node = info["nodes"][k]
        if _ours(node):
            raise TestnetError(f"{node['name']} is still running.")
        board = self._board(info) if not node.get("person") else None
        fresh = self._start(k, node["extra"], info["start_at"], info["round_seconds"], info["round_zero"], name=node["name"],
                            board=board)
        info["nodes"][k] = {**node, **fresh, "paused": False}  # still tracked: status, down, kill
        self._save(info)
        return info["nodes"][k]

    def _who(self, key: str, info: dict) -> str:
        """A key as a tester knows it: "rep 17 on node-3 (down)", or a person's profile."""
        who = getattr(self, "_keys", None)
        if who is None:
            import hashlib

            from nacl.signing import SigningKey

            who = {}
            n = len([x for x in info["nodes"] if not x.get("person")]) or 1
            for i in range(info.get("reps", 0)):
                pub = bytes(SigningKey(hashlib.sha256(f"klero-sim/{info.get('seed', 1)}/rep/{i}".encode()).digest()).verify_key)
                who[pub.hex()] = (f"rep {i}", i % n)
            for k, node in enumerate(info["nodes"]):
                if node.get("public_key"):
                    who[node["public_key"]] = (node["name"], k)
            self._keys = who
        name, k = who.get(key, (key[:12] + "…", None))
        if k is None:
            return name
        node = info["nodes"][k]
        state = "down" if not _ours(node) else "paused" if node.get("paused") else "up"
        return name if node.get("person") else f"{name} on {node['name']} ({state})"

    def index(self, ref: str | int) -> int:
        """A node by its name (node-3, alice) or position."""
        nodes = self.info()["nodes"]
        for k, node in enumerate(nodes):
            if str(ref) in (node["name"], str(k)):
                return k
        raise TestnetError(f"No node {ref!r} in this testnet; its nodes are {', '.join(n['name'] for n in nodes)}.")

    def pause(self, k: int, paused: bool = True) -> None:
        """SIGSTOP (or SIGCONT) node ``k``: a frozen process keeps its connections and answers
        nothing, like a laptop put to sleep."""
        info = self.info()
        node = info["nodes"][k]
        if not _ours(node):
            raise TestnetError(f"{node['name']} is not running.")
        os.killpg(node["pid"], signal.SIGSTOP if paused else signal.SIGCONT)
        node["paused"] = paused
        self._save(info)

    def down(self, say=print) -> list[dict]:
        info = self.info()
        ours = []
        for node in info["nodes"]:
            if _ours(node):
                ours.append(node)
                if node.get("paused"):
                    os.killpg(node["pid"], signal.SIGCONT)  # a stopped process cannot act on SIGTERM
                os.kill(node["pid"], signal.SIGTERM)
            elif _alive(node["pid"]):
                say(f"Process {node['pid']} is no longer {node['name']} (its id was reused): left alone.")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(n["pid"]) for n in ours):
            time.sleep(0.1)
        for node in ours:
            if _alive(node["pid"]):
                os.killpg(node["pid"], signal.SIGKILL)
                say(f"{node['name']} ignored SIGTERM for 30 s and was killed.")
        rows = self.status()
        board = self._board(info)
        if board is not None:
            board.teardown()  # the namespaces and their links go; replicas and logs stay
        say(f"Testnet in {self.dir} stopped; logs kept in {self.dir}/node-*.out and replicas in {self.home}.")
        return rows

    def partition(self, groups: list[list[str | int]]) -> None:
        """Split the network between two sides (node names or numbers): a real partition, at the
        link layer, between network namespaces (``klero testnet up --netns``)."""
        board = self._board()
        if board is None:
            raise TestnetError("Partitions need a testnet in network namespaces: start it with --netns.")
        board.partition([[self.index(x) for x in group] for group in groups])

    def heal(self) -> None:
        """Join a partition again and take away every delay and loss."""
        info = self.info()
        board = self._board(info)
        if board is None:
            raise TestnetError("Partitions, delay and loss need a testnet in network namespaces: start it with --netns.")
        board.heal()
        info["links"] = {}
        self._save(info)
        self._write_links(info)

    def degrade(self, groups: list[list[str | int]], *, delay_ms: float | None = None, loss: float | None = None) -> None:
        """Delay (milliseconds, each way) or loss (a share of TCP segments) on every link between
        the two sides; what is not given stays as it was.  Emulated in the nodes
        (``p2p.tools.linkfaults``: this kernel has no netem), between network namespaces."""
        info = self.info()
        if self._board(info) is None:
            raise TestnetError("Delay and loss need a testnet in network namespaces: start it with --netns.")
        if delay_ms is not None and not 0 <= delay_ms <= 10_000:
            raise TestnetError("A delay is 0 to 10,000 ms.")
        if loss is not None and not 0 <= loss <= 0.9:
            raise TestnetError("Loss is 0 to 90 %.")
        a, b = ([self.index(x) for x in group] for group in groups)
        links = info.setdefault("links", {})
        for left, right in [(i, j) for i in a for j in b] + [(j, i) for i in a for j in b]:
            if left == right:
                continue
            fault = links.setdefault(str(left), {}).setdefault(str(right), {"delay_ms": 0, "loss": 0})
            if delay_ms is not None:
                fault["delay_ms"] = delay_ms
            if loss is not None:
                fault["loss"] = loss
        self._save(info)
        self._write_links(info)

    def _write_links(self, info: dict) -> None:
        from .linkfaults import write

        board = self._board(info)
        for k in range(info["netns"]):
            mine = (info.get("links") or {}).get(str(k), {})
            write(self.dir / f"node-{k}.links.json", {board.address(int(j)): f for j, f in mine.items() if f["delay_ms"] or f["loss"]})

    def faults(self, info: dict | None = None) -> list[str]:
        """The link faults in force, in words ("node-0 ↔ node-3: 200 ms delay each way, 5 % loss")."""
        info = info or self.info()
        names = [n["name"] for n in info["nodes"]]
        links = info.get("links") or {}
        return [f"{names[int(i)]} ↔ {names[int(j)]}: " + ", ".join(
                    ([f"{f['delay_ms']:g} ms delay each way"] if f["delay_ms"] else []) + ([f"{f['loss']:.0%} loss"] if f["loss"] else []))
                for i, row in sorted(links.items(), key=lambda kv: int(kv[0])) for j, f in sorted(row.items(), key=lambda kv: int(kv[0]))
                if int(i) < int(j) and (f["delay_ms"] or f["loss"])]

    def apply(self, step: dict) -> str:
        """One step of a scenario (``load_scenario``); returns what it did, in words."""
        if "partition" in step:
            self.partition(step["partition"])
            return "partitioned " + " | ".join(", ".join(map(str, g)) for g in step["partition"])
        if step.get("heal"):
            self.heal()
            return "healed the network (no partition, delay or loss)"
        if "delay" in step or "loss" in step:
            groups = step.get("delay") or step.get("loss")
            if "delay" in step:
                self.degrade(groups, delay_ms=step["ms"])
                what = f"{step['ms']:g} ms delay"
            else:
                self.degrade(groups, loss=step["percent"] / 100)
                what = f"{step['percent']:g} % loss"
            return f"{what} between " + " | ".join(", ".join(map(str, g)) for g in groups)
        for act in ("kill", "restart", "pause", "resume"):
            if act in step:
                k = self.index(step[act])
                {"kill": self.kill, "restart": self.restart, "pause": lambda k: self.pause(k, True),
                 "resume": lambda k: self.pause(k, False)}[act](k)
                return f"{act} {self.info()['nodes'][k]['name']}"
        raise TestnetError(f"Unknown scenario step {step!r}.")

    def extra_rounds(self, info: dict | None = None) -> int:
        """Rounds a reactive run waits past the plan's last round for the cycles to be decided
        before it calls the assembly stalled: one cycle's worth."""
        info = info or self.info()
        return max(10, (info["last_round"] - info["round_zero"]) // max(1, info["cycles"]))

    def stop_beacon(self, after: int) -> None:
        """Node 0 signs no round after ``after`` (it reads ``beacon.last`` once a second)."""
        tmp = self.dir / "beacon.last.tmp"
        tmp.write_text(f"{after}\n")
        os.replace(tmp, self.dir / "beacon.last")

    def beacon_end(self) -> int | None:
        """The last round node 0 signs, once the run has ended the beacon."""
        try:
            text = (self.dir / "beacon.last").read_text().strip()
            return int(text) if text.isdigit() else None
        except OSError:
            return None

    def wait(self, timeout: float, say=print, scenario: list[dict] = (), extra_rounds: int | None = None) -> "Outcome":
        """Until the run is over everywhere; the result is true when every node agrees.

        Planned: every node published its plan and holds the plan's state.  Reactive: every node
        has decided the cycles asked for (and the scenario is played out); the beacon then stops,
        and every node must hold one state that stays the same for ``SETTLE_S`` seconds.  If the
        beacon passes the plan's last round (or the scenario's) by ``extra_rounds`` (default: one
        cycle) with cycles still undecided, the assembly has *stalled*: the beacon stops all the
        same and the nodes must still agree on where they stand.

        ``scenario``: faults to make as the beacon reaches their rounds; nodes a step stopped
        (and no later step restarted) are left out of the end condition."""
        info = self.info()
        deadline = time.monotonic() + timeout
        last = 0.0
        stable_since, stable_hash = None, None
        steps = sorted(scenario, key=lambda s: s["round"])
        give_up = max([info["last_round"]] + [s["round"] for s in steps]) + (
            self.extra_rounds(info) if extra_rounds is None else extra_rounds)
        stopped: set[str] = set()
        ending = self.beacon_end()
        stalled = False
        while time.monotonic() < deadline:
            rows = self.status()
            now = max((r["beacon_round"] for r in rows if r["running"]), default=0)
            while steps and steps[0]["round"] <= now:
                step = steps.pop(0)
                say(f"  round {now}: {self.apply(step)}")
                if "kill" in step:
                    stopped.add(info["nodes"][self.index(step["kill"])]["name"])
                if "restart" in step:
                    stopped.discard(info["nodes"][self.index(step["restart"])]["name"])
                rows = self.status()
            rows = [r for r in rows if r["name"] not in stopped]
            if info.get("expected_state_hash"):
                if all(r["published"] >= r["planned"] and r["state_hash"] == info["expected_state_hash"] for r in rows):
                    return Outcome(True)
            elif ending is None:
                decided = min((r["cycles_decided"] or 0 for r in rows), default=0)
                if (decided >= info["cycles"] and not steps) or now >= give_up:
                    stalled, ending = decided < info["cycles"], now
                    self.stop_beacon(ending)
                    say(f"  round {now}: " + (f"every node decided the cycles asked for ({info['cycles']})" if not stalled else
                                              f"STALLED: {decided} of {info['cycles']} cycle(s) decided {now - info['last_round']} "
                                              f"rounds after the plan's last round")
                        + f"; the beacon stops after round {ending} and the nodes settle.")
            else:
                hashes = {r["state_hash"] for r in rows}
                if len(hashes) == 1 and all(r["beacon_round"] >= ending for r in rows):
                    if stable_hash != next(iter(hashes)):
                        stable_hash, stable_since = next(iter(hashes)), time.monotonic()
                    elif time.monotonic() - stable_since >= SETTLE_S:
                        return Outcome(True, stalled)
                else:
                    stable_hash = None
            if not all(r["running"] for r in rows):
                say("A node stopped unexpectedly: " + ", ".join(r["name"] for r in rows if not r["running"]))
                return Outcome(False, stalled, "a node stopped unexpectedly")
            if time.monotonic() - last > 10:
                last = time.monotonic()
                say("  " + "  ".join(f"{r['name']}: {r['events']} ev, round {r['beacon_round']}, "
                                     f"{r['cycles_decided'] if r['cycles_decided'] is not None else '-'} cycles" for r in rows))
            time.sleep(0.5)
        if not info.get("expected_state_hash") and ending is None:
            self.stop_beacon(max((r["beacon_round"] for r in self.status()), default=0))
        return Outcome(False, stalled, f"no end within {timeout:.0f} s")


@dataclass(frozen=True)
class Outcome:
    """How a run ended: ``converged`` (every node holds one final state; the object is true
    then), ``stalled`` (fewer cycles decided than asked), and why it did not converge."""

    converged: bool
    stalled: bool = False
    why: str = ""

    def __bool__(self) -> bool:
        return self.converged


SCENARIO_ACTS = ("partition", "heal", "kill", "restart", "pause", "resume", "delay", "loss")
#: what a step with each act carries besides its round
SCENARIO_EXTRA = {"delay": "ms", "loss": "percent"}


def load_scenario(path) -> list[dict]:
    """A scenario file: ``{"steps": [{"round": 30, "partition": [["node-0", "node-1", "node-2"],
    ["node-3", "node-4"]]}, {"round": 50, "heal": true}, {"round": 60, "kill": "node-2"},
    {"round": 70, "restart": "node-2"}, {"round": 80, "delay": [["node-0"], ["node-1"]], "ms": 200},
    {"round": 90, "loss": [["node-0"], ["node-1"]], "percent": 5}, ...]}``; each step happens once
    the beacon reaches its round (``heal`` also ends delay and loss)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.loads(f.read(1 << 20))
    except (OSError, ValueError) as exc:
        raise TestnetError(f"Cannot read the scenario {path}: {exc}.") from None
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, list) or not steps:
        raise TestnetError(f"The scenario {path} needs a list of steps: {{\"steps\": [{{\"round\": 30, \"kill\": \"node-2\"}}]}}.")
    for n, step in enumerate(steps, 1):
        acts = [a for a in SCENARIO_ACTS if a in step] if isinstance(step, dict) else []
        extra = {SCENARIO_EXTRA[acts[0]]} if len(acts) == 1 and acts[0] in SCENARIO_EXTRA else set()
        if (not isinstance(step, dict) or type(step.get("round")) is not int or step["round"] < 0 or len(acts) != 1
                or set(step) != {"round", acts[0], *extra}):
            raise TestnetError(f"Step {n} of {path} must name a round and one of {', '.join(SCENARIO_ACTS)} "
                               "(a delay with its \"ms\", a loss with its \"percent\").")
        if acts[0] in ("partition", "delay", "loss") and (not isinstance(step[acts[0]], list) or len(step[acts[0]]) != 2
                                                         or not all(isinstance(g, list) and g for g in step[acts[0]])):
            raise TestnetError(f"Step {n} of {path}: a {acts[0]} is between two lists of nodes, e.g. [[\"node-0\"], [\"node-1\"]].")
        if acts[0] == "heal" and step["heal"] is not True:
            raise TestnetError(f"Step {n} of {path}: write \"heal\": true.")
        if acts[0] in ("kill", "restart", "pause", "resume") and not isinstance(step[acts[0]], (str, int)):
            raise TestnetError(f"Step {n} of {path}: name the node to {acts[0]} (\"node-2\").")
        for key in extra:
            if type(step[key]) not in (int, float) or not 0 <= step[key] <= (10_000 if key == "ms" else 90):
                raise TestnetError(f"Step {n} of {path}: \"{key}\" is a number from 0 to {10_000 if key == 'ms' else 90}.")
    return steps


def check_scenario(steps: list[dict], nodes: int) -> None:
    """Every node a scenario names exists in a testnet of ``nodes`` nodes (a typo found before the
    run, not in its middle)."""
    names = {f"node-{k}" for k in range(nodes)} | {str(k) for k in range(nodes)}
    for n, step in enumerate(steps, 1):
        for act in ("partition", "delay", "loss", "kill", "restart", "pause", "resume"):
            if act in step:
                refs = [x for group in step[act] for x in group] if act in ("partition", "delay", "loss") else [step[act]]
                unknown = [str(x) for x in refs if str(x) not in names]
                if unknown:
                    raise TestnetError(f"Step {n} names {', '.join(unknown)}, but this testnet has node-0 to node-{nodes - 1}.")


def outcomes_of(replica) -> dict:
    """What a replica's legislature decided: cycles, proposal statuses, what passed, and how the
    deadlines were settled (by which panels, in how many agreement rounds)."""
    from consensus.legislature import Legislature

    leg = Legislature(replica.charter, replica.charter_event.round)
    result = leg.evaluate_replica(replica, explain=False)
    statuses: dict[str, int] = {}
    for p in result.proposals.values():
        statuses[p.status] = statuses.get(p.status, 0) + 1
    kinds: dict[str, int] = {}
    for r in replica.records.values():
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    rounds = [d["certificate"]["agreement_round"] for d in result.deadlines if "certificate" in d]
    return {"cycles": result.cycles, "proposals": dict(sorted(statuses.items())),
            "passed": [p.title for p in result.proposals.values() if p.status == "passed"],
            "deadlines_decided": len(result.deadlines), "seed_lag_max": max((d["seed_round"] - d["round"] for d in result.deadlines), default=0),
            "agreement_rounds_max": max(rounds, default=0),
            "events_by_kind": dict(sorted(kinds.items())), "waiting": result.waiting,
            # why each proposal stands where it does (what a failed run needs to be diagnosed)
            "why": {p.title: [f"cycle {c} round {r}: {s}{f' at stage {st}' if st else ''}{f' ({why})' if why else ''}"
                              for c, r, s, st, why in p.history] for p in result.proposals.values()},
            "deadlines": [f"{d.get('what', '?')} c{d.get('cycle', '?')} s{d.get('stage', '?')}: round {d.get('round', '?')}, "
                          f"generation {d.get('generation', 0)}" for d in result.deadlines]}


def _public_key(folder: Path) -> bytes:
    return bytes.fromhex(json.loads((folder / "identity.json").read_text())["public_key"])


def _free_port() -> int:
    """A TCP port on 127.0.0.1 free right now (the seed node binds it a moment later)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peer_id(profile_dir: Path) -> str:
    """The libp2p peer id of a profile's key (what a node of that profile listens as)."""
    from libp2p.crypto.ed25519 import Ed25519PublicKey
    from libp2p.peer.id import ID

    public = bytes.fromhex(json.loads((profile_dir / "identity.json").read_text())["public_key"])
    return str(ID.from_pubkey(Ed25519PublicKey.from_bytes(public)))


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _ours(node: dict) -> bool:
    """Is the process ``testnet.json`` names for ``node`` still the node this testnet started?
    A process id is reused once its process is gone: the file alone must never make us signal
    an unrelated process.  (Where /proc is missing, the id is trusted.)"""
    pid = node.get("pid")
    if not _alive(pid):
        return False
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as f:
            args = f.read(1 << 16).split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except (OSError, ValueError):
        return False
    return b"desktop.cli" in args and b"node" in args and node.get("name", "").encode() in args


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
