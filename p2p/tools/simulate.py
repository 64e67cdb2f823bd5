"""Seeded generation of valid signed logs, for tests, benchmarks and ``klero simulate``.

Everything is derived from the seed (keys included), so a run can be reproduced exactly.  These
logs are about chains, signatures and storage, not time: their events name no beacon round
(round 0), so they need no beacon rounds to apply, and their charter lifts the per-round event
limit accordingly.  The charter's beacon is a dev chain derived from the seed (:attr:`dev`), so
a test that is about rounds signs real ones (``sim.dev.sign(n)``) and names their prefix.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Iterator

from nacl.signing import SigningKey

from consensus.charter import Charter, Limits
from consensus.events import NO_ASSEMBLY, event_id, sign_event


def derived_key(seed: int, role: str, index: int) -> SigningKey:
    """A deterministic signing key for simulated actors (never for real people)."""
    return SigningKey(hashlib.sha256(f"klero-sim/{seed}/{role}/{index}".encode()).digest())


def fake_round_prefix(round_number: int) -> bytes:
    """A made-up randomness prefix for a round: what an event that never saw the round carries
    (a replica refuses it once the real round is known: ``wrong_round_prefix``)."""
    return hashlib.sha256(b"klero-sim/round" + round_number.to_bytes(8, "big")).digest()[:8] if round_number else b""


@dataclass
class Author:
    key: SigningKey
    seq: int = 0
    prev: bytes | None = None
    proposals: list[bytes] = field(default_factory=list)

    @property
    def public(self) -> bytes:
        return bytes(self.key.verify_key)


@dataclass
class Simulation:
    """A simulated assembly: its actors and a generator of its log."""

    seed: int = 0
    reps: int = 10
    registrars: int = 2
    name: str = "Simulated assembly"
    events_per_round: int = 8

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.convenor = Author(derived_key(self.seed, "convenor", 0))
        self.registrar_authors = [Author(derived_key(self.seed, "registrar", i)) for i in range(self.registrars)]
        self.rep_authors = [Author(derived_key(self.seed, "rep", i)) for i in range(self.reps)]
        from .bots import seeded_dev_beacon

        self.dev = seeded_dev_beacon(self.seed, 1000)
        charter = Charter(
            name=self.name,
            registrars=tuple(a.public for a in self.registrar_authors),
            roster=tuple(a.public for a in self.rep_authors),
            # every event names round 0 here, so the per-round limit is lifted (not under test)
            limits=Limits(max_events_per_round=1 << 16),
            beacon=self.dev.chain,
        )
        self.charter_wire = self._sign(self.convenor, NO_ASSEMBLY, "charter", charter.to_body(), 0)
        self.assembly = event_id(self.charter_wire)
        self.all_proposals: list[bytes] = []
        self.count = 0

    def _sign(self, author: Author, assembly: bytes, kind: str, body: dict, rnd: int, seq: int | None = None) -> bytes:
        wire = sign_event(
            author.key,
            assembly=assembly,
            seq=author.seq + 1 if seq is None else seq,
            prev=author.prev,
            kind=kind,
            body=body,
        )
        if seq is None:
            author.seq += 1
            author.prev = event_id(wire)
        return wire

    def next_round(self) -> int:
        """The round an event would name (kept for callers that pace by it; events name round 0)."""
        return 1 + self.count // self.events_per_round

    def event(self) -> bytes:
        """One more valid event from a randomly chosen actor."""
        rng = self.rng
        rnd = self.next_round()
        self.count += 1
        if self.registrar_authors and rng.random() < 0.05:
            registrar = rng.choice(self.registrar_authors)
            subject = hashlib.sha256(f"citizen/{self.seed}/{self.count}".encode()).digest()
            return self._sign(registrar, self.assembly, "registrar.certify", {"subject": subject}, rnd)
        rep = rng.choice(self.rep_authors)
        roll = rng.random()
        if not self.all_proposals or roll < 0.1:
            wire = self._sign(
                rep, self.assembly, "proposal.submit",
                {"title": f"Proposal {self.count}", "summary": f"Summary of proposal {self.count} by a simulated representative."},
                rnd,
            )
            rep.proposals.append(event_id(wire))
            self.all_proposals.append(event_id(wire))
            return wire
        if roll < 0.12 and rep.proposals:
            proposal = rep.proposals.pop(rng.randrange(len(rep.proposals)))
            return self._sign(rep, self.assembly, "proposal.withdraw", {"proposal": proposal}, rnd)
        proposal = rng.choice(self.all_proposals[-64:])
        return self._sign(
            rep, self.assembly, "comment",
            {"proposal": proposal, "text": f"Comment {self.count}: I support this with one amendment in mind."},
            rnd,
        )

    def fork(self, rep_index: int = 0) -> tuple[bytes, bytes]:
        """Two different events at the same seq by one representative (an equivocation)."""
        rep = self.rep_authors[rep_index]
        rnd = self.next_round()
        seq = rep.seq + 1
        body_a = {"title": "Fork A", "summary": "one version"}
        body_b = {"title": "Fork B", "summary": "another version"}
        a = self._sign(rep, self.assembly, "proposal.submit", body_a, rnd, seq=seq)
        b = self._sign(rep, self.assembly, "proposal.submit", body_b, rnd, seq=seq)
        rep.seq, rep.prev = seq, event_id(a)
        return a, b

    def log(self, events: int, forks: int = 0) -> Iterator[bytes]:
        """The charter followed by ``events`` events; ``forks`` of them are equivocation pairs."""
        yield self.charter_wire
        fork_at = set(self.rng.sample(range(events), min(forks, events))) if forks else set()
        for i in range(events):
            if i in fork_at:
                a, b = self.fork(self.rng.randrange(len(self.rep_authors)))
                yield a
                yield b
            else:
                yield self.event()
