"""Reactive bot representatives: they read their node's replica and act on what it holds.

Testnets (``klero testnet``) host bots on every node.  Unlike the planned simulation
(``p2p.bots.AssemblySim.run``), nothing is signed ahead: each beacon round the bots evaluate
the legislature on the replica, find the committees they were drawn to and the ballots open to
them, and sign what a representative would, while :class:`p2p.duties.PanelDuties` takes their
panel duties.  So a slow node, a lost message or a panel's timing changes what follows, as in a
real assembly.

Who the bots are (keys, the charter, who misbehaves how) comes from the same seeded
``AssemblySim`` set-up, and every choice (who submits, how a bot votes) from seeded hashes,
so any node can host any bot and a restarted node makes the same choices again.  Each act is
done at most once: before acting a bot looks for its own earlier event in the replica.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from consensus.legislature import IN_COMMITTEE, IN_PLENARY, Legislature
from consensus.parliament import AMEND, EDIT

from ..duties import Hands

_TOPICS = ("Open the library on Sundays", "Protected bike lanes on Main Street", "A public budget hearing each quarter",
           "Free water fountains in parks", "Night buses on weekends", "Tree planting along the river")
_WORDS = ("promptly", "in every ward", "after consultation", "within the budget", "for all residents", "each year",
          "on weekdays", "with public notice")
_FLIP = {"promote": "kill", "kill": "promote", "yes": "no", "no": "yes", "adopt": "reject", "reject": "adopt"}


def chance(*parts) -> float:
    """A number in [0, 1) from the parts: the same on every node."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class HostedBot:
    index: int
    key: object  # nacl SigningKey
    kind: str  # honest, absent, late, equivocating, unauthorised

    @property
    def public(self) -> bytes:
        return bytes(self.key.verify_key)


@dataclass
class ReactiveBots:
    """The bots one node hosts (``hosted``) among all of an assembly's (``everyone``, in index order)."""

    seed: int
    everyone: list[bytes]
    hosted: list[HostedBot]
    proposals: int = 4
    documents: bool = True
    #: the demo: a drafting bot keeps typing through the editing window (a word every other
    #: round), so a person co-editing sees others write
    typing: bool = False
    #: person -> signing keys of their neighbours (founder first), who endorse the person once the
    #: person has joined their constituency and said yes to serving (the demo, testnets with people)
    neighbours: dict = field(default_factory=dict)
    done: set = field(default_factory=set)
    forked: set = field(default_factory=set)

    def __post_init__(self) -> None:
        self.by_key = {b.public: b for b in self.hosted}

    # ------------------------------------------------------------------ the acts

    def extra_keys(self) -> list:
        return [k for keys in self.neighbours.values() for k in keys]

    def _endorse_people(self, replica, hands: Hands) -> None:
        """Neighbours endorse their person once the person has joined and said yes."""
        for person, keys in self.neighbours.items():
            founder = bytes(keys[0].verify_key)
            gid = next((r.id for r in replica.records.values() if r.kind == "constituency.found" and r.author == founder), None)
            if gid is None:
                continue
            joined = any(r.kind == "constituency.join" and r.author == person and r.body.constituency == gid
                         for r in replica.records.values())
            willing = [r.body.answer for r in replica.records.values() if r.kind == "serve" and r.author == person]
            if not joined or not willing or willing[-1] != "yes":
                continue
            for k in keys:
                me = bytes(k.verify_key)
                done = any(r.kind == "endorse" and r.author == me and r.body.member == person for r in replica.records.values())
                if not done:
                    self._once(("endorse", me, person), hands, me, "endorse", {"constituency": gid, "member": person})

    def step(self, leg: Legislature, result, hands: Hands) -> None:
        replica = hands.replica
        horizon = max(replica.beacon, default=0)
        if self.neighbours and horizon:
            self._endorse_people(replica, hands)
        if not self.hosted or horizon == 0:
            return
        own = self._own(replica)
        now = leg.cycle_of(horizon)
        self._submit(leg, hands, horizon, now, own)
        if now < 0 or leg.decision("intake", now, 0) is None:
            return
        d = leg.draw_round(now)
        for draw in result.draws:
            if draw.cycle != now:
                continue
            state = result.proposals.get(draw.proposal)
            if state is None or state.status != IN_COMMITTEE or state.stage != draw.stage:
                continue
            stage = leg.p.stages[draw.stage - 1]
            members = [self.by_key[m] for m in draw.members if m in self.by_key]
            first = self.by_key.get(draw.members[0]) if draw.members else None
            if first is not None and first.kind != "absent" and horizon >= d + 1:
                # comments change no record, so only this process remembers them (a restart may repeat one)
                self._once(("comment", draw.proposal, now), hands, first.public, "comment",
                           {"proposal": draw.proposal, "text": "Reading it now; the second paragraph needs work."})
            if stage.mode == EDIT and self.documents:
                self._draft(leg, hands, horizon, now, draw, state, own)
            if stage.mode == AMEND:
                self._amend(leg, hands, horizon, now, draw, state, stage, own)
            revision = self._settled_revision(leg, replica, now, draw, stage, state)
            if revision is not None:
                # choices hang on the title, not the proposal id (which timing makes), so runs
                # of one seed vote alike; most bot proposals are decent (quality 0.5 to 0.95)
                quality = 0.5 + 0.45 * chance(self.seed, "quality", state.title)
                for bot in members:
                    choice = "promote" if chance(self.seed, "vote", state.title, now, bot.public.hex()) < quality else "kill"
                    self._vote(leg, hands, horizon, bot, draw.proposal, now, draw.stage, revision, choice, own)
                self._intrude(leg, hands, horizon, draw, now, revision, own)
        plenary = len(leg.p.stages) + 1
        for pid, state in sorted(result.proposals.items()):
            if state.status == IN_PLENARY and state.history and state.history[-1][0] == now:
                for bot in self.hosted:
                    choice = "yes" if chance(self.seed, "plenary", state.title, bot.public.hex()) < 0.7 else "no"
                    self._vote(leg, hands, horizon, bot, pid, now, plenary, state.revision, choice, own)

    def _own(self, replica) -> set:
        """What the hosted bots already signed, as act keys (their submissions, votes, amendments, drafts)."""
        acts = set()
        for r in replica.records.values():
            if r.author not in self.by_key:
                continue
            b = r.body
            if r.kind == "proposal.submit":
                acts.add(("submit", r.author, b.title))
            elif r.kind == "vote":
                acts.add(("vote", r.author, b.proposal, b.cycle, b.stage, b.amendment))
            elif r.kind == "amendment.propose":
                acts.add(("amend", r.author, b.proposal, b.cycle))
            elif r.kind == "doc.change":
                acts.add(("doc", r.author, b.proposal))
        return acts

    def _once(self, key, hands: Hands, author: bytes, kind: str, body: dict) -> None:
        if key in self.done or author in self.forked:
            return
        self.done.add(key)
        hands.sign(author, kind, body)

    def _submit(self, leg: Legislature, hands: Hands, horizon: int, now: int, own: set) -> None:
        """Submissions for the next intake: ``proposals`` per cycle, by seeded bots, at seeded rounds."""
        for c in (now - 1, now):
            if c < -1:
                continue
            opens = 1 if c < 0 else leg.cycle_start(c) + 1
            closes = leg.cycle_start(c + 1)
            if not opens <= horizon < closes:
                continue
            per_bot: dict[int, int] = {}
            for n in range(self.proposals):
                i = int(chance(self.seed, "submitter", c, n) * len(self.everyone))
                per_bot[i] = per_bot.get(i, 0) + 1
                bot = self.by_key.get(self.everyone[i])
                if bot is None or bot.kind == "absent":
                    continue
                if per_bot[i] > leg.p.submissions_per_cycle and bot.kind != "unauthorised":
                    continue
                due = opens + int(chance(self.seed, "submit-at", c, n) * max(1, (closes - opens) // 2))
                title = f"Proposal {c + 1}.{n}: " + _TOPICS[int(chance(self.seed, "topic", c, n) * len(_TOPICS))]
                if horizon >= due and ("submit", bot.public, title) not in own and bot.public not in self.forked:
                    hands.sign(bot.public, "proposal.submit", {"title": title, "summary": f"A bot's proposal (seed {self.seed})."})
                    own.add(("submit", bot.public, title))

    def _draft(self, leg, hands: Hands, horizon: int, now: int, draw, state, own: set) -> None:
        """In an editing stage the author writes the document and the first present member edits it."""
        from crdt import ProposalDocument

        opens_work, opens, _ = leg.windows(now, draw.stage)
        if not opens_work <= horizon < opens - 1:
            return
        pid = draw.proposal
        author = self.by_key.get(state.author)
        records = hands.replica.records
        changes = [r for r in records.values() if r.kind == "doc.change" and r.body.proposal == pid]
        if author is not None and author.kind not in ("absent", "equivocating") and ("doc", author.public, pid) not in own:
            if not any(r.author == author.public for r in changes):
                _, first = ProposalDocument.create(author.public, state.title, "A bot's proposal.",
                                                   f"The council shall {state.title.split(': ', 1)[-1].lower()}.\n", proposal=pid)
                hands.sign(author.public, "doc.change", first.body(pid))
                own.add(("doc", author.public, pid))
                return
        present = [m for m in draw.members if m in self.by_key and self.by_key[m].kind not in ("absent", "equivocating")]
        first_changes = [r for r in changes if r.author == state.author]
        if not present or not first_changes or horizon < opens_work + 1:
            return
        editor = self.by_key[present[0]]
        if self.typing and any(r.author == editor.public for r in changes):
            self._type(hands, horizon, opens_work, pid, editor, changes)
            return
        if ("doc", editor.public, pid) in own or any(r.author == editor.public for r in changes):
            return
        mine, _ = ProposalDocument.from_changes([r.body.change for r in sorted(changes, key=lambda r: (r.round, r.seq))],
                                                actor=editor.public)
        change = mine.edit("body", [(len(mine.text("body")), 0, "It takes effect next year.\n")])
        if change is not None:
            hands.sign(editor.public, "doc.change", change.body(pid))
            own.add(("doc", editor.public, pid))

    def _type(self, hands: Hands, horizon: int, opens_work: int, pid: bytes, editor, changes) -> None:
        """One more phrase every other round, at a seeded place between words (the demo)."""
        from crdt import ProposalDocument

        step = (horizon - opens_work) // 2
        if ("typing", pid, step) in self.done:
            return
        self.done.add(("typing", pid, step))
        mine, _ = ProposalDocument.from_changes([r.body.change for r in sorted(changes, key=lambda r: (r.round, r.seq))],
                                                actor=editor.public)
        text = mine.text("body")
        spaces = [i for i, ch in enumerate(text) if ch == " "] or [len(text)]
        at = spaces[int(chance(self.seed, "type-at", pid, step) * len(spaces))]
        word = _WORDS[int(chance(self.seed, "type-word", pid, step) * len(_WORDS))]
        change = mine.edit("body", [(at, 0, f" {word}")])
        if change is not None:
            hands.sign(editor.public, "doc.change", change.body(pid))

    def _amend(self, leg, hands: Hands, horizon: int, now: int, draw, state, stage, own: set) -> None:
        """Members propose amendments early in the window, then vote on each one that made the deadline."""
        d = leg.draw_round(now)
        pid = draw.proposal
        proposers = [m for m in draw.members if chance(self.seed, "amend", pid, now, m.hex()) < 0.4][:3]
        if d <= horizon < d + stage.amend_rounds - 2:
            for m in proposers:
                bot = self.by_key.get(m)
                if bot is None or bot.kind == "absent" or ("amend", m, pid, now) in own or m in self.forked:
                    continue
                head = self._amendment_change(hands, pid, state.revision, m)
                if head is None:
                    continue
                hands.sign(m, "amendment.propose", {"proposal": pid, "cycle": now, "base": list(state.revision), "heads": [head],
                                                    "summary": "Clarify who pays for it."})
                own.add(("amend", m, pid, now))
        decided = leg.decision("amendments", now, draw.stage)
        if decided is None:
            return
        for r in leg.amendments(pid, now):
            if not decided.includes(r):
                continue
            for m in draw.members:
                bot = self.by_key.get(m)
                if bot is None:
                    continue
                choice = "adopt" if chance(self.seed, "adopt", r.id, m.hex()) < 0.6 else "reject"
                self._vote(leg, hands, horizon, bot, pid, now, draw.stage, r.body.heads, choice, own, amendment=r.id,
                           window=(d + stage.amend_rounds, d + stage.amend_rounds + stage.amend_ballot_rounds))

    def _amendment_change(self, hands: Hands, pid: bytes, base: tuple[bytes, ...], member: bytes) -> bytes | None:
        """Fork the text at ``base`` as ``member``, edit it and sign the change: an amendment's
        heads are its proposer's own changes descending from the base.  A proposal without a
        document is amended by writing its first text."""
        from crdt import DocumentError, ProposalDocument

        if base == (pid,):
            _, change = ProposalDocument.create(member, "Amended text", "", f"The amended text ({member.hex()[:6]}).\n", proposal=pid)
        else:
            changes = [r.body.change for r in hands.replica.records.values() if r.kind == "doc.change" and r.body.proposal == pid]
            try:
                doc, _ = ProposalDocument.from_changes(changes)
                if not set(base) <= {h for h, _, _ in doc.history()}:
                    return None  # the text it amends has not reached us yet
                mine = doc.fork(base, member)
                change = mine.edit("body", [(len(mine.text("body")), 0, f"Costs are met from the general budget ({member.hex()[:6]}).\n")])
            except DocumentError:
                return None
        if change is None:
            return None
        hands.sign(member, "doc.change", change.body(pid))
        return change.hash

    def _settled_revision(self, leg, replica, now: int, draw, stage, state):
        """The revision the committee votes on, once the evaluation fixed it (None: not yet)."""
        # under the panel rule the editing window is always decided (the text may hold changes
        # this node has not received); under the declared-round rule only when there are changes
        has_text = leg.p.deadline_rule == "panel" or any(r.kind == "doc.change" and r.body.proposal == draw.proposal
                                                           for r in replica.records.values())
        if stage.mode == EDIT and has_text:
            if leg.decision("edit", now, draw.stage) is None:
                return None
        if stage.mode == AMEND:
            if leg.decision("amendments", now, draw.stage) is None:
                return None
            if leg.amendments(draw.proposal, now) and leg.decision("amendment ballots", now, draw.stage) is None:
                return None
        return state.revision

    def _vote(self, leg, hands: Hands, horizon: int, bot: HostedBot, pid: bytes, cycle: int, stage: int, revision,
              choice: str, own: set, *, amendment: bytes | None = None, window: tuple[int, int] | None = None) -> None:
        if bot.kind == "absent" or bot.public in self.forked or ("vote", bot.public, pid, cycle, stage, amendment) in own:
            return
        opens, closes = window or leg.windows(cycle, stage)[1:]
        tag = (pid, cycle, stage, amendment, bot.public.hex())
        late = bot.kind == "late" and chance(self.seed, "late", *tag) < 0.7
        due = closes if late else opens + int(chance(self.seed, "vote-at", *tag) * max(1, closes - opens - 3))
        if horizon < due or (not late and horizon >= closes):
            return
        body = {"proposal": pid, "cycle": cycle, "stage": stage, "choice": choice, "revision": list(revision)}
        if amendment is not None:
            body["amendment"] = amendment
        if bot.kind == "equivocating":
            self.forked.add(bot.public)  # a fork: both versions go out, and the bot is excluded after
            hands.sign(bot.public, "vote", body, twin={**body, "choice": _FLIP[choice]})
        else:
            hands.sign(bot.public, "vote", body)
        own.add(("vote", bot.public, pid, cycle, stage, amendment))

    def _intrude(self, leg, hands: Hands, horizon: int, draw, now: int, revision, own: set) -> None:
        """Unauthorised bots vote on ballots they do not sit on (every node refuses to count it)."""
        for bot in self.hosted:
            if bot.kind == "unauthorised" and bot.public not in draw.members and chance(self.seed, "intrude", draw.proposal, bot.public.hex()) < 0.5:
                self._vote(leg, hands, horizon, bot, draw.proposal, now, draw.stage, revision, "promote", own)


def write_bots_file(path, *, template: str, reps: int, seed: int, behaviour: dict, indices: list[int], proposals: int = 4,
                    people: tuple[bytes, ...] = (), start_round: int = 2, typing: bool = False, constituents: int = 0) -> None:
    """The testnet's description of the bots one node hosts (dev keys: anyone can recompute them);
    ``people`` and ``start_round`` complete the charter when persons sit beside the bots."""
    import json

    spec = {"template": template, "reps": reps, "seed": seed, "behaviour": behaviour, "indices": indices, "proposals": proposals}
    if people:
        spec.update(people=[k.hex() for k in people], start_round=start_round)
    if typing:
        spec["typing"] = True
    if constituents:
        spec["constituents"] = constituents
    with open(path, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=1)


def load_bots(path, charter_wire: bytes) -> ReactiveBots:
    """The bots a testnet file describes; refuses a file that does not match the replica's charter."""
    import json

    from consensus.errors import KleroError

    from .bots import AssemblySim, Behaviour

    try:
        with open(path, encoding="utf-8") as f:
            spec = json.loads(f.read(1 << 20))
    except (OSError, ValueError) as exc:
        raise KleroError(f"Cannot read the bots file {path}: {exc}.") from None
    shapes = {"template": str, "reps": int, "seed": int, "behaviour": dict, "indices": list, "proposals": int}
    if not isinstance(spec, dict) or any(type(spec.get(k)) is not t for k, t in shapes.items()):
        raise KleroError(f"The bots file {path} must hold " + ", ".join(f"{k} ({t.__name__})" for k, t in shapes.items()) + ".")
    if not 2 <= spec["reps"] <= 10_000 or not all(type(i) is int and 0 <= i < spec["reps"] for i in spec["indices"]):
        raise KleroError(f"The bots file {path} names bots outside 0..reps-1 (or reps is not 2 to 10,000).")
    people = spec.get("people", [])
    if (not isinstance(people, list) or len(people) > 1000
            or not all(isinstance(k, str) and len(k) == 64 and all(c in "0123456789abcdef" for c in k) for k in people)
            or type(spec.get("start_round", 2)) is not int or not 1 <= spec.get("start_round", 2) <= 1 << 20):
        raise KleroError(f"The bots file {path} lists people as hex public keys and a start_round from 1 to 2^20.")
    shares = spec["behaviour"]
    if (set(shares) - {"absent", "late", "equivocating", "unauthorised"}
            or not all(type(v) in (int, float) and 0 <= v <= 1 for v in shares.values()) or sum(shares.values()) > 1):
        raise KleroError(f"The behaviour in {path} takes the shares absent, late, equivocating and unauthorised, "
                         "each from 0 to 1 and together at most 1.")
    behaviour = Behaviour(**{k: float(v) for k, v in shares.items()})
    from consensus.events import decode_charter

    bootstrap = decode_charter(charter_wire).body.charter.bootstrap
    try:
        constituents = spec.get("constituents", 0)
        if type(constituents) is not int or not 0 <= constituents <= 1000:
            raise KleroError(f"The bots file {path} gives constituents as a number from 0 to 1,000.")
        sim = AssemblySim(spec["template"], reps=spec["reps"], seed=spec["seed"], behaviour=behaviour, bootstrap=bootstrap,
                          people=tuple(bytes.fromhex(k) for k in people), start_round=spec.get("start_round", 2),
                          constituents=constituents)
    except KleroError as exc:
        raise KleroError(f"The bots file {path} names an unusable charter template: {exc}") from None
    if sim.charter_wire != charter_wire:
        raise KleroError(f"The bots in {path} belong to another assembly than this replica's.")
    hosted = [HostedBot(i, sim.bots[i].key, sim.bots[i].kind) for i in sorted(set(spec["indices"]))]
    neighbours = {p: [n.key for n in group] for p, group in sim.neighbours.items()} if 0 in spec["indices"] else {}
    return ReactiveBots(spec["seed"], [b.public for b in sim.bots], hosted, proposals=spec["proposals"],
                        typing=spec.get("typing") is True, neighbours=neighbours)
