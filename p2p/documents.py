"""A proposal's document as a replica holds it: its signed ``doc.change`` events made into a
:class:`crdt.ProposalDocument`, with the signers and beacon round of any revision (for exports)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from consensus.errors import KleroError
from consensus.kinds import Amend, DocChange, Submit
from consensus.legislature import Legislature, closure
from consensus.replica import Replica
from crdt import ProposalDocument

from .audit import _leading_charter, find_charters
from .logfile import LogDamage, read_items


@dataclass
class ProposalText:
    """One proposal's document and what its footer must say."""

    proposal: bytes
    title: str
    document: ProposalDocument
    revision: tuple[bytes, ...]
    signers: list[bytes]
    beacon_round: int
    #: "the revision the assembly last decided on", or "the latest revision"
    which: str
    #: every change: hash, author, beacon round (in chain order of rounds)
    history: list[dict]
    #: the amendments proposed to it (links kept in the signed events, not in the document)
    amendments: list[dict]
    #: where the assembly's decisions left it, in words ("passed in the plenary of cycle 3")
    status: str = ""


def replay_log(path: str | Path) -> Replica:
    """Every event and beacon round of a log, in a replica held in memory (read-only uses)."""
    charters = _leading_charter(path) or find_charters(path)
    if len(charters) != 1:
        raise KleroError(f"{path} must hold exactly one assembly's charter to read its documents (it holds {len(charters)}).")
    replica = Replica(charters[0])
    for item in read_items(path):
        if isinstance(item, LogDamage):
            break
        replica.add_item(item[2])
    return replica


def proposal_text(replica: Replica, prefix: str, *, latest: bool = False) -> ProposalText:
    """The proposal whose id starts with the hex ``prefix``: its document at the revision the
    assembly last decided on (or the ``latest`` one), with that revision's signers and round."""
    prefix = prefix.strip().lower()
    subs = {rid: r for rid, r in replica.records.items() if isinstance(r.body, Submit)}
    found = [rid for rid in subs if rid.hex().startswith(prefix)]
    if not found:
        raise KleroError(f"No proposal's id starts with {prefix!r}; `klero verify --details` lists them.")
    if len(found) > 1:
        raise KleroError(f"{len(found)} proposals' ids start with {prefix!r}; give more of the id.")
    pid = found[0]
    changes = [r for r in replica.records.values() if isinstance(r.body, DocChange) and r.body.proposal == pid]
    result = Legislature(replica.charter, replica.charter_event.round).evaluate_replica(replica)
    decided = result.proposals.get(pid)
    status = _status(decided)
    if not changes:
        with_text = sorted({r.body.proposal for r in replica.records.values() if isinstance(r.body, DocChange)} & set(subs))
        listed = "; ".join(f"{p.hex()[:12]} {subs[p].body.title!r}" for p in with_text[:10]) or "none"
        raise KleroError(f"Proposal {pid.hex()[:12]} {subs[pid].body.title!r} ({status}) was submitted without a text "
                         f"document: all it has is its summary, {subs[pid].body.summary!r}. Proposals with a document: {listed}.")
    doc, waiting = ProposalDocument.from_changes([r.body.change for r in changes])
    by_hash = {r.body.hash: r for r in changes}
    which = "the latest revision"
    revision = doc.heads()
    if not latest and decided is not None and decided.revision and all(h in by_hash for h in decided.revision):
        revision, which = tuple(decided.revision), "the revision the assembly last decided on"
    held = closure(revision, by_hash)
    signers = sorted({by_hash[h].author for h in held})
    history = [{"change": r.body.hash.hex(), "author": r.author.hex(), "round": r.round, "in_revision": r.body.hash in held}
               for r in sorted(changes, key=lambda r: (r.round, r.author, r.seq))]
    amendments = [{"id": r.id.hex(), "author": r.author.hex(), "round": r.round, "cycle": r.body.cycle,
                   "heads": [h.hex() for h in r.body.heads], "summary": r.body.summary}
                  for r in sorted(replica.records.values(), key=lambda r: (r.round, r.id))
                  if isinstance(r.body, Amend) and r.body.proposal == pid]
    return ProposalText(pid, subs[pid].body.title, doc, revision, signers, max(by_hash[h].round for h in held), which,
                        history, amendments, status)


def _status(state) -> str:
    """Where the assembly's decisions left a proposal, in words."""
    if state is None:
        return "submitted, not yet taken in"
    if state.status in ("passed", "failed", "in plenary"):
        cycle = state.history[-1][0] if state.history else "?"
        return f"{state.status} {'in' if state.status != 'in plenary' else 'in the'} plenary of cycle {cycle}".replace("in plenary in the", "in the")
    where = f" at stage {state.stage}" if state.stage else ""
    return f"{state.status}{where}"

