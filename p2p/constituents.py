"""Constituents and their representatives in the service (``p2p.service.Service`` mixes this in):
registering, founding, joining, leaving, endorsing, saying yes to serving, declaring absence,
asking and answering in a constituency's thread, and the views that show who represents whom.

Every act is checked against the core's rules (``consensus.constituency``) before anything is
signed, on the acts as they stand *now* (the latest beacon round), so a person hears "leave
Riverside first", never "event rejected".  Seats change only at cycle boundaries: the views say
what the acts so far would make of the next boundary, and what the last one certified.
"""

from __future__ import annotations

from consensus.charter import DRAW, RANDOM
from consensus.constituency import Roll
from consensus.errors import KleroError
from consensus.events import event_id, parse_body, split_wire
from consensus.kinds import REGISTRAR


class ConstituentError(KleroError):
    """An act a constituent cannot make, in a sentence that says what to do instead."""


def _hex_key(value: str, what: str) -> bytes:
    try:
        key = bytes.fromhex(value.strip())
    except (ValueError, AttributeError):
        key = b""
    if len(key) != 32:
        raise ConstituentError(f"{what} must be a public key: 64 hex characters (`klero whoami` prints one's own).")
    return key


class ConstituentActs:
    """Mixed into the Service: needs ``replica``, ``me``, ``hands``, ``leg``, ``result()``, ``horizon``,
    ``_require_key``, ``_sign``, ``_signed``, ``when``, ``comments`` (which files posts too)."""

    # ---------------------------------------------------------------- the acts as they stand now

    def roll(self) -> Roll:
        """Every representation act up to the latest round, applied: what the acts so far say.

        Kept between calls: acts that arrive later are applied as they come (in the canonical
        order among themselves), so a view costs no replay of a city's acts.  That can differ from
        the canonical order only for two conflicting acts of one round arriving in the other
        order; a removal (a fork) rebuilds it.  The seats that count are the certified ones."""
        r = self.replica
        leg = self.leg
        cached = getattr(self, "_roll_cache", None)
        now = leg.cycle_of(self.horizon)
        changes = r.rep_since(cached["seen"]) if cached is not None else None
        if cached is not None and cached["cycle"] == now and changes is not None and all(a for _, _, a in changes):
            roll = cached["roll"]
            new = {i for _, i, _ in changes}
            if new or cached["horizon"] != self.horizon:
                roll.merge([r.records[i] for i in new if i in r.records], [])
                roll.advance(self.horizon + 1, now, None, leg.cycle_of)
        else:
            roll = Roll(r.charter)
            cached = {"roll": roll, "settled": set(), "cycle": now}
            if r.charter.representation is not None:
                roll.load(r.records.values())
                # boundary by boundary (the lot places people at boundaries), then up to now
                for c in range(0, now + 1):
                    s = leg.cycle_start(c)
                    roll.advance(s, c, r.beacon.get(s), leg.cycle_of)
                roll.advance(self.horizon + 1, now, None, leg.cycle_of)
        if r.charter.representation is not None:
            # the seats the boundaries certified (settle() keeps them for the draw rule's terms)
            for cycle, roster in sorted(self.result().rosters.items()):
                if cycle and cycle not in cached["settled"]:
                    roll.settle(roster, cycle)
                    cached["settled"].add(cycle)
        cached.update(seen=r.rep_version, horizon=self.horizon)
        self._roll_cache = cached
        return roll

    def _require_representation(self) -> None:
        if self.replica.charter.representation is None:
            raise ConstituentError("This assembly's charter has no constituencies: its founding roster holds every seat.")

    def _require_constituent(self) -> Roll:
        self._require_key()
        self._require_representation()
        roll = self.roll()
        if self.me not in self.replica.vouched and self.me not in self.replica.roles:
            raise ConstituentError("No registrar has certified your key yet. Give a registrar your public key "
                                   f"({self.me.hex()}) and proof that you are eligible; once they sign, try again.")
        if not roll.certified(self.me):
            t = self.replica.charter.representation.threshold
            if self.me in roll.replaced:
                raise ConstituentError("This key was replaced by a newer one of yours; act with the new key.")
            raise ConstituentError(f"Your key is not (or no longer) certified by {t} registrar(s), so your acts would count for "
                                   "nothing. Ask the registrars to certify it again.")
        return roll

    def group(self, ref: str | bytes):
        """A constituency by id or the first characters of its id, or by its exact name."""
        roll = self.roll()
        if isinstance(ref, bytes):
            if ref in roll.groups:
                return roll.groups[ref]
            raise ConstituentError(f"There is no constituency {ref.hex()[:16]}… (never founded, or dissolved).")
        text = ref.strip()
        named = [g for g in roll.groups.values() if g.name.lower() == text.lower()]
        found = named or [g for gid, g in roll.groups.items() if len(text) >= 4 and gid.hex().startswith(text.lower())]
        if not found:
            raise ConstituentError(f"No constituency is named or numbered {text!r}; `klero constituency list` shows them.")
        if len(found) > 1:
            raise ConstituentError(f"{len(found)} constituencies match {text!r}; give more of the id.")
        return found[0]

    # ---------------------------------------------------------------- constituents' acts

    def found(self, name: str, statement: str = "") -> dict:
        """Found a constituency (name, statement of common interest) and become its first member."""
        roll = self._require_constituent()
        rep = self.replica.charter.representation
        if rep.grouping == RANDOM:
            raise ConstituentError("Under this charter the lot assigns constituencies; nobody founds one.")
        mine = roll.group_of(self.me)
        if mine is not None:
            raise ConstituentError(f"You are a member of {mine.name!r}: one constituency at a time. Leave it first "
                                   "(klero constituency leave).")
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise ConstituentError("A constituency needs a name of 1 to 200 characters.")
        wire = self._sign("constituency.found", {"name": name, "statement": statement})
        return self._signed(wire, f"Founded {name!r}; you are its first member. Others join with its id "
                                  f"{event_id(wire).hex()[:12]}. It holds a seat once it has {rep.min_constituency} members "
                                  "and more than half of them endorse one willing member.", constituency=event_id(wire).hex())

    def join(self, ref: str) -> dict:
        roll = self._require_constituent()
        rep = self.replica.charter.representation
        if rep.grouping == RANDOM:
            raise ConstituentError("Under this charter the lot assigns constituencies; you are placed at the next boundary.")
        g = self.group(ref)
        mine = roll.group_of(self.me)
        if mine is not None:
            raise ConstituentError(f"You are already a member of {mine.name!r}: leave it first (klero constituency leave).")
        if len(g.members) >= rep.max_constituency:
            raise ConstituentError(f"{g.name!r} has {rep.max_constituency} members, the charter's cap. Found another "
                                   "constituency or join one with room.")
        wire = self._sign("constituency.join", {"constituency": g.id})
        return self._signed(wire, f"Joined {g.name!r} ({len(g.members) + 1} members). Endorse the member you want to "
                                  "represent you (klero constituency endorse KEY).", constituency=g.id.hex())

    def leave(self) -> dict:
        roll = self._require_constituent()
        g = roll.group_of(self.me)
        if g is None:
            raise ConstituentError("You are not a member of any constituency.")
        wire = self._sign("constituency.leave", {"constituency": g.id})
        return self._signed(wire, f"Left {g.name!r}; your endorsement goes with you. Seats change at the next cycle "
                                  "boundary.", constituency=g.id.hex())

    def endorse(self, member: str) -> dict:
        roll = self._require_constituent()
        g = roll.group_of(self.me)
        if g is None:
            raise ConstituentError("Join a constituency before endorsing anyone in it.")
        whom = self.me if member.strip().lower() in ("me", "myself") else _hex_key(member, "The member to endorse")
        if whom not in g.members:
            raise ConstituentError(f"{whom.hex()[:16]}… is not a member of {g.name!r}; you can endorse only a member of your "
                                   "own constituency (klero constituency show lists them).")
        draw = self.replica.charter.representation.seat_rule == DRAW
        wire = self._sign("endorse", {"constituency": g.id, "member": whom})
        willing = "" if whom in roll.willing else " They have not said yes to serving yet (klero constituency serve yes)."
        verb = "Nominated" if draw else "Endorsed"
        return self._signed(wire, f"{verb} {'yourself' if whom == self.me else whom.hex()[:16] + '…'} in {g.name!r}. "
                                  f"Seats change only at cycle boundaries.{willing}", constituency=g.id.hex())

    def serve(self, answer: str) -> dict:
        self._require_constituent()
        answer = answer.strip().lower()
        if answer not in ("yes", "no"):
            raise ConstituentError("Answer yes or no: are you willing to hold your constituency's seat if chosen?")
        wire = self._sign("serve", {"answer": answer})
        said = ("You said yes to serving: you can be seated (and drawn onto committees) if your constituency chooses you."
                if answer == "yes" else "You said no to serving: you will not be seated; a seat you hold ends at the next boundary.")
        return self._signed(wire, said)

    def absent(self, cycle: int) -> dict:
        """Declare absence for a coming cycle: its committee draws skip you (say it before the cycle starts)."""
        self._require_key()
        self._require_representation()
        if self.constituent_only:
            raise ConstituentError("Your node runs as an observer; absence is a representative's declaration.")
        cycle = int(cycle)
        now = self.leg.cycle_of(self.horizon)
        if cycle <= now:
            raise ConstituentError(f"Cycle {cycle} has already started (this is cycle {now}); declare absence for cycle "
                                   f"{now + 1} or later, before it starts at {self.when(self.leg.cycle_start(now + 1))}.")
        wire = self._sign("absence", {"cycle": cycle})
        return self._signed(wire, f"Declared absent for cycle {cycle}: its committee draws skip you if this reaches its "
                                  f"boundary ({self.when(self.leg.cycle_start(cycle))}). Your seat is kept.")

    def ask(self, text: str, reply: str | None = None) -> dict:
        """Post in your constituency's thread: a question to your representative, or (``reply``) an
        answer.  Everything posted is signed and public, like every act in the log."""
        self._require_key()
        self._require_representation()
        roll = self.roll()
        g = roll.group_of(self.me)
        if g is None:
            raise ConstituentError("Only members post in a constituency's thread: join one first.")
        text = text.strip()
        if not text:
            raise ConstituentError("The message is empty.")
        body = {"constituency": g.id, "text": text}
        if reply:
            post = self._find_post(reply, g.id)
            body["reply"] = bytes.fromhex(post["id"])
        wire = self._sign("constituency.post", body)
        return self._signed(wire, f"Posted in {g.name!r}'s thread (signed and public: anyone holding the log can read it).",
                            constituency=g.id.hex())

    # ---------------------------------------------------------------- registrars

    def _require_registrar(self) -> None:
        self._require_key()
        self._require_representation()
        if REGISTRAR not in self.replica.roles.get(self.me, ()):
            raise ConstituentError("Your key is not one of the charter's registrars; only they certify constituents.")

    def certify(self, subject: str, person: str | None = None, replaces: str | None = None) -> dict:
        """A registrar attests that ``subject`` is one eligible person's key (``person``: the
        registrar's pseudonymous handle for them, 64 hex characters; ``replaces``: their old key)."""
        self._require_registrar()
        key = _hex_key(subject, "The key to certify")
        if (self.me, key) in self.replica.certified:
            raise ConstituentError("You have already certified this key.")
        body: dict = {"subject": key}
        if person:
            body["person"] = _hex_key(person, "The person handle")
        if replaces:
            old = _hex_key(replaces, "The key replaced")
            if old == key:
                raise ConstituentError("A key cannot replace itself.")
            body["replaces"] = old
        wire = self._sign("registrar.certify", dict(sorted(body.items(), key=lambda kv: (len(kv[0]), kv[0]))))
        t = self.replica.charter.representation.threshold
        more = f" It counts once {t} registrars have certified it." if t > 1 else ""
        return self._signed(wire, f"Certified {key.hex()[:16]}…" + (f" replacing {replaces[:16]}…" if replaces else "") + f".{more}")

    def revoke(self, subject: str) -> dict:
        self._require_registrar()
        key = _hex_key(subject, "The key to revoke")
        if (self.me, key) not in self.replica.certified:
            raise ConstituentError("You hold no certification of this key to revoke.")
        wire = self._sign("registrar.revoke", {"subject": key})
        return self._signed(wire, f"Revoked your certification of {key.hex()[:16]}…; below the threshold the key leaves its "
                                  "constituency and its acts count for nothing.")

    # ---------------------------------------------------------------- views

    def standing(self, key: str | None = None) -> dict:
        """A person's standing: certified (by whom), member of, endorsing, willing, seated, and the
        acts of theirs that count for nothing, with reasons."""
        who = _hex_key(key, "The key") if key else self.me
        charter = self.replica.charter
        if charter.representation is None or who is None:
            return {"constituencies": False}
        roll = self.roll()
        g = roll.group_of(who)
        cycle = max(self.leg.cycle_of(self.horizon), 0)
        result = self.result()
        registrars = sorted(r.hex() for r in roll.certs.get(who, ()))
        return {
            "constituencies": True, "key": who.hex(), "vouched": who in self.replica.vouched or who in self.replica.roles,
            "certified": roll.certified(who), "registrars": registrars, "threshold": charter.representation.threshold,
            "replaced_by": roll.replaced[who].hex() if who in roll.replaced else None,
            "constituency": g.id.hex() if g else None, "constituency_name": g.name if g else None,
            "endorsing": g.endorsements[who].hex() if g and who in g.endorsements else None,
            "willing": who in roll.willing, "seated": who in set(self.leg.roster_of(cycle)), "cycle": cycle,
            "seated_next": any(s.holder == who for s in self.leg.local_seats(cycle)),
            "problems": [p.as_dict() for p in roll.problems if p.author == who][-20:],
            "rule": charter.representation.seat_rule, "grouping": charter.representation.grouping,
            "cycles_decided": result.cycles,
        }

    def _next_seats(self, roll) -> dict:
        """What the acts so far make of the next boundary, per constituency.  Under the draw rule
        the lot is drawn with the boundary round's randomness, which nobody knows yet: no holder
        is named before it."""
        seats = roll.seats(max(self.leg.cycle_of(self.horizon), 0), self.replica.beacon.get(self.horizon, bytes(32)))
        out = {}
        for s in seats:
            if s.reason.startswith("drawn by lot"):
                s = type(s)(s.group, None, s.reason.replace("drawn by lot", "to be drawn by lot at the boundary", 1))
            out[s.group] = s
        return out

    def constituencies(self) -> list[dict]:
        """Every constituency: members, seat holder, and what the acts so far make of the next boundary."""
        if self.replica.charter.representation is None:
            return []
        roll = self.roll()
        nxt = self._next_seats(roll)
        mine = roll.member_of.get(self.me) if self.me else None
        out = []
        for gid, g in sorted(roll.groups.items(), key=lambda kv: (-len(kv[1].members), kv[1].name, kv[0])):
            seat = nxt.get(gid)
            out.append({**g.as_dict(), "mine": gid == mine,
                        "next_holder": seat.holder.hex() if seat and seat.holder else None,
                        "next": seat.reason if seat else ""})
        return out

    def constituency(self, ref: str | None = None) -> dict:
        """One constituency (one's own by default): statement, members with their endorsements,
        the seat now and at the next boundary, and its thread."""
        self._require_representation()
        roll = self.roll()
        if ref:
            g = self.group(ref)
        else:
            g = roll.group_of(self.me) if self.me else None
            if g is None:
                raise ConstituentError("You are not a member of any constituency; name one (klero constituency list).")
        seat = self._next_seats(roll).get(g.id)
        support = g.support()
        members = [{"key": k.hex(), "since_round": rnd, "endorses": g.endorsements[k].hex() if k in g.endorsements else None,
                    "support": support.get(k, 0), "willing": k in roll.willing, "holder": k == g.holder}
                   for k, rnd in g.members.items()]
        members.sort(key=lambda m: (-m["support"], m["key"]))
        return {**g.as_dict(), "members_list": members, "mine": self.me in g.members if self.me else False,
                "next_holder": seat.holder.hex() if seat and seat.holder else None, "next": seat.reason if seat else "",
                "min": self.replica.charter.representation.min_constituency,
                "max": self.replica.charter.representation.max_constituency,
                "rule": self.replica.charter.representation.seat_rule,
                "thread": self.posts(g.id.hex())}

    def roster(self, cycle: int | None = None) -> dict:
        """Who holds the seats in a cycle (this one by default), and whether a panel certified them."""
        result = self.result()
        now = max(self.leg.cycle_of(self.horizon), 0)
        cycle = now if cycle is None else int(cycle)
        keys = self.leg.roster_of(cycle)
        roll = self.roll() if self.replica.charter.representation is not None else None
        rows = []
        for k in keys:
            g = roll.group_of(k) if roll else None
            rows.append({"key": k.hex(), "constituency": g.id.hex() if g else None, "name": g.name if g else None})
        certified = cycle in result.rosters and cycle > 0
        return {"cycle": cycle, "seats": rows, "certified": certified,
                "source": ("certified by the panel of the boundary of cycle %d" % (cycle - 1)) if certified else "the charter's founding roster"}

    def public_record(self, key: str | None = None, format: str = "json") -> str:
        """A representative's signed record (this key's by default) as JSON, Atom or HTML, each
        entry with the events that prove it (``p2p.record``)."""
        from .record import build, render

        who = _hex_key(key, "The representative's key") if key else self.me
        if who is None:
            raise ConstituentError("Name the representative whose record you want (their public key).")
        return render(build(self, who), format)

    def posts(self, ref: str | None = None) -> list[dict]:
        """A constituency's thread, oldest first, each with its replies and whether its author held
        the seat when it was posted."""
        self.comments()  # reads new posts too
        gid = self.group(ref).id.hex() if ref else None
        posts = [dict(p) for p in getattr(self, "_posts", {}).values() if gid is None or p["constituency"] == gid]
        posts.sort(key=lambda p: (p["round"], p["reply"] is not None, p["id"]))  # an answer after its question
        for p in posts:
            p["replies"] = [q["id"] for q in posts if q["reply"] == p["id"]]
            cycle = self.leg.cycle_of(p["round"])
            p["by_representative"] = bytes.fromhex(p["author"]) in set(self.leg.roster_of(max(cycle, 0)))
        return posts

    def _find_post(self, ref: str, gid: bytes) -> dict:
        key = ref.strip().lower()
        found = [p for p in self.posts(gid.hex()) if p["id"].startswith(key)]
        if len(found) != 1:
            raise ConstituentError(f"No single post of your constituency's thread starts with {key[:16]!r}.")
        return found[0]

    def _file_post(self, wire: bytes) -> None:
        """Called by ``comments()`` for each new constituency.post event."""
        try:
            _, _, fields = split_wire(wire, self.replica.limits.max_event_bytes)
            b = parse_body("constituency.post", fields["body"], self.replica.limits)
        except KleroError:
            return
        pid = event_id(wire)
        rnd = fields["round"][0] if isinstance(fields["round"], list) else 0
        if not hasattr(self, "_posts"):
            self._posts = {}
        self._posts[pid] = {"id": pid.hex(), "author": fields["author"].hex(), "round": rnd,
                            "constituency": b.constituency.hex(), "text": b.text, "reply": b.reply.hex() if b.reply else None}
