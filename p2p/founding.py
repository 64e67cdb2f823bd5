"""Founding an assembly of real people: a charter signed by its organiser over real public keys.

:func:`read_keys` reads the roster a group collected (one hex public key a line, as
``klero init`` and ``klero whoami`` print them); :func:`plan` checks it against a template
and says, parameter by parameter, what the charter will fix for ever (a charter cannot be
amended: its hash *is* the assembly's id); :func:`sign` makes the charter event.  The CLI's
``klero convene`` and the app's founding page are views of these.
"""

from __future__ import annotations

import json
import re
import time
from importlib import resources as importlib_resources
from dataclasses import dataclass, field
from pathlib import Path

from consensus.charter import Charter, Limits
from consensus.errors import KleroError
from consensus.events import NO_ASSEMBLY, sign_event
from consensus.parliament import Parliament

HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_ROSTER_FILE = 64 << 20


class FoundingError(KleroError):
    """The charter cannot be made as asked; the sentence says why and what to change."""


TEMPLATES = ("demo", "testnet", "city")


def canonical(value):
    """JSON-decoded data with every map's keys in canonical CBOR order (what charters require)."""
    from consensus.cbor import key_order

    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value, key=key_order)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def load_template(name_or_path: str) -> dict:
    """A charter template: ``demo``, ``testnet``, ``city`` (in resources/charters) or a JSON file."""
    if name_or_path in TEMPLATES:
        text = importlib_resources.files("resources").joinpath("charters", f"{name_or_path}.json").read_text()
    else:
        try:
            with open(name_or_path, encoding="utf-8") as f:
                text = f.read(1 << 20)
        except OSError as exc:
            raise FoundingError(f"Cannot read the charter template {name_or_path}: {exc.strerror}.") from None
    try:
        template = json.loads(text)
    except ValueError:
        raise FoundingError(f"The charter template {name_or_path} is not JSON.") from None
    if not isinstance(template, dict) or not isinstance(template.get("parliament"), dict):
        raise FoundingError(f"The charter template {name_or_path} has no parliament section.")
    return template


def read_keys(path: str | Path, what: str = "roster") -> list[bytes]:
    """Public keys from a file, one hex key a line (blank lines and ``#`` comments skipped).
    Bad lines and duplicates are refused with their line numbers."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_ROSTER_FILE:
            raise FoundingError(f"The {what} file {path} is larger than {MAX_ROSTER_FILE >> 20} MiB; is it the right file?")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FoundingError(f"There is no {what} file at {path}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FoundingError(f"Cannot read the {what} file {path}: {getattr(exc, 'strerror', None) or exc}.") from None
    keys: list[bytes] = []
    seen: dict[bytes, int] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not HEX_KEY.match(entry):
            problems.append(f"line {number} ({entry[:20]!r}) is not a public key of 64 hex characters")
            continue
        key = bytes.fromhex(entry)
        if key in seen:
            problems.append(f"line {number} repeats the key of line {seen[key]}")
            continue
        seen[key] = number
        keys.append(key)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise FoundingError(f"The {what} file {path} has problems: {shown}. Each line must hold one public key "
                            "as `klero whoami` prints it.")
    if not keys:
        raise FoundingError(f"The {what} file {path} holds no keys.")
    return keys


@dataclass
class Plan:
    """A charter ready to sign, and what a person should read before signing it."""

    charter: Charter
    lines: list[str] = field(default_factory=list)
    dev_secret: bytes | None = None


def _duration(rounds: int, period_ms: int) -> str:
    seconds = rounds * period_ms / 1000
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.0f} seconds"


def plan(name: str, template: str, roster: list[bytes], *, registrars: list[bytes] = (), beacon: str | None = None,
         seed_peers: list[str] = (), start_in_seconds: float = 3600.0, now: float | None = None, threshold: int = 1) -> Plan:
    """Check the inputs and lay out the charter: every parameter, with what it means."""
    from .beacon import DevBeacon, load_chain

    now = time.time() if now is None else now
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise FoundingError("The assembly needs a name of 1 to 200 characters (--name).")
    spec = load_template(template)
    beacon = beacon or spec.get("beacon", "quicknet")
    secret = None
    if beacon == "dev":
        period = int(spec.get("period_ms", 1000))
        chain, secret = DevBeacon.create(period, int(now))
    elif beacon in ("quicknet", "mainnet"):
        chain = load_chain(beacon)
    else:
        raise FoundingError(f"Unknown beacon {beacon!r}: use quicknet (3 s rounds, the default for real assemblies), "
                            "mainnet (30 s) or dev (a local test beacon you serve yourself).")
    if spec.get("beacon") == "quicknet" and beacon == "mainnet":
        raise FoundingError(f"The template {template!r} counts its windows in quicknet's 3-second rounds; on mainnet's "
                            "30-second rounds every window would last ten times longer. Use --beacon quicknet, or a "
                            "template written for mainnet.")
    start = chain.round_at(now + start_in_seconds) if not chain.dev else 2
    try:
        parliament = Parliament.from_body(canonical({**spec["parliament"], "start_round": start}))
    except KleroError as exc:
        raise FoundingError(f"The template {template!r} is not a valid parliament: {exc.message}") from None
    largest = max([s.committee for s in parliament.stages])
    if len(roster) < largest + 1:
        raise FoundingError(f"The roster has {len(roster)} keys, but the template's largest committee has {largest} seats "
                            f"and an author never sits on their own committee: collect at least {largest + 1} keys, or "
                            "use a smaller template.")
    if len(roster) < parliament.panel_size:
        raise FoundingError(f"The roster has {len(roster)} keys, fewer than the {parliament.panel_size} members of a "
                            "cut-off panel: collect more keys or use a template with smaller panels.")
    overlap = set(registrars) & set(roster)
    if len(set(registrars)) != len(registrars):
        raise FoundingError("A registrar key is given twice.")
    representation = None
    if registrars:  # registrars certify constituents, whose constituencies hold the seats after the first boundary
        from consensus.charter import Representation

        try:
            representation = Representation.from_body(canonical({**spec.get("representation", {}), "threshold": threshold}),
                                                      len(registrars))
        except KleroError as exc:
            raise FoundingError(f"The representation would be refused: {exc.message}") from None
    try:
        charter = Charter(name=name, registrars=tuple(registrars), roster=tuple(sorted(roster)), limits=Limits(),
                          beacon=chain, parliament=parliament, bootstrap=tuple(seed_peers), representation=representation)
        Charter.from_body(canonical(charter.to_body()))  # every check a replica makes of it
    except KleroError as exc:
        raise FoundingError(f"The charter would be refused: {exc.message}") from None
    p, period = parliament, chain.period_ms
    lines = [
        f"Name: {name}",
        f"Beacon: {beacon} ({period / 1000:g} s rounds){' — a dev beacon: you must serve its rounds (klero beacon serve)' if chain.dev else ''}.",
        f"Roster: {len(roster)} representatives; each key is a person who said yes to serving. They hold the seats "
        "until constituencies elect their own.",
        f"Registrars: {len(registrars)}" + (f" (they certify constituents' keys; {threshold} must agree on each)." if registrars
                                            else " (none: no constituencies; the roster holds the seats for ever)."),
        f"Starts at beacon round {start:,}" + ("" if chain.dev else f" ({time.strftime('%Y-%m-%d %H:%M', time.localtime(chain.time_of(start)))} local time)."),
        *([f"Constituencies: at most {representation.max_constituency:,} members, a seat from {representation.min_constituency:,}; "
           f"seats by {'majority endorsement' if representation.seat_rule == 'endorse' else 'lot among willing nominees'}, "
           "changing only at cycle boundaries. The roster above serves until the first seats are certified."]
          if representation else []),
        f"Cycle: {p.cycle_rounds:,} rounds ({_duration(p.cycle_rounds, period)}); a member proposes at most "
        f"{p.submissions_per_cycle} proposals and holds at most {p.max_seats} committee seats a cycle.",
    ]
    for k, s in enumerate(p.stages, 1):
        work = {"edit": "co-edits the text", "amend": "proposes and votes on amendments", "comment": "deliberates"}[s.mode]
        lines.append(f"Stage {k}, {s.name}: a committee of {s.committee} drawn by lot {work} for "
                     f"{_duration(s.work_rounds, period)}, then votes for {_duration(s.ballot_rounds, period)}; "
                     f"{s.needed} promote votes needed; the {s.slots} best supported go on.")
    lines.append(f"Plenary: every representative votes yes or no for {_duration(p.plenary.ballot_rounds, period)}; "
                 f"quorum {p.plenary.quorum_permille / 10:g}% of the roster.")
    lines.append(f"Deadlines: settled by panels of {p.panel_size} drawn by lot; a panel that does not decide within "
                 f"{_duration(p.panel_rounds, period)} gives way to a fresh one.")
    lines.append(f"Seed peers: {', '.join(seed_peers) if seed_peers else 'none (members exchange addresses themselves)'}.")
    if overlap:
        lines.append(f"Note: {len(overlap)} registrar key(s) also sit on the roster; that is allowed, but a registrar "
                     "who is also a representative certifies their own voters.")
    return Plan(charter, lines, secret)


def sign(key, charter: Charter) -> bytes:
    """The charter event, signed by the organiser (its hash is the assembly's id)."""
    return sign_event(key, assembly=NO_ASSEMBLY, seq=1, prev=None, kind="charter", body=charter)


def charter_from(source: str, *, fetch: bool = False) -> bytes:
    """The charter wire of a charter file, or (``fetch``) as the node at address ``source`` sends
    it.  The caller must check its id against the one the organiser published."""
    from consensus.events import decode_charter

    from .audit import _leading_charter, find_charters

    if not fetch:
        charters = _leading_charter(source) or find_charters(source)
        if len(charters) != 1:
            raise FoundingError(f"{source} must hold exactly one assembly's charter (it holds {len(charters)}).")
        return charters[0]
    from .node import fetch_charter

    wire = fetch_charter(source)
    try:
        decode_charter(wire)
    except KleroError as exc:
        raise FoundingError(f"The node at {source} sent no valid charter ({exc.message}); ask your organiser for the file.") from None
    return wire


def join(p, wire: bytes, *, assembly: str | None = None, bootstrap: tuple[str, ...] = ()) -> tuple[Charter, bool]:
    """Start profile ``p``'s replica of the assembly the charter ``wire`` founds; refused if its id
    does not start with ``assembly`` (the id the organiser published).  Returns the charter and
    whether the profile's key holds a seat.  ``bootstrap`` addresses are saved in its settings."""
    from consensus.events import event_id

    from .store import ReplicaStore

    if p.replica_path.exists():
        with ReplicaStore(p.replica_path) as store:
            raise FoundingError(f"Profile {p.name!r} already holds the assembly {store.replica.charter.name!r} "
                                f"({store.assembly.hex()[:16]}…); create another profile to join a second one.")
    found = event_id(wire)
    if assembly and not found.hex().startswith(assembly.strip().lower()):
        raise FoundingError(f"This charter founds the assembly {found.hex()}, not {assembly}: do not join it; "
                            "ask your organiser for the right charter.")
    with ReplicaStore.create(p.replica_path, wire) as store:
        charter = store.replica.charter
        seated = p.public_key() in set(charter.roster)
    if bootstrap:
        settings = p.settings()
        settings["bootstrap"] = sorted(set(settings.get("bootstrap", [])) | set(bootstrap))
        p.settings_path.write_text(json.dumps(settings, indent=2) + "\n")
    return charter, seated
