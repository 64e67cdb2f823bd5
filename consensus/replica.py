"""The reducer: the state of an assembly as a function of the set of valid events.

``Replica.add(wire)`` takes one event in its wire form and returns an :class:`Outcome`.  The
resulting state depends only on the set of events added, never on their order or on
duplicates (tested with Hypothesis in ``tests/test_replica.py``).

How an event is judged, cheapest first:

1. **Stateless** (:mod:`consensus.events`): size, canonical CBOR, header, assembly, kind and
   body, whether the charter lets this author sign this kind, then the signature.  A failure is
   a *rejection*: nothing is stored.
2. **Position** in the author's hash chain (Secure Scuttlebutt style).  A second, different
   event at a ``seq`` already held is an *equivocation*: both are kept as a fraud proof and the
   author's chain stops before that ``seq``, by every node, whichever arrived first.  What the
   author signed from there on is *excluded* from their chain but kept as **evidence** (every
   version of every ``seq``, up to ``2 * max_pending_ahead`` events, none further than
   ``max_pending_ahead`` beyond the chain): a deadline a commit certificate already decided
   keeps the exact events it decided, so a later fork changes nothing decided
   (docs/finality.md).  An event beyond the next ``seq`` is held as
   *pending* until its predecessors arrive.
3. **Chain** (the next ``seq``): ``prev`` must be the id of the applied predecessor, beacon
   rounds never go back, at most ``max_events_per_round`` per round, and kind rules that depend
   on the author's own history (withdraw only one's own proposal, revoke only one's own
   certification).  A failure makes the event *invalid*: it is kept (it is the author's signed
   misbehaviour and makes a later different event at that ``seq`` an equivocation) and the
   author's chain stops there.

The direct effects of an event only touch records its own author owns (their proposals, their
certifications), so excluding a suffix of one author's chain is undone exactly in reverse
order.  Effects across authors (tallies, seats) are computed at deadlines from decided sets of
events, never from arrival order.

Storage is injected (the :class:`Ledger` protocol): :class:`MemoryLedger` here, SQLite in
``p2p.store``.  The replica keeps in memory only what is per author or per proposal (heads,
forks, pending keys), never the events themselves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Protocol

from .beacon import BeaconRound, decode_round
from .charter import Charter
from .errors import InvalidInput, Rejection, reject
from .events import (
    Event,
    check_header,
    decode_charter,
    event_id,
    parse_body,
    split_wire,
    verify_signature,
)
from .changes import read_change
from .kinds import (
    CONSTITUENT,
    CONVENOR,
    LEGISLATIVE,
    REGISTRAR,
    REPRESENTATION,
    REPRESENTATIVE,
    Certify,
    Comment,
    Revoke,
    Submit,
    Withdraw,
)
from .lthash import LtHash

def read_actor(body) -> bytes:
    return read_change(body.change).actor


APPLIED, PENDING, INVALID, EXCLUDED = "applied", "pending", "invalid", "excluded"
#: what a key nobody registered may sign, provisionally: its events wait for a registrar's voucher
_OPEN_ROLES = frozenset({CONSTITUENT, REPRESENTATIVE})
#: beacon rounds this far before the assembly's first round are still accepted (a convenor's
#: clock, or a charter written a little ahead of its start); anything older is refused: nobody
#: may make a replica verify and keep a beacon's whole public history
ANCIENT_MARGIN = 64
DUPLICATE, REJECTED, EQUIVOCATION = "duplicate", "rejected", "equivocation"

#: The lifecycle of a stored event (docs/events.md has the diagram).  ``None`` is "not stored".
#: Rejected items and the second event of an equivocation are never stored as chain entries.
TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({PENDING, APPLIED, INVALID, EXCLUDED}),  # arrives: waits, applies, breaks the chain, or is an equivocator's evidence
    PENDING: frozenset({APPLIED, INVALID, EXCLUDED}),  # its predecessor arrived, or a fork below it was proven
    APPLIED: frozenset({EXCLUDED}),  # a fork at or below it was proven
    INVALID: frozenset({EXCLUDED}),  # likewise; an invalid event never becomes valid
    EXCLUDED: frozenset(),  # final: equivocation is fatal
}


@dataclass(frozen=True, slots=True)
class Stored:
    """One event as the ledger keeps it: at most one per (author, seq)."""

    id: bytes
    wire: bytes
    status: str
    reason: str | None = None


class Ledger(Protocol):
    """Where the replica keeps events.  Reads must see every write made so far."""

    def get(self, author: bytes, seq: int) -> Stored | None: ...

    def put(self, author: bytes, seq: int, stored: Stored) -> None: ...

    def add_fork(self, author: bytes, seq: int, first: bytes, second: bytes) -> None: ...

    def add_version(self, author: bytes, seq: int, wire: bytes) -> None:
        """A third (or later) version of one seq by an equivocator, kept as evidence."""
        ...


class MemoryLedger:
    """A ledger in dictionaries, for tests and small logs."""

    def __init__(self) -> None:
        self.events: dict[tuple[bytes, int], Stored] = {}
        self.forks: dict[tuple[bytes, int], tuple[bytes, bytes]] = {}
        self.versions: dict[tuple[bytes, int], list[bytes]] = {}

    def get(self, author: bytes, seq: int) -> Stored | None:
        return self.events.get((author, seq))

    def put(self, author: bytes, seq: int, stored: Stored) -> None:
        self.events[(author, seq)] = stored

    def add_fork(self, author: bytes, seq: int, first: bytes, second: bytes) -> None:
        self.forks.setdefault((author, seq), (first, second))

    def add_version(self, author: bytes, seq: int, wire: bytes) -> None:
        self.versions.setdefault((author, seq), []).append(wire)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What ``Replica.add`` did with one wire event."""

    status: str
    event_id: bytes | None = None
    rejection: Rejection | None = None
    #: ids applied by this call: the event itself and any waiting successors it released
    applied: tuple[bytes, ...] = ()
    #: ids found invalid by this call (the event or a released successor), with reasons
    invalid: tuple[tuple[bytes, Rejection], ...] = ()
    #: ids excluded by an equivocation this call proved
    excluded: tuple[bytes, ...] = ()


@dataclass(slots=True)
class Head:
    """The applied end of one author's chain."""

    seq: int
    id: bytes
    round: int
    in_round: int  # events of this author in ``round`` so far


@dataclass(slots=True)
class Proposal:
    author: bytes
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class Record:
    """An applied event the legislature reads (submissions, withdrawals, votes, amendments)."""

    id: bytes
    author: bytes
    seq: int
    round: int
    round_prefix: bytes
    kind: str
    body: object


@dataclass
class Changes:
    """What changed since the last ``Replica.drain_changes()``: rows for derived tables."""

    authors: set[bytes] = field(default_factory=set)
    proposals: set[bytes] = field(default_factory=set)
    certifications: set[tuple[bytes, bytes]] = field(default_factory=set)
    records: set[bytes] = field(default_factory=set)


class Replica:
    """The state of one assembly, built event by event.  See the module docstring."""

    def __init__(self, charter_wire: bytes, ledger: Ledger | None = None):
        charter_event = decode_charter(charter_wire)
        self.charter_event: Event = charter_event
        self.charter: Charter = charter_event.body.charter
        self.assembly: bytes = charter_event.id
        self.limits = self.charter.limits
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.roles: dict[bytes, set[str]] = {}
        self.roles.setdefault(charter_event.author, set()).add(CONVENOR)
        for key in self.charter.registrars:
            self.roles.setdefault(key, set()).add(REGISTRAR)
        for key in self.charter.roster:
            self.roles.setdefault(key, set()).add(REPRESENTATIVE)
        self.heads: dict[bytes, Head] = {}
        #: author -> the lowest seq at which they equivocated
        self.forks: dict[bytes, int] = {}
        #: (author, seq) -> id of the second version kept as the fraud proof
        self.seconds: dict[tuple[bytes, int], bytes] = {}
        #: (author, seq) -> ids of any further versions (an equivocator may sign many)
        self.versions: dict[tuple[bytes, int], set[bytes]] = {}
        #: author -> events kept from their fork on (bounded: see ``_after_fork``)
        self.kept: dict[bytes, int] = {}
        self.blocked: dict[bytes, tuple[int, str]] = {}
        self.pending: dict[bytes, set[int]] = {}
        #: beacon round -> authors whose next event names it and waits for it
        self.awaiting: dict[int, set[bytes]] = {}
        #: keys some registrar signed a certification of (applied or kept as evidence): they may
        #: write to the log; whether they count as constituents is judged at cycle boundaries
        #: (consensus.constituency).  Only grows, so what a replica admits is a function of the set
        #: of events, whichever arrived first
        self.vouched: set[bytes] = set()
        #: keys with events held until a registrar vouches for them -> how many are held
        self.unvouched: dict[bytes, int] = {}
        self._releases: list[bytes] = []
        #: (round, record id, added?) of the representation records applied or undone lately, in
        #: order: lets an evaluation reuse the acts it already applied (``Legislature``'s cache);
        #: only the latest are kept (``rep_since``), a reader further behind starts over
        self._rep_changes: list[tuple[int, bytes, bool]] = []
        self._rep_base = 0
        self._unvouched_total = 0
        self.proposals: dict[bytes, Proposal] = {}
        self.certified: set[tuple[bytes, bytes]] = set()
        #: applied events of the legislative kinds, by id: the legislature's input
        self.records: dict[bytes, Record] = {}
        #: legislative events of equivocators from their fork on (every version): never counted
        #: for an open deadline, but found by id when a certificate decided them earlier
        self.evidence: dict[bytes, Record] = {}
        #: verified beacon randomness by round (the other input of the state)
        self.beacon: dict[int, bytes] = {}
        self._verify_keys: dict = {}
        self._hash = LtHash()
        self._hash.add(b"assembly" + self.assembly)
        self._contributed: dict[bytes, bytes] = {}
        self._hash_dirty: set[bytes] = set()
        self.changes = Changes()
        if self.ledger.get(charter_event.author, 1) is None:
            self.ledger.put(charter_event.author, 1, Stored(charter_event.id, charter_wire, APPLIED))
        self._set_head(charter_event.author, Head(1, charter_event.id, charter_event.round, 1))

    # ------------------------------------------------------------------ reading the state

    def state_hash(self) -> bytes:
        """32-byte summary of the state; equal on every node holding the same event set.

        It is an LtHash over one fact per author (applied chain length, head id, fork point) and
        one per beacon round (its number and randomness).  A head id commits to the author's
        whole applied chain, so this commits to every applied event; everything the legislature
        decides is a function of those events and rounds.  Only authors touched since the last
        call are rehashed.
        """
        for author in self._hash_dirty:
            old = self._contributed.pop(author, None)
            if old is not None:
                self._hash.remove(old)
            new = self._author_fact(author)
            if new is not None:
                self._hash.add(new)
                self._contributed[author] = new
        self._hash_dirty.clear()
        return self._hash.digest()

    def _author_fact(self, author: bytes) -> bytes | None:
        head = self.heads.get(author)
        fork = self.forks.get(author, 0)
        if head is None and not fork:
            return None
        seq, hid = (head.seq, head.id) if head else (0, bytes(32))
        fact = b"author" + author + seq.to_bytes(8, "big") + hid + fork.to_bytes(8, "big")
        if fork:  # what the equivocator signed from the fork on, kept as evidence
            kept = sorted(i for i, r in self.evidence.items() if r.author == author)
            fact += hashlib.sha256(b"".join(kept)).digest()
        return fact

    def applied_count(self) -> int:
        """Number of applied events (the sum of applied chain lengths)."""
        return sum(h.seq for h in self.heads.values())

    def role_of(self, author: bytes) -> set[str]:
        return set(self.roles.get(author, ()))

    # ------------------------------------------------------------------ adding events

    def add(self, wire: bytes, *, signature_checked: bool = False) -> Outcome:
        """Judge one wire event and apply it if it is valid.  Never raises for bad input.

        ``signature_checked=True`` tells the replica that the caller already verified the
        author's signature over exactly these bytes (``p2p.pipeline`` does so on other cores);
        every other check still runs.
        """
        try:
            event = self._decode(wire, check_signature=not signature_checked)
        except InvalidInput as exc:
            if exc.rejection.code == "duplicate":
                return Outcome(DUPLICATE, event_id(wire))
            return Outcome(REJECTED, None, exc.rejection)
        return self._admit(event)

    def add_item(self, item: bytes, *, signature_checked: bool = False) -> Outcome:
        """Add one item of a log or sync batch: a signed event, or a beacon round
        (``[round, signature, previous]``, a 3-array where events are 2-arrays).
        ``signature_checked`` means the caller verified the event's or the round's signature."""
        if item[:1] == b"\x83":
            try:
                rnd = decode_round(self.charter.beacon, item, verify=False)  # add_round verifies
            except InvalidInput as exc:
                return Outcome(REJECTED, None, exc.rejection)
            return self.add_round(rnd, verified=signature_checked)
        return self.add(item, signature_checked=signature_checked)

    def first_round(self) -> int:
        """The assembly's first beacon round: the charter's own round, or its cycle 0 start."""
        return self.charter_event.round or self.charter.parliament.start_round

    def add_round(self, rnd: BeaconRound, *, verified: bool = False) -> Outcome:
        """Add a beacon round of the charter's chain, after verifying it (unless the caller did).
        Rounds older than the assembly (less ``ANCIENT_MARGIN``) are refused before any check."""
        if rnd.round in self.beacon:
            # the same round again, or a forgery of a known one: which arrived first must not
            # decide what is reported, so a different signature is checked like any round
            if verified or hashlib.sha256(rnd.signature).digest() == self.beacon[rnd.round]:
                return Outcome(DUPLICATE)
            try:
                self.charter.beacon.verify(rnd)
            except InvalidInput as exc:
                return Outcome(REJECTED, None, exc.rejection)
            return Outcome(DUPLICATE)
        if rnd.round < self.first_round() - ANCIENT_MARGIN:
            return Outcome(REJECTED, None, Rejection(
                "ancient_round", f"Beacon round {rnd.round} is older than this assembly (it begins at round {self.first_round()}); "
                "rounds before it decide nothing and are not kept."))  # fatal: no honest node relays one
        try:
            randomness = rnd.randomness if verified else self.charter.beacon.verify(rnd)
        except InvalidInput as exc:
            return Outcome(REJECTED, None, exc.rejection)
        self._put_round(rnd.round, randomness)
        self._drain_releases()
        return Outcome(APPLIED)

    def _put_round(self, number: int, randomness: bytes) -> None:
        self.beacon[number] = randomness
        self._hash.add(b"round" + number.to_bytes(8, "big") + randomness)
        for author in sorted(self.awaiting.pop(number, ())):
            self._release(author)

    def _release(self, author: bytes) -> None:
        """Apply an author's next event if it was waiting for a beacon round that is now known."""
        head = self.heads.get(author)
        nxt = (head.seq if head else 0) + 1
        waiting = self.pending.get(author)
        fork = self.forks.get(author)
        if not waiting or nxt not in waiting or author in self.blocked or (fork is not None and nxt >= fork):
            return
        waiting.discard(nxt)
        if not waiting:
            del self.pending[author]
        self._extend(self._trusted(self.ledger.get(author, nxt)))

    def add_all(self, wires: Iterable[bytes]) -> list[Outcome]:
        return [self.add(w) for w in wires]

    def _decode(self, wire: bytes, *, check_signature: bool) -> Event:
        encoding, signature, fields = split_wire(wire, self.limits.max_event_bytes)
        check_header(fields)
        author = fields["author"]
        kind = fields["kind"]
        if fields["assembly"] != self.assembly:
            if kind == "charter" and event_id(wire) == self.assembly:
                raise reject("duplicate", "This is the assembly's own charter.", fatal=False)
            raise reject("wrong_assembly", "The event belongs to another assembly.")
        if kind == "charter":
            raise reject("charter_inside_assembly", "A charter founds an assembly; it cannot be an event inside one.")
        if check_signature:
            # the same bytes again (gossip and sync deliver most events more than once): found by
            # one ledger lookup before the signature is checked, the one real cost of an event
            seq = fields["seq"]
            stored = self.ledger.get(author, seq)
            if stored is not None:
                eid = event_id(wire)
                if stored.id == eid or self.seconds.get((author, seq)) == eid or eid in self.versions.get((author, seq), ()):
                    raise reject("duplicate", "This event is already held.", fatal=False)
        if author == self.charter_event.author and fields["seq"] == 1:
            raise reject("charter_position", "The convenor's first event is the charter itself; nothing else can take its place.")
        roles = self.roles.get(author)
        if self.charter.representation is not None:
            # anyone may be a constituent: a key no role names is held until a registrar vouches
            # for it (``_admit``); whether an act counts is judged at boundaries
            roles = _OPEN_ROLES | roles if roles else _OPEN_ROLES
        elif not roles:
            raise reject("unknown_author", "The author is neither the convenor, a registrar nor a representative of this assembly.")
        body = parse_body(kind, fields["body"], self.limits)
        if kind == "doc.change" and read_actor(body) != author:
            raise reject("bad_change", "A document change's actor must be the key that signs it.")
        if not roles.intersection(body.WHO):
            raise reject("not_authorised", f"Only a {' or '.join(body.WHO)} may sign a {kind} event.")
        if check_signature:
            verify_signature(author, encoding, signature, self._verify_keys)
        rnd = fields["round"]
        return Event(event_id(wire), wire, author, fields["seq"], fields["prev"], rnd[0], rnd[1], kind, body, self.assembly)

    def _trusted(self, stored: Stored) -> Event:
        """Decode an event the ledger holds: it passed every stateless check when it was stored."""
        if stored.id == self.assembly:
            return self.charter_event  # the convenor's seq 1 is not an event inside the assembly
        return self._decode(stored.wire, check_signature=False)

    #: representation changes kept for readers (``rep_since``); older ones are dropped
    REP_CHANGES_KEPT = 1 << 16

    def _note_rep(self, round_: int, rid: bytes, added: bool) -> None:
        self._rep_changes.append((round_, rid, added))
        if len(self._rep_changes) > self.REP_CHANGES_KEPT:
            half = len(self._rep_changes) // 2
            del self._rep_changes[:half]
            self._rep_base += half

    @property
    def rep_version(self) -> int:
        """How many representation changes there have been (a reader's position)."""
        return self._rep_base + len(self._rep_changes)

    def rep_since(self, position: int) -> list[tuple[int, bytes, bool]] | None:
        """The representation changes since ``position`` (a ``rep_version``), or None if they
        are no longer kept (the reader must start over from the records)."""
        if position < self._rep_base or position > self.rep_version:
            return None
        return self._rep_changes[position - self._rep_base:]

    def _needs_voucher(self, author: bytes) -> bool:
        return self.charter.representation is not None and author not in self.roles and author not in self.vouched

    def _vouch(self, subject: bytes) -> None:
        if subject in self.vouched:
            return
        self.vouched.add(subject)
        held = self.unvouched.pop(subject, None)
        if held is not None:
            self._unvouched_total -= held
            self._releases.append(subject)

    def _drain_releases(self) -> None:
        """Apply what waited for a registrar's voucher (after the event that vouched was applied)."""
        while self._releases:
            self._release(self._releases.pop(0))

    def _admit(self, ev: Event) -> Outcome:
        outcome = self._admit_one(ev)
        self._drain_releases()
        return outcome

    def _admit_one(self, ev: Event) -> Outcome:
        author, seq = ev.author, ev.seq
        fork = self.forks.get(author)
        if fork is not None and seq >= fork:
            return self._after_fork(ev, fork)
        if self._needs_voucher(author):
            return self._hold_unvouched(ev)
        head = self.heads.get(author)
        head_seq = head.seq if head else 0
        blocked = self.blocked.get(author)
        if seq <= head_seq or seq in self.pending.get(author, ()) or (blocked and blocked[0] == seq):
            stored = self.ledger.get(author, seq)
            if stored is not None:
                if stored.id == ev.id:
                    return Outcome(DUPLICATE, ev.id)
                return self._equivocate(ev, stored)
        if seq > head_seq + 1 or blocked:
            if seq - head_seq > self.limits.max_pending_ahead:
                return Outcome(
                    REJECTED,
                    ev.id,
                    Rejection(
                        "too_far_ahead",
                        f"The event is {seq - head_seq} steps ahead of its author's chain; it will be fetched again once the gap is filled.",
                        fatal=False,
                    ),
                )
            self.ledger.put(author, seq, Stored(ev.id, ev.wire, PENDING))
            self.pending.setdefault(author, set()).add(seq)
            return Outcome(PENDING, ev.id)
        return self._extend(ev)

    def _hold_unvouched(self, ev: Event) -> Outcome:
        """An event of a key no registrar has vouched for (yet): held, up to a bound over all such
        keys, until a certification of it arrives; past the bound refused without penalty (sync
        brings it again once the key is certified)."""
        author, seq = ev.author, ev.seq
        stored = self.ledger.get(author, seq)
        if stored is not None:
            return Outcome(DUPLICATE, ev.id) if stored.id == ev.id else self._equivocate(ev, stored)
        if self._unvouched_total >= self.limits.max_pending_ahead or seq > self.limits.max_pending_ahead:
            return Outcome(REJECTED, ev.id, Rejection(
                "not_certified", "No registrar has certified this key; its events are held only while few others wait, "
                "and will be fetched again once a certification arrives.", fatal=False))
        self.ledger.put(author, seq, Stored(ev.id, ev.wire, PENDING))
        self.pending.setdefault(author, set()).add(seq)
        self.unvouched[author] = self.unvouched.get(author, 0) + 1
        self._unvouched_total += 1
        return Outcome(PENDING, ev.id)

    def _after_fork(self, ev: Event, fork: int) -> Outcome:
        """An event of an equivocator at or after their fork: kept as evidence, never applied.

        Every version of every seq is kept, so what a replica holds is a function of the set of
        events (a certificate may have decided any one of them), up to a bound: at most
        ``2 * max_pending_ahead`` events of one equivocator, and none further than
        ``max_pending_ahead`` beyond their chain.  Past the bound a proven equivocator's flood is
        refused (then, and only then, which of its events a replica holds depends on order)."""
        author, seq = ev.author, ev.seq
        stored = self.ledger.get(author, seq)
        if stored is not None and (stored.id == ev.id or self.seconds.get((author, seq)) == ev.id
                                   or ev.id in self.versions.get((author, seq), ())):
            return Outcome(DUPLICATE, ev.id)
        head = self.heads.get(author)
        if seq - (head.seq if head else 0) > self.limits.max_pending_ahead or self.kept.get(author, 0) >= 2 * self.limits.max_pending_ahead:
            return Outcome(REJECTED, ev.id, Rejection(
                "too_far_ahead", f"The author equivocated at seq {fork}; no more of their events are kept "
                f"(at most {2 * self.limits.max_pending_ahead}, none more than {self.limits.max_pending_ahead} beyond their chain).",
                fatal=False))
        if stored is None:
            self.ledger.put(author, seq, Stored(ev.id, ev.wire, EXCLUDED, "after_fork"))
        elif (author, seq) in self.seconds:
            self.ledger.add_version(author, seq, ev.wire)
            self.versions.setdefault((author, seq), set()).add(ev.id)
        else:
            self.ledger.add_fork(author, seq, stored.wire, ev.wire)
            self.seconds[(author, seq)] = ev.id
        self.kept[author] = self.kept.get(author, 0) + 1
        self._keep_evidence(ev)
        return Outcome(EXCLUDED, ev.id, Rejection(
            "excluded_after_fork", f"The author equivocated at seq {fork}; their events from there on are kept as evidence, "
            "never counted for an open deadline.", fatal=False))

    def _keep_evidence(self, ev: Event) -> None:
        if isinstance(ev.body, Certify) and REGISTRAR in self.roles.get(ev.author, ()):
            self._vouch(ev.body.subject)
        if ev.kind in LEGISLATIVE and ev.id not in self.evidence:
            self.evidence[ev.id] = Record(ev.id, ev.author, ev.seq, ev.round, ev.round_prefix, ev.kind, ev.body)
            self.changes.records.add(ev.id)
            self._hash_dirty.add(ev.author)

    def _extend(self, ev: Event) -> Outcome:
        """Apply ``ev`` (the next in its chain) and every waiting successor it releases."""
        applied: list[bytes] = []
        invalid: list[tuple[bytes, Rejection]] = []
        author = ev.author
        current: Event | None = ev
        while current is not None:
            if current.round and current.round not in self.beacon:
                # it names a beacon round this replica does not hold yet: it waits for it (its
                # prefix can only be checked then), and its successors wait behind it
                if self.ledger.get(author, current.seq) is None or current is ev:
                    self.ledger.put(author, current.seq, Stored(current.id, current.wire, PENDING))
                self.pending.setdefault(author, set()).add(current.seq)
                self.awaiting.setdefault(current.round, set()).add(author)
                if current is ev:
                    return Outcome(PENDING, ev.id, None, tuple(applied), tuple(invalid))
                break
            head = self.heads.get(author)
            problem = self._chain_problem(current, head)
            if problem is not None:
                self.ledger.put(author, current.seq, Stored(current.id, current.wire, INVALID, problem.code))
                self.blocked[author] = (current.seq, problem.code)
                self.changes.authors.add(author)
                invalid.append((current.id, problem))
                break
            self._apply_effects(current)
            self.ledger.put(author, current.seq, Stored(current.id, current.wire, APPLIED))
            if head is None:
                self._set_head(author, Head(current.seq, current.id, current.round, 1))
            else:  # the hot path: update the head in place
                head.in_round = head.in_round + 1 if head.round == current.round else 1
                head.seq, head.id, head.round = current.seq, current.id, current.round
                self._hash_dirty.add(author)
                self.changes.authors.add(author)
            applied.append(current.id)
            waiting = self.pending.get(author)
            nxt = current.seq + 1
            current = None
            if waiting and nxt in waiting:
                waiting.discard(nxt)
                if not waiting:
                    del self.pending[author]
                current = self._trusted(self.ledger.get(author, nxt))
        if invalid and invalid[0][0] == ev.id:
            return Outcome(INVALID, ev.id, invalid[0][1], tuple(applied), tuple(invalid))
        return Outcome(APPLIED, ev.id, None, tuple(applied), tuple(invalid))

    def _chain_problem(self, ev: Event, head: Head | None) -> Rejection | None:
        if ev.round and self.beacon[ev.round][:8] != ev.round_prefix:
            return Rejection("wrong_round_prefix", f"The event names beacon round {ev.round} with randomness that is not that "
                                                   "round's: it cannot have seen it.")
        if head is not None:
            if ev.prev != head.id:
                return Rejection("prev_mismatch", "The event does not follow its author's previous event (its prev names another event).")
            if ev.round < head.round:
                return Rejection("round_backwards", "The event names an older beacon round than its author's previous event.")
            if ev.round == head.round and head.in_round >= self.limits.max_events_per_round:
                return Rejection(
                    "round_rate", f"The author signed more than {self.limits.max_events_per_round} events in one beacon round."
                )
        body = ev.body
        if isinstance(body, Withdraw):
            proposal = self.proposals.get(body.proposal)
            if proposal is None or proposal.author != ev.author:
                return Rejection("not_own_proposal", "A representative may withdraw only a proposal they submitted earlier.")
            if proposal.withdrawn:
                return Rejection("already_withdrawn", "The proposal was already withdrawn.")
        elif isinstance(body, Certify):
            if (ev.author, body.subject) in self.certified:
                return Rejection("already_certified", "The registrar already certified this key.")
        elif isinstance(body, Revoke):
            if (ev.author, body.subject) not in self.certified:
                return Rejection("nothing_to_revoke", "A registrar may revoke only a certification they hold.")
        return None

    def _apply_effects(self, ev: Event) -> None:
        body = ev.body
        if type(body) is Comment:
            return  # the most frequent kind: comments change no record
        if ev.kind in LEGISLATIVE:
            self.records[ev.id] = Record(ev.id, ev.author, ev.seq, ev.round, ev.round_prefix, ev.kind, body)
            self.changes.records.add(ev.id)
            if ev.kind in REPRESENTATION:
                self._note_rep(ev.round, ev.id, True)
        if isinstance(body, Submit):
            self.proposals[ev.id] = Proposal(ev.author)
            self.changes.proposals.add(ev.id)
        elif isinstance(body, Withdraw):
            self.proposals[body.proposal].withdrawn = True
            self.changes.proposals.add(body.proposal)
        elif isinstance(body, Certify):
            self.certified.add((ev.author, body.subject))
            self.changes.certifications.add((ev.author, body.subject))
            self._vouch(body.subject)
        elif isinstance(body, Revoke):
            self.certified.discard((ev.author, body.subject))
            self.changes.certifications.add((ev.author, body.subject))
        elif isinstance(body, Comment):
            pass  # comments are listed by the app; they change no record

    def _undo_effects(self, ev: Event) -> None:
        body = ev.body
        if self.records.pop(ev.id, None) is not None:
            self.changes.records.add(ev.id)
            if ev.kind in REPRESENTATION:
                self._note_rep(ev.round, ev.id, False)
        if isinstance(body, Submit):
            self.proposals.pop(ev.id, None)
            self.changes.proposals.add(ev.id)
        elif isinstance(body, Withdraw):
            self.proposals[body.proposal].withdrawn = False
            self.changes.proposals.add(body.proposal)
        elif isinstance(body, Certify):
            self.certified.discard((ev.author, body.subject))
            self.changes.certifications.add((ev.author, body.subject))
        elif isinstance(body, Revoke):
            self.certified.add((ev.author, body.subject))
            self.changes.certifications.add((ev.author, body.subject))

    def _equivocate(self, ev: Event, stored: Stored) -> Outcome:
        """Record the fraud proof and stop the author's chain before ``ev.seq``; what they signed
        from there on stays as evidence (see :meth:`_after_fork`)."""
        author, seq = ev.author, ev.seq
        self.ledger.add_fork(author, seq, stored.wire, ev.wire)
        self.seconds[(author, seq)] = ev.id
        self.forks[author] = seq
        excluded: list[bytes] = []
        head = self.heads.get(author)
        if head is not None and head.seq >= seq:
            for q in range(head.seq, seq - 1, -1):
                old = self.ledger.get(author, q)
                event = self._trusted(old)
                self._undo_effects(event)
                self._keep_evidence(event)
                self.ledger.put(author, q, Stored(old.id, old.wire, EXCLUDED, "equivocation"))
                excluded.append(old.id)
            self._set_head(author, self._rebuild_head(author, seq - 1))
        for q in sorted(s for s in self.pending.get(author, ()) if s >= seq):
            old = self.ledger.get(author, q)
            self._keep_evidence(self._trusted(old))
            self.ledger.put(author, q, Stored(old.id, old.wire, EXCLUDED, "equivocation"))
            self.pending[author].discard(q)
            excluded.append(old.id)
        if author in self.pending and not self.pending[author]:
            del self.pending[author]
        blocked = self.blocked.get(author)
        if blocked and blocked[0] >= seq:
            old = self.ledger.get(author, blocked[0])
            self._keep_evidence(self._trusted(old))
            self.ledger.put(author, blocked[0], Stored(old.id, old.wire, EXCLUDED, "equivocation"))
            del self.blocked[author]
            excluded.append(old.id)
        self._keep_evidence(ev)
        self.changes.authors.add(author)
        self._hash_dirty.add(author)
        rejection = Rejection(
            "equivocation",
            f"The author signed two different events at seq {seq}; both are kept as proof, their chain stops before seq {seq}, "
            "and what they signed from there on counts for no deadline not yet decided.",
        )
        return Outcome(EQUIVOCATION, ev.id, rejection, excluded=tuple(excluded))

    def _rebuild_head(self, author: bytes, seq: int) -> Head | None:
        if seq == 0:
            return None
        last = self._trusted(self.ledger.get(author, seq))
        in_round = 1
        q = seq - 1
        while q >= 1 and in_round < self.limits.max_events_per_round:
            earlier = self._trusted(self.ledger.get(author, q))
            if earlier.round != last.round:
                break
            in_round += 1
            q -= 1
        return Head(seq, last.id, last.round, in_round)

    def _set_head(self, author: bytes, head: Head | None) -> None:
        if head is None:
            self.heads.pop(author, None)
        else:
            self.heads[author] = head
        self._hash_dirty.add(author)
        self.changes.authors.add(author)

    # ------------------------------------------------------------------ persistence of derived state

    def drain_changes(self) -> Changes:
        """Return and reset the set of records changed since the last call (for derived tables)."""
        changes, self.changes = self.changes, Changes()
        return changes

    def restore(
        self,
        heads: Iterable[tuple[bytes, int, bytes, int, int]],
        forks: Iterable[tuple[bytes, int]],
        blocked: Iterable[tuple[bytes, int, str]],
        pending: Iterable[tuple[bytes, int]],
        proposals: Iterable[tuple[bytes, bytes, bool]],
        certified: Iterable[tuple[bytes, bytes]],
        records: Iterable[bytes] = (),
        rounds: Iterable[tuple[int, bytes]] = (),
        seconds: Iterable[bytes] = (),
        versions: Iterable[bytes] = (),
        kept: Iterable[tuple[bytes, int]] = (),
    ) -> None:
        """Load derived state saved by a store (the store's derived tables), instead of replaying.
        ``forks`` lists every fork proof's (author, seq); ``seconds`` their second versions."""
        for author, seq, hid, rnd, in_round in heads:
            self._set_head(author, Head(seq, hid, rnd, in_round))
        for author, seq in forks:
            self.forks[author] = min(seq, self.forks.get(author, seq))
            self._hash_dirty.add(author)
        for author, seq, code in blocked:
            self.blocked[author] = (seq, code)
        for author, seq in pending:
            self.pending.setdefault(author, set()).add(seq)
        for pid, author, withdrawn in proposals:
            self.proposals[pid] = Proposal(author, bool(withdrawn))
        self.certified.update(certified)
        self.kept.update(kept)
        for wire in records:
            ev = self._decode(wire, check_signature=False)
            record = Record(ev.id, ev.author, ev.seq, ev.round, ev.round_prefix, ev.kind, ev.body)
            fork = self.forks.get(ev.author)
            if fork is not None and ev.seq >= fork:
                self.evidence[ev.id] = record
            else:
                self.records[ev.id] = record
        for extra, wires in ((False, seconds), (True, versions)):
            for wire in wires:
                ev = self._decode(wire, check_signature=False)
                if extra:
                    self.versions.setdefault((ev.author, ev.seq), set()).add(ev.id)
                else:
                    self.seconds[(ev.author, ev.seq)] = ev.id
                if ev.kind in LEGISLATIVE:
                    self.evidence[ev.id] = Record(ev.id, ev.author, ev.seq, ev.round, ev.round_prefix, ev.kind, ev.body)
        for source in (self.records, self.evidence):
            for r in source.values():
                if isinstance(r.body, Certify):
                    self.vouched.add(r.body.subject)
        for number, randomness in rounds:
            if number not in self.beacon:
                self._put_round(number, randomness)
        for author, waiting in list(self.pending.items()):
            head = self.heads.get(author)
            nxt = (head.seq if head else 0) + 1
            if self._needs_voucher(author):
                self.unvouched[author] = len(waiting)
                self._unvouched_total += len(waiting)
                continue
            if nxt in waiting and author not in self.blocked:
                event = self._trusted(self.ledger.get(author, nxt))
                if event.round and event.round not in self.beacon:
                    self.awaiting.setdefault(event.round, set()).add(author)
                else:  # its round came before a crash let it apply
                    self._release(author)
        self._drain_releases()
        self.changes = Changes()
