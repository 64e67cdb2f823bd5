"""A representative acting from the command line: inbox, propose, edit, comment, amend, vote,
withdraw, show, diff, blame, explain.  Each command is a thin call into the representative's service
(``p2p.service``): inside the profile's running node if there is one (so the act is gossiped at
once and one process signs), else over the replica here (the act then waits in the replica and
goes out when the node next runs)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


class _Remote:
    """The service inside a running node, called over its door (p2p.control)."""

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        return lambda **kwargs: self._call(name, kwargs)

    def _call(self, name: str, kwargs: dict, wait_s: float = 30.0):
        """A call; an act refused because the node is still catching up is retried (for up to
        ``wait_s``), as a person would, after saying so once."""
        import time

        from p2p.service import CATCHING_UP, ActError

        deadline, said = time.monotonic() + wait_s, False
        while True:
            try:
                return self.client.call(name, **kwargs)
            except ActError as exc:
                if not str(exc).startswith(CATCHING_UP) or time.monotonic() > deadline:
                    raise
                if not said:
                    print("Waiting for your node to catch up with the assembly ...", file=sys.stderr)
                    said = True
                time.sleep(0.5)


class _Session:
    """A service for one command, and what to say and close afterwards."""

    def __init__(self, args, act: bool):
        from p2p import control, profile

        self.profile = p = profile.existing(args.profile)
        self.store = None
        client = control.connect(p.path)
        if client is not None:
            self.service, self.where = _Remote(client), "node"
            return
        from consensus.errors import KleroError
        from p2p.service import Service
        from p2p.store import ReplicaStore

        if not p.replica_path.exists():
            raise KleroError(f"Profile {p.name!r} has no replica yet: join an assembly first "
                             f"(klero join --profile {p.name} CHARTER.log).")
        self.store = ReplicaStore(p.replica_path)
        try:
            key = profile.unlock(p, profile.read_passphrase(getattr(args, "passphrase_file", None))) if act else None
        except BaseException:
            self.store.close()
            raise
        self.service = Service(self.store.replica, key, add=self.store.add_item, outbox=p.path / "outbox.cbor",
                               me=p.public_key())
        self.where = "here"

    def close(self, acted: bool = False) -> None:
        if self.store is not None:
            self.store.flush()
            self.store.close()
            if acted:
                print(f"Your node is not running: the act is stored in your replica and goes out when it runs "
                      f"(klero node --profile {self.profile.name}).", file=sys.stderr)


def _run(args, act: bool, call):
    session = _Session(args, act)
    ok = False
    try:
        out = call(session.service)
        ok = True
        return out
    finally:
        session.close(acted=act and ok)


def _emit(args, value, human) -> int:
    if getattr(args, "json", False):
        print(json.dumps(value, indent=2))
    else:
        human(value)
    return 0


def _read_text(path: str | None) -> str | None:
    if path is None:
        return None
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        from consensus.errors import KleroError

        raise KleroError(f"Cannot read {path}: {getattr(exc, 'strerror', None) or exc}.") from None


def _edit_in_editor(text: str, what: str) -> str:
    """Open $VISUAL or $EDITOR on ``text``; returns what the person saved."""
    import shlex
    import subprocess
    import tempfile

    from consensus.errors import KleroError

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        if not sys.stdin.isatty():
            raise KleroError(f"No editor to open {what} in: set $EDITOR, or give the new text with --from FILE.")
        editor = "vi"
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False, encoding="utf-8") as f:
        f.write(text)
        name = f.name
    try:
        done = subprocess.run([*shlex.split(editor), name])
        if done.returncode != 0:
            raise KleroError(f"The editor ({editor}) exited with status {done.returncode}; nothing was signed.")
        return Path(name).read_text(encoding="utf-8")
    finally:
        os.unlink(name)


def _said(value: dict) -> None:
    print(value.get("what", "Done."))


# ---------------------------------------------------------------------- commands


def cmd_inbox(args) -> int:
    where, items = _run(args, False, lambda s: (s.overview(), s.inbox()))

    def human(items):
        seat = "you hold a seat" if where["seated"] else "you hold no seat (observing)"
        print(f"{where['name']}: cycle {where['cycle']}, beacon round {where['round']:,}; {seat}."
              + (f" {where['outbox']} change(s) wait in your outbox." if where["outbox"] else ""))
        if where["waiting"]:
            print(f"Next: {where['waiting']}")
        if not items:
            print("Nothing needs you now.")
        for i in items:
            ref = f" {i['title']!r} ({i['proposal'][:8]})" if i.get("proposal") else ""
            due = f" — by {i['due']}" if i.get("due") else ""
            print(f"[{i['kind']}]{ref}{due}\n    {i['text']}")
            if i.get("why"):
                print(f"    Why you: {i['why']}")
    return _emit(args, items, human)


def cmd_propose(args) -> int:
    text = _read_text(args.text_file) or ""
    out = _run(args, True, lambda s: s.propose(title=args.title, summary=args.summary or "", text=text))
    return _emit(args, out, lambda v: print(f"{v['what']}\nProposal id: {v['proposal']}"))


def cmd_edit(args) -> int:
    def act(s):
        current = s.text(ref=args.proposal, field=args.field)
        new = _read_text(args.from_file)
        if new is None:
            new = _edit_in_editor(current, f"the {args.field} of {args.proposal}")
        return s.edit(ref=args.proposal, text=new, field=args.field)

    return _emit(args, _run(args, True, act), _said)


def cmd_comment(args) -> int:
    text = args.text if args.text is not None else _read_text(args.text_file)
    if not text:
        from consensus.errors import KleroError

        raise KleroError("Give the comment's text (or --text-file FILE).")

    def act(s):
        anchor = None
        if args.quote:
            body = s.text(ref=args.proposal, field=args.field)
            at = body.find(args.quote)
            if at < 0 or body.find(args.quote, at + 1) >= 0:
                from consensus.errors import KleroError

                raise KleroError("The quoted passage must occur exactly once in the latest text; quote more of it.")
            anchor = [args.field, at, at + len(args.quote)]
        return s.comment(ref=args.proposal, text=text, reply=args.reply, anchor=anchor)

    return _emit(args, _run(args, True, act), _said)


def cmd_amend(args) -> int:
    def act(s):
        new = _read_text(args.from_file)
        if new is None:
            new = _edit_in_editor(s.text(ref=args.proposal, field=args.field), f"your amendment to {args.proposal}")
        return s.amend(ref=args.proposal, text=new, summary=args.summary, field=args.field)

    return _emit(args, _run(args, True, act), _said)


def cmd_vote(args) -> int:
    revision = args.revision.split(",") if args.revision else None
    out = _run(args, True, lambda s: s.vote(ref=args.proposal, choice=args.choice, amendment=args.amendment, revision=revision))
    return _emit(args, out, _said)


def cmd_withdraw(args) -> int:
    return _emit(args, _run(args, True, lambda s: s.withdraw(ref=args.proposal)), _said)


def cmd_show(args) -> int:
    if not args.proposal:
        rows = _run(args, False, lambda s: s.proposals())

        def table(rows):
            if not rows:
                print("No proposals yet.")
            for r in rows:
                mine = " (yours)" if r["mine"] else ""
                print(f"{r['id'][:8]}  {r['status']:<12} stage {r['stage']}  {r['title']}{mine}")

        return _emit(args, rows, table)
    revision = args.revision.split(",") if args.revision else None
    shown = _run(args, False, lambda s: s.show(ref=args.proposal, revision=revision))

    def human(v):
        print(f"{v['title']}  [{v['status']}, stage {v['stage']}]  id {v['id']}")
        print(f"by {v['author'][:16]}…, submitted at round {v['submitted_round']:,}")
        if v["summary"]:
            print(f"\n{v['summary']}")
        for h in v["history"]:
            print(f"  cycle {h['cycle']} round {h['round']:,}: {h['status']}" + (f" ({h['reason']})" if h["reason"] else ""))
        if v["text"]:
            print(f"\n--- text at revision {','.join(x[:8] for x in v['revision'])} ({len(v['changes'])} changes) ---")
            print(v["text"]["body"])
        for a in v["amendments"]:
            print(f"  amendment {a['id'][:8]} by {a['author'][:8]} (cycle {a['cycle']}): {a['summary']}")
        for b in v["ballots"]:
            print(f"  {b['kind']} ballot stage {b['stage']} cycle {b['cycle']}: {b['outcome'] or 'open'} {b['counts']}")
            for who, choice in sorted(b["votes"].items()):
                print(f"      {who[:8]} {choice}")
        for c in v["thread"]:
            where = ""
            if c.get("anchor"):
                where = " [orphaned: its passage was deleted]" if c.get("orphaned") else f" [on “{c.get('quote', '')[:40]}”]"
            reply = f" (reply to {c['reply'][:8]})" if c["reply"] else ""
            print(f"  💬 {c['id'][:8]} {c['author'][:8]} at round {c['round']:,}{reply}{where}: {c['text']}")

    return _emit(args, shown, human)


def cmd_diff(args) -> int:
    before = args.before.split(",") if args.before else None
    after = args.after.split(",") if args.after else None
    ops = _run(args, False, lambda s: s.diff(ref=args.proposal, before=before, after=after, field=args.field))

    def human(ops):
        colour = sys.stdout.isatty()
        for op, text in ops:
            if op == "=":
                print(text, end="")
            elif op == "-":
                print(f"\033[9;31m[-{text}-]\033[0m" if colour else f"[-{text}-]", end="")
            else:
                print(f"\033[4;32m{{+{text}+}}\033[0m" if colour else f"{{+{text}+}}", end="")
        print()

    return _emit(args, ops, human)


def cmd_blame(args) -> int:
    passages = _run(args, False, lambda s: s.blame(ref=args.proposal, field=args.field))

    def human(passages):
        for p in passages:
            text = p["text"].replace("\n", "⏎\n" + " " * 30)
            print(f"{p['author'][:8]} round {p['round'] or '?':>10}  {text}")

    return _emit(args, passages, human)


def cmd_explain(args) -> int:
    out = _run(args, False, lambda s: s.explain(ref=args.proposal, stage=args.stage))

    def human(v):
        print(f"Committee of stage {v['stage']}, cycle {v['cycle']}: drawn from beacon round {v['beacon_round']:,}")
        print(f"randomness {v['randomness'][:32]}…  seed {v['seed'][:32]}…  roster of {v['roster_size']}")
        for pick in v["picks"]:
            print(f"  pick {pick['position']}: roster position {pick['roster_index']} = {pick['key'][:16]}… {pick['outcome']}")
        if v["sentence"]:
            print(v["sentence"])

    return _emit(args, out, human)


def register(sub, profile_arg) -> None:
    def common(p, act: bool):
        profile_arg(p)
        if act:
            p.add_argument("--passphrase-file", help="if your node is not running: read the passphrase from this file")
        p.add_argument("--json", action="store_true", help="print one JSON value")

    p = sub.add_parser("inbox", help="what needs you now: seats, votes, amendments, replies, your proposals")
    common(p, False)
    p.set_defaults(func=cmd_inbox)

    p = sub.add_parser("propose", help="submit a proposal (title, summary, first text) to the next intake")
    common(p, True)
    p.add_argument("--title", required=True)
    p.add_argument("--summary", help="one paragraph: what it does and why")
    p.add_argument("--text-file", metavar="FILE", help="the first text (Markdown; '-' reads standard input)")
    p.set_defaults(func=cmd_propose)

    p = sub.add_parser("edit", help="edit a proposal's text in $EDITOR; the difference becomes signed changes")
    common(p, True)
    p.add_argument("proposal", help="the proposal's id (its first characters suffice)")
    p.add_argument("--field", default="body", choices=["title", "summary", "body"])
    p.add_argument("--from", dest="from_file", metavar="FILE", help="take the new text from FILE instead of $EDITOR")
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("comment", help="comment on a proposal, reply to a comment, or comment on a passage")
    common(p, True)
    p.add_argument("proposal")
    p.add_argument("text", nargs="?")
    p.add_argument("--text-file", metavar="FILE")
    p.add_argument("--reply", metavar="COMMENT", help="the id (or its start) of the comment you answer")
    p.add_argument("--quote", metavar="PASSAGE", help="anchor the comment to this passage of the latest text")
    p.add_argument("--field", default="body", choices=["title", "summary", "body"])
    p.set_defaults(func=cmd_comment)

    p = sub.add_parser("amend", help="propose an amendment: edit a copy of the text the committee received")
    common(p, True)
    p.add_argument("proposal")
    p.add_argument("--summary", required=True, help="what the amendment changes and why")
    p.add_argument("--field", default="body", choices=["title", "summary", "body"])
    p.add_argument("--from", dest="from_file", metavar="FILE", help="the amended text from FILE instead of $EDITOR")
    p.set_defaults(func=cmd_amend)

    p = sub.add_parser("vote", help="vote on a ballot you sit on (it names the exact revision)")
    common(p, True)
    p.add_argument("proposal")
    p.add_argument("choice", choices=["promote", "kill", "adopt", "reject", "yes", "no"])
    p.add_argument("--amendment", metavar="ID", help="vote on this amendment's ballot")
    p.add_argument("--revision", metavar="HEADS", help="the revision you read (comma-separated heads): refused if the ballot names another")
    p.set_defaults(func=cmd_vote)

    p = sub.add_parser("withdraw", help="withdraw your own proposal")
    common(p, True)
    p.add_argument("proposal")
    p.set_defaults(func=cmd_withdraw)

    p = sub.add_parser("show", help="list the proposals, or show one: status, history, text, amendments, ballots, thread")
    common(p, False)
    p.add_argument("proposal", nargs="?")
    p.add_argument("--revision", metavar="HEADS", help="the text at this revision (comma-separated heads)")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("diff", help="the word diff of a proposal's text between two revisions")
    common(p, False)
    p.add_argument("proposal")
    p.add_argument("--before", metavar="HEADS", help="default: the revision the committee received")
    p.add_argument("--after", metavar="HEADS", help="default: the latest")
    p.add_argument("--field", default="body", choices=["title", "summary", "body"])
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("blame", help="who wrote each passage of a proposal's latest text (whole words)")
    common(p, False)
    p.add_argument("proposal")
    p.add_argument("--field", default="body", choices=["title", "summary", "body"])
    p.set_defaults(func=cmd_blame)

    p = sub.add_parser("explain", help="why a committee was drawn as it was: beacon round, seed, every pick")
    common(p, False)
    p.add_argument("proposal")
    p.add_argument("--stage", type=int)
    p.set_defaults(func=cmd_explain)
