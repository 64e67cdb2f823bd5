"""The pure core of Kleroterion: a deterministic function of a set of signed events.

No clock, network, database, Qt or randomness here (DESIGN.md §2); storage is injected through
the :class:`~consensus.replica.Ledger` protocol.
"""

from .charter import Charter, Limits
from .errors import InvalidInput, KleroError, Rejection
from .events import Event, decode_charter, event_id, peek_kind, sign_event
from .replica import (
    APPLIED,
    DUPLICATE,
    EQUIVOCATION,
    EXCLUDED,
    INVALID,
    PENDING,
    REJECTED,
    Ledger,
    MemoryLedger,
    Outcome,
    Replica,
    Stored,
)

__all__ = [
    "APPLIED", "DUPLICATE", "EQUIVOCATION", "EXCLUDED", "INVALID", "PENDING", "REJECTED",
    "Charter", "Event", "InvalidInput", "KleroError", "Ledger", "Limits", "MemoryLedger",
    "Outcome", "Rejection", "Replica", "Stored", "decode_charter", "event_id", "peek_kind",
    "sign_event",
]
