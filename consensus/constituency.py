"""Constituencies and seats: who represents whom, judged at cycle boundaries (DESIGN.md §5).

A :class:`Roll` replays the representation acts (certifications, revocations, foundings, joins,
leaves, endorsements, willingness) in a fixed order, boundary by boundary, and says who would
hold each constituency's seat.  Pure, like the rest of the core: records and beacon randomness
in, state and reasons out.

* **Order.** Acts are applied by the beacon round they name.  Within a round each author's acts
  keep their chain order, and across authors they go in phases (registrars' acts, leaving,
  founding, joining, willingness, endorsing: ``_waves``), so a join can name a constituency
  founded in the same round: a function of the set of events, never of arrival.
* **Boundaries.** The acts naming a round before a cycle's first round settle that boundary.
  The seats a node derives are what its cut-off lists; the seats that *count* are those the
  boundary's panel decided (more than half of the cut-offs used), so a late or backdated act
  can change what a node explains, never the certified roster (``consensus.legislature``).
* **Bad acts** are neutralised with a reason, never fatal: an uncertified or revoked key, a
  join beyond the cap or into a second constituency, an endorsement of a non-member, more than
  ``acts_per_cycle`` acts in a cycle, a registrar certifying one person twice.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .charter import DRAW, RANDOM, Charter
from .kinds import REPRESENTATION, Certify, Endorse, Found, Join, Leave, Revoke, Serve

#: within one beacon round nothing says which act came first across authors, so acts apply in
#: phases: registrars' acts, leaving, founding, joining, willingness, endorsing (a join can name a
#: constituency founded in the same round, and an endorsement a member who joined in it)
_PHASE = {Certify.KIND: 0, Revoke.KIND: 0, Leave.KIND: 1, Found.KIND: 2, Join.KIND: 3, Serve.KIND: 4, Endorse.KIND: 5}


def _order(r) -> tuple:
    return r.round, r.author, r.seq


def _waves(batch: list) -> list:
    """One round's acts (sorted by author and seq) in the order they apply: each author's in
    their chain order, and across authors by phase: in each wave, phase by phase, every author
    whose next act has that phase takes it.  A function of the set of acts.

    Computed in one pass: an author's act goes in the wave of their previous act if its phase is
    not earlier, else in the next wave; then the acts sort by (wave, phase, author, seq)."""
    keyed = []
    author, wave, last = None, 0, -1
    for r in batch:
        phase = _PHASE.get(r.kind, 6)
        if r.author != author:
            author, wave, last = r.author, 0, -1
        elif phase < last:
            wave += 1
        last = phase
        keyed.append((wave, phase, r.author, r.seq, r))
    keyed.sort(key=lambda k: k[:4])
    return [k[4] for k in keyed]


@dataclass
class Group:
    """One constituency as the acts so far made it."""

    id: bytes
    name: str
    statement: str
    round: int
    #: None for a group the lot made (random grouping)
    founder: bytes | None = None
    #: member -> beacon round of the act that made them a member (insertion order: join order)
    members: dict[bytes, int] = field(default_factory=dict)
    #: member -> the member they endorse (or, under the draw rule, nominate)
    endorsements: dict[bytes, bytes] = field(default_factory=dict)
    #: the seat as certified at the last boundary settled, and the cycle it began
    holder: bytes | None = None
    since: int = -1

    def support(self) -> dict[bytes, int]:
        """Member -> how many members endorse them (endorsements of members only)."""
        out: dict[bytes, int] = {}
        for who, whom in self.endorsements.items():
            if who in self.members and whom in self.members:
                out[whom] = out.get(whom, 0) + 1
        return out

    def as_dict(self) -> dict:
        support = self.support()
        return {"id": self.id.hex(), "name": self.name, "statement": self.statement, "round": self.round,
                "founder": self.founder.hex() if self.founder else None, "members": len(self.members),
                "holder": self.holder.hex() if self.holder else None, "since": self.since,
                "support": {k.hex(): n for k, n in sorted(support.items(), key=lambda kv: (-kv[1], kv[0]))}}


@dataclass(frozen=True)
class Problem:
    """An act that counts for nothing, and why."""

    event: bytes
    author: bytes
    kind: str
    code: str
    reason: str

    def as_dict(self) -> dict:
        return {"event": self.event.hex(), "author": self.author.hex(), "kind": self.kind, "code": self.code, "reason": self.reason}


@dataclass(frozen=True)
class Seat:
    """What a boundary's acts say about one constituency's seat."""

    group: bytes
    holder: bytes | None
    reason: str


def seat_lot(randomness: bytes, group: bytes, key: bytes) -> bytes:
    """The lot of the draw rule: the willing nominee with the smallest value holds the seat."""
    return hashlib.sha256(b"klero/seat/v1" + randomness + group + key).digest()


def group_id(cycle: int, index: int) -> bytes:
    """The id of the ``index``-th group the lot made at the boundary of ``cycle``."""
    return hashlib.sha256(b"klero/group/v1" + cycle.to_bytes(8, "big") + index.to_bytes(8, "big")).digest()


class Roll:
    """The representation acts of one assembly, applied boundary by boundary."""

    def __init__(self, charter: Charter):
        self.rep = charter.representation
        self.registrars = frozenset(charter.registrars)
        #: subject -> registrars whose certification stands
        self.certs: dict[bytes, set[bytes]] = {}
        #: (registrar, person handle) -> the key it certified for that person
        self.persons: dict[tuple[bytes, bytes], bytes] = {}
        #: (old key, new key) -> registrars that certified the replacement
        self.replacing: dict[tuple[bytes, bytes], set[bytes]] = {}
        #: old key -> the key that replaced it
        self.replaced: dict[bytes, bytes] = {}
        self.groups: dict[bytes, Group] = {}
        self.member_of: dict[bytes, bytes] = {}
        self.willing: set[bytes] = set()
        #: keys the lot already placed in a group (random grouping)
        self.placed: set[bytes] = set()
        self._acts: dict[tuple[bytes, int], int] = {}
        self.problems: list[Problem] = []
        self.duplicates: list[dict] = []
        #: id -> act not applied yet (``advance`` applies those before a round, in order)
        self._waiting: dict = {}
        self._groups_made = 0

    # ---- input

    def load(self, records: Iterable) -> None:
        """The representation records of a replica (any order: they are sorted when applied)."""
        self._waiting = {r.id: r for r in records if r.kind in REPRESENTATION}

    def merge(self, added: Iterable, removed: Iterable[bytes]) -> None:
        """Records that arrived (or left) since :meth:`load`, all naming rounds not applied yet:
        they join (or leave) the acts still waiting.  Cost: the records given, not the waiting."""
        for rid in removed:
            self._waiting.pop(rid, None)
        for r in added:
            if r.kind in REPRESENTATION:
                self._waiting[r.id] = r

    def advance(self, before: int, cycle: int, randomness: bytes | None, cycle_of: Callable[[int], int]) -> None:
        """Apply every act naming a round before ``before`` (the first round of ``cycle``); under
        random grouping, then place the newly certified by lot with ``randomness`` (round
        ``before``'s)."""
        waiting = self._waiting
        due = [r for r in waiting.values() if r.round < before]
        for r in due:
            del waiting[r.id]
        due.sort(key=_order)
        start = 0
        while start < len(due):
            end, rnd = start, due[start].round
            while end < len(due) and due[end].round == rnd:
                end += 1
            batch = due[start:end]
            for r in (_waves(batch) if len(batch) > 1 else batch):
                self._apply(r, cycle_of)
            start = end
        if self.rep is not None and self.rep.grouping == RANDOM and randomness is not None:
            self._place(cycle, before, randomness)

    # ---- reading

    def certified(self, key: bytes) -> bool:
        return self.rep is not None and len(self.certs.get(key, ())) >= self.rep.threshold and key not in self.replaced

    def group_of(self, key: bytes) -> Group | None:
        gid = self.member_of.get(key)
        return self.groups.get(gid) if gid is not None else None

    def seats(self, cycle: int, randomness: bytes) -> list[Seat]:
        """Who would hold each constituency's seat from ``cycle + 1`` on, by the acts applied so
        far, with a sentence each (``randomness``: the boundary round's, for the draw rule)."""
        rep = self.rep
        out = []
        for gid in sorted(self.groups):
            g = self.groups[gid]
            n = len(g.members)
            if n < rep.min_constituency:
                out.append(Seat(gid, None, f"it has {n} member(s); a seat needs at least {rep.min_constituency}"))
                continue
            support = g.support()
            if rep.seat_rule == DRAW:
                out.append(self._draw_seat(g, support, cycle, randomness))
                continue
            best = max(support.items(), key=lambda kv: (kv[1], kv[0]), default=None)
            if best is None or best[1] * 2 <= n:
                lead = f" (most: {best[1]} of {n})" if best else ""
                out.append(Seat(gid, None, f"no member is endorsed by more than half of its {n} members{lead}"))
            elif best[0] not in self.willing:
                out.append(Seat(gid, None, f"the member endorsed by {best[1]} of {n} has not said yes to serving"))
            else:
                out.append(Seat(gid, best[0], f"endorsed by {best[1]} of its {n} members"))
        return out

    def _draw_seat(self, g: Group, support: dict[bytes, int], cycle: int, randomness: bytes) -> Seat:
        n = len(g.members)
        nominees = sorted(k for k in support if k in self.willing)
        h = g.holder
        if h is not None and h in g.members and h in self.willing and cycle + 1 - g.since < self.rep.term_cycles:
            others = sum(c for k, c in support.items() if k != h)
            if others * 2 <= n:
                return Seat(g.id, h, f"drawn at cycle {g.since}; the term of {self.rep.term_cycles} cycles runs on")
        if not nominees:
            return Seat(g.id, None, "no willing member is nominated")
        winner = min(nominees, key=lambda k: seat_lot(randomness, g.id, k))
        return Seat(g.id, winner, f"drawn by lot among {len(nominees)} willing nominee(s)")

    def settle(self, roster: Iterable[bytes], cycle: int) -> None:
        """Record the seats the boundary certified (``roster``: the keys seated from ``cycle``)."""
        seated = set(roster)
        for gid in sorted(self.groups):
            g = self.groups[gid]
            holder = g.holder if g.holder in seated and g.holder in g.members else None
            if holder is None:
                holder = next((m for m in sorted(g.members) if m in seated), None)
            if holder != g.holder:
                g.holder, g.since = holder, cycle

    # ---- applying acts

    def _problem(self, r, code: str, reason: str) -> None:
        self.problems.append(Problem(r.id, r.author, r.kind, code, reason))

    def _apply(self, r, cycle_of) -> None:
        body = r.body
        if isinstance(body, Certify):
            self._certify(r, body)
            return
        if isinstance(body, Revoke):
            self.certs.get(body.subject, set()).discard(r.author)
            if not self.certified(body.subject):
                self._drop(body.subject)
                self.placed.discard(body.subject)
            return
        a = r.author
        if not self.certified(a):
            why = "it was replaced by a newer key" if a in self.replaced else (
                f"it is not certified by {self.rep.threshold} registrar(s) at that point")
            self._problem(r, "not_certified", f"The key may not act as a constituent: {why}.")
            return
        key = (a, cycle_of(r.round))
        count = self._acts.get(key, 0) + 1
        self._acts[key] = count
        if count > self.rep.acts_per_cycle:
            self._problem(r, "over_quota", f"More than {self.rep.acts_per_cycle} constituency acts in one cycle; "
                                           "the rest count for nothing.")
            return
        if isinstance(body, Serve):
            (self.willing.add if body.answer == "yes" else self.willing.discard)(a)
        elif isinstance(body, Found):
            if self.rep.grouping == RANDOM:
                self._problem(r, "random_grouping", "Under this charter the lot assigns constituencies; nobody founds one.")
            elif a in self.member_of:
                self._problem(r, "already_member", "A constituent belongs to one constituency at a time: leave yours first.")
            else:
                self.groups[r.id] = Group(r.id, body.name, body.statement, r.round, a)
                self._enter(a, r.id, r.round)
        elif isinstance(body, Join):
            g = self.groups.get(body.constituency)
            if g is None:
                self._problem(r, "no_constituency", "No such constituency (never founded, or dissolved).")
            elif self.rep.grouping == RANDOM:
                self._problem(r, "random_grouping", "Under this charter the lot assigns constituencies; nobody joins one.")
            elif a in self.member_of:
                self._problem(r, "already_member", "A constituent belongs to one constituency at a time: leave yours first.")
            elif len(g.members) >= self.rep.max_constituency:
                self._problem(r, "constituency_full", f"The constituency already has {self.rep.max_constituency} members "
                                                      "(the charter's cap); joins are taken in round order.")
            else:
                self._enter(a, g.id, r.round)
        elif isinstance(body, Leave):
            if self.member_of.get(a) != body.constituency:
                self._problem(r, "not_member", "Only a member can leave a constituency.")
            else:
                self._drop(a)
        elif isinstance(body, Endorse):
            g = self.groups.get(body.constituency)
            if self.member_of.get(a) != body.constituency or g is None:
                self._problem(r, "not_member", "Only a member of a constituency can endorse in it.")
            elif body.member not in g.members:
                self._problem(r, "endorse_non_member", "The key endorsed is not a member of this constituency.")
            else:
                g.endorsements[a] = body.member

    def _certify(self, r, body: Certify) -> None:
        registrar, subject = r.author, body.subject
        if body.person is not None:
            earlier = self.persons.get((registrar, body.person))
            if (earlier is not None and earlier != subject and body.replaces != earlier
                    and registrar in self.certs.get(earlier, ()) and earlier not in self.replaced):
                self._problem(r, "duplicate_person", "This registrar already certified another key for the same person; "
                                                     "the second certification counts for nothing until one is revoked.")
                self.duplicates.append({"registrar": registrar.hex(), "person": body.person.hex(),
                                        "first": earlier.hex(), "second": subject.hex(), "event": r.id.hex()})
                return
            self.persons[(registrar, body.person)] = subject
        self.certs.setdefault(subject, set()).add(registrar)
        if body.replaces is not None:
            old = body.replaces
            agreed = self.replacing.setdefault((old, subject), set())
            agreed.add(registrar)
            if len(agreed) >= self.rep.threshold and old not in self.replaced:
                self._replace(old, subject)

    def _replace(self, old: bytes, new: bytes) -> None:
        """A lost key's successor keeps its membership, its endorsement, its willingness, and the
        endorsements of it; the old key stops counting."""
        self.replaced[old] = new
        if old in self.willing:
            self.willing.discard(old)
            self.willing.add(new)
        gid = self.member_of.pop(old, None)
        if gid is None:
            return
        g = self.groups[gid]
        joined = g.members.pop(old)
        if new in self.member_of:
            self._forget(g, old)
            return
        g.members[new] = joined
        self.member_of[new] = gid
        if old in g.endorsements:
            g.endorsements[new] = g.endorsements.pop(old)
        for who, whom in list(g.endorsements.items()):
            if whom == old:
                g.endorsements[who] = new
        if g.holder == old:
            g.holder = new

    def _enter(self, key: bytes, gid: bytes, round_: int) -> None:
        self.groups[gid].members[key] = round_
        self.member_of[key] = gid

    def _drop(self, key: bytes) -> None:
        gid = self.member_of.pop(key, None)
        if gid is None:
            return
        g = self.groups[gid]
        g.members.pop(key, None)
        self._forget(g, key)

    def _forget(self, g: Group, key: bytes) -> None:
        g.endorsements.pop(key, None)
        for who in [w for w, whom in g.endorsements.items() if whom == key]:
            del g.endorsements[who]
        if not g.members:
            self.groups.pop(g.id, None)

    def _place(self, cycle: int, round_: int, randomness: bytes) -> None:
        """Random grouping: every certified key not yet placed goes, in an order the lot fixes, to
        the lot-made group with the fewest members below ``group_size`` (a new one when all are
        full), so groups fill to the target size and none is left far below it."""
        fresh = [k for k in self.certs if k not in self.placed and self.certified(k) and k not in self.member_of]
        if not fresh:
            return
        fresh.sort(key=lambda k: hashlib.sha256(b"klero/grouping/v1" + randomness + k).digest())
        size = self.rep.group_size
        heap = [(len(g.members), gid) for gid, g in self.groups.items() if g.founder is None and len(g.members) < size]
        heapq.heapify(heap)
        for key in fresh:
            if heap:
                n, gid = heapq.heappop(heap)
            else:
                gid = group_id(cycle, self._groups_made)
                self._groups_made += 1
                self.groups[gid] = Group(gid, f"Group {self._groups_made}", "Drawn by lot.", round_)
                n = 0
            self._enter(key, gid, round_)
            self.placed.add(key)
            if n + 1 < size:
                heapq.heappush(heap, (n + 1, gid))
