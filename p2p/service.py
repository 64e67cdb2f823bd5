"""The representative's service: every act a person makes and every view they read, over one
replica.  The command line calls it now and the desktop app will; neither holds any rule of
its own.

Acts are checked against the core's own rules *before* anything is signed (the legislature's
``vote_problem``, ``amendment_problem``, ``change_problem``, windows, rosters and quotas), so a
person hears a sentence that says what to do, never "event rejected".  Signing goes through
:class:`p2p.duties.Hands`: the next seq of the key's chain at the latest beacon round, added to
the replica at once.  One process signs for a key at a time: the node while it runs (the CLI
and the app then call this service *inside* the node, over ``p2p.control``), else whoever holds
the replica's lock.  So no seq is ever signed twice, and the node writes an act to disk before
it gossips it (``Node._acts``).

Long first texts are split into several document changes; the charter lets an author make only
``max_doc_changes_per_round`` a beacon round, so the rest wait in the profile's *outbox* and go
out round by round (``pump``), across restarts.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Callable

from consensus.cbor import decode, encode
from consensus.errors import KleroError
from consensus.events import event_id, parse_body, peek_kind, split_wire
from consensus.kinds import PANEL_KINDS, Amend, Comment, Submit, Vote
from consensus.legislature import (
    IN_COMMITTEE,
    IN_PLENARY,
    SUBMITTED,
    BallotSpec,
    Legislature,
    closure,
)
from consensus.parliament import AMEND, EDIT
from consensus.replica import Record

from .constituents import ConstituentActs
from .duties import Hands

#: kinds read as threads: proposals' comments, constituencies' posts
_THREADED = ("comment", "constituency.post")
CHOICES = {"stage": ("promote", "kill"), "amendment": ("adopt", "reject"), "plenary": ("yes", "no")}
#: a person types a proposal id's first characters (as in git); fewer than this is ambiguous
MIN_PREFIX = 4


class ActError(KleroError):
    """An act the rules would refuse, said before anything was signed."""


#: how a node's "still catching up" refusal begins (the CLI waits on it rather than failing)
CATCHING_UP = "Your node is still catching up"


@dataclass
class Ballot:
    """A ballot open (or about to open) to this representative."""

    kind: str  # "stage", "amendment", "plenary"
    proposal: bytes
    cycle: int
    stage: int
    opens: int
    closes: int
    revision: tuple[bytes, ...] | None  # None: the text the ballot names is not settled yet
    amendment: bytes | None = None


class Service(ConstituentActs):
    """One representative's (or constituent's, or registrar's) acts and views over ``replica``
    (``key`` None: read-only).  Constituencies live in ``p2p.constituents``."""

    # Every public method takes and returns JSON-ready values (hex ids, lists), so the node can
    # answer the same calls over its door (p2p.control) as the app and the CLI make in-process.

    def __init__(self, replica, key=None, *, add: Callable[[bytes], object] | None = None,
                 outbox: Path | None = None, clock: Callable[[], float] = time.time, me: bytes | None = None,
                 shared=None, readiness: Callable[[], str] | None = None, constituent_only: bool = False):
        self.replica = replica
        #: an observer's node: it signs the person's constituency acts, never legislation
        self.constituent_only = constituent_only
        self.key = key
        #: whose inbox this is: the key's owner (``me`` alone: a read-only view of someone's work)
        self.me = bytes(key.verify_key) if key is not None else me
        self.hands = Hands(replica, [key], add=add) if key is not None else None
        self.leg = Legislature(replica.charter, replica.charter_event.round)
        self.clock = clock
        self.outbox_path = outbox
        self.outbox: list[tuple[str, dict]] = _read_outbox(outbox)
        self._result = None
        self._version = None
        self._comments: dict[bytes, dict] = {}
        self._comment_mark = 0  # store rowid (or memory count) read so far
        #: comments that concern this representative (replies, mentions, on their proposals)
        self._notices: list[tuple[str, dict]] = []
        self._my_comments: set[str] = set()
        #: the node's Reactor, whose evaluation this service reuses when it is current (a node
        #: evaluates once per beacon round anyway; the inbox then costs no second evaluation)
        self.shared = shared
        #: "" when the replica is current, else why acting must wait (the node says: an act
        #: signed while it catches up would name an old round and miss its deadline)
        self.readiness = readiness or (lambda: "")
        #: the node's view of how far this representative's events spread (``Node.reach``)
        self.reach_of: Callable[[], dict] | None = None
        # an index of the records, kept up to date by reading only the new ones (``_index``)
        self._seen = 0
        self._forks_seen = 0
        self._panel_messages = 0
        self._last_panel = -1  # position of the latest panel message among the records
        self._mine: list[Record] = []
        #: each proposal's document changes as the records hold them, and its document built
        #: incrementally from them: (document, changes applied)
        self._changes: dict[bytes, list[Record]] = {}
        self._docs: dict[bytes, tuple[object, int]] = {}

    # ------------------------------------------------------------------ state

    def _index(self) -> None:
        """Read the records added since the last call (the dict keeps insertion order): panel
        messages counted, this representative's own kept.  A fork can remove records: then the
        index is rebuilt from scratch."""
        records = self.replica.records
        n, forks = len(records), len(self.replica.forks)
        if n < self._seen or forks != self._forks_seen:
            self._seen, self._panel_messages, self._mine, self._forks_seen, self._last_panel = 0, 0, [], forks, -1
            self._changes, self._docs = {}, {}
        if n > self._seen:
            for position, r in enumerate(islice(records.values(), self._seen, None), self._seen):
                if r.kind in PANEL_KINDS:
                    self._panel_messages += 1
                    self._last_panel = position
                elif r.kind == "doc.change":
                    self._changes.setdefault(r.body.proposal, []).append(r)
                if r.author == self.me:
                    self._mine.append(r)
            self._seen = n

    def mine(self) -> list[Record]:
        """This representative's own records, in the order the replica took them."""
        self._index()
        return self._mine

    def result(self):
        """The legislature's evaluation of the replica as it is now (cached until it can change).

        Under the panel rule an evaluation changes only with a new beacon round or a new panel
        message (a certificate decides; votes, texts and comments count only through it), so
        other events reuse it: the inbox after a new comment or vote costs no evaluation."""
        r = self.replica
        self._index()
        if self.leg.p.deadline_rule == "panel":
            version = (max(r.beacon, default=0), self._panel_messages, len(r.forks))
        else:
            version = (max(r.beacon, default=0), len(r.records), r.applied_count())
        if version != self._version:
            shared = self.shared
            done = getattr(shared, "evaluated", None)
            if (done is not None and self.leg.p.deadline_rule == "panel" and done[0] == version[0]
                    and done[1] > self._last_panel and done[2] == len(r.forks)):
                self.leg, self._result = shared.leg, shared.result  # the node's own, as current as ours
            else:
                self.leg = Legislature(r.charter, r.charter_event.round)
                self._result = self.leg.evaluate_replica(r)
            self._version = version
        return self._result

    @property
    def horizon(self) -> int:
        """The latest beacon round this replica holds: the round an act signed now names."""
        return max(self.replica.beacon, default=0)

    def round_time(self, round_: int) -> float:
        """When a beacon round is (or was) due, in Unix seconds.  A drand chain's schedule is its
        genesis and period; a dev chain runs on whatever clock started it, so there the latest
        round held counts as "now" (display only: the rules never read a clock)."""
        chain = self.replica.charter.beacon
        if not chain.dev:
            return chain.time_of(round_)
        return self.clock() + (round_ - self.horizon) * chain.period_ms / 1000

    def when(self, round_: int) -> str:
        """A round for a person: local time and round number, e.g. "14:03 (round 4,812,000)"."""
        t = self.round_time(round_)
        fmt = "%H:%M" if abs(t - self.clock()) < 20 * 3600 else "%a %d %b %H:%M"
        return f"{time.strftime(fmt, time.localtime(t))} (round {round_:,})"

    def _require_key(self) -> None:
        if self.hands is None:
            raise ActError("This view is read-only: open the profile with its passphrase to act.")
        why = self.readiness()
        if why:
            raise ActError(why)

    def _require_seat(self, cycle: int) -> None:
        if self.constituent_only:
            raise ActError("Your node runs as an observer: it signs only your constituency acts (joining, endorsing, "
                           "asking). Run it as a representative's node (without --observer) to legislate.")
        if self.me not in set(self.leg.roster_of(max(cycle, 0))):
            raise ActError(f"Your key {self.me.hex()[:16]}… holds no seat in this assembly's cycle {cycle}; only "
                           "representatives on the roster may act. Check `klero whoami` against the charter's roster.")
        if self.me in self.replica.forks:
            raise ActError("Your key signed two different events at one place in its chain (an equivocation), so the "
                           "assembly excludes it from every open decision. Nothing more can be signed with it.")

    def proposal(self, ref: str | bytes) -> bytes:
        """The proposal a person means: its id, or the first characters of its id in hex."""
        subs = self.replica.proposals
        if isinstance(ref, bytes):
            if ref in subs:
                return ref
            raise ActError(f"There is no proposal {ref.hex()[:16]}… in this replica.")
        prefix = ref.strip().lower()
        if len(prefix) < MIN_PREFIX or not re.fullmatch(r"[0-9a-f]+", prefix):
            raise ActError(f"{ref!r} is not a proposal id: give at least {MIN_PREFIX} hex characters of it "
                           "(`klero inbox` and `klero show` list them).")
        found = [pid for pid in subs if pid.hex().startswith(prefix)]
        if not found:
            raise ActError(f"No proposal's id starts with {prefix!r}; `klero show` lists the proposals.")
        if len(found) > 1:
            raise ActError(f"{len(found)} proposals' ids start with {prefix!r}; give more of the id.")
        return found[0]

    # ------------------------------------------------------------------ signing

    def _sign(self, kind: str, body: dict) -> bytes:
        try:
            wire = self.hands.sign(self.me, kind, body)
        except RuntimeError as exc:  # the replica refused it: a rule this service failed to foresee
            raise ActError(f"Your replica refused this {kind}, so nothing was sent ({exc}). "
                           "Please report it: the service should have said why before signing.") from None
        self._version = None
        return wire

    def _signed(self, wire: bytes, what: str, **extra) -> dict:
        return {"id": event_id(wire).hex(), "kind": peek_kind(wire), "round": self.horizon, "what": what, **extra}

    def pump(self) -> list[bytes]:
        """Sign what waits in the outbox, as far as this beacon round allows; returns the wires."""
        if not self.outbox or self.hands is None:
            return []
        allowed = self.replica.charter.limits.max_doc_changes_per_round
        at = self.horizon
        used = {}
        for r in self.mine():
            if r.kind == "doc.change" and r.round == at:
                used[r.body.proposal] = used.get(r.body.proposal, 0) + 1
        out = []
        while self.outbox:
            kind, body = self.outbox[0]
            if kind == "doc.change" and used.get(body["proposal"], 0) >= allowed:
                break
            out.append(self._sign(kind, body))
            if kind == "doc.change":
                used[body["proposal"]] = used.get(body["proposal"], 0) + 1
            self.outbox.pop(0)
        _write_outbox(self.outbox_path, self.outbox)
        return out

    # ------------------------------------------------------------------ acts

    def propose(self, title: str, summary: str = "", text: str = "") -> dict:
        """Submit a proposal (title, summary) with its first text; it enters the next intake."""
        from crdt import ProposalDocument

        self._require_key()
        title, summary = title.strip(), summary.strip()
        if not 1 <= len(title) <= 200:
            raise ActError("A proposal needs a title of 1 to 200 characters.")
        limit = self.replica.charter.limits.max_text_chars
        if len(summary) > limit:
            raise ActError(f"The summary has {len(summary):,} characters; the charter allows {limit:,}. Shorten it "
                           "and put the detail in the text.")
        cycle = self.leg.cycle_of(self.horizon) + 1  # the intake that will take it
        self._require_seat(cycle)
        mine = [r for r in self.leg.intake_window(cycle, (r for r in self.mine() if isinstance(r.body, Submit)))
                if not self.replica.proposals[r.id].withdrawn]
        quota = self.leg.p.submissions_per_cycle
        if len(mine) >= quota:
            opens = self.leg.cycle_start(cycle)
            raise ActError(f"You already submitted {len(mine)} proposals for the intake at {self.when(opens)}; "
                           f"the charter allows {quota} a cycle. Withdraw one (klero withdraw) or submit after that intake.")
        wire = self._sign("proposal.submit", {"title": title, "summary": summary})
        pid = event_id(wire)
        out = self._signed(wire, f"Submitted {title!r}; it enters the intake at {self.when(self.leg.cycle_start(cycle))}.",
                           proposal=pid.hex())
        if text:
            doc, _ = ProposalDocument.create(self.me, title, summary, text, proposal=pid)
            queued = [("doc.change", c.body(pid)) for c in doc.all_changes()]
            self.outbox += queued
            self.pump()
            out["changes"] = len(queued)
            out["waiting"] = len(self.outbox)
            if self.outbox:
                out["what"] += (f" Its text is {len(queued)} changes; the charter allows "
                                f"{self.replica.charter.limits.max_doc_changes_per_round} a beacon round, so {len(self.outbox)} "
                                "wait in your outbox and go out round by round while your node runs.")
        return out

    def _document(self, pid: bytes):
        """The proposal's document as the replica holds it (None before its first text), kept
        and brought up to date with only the changes that arrived since (a 300,000-character
        bill takes seconds to load, one change about a tenth of a millisecond to apply).
        Callers never edit it: an edit is made on a fork, and arrives here once signed."""
        from crdt import ProposalDocument

        self._index()
        changes = self._changes.get(pid, [])
        if not changes:
            return None
        doc, applied = self._docs.get(pid, (None, 0))
        if doc is None:
            doc, _ = ProposalDocument.from_changes([r.body.change for r in changes], actor=self.me)
        elif applied < len(changes):
            doc.apply([r.body.change for r in changes[applied:]])
        self._docs[pid] = (doc, len(changes))
        return doc

    def _open_stage(self, pid: bytes):
        """(state, draw, stage) of a proposal in committee this cycle, or an ActError."""
        result = self.result()
        state = result.proposals.get(pid)
        if state is None:
            raise ActError(f"Proposal {pid.hex()[:8]} is not in the legislature yet (its intake has not been decided).")
        cycle = self.leg.cycle_of(self.horizon)
        draw = next((d for d in result.draws if d.proposal == pid and d.cycle == cycle and d.stage == state.stage), None)
        if state.status != IN_COMMITTEE or draw is None:
            raise ActError(f"{state.title!r} is not before a committee now (it is {state.status}); nothing can be "
                           "done to it until a committee is drawn for it.")
        return state, draw, self.leg.p.stages[state.stage - 1]

    def edit(self, ref, text: str, field: str = "body", base: list[str] | None = None) -> dict:
        """Replace a field of a proposal's text with ``text``: the difference becomes one signed
        change.  ``base`` (heads, hex): the revision the person edited; their change then
        depends on it and merges with whatever others wrote since (the live co-editor sends
        its batches this way).  Without it, the latest revision."""
        self._require_key()
        pid = self.proposal(ref)
        state = self.replica.proposals[pid]
        result = self.result()
        st = result.proposals.get(pid)
        cycle = self.leg.cycle_of(self.horizon)
        if st is None or st.status == SUBMITTED:
            if state.author != self.me:
                raise ActError("Only its author may write a proposal's text before a drafting committee is drawn.")
        else:
            st, draw, stage = self._open_stage(pid)
            if stage.mode != EDIT:
                raise ActError(f"Stage {st.stage} ({stage.name}) is not an editing stage: its committee amends or comments, "
                               "and the text changes only through amendments (klero amend).")
            _, closes, _ = self.leg.windows(cycle, st.stage)
            if self.horizon >= closes:
                raise ActError(f"The editing window of {st.title!r} closed at {self.when(closes)}; the committee now "
                               "votes on the text as it stood.")
            if self.me != st.author and self.me not in draw.members:
                raise ActError(f"You do not sit on the drafting committee of {st.title!r}; only its author and "
                               "committee edit it. You can comment on it instead (klero comment).")
        self._require_seat(cycle)
        doc = self._document(pid)
        if doc is None:
            from crdt import ProposalDocument

            if self.me != state.author:
                raise ActError("Its author has not written the text yet (or it has not reached your replica): a second "
                               "first text would compete with theirs. Comment meanwhile, and edit once it is here.")
            sub = self.replica.records[pid].body
            doc, _ = ProposalDocument.create(self.me, sub.title, sub.summary, "", proposal=pid)
            first = [("doc.change", c.body(pid)) for c in doc.all_changes()]
        else:
            first = []
        if base is not None and not first:
            heads = tuple(sorted(bytes.fromhex(h) for h in base))
            if not set(heads) <= {h for h, _, _ in doc.history()}:
                raise ActError("Your editor's revision is not in this replica; reload the text and edit again.")
            mine = doc.fork(heads, self.me)
        else:
            mine = doc if first else doc.fork(doc.heads(), self.me)
        splices = _splices(mine.text(field), text)
        change = mine.edit(field, splices) if splices else None
        if change is None and not first:
            raise ActError("The text is unchanged: there is nothing to sign.")
        self.outbox += first + ([("doc.change", change.body(pid))] if change else [])
        wires = self.pump()
        return {"ids": [event_id(w).hex() for w in wires], "round": self.horizon, "waiting": len(self.outbox),
                "heads": [h.hex() for h in (mine.heads() if change else doc.heads())],
                "what": f"Signed {len(wires)} change(s) to the {field} of {self.replica.records[pid].body.title!r}"
                        f" ({sum(len(i) for _, _, i in splices):,} characters in, {sum(d for _, d, _ in splices):,} out)."}

    def comment(self, ref, text: str, *, reply: str | bytes | None = None,
                anchor: tuple[str, int, int] | None = None) -> dict:
        """Comment on a proposal, reply to a comment, or anchor a comment to a passage
        (``anchor = (field, start, end)`` in the latest text)."""
        self._require_key()
        pid = self.proposal(ref)
        text = text.strip()
        limit = self.replica.charter.limits.max_text_chars
        if not 1 <= len(text) <= limit:
            raise ActError(f"A comment needs 1 to {limit:,} characters.")
        self._require_seat(self.leg.cycle_of(self.horizon))
        body: dict = {"proposal": pid, "text": text}
        if reply is not None:
            target = self._find_comment(reply)
            if target["proposal"] != pid.hex():
                raise ActError("That comment belongs to another proposal's thread; reply on that proposal.")
            body["reply"] = bytes.fromhex(target["id"])
        if anchor is not None:
            field, start, end = anchor
            doc = self._document(pid)
            if doc is None:
                raise ActError("This proposal has no text yet, so a comment cannot be anchored to a passage; comment on it as a whole.")
            length = len(doc.text(field))
            if not 0 <= start < end <= length:
                raise ActError(f"The passage {start}–{end} is outside the {field}, which has {length:,} characters.")
            body["anchor"] = {"field": field, "revision": list(doc.heads()), "start": start, "end": end}
        wire = self._sign("comment", {k: body[k] for k in sorted(body, key=lambda k: (len(k), k))})
        return self._signed(wire, "Comment signed.")

    def amend(self, ref, text: str, summary: str, field: str = "body") -> dict:
        """Propose an amendment: a fork of the revision the committee received, edited to ``text``."""
        from crdt import ProposalDocument

        self._require_key()
        pid = self.proposal(ref)
        st, draw, stage = self._open_stage(pid)
        cycle = draw.cycle
        if stage.mode != AMEND:
            raise ActError(f"Stage {st.stage} ({stage.name}) takes no amendments: "
                           + ("its committee edits the text directly (klero edit)." if stage.mode == EDIT else "its committee comments and votes."))
        if self.me not in draw.members:
            raise ActError(f"You do not sit on the committee of {st.title!r}; only its members propose amendments.")
        self._require_seat(cycle)
        d = self.leg.draw_round(cycle)
        closes = d + stage.amend_rounds
        if self.horizon >= closes:
            raise ActError(f"Amendments to {st.title!r} closed at {self.when(closes)}; the committee now votes on the ones proposed.")
        if any(r.author == self.me for r in self.leg.amendments(pid, cycle)):
            raise ActError("You already proposed an amendment to this proposal this cycle; the charter allows one per "
                           "member (fold further changes into a comment).")
        summary = summary.strip()
        if not summary:
            raise ActError("An amendment needs a summary saying what it changes and why.")
        base = tuple(st.revision)
        if base == (pid,):
            sub = self.replica.records[pid].body
            forked, _ = ProposalDocument.create(self.me, sub.title, sub.summary, "", proposal=pid)
            prefix = [c for c in forked.all_changes()]
        else:
            doc = self._document(pid)
            try:
                forked = doc.fork(base, self.me)
            except Exception:  # the binding raises its own errors for heads it does not hold
                raise ActError("Your replica does not hold the whole text the committee received yet; wait for it to "
                               "sync (klero inbox shows when) and try again.") from None
            prefix = []
        before = forked.text(field)
        splices = _splices(before, text)
        change = forked.edit(field, splices)
        if change is None:
            raise ActError("The amended text is the same as the text the committee received: nothing to amend.")
        changes = prefix + [change]
        per_round = self.replica.charter.limits.max_doc_changes_per_round
        if len(changes) + 1 > per_round:
            raise ActError(f"This amendment needs {len(changes)} changes, more than the {per_round} the charter allows in "
                           "one beacon round; amend a smaller part of the text.")
        wires = [self._sign("doc.change", c.body(pid)) for c in changes]
        wire = self._sign("amendment.propose", {"proposal": pid, "cycle": cycle, "base": list(base),
                                                "heads": [change.hash], "summary": summary})
        return self._signed(wire, f"Amendment proposed; the committee votes on it from {self.when(closes)}.",
                            changes=[event_id(w).hex() for w in wires])

    def ballots(self, pid: bytes) -> list[Ballot]:
        """The ballots on ``pid`` this representative may vote in this cycle (open or about to)."""
        result = self.result()
        st = result.proposals.get(pid)
        cycle = self.leg.cycle_of(self.horizon)
        out: list[Ballot] = []
        if st is None:
            return out
        if st.status == IN_PLENARY and st.history and st.history[-1][0] == cycle:
            stage_no = len(self.leg.p.stages) + 1
            _, opens, closes = self.leg.windows(cycle, stage_no)
            if self.me in set(self.leg.roster_of(cycle)):
                out.append(Ballot("plenary", pid, cycle, stage_no, opens, closes, tuple(st.revision)))
            return out
        if st.status != IN_COMMITTEE:
            return out
        draw = next((d for d in result.draws if d.proposal == pid and d.cycle == cycle and d.stage == st.stage), None)
        if draw is None or self.me not in draw.members:
            return out
        stage = self.leg.p.stages[st.stage - 1]
        d = self.leg.draw_round(cycle)
        if stage.mode == AMEND:
            opens_a, closes_a = d + stage.amend_rounds, d + stage.amend_rounds + stage.amend_ballot_rounds
            decided = self.leg.decision("amendments", cycle, st.stage)
            for r in self.leg.amendments(pid, cycle):
                if decided is None or decided.includes(r):
                    out.append(Ballot("amendment", pid, cycle, st.stage, opens_a, closes_a, r.body.heads, r.id))
        _, opens, closes = self.leg.windows(cycle, st.stage)
        out.append(Ballot("stage", pid, cycle, st.stage, opens, closes, self._settled(pid, cycle, st, stage)))
        return out

    def _settled(self, pid, cycle, st, stage) -> tuple[bytes, ...] | None:
        """The revision a stage ballot names, once the evaluation fixed it (None: not yet)."""
        if stage.mode == EDIT and self.leg.decision("edit", cycle, st.stage) is None:
            return None
        if stage.mode == AMEND:
            if self.leg.decision("amendments", cycle, st.stage) is None:
                return None
            if self.leg.amendments(pid, cycle) and self.leg.decision("amendment ballots", cycle, st.stage) is None:
                return None
        return tuple(st.revision)

    def vote(self, ref, choice: str, *, amendment: str | bytes | None = None,
             revision: list[str] | tuple[bytes, ...] | None = None) -> dict:
        """Vote on a proposal's open ballot (or an amendment's, or the plenary), naming the exact
        revision it is about; ``revision``, if given, must be the one the ballot names."""
        self._require_key()
        pid = self.proposal(ref)
        title = self.replica.records[pid].body.title
        ballots = self.ballots(pid)
        if amendment is not None:
            aid = bytes.fromhex(amendment) if isinstance(amendment, str) and len(amendment) == 64 else amendment
            pick = [b for b in ballots if b.kind == "amendment" and (b.amendment == aid or (
                isinstance(aid, str) and b.amendment.hex().startswith(aid.lower())))]
        else:
            pick = [b for b in ballots if b.kind in ("stage", "plenary")]
        if not pick:
            st = self.result().proposals.get(pid)
            where = st.status if st else "not yet taken at an intake"
            raise ActError(f"You have no ballot on {title!r} now (it is {where}): you do not sit on its committee "
                           "this cycle, or its vote is not open. `klero inbox` lists your open ballots.")
        if len(pick) > 1:
            raise ActError("Several amendments match; give more of the amendment's id.")
        b = pick[0]
        choices = CHOICES[b.kind]
        if choice not in choices:
            raise ActError(f"This ballot's choices are {choices[0]!r} and {choices[1]!r}.")
        if self.horizon < b.opens:
            raise ActError(f"The ballot opens at {self.when(b.opens)}; vote then (it closes at {self.when(b.closes)}).")
        if self.horizon >= b.closes:
            raise ActError(f"The ballot closed at {self.when(b.closes)}; a vote now would not count.")
        if b.revision is None:
            raise ActError("The text this ballot names is not settled yet (its panel is still deciding the editing "
                           "window's close); wait a few beacon rounds and vote then.")
        if revision is not None:
            named = tuple(bytes.fromhex(h) if isinstance(h, str) else h for h in revision)
            if tuple(sorted(named)) != tuple(b.revision):
                raise ActError("The text changed since you read it: the ballot names another revision than the one you "
                               "gave. Read the difference (klero diff) and vote again on the revision the ballot names.")
        already = [r for r in self.mine() if isinstance(r.body, Vote)
                   and r.body.proposal == pid and r.body.cycle == b.cycle and r.body.stage == b.stage and r.body.amendment == b.amendment]
        if already:
            raise ActError(f"You already voted {already[0].body.choice!r} on this ballot; only a member's first vote counts.")
        electorate = tuple(sorted(set(self.leg.roster_of(b.cycle)))) if b.kind == "plenary" else ()
        probe = Record(bytes(32), self.me, 0, self.horizon, b"", "vote",
                       Vote(pid, b.cycle, b.stage, choice, tuple(b.revision), b.amendment))
        problem = self.leg.vote_problem(probe, BallotSpec(electorate, choices, tuple(b.revision), b.opens))
        if problem and problem[0] != "unseen_round":
            raise ActError(f"This vote would not count: {problem[1]}.")
        body = {"proposal": pid, "cycle": b.cycle, "stage": b.stage, "choice": choice, "revision": list(b.revision)}
        if b.amendment is not None:
            body["amendment"] = b.amendment
        wire = self._sign("vote", body)
        what = f"the amendment {b.amendment.hex()[:8]} to" if b.amendment else ""
        return self._signed(wire, f"Voted {choice!r} on {what}{' ' if what else ''}{title!r} ({b.kind} ballot, closes at {self.when(b.closes)}).",
                            revision=[h.hex() for h in b.revision])

    def withdraw(self, ref) -> dict:
        """Withdraw one's own proposal (before its ballots close)."""
        self._require_key()
        pid = self.proposal(ref)
        p = self.replica.proposals[pid]
        title = self.replica.records[pid].body.title
        if p.author != self.me:
            raise ActError(f"{title!r} is not yours: only its author may withdraw a proposal.")
        if p.withdrawn:
            raise ActError(f"{title!r} is already withdrawn.")
        st = self.result().proposals.get(pid)
        if st is not None and st.status not in (SUBMITTED, IN_COMMITTEE, "promoted", IN_PLENARY):
            raise ActError(f"{title!r} is {st.status}: there is nothing left to withdraw it from.")
        wire = self._sign("proposal.withdraw", {"proposal": pid})
        return self._signed(wire, f"Withdrew {title!r}; it leaves the legislature at its next deadline.")

    # ------------------------------------------------------------------ views

    def overview(self) -> dict:
        result = self.result()
        cycle = self.leg.cycle_of(self.horizon)
        roster = set(self.leg.roster_of(max(cycle, 0)))
        return {"assembly": self.replica.assembly.hex(), "name": self.replica.charter.name,
                "me": self.me.hex() if self.me else None, "seated": bool(self.me and self.me in roster),
                "round": self.horizon, "time": self.round_time(self.horizon) if self.horizon else None, "cycle": cycle,
                "cycles_decided": result.cycles, "waiting": result.waiting, "outbox": len(self.outbox),
                "catching_up": self.readiness()}

    def proposals(self) -> list[dict]:
        result = self.result()
        out = []
        for pid, p in sorted(self.replica.proposals.items(), key=lambda kv: (self.replica.records[kv[0]].round, kv[0])):
            st = result.proposals.get(pid)
            out.append({"id": pid.hex(), "title": self.replica.records[pid].body.title, "author": p.author.hex(),
                        "status": st.status if st else ("withdrawn" if p.withdrawn else SUBMITTED),
                        "stage": st.stage if st else 0, "mine": p.author == self.me})
        return out

    def inbox(self) -> list[dict]:
        """What needs this representative now, most urgent first."""
        result = self.result()
        now = self.horizon
        cycle = self.leg.cycle_of(now)
        items: list[dict] = []
        if self.me is None:
            return items

        def add(kind: str, due: int | None, text: str, pid: bytes | None = None, **extra) -> None:
            item = {"kind": kind, "due_round": due, "due": self.when(due) if due is not None else "",
                    "text": text, "proposal": pid.hex() if pid else None,
                    "title": self.replica.records[pid].body.title if pid else "", **extra}
            items.append(item)

        voted = {(r.body.proposal, r.body.cycle, r.body.stage, r.body.amendment) for r in self.mine()
                 if isinstance(r.body, Vote)}
        for d in result.draws:
            if d.cycle != cycle or self.me not in d.members:
                continue
            st = result.proposals.get(d.proposal)
            if st is None or st.status != IN_COMMITTEE or st.stage != d.stage:
                continue
            stage = self.leg.p.stages[d.stage - 1]
            opens_work, opens, closes = self.leg.windows(cycle, d.stage)
            why = d.explain(self.me)
            if stage.mode == EDIT and now < opens:
                add("seat", opens, f"You sit on the drafting committee (stage {d.stage}, {stage.name}): edit the text "
                    f"until {self.when(opens)}.", d.proposal, why=why)
            elif stage.mode == AMEND and now < self.leg.draw_round(cycle) + stage.amend_rounds:
                due = self.leg.draw_round(cycle) + stage.amend_rounds
                add("seat", due, f"You sit on the review committee (stage {d.stage}, {stage.name}): propose an "
                    f"amendment until {self.when(due)}.", d.proposal, why=why)
            else:
                add("seat", closes, f"You sit on the committee of stage {d.stage} ({stage.name}).", d.proposal, why=why)
        for pid in {d.proposal for d in result.draws if d.cycle == cycle} | {p for p, s in result.proposals.items() if s.status == IN_PLENARY}:
            for b in self.ballots(pid):
                if (pid, b.cycle, b.stage, b.amendment) in voted or now >= b.closes:
                    continue
                label = {"stage": "Vote promote or kill", "amendment": "Vote adopt or reject on an amendment",
                         "plenary": "Plenary: vote yes or no"}[b.kind]
                state = "open now" if now >= b.opens else f"opens at {self.when(b.opens)}"
                if b.revision is None:
                    state += "; the text it names is being settled"
                add("vote" if b.kind != "amendment" else "amendment", b.closes, f"{label} ({state}).", pid,
                    amendment=b.amendment.hex() if b.amendment else None)
        mine = {pid for pid, p in self.replica.proposals.items() if p.author == self.me}
        for pid in sorted(mine):
            st = result.proposals.get(pid)
            status = st.status if st else ("withdrawn" if self.replica.proposals[pid].withdrawn else SUBMITTED)
            last = st.history[-1][4] if st and st.history and st.history[-1][4] else ""
            add("mine", None, f"Your proposal is {status}{f' ({last})' if last else ''}.", pid, status=status)
        self.comments()  # reads new comments into the notices
        for kind, c in self._notices:
            label = {"reply": "A reply to your comment", "mention": "You were mentioned",
                     "comment": "A comment on your proposal"}[kind]
            add(kind, None, f"{label}: {c['text'][:120]}", bytes.fromhex(c["proposal"]), comment=c["id"])
        if self.me in set(self.leg.roster_of(max(cycle, 0))):
            panels = self._panel_seats(cycle)
            if panels:
                add("panel", None, f"Your node sat on {panels} deadline panel(s) this cycle: it signs their cut-offs "
                    "and agreement messages itself while it runs, so keep it running.")
        for kind, due, text in self._constituency_items(cycle):
            add(kind, due, text)
        order = {"vote": 0, "amendment": 0, "seat": 1, "reply": 2, "mention": 2, "question": 2, "constituency": 3, "comment": 3,
                 "mine": 4, "panel": 5}
        items.sort(key=lambda i: (order[i["kind"]], i["due_round"] if i["due_round"] is not None else 1 << 62,
                                  i["proposal"] or "", i.get("amendment") or "", i.get("comment") or ""))
        return items

    def _constituency_items(self, cycle: int) -> list[tuple[str, int | None, str]]:
        """What constituencies ask of this person: to join one and say yes (before the boundary
        that seats the next cycle), and the questions their constituents asked them."""
        if self.replica.charter.representation is None or self.me is None:
            return []
        out = []
        roll = self.roll()
        boundary = self.leg.cycle_start(max(cycle, -1) + 1)
        seated = self.me in set(self.leg.roster_of(max(cycle, 0)))
        g = roll.group_of(self.me)
        if not roll.certified(self.me):
            if seated:
                out.append(("constituency", boundary, "Seats come from constituencies: ask a registrar to certify your key "
                                                      "so you can join one and keep a seat."))
            return out
        if g is None:
            out.append(("constituency", boundary if seated else None,
                        ("You hold a seat this cycle, but seats come from constituencies: join one and say yes to serving "
                         f"before {self.when(boundary)} to keep it (Constituency screen, or klero constituency list)."
                         if seated else "You are in no constituency: join one to choose your representative "
                                        "(klero constituency list).")))
            return out
        support = g.support().get(self.me, 0)
        if support * 2 > len(g.members) and self.me not in roll.willing:
            out.append(("constituency", boundary, f"{support} of the {len(g.members)} members of {g.name!r} endorse you: "
                                                  "say yes to serving to take its seat at the next boundary."))
        if g.holder == self.me:
            answered = {p["reply"] for p in self.posts(g.id.hex()) if p["author"] == self.me.hex() and p["reply"]}
            for p in self.posts(g.id.hex()):
                if p["author"] != self.me.hex() and not p["reply"] and p["id"] not in answered:
                    out.append(("question", None, f"A constituent of {g.name!r} asked: {p['text'][:160]} "
                                                  f"(answer with klero constituency ask --reply {p['id'][:8]})"))
        return out

    def pipeline(self, cycle: int | None = None) -> dict:
        """One cycle's funnel: for each stage its committee size, slots and every proposal it
        handled, with its outcome and why (who advanced and why), then the plenary."""
        result = self.result()
        cycle = self.leg.cycle_of(self.horizon) if cycle is None else cycle
        titles = {pid: r.body.title for pid, r in ((pid, self.replica.records[pid]) for pid in self.replica.proposals)}
        stages = []
        for k, stage in enumerate(self.leg.p.stages, 1):
            rows = []
            for d in result.draws:
                if d.cycle != cycle or d.stage != k:
                    continue
                st = result.proposals.get(d.proposal)
                outcome = next(((s, why) for c, _, s, sk, why in (st.history if st else []) if c == cycle and sk == k
                                and s != "in committee"), ("in committee", ""))
                rows.append({"proposal": d.proposal.hex(), "title": titles.get(d.proposal, ""), "status": outcome[0],
                             "why": outcome[1], "members": len(d.members), "mine": self.me in d.members})
            stages.append({"stage": k, "name": stage.name, "mode": stage.mode, "committee": stage.committee,
                           "slots": stage.slots, "proposals": rows})
        plenary = [{"proposal": pid.hex(), "title": titles.get(pid, ""), "status": st.status,
                    "why": st.history[-1][4] if st.history else ""}
                   for pid, st in result.proposals.items()
                   if any(c == cycle and sk == len(self.leg.p.stages) + 1 for c, _, _, sk, _ in st.history)]
        return {"cycle": cycle, "stages": stages, "plenary": plenary}

    def reach(self, last: int = 8) -> dict:
        """This representative's latest events and how many peers hold each (as of each peer's
        last sync), and the equivocation proofs this replica holds."""
        acts = []
        head = self.replica.heads.get(self.me) if self.me else None
        spread = (self.reach_of() if self.reach_of else {}).get(self.me.hex() if self.me else "", {"peers": 0, "held": []})
        for seq in range(head.seq if head else 0, max(0, (head.seq if head else 0) - last), -1):
            stored = self.replica.ledger.get(self.me, seq)
            if stored is None:
                continue
            try:
                fields = split_wire(stored.wire, self.replica.limits.max_event_bytes)[2]
                kind, at = fields["kind"], _round_of(fields)
            except KleroError:
                kind, at = "?", 0
            acts.append({"seq": seq, "kind": kind, "round": at, "peers": spread["peers"],
                         "holding": sum(1 for h in spread["held"] if h >= seq)})
        proofs = [{"author": a.hex(), "seq": seq} for a, seq in sorted(self.replica.forks.items())]
        return {"acts": acts, "equivocations": proofs}

    def deadlines(self, cycle: int | None = None) -> list[dict]:
        """One cycle's deadlines in round order: decided ones with the panel generation and
        agreement round that decided them and how many signed the certificate, open ones with
        what they wait for."""
        result = self.result()
        cycle = self.leg.cycle_of(self.horizon) if cycle is None else cycle
        decided = {(d["what"], d["cycle"], d["stage"]): d for d in result.deadlines}
        out = []
        for what, stage, at in self.leg.deadlines(cycle):
            d = decided.get((what, cycle, stage))
            row = {"what": what, "stage": stage, "round": at, "when": self.when(at), "decided": d is not None}
            if d is not None:
                cert = d.get("certificate") or {}
                row.update(generation=d.get("generation", 0), agreement_round=cert.get("agreement_round"),
                           signers=len(cert.get("signers", [])), rule=d.get("rule", ""))
            elif self.horizon < at:
                row["state"] = f"due at {self.when(at)}"
            else:
                gen = (self.horizon - at) // self.leg.p.panel_rounds
                row["state"] = f"its panel (generation {gen}) is deciding"
            out.append(row)
        return out

    def seats(self) -> list[dict]:
        """This representative's committee seats, newest first: members, and how each voted once
        the ballot closed (votes are public signed events)."""
        result = self.result()
        out = []
        for d in reversed(result.draws):
            if self.me not in d.members:
                continue
            ballot = next((b for b in result.ballots if b.proposal == d.proposal and b.cycle == d.cycle
                           and b.stage == d.stage and b.amendment is None), None)
            votes = self._public_votes(ballot) if ballot is not None else {}
            out.append({"proposal": d.proposal.hex(), "title": self.replica.records[d.proposal].body.title,
                        "cycle": d.cycle, "stage": d.stage, "beacon_round": d.round,
                        "members": [{"key": m.hex(), "vote": votes.get(m.hex())} for m in d.members],
                        "outcome": ballot.outcome if ballot is not None else "", "why": d.explain(self.me)})
        return out

    def record(self, key: str | None = None) -> dict:
        """A representative's public record (this one's by default): proposals written, seats held,
        votes cast with the revision each named and whether it counted, attendance (ballots voted
        on of those sat on), and texts co-written."""
        from .constituents import _hex_key

        who = _hex_key(key, "The representative's key") if key else self.me
        result = self.result()
        seats = [d for d in result.draws if who in d.members]
        votes = [r for r in self.replica.records.values() if r.author == who and isinstance(r.body, Vote)]
        not_counted = {e for b in result.ballots for a, e, _, _ in b.neutralised if a == who}
        ballots_sat = {(d.proposal, d.cycle, d.stage) for d in seats if self.horizon >= self.leg.windows(d.cycle, d.stage)[2]}
        voted = {(r.body.proposal, r.body.cycle, r.body.stage) for r in votes if r.body.amendment is None}
        title = lambda pid: self.replica.records[pid].body.title if pid in self.replica.records else pid.hex()[:8]  # noqa: E731
        written: dict[bytes, int] = {}
        for pid, changes in self._changes.items():
            n = sum(1 for r in changes if r.author == who)
            if n:
                written[pid] = n
        return {
            "key": who.hex(),
            "proposals": [{"id": pid.hex(), "title": title(pid), "status": (result.proposals[pid].status if pid in result.proposals
                                                                           else SUBMITTED)}
                          for pid, p in self.replica.proposals.items() if p.author == who],
            "seats": [{"proposal": d.proposal.hex(), "title": title(d.proposal), "cycle": d.cycle, "stage": d.stage} for d in seats],
            "votes": [{"proposal": r.body.proposal.hex(), "title": title(r.body.proposal), "cycle": r.body.cycle,
                       "stage": r.body.stage, "amendment": r.body.amendment.hex() if r.body.amendment else None,
                       "choice": r.body.choice, "revision": [h.hex() for h in r.body.revision], "round": r.round,
                       "counted": r.id not in not_counted} for r in sorted(votes, key=lambda r: (r.round, r.seq))],
            "attendance": {"closed_ballots_sat_on": len(ballots_sat), "voted_on": len(ballots_sat & voted)},
            "texts": [{"proposal": pid.hex(), "title": title(pid), "changes": n} for pid, n in sorted(written.items())],
        }

    def _panel_seats(self, cycle: int) -> int:
        return len({r.body.deadline for r in self.mine() if r.kind == "cutoff" and self.leg.cycle_of(r.round) == cycle})

    def explain(self, ref, stage: int | None = None) -> dict:
        """Why this representative was (or was not) drawn onto a proposal's committee: the seed,
        the beacon round and every pick, recomputed here from the replica."""
        pid = self.proposal(ref)
        draws = [d for d in self.result().draws if d.proposal == pid and (stage is None or d.stage == stage)]
        if not draws:
            raise ActError("No committee has been drawn for this proposal yet.")
        d = draws[-1]
        if d.members and not d.picks:  # an evaluation made without explanations (the node's own)
            leg = Legislature(self.replica.charter, self.replica.charter_event.round)
            d = next(x for x in leg.evaluate_replica(self.replica).draws
                     if (x.proposal, x.cycle, x.stage) == (d.proposal, d.cycle, d.stage))
        roster = self.leg.roster_of(d.cycle)
        return {"proposal": pid.hex(), "cycle": d.cycle, "stage": d.stage, "beacon_round": d.round,
                "randomness": self.replica.beacon.get(d.round, b"").hex(), "seed": d.seed.hex(),
                "roster_size": len(roster), "members": [m.hex() for m in d.members],
                "picks": [{"position": i, "roster_index": idx, "key": k.hex(), "outcome": o}
                          for i, (idx, k, o) in enumerate(d.picks, 1)],
                "sentence": d.explain(self.me) if self.me else ""}

    def show(self, ref, revision: list[str] | None = None) -> dict:
        """A proposal: its status and history, text (at a revision), amendments, ballots, thread."""
        pid = self.proposal(ref)
        result = self.result()
        sub = self.replica.records[pid]
        st = result.proposals.get(pid)
        doc = self._document(pid)
        heads = tuple(bytes.fromhex(h) for h in revision) if revision else (tuple(st.revision) if st and st.revision and st.revision != (pid,) else None)
        text = {}
        if doc is not None:
            known = {h for h, _, _ in doc.history()}
            if heads is None or not set(heads) <= known:
                heads = doc.heads()
            text = {f: doc.text(f, heads) for f in ("title", "summary", "body")}
        history = []
        if doc is not None:
            changes = sorted(self._changes.get(pid, []), key=lambda r: (r.round, r.author, r.seq))
            held = closure(heads, {r.body.hash: r for r in changes}) if heads else set()
            history = [{"change": r.body.hash.hex(), "author": r.author.hex(), "round": r.round, "in_revision": r.body.hash in held}
                       for r in changes]
        return {
            "id": pid.hex(), "title": sub.body.title, "summary": sub.body.summary, "author": sub.author.hex(),
            "submitted_round": sub.round, "status": st.status if st else SUBMITTED, "stage": st.stage if st else 0,
            "history": [{"cycle": c, "round": r, "status": s, "stage": k, "reason": why} for c, r, s, k, why in (st.history if st else [])],
            "revision": [h.hex() for h in heads] if heads else [], "text": text, "changes": history,
            "amendments": [{"id": r.id.hex(), "author": r.author.hex(), "round": r.round, "cycle": r.body.cycle,
                            "summary": r.body.summary, "heads": [h.hex() for h in r.body.heads]}
                           for r in sorted(self.replica.records.values(), key=lambda r: (r.round, r.id))
                           if isinstance(r.body, Amend) and r.body.proposal == pid],
            "ballots": [{**b.as_dict(), "votes": self._public_votes(b)} for b in result.ballots if b.proposal == pid],
            "thread": self.thread(pid),
        }

    def _public_votes(self, ballot) -> dict:
        """Who voted what on a closed ballot (every vote is a signed public event)."""
        if self.horizon < ballot.closes:
            return {}
        return {r.author.hex(): r.body.choice for r in self.replica.records.values()
                if isinstance(r.body, Vote) and r.body.proposal == ballot.proposal and r.body.cycle == ballot.cycle
                and r.body.stage == ballot.stage and r.body.amendment == ballot.amendment}

    def text(self, ref, revision: list[str] | None = None, field: str = "body") -> str:
        shown = self.show(ref, revision)
        return shown["text"].get(field, "") if shown["text"] else shown["summary"]

    def diff(self, ref, before: list[str] | None = None, after: list[str] | None = None, field: str = "body") -> list:
        """The word diff of a field between two revisions (default: the text the committee
        received, or the first text, against the latest)."""
        from crdt.revisions import diff_texts

        pid = self.proposal(ref)
        doc = self._document(pid)
        if doc is None:
            raise ActError("This proposal has no text yet; its summary is all there is.")
        known = {h for h, _, _ in doc.history()}
        a = tuple(bytes.fromhex(h) for h in before) if before else None
        b = tuple(bytes.fromhex(h) for h in after) if after else doc.heads()
        if a is None:
            st = self.result().proposals.get(pid)
            a = tuple(st.revision) if st and st.revision and set(st.revision) <= known else (doc.history()[0][0],)
        for name, heads in (("first", a), ("second", b)):
            if not set(heads) <= known:
                raise ActError(f"The {name} revision is not in this replica's copy of the text; `klero show` lists its changes.")
        return diff_texts(doc.text(field, a), doc.text(field, b))

    def changes_since(self, ref, heads: list[str], field: str = "body") -> dict:
        """What others wrote since the revision ``heads`` (hex): the splices ``(position,
        deleted, inserted)`` in code points that turn that revision's text into the latest, the
        latest heads, and who wrote the changes since (a live co-editor applies the splices
        without moving its cursor)."""
        pid = self.proposal(ref)
        doc = self._document(pid)
        if doc is None:
            return {"heads": [], "splices": [], "authors": [], "text": ""}
        now = doc.heads()
        known = tuple(sorted(bytes.fromhex(h) for h in heads))
        if known == now:
            return {"heads": [h.hex() for h in now], "splices": [], "authors": []}
        held = {h for h, _, _ in doc.history()}
        if not known or not set(known) <= held:  # nothing yet, or a revision this replica lacks
            return {"heads": [h.hex() for h in now], "splices": None, "authors": [], "text": doc.text(field)}
        before = closure(known, {r.body.hash: r for r in self._changes.get(pid, [])})
        authors = sorted({r.author.hex() for r in self._changes.get(pid, []) if r.body.hash not in before})
        return {"heads": [h.hex() for h in now], "splices": _splices(doc.text(field, known), doc.text(field)),
                "authors": authors}

    def blame(self, ref, field: str = "body") -> list[dict]:
        """Who wrote each passage of a field's latest text: whole words, each to the change (its
        author and beacon round) that last altered it."""
        from crdt.revisions import blame

        pid = self.proposal(ref)
        doc = self._document(pid)
        if doc is None:
            raise ActError("This proposal has no text yet; its summary is all there is.")
        rounds = {r.body.hash: r.round for r in self._changes.get(pid, [])}
        return [{"text": p.text, "author": p.author.hex(), "change": p.change.hex(), "round": rounds.get(p.change)}
                for p in blame(doc, field)]

    # ---- comments

    def comments(self) -> list[dict]:
        """Every comment in the replica, oldest first (read incrementally from the ledger)."""
        for wire in self._new_comment_wires():
            if peek_kind(wire) == "constituency.post":
                self._file_post(wire)
                continue
            try:  # stored events were validated when they came in: no signature check again
                _, _, fields = split_wire(wire, self.replica.limits.max_event_bytes)
                b: Comment = parse_body("comment", fields["body"], self.replica.limits)
            except KleroError:
                continue
            cid = event_id(wire)
            c = self._comments[cid] = {"id": cid.hex(), "author": fields["author"].hex(), "round": _round_of(fields),
                                     "proposal": b.proposal.hex(), "text": b.text,
                                     "reply": b.reply.hex() if b.reply else None,
                                     "anchor": {"field": b.anchor[0], "revision": [h.hex() for h in b.anchor[1]],
                                                "start": b.anchor[2], "end": b.anchor[3]} if b.anchor else None}
            self._notice(c)
        return sorted(self._comments.values(), key=lambda c: (c["round"], c["id"]))

    def _notice(self, c: dict) -> None:
        """File a new comment that concerns this representative (as it is read, once)."""
        if self.me is None:
            return
        me = self.me.hex()
        if c["author"] == me:
            self._my_comments.add(c["id"])
        elif c["reply"] in self._my_comments:
            self._notices.append(("reply", c))
        elif "@" + me[:8] in c["text"]:
            self._notices.append(("mention", c))
        elif c["reply"] is None and any(isinstance(r.body, Submit) and r.id.hex() == c["proposal"] for r in self.mine()):
            self._notices.append(("comment", c))

    def _new_comment_wires(self) -> list[bytes]:
        ledger = self.replica.ledger
        db = getattr(ledger, "db", None)
        if db is not None:
            ledger.flush()
            rows = db.conn.execute("SELECT rowid, wire FROM events WHERE rowid > ? AND status = 'applied'",
                                   (self._comment_mark,)).fetchall()
            if rows:
                self._comment_mark = rows[-1][0]
            return [w for _, w in rows if peek_kind(w) in _THREADED]
        events = list(getattr(ledger, "events", {}).values())
        new, self._comment_mark = events[self._comment_mark:], len(events)
        return [s.wire for s in new if s.status == "applied" and peek_kind(s.wire) in _THREADED]

    def _find_comment(self, ref) -> dict:
        key = ref.hex() if isinstance(ref, bytes) else ref.strip().lower()
        found = [c for c in self.comments() if c["id"].startswith(key)]
        if len(found) != 1:
            raise ActError(f"No single comment's id starts with {key[:16]!r}; `klero show PROPOSAL` lists the thread.")
        return found[0]

    def thread(self, ref) -> list[dict]:
        """A proposal's comments as a thread: each with its replies' ids, and an anchored comment
        with its passage carried to the latest text (or marked orphaned once it was deleted)."""
        pid = self.proposal(ref)
        comments = [dict(c) for c in self.comments() if c["proposal"] == pid.hex()]
        for c in comments:
            c["replies"] = [r["id"] for r in comments if r["reply"] == c["id"]]
        anchored = [c for c in comments if c["anchor"]]
        if anchored:
            doc = self._document(pid)
            known = {h for h, _, _ in doc.history()} if doc else set()
            for c in anchored:
                a = c["anchor"]
                heads = tuple(bytes.fromhex(h) for h in a["revision"])
                if doc is None or not set(heads) <= known:
                    c["passage"] = None
                    continue
                then, now = doc.text(a["field"], heads), doc.text(a["field"])
                start, end = _carry(a["start"], a["end"], word_opcodes(then, now))
                c["quote"] = then[a["start"]:a["end"]]
                c["passage"] = [start, end] if end > start else None
                c["orphaned"] = end <= start
        return comments


def _splices(before: str, after: str) -> list[tuple[int, int, str]]:
    """The splices ``(position, deleted, inserted)`` that turn ``before`` into ``after``, in order."""
    from crdt.revisions import opcodes

    splices, shift = [], 0
    for tag, i1, i2, j1, j2 in opcodes(before, after):
        if tag != "equal":
            splices.append((i1 + shift, i2 - i1, after[j1:j2]))
            shift += (j2 - j1) - (i2 - i1)
    return splices


def word_opcodes(a: str, b: str) -> list[tuple]:
    """Opcodes between two texts aligned on whole words, in character offsets: a passage is
    carried by its words (a character diff would keep the "t" of a deleted "ten" that happens to
    line up with the "t" of "trees")."""
    from crdt.revisions import _tokens, opcodes

    ta, tb = _tokens(a, "word"), _tokens(b, "word")
    pa, pb = [0], [0]
    for t in ta:
        pa.append(pa[-1] + len(t))
    for t in tb:
        pb.append(pb[-1] + len(t))
    return [(tag, pa[i1], pa[i2], pb[j1], pb[j2]) for tag, i1, i2, j1, j2 in opcodes(ta, tb)]


def _round_of(fields: dict) -> int:
    """The beacon round an event header names (``[round, prefix]``, or 0 for none)."""
    value = fields.get("round")
    return value[0] if isinstance(value, list) and value and isinstance(value[0], int) else 0


def _carry(start: int, end: int, ops) -> tuple[int, int]:
    """A passage ``start:end`` of one text, carried into another through the diff's opcodes:
    the surviving part of it (start == end once every character of it was deleted)."""
    new_start = new_end = None
    for tag, i1, i2, j1, j2 in ops:
        lo, hi = max(i1, start), min(i2, end)
        if lo >= hi or tag != "equal":
            continue
        if new_start is None:
            new_start = j1 + (lo - i1)
        new_end = j1 + (hi - i1)
    if new_start is None:
        return 0, 0
    return new_start, new_end


def _read_outbox(path: Path | None) -> list[tuple[str, dict]]:
    if path is None or not path.exists():
        return []
    try:
        items = decode(path.read_bytes())
        return [(k, b) for k, b in items]
    except Exception:
        raise KleroError(f"The outbox {path} is damaged; move it aside to continue (its acts were never signed).") from None


def _write_outbox(path: Path | None, items: list) -> None:
    if path is None:
        return
    if not items:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(encode([[k, b] for k, b in items]))
    tmp.replace(path)
