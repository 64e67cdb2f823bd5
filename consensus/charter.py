"""The charter: genesis of an assembly, and the limits every event is checked against.

This is the first slice of the charter (issue 2): name, registrars, the initial roster and the
hard limits of DESIGN.md §3.  The stage table, cycles and panels are added by later issues;
unknown parameters are rejected, so a charter written for a later version is refused by an
older node instead of being half-understood.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .beacon import QUICKNET, Chain, chain_from_body, chain_to_body
from .cbor import key_order
from .errors import names, reject
from .parliament import Parliament

KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard limits; anything over them is rejected with a reason, never truncated."""

    #: Largest accepted wire event.  64 KiB holds a long comment or a large document change
    #: while keeping one hostile message cheap to refuse.
    max_event_bytes: int = 65536
    #: Longest text field in characters (a comment, a summary): about 10 pages of prose.
    max_text_chars: int = 20000
    #: Events one author may sign per beacon round.  Quicknet rounds are 3 s apart, so 64 is
    #: far above human typing pace once keystrokes are batched, and it bounds a flood.
    max_events_per_round: int = 64
    #: How far ahead of an author's applied chain an event may be held while it waits for its
    #: predecessors.  Bounds the memory a single author can make a node spend on gaps;
    #: anything further is fetched again by sync once the gap is filled.
    max_pending_ahead: int = 4096
    #: Document changes one author may make to one proposal per beacon round.  An editor makes
    #: one signed change per pause of typing (about a second), so a 3-second round needs about
    #: 3; 8 leaves room for fast pauses.  Changes above it do not count towards the text (each
    #: listed with a reason), so a flood of tiny changes cannot bloat what others must apply.
    max_doc_changes_per_round: int = 8

    _RANGES = {
        "max_event_bytes": (1024, 1 << 24),
        "max_text_chars": (16, 1 << 22),
        "max_events_per_round": (1, 1 << 16),
        "max_pending_ahead": (1, 1 << 20),
        "max_doc_changes_per_round": (1, 1 << 16),
    }
    _FIRST = ("max_event_bytes", "max_text_chars", "max_events_per_round", "max_pending_ahead")

    @classmethod
    def from_body(cls, body) -> "Limits":
        if not isinstance(body, dict):
            raise reject("bad_charter", "The charter's limits must be a map.")
        _check_order(body, "charter's limits")
        unknown = sorted(set(body) - set(cls._RANGES))
        if unknown:
            raise reject("bad_charter", f"The charter has unknown limits: {names(unknown)}.")
        values = {}
        for name, (low, high) in cls._RANGES.items():
            if name in body:
                value = body[name]
                if type(value) is not int or not low <= value <= high:
                    raise reject(
                        "bad_charter", f"The charter limit {name} must be an integer from {low} to {high}."
                    )
                values[name] = value
        limits = cls(**values)
        if limits.max_text_chars > limits.max_event_bytes:
            raise reject(
                "bad_charter",
                "The charter allows texts longer than the largest event could carry "
                "(max_text_chars above max_event_bytes).",
            )
        return limits

    def to_body(self) -> dict:
        """The limits as a map in canonical key order (so ``from_body(to_body())`` round-trips).
        The first version's limits are always written; a limit added later is written only when
        it differs from its default, so adding one keeps every existing charter's bytes, and so
        its assembly id, unchanged (``max_doc_changes_per_round`` came after the first charters)."""
        default = Limits()
        return {name: getattr(self, name) for name in sorted(self._RANGES, key=key_order)
                if name in self._FIRST or getattr(self, name) != getattr(default, name)}


ENDORSE, DRAW = "endorse", "draw"
SEAT_RULES = (ENDORSE, DRAW)
CHOSEN, RANDOM = "chosen", "random"
GROUPINGS = (CHOSEN, RANDOM)


@dataclass(frozen=True, slots=True)
class Representation:
    """Who holds the seats once constituencies exist (DESIGN.md §5, docs/constituencies.md).

    A charter without this section keeps its founding roster for ever (the charters written
    before constituencies existed keep their bytes and their assembly id)."""

    #: registrars whose standing certifications make a key a constituent: one registrar alone
    #: cannot add people, and one that goes rogue or loses its key cannot remove them
    threshold: int = 1
    #: DESIGN.md §5 and the essay: "no more than, say, 1000 souls"
    max_constituency: int = 1000
    #: below this a constituency holds no seat: a representative of three friends is a faction
    #: of three, not a constituency.  50 keeps seats meaningful at city scale (800 seats of up to
    #: 1,000 people); small rehearsals lower it
    min_constituency: int = 50
    #: ``endorse``: the member endorsed by more than half holds the seat; ``draw``: members
    #: nominate, and the seat is drawn by lot among willing nominees (the seeds' option, so not
    #: only the loudest stand)
    seat_rule: str = ENDORSE
    #: ``chosen``: people found and join constituencies of common interest; ``random``: the lot
    #: assigns each newly certified constituent to a group of about ``group_size``
    grouping: str = CHOSEN
    group_size: int = 1000
    #: under the draw rule, cycles a drawn seat lasts before it is drawn again
    term_cycles: int = 4
    #: constituency acts (found, join, leave, endorse, serve) of one constituent that count per
    #: cycle: enough to change one's mind, not enough to make every node replay a flood
    acts_per_cycle: int = 8

    RANGES = {
        "threshold": (1, 64),
        "max_constituency": (2, 1_000_000),
        "min_constituency": (1, 1_000_000),
        "group_size": (2, 1_000_000),
        "term_cycles": (1, 1 << 20),
        "acts_per_cycle": (1, 1024),
    }

    @classmethod
    def from_body(cls, body, registrars: int) -> "Representation":
        if not isinstance(body, dict):
            raise reject("bad_charter", "The charter's representation must be a map.")
        _check_order(body, "charter's representation")
        unknown = sorted(set(body) - set(cls.RANGES) - {"seat_rule", "grouping"})
        if unknown:
            raise reject("bad_charter", f"The charter's representation has unknown parameters: {names(unknown)}.")
        values = {}
        for name, (low, high) in cls.RANGES.items():
            if name in body:
                value = body[name]
                if type(value) is not int or not low <= value <= high:
                    raise reject("bad_charter", f"The representation parameter {name} must be an integer from {low} to {high}.")
                values[name] = value
        for name, allowed in (("seat_rule", SEAT_RULES), ("grouping", GROUPINGS)):
            if name in body:
                if body[name] not in allowed:
                    raise reject("bad_charter", f"The representation's {name} must be one of {', '.join(allowed)}.")
                values[name] = body[name]
        rep = cls(**values)
        if rep.threshold > registrars:
            raise reject("bad_charter", f"The charter asks for {rep.threshold} registrars to certify a constituent but names "
                                        f"only {registrars}: nobody could ever be certified.")
        if rep.min_constituency > rep.max_constituency:
            raise reject("bad_charter", "The representation's min_constituency is above its max_constituency.")
        if rep.grouping == RANDOM and not rep.min_constituency <= rep.group_size <= rep.max_constituency:
            raise reject("bad_charter", "Under random grouping the group_size must lie between min_constituency and max_constituency.")
        return rep

    def to_body(self) -> dict:
        """Every parameter that differs from its default (the defaults are part of the format)."""
        default = Representation()
        body = {name: getattr(self, name) for name in list(self.RANGES) + ["seat_rule", "grouping"]
                if getattr(self, name) != getattr(default, name)}
        return {k: body[k] for k in sorted(body, key=key_order)}


@dataclass(frozen=True, slots=True)
class Charter:
    """The body of the ``charter`` event that founds an assembly."""

    name: str
    registrars: tuple[bytes, ...] = ()
    #: the initial seats: the roster of every cycle until constituencies elect (DESIGN.md §5)
    roster: tuple[bytes, ...] = ()
    limits: Limits = field(default_factory=Limits)
    #: the randomness beacon; production uses drand quicknet, testnets a dev beacon
    beacon: Chain = QUICKNET
    parliament: Parliament = field(default_factory=Parliament)
    #: seed peers a new node dials first (libp2p addresses ``/ip4/…/tcp/…/p2p/…``); written only
    #: when there are some, so charters made before this field keep their bytes and assembly id
    bootstrap: tuple[str, ...] = ()
    #: constituencies and seats (None: the founding roster serves for ever); written only when
    #: present, so charters made before this field keep their bytes and assembly id
    representation: Representation | None = None

    FIELDS = ("name", "registrars", "roster", "limits", "beacon", "parliament", "bootstrap", "representation")

    @classmethod
    def from_body(cls, body) -> "Charter":
        if not isinstance(body, dict):
            raise reject("bad_charter", "The charter body must be a map.")
        _check_order(body, "charter")
        unknown = sorted(set(body) - set(cls.FIELDS))
        if unknown:
            raise reject("bad_charter", f"The charter has unknown parameters: {names(unknown)}.")
        name = body.get("name")
        if type(name) is not str or not 1 <= len(name) <= 200 or not name.strip():
            raise reject("bad_charter", "The charter needs a name of 1 to 200 characters.")
        registrars = _key_list(body.get("registrars", []), "registrars")
        roster = _key_list(body.get("roster", []), "roster")
        limits = Limits.from_body(body.get("limits", {}))
        beacon = chain_from_body(body["beacon"]) if "beacon" in body else QUICKNET
        parliament = Parliament.from_body(body["parliament"]) if "parliament" in body else Parliament()
        bootstrap = _addresses(body["bootstrap"]) if "bootstrap" in body else ()
        representation = Representation.from_body(body["representation"], len(registrars)) if "representation" in body else None
        return cls(name=name, registrars=registrars, roster=roster, limits=limits, beacon=beacon, parliament=parliament,
                   bootstrap=bootstrap, representation=representation)

    def to_body(self) -> dict:
        """The charter as a map in canonical key order (so ``from_body(to_body())`` round-trips)."""
        body = {
            "name": self.name,
            "registrars": list(self.registrars),
            "roster": list(self.roster),
            "limits": self.limits.to_body(),
            "beacon": chain_to_body(self.beacon),
            "parliament": self.parliament.to_body(),
        }
        if self.bootstrap:
            body["bootstrap"] = list(self.bootstrap)
        if self.representation is not None:
            body["representation"] = self.representation.to_body()
        return {k: body[k] for k in sorted(body, key=key_order)}


def _check_order(body: dict, what: str) -> None:
    for key in body:
        if type(key) is not str:
            raise reject("bad_charter", f"The {what} has a key that is not text.")
    if list(body) != sorted(body, key=key_order):
        raise reject("not_canonical", f"The fields of the {what} are not in canonical order.")


MAX_BOOTSTRAP = 64


def _addresses(value) -> tuple[str, ...]:
    """Seed peer addresses: printable ASCII multiaddrs naming a peer id.  Checked for shape only;
    a node that cannot dial one says so and tries the next."""
    if type(value) is not list or not 1 <= len(value) <= MAX_BOOTSTRAP:
        raise reject("bad_charter", f"The charter's bootstrap peers must be a list of 1 to {MAX_BOOTSTRAP} addresses.")
    for address in value:
        if (type(address) is not str or not 8 <= len(address) <= 256 or not address.startswith("/")
                or "/p2p/" not in address or not all("!" <= ch <= "~" for ch in address)):
            raise reject("bad_charter", "Every bootstrap peer of the charter must be an address like "
                                        "/ip4/HOST/tcp/PORT/p2p/PEER-ID (printable, at most 256 characters).")
    if len(set(value)) != len(value):
        raise reject("bad_charter", "The charter lists a bootstrap peer twice.")
    return tuple(value)


def _key_list(value, what: str) -> tuple[bytes, ...]:
    if type(value) is not list or len(value) > 1_000_000:
        raise reject("bad_charter", f"The charter's {what} must be a list of public keys.")
    for key in value:
        if type(key) is not bytes or len(key) != KEY_BYTES:
            raise reject("bad_charter", f"Every entry of the charter's {what} must be a 32-byte public key.")
    if len(set(value)) != len(value):
        raise reject("bad_charter", f"The charter's {what} lists a key twice.")
    return tuple(value)
