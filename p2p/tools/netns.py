"""Real network faults for testnets: each node in a Linux network namespace of its own, joined to
the others through a bridge in a "switch" namespace (docs/testing.md).

* **Partitions** are real: a node's link moves to another bridge, and packets between the two
  sides stop at layer 2, as when a city's network splits.  Healing moves it back.
* **What this machine allows** (probed by :func:`probe`, measured here): namespaces, veth pairs
  and bridges work as root; the kernel has no ``netem`` queueing discipline (only tbf, htb and
  pfifo) and no traffic classifiers, and there is no iptables or nft for dropping packets.  So
  delay and loss are emulated inside the nodes instead (``p2p.tools.linkfaults``), and say so; on a
  kernel with ``sch_netem`` they could be made with ``tc qdisc add dev … root netem delay … loss …``
  on the switch side.

Everything made is named after a short tag of the testnet's folder, and :meth:`Switchboard.teardown`
deletes it (deleting a namespace deletes its links).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path


class NetnsError(RuntimeError):
    """The machine does not allow what a testnet with network namespaces needs."""


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if check and done.returncode:
        raise NetnsError(f"`{' '.join(cmd)}` failed: {done.stderr.strip() or done.stdout.strip()}")
    return done


def probe() -> dict:
    """What this machine permits: namespaces, veth pairs, bridges, netem (each True or a reason)."""
    out: dict = {}
    if os.geteuid() != 0:
        return {"namespaces": "needs root (CAP_NET_ADMIN): run the testnet as root, or without --netns"}
    name = f"klprobe{os.getpid() % 10000}"
    try:
        _ip("netns", "add", name)
        out["namespaces"] = True
        try:
            _ip("link", "add", "pv0", "type", "veth", "peer", "name", "pv1", ns=name)
            out["veth"] = True
            _ip("link", "add", "pb0", "type", "bridge", ns=name)
            out["bridge"] = True
            netem = subprocess.run(["ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "pv0", "root", "netem", "delay", "1ms"],
                                   capture_output=True, text=True, timeout=20)
            out["netem"] = True if netem.returncode == 0 else (netem.stderr.strip() or "tc netem unavailable")
        except NetnsError as exc:
            out.setdefault("veth", str(exc))
            out.setdefault("bridge", str(exc))
        except FileNotFoundError:
            out["netem"] = "tc is not installed"
    except (NetnsError, FileNotFoundError) as exc:
        out["namespaces"] = str(exc)
    finally:
        _ip("netns", "del", name, check=False)
    return out


def usable() -> str:
    """'' if partitions can be made here, else why not (a sentence)."""
    try:
        found = probe()
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        return f"network namespaces are not available here ({exc})"
    for need in ("namespaces", "veth", "bridge"):
        if found.get(need) is not True:
            return f"network namespaces are not usable here: {need}: {found.get(need, 'not probed')}"
    return ""


class Switchboard:
    """The namespaces, links and bridges of one testnet of ``nodes`` nodes."""

    def __init__(self, folder: Path, nodes: int):
        tag = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:4]
        self.tag, self.nodes = tag, nodes
        self.switch = f"kls{tag}"
        self.subnet = (10, 200 + int(tag[:2], 16) % 50, int(tag[2:], 16))

    def ns(self, k: int) -> str:
        return f"kln{self.tag}{k}"

    def address(self, k: int) -> str:
        a, b, c = self.subnet
        return f"{a}.{b}.{c}.{k + 1}"

    def _port(self, k: int) -> str:
        return f"v{self.tag}{k}"  # the switch side of node k's link (at most 15 characters)

    def prefix(self, k: int) -> list[str]:
        """The command prefix that runs a process inside node ``k``'s namespace."""
        return ["ip", "netns", "exec", self.ns(k)]

    def setup(self) -> None:
        self.teardown()
        _ip("netns", "add", self.switch)
        _ip("link", "set", "lo", "up", ns=self.switch)
        for bridge in ("br0", "br1"):
            _ip("link", "add", bridge, "type", "bridge", ns=self.switch)
            _ip("link", "set", bridge, "up", ns=self.switch)
        for k in range(self.nodes):
            ns, port = self.ns(k), self._port(k)
            _ip("netns", "add", ns)
            _ip("link", "set", "lo", "up", ns=ns)
            _ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns, ns=self.switch)
            _ip("link", "set", port, "master", "br0", ns=self.switch)
            _ip("link", "set", port, "up", ns=self.switch)
            _ip("addr", "add", f"{self.address(k)}/24", "dev", "eth0", ns=ns)
            _ip("link", "set", "eth0", "up", ns=ns)

    def partition(self, groups: list[list[int]]) -> None:
        """Split the nodes: the first group stays on bridge 0, the second moves to bridge 1 (a node
        named in no group stays where it is).  At most two sides."""
        if len(groups) > 2:
            raise NetnsError("A partition has two sides here (two bridges).")
        for side, group in enumerate(groups):
            for k in group:
                _ip("link", "set", self._port(k), "master", f"br{side}", ns=self.switch)

    def heal(self) -> None:
        for k in range(self.nodes):
            _ip("link", "set", self._port(k), "master", "br0", ns=self.switch)

    def teardown(self) -> None:
        for k in range(self.nodes):
            _ip("netns", "del", self.ns(k), check=False)
        _ip("netns", "del", self.switch, check=False)
