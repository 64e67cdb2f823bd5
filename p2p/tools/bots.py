"""Bot representatives running a whole assembly on a dev beacon (``klero simulate``).

Everything derives from the seed: keys, the dev beacon's key, who submits, who is absent, how
each bot votes.  The bots act like honest nodes that see everything at once: they compute the
legislature themselves (``consensus.legislature``) to learn their seats, then sign what a
committee member would sign, at plausible beacon rounds.  A share of them misbehave as asked:

* *absent*: seated, but never votes;
* *late*: votes after the ballot closed (naming a round at or after the deadline);
* *equivocating*: signs two different events at one seq once (a fork, excluded by everyone);
* *unauthorised*: votes on ballots it does not sit on, and submits over its quota.

The result is a self-contained log: the charter, every beacon round used, every event.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Iterator

from nacl.signing import SigningKey
from py_arkworks_bls12381 import G2Point, Scalar

from consensus.beacon import QUICKNET, UNCHAINED_G1, BeaconRound, Chain, encode_round
from consensus.charter import Charter, Limits, Representation
from consensus.events import NO_ASSEMBLY, event_id, sign_event
from consensus.legislature import IN_COMMITTEE, IN_PLENARY, Legislature
from consensus.parliament import AMEND, Parliament
from consensus.replica import Replica

from ..beacon import BeaconError, DevBeacon
from ..founding import canonical, load_template  # templates are the founding code's; re-exported for tools

#: a fixed genesis for simulated dev beacons, so the same seed gives the same log anywhere
SIM_GENESIS = 1_700_000_000
#: panel generations a simulated deadline may take before the simulation gives up on it
MAX_GENERATIONS = 40


def seeded_dev_beacon(seed: int, period_ms: int) -> DevBeacon:
    """A dev beacon whose key derives from the seed (simulations only: anyone can recompute it)."""
    scalar = Scalar.from_be_bytes_mod_order(hashlib.sha512(f"klero-sim/beacon/{seed}".encode()).digest())
    chain = Chain(
        scheme=UNCHAINED_G1,
        public_key=(G2Point() * scalar).to_compressed_bytes(),
        period_ms=period_ms,
        genesis_time=SIM_GENESIS,
        group_hash=hashlib.sha256(f"klero-sim/group/{seed}".encode()).digest(),
        beacon_id="klero-sim",
        dev=True,
    )
    return DevBeacon(chain, bytes(scalar.to_le_bytes()))


@dataclass
class Behaviour:
    """Shares of misbehaving representatives (0 to 1)."""

    absent: float = 0.1
    late: float = 0.05
    equivocating: float = 0.0
    unauthorised: float = 0.05


@dataclass
class Bot:
    key: SigningKey
    seq: int = 0
    prev: bytes | None = None
    last_round: int = 0
    kind: str = "honest"
    forked: bool = False

    @property
    def public(self) -> bytes:
        return bytes(self.key.verify_key)


@dataclass(order=True)
class Planned:
    round: int
    order: int
    bot: int = field(compare=False)
    kind: str = field(compare=False)
    body: dict = field(compare=False)


_FLIP = {"promote": "kill", "kill": "promote", "yes": "no", "no": "yes", "adopt": "reject", "reject": "adopt"}


def _other_version(kind: str, body: dict) -> dict:
    """A different but well-formed body: what an equivocating bot signs as its second version."""
    if kind == "vote":
        return {**body, "choice": _FLIP[body["choice"]]}
    if kind == "comment":
        return {**body, "text": body["text"] + " (the other version)"}
    if kind == "proposal.submit":
        return {**body, "title": body["title"][:190] + " (v2)"}
    if kind == "amendment.propose":
        return {**body, "summary": body["summary"] + " (v2)"}
    return body


class AssemblySim:
    """One simulated assembly; :meth:`run` yields log items."""

    def __init__(
        self,
        template: str = "demo",
        *,
        reps: int | None = None,
        proposals: int = 4,
        cycles: int = 3,
        seed: int = 0,
        behaviour: Behaviour | None = None,
        name: str | None = None,
        dev_beacon: bool = False,
        documents: bool = True,
        bootstrap: tuple[str, ...] = (),
        start_round: int = 2,
        people: tuple[bytes, ...] = (),
        constituents: int = 0,
        representation: dict | None = None,
        declare_absence: bool = False,
    ):
        """``people``: public keys of persons who sit on the roster beside the bots (a testnet a
        person joins, the demo); no bot ever signs for them.  ``constituents``: if above 0, the
        charter has constituencies (the template's ``representation`` section) and a registrar
        bot; before cycle 0 each bot founds a constituency, says yes to serving and endorses
        itself, and that many constituent bots each join one and endorse its founder, so the
        boundary of cycle 0 certifies the seats cycle 1 runs on (the people are certified too)."""
        self.documents = documents
        spec = load_template(template)
        if dev_beacon and spec.get("beacon") != "dev":
            # a production template on a dev beacon with the same period (benchmarks, rehearsals)
            spec = {**spec, "beacon": "dev", "period_ms": 3000 if spec.get("beacon") == "quicknet" else 30000}
        self.rng = random.Random(seed)
        self.seed = seed
        self.cycles = cycles
        self.proposals_per_cycle = proposals
        self.behaviour = behaviour or Behaviour()
        reps = reps or int(spec.get("suggested_reps", 9))
        self.bots = [Bot(SigningKey(hashlib.sha256(f"klero-sim/{seed}/rep/{i}".encode()).digest())) for i in range(reps)]
        self._assign_behaviour()
        self.convenor = Bot(SigningKey(hashlib.sha256(f"klero-sim/{seed}/convenor".encode()).digest()))
        if spec.get("beacon", "dev") == "dev":
            self.dev = seeded_dev_beacon(seed, int(spec.get("period_ms", 1000)))
            chain = self.dev.chain
        else:
            self.dev = None
            chain = QUICKNET
        parliament = Parliament.from_body(canonical({**spec["parliament"], "start_round": start_round}))
        self.registrar = Bot(SigningKey(hashlib.sha256(f"klero-sim/{seed}/registrar".encode()).digest()))
        self.constituents = [Bot(SigningKey(hashlib.sha256(f"klero-sim/{seed}/constituent/{i}".encode()).digest()))
                             for i in range(constituents * reps)]
        self.people = tuple(people)
        #: absent bots declare their absence before each cycle (needs constituencies: the
        #: declaration is decided at the boundary), so the draws skip them (``klero simulate
        #: --compare-absence`` shows what that changes)
        self.declare_absence = declare_absence and constituents > 0
        self._people_bots: dict[bytes, Bot] = {}
        #: each person's neighbours (with constituencies): one founds a constituency for the person,
        #: two more join it; they endorse the person once the person has joined and said yes
        #: (``p2p.tools.reactive``), so a person sees a seat arise from their own acts
        self.neighbours = {p: [Bot(SigningKey(hashlib.sha256(f"klero-sim/{seed}/neighbour/{p.hex()}/{j}".encode()).digest()))
                               for j in range(3)] for p in self.people} if constituents else {}
        section = None
        if constituents:
            rep = {"min_constituency": min(constituents + 1, 3), **spec.get("representation", {}), **(representation or {})}
            section = Representation.from_body(canonical(rep), 1)
        charter = Charter(
            name=name or f"Simulated {template} assembly (seed {seed})",
            roster=tuple(sorted({b.public for b in self.bots} | set(people))),
            limits=Limits(max_events_per_round=4096),
            beacon=chain,
            parliament=parliament,
            bootstrap=tuple(bootstrap),
            registrars=(self.registrar.public,) if constituents else (),
            representation=section,
        )
        self.charter_wire = sign_event(self.convenor.key, assembly=NO_ASSEMBLY, seq=1, prev=None, kind="charter", body=charter)
        self.assembly = event_id(self.charter_wire)
        self.replica = Replica(self.charter_wire)
        self.legislature = Legislature(self.replica.charter, self.replica.charter_event.round)
        self.by_key = {b.public: i for i, b in enumerate(self.bots)}
        self._rounds: dict[int, BeaconRound] = {}
        self._order = 0
        self._pre_signed: list[bytes] = []
        self.counts: dict[str, int] = {}
        #: acts planned from outside (tests, scenarios): see :meth:`plan_act`
        self.extra: list[Planned] = []

    def _assign_behaviour(self) -> None:
        indices = list(range(len(self.bots)))
        self.rng.shuffle(indices)
        b = self.behaviour
        cursor = 0
        for kind, share in (("absent", b.absent), ("late", b.late), ("equivocating", b.equivocating), ("unauthorised", b.unauthorised)):
            n = max(1, round(share * len(self.bots))) if share > 0 else 0
            for i in indices[cursor : cursor + n]:
                self.bots[i].kind = kind
            cursor += n

    # ---- beacon rounds

    def _round(self, number: int) -> Iterator[bytes]:
        if number <= 0 or number in self._rounds:
            return
        if self.dev is None:
            raise BeaconError("Simulations need a dev beacon (the city template uses drand quicknet; use demo or testnet).")
        rnd = self.dev.sign(number)
        self._rounds[number] = rnd
        self.replica.add_round(rnd)
        yield encode_round(rnd)

    def _sign(self, bot: Bot, kind: str, body: dict, at_round: int, *, fork: bool = False) -> Iterator[bytes]:
        yield from self._round(at_round)
        at_round = max(at_round, bot.last_round)
        prefix = self._rounds[at_round].randomness[:8] if at_round else b""
        wire = sign_event(bot.key, assembly=self.assembly, seq=bot.seq + 1, prev=bot.prev, kind=kind, body=body, round=at_round, round_prefix=prefix)
        if fork:
            other = _other_version(kind, body)
            twin = sign_event(bot.key, assembly=self.assembly, seq=bot.seq + 1, prev=bot.prev, kind=kind, body=other, round=at_round, round_prefix=prefix)
            self.replica.add(twin)
            yield twin
            bot.forked = True
        bot.seq += 1
        bot.prev = event_id(wire)
        bot.last_round = at_round
        self.replica.add(wire)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        yield wire

    # ---- the run

    def run(self) -> Iterator[bytes]:
        """Yield the log: charter, rounds and events, in the order the bots produced them.

        Time advances deadline by deadline: the bots' planned acts before a deadline are signed,
        the deadline's round is published, and its panel (or, under the declared-round rule,
        nobody) settles it; then what depends on the decision is planned.
        """
        yield self.charter_wire
        leg = self.legislature
        if self.constituents:
            yield from self._constituencies(max(1, leg.start - 5))
        self._queue: list[Planned] = list(self.extra)
        self._queue += self._submissions(0, leg.start - 1, max(1, leg.start - 40))
        for cycle in range(self.cycles):
            for what, stage, at in leg.deadlines(cycle):
                yield from self._emit_until(at)
                yield from self._round(at)
                yield from self._settle(what, cycle, stage, at)
                if what == "intake":
                    self._evaluate()
                    decision = self._decision(("intake", cycle, 0))
                    if decision is None:
                        continue
                    yield from self._round(decision.seed_round)
                    result = self._evaluate()
                    self._queue += self._cycle_plan(cycle, result)
                    yield from self._pre_signed
                    self._pre_signed.clear()
                    if cycle + 1 < self.cycles:
                        nxt = leg.cycle_start(cycle + 1)
                        self._queue += self._submissions(cycle + 1, nxt - 1, at + 1)
                        if self.declare_absence:
                            for i, bot in enumerate(self.bots):
                                if bot.kind == "absent":
                                    self._plan(self._queue, self._pick(at + 1, max(at + 2, nxt - 1)), i, "absence", {"cycle": cycle + 1})
                        # leases for cycle c + 2 are decided at the boundary of c + 1 (DESIGN §7)
                        self._queue += self._leases(cycle + 2, at + 1, nxt - 1)
                elif leg.p.deadline_rule != "panel":
                    yield from self._round(at + leg.p.draw_delay)
        yield from self._emit_until(leg.cycle_start(self.cycles) + 1)
        yield from self._round(leg.cycle_start(self.cycles))

    def setup_acts(self, person_keys: dict | None = None) -> list[bytes]:
        """The registration and constituency acts a live testnet or the demo starts from (they name
        no beacon round, so they come before every boundary); the nodes import them with the charter.

        ``person_keys`` (public key -> signing key): persons whose profiles the testnet made itself
        (dev keys).  Their first acts are signed here: joining the constituency their neighbours
        founded, and saying yes to serving; the neighbours endorse them.  So the boundary of cycle
        0 seats them from cycle 1 through their constituency (a person could not act before the
        first boundary, a few seconds after the start)."""
        self._person_keys = dict(person_keys or {})
        return list(self._constituencies(0))

    def _constituencies(self, at: int) -> Iterator[bytes]:
        """Registration, constituencies and endorsements, all before cycle 0's boundary."""
        neighbours = [n for group in self.neighbours.values() for n in group]
        everyone = ([b.public for b in self.bots] + [c.public for c in self.constituents] + list(self.people)
                    + [n.public for n in neighbours])
        for key in everyone:
            yield from self._sign(self.registrar, "registrar.certify", {"subject": key}, at)
        for person, (founder, *others) in self.neighbours.items():
            before = founder.seq
            yield from self._sign(founder, "constituency.found", {
                "name": f"Neighbourhood of {person.hex()[:6]}",
                "statement": "Your neighbours founded this constituency for you: join it and say yes to serving, "
                             "and they will endorse you."}, at)
            gid = founder.prev if founder.seq > before else None
            for n in others:
                yield from self._sign(n, "constituency.join", {"constituency": gid}, at)
            key = getattr(self, "_person_keys", {}).get(person)
            if key is not None:
                me = self._people_bots.setdefault(person, Bot(key))
                yield from self._sign(me, "constituency.join", {"constituency": gid}, at)
                yield from self._sign(me, "serve", {"answer": "yes"}, at)
                for n in (founder, *others):
                    yield from self._sign(n, "endorse", {"constituency": gid, "member": person}, at)
        if self.declare_absence:
            for bot in self.bots:
                if bot.kind == "absent":
                    yield from self._sign(bot, "absence", {"cycle": 0}, at)
        per = len(self.constituents) // len(self.bots)
        for i, bot in enumerate(self.bots):
            before = bot.seq
            yield from self._sign(bot, "constituency.found", {"name": f"Neighbourhood {i + 1}",
                                                              "statement": "Streets, schools and parks of our part of town."}, at)
            gid = bot.prev if bot.seq > before else None
            yield from self._sign(bot, "serve", {"answer": "yes"}, at)
            yield from self._sign(bot, "endorse", {"constituency": gid, "member": bot.public}, at)
            for c in self.constituents[i * per:(i + 1) * per]:
                yield from self._sign(c, "constituency.join", {"constituency": gid}, at)
                yield from self._sign(c, "endorse", {"constituency": gid, "member": bot.public}, at)

    def _evaluate(self):
        return self.legislature.evaluate_replica(self.replica)

    def _decision(self, key):
        return self.legislature.decision(*key)

    def signer(self, index: int) -> Bot:
        """Bot ``index``; past the bots, the constituents in order; -1 is the registrar."""
        if index == -1:
            return self.registrar
        return self.bots[index] if index < len(self.bots) else self.constituents[index - len(self.bots)]

    def plan_act(self, round_: int, signer: int, kind: str, body: dict) -> None:
        """Have ``signer`` (see :meth:`signer`) sign an act at ``round_`` during the run."""
        queue = getattr(self, "_queue", None)  # during a run, straight into the plan
        self._plan(self.extra if queue is None else queue, round_, signer, kind, body)

    def _emit_until(self, round_: int) -> Iterator[bytes]:
        """Sign every planned act due before ``round_``, in round order."""
        self._queue.sort()
        while self._queue and self._queue[0].round < round_:
            item = self._queue.pop(0)
            bot = self.signer(item.bot)
            fork = bot.kind == "equivocating" and not bot.forked and self.rng.random() < 0.5
            yield from self._sign(bot, item.kind, item.body, item.round, fork=fork)

    def _leases(self, for_cycle: int, first: int, last: int) -> list[Planned]:
        """Every present, honest-enough bot promises to serve on panels next cycle."""
        plan: list[Planned] = []
        for i, bot in enumerate(self.bots):
            if bot.kind not in ("absent",):
                self._plan(plan, self._pick(first, max(first + 1, last)), i, "lease", {"cycle": for_cycle})
        return plan

    # ---- cut-off panels

    def _settle(self, what: str, cycle: int, stage: int, at: int) -> Iterator[bytes]:
        """Run the deadline's cut-off panel: cut-offs, then agreement, all as signed events.  A
        panel that cannot decide within ``panel_rounds`` (too many absent members) gives way to
        the next generation, as on a real network (at most ``MAX_GENERATIONS``)."""
        leg = self.legislature
        if leg.p.deadline_rule != "panel":
            return
        for gen in range(MAX_GENERATIONS):
            start = leg.generation_start(at, gen)
            yield from self._round(start)
            self._evaluate()  # sets the evaluation context (earlier decisions, committees)
            if leg.decision(what, cycle, stage) is not None:
                return
            decided = yield from self._panel(what, cycle, stage, at, gen)
            if decided:
                return
            # the generation's window ran out: publish the rounds up to the next one's start
            for number in range(start + 1, leg.generation_start(at, gen + 1) + 1):
                yield from self._round(number)

    def _panel(self, what: str, cycle: int, stage: int, at: int, gen: int):
        """One generation of a deadline's panel; returns True if it decided."""
        from consensus.agreement import Agreement, Proposal
        from consensus.legislature import Waiting
        from consensus.panel import deadline_key, decode_value, encode_value, proposer_offset, valid_value

        leg = self.legislature
        try:
            panel = leg.panel_of(what, cycle, stage, at, gen)
        except Waiting:
            return False
        name = deadline_key(what, cycle, stage, gen)
        start = leg.generation_start(at, gen)
        seeds = leg.seed_window(at, gen)
        cutoff = self._cutoff(what, cycle, stage, at)
        seats = {pos: self.by_key[m] for pos, m in enumerate(panel) if m in self.by_key}  # people sign for themselves
        active = {pos: i for pos, i in seats.items() if self.bots[i].kind not in ("absent", "equivocating") and not self.bots[i].forked}
        cut_ids = []
        for i in active.values():
            mine = cutoff
            if self.bots[i].kind == "late" and cutoff.items:
                # a slow node: it had not yet received a few items when the round came out
                mine = type(cutoff)(cutoff.votes, tuple(x for x in cutoff.items if self.rng.random() > 0.2), cutoff.leases,
                                    cutoff.revisions)
            wires = list(self._sign(self.bots[i], "cutoff", {"deadline": name, "cutoff": mine.to_body()}, start))
            cut_ids.append(event_id(wires[-1]))
            yield from wires
        for i in seats:
            if self.bots[i].kind == "equivocating":
                # a Byzantine member: two different prevotes in agreement round 0 (a fraud proof,
                # kept as evidence even after the bot forked its chain)
                for value in (hashlib.sha256(name + b"lie").digest(), None):
                    yield from self._sign(self.bots[i], "prevote", {"deadline": name, "round": 0, "value": value}, start)
        records = self.replica.records
        now = [start]

        def make(pos: int) -> Agreement:
            return Agreement(
                len(panel), pos,
                valid=lambda v: valid_value(v, name, panel, records, seeds),
                get_value=lambda: encode_value(cut_ids, now[0] + leg.p.draw_delay),
                offset=proposer_offset(name),
                fresh=lambda v, b: (decode_value(v) or ((), 0))[1] > b,
            )

        agents = {pos: make(pos) for pos in active}
        outbox: list[tuple[int, object]] = []
        for pos, agent in agents.items():
            outbox += [(pos, m) for m in agent.start(start)]
        end = leg.generation_start(at, gen + 1)
        while now[0] < end:
            while outbox:
                pos, message = outbox.pop(0)
                bot = self.bots[active[pos]]
                if isinstance(message, Proposal):
                    kind, body = "propose", {"deadline": name, "round": message.round, "valid_round": message.valid_round, "value": message.value}
                else:
                    kind, body = message.step, {"deadline": name, "round": message.round, "value": message.value}
                yield from self._sign(bot, kind, body, now[0])
                for other, agent in agents.items():
                    if other != pos:
                        outbox += [(other, m) for m in agent.receive(pos, message)]
            if agents and all(a.decision is not None for a in agents.values()):
                # publish the round the decision names: draws or tie-breaks use its randomness
                decided = next(iter(agents.values())).decision
                yield from self._round((decode_value(decided) or ((), 0))[1])
                return True
            now[0] += 1
            yield from self._round(now[0])
            for pos, agent in agents.items():
                outbox += [(pos, m) for m in agent.tick(now[0])]
        return False

    def _cutoff(self, what: str, cycle: int, stage: int, at: int):
        """What an honest node had received when round ``at`` came out (everything naming an
        earlier round: bots see everything at once)."""
        from consensus.duties import honest_cutoff

        return honest_cutoff(self.legislature, self.replica.records, what, cycle, stage, at, forked=self.replica.forks)

    def _plan(self, plan: list, round_: int, bot: int, kind: str, body: dict) -> None:
        self._order += 1
        plan.append(Planned(round_, self._order, bot, kind, body))

    def _submissions(self, for_cycle: int, last: int, first: int) -> list[Planned]:
        plan: list[Planned] = []
        per_bot: dict[int, int] = {}
        for n in range(self.proposals_per_cycle):
            i = self.rng.randrange(len(self.bots))
            quota = self.legislature.p.submissions_per_cycle
            if per_bot.get(i, 0) >= quota and self.bots[i].kind != "unauthorised":
                continue
            per_bot[i] = per_bot.get(i, 0) + 1
            at = self._pick(max(1, first), max(1, first, last) + 1)
            title = f"Proposal {for_cycle}.{n}: " + self.rng.choice(
                ["Open the library on Sundays", "Protected bike lanes on Main Street", "A public budget hearing each quarter",
                 "Free water fountains in parks", "Night buses on weekends", "Tree planting along the river"]
            )
            self._plan(plan, at, i, "proposal.submit", {"title": title, "summary": f"A simulated proposal (seed {self.seed})."})
        return plan

    def _cycle_plan(self, cycle: int, result) -> list[Planned]:
        leg = self.legislature
        plan: list[Planned] = []
        draws = {(d.stage, d.proposal): d.members for d in result.draws if d.cycle == cycle}
        quality = {pid: self._quality(pid) for _, pid in draws}
        for (stage_no, pid), members in sorted(draws.items()):
            stage = leg.p.stages[stage_no - 1]
            state = result.proposals[pid]
            if state.status != IN_COMMITTEE:
                continue
            revision = state.revision
            opens_work, opens, closes = leg.windows(cycle, stage_no)
            member_bots = [self.by_key[m] for m in members if m in self.by_key]
            if member_bots:
                self._plan(plan, opens_work + 1, member_bots[0], "comment", {"proposal": pid, "text": "Reading it now; the second paragraph needs work."})
            if stage.mode == AMEND:
                revision = self._amendments(plan, cycle, stage_no, stage, pid, revision, member_bots, opens_work)
            elif stage.mode == "edit" and self.documents:
                revision = self._draft(pid, state, member_bots, opens_work, opens) or revision
            for i in member_bots:
                self._vote(plan, i, pid, cycle, stage_no, revision, opens, closes,
                           "promote" if self.rng.random() < quality[pid] else "kill")
            self._intruder(plan, members, pid, cycle, stage_no, revision, opens)
        roster = leg.roster_of(cycle)
        for pid, state in sorted(result.proposals.items()):
            if state.status == IN_PLENARY and state.history[-1][0] == cycle:
                opens_work, opens, closes = leg.windows(cycle, len(leg.p.stages) + 1)
                for key in (k for k in roster if k in self.by_key):
                    self._vote(plan, self.by_key[key], pid, cycle, len(leg.p.stages) + 1, state.revision, opens, closes,
                               "yes" if self.rng.random() < 0.7 else "no")
        return plan

    def _draft(self, pid: bytes, state, member_bots: list[int], start: int, end: int) -> tuple[bytes, ...] | None:
        """The author writes the proposal's document and a committee member edits it, during the
        editing window; returns the revision the committee will vote on (the document's heads).
        Signed right away, like amendments: the votes must name the heads."""
        from crdt import ProposalDocument

        if state.author not in self.by_key:
            return None  # a person's proposal: they write its text themselves
        author = self.bots[self.by_key[state.author]]
        if author.kind in ("absent", "equivocating"):
            return None
        doc, first = ProposalDocument.create(author.public, state.title, "A simulated proposal.",
                                             f"The council shall {state.title.split(': ', 1)[-1].lower()}.\n",
                                             proposal=pid)
        self._pre_signed.extend(self._sign(author, "doc.change", first.body(pid), start))
        editors = [i for i in member_bots if self.bots[i].kind not in ("absent", "equivocating")]
        if editors and end - start > 2:
            editor = self.bots[editors[0]]
            mine, _ = ProposalDocument.from_changes([first.bytes], actor=editor.public)
            body = mine.text("body")
            change = mine.edit("body", [(len(body), 0, "It takes effect next year.\n")])
            self._pre_signed.extend(self._sign(editor, "doc.change", change.body(pid), start + 1))
            return (change.hash,)
        return (first.hash,)

    def _amendments(self, plan, cycle, stage_no, stage, pid, base, member_bots, d) -> tuple[bytes, ...]:
        """Members propose amendments (a real fork of the text at the revision they received, with
        a signed change), then vote on each; returns the revision the final vote names (the bots
        know the rule: adopted by a majority of the committee's size, merged as the union of heads)."""
        adopted: set[bytes] = set()
        proposers = [i for i in member_bots if self.rng.random() < 0.4][:3]
        needed = stage.committee // 2 + 1
        for i in proposers:
            bot = self.bots[i]
            at = self._pick(d, d + stage.amend_rounds)
            head = self._amendment_change(pid, base, bot, at)
            if head is None:
                continue
            body = {"proposal": pid, "cycle": cycle, "base": list(base), "heads": [head], "summary": "Clarify who pays for it."}
            # votes name the amendment's event id, known only once it is signed: sign it now
            # (a bot's rounds never go back: _sign keeps them non-decreasing)
            wires = list(self._sign(bot, "amendment.propose", body, at))
            self._pre_signed.extend(wires)
            amendment_id = event_id(wires[-1])
            adopt_votes = 0
            vote_open = d + stage.amend_rounds
            for j in member_bots:
                choice = "adopt" if self.rng.random() < 0.6 else "reject"
                counted = self._vote(plan, j, pid, cycle, stage_no, (head,), vote_open, vote_open + stage.amend_ballot_rounds, choice, amendment=amendment_id)
                adopt_votes += counted and choice == "adopt"
            if adopt_votes >= needed:
                adopted.add(head)
        return tuple(sorted(adopted)) if adopted else base

    def _amendment_change(self, pid: bytes, base: tuple[bytes, ...], bot: Bot, at: int) -> bytes | None:
        """Fork the proposal's text at ``base``, edit it as ``bot`` and sign the change (pre-signed
        like the amendment itself); its hash, or None when the proposal has no text to amend."""
        from crdt import ProposalDocument

        if bot.forked:
            return None
        changes = [r.body.change for r in self.replica.records.values() if r.kind == "doc.change" and r.body.proposal == pid]
        if base == (pid,):
            # the proposal has no document (its author never drafted one): the amendment is the
            # first text, written by its proposer
            _, first = ProposalDocument.create(bot.public, "Amended text", "", f"The amended text ({bot.public.hex()[:6]}).\n",
                                               proposal=pid)
            self._pre_signed.extend(self._sign(bot, "doc.change", first.body(pid), at))
            return first.hash
        if not changes:
            return None
        doc, _ = ProposalDocument.from_changes(changes)
        known = {h for h, _, _ in doc.history()}
        if any(h not in known for h in base):
            return None
        mine = doc.fork(base, bot.public)
        body = mine.text("body")
        change = mine.edit("body", [(len(body), 0, f"Costs are met from the general budget ({bot.public.hex()[:6]}).\n")])
        if change is None:
            return None
        self._pre_signed.extend(self._sign(bot, "doc.change", change.body(pid), at))
        return change.hash

    def _vote(self, plan, i, pid, cycle, stage_no, revision, opens, closes, choice, *, amendment=None) -> bool:
        """Plan one vote by bot ``i`` per its behaviour; True if it should count."""
        bot = self.bots[i]
        if bot.kind == "absent":
            return False
        late = bot.kind == "late" and self.rng.random() < 0.7
        at = closes if late else self._pick(opens, closes)
        body = {"proposal": pid, "cycle": cycle, "stage": stage_no, "choice": choice, "revision": list(revision)}
        if amendment is not None:
            body["amendment"] = amendment
        self._plan(plan, at, i, "vote", body)
        return not late and bot.kind != "equivocating"

    def _intruder(self, plan, members, pid, cycle, stage_no, revision, opens) -> None:
        outsiders = [i for i, b in enumerate(self.bots) if b.kind == "unauthorised" and b.public not in members]
        if outsiders and self.rng.random() < 0.5:
            self._plan(plan, opens, self.rng.choice(outsiders), "vote",
                       {"proposal": pid, "cycle": cycle, "stage": stage_no, "choice": "promote", "revision": list(revision)})

    def _pick(self, low: int, high: int) -> int:
        """A round in ``[low, high)``, from at most 24 evenly spaced ones: bots act at plausible
        times, and a city-length window does not make the log carry thousands of rounds."""
        span = high - low
        if span <= 24:
            return self.rng.randrange(low, high)
        return low + self.rng.randrange(24) * (span // 24)

    def _quality(self, pid: bytes) -> float:
        return 0.35 + 0.6 * (pid[0] / 255)
