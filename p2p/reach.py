"""Can other nodes connect to this one?  A dial-back check (``/klero/reach/1.0.0``).

A representative's node at home usually sits behind a router: it can dial out (and so take part
fully) but nobody can dial in, so it serves no one.  Its owner should know which, in words.

py-libp2p 0.8.1 ships AutoNAT v1, but its dial-back calls ``host.connect``, which returns at
once when the requester is already connected, as it always is when it asks: every answer is
"reachable" (measured here; docs/network.md).  So this check dials back with a plain TCP
connection, which proves what matters: the port accepts connections from another machine.

* The **requester** sends one frame: the canonical CBOR array of the ``/ip4/…/tcp/…`` addresses
  it listens on (at most 8).
* The **server** dials the named ports only at the IP it sees the request come from (it cannot
  be made to scan someone else), each with a 5 s timeout, and answers one frame:
  ``{"reached": address or null, "why": text, "observed": that IP}``.  It answers each peer at
  most once a minute.  Behind a home router the requester names its private address, but the
  request comes from the router's public one: dialling that IP at the named port is what tells
  whether the router forwards the port (measured between namespaces with a real NAT:
  docs/network.md).
* The requester asks up to three peers and keeps a verdict: reachable as soon as one reached it,
  unreachable when every one that answered could not.
"""

from __future__ import annotations

import time

import trio

from consensus import cbor
from consensus.errors import InvalidInput, reject

PROTOCOL = "/klero/reach/1.0.0"
MAX_ADDRESSES = 8
DIAL_TIMEOUT = 5.0
#: seconds between two dial-backs for one peer (a server is never a port scanner for hire)
PER_PEER_EVERY = 60.0


def decode_request(data: bytes) -> list[tuple[str, int]]:
    """The (ip, port) pairs a requester says it listens on; InvalidInput for anything else."""
    value = cbor.decode(data, what="reach request")
    if type(value) is not list or not 0 < len(value) <= MAX_ADDRESSES or any(type(a) is not str or len(a) > 200 for a in value):
        raise reject("reach_bad_request", f"A reach request is a list of 1 to {MAX_ADDRESSES} addresses.")
    out = []
    for address in value:
        parts = address.split("/")
        if len(parts) < 5 or parts[1] != "ip4" or parts[3] != "tcp" or not parts[4].isdigit() or not 0 < int(parts[4]) < 65536:
            continue
        out.append((parts[2], int(parts[4])))
    return out


def sentence(verdict: dict) -> str:
    """What the owner is told."""
    state = verdict.get("state", "unknown")
    if state == "reachable":
        return f"Other nodes can connect to this node (at {verdict['address']}, checked by {verdict['checked_by']} peer(s))."
    if state == "unreachable":
        port = verdict.get("port")
        seen = verdict.get("seen_as")
        return ("Other nodes cannot connect to this node: it makes outgoing connections only. That is enough to take part, "
                "but it serves no one. "
                + (f"Its peers see it at {seen}, which is not its own address: it is behind a router (NAT). " if seen else "")
                + "To serve others, forward TCP port "
                + (f"{port} " if port else "")
                + "on your router to this computer (and allow it in the firewall), or run the node where it has a public "
                "address; set \"listen\" in the profile's settings to the address to listen on.")
    if state == "loopback":
        return "This node listens on 127.0.0.1 only: other machines cannot reach it (right for tests and the demo)."
    return "Whether other nodes can connect to this node is not known yet (it asks its peers once it has some)."


class Reach:
    """Both halves of the check, for one node."""

    def __init__(self, node):
        self.node = node
        self.verdict: dict = {"state": "unknown"}
        self._answered: dict[str, float] = {}  # peer -> when we last dialled it back
        self._asked: dict[str, bool] = {}  # peer -> whether it reached us
        self._observed: str | None = None  # the IP our peers see our connections come from

    # ---------------------------------------------------------------- server

    async def serve(self, stream) -> None:
        from . import sync

        try:
            peer = str(stream.muxed_conn.peer_id)
            remote = stream.get_remote_address()
            with trio.fail_after(DIAL_TIMEOUT * 2 + 5):
                data = await sync.read_frame(stream, 4096)
                now = time.monotonic()
                if now - self._answered.get(peer, -1e9) < PER_PEER_EVERY:
                    answer = {"reached": None, "why": "asked again too soon: once a minute"}
                else:
                    self._answered[peer] = now
                    if len(self._answered) > 1024:
                        self._answered.pop(next(iter(self._answered)))
                    answer = await self._dial_back(decode_request(data), remote[0] if remote else None)
                await sync.write_frame(stream, cbor.encode(answer))
                await stream.close()
        except InvalidInput as exc:
            await self.node._refuse_stream(stream, exc.rejection.code, exc.rejection.reason)
        except Exception:  # a peer's stream must never stop the node
            await self.node._reset(stream)

    async def _dial_back(self, addresses: list[tuple[str, int]], observed: str | None) -> dict:
        # only the IP the request came from is dialled, at the ports named: behind a router the
        # named IP is a private one, and the router may forward the port from its public IP
        ports = list(dict.fromkeys(port for _, port in addresses))[:2]  # two dials fit the answer's deadline
        if not observed or not ports:
            return {"reached": None, "why": "no TCP address was named", "observed": observed}
        for port in ports:
            with trio.move_on_after(DIAL_TIMEOUT):
                try:
                    conn = await trio.open_tcp_stream(observed, port)
                    await conn.aclose()
                    return {"reached": f"/ip4/{observed}/tcp/{port}", "why": "connected", "observed": observed}
                except OSError:
                    pass
        return {"reached": None, "why": "no connection could be made", "observed": observed}

    # ---------------------------------------------------------------- client

    async def check(self, peers: list) -> dict:
        """Ask up to three connected peers to dial us back; returns (and keeps) the verdict."""
        from . import sync

        host = self.node.host
        addresses = [str(a).split("/p2p/")[0] for a in host.get_addrs()]
        if all(a.startswith("/ip4/127.") for a in addresses):
            self.verdict = {"state": "loopback"}
            return self.verdict
        request = cbor.encode(addresses[:MAX_ADDRESSES])
        for peer in peers[:3]:
            try:
                with trio.fail_after(DIAL_TIMEOUT * 2 + 10):
                    stream = await host.new_stream(peer, [PROTOCOL])
                    await sync.write_frame(stream, request)
                    answer = cbor.decode(await sync.read_frame(stream, 4096), what="reach answer")
                    await stream.close()
            except Exception:
                continue  # no answer is no verdict
            if type(answer) is dict and "reached" in answer:
                seen = answer.get("observed")
                if type(seen) is str and len(seen) <= 64:
                    self._observed = seen
                if type(answer["reached"]) is str:
                    self._asked[str(peer)] = True
                    self.verdict = {"state": "reachable", "address": answer["reached"],
                                    "checked_by": sum(self._asked.values())}
                    return self.verdict
                if "too soon" not in str(answer.get("why", "")):
                    self._asked[str(peer)] = False
        if self._asked and not any(self._asked.values()):
            port = next((a.rsplit("/", 1)[1] for a in addresses if "/tcp/" in a), None)
            self.verdict = {"state": "unreachable", "checked_by": len(self._asked), "port": port}
            if self._observed and not any(f"/ip4/{self._observed}/" in a for a in addresses):
                self.verdict["seen_as"] = self._observed  # our connections come from a router's address
        return self.verdict
