"""A representative's public record, portable and checkable offline (DESIGN.md §10, issue 15).

``build`` collects what one key did — seats held, votes with the revision each named,
attendance, proposals, texts written, absences declared, answers in constituency threads — and
puts beside each entry the signed events that prove it: the key's own events, and for a seat
the boundary's commit certificate (the proposal, the precommits and the cut-offs it used).  The
charter travels with it, so a third party needs nothing else to check the signatures, the
assembly and each claim (``verify``).  What only a whole log can prove (that a panel was the
right draw, that attendance counts every ballot) is said in the record, not glossed over.

Three renderings of one record: JSON (the record itself), Atom (a feed readers show; each entry
carries its evidence in a ``klero:evidence`` element) and HTML (a page; each entry carries its
evidence in a ``data-evidence`` attribute).  ``verify`` reads any of the three.
"""

from __future__ import annotations

import base64
import html
import json
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter

from consensus.agreement import quorum_size, value_id
from consensus.errors import InvalidInput, KleroError
from consensus.events import decode_charter, event_id, parse_body, split_wire, verify_signature
from consensus.panel import decode_value, deadline_key, majority

FORMAT = "klero-record/1"
ATOM = "http://www.w3.org/2005/Atom"
NS = "urn:kleroterion:record:1"
FORMATS = ("json", "atom", "html")


class RecordError(KleroError):
    """A record file that cannot be read or checked."""


def _b64(wire: bytes) -> str:
    return base64.b64encode(wire).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise RecordError("An entry's evidence is not base64.") from None


# ---------------------------------------------------------------------- building


def build(service, key: bytes, *, now: float | None = None) -> dict:
    """The record of ``key`` from a service's replica and evaluation."""
    result = service.result()  # first: it may replace the service's legislature
    replica, leg = service.replica, service.leg
    title = lambda pid: replica.records[pid].body.title if pid in replica.records else pid.hex()[:12]  # noqa: E731
    wires = _wires_by_id(replica)
    entries: list[dict] = []

    def entry(kind: str, round_: int, text: str, events: list[bytes], **claim) -> None:
        entries.append({"kind": kind, "round": round_, "text": text, "claim": claim,
                        "events": [_b64(w) for w in events]})

    mine = sorted((r for r in replica.records.values() if r.author == key), key=lambda r: r.seq)
    for r in mine:
        b = r.body
        if r.kind == "proposal.submit":
            entry("proposal", r.round, f"Proposed {b.title!r}.", [wires[r.id]], proposal=r.id.hex(), title=b.title)
        elif r.kind == "vote":
            amend = f" on an amendment" if b.amendment else ""
            entry("vote", r.round, f"Voted {b.choice}{amend} on {title(b.proposal)!r} (cycle {b.cycle}, stage {b.stage}), "
                                   f"naming the revision {', '.join(h.hex()[:10] for h in b.revision)}.", [wires[r.id]],
                  proposal=b.proposal.hex(), choice=b.choice, cycle=b.cycle, stage=b.stage,
                  revision=[h.hex() for h in b.revision], amendment=b.amendment.hex() if b.amendment else None)
        elif r.kind == "absence":
            entry("absence", r.round, f"Declared absence for cycle {b.cycle}.", [wires[r.id]], cycle=b.cycle)
        elif r.kind == "amendment.propose":
            entry("amendment", r.round, f"Proposed an amendment to {title(b.proposal)!r}: {b.summary}", [wires[r.id]],
                  proposal=b.proposal.hex())
    changes: dict[bytes, list] = {}
    for r in mine:
        if r.kind == "doc.change":
            changes.setdefault(r.body.proposal, []).append(r)
    for pid, rs in sorted(changes.items(), key=lambda kv: kv[1][0].round):
        entry("text", rs[-1].round, f"Wrote {len(rs)} change(s) to the text of {title(pid)!r}.", [wires[r.id] for r in rs],
              proposal=pid.hex(), changes=len(rs))
    # answers in constituency threads (and the questions they answer)
    for p in service.posts():
        if p["author"] == key.hex():
            question = next((q for q in service.posts() if q["id"] == p["reply"]), None) if p["reply"] else None
            events = [wires[bytes.fromhex(p["id"])]] + ([wires[bytes.fromhex(question["id"])]] if question else [])
            entry("answer" if question else "post", p["round"], (f"Answered: {p['text']}" if question else f"Posted: {p['text']}"),
                  [w for w in events if w], text=p["text"], question=question["text"] if question else None)
    # seats: each cycle the key was on the certified roster, with the boundary's certificate
    for cycle, roster in sorted(result.rosters.items()):
        if cycle == 0 or key not in roster:
            continue
        d = leg.decision("intake", cycle - 1, 0)
        if d is None or d.certificate is None:
            continue
        cert = d.certificate
        name = deadline_key("intake", cycle - 1, 0, d.generation)
        panel_msgs = [r for r in list(replica.records.values()) + list(replica.evidence.values())
                      if r.kind in ("cutoff", "propose", "precommit") and r.body.deadline == name]
        precommits = [r for r in panel_msgs if r.kind == "precommit" and r.body.round == cert.round and r.author in set(cert.signers)]
        value = precommits[0].body.value if precommits else None
        proposal = [r for r in panel_msgs if r.kind == "propose" and r.body.round == cert.round
                    and value_id(r.body.value) == value][:1]
        used = set(decode_value(proposal[0].body.value)[0]) if proposal else set()
        cutoffs = [r for r in panel_msgs if r.kind == "cutoff" and r.id in used]
        entry("seat", leg.cycle_start(cycle), f"Seated in cycle {cycle}, certified at the boundary of cycle {cycle - 1} by "
                                              f"{len(cert.signers)} of a {len(d.panel)}-member panel.",
              [wires[r.id] for r in proposal + precommits + cutoffs if r.id in wires],
              cycle=cycle, deadline=name.hex(), panel=[m.hex() for m in d.panel])
    # attendance: derived from the whole log, said so
    sat = [x for x in result.draws if key in x.members]
    closed = [x for x in sat if service.horizon >= leg.windows(x.cycle, x.stage)[2]]
    voted = {(r.body.proposal, r.body.cycle, r.body.stage) for r in mine if r.kind == "vote" and r.body.amendment is None}
    came = sum(1 for x in closed if (x.proposal, x.cycle, x.stage) in voted)
    entry("attendance", service.horizon, f"Voted on {came} of the {len(closed)} closed committee ballots they were drawn for.",
          [], sat=len(closed), voted=came, derived="Attendance follows from the draws, which only the whole log proves: "
                                                  "check it with `klero verify LOG`.")
    entries.sort(key=lambda e: (e["round"], e["kind"]))
    for i, e in enumerate(entries):
        e["id"] = f"{e['kind']}-{i}-{(e['events'][0][:16] if e['events'] else str(e['round']))}"
    return {
        "format": FORMAT, "assembly": replica.assembly.hex(), "name": replica.charter.name, "key": key.hex(),
        "charter": _b64(replica.charter_event.wire), "round": service.horizon,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now if now is not None else time.time())),
        "counts": dict(Counter(e["kind"] for e in entries)), "entries": entries,
    }


def _wires_by_id(replica) -> dict[bytes, bytes]:
    """Wires of the records (and evidence), read from the ledger."""
    out: dict[bytes, bytes] = {}
    ledger = replica.ledger
    db = getattr(ledger, "db", None)
    if db is not None:
        ledger.flush()
        for rid, wire in db.conn.execute("SELECT id, wire FROM events"):
            out[rid] = wire
        for first, second in db.conn.execute("SELECT first, second FROM forks"):
            out[event_id(first)], out[event_id(second)] = first, second
        return out
    for stored in ledger.events.values():
        out[stored.id] = stored.wire
    for pair in ledger.forks.values():
        for w in pair:
            out[event_id(w)] = w
    return out


# ---------------------------------------------------------------------- rendering


def render(record: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(record, indent=1) + "\n"
    if fmt == "atom":
        return _atom(record)
    if fmt == "html":
        return _html(record)
    raise RecordError(f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}.")


def _evidence(record: dict, e: dict) -> str:
    return base64.b64encode(json.dumps(e, sort_keys=True).encode()).decode("ascii")


def _atom(record: dict) -> str:
    ET.register_namespace("", ATOM)
    ET.register_namespace("klero", NS)
    feed = ET.Element(f"{{{ATOM}}}feed")
    ET.SubElement(feed, f"{{{ATOM}}}title").text = f"Record of {record['key'][:16]}… in {record['name']}"
    ET.SubElement(feed, f"{{{ATOM}}}id").text = f"urn:kleroterion:{record['assembly']}:record:{record['key']}"
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = record["generated"]
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = record["key"]
    ET.SubElement(feed, f"{{{ATOM}}}subtitle").text = (
        "Every entry carries the signed events that prove it; check them offline with `klero verify-record`.")
    meta = ET.SubElement(feed, f"{{{NS}}}record", {"format": FORMAT, "assembly": record["assembly"], "key": record["key"],
                                                   "round": str(record["round"]), "name": record["name"]})
    meta.text = record["charter"]
    for e in reversed(record["entries"]):  # newest first, as feeds are read
        item = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(item, f"{{{ATOM}}}title").text = e["text"][:120]
        ET.SubElement(item, f"{{{ATOM}}}id").text = f"urn:kleroterion:{record['assembly']}:{record['key'][:16]}:{e['id']}"
        ET.SubElement(item, f"{{{ATOM}}}updated").text = record["generated"]
        ET.SubElement(item, f"{{{ATOM}}}category", {"term": e["kind"]})
        content = ET.SubElement(item, f"{{{ATOM}}}content", {"type": "text"})
        content.text = e["text"] + f" (beacon round {e['round']:,})"
        ET.SubElement(item, f"{{{NS}}}evidence").text = _evidence(record, e)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode") + "\n"


def _html(record: dict) -> str:
    rows = []
    for e in record["entries"]:
        rows.append(f'<article class="entry {html.escape(e["kind"])}" data-evidence="{_evidence(record, e)}">'
                    f'<h3>{html.escape(e["kind"].capitalize())} · round {e["round"]:,}</h3><p>{html.escape(e["text"])}</p>'
                    f'<p class="proof">{len(e["events"])} signed event(s)'
                    f'{" · " + html.escape(e["claim"]["derived"]) if e["claim"].get("derived") else ""}</p></article>')
    counts = ", ".join(f"{n} {k}" for k, n in sorted(record["counts"].items()))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Record of {record["key"][:16]}…</title>'
            '<style>body{font-family:sans-serif;max-width:46em;margin:2em auto;line-height:1.45}'
            '.entry{border-top:1px solid #ccc;padding:.4em 0}.proof{color:#555;font-size:.9em}</style></head><body>'
            f'<h1>Record of {html.escape(record["key"][:16])}…</h1><p>{html.escape(record["name"])} · assembly '
            f'{record["assembly"][:16]}… · up to beacon round {record["round"]:,} · {html.escape(counts)}</p>'
            '<p>Every entry carries the signed events that prove it. Check this page offline with '
            '<code>klero verify-record FILE</code>.</p>'
            f'<div id="klero-record" data-format="{FORMAT}" data-assembly="{record["assembly"]}" data-key="{record["key"]}" '
            f'data-round="{record["round"]}" data-charter="{record["charter"]}" data-name="{html.escape(record["name"])}"></div>'
            + "".join(rows) + "</body></html>\n")


# ---------------------------------------------------------------------- reading and checking


def load(text: str) -> dict:
    """A record from any of its renderings."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            record = json.loads(text)
        except ValueError:
            raise RecordError("The file looks like JSON but does not parse.") from None
    elif stripped.startswith("<?xml") or stripped.startswith("<feed"):
        record = _from_atom(text)
    elif "<html" in stripped[:200].lower() or stripped.lower().startswith("<!doctype"):
        record = _from_html(text)
    else:
        raise RecordError("The file is not a record: expected JSON, an Atom feed or an HTML page from `klero record`.")
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("entries"), list):
        raise RecordError(f"The file is not a {FORMAT} record.")
    return record


def _from_atom(text: str) -> dict:
    try:
        feed = ET.fromstring(text)
    except ET.ParseError as exc:
        raise RecordError(f"The Atom feed does not parse ({exc}).") from None
    meta = feed.find(f"{{{NS}}}record")
    if meta is None:
        raise RecordError("The feed carries no Kleroterion record (no klero:record element).")
    entries = [_entry(e.text or "") for e in feed.iter(f"{{{NS}}}evidence")]
    entries.reverse()
    return {"format": meta.get("format"), "assembly": meta.get("assembly"), "key": meta.get("key"), "name": meta.get("name"),
            "round": int(meta.get("round") or 0), "charter": (meta.text or "").strip(), "entries": entries}


def _from_html(text: str) -> dict:
    head = re.search(r'<div id="klero-record"([^>]*)>', text)
    if head is None:
        raise RecordError("The page carries no Kleroterion record.")
    attrs = dict(re.findall(r'data-([a-z]+)="([^"]*)"', head.group(1)))
    entries = [_entry(m) for m in re.findall(r'data-evidence="([^"]*)"', text)]
    return {"format": attrs.get("format"), "assembly": attrs.get("assembly"), "key": attrs.get("key"),
            "name": html.unescape(attrs.get("name", "")), "round": int(attrs.get("round", "0") or 0),
            "charter": attrs.get("charter", ""), "entries": entries}


def _entry(text: str) -> dict:
    try:
        e = json.loads(base64.b64decode(text.strip(), validate=True))
    except ValueError:
        raise RecordError("An entry's evidence does not decode.") from None
    if not isinstance(e, dict):
        raise RecordError("An entry's evidence is not a map.")
    return e


def verify(record: dict) -> dict:
    """Check a record offline: the charter, every event's signature and assembly, that the events
    are the key's and say what each entry claims, and each seat's certificate.  Returns
    ``{"ok", "checked", "problems", "not_checked"}``."""
    problems: list[str] = []
    try:
        charter = decode_charter(_unb64(record.get("charter", "")))
    except InvalidInput as exc:
        raise RecordError(f"The record's charter is not valid: {exc.rejection.reason}") from None
    if charter.id.hex() != record.get("assembly"):
        problems.append("The charter is not the one of the assembly the record names.")
    limits = charter.body.charter.limits
    try:
        key = bytes.fromhex(record.get("key", ""))
    except ValueError:
        key = b""
    checked = 0
    for e in record["entries"]:
        label = f"{e.get('kind', '?')} entry at round {e.get('round', '?')}"
        events = []
        for raw in e.get("events", []):
            try:
                wire = _unb64(raw)
                encoding, signature, fields = split_wire(wire, 1 << 24)
                verify_signature(fields["author"], encoding, signature)
                body = parse_body(fields["kind"], fields["body"], limits)
            except (InvalidInput, RecordError, KeyError) as exc:
                reason = exc.rejection.reason if isinstance(exc, InvalidInput) else str(exc)
                problems.append(f"The {label} carries an event that does not check: {reason}")
                continue
            if fields["assembly"] != charter.id:
                problems.append(f"The {label} carries an event of another assembly.")
                continue
            events.append((event_id(wire), fields, body))
        checked += len(events)
        problems += _check_claim(e, events, key, label, charter)
    return {"ok": not problems, "checked": checked, "entries": len(record["entries"]), "problems": problems,
            "not_checked": "That each seat's panel was the right lot-drawn panel, and that attendance counts every ballot, "
                           "follow only from the whole log: run `klero verify LOG` for those."}


def _check_claim(e: dict, events: list, key: bytes, label: str, charter) -> list[str]:
    kind, claim = e.get("kind"), e.get("claim", {})
    own = [(i, f, b) for i, f, b in events if f["author"] == key]
    if kind in ("proposal", "vote", "absence", "amendment", "text", "post", "answer"):
        if not own:
            return [f"The {label} carries no event signed by the record's key."]
        i, f, b = own[0]
        if kind == "vote" and (b.choice != claim.get("choice") or [h.hex() for h in b.revision] != claim.get("revision")
                               or b.proposal.hex() != claim.get("proposal")):
            return [f"The {label} claims a vote its signed event does not say."]
        if kind == "proposal" and (f["kind"] != "proposal.submit" or b.title != claim.get("title")):
            return [f"The {label} claims a proposal its signed event does not say."]
        if kind == "absence" and (f["kind"] != "absence" or b.cycle != claim.get("cycle")):
            return [f"The {label} claims an absence its signed event does not say."]
        if kind == "text" and (len(own) != claim.get("changes") or any(ff["kind"] != "doc.change" for _, ff, _ in own)):
            return [f"The {label} claims changes its signed events do not show."]
        if kind in ("post", "answer") and (f["kind"] != "constituency.post" or b.text != claim.get("text")):
            return [f"The {label} claims a post its signed event does not say."]
        return []
    if kind == "seat":
        return _check_seat(e, events, key, label)
    return []


def _check_seat(e: dict, events: list, key: bytes, label: str) -> list[str]:
    claim = e.get("claim", {})
    try:
        panel = [bytes.fromhex(m) for m in claim.get("panel", [])]
        name = bytes.fromhex(claim.get("deadline", ""))
    except ValueError:
        return [f"The {label} names its panel or deadline wrongly."]
    members = set(panel)
    need = quorum_size(len(panel)) if panel else 1
    precommits: dict[tuple, set] = {}
    proposals, cutoffs = [], {}
    for i, f, b in events:
        if f["author"] not in members or getattr(b, "deadline", None) != name:
            continue
        if f["kind"] == "precommit" and b.value is not None:
            precommits.setdefault((b.round, b.value), set()).add(f["author"])
        elif f["kind"] == "propose":
            proposals.append(b)
        elif f["kind"] == "cutoff":
            cutoffs[i] = (f["author"], b.cutoff)
    for (rnd, vid), signers in precommits.items():
        if len(signers) < need:
            continue
        for p in proposals:
            if p.round != rnd or value_id(p.value) != vid:
                continue
            decoded = decode_value(p.value)
            if decoded is None or any(c not in cutoffs for c in decoded[0]):
                return [f"The {label}'s certificate does not carry the cut-offs its value uses."]
            used = [cutoffs[c][1] for c in decoded[0]]
            if len({cutoffs[c][0] for c in decoded[0]}) < need:
                return [f"The {label}'s value uses cut-offs of too few panel members."]
            decided = majority(used, {})
            if decided.seats is None or key not in decided.seats:
                return [f"The {label}'s certificate does not seat the record's key."]
            return []
    return [f"The {label} carries no quorum of precommits ({need} of its {len(panel)}-member panel) for one value."]
