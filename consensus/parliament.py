"""The charter's parliament: cycles, the stage table, the plenary and the seat cap.

All durations are in beacon rounds.  Every parameter has a default, defended in a comment; a
charter may override any of them, and a contradictory combination (a threshold above the
committee size, windows longer than the cycle, …) is rejected with a reason.

Timeline of cycle ``c`` (rounds from its start ``s = start_round + c * cycle_rounds``):

* ``s``: boundary.  Submissions made during cycle ``c - 1`` are the intake of stage 1; what each
  stage promoted during cycle ``c - 1`` goes to the next stage (pipelining).
* ``d = s + draw_delay``: every committee of the cycle is drawn with the randomness of round
  ``d``, published only after the boundary decided the draw's inputs (DESIGN.md §7).
* per stage: a work window ``[d, d + work_rounds)`` (co-editing, amendments, or deliberation),
  then a ballot window ``[d + work_rounds, close)`` with ``close = d + work_rounds + ballot_rounds``;
  ties are broken with the randomness of ``close + draw_delay``.
* Everything must end before the next boundary, so promotions feed the next cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .cbor import key_order
from .errors import names, reject

EDIT, AMEND, COMMENT = "edit", "amend", "comment"
MODES = (EDIT, AMEND, COMMENT)
#: how deadlines are settled: by lot-drawn cut-off panels (DESIGN.md §7), or, for offline tests
#: and single-machine rehearsals only, by the rounds events declare (docs/deadlines.md)
PANEL, DECLARED = "panel", "declared"
DEADLINE_RULES = (PANEL, DECLARED)


def _canonical(body: dict) -> dict:
    return {k: body[k] for k in sorted(body, key=key_order)}


def _int(body: dict, name: str, default: int, low: int, high: int, what: str) -> int:
    value = body.get(name, default)
    if type(value) is not int or not low <= value <= high:
        raise reject("bad_charter", f"The {what} parameter {name} must be an integer from {low} to {high}.")
    return value


def _map(body, what: str, allowed: tuple[str, ...]) -> dict:
    if type(body) is not dict:
        raise reject("bad_charter", f"The {what} must be a map.")
    for key in body:
        if type(key) is not str:
            raise reject("bad_charter", f"The {what} has a key that is not text.")
    if list(body) != sorted(body, key=key_order):
        raise reject("not_canonical", f"The fields of the {what} are not in canonical order.")
    unknown = [k for k in body if k not in allowed]
    if unknown:
        raise reject("bad_charter", f"The {what} has unknown parameters: {names(unknown)}.")
    return body


@dataclass(frozen=True, slots=True)
class Stage:
    """One committee stage."""

    name: str
    #: what members may do: co-edit the text (stage 1), propose amendments (stage 2), or only
    #: deliberate in comments (stage 3 and later)
    mode: str
    #: committee size, drawn by lot
    committee: int
    #: how many proposals this stage may promote per cycle: the scarcity that makes higher
    #: stages compete for attention
    slots: int
    #: promote votes needed; 0 means "a majority of the committee's size" (absent members count
    #: as not promoting)
    threshold: int = 0
    work_rounds: int = 0
    ballot_rounds: int = 0
    #: amend mode only: the part of the work window for proposing amendments, then the part for
    #: voting each adopt/reject; the rest of the work window is for reading the merged text
    amend_rounds: int = 0
    amend_ballot_rounds: int = 0

    FIELDS = ("name", "mode", "committee", "slots", "threshold", "work_rounds", "ballot_rounds", "amend_rounds", "amend_ballot_rounds")

    @property
    def needed(self) -> int:
        """Promote votes needed to promote."""
        return self.threshold or self.committee // 2 + 1

    @classmethod
    def from_body(cls, body, index: int) -> "Stage":
        what = f"stage {index + 1}"
        b = _map(body, what, cls.FIELDS)
        name = b.get("name", f"Stage {index + 1}")
        if type(name) is not str or not 1 <= len(name) <= 60:
            raise reject("bad_charter", f"The name of {what} must be text of 1 to 60 characters.")
        mode = b.get("mode", EDIT if index == 0 else COMMENT)
        if mode not in MODES:
            raise reject("bad_charter", f"The mode of {what} must be one of {', '.join(MODES)}.")
        stage = cls(
            name=name,
            mode=mode,
            committee=_int(b, "committee", 7, 1, 100_000, what),
            slots=_int(b, "slots", 10, 1, 100_000, what),
            threshold=_int(b, "threshold", 0, 0, 100_000, what),
            work_rounds=_int(b, "work_rounds", 1, 1, 1 << 30, what),
            ballot_rounds=_int(b, "ballot_rounds", 1, 1, 1 << 30, what),
            amend_rounds=_int(b, "amend_rounds", 0, 0, 1 << 30, what),
            amend_ballot_rounds=_int(b, "amend_ballot_rounds", 0, 0, 1 << 30, what),
        )
        if stage.threshold > stage.committee:
            raise reject("bad_charter", f"The promotion threshold of {what} is larger than its committee.")
        if stage.mode == AMEND:
            if not stage.amend_rounds or not stage.amend_ballot_rounds:
                raise reject("bad_charter", f"{what} amends, so it needs amend_rounds and amend_ballot_rounds.")
            if stage.amend_rounds + stage.amend_ballot_rounds > stage.work_rounds:
                raise reject("bad_charter", f"The amendment windows of {what} are longer than its work window.")
        elif stage.amend_rounds or stage.amend_ballot_rounds:
            raise reject("bad_charter", f"{what} does not amend, so it cannot have amendment windows.")
        return stage

    def to_body(self) -> dict:
        body = {f: getattr(self, f) for f in self.FIELDS}
        if self.mode != AMEND:
            del body["amend_rounds"], body["amend_ballot_rounds"]
        return _canonical(body)


@dataclass(frozen=True, slots=True)
class Plenary:
    """The final up/down vote of all representatives."""

    #: votes cast needed, in thousandths of the cycle's roster: a majority of representatives
    #: must take part for a result to bind them all
    quorum_permille: int = 500
    #: rounds to read and debate the promoted text before the ballot opens
    work_rounds: int = 1
    ballot_rounds: int = 1

    FIELDS = ("quorum_permille", "work_rounds", "ballot_rounds")

    @classmethod
    def from_body(cls, body) -> "Plenary":
        b = _map(body, "plenary", cls.FIELDS)
        return cls(
            quorum_permille=_int(b, "quorum_permille", 500, 1, 1000, "plenary"),
            work_rounds=_int(b, "work_rounds", 1, 1, 1 << 30, "plenary"),
            ballot_rounds=_int(b, "ballot_rounds", 1, 1, 1 << 30, "plenary"),
        )

    def to_body(self) -> dict:
        return _canonical({f: getattr(self, f) for f in self.FIELDS})

    def quorum(self, roster_size: int) -> int:
        return -(-roster_size * self.quorum_permille // 1000)  # ceiling


# The city defaults of DESIGN.md §6: 7 → 31 → 127 → plenary, 40 → 10 → 3 slots.
DEFAULT_STAGES = (
    Stage("Drafting", EDIT, committee=7, slots=40, work_rounds=3, ballot_rounds=2),
    Stage("Review", AMEND, committee=31, slots=10, work_rounds=3, ballot_rounds=2, amend_rounds=1, amend_ballot_rounds=1),
    Stage("Floor", COMMENT, committee=127, slots=3, work_rounds=3, ballot_rounds=2),
)


@dataclass(frozen=True, slots=True)
class Parliament:
    """How the legislature runs: cycles, stages, plenary and workload limits."""

    #: beacon round at which cycle 0 starts; 0 means "the round after the charter's own round"
    start_round: int = 0
    #: length of a cycle: every stage handles one batch per cycle
    cycle_rounds: int = 12
    #: rounds between a deadline and the round whose randomness seeds what depends on it; must
    #: be at least 1 so the randomness is published after the inputs were decided (§7)
    draw_delay: int = 1
    #: committee seats one representative may hold per cycle (DESIGN.md §6: 5): a lot-drawn
    #: legislature must not pile work on a few unlucky members
    max_seats: int = 5
    #: proposals one representative may submit per cycle (DESIGN.md §6: 2): attention is the
    #: scarce resource
    submissions_per_cycle: int = 2
    #: cut-off panel size per deadline (DESIGN.md §7: 31); used by the panels of issue 5
    panel_size: int = 31
    #: rounds panel members wait after a deadline's round before signing their cut-off, so
    #: events signed just before it can propagate (used by the panels of issue 5)
    grace_rounds: int = 2
    #: rounds one generation of a deadline's panel has to decide before a fresh panel is drawn
    #: (DESIGN.md §7, docs/finality.md): liveness must not need every drawn panel two-thirds
    #: present.  20 quicknet rounds is a minute, about twenty times what a panel needs when its
    #: members are online; it also bounds how far ahead a value's seed round may lie
    panel_rounds: int = 20
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    plenary: Plenary = field(default_factory=Plenary)
    deadline_rule: str = PANEL

    SCALARS = ("start_round", "cycle_rounds", "draw_delay", "max_seats", "submissions_per_cycle", "panel_size", "grace_rounds",
               "panel_rounds")
    #: scalars added after the first charters: written only when they differ from the default, so
    #: every existing charter keeps its bytes and its assembly id
    LATER = ("panel_rounds",)
    RANGES = {
        "start_round": (0, 1 << 62),
        "cycle_rounds": (4, 1 << 30),
        "draw_delay": (1, 1 << 20),
        "max_seats": (1, 1000),
        "submissions_per_cycle": (1, 1000),
        "panel_size": (4, 1000),
        "grace_rounds": (0, 1 << 20),
        "panel_rounds": (4, 1 << 20),
    }

    @classmethod
    def from_body(cls, body) -> "Parliament":
        b = _map(body, "parliament", cls.SCALARS + ("stages", "plenary", "deadline_rule"))
        rule = b.get("deadline_rule", PANEL)
        if rule not in DEADLINE_RULES:
            raise reject("bad_charter", f"The deadline_rule must be one of {', '.join(DEADLINE_RULES)}.")
        values = {}
        for name in cls.SCALARS:
            low, high = cls.RANGES[name]
            values[name] = _int(b, name, getattr(cls(), name), low, high, "parliament")
        raw_stages = b.get("stages")
        if raw_stages is None:
            stages = DEFAULT_STAGES
        else:
            if type(raw_stages) is not list or not 1 <= len(raw_stages) <= 8:
                raise reject("bad_charter", "The parliament needs a list of 1 to 8 stages.")
            stages = tuple(Stage.from_body(s, i) for i, s in enumerate(raw_stages))
        if stages[0].mode != EDIT:
            raise reject("bad_charter", "The first stage must be the drafting stage (mode edit).")
        if any(s.mode == EDIT for s in stages[1:]):
            raise reject("bad_charter", "Only the first stage may co-edit freely; later stages amend or comment.")
        plenary = Plenary.from_body(b.get("plenary", {})) if "plenary" in b else Plenary()
        parliament = cls(stages=stages, plenary=plenary, deadline_rule=rule, **values)
        longest = max([s.work_rounds + s.ballot_rounds for s in stages] + [plenary.work_rounds + plenary.ballot_rounds])
        if parliament.draw_delay + longest + parliament.draw_delay > parliament.cycle_rounds:
            raise reject(
                "bad_charter",
                f"A cycle of {parliament.cycle_rounds} rounds is too short: the draw delay, the longest stage "
                f"({longest} rounds) and the tie-break delay must fit before the next boundary.",
            )
        return parliament

    def to_body(self) -> dict:
        default = Parliament()
        body = {name: getattr(self, name) for name in self.SCALARS
                if name not in self.LATER or getattr(self, name) != getattr(default, name)}
        body["stages"] = [s.to_body() for s in self.stages]
        body["plenary"] = self.plenary.to_body()
        body["deadline_rule"] = self.deadline_rule
        return _canonical(body)

    def with_changes(self, **changes) -> "Parliament":
        return replace(self, **changes)

