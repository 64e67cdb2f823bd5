"""Rejections as values, and the one error base class.

Every piece of input that the core refuses gets a :class:`Rejection`: a stable machine code
plus a sentence a representative can read.  Rejections are returned, never only logged, so the
app, ``klero verify --json`` and the tests all see the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an input was refused.

    ``code`` is stable and meant for programs (tests, JSON output, golden vectors);
    ``reason`` is a sentence for people.  ``fatal`` marks misbehaviour that only a dishonest or
    broken author can produce (forgery, equivocation, a broken chain); recoverable rejections
    (for example an event that arrived too early) may succeed when retried later.
    """

    code: str
    reason: str
    fatal: bool = True

    def as_dict(self) -> dict:
        return {"code": self.code, "reason": self.reason}

    def __str__(self) -> str:  # pragma: no cover - convenience
        return f"{self.code}: {self.reason}"


class KleroError(Exception):
    """Base of every error Kleroterion raises on purpose.

    The message is a sentence that says what happened and, where possible, what to do.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(KleroError):
    """Raised where a rejection must interrupt control flow; carries the :class:`Rejection`."""

    def __init__(self, rejection: Rejection):
        super().__init__(rejection.reason)
        self.rejection = rejection


def names(values, limit: int = 5, width: int = 40) -> str:
    """Quote untrusted names (field names, kinds) for a sentence: each shortened, escaped, few.

    A hostile event must not be able to put kilobytes, newlines or terminal escapes into the
    sentence a person reads.
    """
    shown = []
    for value in list(values)[:limit]:
        text = repr(value)
        shown.append(text if len(text) <= width else text[: width - 1] + "…")
    more = len(values) - limit if hasattr(values, "__len__") else 0
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def reject(code: str, reason: str, *, fatal: bool = True) -> InvalidInput:
    """Build an :class:`InvalidInput` to raise (``raise reject(...)``)."""
    return InvalidInput(Rejection(code, reason, fatal))
