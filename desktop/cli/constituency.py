"""Constituents, registrars and public records on the command line: ``klero constituency …``,
``klero registrar …``, ``klero absent``, ``klero roster``, ``klero record`` and
``klero verify-record``.  Thin calls into the service (``p2p.constituents``), inside the running
node when there is one, like every act (``desktop.cli.legislate``)."""

from __future__ import annotations

import sys
from pathlib import Path

from .legislate import _emit, _run, _said


def _short(key: str | None) -> str:
    return f"{key[:12]}…" if key else "nobody"


# ---------------------------------------------------------------------- constituency


def cmd_list(args) -> int:
    rows = _run(args, False, lambda s: s.constituencies())

    def human(rows):
        if not rows:
            print("No constituency yet. Found one: klero constituency found NAME --statement TEXT.")
        for g in rows:
            mark = "*" if g["mine"] else " "
            seat = f"seat: {_short(g['holder'])}" if g["holder"] else "no seat"
            print(f"{mark} {g['id'][:12]}  {g['name']!r}: {g['members']} members, {seat}; next boundary: "
                  f"{_short(g['next_holder']) if g['next_holder'] else 'no seat'} ({g['next']})")
    return _emit(args, rows, human)


def cmd_show(args) -> int:
    g = _run(args, False, lambda s: s.constituency(ref=args.constituency))

    def human(g):
        print(f"{g['name']} ({g['id'][:12]}…): {g['members']} members (a seat needs {g['min']}, at most {g['max']}).")
        if g["statement"]:
            print(f"  {g['statement']}")
        print(f"  Seat now: {_short(g['holder'])}.  At the next boundary: "
              f"{_short(g['next_holder']) if g['next_holder'] else 'no seat'} ({g['next']}).")
        for m in g["members_list"][:40]:
            tags = [t for t, on in (("holds the seat", m["holder"]), ("willing to serve", m["willing"])) if on]
            print(f"  {m['key'][:12]}…  endorsed by {m['support']}" + (f"  ({', '.join(tags)})" if tags else ""))
        if len(g["members_list"]) > 40:
            print(f"  … and {len(g['members_list']) - 40} more (--json lists them all).")
        if g["thread"]:
            print("  Thread (signed and public):")
            for p in g["thread"][-10:]:
                who = "representative" if p["by_representative"] else _short(p["author"])
                print(f"    [{p['id'][:8]}] {who}: {p['text']}" + (f"  (answers {p['reply'][:8]})" if p["reply"] else ""))
    return _emit(args, g, human)


def cmd_me(args) -> int:
    st = _run(args, False, lambda s: s.standing())

    def human(st):
        if not st.get("constituencies"):
            print("This assembly has no constituencies: its charter's roster holds every seat.")
            return
        cert = (f"certified by {len(st['registrars'])} registrar(s) (needs {st['threshold']})" if st["certified"]
                else "not certified: give a registrar your key (klero whoami) and proof of eligibility")
        print(f"Your key {st['key'][:16]}…: {cert}.")
        if st["constituency"]:
            print(f"Member of {st['constituency_name']!r} ({st['constituency'][:12]}); endorsing {_short(st['endorsing'])}.")
        else:
            print("Not a member of any constituency (klero constituency list, then join).")
        print(f"Willing to serve: {'yes' if st['willing'] else 'no'}.  Seated this cycle: {'yes' if st['seated'] else 'no'}; "
              f"at the next boundary: {'yes' if st['seated_next'] else 'no'}.")
        for p in st["problems"]:
            print(f"  An act of yours that counts for nothing ({p['kind']}): {p['reason']}")
    return _emit(args, st, human)


def cmd_found(args) -> int:
    return _emit(args, _run(args, True, lambda s: s.found(name=args.name, statement=args.statement or "")), _said)


def cmd_join(args) -> int:
    return _emit(args, _run(args, True, lambda s: s.join(ref=args.constituency)), _said)


def cmd_leave(args) -> int:
    return _emit(args, _run(args, True, lambda s: s.leave()), _said)


def cmd_endorse(args) -> int:
    return _emit(args, _run(args, True, lambda s: s.endorse(member=args.member)), _said)


def cmd_serve(args) -> int:
    return _emit(args, _run(args, True, lambda s: s.serve(answer=args.answer)), _said)


def cmd_ask(args) -> int:
    return _emit(args, _run(args, True, lambda s: s.ask(text=args.text, reply=args.reply)), _said)


def cmd_absent(args) -> int:
    return _emit(args, _run(args, True, lambda s: s.absent(cycle=args.cycle)), _said)


def cmd_roster(args) -> int:
    r = _run(args, False, lambda s: s.roster(cycle=args.cycle))

    def human(r):
        print(f"Cycle {r['cycle']}: {len(r['seats'])} seats, {r['source']}.")
        for row in r["seats"]:
            print(f"  {row['key'][:16]}…  " + (f"{row['name']!r}" if row["name"] else "(founding roster)"))
    return _emit(args, r, human)


def cmd_certify(args) -> int:
    return _emit(args, _run(args, True, lambda s: s.certify(subject=args.key, person=args.person, replaces=args.replaces)), _said)


def cmd_revoke(args) -> int:
    return _emit(args, _run(args, True, lambda s: s.revoke(subject=args.key)), _said)


# ---------------------------------------------------------------------- public records


def _service_from_log(path: str):
    from consensus.errors import KleroError
    from p2p.audit import find_charters
    from p2p.logfile import LogDamage, read_items
    from consensus.replica import Replica
    from p2p.service import Service

    if not Path(path).is_file():
        raise KleroError(f"There is no log file at {path}.")
    charters = find_charters(path)
    if len(charters) != 1:
        raise KleroError(f"{path} holds {len(charters)} charters; a record is made from the log of one assembly.")
    replica = Replica(charters[0])
    for _ in range(2):  # a second pass takes what waited for an item later in the file
        for item in read_items(path):
            if isinstance(item, LogDamage):
                break
            replica.add_item(item[2])
    return Service(replica, None)


def cmd_record(args) -> int:
    from consensus.errors import KleroError

    if bool(args.profile) == bool(args.log):
        raise KleroError("Give either --profile P (your replica) or --log FILE (an exported log).")
    if args.log:
        text = _service_from_log(args.log).public_record(key=args.key, format=args.format)
    else:
        text = _run(args, False, lambda s: s.public_record(key=args.key, format=args.format))
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"Wrote the record of {args.key[:16]}… to {args.output} ({args.format}); check it with "
              f"klero verify-record {args.output}.", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_verify_record(args) -> int:
    import json

    from consensus.errors import KleroError
    from p2p.record import load, verify

    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KleroError(f"Cannot read {args.file}: {getattr(exc, 'strerror', None) or exc}.") from None
    record = load(text)
    out = verify(record)
    out["key"], out["assembly"] = record.get("key"), record.get("assembly")
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        if out["ok"]:
            print(f"The record of {record['key'][:16]}… checks: {out['checked']} signed events in {out['entries']} entries, "
                  f"all of assembly {record['assembly'][:16]}… and saying what the entries claim.")
        else:
            print(f"The record of {record.get('key', '?')[:16]}… does NOT check ({len(out['problems'])} problem(s)):")
            for p in out["problems"]:
                print(f"  {p}")
        print(f"Not checked offline: {out['not_checked']}")
    return 0 if out["ok"] else 1


# ---------------------------------------------------------------------- parser


def register(sub, profile_arg) -> None:
    def common(p, act=False):
        profile_arg(p)
        p.add_argument("--json", action="store_true", help="print JSON instead of sentences")
        if act:
            p.add_argument("--passphrase-file", help="read the passphrase from this file (else KLERO_PASSPHRASE or a prompt)")

    c = sub.add_parser("constituency", help="constituencies: list, show, found, join, leave, endorse, serve, ask, me")
    cs = c.add_subparsers(dest="constituency_command", metavar="ACTION", required=True)
    ref = ("constituency", {"help": "its id (first characters) or exact name"})
    # (action, help, positional/optional arguments, handler, signs?)
    for action, text, arguments, func, act in (
        ("list", "every constituency, its seat and what the next boundary will make of it", (), cmd_list, False),
        ("show", "one constituency (yours by default): members, endorsements, seat, thread",
         (("constituency", {"nargs": "?", "help": "its id (first characters) or exact name"}),), cmd_show, False),
        ("me", "your standing: certified, member of, endorsing, willing, seated", (), cmd_me, False),
        ("found", "found a constituency and become its first member",
         (("name", {}), ("--statement", {"help": "its statement of common interest"})), cmd_found, True),
        ("join", "join a constituency (one at a time)", (ref,), cmd_join, True),
        ("leave", "leave your constituency", (), cmd_leave, True),
        ("endorse", "endorse (or, under the draw rule, nominate) a member: a key, or 'me'", (("member", {}),), cmd_endorse, True),
        ("serve", "say whether you are willing to hold the seat: yes or no",
         (("answer", {"choices": ("yes", "no")}),), cmd_serve, True),
        ("ask", "post in your constituency's thread (signed and public); --reply ID answers a post",
         (("text", {}), ("--reply", {"help": "the id (first characters) of the post this answers"})), cmd_ask, True),
    ):
        p = cs.add_parser(action, help=text)
        for name, options in arguments:
            p.add_argument(name, **options)
        common(p, act)
        p.set_defaults(func=func)

    p = sub.add_parser("absent", help="declare absence for a coming cycle: its committee draws skip you")
    p.add_argument("cycle", type=int)
    common(p, True)
    p.set_defaults(func=cmd_absent)
    p = sub.add_parser("roster", help="who holds the seats in a cycle, and who certified them")
    p.add_argument("--cycle", type=int)
    common(p)
    p.set_defaults(func=cmd_roster)

    r = sub.add_parser("registrar", help="registrars: certify or revoke a constituent's key")
    rs = r.add_subparsers(dest="registrar_command", metavar="ACTION", required=True)
    p = rs.add_parser("certify", help="attest that KEY belongs to one eligible person")
    p.add_argument("key")
    p.add_argument("--person", help="your pseudonymous handle for the person (64 hex): the same handle twice shows a duplicate")
    p.add_argument("--replaces", help="the person's old key (a lost device): the new key keeps its membership")
    common(p, True)
    p.set_defaults(func=cmd_certify)
    p = rs.add_parser("revoke", help="withdraw your certification of KEY")
    p.add_argument("key")
    common(p, True)
    p.set_defaults(func=cmd_revoke)

    p = sub.add_parser("record", help="a representative's signed record, checkable offline (JSON, Atom feed or HTML)")
    p.add_argument("key", help="the representative's public key (64 hex)")
    p.add_argument("--profile", help="read your replica")
    p.add_argument("--log", help="or read an exported log")
    p.add_argument("--format", choices=("atom", "json", "html"), default="json")
    p.add_argument("-o", "--output", help="write to this file (default: standard output)")
    p.set_defaults(func=cmd_record)
    p = sub.add_parser("verify-record", help="check a record from `klero record` offline")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify_record)
