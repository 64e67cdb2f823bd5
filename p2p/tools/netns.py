"""Real network faults for testnets: each node in a Linux network namespace of its own, joined to
the others through a bridge in a "switch" namespace (docs/testing.md).

* **Partitions** are real: a node's link moves to another bridge, and packets between the two
  sides stop at layer 2, as when a city's network splits.  Healing moves it back.
* **Home routers** (``nat``): a node can sit behind a router that masquerades, as at home.  Its
  namespace then becomes the router (it keeps the node's address on the switch, its "public"
  one), and the node runs in a home namespace behind it, on 192.168.K.2, port
  :data:`NAT_PORT`.  The router drops unsolicited connections, like a home router, and, when
  the port is forwarded, sends that port on to the node.  This needs nftables (``nft``).
* **What this machine allows** (probed by :func:`probe`, measured here): namespaces, veth pairs
  and bridges work as root; the kernel has no ``netem`` queueing discipline (only tbf, htb and
  pfifo) and no traffic classifiers; nftables' NAT works once Debian's ``nftables`` package is
  installed (issue 16's probe found no ``nft`` binary and took that for the kernel).  Delay and
  loss are emulated inside the nodes (``p2p.tools.linkfaults``), and say so; on a kernel with
  ``sch_netem`` they could be made with ``tc qdisc add dev … root netem delay … loss …`` on the
  switch side.

Everything made is named after a short tag of the testnet's folder, and :meth:`Switchboard.teardown`
deletes it (deleting a namespace deletes its links).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

#: the port a node behind a home router listens on (and the router forwards, when it does)
NAT_PORT = 4001


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


def nat_usable() -> str:
    """'' if home routers (NAT) can be made here, else why not (a sentence)."""
    if not shutil.which("nft"):
        return "home routers need nftables: install it (Debian: apt-get install nftables)"
    name = f"klnat{os.getpid() % 10000}"
    try:
        _ip("netns", "add", name)
        done = _nft(name, "add table ip probe\nadd chain ip probe post { type nat hook postrouting priority 100; }\n"
                          "add rule ip probe post masquerade\n", check=False)
        return "" if done.returncode == 0 else f"nftables cannot make a NAT here: {done.stderr.strip()}"
    except NetnsError as exc:
        return str(exc)
    finally:
        _ip("netns", "del", name, check=False)


def _nft(ns: str, script: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script, capture_output=True, text=True,
                          timeout=20)
    if check and done.returncode:
        raise NetnsError(f"nft in {ns} failed: {done.stderr.strip()}")
    return done


class Switchboard:
    """The namespaces, links and bridges of one testnet of ``nodes`` nodes; ``nat`` maps a node
    behind a home router to whether the router forwards its port."""

    def __init__(self, folder: Path, nodes: int, nat: dict[int, bool] | None = None):
        tag = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:4]
        self.tag, self.nodes = tag, nodes
        self.nat = {int(k): bool(v) for k, v in (nat or {}).items()}
        self.switch = f"kls{tag}"
        self.subnet = (10, 200 + int(tag[:2], 16) % 50, int(tag[2:], 16))

    def ns(self, k: int) -> str:
        """Node ``k``'s namespace on the switch (its router's, when it is behind one)."""
        return f"kln{self.tag}{k}"

    def home(self, k: int) -> str:
        """The namespace node ``k`` runs in: behind its router, or on the switch."""
        return f"kln{self.tag}{k}h" if k in self.nat else self.ns(k)

    def listen(self, k: int) -> tuple[str, int | None]:
        """The address (and fixed port, behind a router) node ``k`` listens on."""
        return (f"192.168.{k + 1}.2", NAT_PORT) if k in self.nat else (self.address(k), None)

    def address(self, k: int) -> str:
        a, b, c = self.subnet
        return f"{a}.{b}.{c}.{k + 1}"

    def _port(self, k: int) -> str:
        return f"v{self.tag}{k}"  # the switch side of node k's link (at most 15 characters)

    def prefix(self, k: int) -> list[str]:
        """The command prefix that runs a process inside node ``k``'s namespace."""
        return ["ip", "netns", "exec", self.home(k)]

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
            if k in self.nat:
                self._home_router(k)

    def _home_router(self, k: int) -> None:
        """Put node ``k`` behind a masquerading router (its switch namespace) in a home namespace."""
        router, home, lan = self.ns(k), self.home(k), f"192.168.{k + 1}"
        _ip("netns", "add", home)
        _ip("link", "set", "lo", "up", ns=home)
        _ip("link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", home, ns=router)
        _ip("addr", "add", f"{lan}.1/24", "dev", "lan0", ns=router)
        _ip("link", "set", "lan0", "up", ns=router)
        _ip("addr", "add", f"{lan}.2/24", "dev", "eth0", ns=home)
        _ip("link", "set", "eth0", "up", ns=home)
        _ip("route", "add", "default", "via", f"{lan}.1", ns=home)
        subprocess.run(["ip", "netns", "exec", router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], check=True,
                       capture_output=True, timeout=20)
        forward = (f'add rule ip nat pre iifname "eth0" tcp dport {NAT_PORT} dnat to {lan}.2:{NAT_PORT}\n'
                   if self.nat[k] else "")
        # masquerade what leaves for the switch; drop what arrives unasked (a home router does not
        # answer with a reset: DCUtR-style hole punching needs the drop); forward one port if asked
        _nft(router, "add table ip nat\n"
                     "add chain ip nat pre { type nat hook prerouting priority -100; }\n"
                     "add chain ip nat post { type nat hook postrouting priority 100; }\n"
                     'add rule ip nat post oifname "eth0" masquerade\n' + forward +
                     "add table ip filter\n"
                     "add chain ip filter input { type filter hook input priority 0; }\n"
                     'add rule ip filter input iifname "eth0" ct state new drop\n')

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
            if k in self.nat:
                _ip("netns", "del", self.home(k), check=False)
            _ip("netns", "del", self.ns(k), check=False)
        _ip("netns", "del", self.switch, check=False)
