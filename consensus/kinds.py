"""One frozen dataclass per event kind, each with one structural validator.

``from_body`` performs the cheap, stateless checks of a body (field names, types, lengths).
``who`` says which authors may sign the kind at all; it depends on the charter only, so it is
checked before anything is stored.  Checks that depend on the author's own earlier events
(withdrawing one's own proposal, revoking one's own certification) live in the reducer.

Kinds of later issues (votes, leases, document changes, panel messages) are added here with
their own dataclass; until then they are rejected as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .cbor import key_order
from .charter import Charter, Limits
from .errors import names, reject

ID_BYTES = 32
KEY_BYTES = 32

#: who may sign a kind
CONVENOR, REGISTRAR, REPRESENTATIVE = "convenor", "registrar", "representative"
#: a key some registrar vouched for (docs/constituencies.md): it may sign constituency acts, and,
#: once a panel certified its seat, a representative's acts
CONSTITUENT = "constituent"


def _fields(body, kind: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    """Check a body's field names and their canonical order (types are checked by the caller)."""
    if type(body) is not dict:
        raise reject("bad_body", f"The body of a {kind} event must be a map.")
    if not optional and len(body) == len(required) and tuple(body) == _canonical(required):
        return body  # the common case, checked in one comparison
    keys = set(body)
    missing = [k for k in required if k not in keys]
    if missing:
        raise reject("bad_body", f"A {kind} event needs the field(s) {', '.join(missing)}.")
    unknown = sorted(keys - set(required) - set(optional), key=str)
    if unknown:
        raise reject("bad_body", f"A {kind} event has unknown field(s) {names(unknown)}.")
    if list(body) != sorted(body, key=key_order):
        raise reject("not_canonical", f"The fields of the {kind} event's body are not in canonical order.")
    return body


_CANONICAL: dict[tuple[str, ...], tuple[str, ...]] = {}


def _canonical(names: tuple[str, ...]) -> tuple[str, ...]:
    order = _CANONICAL.get(names)
    if order is None:
        order = _CANONICAL[names] = tuple(sorted(names, key=key_order))
    return order


def _bytes(value, size: int, kind: str, name: str) -> bytes:
    if type(value) is not bytes or len(value) != size:
        raise reject("bad_body", f"The {name} of a {kind} event must be {size} bytes.")
    return value


def _text(value, kind: str, name: str, low: int, high: int) -> str:
    if type(value) is not str or not low <= len(value) <= high:
        raise reject("bad_body", f"The {name} of a {kind} event must be text of {low} to {high} characters.")
    if "\x00" in value:
        raise reject("bad_body", f"The {name} of a {kind} event contains a NUL character.")
    return value


@dataclass(frozen=True, slots=True)
class CharterBody:
    """Founds the assembly (always the convenor's first event)."""

    KIND: ClassVar[str] = "charter"
    WHO: ClassVar[tuple[str, ...]] = (CONVENOR,)
    charter: Charter

    @classmethod
    def from_body(cls, body, limits: Limits) -> "CharterBody":
        return cls(Charter.from_body(body))

    def to_body(self) -> dict:
        return self.charter.to_body()


@dataclass(frozen=True, slots=True)
class Certify:
    """A registrar attests that ``subject`` is the key of one eligible person.

    ``person`` (optional) is the registrar's pseudonymous handle for that person (a salted hash
    of its own register entry, never the entry): the same handle on two keys without
    ``replaces`` is a detectable duplicate.  ``replaces`` (optional) names the person's earlier
    key (a lost device): once enough registrars agree, the new key keeps the old one's
    membership and endorsements, and the old one stops counting."""

    KIND: ClassVar[str] = "registrar.certify"
    WHO: ClassVar[tuple[str, ...]] = (REGISTRAR,)
    subject: bytes
    person: bytes | None = None
    replaces: bytes | None = None

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Certify":
        b = _fields(body, cls.KIND, ("subject",), ("person", "replaces"))
        subject = _bytes(b["subject"], KEY_BYTES, cls.KIND, "subject")
        person = _bytes(b["person"], 32, cls.KIND, "person") if "person" in b else None
        replaces = _bytes(b["replaces"], KEY_BYTES, cls.KIND, "replaces") if "replaces" in b else None
        if replaces == subject:
            raise reject("bad_body", "A key cannot replace itself.")
        return cls(subject, person, replaces)

    def to_body(self) -> dict:
        body = {"subject": self.subject}
        if self.person is not None:
            body["person"] = self.person
        if self.replaces is not None:
            body["replaces"] = self.replaces
        return {k: body[k] for k in sorted(body, key=key_order)}


@dataclass(frozen=True, slots=True)
class Revoke:
    """A registrar withdraws its own earlier certification of ``subject``."""

    KIND: ClassVar[str] = "registrar.revoke"
    WHO: ClassVar[tuple[str, ...]] = (REGISTRAR,)
    subject: bytes

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Revoke":
        b = _fields(body, cls.KIND, ("subject",))
        return cls(_bytes(b["subject"], KEY_BYTES, cls.KIND, "subject"))

    def to_body(self) -> dict:
        return {"subject": self.subject}


@dataclass(frozen=True, slots=True)
class Submit:
    """A representative submits a proposal; the proposal's id is this event's id."""

    KIND: ClassVar[str] = "proposal.submit"
    WHO: ClassVar[tuple[str, ...]] = (REPRESENTATIVE,)
    title: str
    summary: str

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Submit":
        b = _fields(body, cls.KIND, ("title", "summary"))
        return cls(
            _text(b["title"], cls.KIND, "title", 1, 200),
            _text(b["summary"], cls.KIND, "summary", 0, limits.max_text_chars),
        )

    def to_body(self) -> dict:
        return {"title": self.title, "summary": self.summary}


@dataclass(frozen=True, slots=True)
class Withdraw:
    """The author of a proposal withdraws it."""

    KIND: ClassVar[str] = "proposal.withdraw"
    WHO: ClassVar[tuple[str, ...]] = (REPRESENTATIVE,)
    proposal: bytes

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Withdraw":
        b = _fields(body, cls.KIND, ("proposal",))
        return cls(_bytes(b["proposal"], ID_BYTES, cls.KIND, "proposal"))

    def to_body(self) -> dict:
        return {"proposal": self.proposal}


ANCHOR_FIELDS = ("title", "summary", "body")


@dataclass(frozen=True, slots=True)
class Comment:
    """A deliberation comment on a proposal; optionally a reply to another comment (``reply``,
    its event id) and anchored to a passage: ``anchor = (field, revision, start, end)``, the
    characters ``start:end`` of a field of the text at that revision.  Readers carry the passage
    forward through later revisions, or show the comment as orphaned once it was deleted.  Both
    fields are optional, so comments signed before them keep their bytes."""

    KIND: ClassVar[str] = "comment"
    WHO: ClassVar[tuple[str, ...]] = (REPRESENTATIVE,)
    proposal: bytes
    text: str
    reply: bytes | None = None
    anchor: tuple[str, tuple[bytes, ...], int, int] | None = None

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Comment":
        b = _fields(body, cls.KIND, ("proposal", "text"), ("reply", "anchor"))
        reply = _bytes(b["reply"], ID_BYTES, cls.KIND, "reply") if "reply" in b else None
        anchor = None
        if "anchor" in b:
            a = _fields(b["anchor"], cls.KIND + " anchor", ("field", "revision", "start", "end"))
            if a["field"] not in ANCHOR_FIELDS:
                raise reject("bad_body", f"A comment's anchor must name one of the fields {', '.join(ANCHOR_FIELDS)}.")
            start = _small_int(a["start"], cls.KIND, "anchor start", limits.max_text_chars)
            end = _small_int(a["end"], cls.KIND, "anchor end", limits.max_text_chars)
            if end <= start:
                raise reject("bad_body", "A comment's anchor must end after it starts.")
            anchor = (a["field"], _revision(a["revision"], cls.KIND, "anchor revision"), start, end)
        return cls(
            _bytes(b["proposal"], ID_BYTES, cls.KIND, "proposal"),
            _text(b["text"], cls.KIND, "text", 1, limits.max_text_chars),
            reply,
            anchor,
        )

    def to_body(self) -> dict:
        body = {"proposal": self.proposal, "text": self.text}
        if self.reply is not None:
            body["reply"] = self.reply
        if self.anchor is not None:
            field, revision, start, end = self.anchor
            body["anchor"] = {"field": field, "revision": list(revision), "start": start, "end": end}
        return {k: body[k] for k in sorted(body, key=key_order)}


MAX_HEADS = 64
VOTE_CHOICES = ("promote", "kill", "yes", "no", "adopt", "reject")


def _revision(value, kind: str, name: str) -> tuple[bytes, ...]:
    """A revision: the sorted, distinct heads of a document (1 to 64 ids of 32 bytes)."""
    if type(value) is not list or not 1 <= len(value) <= MAX_HEADS:
        raise reject("bad_body", f"The {name} of a {kind} event must list 1 to {MAX_HEADS} document heads.")
    for head in value:
        if type(head) is not bytes or len(head) != ID_BYTES:
            raise reject("bad_body", f"Every head in the {name} of a {kind} event must be 32 bytes.")
    if value != sorted(set(value)):
        raise reject("bad_body", f"The heads in the {name} of a {kind} event must be sorted and distinct.")
    return tuple(value)


def _small_int(value, kind: str, name: str, high: int) -> int:
    if type(value) is not int or not 0 <= value <= high:
        raise reject("bad_body", f"The {name} of a {kind} event must be an integer from 0 to {high}.")
    return value


@dataclass(frozen=True, slots=True)
class Vote:
    """A committee member's (or, in the plenary, a representative's) vote on one ballot.

    The ballot is (proposal, cycle, stage), or an amendment's adopt/reject ballot when
    ``amendment`` is set.  ``revision`` names the exact text the vote is about.  Whether the
    vote counts (member of the committee, inside the window, right revision, first vote) is
    decided at the tally, from the decided set of the ballot's deadline.
    """

    KIND: ClassVar[str] = "vote"
    WHO: ClassVar[tuple[str, ...]] = (REPRESENTATIVE,)
    proposal: bytes
    cycle: int
    stage: int
    choice: str
    revision: tuple[bytes, ...]
    amendment: bytes | None = None

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Vote":
        b = _fields(body, cls.KIND, ("proposal", "cycle", "stage", "choice", "revision"), ("amendment",))
        choice = b["choice"]
        if choice not in VOTE_CHOICES:
            raise reject("bad_body", f"A vote's choice must be one of {', '.join(VOTE_CHOICES)}.")
        amendment = b.get("amendment")
        if amendment is not None:
            amendment = _bytes(amendment, ID_BYTES, cls.KIND, "amendment")
        return cls(
            _bytes(b["proposal"], ID_BYTES, cls.KIND, "proposal"),
            _small_int(b["cycle"], cls.KIND, "cycle", 1 << 30),
            _small_int(b["stage"], cls.KIND, "stage", 16),
            choice,
            _revision(b["revision"], cls.KIND, "revision"),
            amendment,
        )

    def to_body(self) -> dict:
        body = {"proposal": self.proposal, "cycle": self.cycle, "stage": self.stage, "choice": self.choice, "revision": list(self.revision)}
        if self.amendment is not None:
            body["amendment"] = self.amendment
        return body


@dataclass(frozen=True, slots=True)
class Amend:
    """A stage-2 committee member proposes an amendment: a fork of the frozen revision."""

    KIND: ClassVar[str] = "amendment.propose"
    WHO: ClassVar[tuple[str, ...]] = (REPRESENTATIVE,)
    proposal: bytes
    cycle: int
    base: tuple[bytes, ...]
    heads: tuple[bytes, ...]
    summary: str

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Amend":
        b = _fields(body, cls.KIND, ("proposal", "cycle", "base", "heads", "summary"))
        return cls(
            _bytes(b["proposal"], ID_BYTES, cls.KIND, "proposal"),
            _small_int(b["cycle"], cls.KIND, "cycle", 1 << 30),
            _revision(b["base"], cls.KIND, "base"),
            _revision(b["heads"], cls.KIND, "heads"),
            _text(b["summary"], cls.KIND, "summary", 1, limits.max_text_chars),
        )

    def to_body(self) -> dict:
        return {"proposal": self.proposal, "cycle": self.cycle, "base": list(self.base), "heads": list(self.heads), "summary": self.summary}


@dataclass(frozen=True, slots=True)
class DocChange:
    """One Automerge change to a proposal's text.  The event declares the change's hash and
    dependencies, and they are checked against the bytes here, so the core can reason about
    revisions (sets of heads) without Automerge.  The change's actor must be its signer."""

    KIND: ClassVar[str] = "doc.change"
    WHO: ClassVar[tuple[str, ...]] = (REPRESENTATIVE,)
    proposal: bytes
    change: bytes
    hash: bytes
    deps: tuple[bytes, ...]

    @classmethod
    def from_body(cls, body, limits: Limits) -> "DocChange":
        from .changes import read_change

        b = _fields(body, cls.KIND, ("proposal", "change", "hash", "deps"))
        proposal = _bytes(b["proposal"], ID_BYTES, cls.KIND, "proposal")
        if type(b["change"]) is not bytes or not 10 <= len(b["change"]) <= limits.max_event_bytes:
            raise reject("bad_body", "A document change must be 10 bytes to the charter's event size limit.")
        declared = _bytes(b["hash"], ID_BYTES, cls.KIND, "hash")
        deps = b["deps"]
        if type(deps) is not list or len(deps) > MAX_HEADS or any(type(d) is not bytes or len(d) != ID_BYTES for d in deps) or deps != sorted(set(deps)):
            raise reject("bad_body", f"The deps of a doc.change event must be at most {MAX_HEADS} sorted, distinct 32-byte hashes.")
        header = read_change(b["change"])
        if header.hash != declared:
            raise reject("bad_change", "The document change's bytes do not hash to the hash the event declares.")
        if tuple(sorted(header.deps)) != tuple(deps):
            raise reject("bad_change", "The document change depends on other changes than the event declares.")
        return cls(proposal, b["change"], declared, tuple(deps))

    def to_body(self) -> dict:
        return {"proposal": self.proposal, "change": self.change, "hash": self.hash, "deps": list(self.deps)}


def _deadline(value, kind: str) -> bytes:
    if type(value) is not bytes or not 1 <= len(value) <= 64:
        raise reject("bad_body", f"The deadline of a {kind} event must be a deadline name of 1 to 64 bytes.")
    return value


@dataclass(frozen=True, slots=True)
class Lease:
    """A representative's node promises to be available for panel duty during ``cycle``."""

    KIND: ClassVar[str] = "lease"
    WHO: ClassVar[tuple[str, ...]] = (REPRESENTATIVE,)
    cycle: int

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Lease":
        b = _fields(body, cls.KIND, ("cycle",))
        return cls(_small_int(b["cycle"], cls.KIND, "cycle", 1 << 30))

    def to_body(self) -> dict:
        return {"cycle": self.cycle}


@dataclass(frozen=True, slots=True)
class Cut:
    """A panel member's cut-off: what it had received when the deadline's round came out."""

    KIND: ClassVar[str] = "cutoff"
    WHO: ClassVar[tuple[str, ...]] = (REPRESENTATIVE,)
    deadline: bytes
    cutoff: object  # consensus.panel.CutOff

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Cut":
        from .panel import CutOff

        b = _fields(body, cls.KIND, ("deadline", "cutoff"))
        return cls(_deadline(b["deadline"], cls.KIND), CutOff.from_body(b["cutoff"]))

    def to_body(self) -> dict:
        return {"deadline": self.deadline, "cutoff": self.cutoff.to_body()}


@dataclass(frozen=True, slots=True)
class Propose:
    """The agreement round's proposer proposes a value (``consensus.panel.encode_value``)."""

    KIND: ClassVar[str] = "propose"
    WHO: ClassVar[tuple[str, ...]] = (REPRESENTATIVE,)
    deadline: bytes
    round: int
    valid_round: int
    value: bytes

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Propose":
        b = _fields(body, cls.KIND, ("deadline", "round", "valid_round", "value"))
        valid_round = b["valid_round"]
        if type(valid_round) is not int or not -1 <= valid_round < (1 << 20):
            raise reject("bad_body", "A proposal's valid_round must be -1 or an earlier agreement round.")
        if type(b["value"]) is not bytes or not 1 <= len(b["value"]) <= 8192:
            raise reject("bad_body", "A proposal's value must be 1 to 8192 bytes.")
        return cls(_deadline(b["deadline"], cls.KIND), _small_int(b["round"], cls.KIND, "round", 1 << 20), valid_round, b["value"])

    def to_body(self) -> dict:
        return {"deadline": self.deadline, "round": self.round, "valid_round": self.valid_round, "value": self.value}


def _step_vote(name: str):
    @dataclass(frozen=True, slots=True)
    class StepVote:
        KIND: ClassVar[str] = name
        WHO: ClassVar[tuple[str, ...]] = (REPRESENTATIVE,)
        deadline: bytes
        round: int
        value: bytes | None  # a value id, or None for nil

        @classmethod
        def from_body(cls, body, limits: Limits):
            b = _fields(body, cls.KIND, ("deadline", "round", "value"))
            value = b["value"]
            if value is not None:
                value = _bytes(value, ID_BYTES, cls.KIND, "value")
            return cls(_deadline(b["deadline"], cls.KIND), _small_int(b["round"], cls.KIND, "round", 1 << 20), value)

        def to_body(self) -> dict:
            return {"deadline": self.deadline, "round": self.round, "value": self.value}

    StepVote.__name__ = StepVote.__qualname__ = name.capitalize()
    StepVote.__doc__ = f"A panel member's {name} in one agreement round (None is nil)."
    return StepVote


Prevote = _step_vote("prevote")
Precommit = _step_vote("precommit")

# ---------------------------------------------------------------------- constituencies


@dataclass(frozen=True, slots=True)
class Found:
    """A constituent founds a constituency (its id is this event's id) and is its first member."""

    KIND: ClassVar[str] = "constituency.found"
    WHO: ClassVar[tuple[str, ...]] = (CONSTITUENT,)
    name: str
    statement: str

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Found":
        b = _fields(body, cls.KIND, ("name", "statement"))
        name = _text(b["name"], cls.KIND, "name", 1, 200)
        if not name.strip():
            raise reject("bad_body", "A constituency needs a name that is not blank.")
        return cls(name, _text(b["statement"], cls.KIND, "statement", 0, limits.max_text_chars))

    def to_body(self) -> dict:
        return {"name": self.name, "statement": self.statement}


def _constituency_act(name: str, doc: str):
    @dataclass(frozen=True, slots=True)
    class Act:
        KIND: ClassVar[str] = name
        WHO: ClassVar[tuple[str, ...]] = (CONSTITUENT,)
        constituency: bytes

        @classmethod
        def from_body(cls, body, limits: Limits):
            b = _fields(body, cls.KIND, ("constituency",))
            return cls(_bytes(b["constituency"], ID_BYTES, cls.KIND, "constituency"))

        def to_body(self) -> dict:
            return {"constituency": self.constituency}

    Act.__name__ = Act.__qualname__ = name.split(".")[1].capitalize()
    Act.__doc__ = doc
    return Act


Join = _constituency_act("constituency.join", "A constituent joins a constituency (one at a time; at most the charter's cap).")
Leave = _constituency_act("constituency.leave", "A member leaves their constituency (their endorsement goes with them).")


@dataclass(frozen=True, slots=True)
class Endorse:
    """A member endorses one member of their constituency to hold its seat (under the charter's
    draw rule: nominates them).  A later endorsement replaces the earlier one."""

    KIND: ClassVar[str] = "endorse"
    WHO: ClassVar[tuple[str, ...]] = (CONSTITUENT,)
    constituency: bytes
    member: bytes

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Endorse":
        b = _fields(body, cls.KIND, ("constituency", "member"))
        return cls(_bytes(b["constituency"], ID_BYTES, cls.KIND, "constituency"), _bytes(b["member"], KEY_BYTES, cls.KIND, "member"))

    def to_body(self) -> dict:
        return {"constituency": self.constituency, "member": self.member}


SERVE_ANSWERS = ("yes", "no")


@dataclass(frozen=True, slots=True)
class Serve:
    """A constituent says whether they are willing to hold a seat: nobody is seated (or drawn
    onto a committee) without having said yes."""

    KIND: ClassVar[str] = "serve"
    WHO: ClassVar[tuple[str, ...]] = (CONSTITUENT,)
    answer: str

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Serve":
        b = _fields(body, cls.KIND, ("answer",))
        if b["answer"] not in SERVE_ANSWERS:
            raise reject("bad_body", "A serve event answers yes or no.")
        return cls(b["answer"])

    def to_body(self) -> dict:
        return {"answer": self.answer}


@dataclass(frozen=True, slots=True)
class Absence:
    """A representative declares they will be absent in ``cycle``: that cycle's committee draws
    skip them, so their silence does not count against anyone's proposal."""

    KIND: ClassVar[str] = "absence"
    WHO: ClassVar[tuple[str, ...]] = (REPRESENTATIVE,)
    cycle: int

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Absence":
        b = _fields(body, cls.KIND, ("cycle",))
        return cls(_small_int(b["cycle"], cls.KIND, "cycle", 1 << 30))

    def to_body(self) -> dict:
        return {"cycle": self.cycle}


@dataclass(frozen=True, slots=True)
class Post:
    """A message in a constituency's own thread: a constituent's question, the representative's
    answer (``reply``: the event id answered).  Signed and public like everything in the log."""

    KIND: ClassVar[str] = "constituency.post"
    WHO: ClassVar[tuple[str, ...]] = (CONSTITUENT, REPRESENTATIVE)
    constituency: bytes
    text: str
    reply: bytes | None = None

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Post":
        b = _fields(body, cls.KIND, ("constituency", "text"), ("reply",))
        reply = _bytes(b["reply"], ID_BYTES, cls.KIND, "reply") if "reply" in b else None
        return cls(_bytes(b["constituency"], ID_BYTES, cls.KIND, "constituency"),
                   _text(b["text"], cls.KIND, "text", 1, limits.max_text_chars), reply)

    def to_body(self) -> dict:
        body = {"constituency": self.constituency, "text": self.text}
        if self.reply is not None:
            body["reply"] = self.reply
        return {k: body[k] for k in sorted(body, key=key_order)}


KINDS: dict[str, type] = {
    k.KIND: k for k in (CharterBody, Certify, Revoke, Submit, Withdraw, Comment, Vote, Amend, Lease, Cut, Propose, Prevote, Precommit,
                        DocChange, Found, Join, Leave, Endorse, Serve, Absence, Post)
}
#: the acts that decide seats (read at cycle boundaries, docs/constituencies.md)
REPRESENTATION = (Certify.KIND, Revoke.KIND, Found.KIND, Join.KIND, Leave.KIND, Endorse.KIND, Serve.KIND)
#: kinds whose events the legislature reads (kept as records by the replica)
LEGISLATIVE = (
    Submit.KIND, Withdraw.KIND, Vote.KIND, Amend.KIND, Lease.KIND, Cut.KIND, Propose.KIND, Prevote.KIND, Precommit.KIND, DocChange.KIND,
    Absence.KIND,
) + REPRESENTATION
#: agreement messages, for equivocation checks
PANEL_KINDS = (Cut.KIND, Propose.KIND, Prevote.KIND, Precommit.KIND)
