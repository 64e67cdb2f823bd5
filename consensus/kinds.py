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
    """A registrar attests that ``subject`` is the key of one eligible person."""

    KIND: ClassVar[str] = "registrar.certify"
    WHO: ClassVar[tuple[str, ...]] = (REGISTRAR,)
    subject: bytes

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Certify":
        b = _fields(body, cls.KIND, ("subject",))
        return cls(_bytes(b["subject"], KEY_BYTES, cls.KIND, "subject"))

    def to_body(self) -> dict:
        return {"subject": self.subject}


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


@dataclass(frozen=True, slots=True)
class Comment:
    """A deliberation comment on a proposal."""

    KIND: ClassVar[str] = "comment"
    WHO: ClassVar[tuple[str, ...]] = (REPRESENTATIVE,)
    proposal: bytes
    text: str

    @classmethod
    def from_body(cls, body, limits: Limits) -> "Comment":
        b = _fields(body, cls.KIND, ("proposal", "text"))
        return cls(
            _bytes(b["proposal"], ID_BYTES, cls.KIND, "proposal"),
            _text(b["text"], cls.KIND, "text", 1, limits.max_text_chars),
        )

    def to_body(self) -> dict:
        return {"proposal": self.proposal, "text": self.text}


KINDS: dict[str, type] = {k.KIND: k for k in (CharterBody, Certify, Revoke, Submit, Withdraw, Comment)}
