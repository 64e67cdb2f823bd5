"""Every byte from the network or a file is hostile until validated.

These tests feed the core arbitrary, malformed, mutated and maliciously signed input and check
the promises the core makes about it:

* ``Replica.add`` never raises for bad input: it returns an :class:`Outcome`;
* a refused input gets a :class:`~consensus.errors.Rejection` with a stable code and a sentence;
* a refused input changes nothing: not the state hash, not the ledger, not the forks, not the
  replica's in-memory indexes;
* the framing of log files (:func:`consensus.cbor.item_length`, :func:`p2p.logfile.iter_items`)
  only ever raises its documented errors, does bounded work, and never invents bytes;
* :meth:`Charter.from_body` refuses bad charters with ``InvalidInput`` only.

Valid events come from ``p2p.tools.simulate.Simulation(seed=0, reps=4)``.  Bad-but-signed events are
signed with the simulation's own keys, so that the one thing wrong with them is the thing the
test names.  Non-canonical encodings are assembled by hand from CBOR pieces and then signed
byte for byte (``key.sign(b"klero/event/v1" + encoding)``), so their signature is valid and
only their canonical form is wrong.
"""

from __future__ import annotations

import functools
import io
import itertools
import struct
from dataclasses import dataclass
from unittest import mock

import cbor2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from consensus import cbor
from consensus.cbor import key_order
from consensus.charter import Charter, Limits
from consensus.errors import InvalidInput, Rejection
from consensus.events import (
    DOMAIN,
    HEADER,
    MAX_SEQ,
    NO_ASSEMBLY,
    check_header,
    decode_charter,
    event_id,
    parse_body,
    peek_kind,
    sign_event,
    split_wire,
)
from consensus.replica import Replica
from p2p import logfile
from p2p.logfile import LogDamage, iter_items
from p2p.pipeline import check_signatures
from p2p.tools.simulate import Simulation, derived_key, fake_round_prefix

# --------------------------------------------------------------------------- settings

#: fuzzing a whole replica costs a few milliseconds per example (it is rebuilt each time)
REPLICA_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: codes a *rejected* outcome may carry (stateless checks, plus the two position refusals)
REJECTION_CODES = {
    "charter_inside_assembly",
    "charter_position",
    "not_cbor",
    "not_canonical",
    "bad_shape",
    "too_large",
    "unsupported_version",
    "bad_field",
    "bad_signature",
    "unknown_kind",
    "bad_body",
    "bad_charter",
    "wrong_assembly",
    "unknown_author",
    "not_authorised",
    "excluded_after_fork",
    "too_far_ahead",
}
#: outcomes a *signed* event by a known author may legitimately reach
STATUSES = {"applied", "pending", "invalid", "excluded", "duplicate", "rejected", "equivocation"}


# --------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class World:
    """A small assembly whose replica holds applied events, a pending event and a fork."""

    sim: Simulation
    charter: bytes
    assembly: bytes
    base: tuple[bytes, ...]  # what every fresh replica is built from, in order
    held_back: bytes  # rep 2's next event (valid; its successor is pending in the base)
    pending: bytes  # rep 2's event after ``held_back``: pending in the base replica
    fork: tuple[bytes, bytes]  # rep 1's equivocation, in the base replica
    fork_seq: int
    round: int  # a beacon round at or after every author's head
    other_charter: bytes  # the charter of another assembly
    outsider: SigningKey  # a key the charter does not name

    @property
    def rep_keys(self) -> list[SigningKey]:
        return [a.key for a in self.sim.rep_authors]

    @property
    def registrar_keys(self) -> list[SigningKey]:
        return [a.key for a in self.sim.registrar_authors]

    @property
    def convenor_key(self) -> SigningKey:
        return self.sim.convenor.key

    def valid_wires(self) -> list[bytes]:
        """Every valid event we know of (targets for mutation)."""
        return [*self.base, self.held_back]


@functools.cache
def world() -> World:
    sim = Simulation(seed=0, reps=4)
    log = list(sim.log(24))
    # rep 1 equivocates; rep 2's next event is held back so its successor waits as pending
    fork = sim.fork(1)
    fork_seq = sim.rep_authors[1].seq
    rnd = 0  # the simulation's events name no beacon round (p2p/simulate.py)
    rep2 = sim.rep_authors[2]
    held_back = sign_event(
        rep2.key, assembly=sim.assembly, seq=rep2.seq + 1, prev=rep2.prev, kind="proposal.submit",
        body={"title": "Held back", "summary": "arrives last"}, round=rnd, round_prefix=fake_round_prefix(rnd),
    )
    pending = sign_event(
        rep2.key, assembly=sim.assembly, seq=rep2.seq + 2, prev=event_id(held_back), kind="comment",
        body={"proposal": event_id(held_back), "text": "waits for its predecessor"},
        round=rnd, round_prefix=fake_round_prefix(rnd),
    )
    # make sure a registrar has a certification (so revoke/certify rules have something to see)
    reg = sim.registrar_authors[0]
    certify = sign_event(
        reg.key, assembly=sim.assembly, seq=reg.seq + 1, prev=reg.prev, kind="registrar.certify",
        body={"subject": bytes(range(32))}, round=rnd, round_prefix=fake_round_prefix(rnd),
    )
    base = (*log, *fork, pending, certify)
    other = Simulation(seed=1, reps=4)
    w = World(
        sim=sim, charter=log[0], assembly=sim.assembly, base=base, held_back=held_back, pending=pending,
        fork=fork, fork_seq=fork_seq, round=rnd, other_charter=other.charter_wire,
        outsider=derived_key(99, "outsider", 0),
    )
    # the world is what we think it is
    r = Replica(w.charter)
    outcomes = r.add_all(base[1:])
    statuses = [o.status for o in outcomes]
    assert statuses[: len(log) - 1] == ["applied"] * (len(log) - 1), statuses
    assert statuses[len(log) - 1 :] == ["applied", "equivocation", "pending", "applied"], statuses
    return w


def fresh() -> Replica:
    """A new replica holding the world's base events (applied, pending and a fork)."""
    w = world()
    r = Replica(w.charter)
    r.add_all(w.base[1:])
    return r


def snapshot(r: Replica) -> tuple:
    """Everything a rejected input must leave alone: the state hash, the ledger, the indexes."""
    return (
        r.state_hash(),
        dict(r.ledger.events),
        dict(r.ledger.forks),
        {a: (h.seq, h.id, h.round, h.in_round) for a, h in r.heads.items()},
        dict(r.forks),
        dict(r.blocked),
        {a: frozenset(s) for a, s in r.pending.items()},
        {p: (x.author, x.withdrawn) for p, x in r.proposals.items()},
        frozenset(r.certified),
    )


def assert_rejection_readable(rejection: Rejection | None) -> None:
    """A rejection has a stable non-empty code and a sentence a person can read."""
    assert isinstance(rejection, Rejection)
    assert isinstance(rejection.code, str) and rejection.code, rejection
    assert rejection.code == rejection.code.strip() and " " not in rejection.code, rejection
    reason = rejection.reason
    assert isinstance(reason, str) and len(reason.strip()) >= 10, rejection
    assert reason[0].isupper() and reason.rstrip().endswith("."), rejection


def add_and_check_rejected(r: Replica, wire, before=None):
    """``r.add(wire)`` must not raise, must reject with a readable reason and change nothing."""
    before = snapshot(r) if before is None else before
    outcome = r.add(wire)
    assert outcome.status == "rejected", outcome
    assert_rejection_readable(outcome.rejection)
    assert outcome.rejection.code in REJECTION_CODES, outcome.rejection
    assert outcome.applied == () and outcome.invalid == () and outcome.excluded == ()
    assert snapshot(r) == before, "a rejected input changed the replica"
    return outcome


# --------------------------------------------------------------------------- hand-made CBOR


def seal(key: SigningKey, encoding: bytes) -> bytes:
    """Sign exactly ``encoding`` and wrap it as a (canonical) wire ``[encoding, signature]``."""
    signature = key.sign(DOMAIN + encoding).signature
    return cbor2.dumps([encoding, signature])


def raw_map(pairs: list[tuple[str, bytes]]) -> bytes:
    """A CBOR map from (text key, already-encoded value) pairs, in the order given."""
    assert len(pairs) < 24
    return bytes([0xA0 | len(pairs)]) + b"".join(cbor2.dumps(k) + raw for k, raw in pairs)


def canonical_pairs(fields: dict) -> list[tuple[str, bytes]]:
    """The pairs of ``fields`` encoded canonically, in canonical key order."""
    pairs = [(k, cbor2.dumps(v, canonical=True)) for k, v in fields.items()]
    return sorted(pairs, key=lambda kv: cbor2.dumps(kv[0]))


def replace(pairs: list[tuple[str, bytes]], name: str, raw: bytes) -> list[tuple[str, bytes]]:
    return [(k, raw if k == name else v) for k, v in pairs]


def long_uint(n: int) -> bytes:
    """``n`` (< 256) as an unsigned integer in a longer form than needed."""
    return b"\x19" + n.to_bytes(2, "big")


def next_fields(r: Replica, key: SigningKey, kind: str, body, /, **override) -> dict:
    """The header map of ``key``'s next valid event in ``r``; ``override`` replaces fields."""
    w = world()
    author = bytes(key.verify_key)
    head = r.heads.get(author)
    fields = {
        "v": 1,
        "assembly": w.assembly,
        "author": author,
        "seq": head.seq + 1 if head else 1,
        "prev": head.id if head else None,
        "round": [w.round, fake_round_prefix(w.round)],  # round 0: no round, no prefix
        "kind": kind,
        "body": body,
    }
    fields.update(override)
    return fields


def signed(key: SigningKey, fields: dict) -> bytes:
    """Canonically encode ``fields`` as they are (any types) and sign the exact bytes."""
    return seal(key, raw_map(canonical_pairs(fields)))


def rep(i: int = 0) -> SigningKey:
    return world().rep_keys[i]


SUBMIT = {"title": "A proposal", "summary": "Why it matters."}


def comment_body() -> dict:
    return {"proposal": event_id(world().held_back), "text": "A comment."}


# --------------------------------------------------------------------------- controls


def test_world_and_handmade_encoding_are_sound():
    """Positive control: the hand-made encoder and signer produce exactly what ``sign_event``
    produces, and such an event is applied.  So when a tampered variant is refused below, the
    tampering is the reason."""
    r = fresh()
    fields = next_fields(r, rep(3), "proposal.submit", SUBMIT)
    wire = signed(rep(3), fields)
    by_library = sign_event(
        rep(3), assembly=fields["assembly"], seq=fields["seq"], prev=fields["prev"], kind="proposal.submit",
        body=SUBMIT, round=fields["round"][0], round_prefix=fields["round"][1],
    )
    assert wire == by_library
    assert r.add(wire).status == "applied"


# --------------------------------------------------------------------------- 1. fuzzing Replica.add

def cbor_values(tags: bool = True):
    """Arbitrary values cbor2 can encode: nested lists and maps of ints, floats, text, bytes,
    None, bools and (optionally) tagged values, including tags cbor2 decodes into Python objects
    (dates, bignums, decimals, fractions, regexes, sets, UUIDs, shared references, ...)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.integers(min_value=-30, max_value=30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
        st.binary(max_size=40),
        st.sampled_from([cbor2.undefined, cbor2.CBORSimpleValue(32), cbor2.CBORSimpleValue(255)]),
    )
    keys = st.one_of(st.text(max_size=8), st.integers(min_value=-5, max_value=5), st.binary(max_size=4), st.none())

    def extend(children):
        options = [
            st.lists(children, max_size=5),
            st.dictionaries(keys, children, max_size=5),
        ]
        if tags:
            tag_numbers = st.sampled_from(
                [0, 1, 2, 3, 4, 5, 24, 25, 28, 29, 30, 32, 35, 36, 37, 256, 258, 260, 261, 55799, 1000, 2**32]
            )
            options.append(st.builds(cbor2.CBORTag, tag_numbers, children))
        return st.one_of(*options)

    return st.recursive(scalars, extend, max_leaves=12)


@REPLICA_FUZZ
@given(st.binary(max_size=600))
@example(b"")
@example(b"\x82")
@example(bytes.fromhex("d81c81d81d00"))  # a list that contains itself (shared references)
@example(bytes.fromhex("9b" + "ff" * 8))  # an array claiming 2**64 items
@example(bytes.fromhex("5b7fffffffffffffff"))  # a byte string claiming 2**63 bytes
def test_add_arbitrary_bytes(wire):
    """Random bytes from a peer are refused with a reason and change nothing."""
    add_and_check_rejected(fresh(), wire)


@REPLICA_FUZZ
@given(cbor_values(), st.booleans())
def test_add_arbitrary_cbor_values(value, canonical):
    """Well-formed CBOR of the wrong shape (any nesting, floats, tags, bools, undefined) is
    refused with a reason and changes nothing."""
    add_and_check_rejected(fresh(), cbor2.dumps(value, canonical=canonical))


@REPLICA_FUZZ
@given(cbor_values(), st.binary(min_size=64, max_size=64), st.booleans())
def test_add_arbitrary_cbor_inside_the_wire_shape(value, signature, sign_it):
    """The outer ``[encoding, signature]`` shape is right but the encoding is any CBOR value;
    with a random or a genuine signature over those exact bytes it is still refused."""
    encoding = cbor2.dumps(value, canonical=True)
    if sign_it:
        wire = seal(rep(0), encoding)
    else:
        wire = cbor2.dumps([encoding, signature])
    add_and_check_rejected(fresh(), wire)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(world().valid_wires()), st.sets(st.integers(0, 1 << 20), min_size=1, max_size=3))
def test_add_bit_flipped_valid_events(wire, bits):
    """Any one to three flipped bits in a valid event (in its framing, header, body or
    signature) give a rejection, never an applied, pending or equivocating event."""
    buf = bytearray(wire)
    for bit in bits:
        bit %= len(wire) * 8
        buf[bit // 8] ^= 0x80 >> (bit % 8)
    mutated = bytes(buf)
    if mutated == wire:  # the same bit flipped twice
        return
    add_and_check_rejected(fresh(), mutated)


MUTATION = st.sampled_from(["flip", "truncate", "insert", "delete", "splice"])


@REPLICA_FUZZ
@given(st.data())
def test_add_mutated_valid_events(data):
    """A valid event (applied, pending, forked or not yet seen, or the charter) with bits
    flipped, bytes cut off, inserted or deleted, or spliced with another event, is refused.

    A flipped bit must never give an applied event, and above all must never look like a
    second signed event at a ``seq`` already held: that would be a fake equivocation that
    excludes an honest author.
    """
    w = world()
    r = fresh()
    targets = w.valid_wires()
    wire = data.draw(st.sampled_from(targets), label="target")
    how = data.draw(MUTATION, label="mutation")
    if how == "flip":
        positions = data.draw(st.sets(st.integers(0, len(wire) * 8 - 1), min_size=1, max_size=4), label="bits")
        buf = bytearray(wire)
        for bit in positions:
            buf[bit // 8] ^= 0x80 >> (bit % 8)
        mutated = bytes(buf)
    elif how == "truncate":
        mutated = wire[: data.draw(st.integers(0, len(wire) - 1), label="keep")]
    elif how == "insert":
        at = data.draw(st.integers(0, len(wire)), label="at")
        mutated = wire[:at] + data.draw(st.binary(min_size=1, max_size=8), label="inserted") + wire[at:]
    elif how == "delete":
        at = data.draw(st.integers(0, len(wire) - 1), label="at")
        mutated = wire[:at] + wire[at + data.draw(st.integers(1, 8), label="n") :]
    else:
        other = data.draw(st.sampled_from(targets), label="other")
        cut = data.draw(st.integers(1, min(len(wire), len(other)) - 1), label="cut")
        mutated = wire[:cut] + other[cut:]
    if mutated in targets:  # a splice of an event with itself, for instance
        return
    add_and_check_rejected(r, mutated)


@REPLICA_FUZZ
@given(st.data())
def test_add_signed_events_with_arbitrary_header_fields(data):
    """A genuinely signed event of a known author, with one or more header fields (or the body)
    replaced by arbitrary values, deleted, or joined by an unknown field.

    Whatever the values, ``add`` returns an outcome.  A refusal changes nothing; anything not
    refused must really pass every stateless check (the replica does not let a malformed event
    through by accident).
    """
    w = world()
    r = fresh()
    key = data.draw(st.sampled_from([*w.rep_keys, *w.registrar_keys, w.convenor_key]), label="author")
    kind, body = {
        True: ("proposal.submit", SUBMIT),
        False: ("registrar.certify", {"subject": bytes(32)}),
    }[key in w.rep_keys]
    fields = next_fields(r, key, kind, body)
    names = data.draw(st.sets(st.sampled_from([*HEADER, "extra"]), min_size=1, max_size=3), label="fields")
    for name in sorted(names):
        if name != "extra" and data.draw(st.booleans(), label=f"delete {name}"):
            del fields[name]
        else:
            fields[name] = data.draw(cbor_values(tags=False), label=name)
    wire = seal(key, cbor2.dumps(fields, canonical=True))
    before = snapshot(r)
    outcome = r.add(wire)
    assert outcome.status in STATUSES, outcome
    if outcome.status == "rejected":
        assert_rejection_readable(outcome.rejection)
        assert outcome.rejection.code in REJECTION_CODES, outcome.rejection
        assert snapshot(r) == before
    else:
        _, _, parsed = split_wire(wire, r.limits.max_event_bytes)
        check_header(parsed)
        parse_body(parsed["kind"], parsed["body"], r.limits)
        assert parsed["assembly"] == w.assembly


@REPLICA_FUZZ
@given(st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.binary(max_size=4), max_size=3)),
       st.sampled_from(["bytearray", "memoryview", "other"]))
def test_add_non_bytes(value, as_type):
    """Something that is not ``bytes`` (a str, None, a list, a bytearray or memoryview of a
    valid event) is refused with ``bad_shape``; the wire form is ``bytes`` and only that."""
    w = world()
    r = fresh()
    if as_type == "bytearray":
        wire = bytearray(w.held_back)
    elif as_type == "memoryview":
        wire = memoryview(w.held_back)
    else:
        wire = value
    assert add_and_check_rejected(r, wire).rejection.code == "bad_shape"


def test_signature_malleability_cannot_frame_an_honest_author():
    """Ed25519 signatures have a malleable form (S + L).  If a replica accepted it, anyone could
    turn an honest author's applied event into a second, different event at the same ``seq``:
    a fake equivocation that excludes them.  It must be refused as a bad signature, as must
    every single-bit change of the signature."""
    L = 2**252 + 27742317777372353535851937790883648493
    w = world()
    r = fresh()
    for wire in w.base[1:6]:
        encoding, signature = cbor2.loads(wire)
        s = int.from_bytes(signature[32:], "little")
        malleated = signature[:32] + (s + L).to_bytes(32, "little")
        out = add_and_check_rejected(r, cbor2.dumps([encoding, malleated]))
        assert out.rejection.code == "bad_signature"
        for bit in range(0, 512, 7):
            sig = bytearray(signature)
            sig[bit // 8] ^= 1 << (bit % 8)
            out = add_and_check_rejected(r, cbor2.dumps([encoding, bytes(sig)]))
            assert out.rejection.code == "bad_signature"


# --------------------------------------------------------------------------- 2. specific bad inputs
#
# Each case builds one wire from a fresh replica and names the code it must be refused with.
# Builders get the replica so that they can sign the author's *next* event: only the named
# defect is wrong.


def _noncanonical(name: str, raw_of):
    """A header map with one value replaced by a hand-encoded ``raw_of(fields)``, signed as is."""

    def build(r):
        fields = next_fields(r, rep(3), "proposal.submit", SUBMIT)
        pairs = replace(canonical_pairs(fields), name, raw_of(fields))
        return seal(rep(3), raw_map(pairs))

    return build


def _reordered(r):
    fields = next_fields(r, rep(3), "proposal.submit", SUBMIT)
    pairs = canonical_pairs(fields)
    pairs[0], pairs[1] = pairs[1], pairs[0]  # "v" and "seq" swapped
    return seal(rep(3), raw_map(pairs))


def _body_reordered(r):
    fields = next_fields(r, rep(3), "proposal.submit", SUBMIT)
    body = raw_map(list(reversed(canonical_pairs(SUBMIT))))  # "title" before "summary"
    return seal(rep(3), raw_map(replace(canonical_pairs(fields), "body", body)))


def _duplicate_key(r):
    fields = next_fields(r, rep(3), "proposal.submit", SUBMIT)
    pairs = canonical_pairs(fields)
    return seal(rep(3), raw_map(pairs + [("kind", cbor2.dumps("comment"))]))


def _duplicate_author(r):
    """Two "author" keys: a lenient decoder keeps the last (the real signer), so a parser that
    disagreed with the strict one could be made to check the signature of one author while
    crediting the event to another."""
    fields = next_fields(r, rep(3), "proposal.submit", SUBMIT, author=bytes(rep(0).verify_key))
    pairs = canonical_pairs(fields) + [("author", cbor2.dumps(bytes(rep(3).verify_key)))]
    return seal(rep(3), raw_map(pairs))


def _wrapped_encoding(prefix: bytes = b"", suffix: bytes = b""):
    def build(r):
        fields = next_fields(r, rep(3), "proposal.submit", SUBMIT)
        return seal(rep(3), prefix + raw_map(canonical_pairs(fields)) + suffix)

    return build


def _outer(transform):
    """A valid next event whose outer ``[encoding, signature]`` is re-framed by ``transform``."""

    def build(r):
        wire = signed(rep(3), next_fields(r, rep(3), "proposal.submit", SUBMIT))
        encoding, signature = cbor2.loads(wire)
        return transform(encoding, signature)

    return build


def _bstr_long(b: bytes) -> bytes:
    """A byte string with its length in a longer form than needed."""
    return b"\x5a" + len(b).to_bytes(4, "big") + b


def _header(**override):
    """rep 3's next submit with header fields overridden (types sign_event could never write)."""

    def build(r):
        return signed(rep(3), next_fields(r, rep(3), "proposal.submit", SUBMIT, **override))

    return build


def _without(name: str):
    def build(r):
        fields = next_fields(r, rep(3), "proposal.submit", SUBMIT)
        del fields[name]
        return signed(rep(3), fields)

    return build


def _header_at_seq(seq: int, prev):
    """A header whose seq/prev pair is wrong for the position (prev given as bytes or None)."""

    def build(r):
        return signed(rep(3), next_fields(r, rep(3), "proposal.submit", SUBMIT, seq=seq, prev=prev))

    return build


def _body(key_index: int, kind: str, body_of):
    """A next event of rep ``key_index`` with the given kind and body."""

    def build(r):
        body = body_of() if callable(body_of) else body_of
        return signed(rep(key_index), next_fields(r, rep(key_index), kind, body))

    return build


def _by(key_of, kind: str, body_of, **override):
    def build(r):
        key = key_of()
        body = body_of() if callable(body_of) else body_of
        return signed(key, next_fields(r, key, kind, body, **override))

    return build


def _bad_signature(how: str):
    def build(r):
        wire = signed(rep(3), next_fields(r, rep(3), "proposal.submit", SUBMIT))
        encoding, signature = cbor2.loads(wire)
        if how == "flip":
            signature = bytes([signature[0] ^ 1]) + signature[1:]
        elif how == "other_key":
            signature = rep(2).sign(DOMAIN + encoding).signature
        elif how == "no_domain":
            signature = rep(3).sign(encoding).signature
        elif how == "zero":
            signature = bytes(64)
        elif how == "other_event":
            signature = cbor2.loads(world().held_back)[1]
        return cbor2.dumps([encoding, signature])

    return build


def _sized(total: int):
    """rep 3's next comment padded so that the wire is exactly ``total`` bytes."""

    def build(r):
        fields = next_fields(r, rep(3), "comment", comment_body())
        text = "a"
        for _ in range(50):
            fields["body"] = {"proposal": fields["body"]["proposal"], "text": text}
            wire = signed(rep(3), fields)
            diff = total - len(wire)
            if diff == 0:
                assert len(text) <= r.limits.max_text_chars
                return wire
            if diff > 0:  # 4-byte characters keep the text within max_text_chars
                text += "\U0001F5F3" * (diff // 4) + "a" * (diff % 4)
            else:
                text = text[:-1]
        raise AssertionError(f"could not build a wire of exactly {total} bytes")

    return build


def _too_large_by_bulk(r):
    """A comment whose text is within max_text_chars but whose bytes are far over max_event_bytes."""
    fields = next_fields(r, rep(3), "comment", {**comment_body(), "text": "\U0001F5F3" * r.limits.max_text_chars})
    return signed(rep(3), fields)


BAD_INPUTS = {
    # ---- non-canonical encodings (valid signature over the exact bytes)
    "int_in_longer_form_seq": (_noncanonical("seq", lambda f: long_uint(f["seq"])), "not_canonical"),
    "int_in_longer_form_v": (_noncanonical("v", lambda f: b"\x18\x01"), "not_canonical"),
    "int_in_longer_form_in_round": (
        _noncanonical("round", lambda f: b"\x82" + long_uint(f["round"][0]) + cbor2.dumps(f["round"][1])),
        "not_canonical",
    ),
    "bytes_length_in_longer_form": (_noncanonical("author", lambda f: _bstr_long(f["author"])), "not_canonical"),
    "map_keys_out_of_order": (_reordered, "not_canonical"),
    "body_keys_out_of_order": (_body_reordered, "not_canonical"),
    "duplicate_map_key": (_duplicate_key, "not_cbor"),
    "duplicate_author_key": (_duplicate_author, "not_cbor"),
    "indefinite_length_text": (
        _noncanonical("kind", lambda f: b"\x7f" + cbor2.dumps("proposal.") + cbor2.dumps("submit") + b"\xff"),
        "not_cbor",
    ),
    "indefinite_length_map_body": (
        _noncanonical("body", lambda f: b"\xbf" + b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in sorted(SUBMIT.items())) + b"\xff"),
        "not_cbor",
    ),
    "indefinite_length_array_round": (
        _noncanonical("round", lambda f: b"\x9f" + cbor2.dumps(f["round"][0]) + cbor2.dumps(f["round"][1]) + b"\xff"),
        "not_cbor",
    ),
    # a float in its shortest form re-encodes to the same bytes, so the header's type check
    # catches it; a float in a longer form than needed is caught as not canonical first
    "float_where_int_expected_seq": (_noncanonical("seq", lambda f: b"\xfb" + struct.pack(">d", f["seq"])), "bad_field"),
    "float_where_int_expected_round": (
        _noncanonical("round", lambda f: b"\x82\xfb" + struct.pack(">d", f["round"][0]) + cbor2.dumps(f["round"][1])),
        "bad_field",
    ),
    "float_where_text_expected_title": (
        _noncanonical("body", lambda f: raw_map(replace(canonical_pairs(SUBMIT), "title", b"\xfb" + struct.pack(">d", 1.5)))),
        "bad_body",
    ),
    "half_float_v_not_shortest_reencoding": (_noncanonical("v", lambda f: b"\xf9\x3c\x00"), "not_canonical"),
    "bool_true_as_version": (_noncanonical("v", lambda f: b"\xf5"), "unsupported_version"),
    "bool_true_as_seq": (_noncanonical("seq", lambda f: b"\xf5"), "bad_field"),
    "undefined_as_prev": (_noncanonical("prev", lambda f: b"\xf7"), "bad_field"),
    "simple_value_as_prev": (_noncanonical("prev", lambda f: b"\xf8\x20"), "bad_field"),
    "bignum_tag_seq": (_noncanonical("seq", lambda f: b"\xc2" + cbor2.dumps(f["seq"].to_bytes(1, "big"))), "not_canonical"),
    "epoch_date_tag_round": (
        _noncanonical("round", lambda f: b"\x82\xc1" + cbor2.dumps(f["round"][0]) + cbor2.dumps(f["round"][1])),
        "not_canonical",
    ),
    "unknown_tag_on_author": (_noncanonical("author", lambda f: b"\xd9\x03\xe8" + cbor2.dumps(f["author"])), "bad_field"),
    "unknown_tag_on_title": (
        _noncanonical("body", lambda f: raw_map(replace(canonical_pairs(SUBMIT), "title", b"\xd9\x03\xe8" + cbor2.dumps("T")))),
        "bad_body",
    ),
    "bignum_tag_round_number": (
        _noncanonical("round", lambda f: b"\x82\xc2" + cbor2.dumps(f["round"][0].to_bytes(1, "big")) + cbor2.dumps(f["round"][1])),
        "not_canonical",
    ),
    "self_describe_tag_on_encoding": (_wrapped_encoding(prefix=b"\xd9\xd9\xf7"), "not_canonical"),
    "trailing_bytes_in_encoding": (_wrapped_encoding(suffix=b"\x00"), "not_canonical"),
    "integer_map_key_in_body": (
        _noncanonical("body", lambda f: b"\xa3\x01\x01" + raw_map(canonical_pairs(SUBMIT))[1:]),
        "not_cbor",
    ),
    "bytes_map_key_in_body": (
        _noncanonical("body", lambda f: b"\xa3\x41\x01\x01" + raw_map(canonical_pairs(SUBMIT))[1:]),
        "bad_body",
    ),
    "bytes_map_key_in_header": (
        lambda r: seal(rep(3), b"\xa9\x41\x01\x01" + raw_map(canonical_pairs(next_fields(r, rep(3), "proposal.submit", SUBMIT)))[1:]),
        "bad_shape",
    ),
    "outer_encoding_length_in_longer_form": (
        _outer(lambda e, s: b"\x82\x5a" + len(e).to_bytes(4, "big") + e + cbor2.dumps(s)), "not_canonical"),
    "outer_signature_length_in_longer_form": (
        _outer(lambda e, s: b"\x82" + cbor2.dumps(e) + b"\x59\x00\x40" + s), "bad_shape"),
    "outer_indefinite_array": (_outer(lambda e, s: b"\x9f" + cbor2.dumps(e) + cbor2.dumps(s) + b"\xff"), "bad_shape"),
    "outer_indefinite_encoding": (_outer(lambda e, s: b"\x82\x5f" + cbor2.dumps(e) + b"\xff" + cbor2.dumps(s)), "bad_shape"),
    "outer_tagged": (_outer(lambda e, s: b"\xd9\xd9\xf7" + cbor2.dumps([e, s])), "bad_shape"),
    "outer_trailing_byte": (_outer(lambda e, s: cbor2.dumps([e, s]) + b"\x00"), "bad_shape"),
    "outer_two_events_concatenated": (_outer(lambda e, s: cbor2.dumps([e, s]) * 2), "bad_shape"),
    # ---- shape of the wire
    "outer_one_element": (_outer(lambda e, s: cbor2.dumps([e])), "bad_shape"),
    "outer_three_elements": (_outer(lambda e, s: cbor2.dumps([e, s, b""])), "bad_shape"),
    "outer_signature_as_text": (_outer(lambda e, s: cbor2.dumps([e, s.hex()])), "bad_shape"),
    "outer_signature_63_bytes": (_outer(lambda e, s: cbor2.dumps([e, s[:63]])), "bad_shape"),
    "outer_is_a_map": (_outer(lambda e, s: cbor2.dumps({"e": e, "s": s})), "bad_shape"),
    "outer_encoding_not_embedded": (_outer(lambda e, s: cbor2.dumps([cbor2.loads(e), s], canonical=True)), "bad_shape"),
    "encoding_is_an_array": (_wrapped_encoding(prefix=b"\x81"), "bad_shape"),
    "header_field_missing_body": (_without("body"), "bad_shape"),
    "header_field_missing_prev": (_without("prev"), "bad_shape"),
    "header_field_missing_v": (_without("v"), "bad_shape"),
    "header_extra_field": (_header(extra=1), "bad_shape"),
    # ---- wrong types / ranges of each header field
    "v_2": (_header(v=2), "unsupported_version"),
    "v_0": (_header(v=0), "unsupported_version"),
    "v_text": (_header(v="1"), "unsupported_version"),
    "v_none": (_header(v=None), "unsupported_version"),
    "assembly_31_bytes": (_header(assembly=bytes(31)), "bad_field"),
    "assembly_text": (_header(assembly="x" * 32), "bad_field"),
    "assembly_none": (_header(assembly=None), "bad_field"),
    "author_33_bytes": (_header(author=bytes(33)), "bad_field"),
    "author_list": (_header(author=[1, 2]), "bad_field"),
    "seq_0": (_header(seq=0), "bad_field"),
    "seq_negative": (_header(seq=-1), "bad_field"),
    "seq_text": (_header(seq="5"), "bad_field"),
    "seq_none": (_header(seq=None), "bad_field"),
    "seq_bytes": (_header(seq=b"\x05"), "bad_field"),
    "seq_above_max": (_header(seq=MAX_SEQ + 1), "bad_field"),
    "seq_1_with_prev": (_header_at_seq(1, bytes(32)), "bad_field"),
    "seq_2_without_prev": (_header_at_seq(2, None), "bad_field"),
    "prev_31_bytes": (_header(prev=bytes(31)), "bad_field"),
    "prev_text": (_header(prev="0" * 64), "bad_field"),
    "round_not_a_list": (_header(round=5), "bad_field"),
    "round_one_element": (_header(round=[5]), "bad_field"),
    "round_three_elements": (_header(round=[5, fake_round_prefix(5), b""]), "bad_field"),
    "round_negative": (_header(round=[-1, fake_round_prefix(1)]), "bad_field"),
    "round_zero_with_prefix": (_header(round=[0, bytes(8)]), "bad_field"),
    "round_without_prefix": (_header(round=[5, b""]), "bad_field"),
    "round_short_prefix": (_header(round=[5, bytes(7)]), "bad_field"),
    "round_number_text": (_header(round=["5", bytes(8)]), "bad_field"),
    "round_prefix_text": (_header(round=[5, "x" * 8]), "bad_field"),
    "round_too_large": (_header(round=[MAX_SEQ + 1, bytes(8)]), "bad_field"),
    "kind_int": (_header(kind=5), "bad_field"),
    "kind_none": (_header(kind=None), "bad_field"),
    "kind_bytes": (_header(kind=b"comment"), "bad_field"),
    # ---- size
    "one_byte_over_max_event_bytes": (_sized(Limits().max_event_bytes + 1), "too_large"),
    "text_within_limit_but_bytes_over": (_too_large_by_bulk, "too_large"),
    # ---- kind and body
    "unknown_kind": (_body(3, "vote.cast", {"choice": 1}), "unknown_kind"),
    "unknown_kind_empty": (_body(3, "", {}), "unknown_kind"),
    "unknown_kind_case": (_body(3, "Comment", comment_body), "unknown_kind"),
    "unknown_kind_very_long": (_body(3, "k" * 5000, {}), "unknown_kind"),
    "body_not_a_map": (_body(3, "proposal.submit", ["A", "B"]), "bad_body"),
    "body_none": (_body(3, "proposal.submit", None), "bad_body"),
    "body_missing_field": (_body(3, "proposal.submit", {"title": "Only a title"}), "bad_body"),
    "body_unknown_field": (_body(3, "proposal.submit", {**SUBMIT, "votes": 1000}), "bad_body"),
    "body_title_empty": (_body(3, "proposal.submit", {**SUBMIT, "title": ""}), "bad_body"),
    "body_title_too_long": (_body(3, "proposal.submit", {**SUBMIT, "title": "t" * 201}), "bad_body"),
    "body_title_not_text": (_body(3, "proposal.submit", {**SUBMIT, "title": b"title"}), "bad_body"),
    "body_title_with_nul": (_body(3, "proposal.submit", {**SUBMIT, "title": "a\x00b"}), "bad_body"),
    "body_summary_too_long": (
        _body(3, "proposal.submit", {**SUBMIT, "summary": "s" * (Limits().max_text_chars + 1)}), "bad_body"),
    "comment_text_too_long": (
        _body(3, "comment", lambda: {**comment_body(), "text": "c" * (Limits().max_text_chars + 1)}), "bad_body"),
    "comment_text_empty": (_body(3, "comment", lambda: {**comment_body(), "text": ""}), "bad_body"),
    "comment_proposal_31_bytes": (_body(3, "comment", lambda: {**comment_body(), "proposal": bytes(31)}), "bad_body"),
    "withdraw_proposal_text": (_body(3, "proposal.withdraw", {"proposal": "p" * 32}), "bad_body"),
    "certify_subject_33_bytes": (
        _by(lambda: world().registrar_keys[1], "registrar.certify", {"subject": bytes(33)}), "bad_body"),
    "charter_kind_bad_body": (_by(lambda: world().convenor_key, "charter", {"name": ""}), "charter_inside_assembly"),
    # ---- assembly
    "no_assembly": (_header(assembly=NO_ASSEMBLY), "wrong_assembly"),
    "random_assembly": (_header(assembly=bytes(range(32))), "wrong_assembly"),
    "another_assemblys_event": (_header(assembly=event_id(Simulation(seed=1, reps=4).charter_wire)), "wrong_assembly"),
    "another_assemblys_charter": (lambda r: world().other_charter, "wrong_assembly"),
    # ---- who signs
    "author_not_in_charter": (_by(lambda: world().outsider, "proposal.submit", SUBMIT), "unknown_author"),
    "representative_signs_certify": (_body(0, "registrar.certify", {"subject": bytes(32)}), "not_authorised"),
    "representative_signs_revoke": (_body(0, "registrar.revoke", {"subject": bytes(32)}), "not_authorised"),
    "representative_signs_charter": (_body(0, "charter", {"name": "A coup"}), "charter_inside_assembly"),
    "registrar_signs_submit": (_by(lambda: world().registrar_keys[1], "proposal.submit", SUBMIT), "not_authorised"),
    "registrar_signs_comment": (_by(lambda: world().registrar_keys[1], "comment", comment_body), "not_authorised"),
    "convenor_signs_comment": (_by(lambda: world().convenor_key, "comment", comment_body), "not_authorised"),
    # ---- signature
    "signature_bit_flipped": (_bad_signature("flip"), "bad_signature"),
    "signature_by_another_member": (_bad_signature("other_key"), "bad_signature"),
    "signature_without_domain": (_bad_signature("no_domain"), "bad_signature"),
    "signature_all_zero": (_bad_signature("zero"), "bad_signature"),
    "signature_of_another_event": (_bad_signature("other_event"), "bad_signature"),
    "author_not_a_valid_public_key": (_header(author=b"\xff" * 32), "unknown_author"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_specific_bad_input(name):
    """Each defect is refused with its own stable code, a sentence, and no change to the
    replica.  The codes are part of the interface (``klero verify --json``, golden vectors)."""
    build, code = BAD_INPUTS[name]
    r = fresh()
    before = snapshot(r)
    wire = build(r)
    outcome = add_and_check_rejected(r, wire, before)
    assert outcome.rejection.code == code, outcome.rejection
    # a refused event is refused again, the same way: nothing about it was remembered
    assert r.add(wire) == outcome
    assert snapshot(r) == before


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_pipeline_signature_precheck_changes_no_verdict(name):
    """``klero verify`` checks signatures on worker processes with a lenient parser
    (``p2p.pipeline.check_signatures``) and then tells the replica ``signature_checked``.
    For every crafted bad input, the verdict must be the same as with the replica's own check:
    a worker's 'signature fine' must never let a malformed event through."""
    build, _ = BAD_INPUTS[name]
    r = fresh()
    wire = build(r)
    [ok] = check_signatures([wire])
    assert r.add(wire, signature_checked=ok) == fresh().add(wire)


def test_exactly_max_event_bytes_is_accepted():
    """The size limit is inclusive: the one-byte-over case above is refused for its size only."""
    r = fresh()
    wire = _sized(r.limits.max_event_bytes)(r)
    assert len(wire) == r.limits.max_event_bytes
    assert r.add(wire).status == "applied"


def test_unknown_kind_reason_is_bounded():
    """A hostile kind name is not echoed whole into the reason a person reads."""
    r = fresh()
    out = add_and_check_rejected(r, _body(3, "k" * 5000, {})(r))
    assert len(out.rejection.reason) < 200


def test_cyclic_shared_references_are_refused():
    """cbor2 decodes shared-reference tags (28/29) into self-containing lists and maps.  A
    checker that walks such a value without a depth bound recurses until ``RecursionError``,
    and a re-encoder meets a cycle; neither is an ``InvalidInput``, so either would escape
    ``Replica.add`` (and ``peek_kind``, which ``klero verify`` runs on files).  Cycles as the
    whole wire, and inside a correctly signed encoding."""
    r = fresh()
    cyclic_list = bytes.fromhex("d81c81d81d00")  # shareable([sharedref(0)])
    cyclic_map = bytes.fromhex("d81ca16161d81d00")  # shareable({"a": sharedref(0)})
    for bad in (cyclic_list, cyclic_map):
        add_and_check_rejected(r, bad)
        out = add_and_check_rejected(r, seal(rep(0), bad))
        assert out.rejection.code in {"not_canonical", "not_cbor"}
        assert peek_kind(bad) is None and peek_kind(seal(rep(0), bad)) is None
        for decoder in (cbor.decode, cbor.decode_fast):
            with pytest.raises(InvalidInput):
                decoder(bad)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=200), cbor_values().map(cbor2.dumps)))
@example(bytes.fromhex("d81c81d81d00"))
@example(bytes.fromhex("81" * 40 + "00"))  # nested deeper than MAX_DEPTH
def test_strict_decoders_raise_only_invalid_input(data):
    """``cbor.decode`` and ``cbor.decode_fast`` are the doors every event passes: on any bytes
    they return a value or raise ``InvalidInput`` ('not_cbor' or 'not_canonical')."""
    for decoder in (cbor.decode, cbor.decode_fast):
        try:
            value = decoder(data)
        except InvalidInput as exc:
            assert exc.rejection.code in {"not_cbor", "not_canonical"}
            assert_rejection_readable(exc.rejection)
        else:
            assert cbor2.dumps(value) == data


def test_replayed_events_are_duplicates():
    """Replaying what a node already holds (applied events, the charter, a pending event, both
    sides of a fork) is harmless: 'duplicate' for the first three, and no change at all."""
    w = world()
    r = fresh()
    before = snapshot(r)
    for wire in w.base[1:6]:
        out = r.add(wire)
        assert out.status == "duplicate" and out.event_id == event_id(wire)
    out = r.add(w.charter)
    assert out.status == "duplicate" and out.event_id == w.assembly
    assert r.add(w.pending).status == "duplicate"
    # both sides of the fork: the author is excluded from the fork on, nothing new happens
    for side in w.fork:
        assert r.add(side).status in {"duplicate", "rejected"}
    assert snapshot(r) == before


def test_a_duplicate_is_found_before_its_signature_is_checked():
    """Issue 17: every gossiped copy of an event paid a signature check before the replica saw
    it already held the same bytes.  A held event is now found by one ledger lookup; a different
    event under the same (author, seq) still has its signature checked."""
    import consensus.replica as replica_module

    w = world()
    r = fresh()
    calls = []
    real = replica_module.verify_signature
    with mock.patch.object(replica_module, "verify_signature", side_effect=lambda *a: calls.append(a) or real(*a)):
        for wire in w.base[1:6]:
            assert r.add(wire).status == "duplicate"
        assert r.add(w.pending).status == "duplicate"
        assert calls == [], "no signature was checked for bytes already held"
        head = r.heads[bytes(rep(2).verify_key)]
        other = signed(rep(2), next_fields(r, rep(2), "proposal.submit", {"title": "Another", "summary": "Same seq."},
                                           seq=head.seq))
        assert r.add(other).status != "duplicate"
    assert calls, "a new version of a held seq is checked like any event"


def test_gap_is_pending_until_filled():
    """An event beyond the author's next seq waits as 'pending' (kept, not applied, state hash
    unchanged) and is applied when its predecessor arrives."""
    w = world()
    r = fresh()
    key = rep(3)
    first = signed(key, next_fields(r, key, "proposal.submit", SUBMIT))
    head = r.heads[bytes(key.verify_key)]
    second = signed(key, next_fields(r, key, "proposal.submit", SUBMIT, seq=head.seq + 2, prev=event_id(first)))
    hash_before = r.state_hash()
    out = r.add(second)
    assert out.status == "pending" and out.rejection is None
    assert r.state_hash() == hash_before
    assert r.add(second).status == "duplicate"
    out = r.add(first)
    assert out.status == "applied" and out.applied == (event_id(first), event_id(second))
    # the base replica's own pending event is released by its held-back predecessor
    out = r.add(w.held_back)
    assert out.applied == (event_id(w.held_back), event_id(w.pending))


def test_too_far_ahead_is_refused_without_storing():
    """An author cannot make a node store events arbitrarily far ahead of their chain."""
    r = fresh()
    key = rep(3)
    head = r.heads[bytes(key.verify_key)]
    far = head.seq + r.limits.max_pending_ahead + 1
    wire = signed(key, next_fields(r, key, "proposal.submit", SUBMIT, seq=far, prev=bytes(32)))
    assert add_and_check_rejected(r, wire).rejection.code == "too_far_ahead"


def test_fork_is_equivocation_and_later_events_are_evidence_only():
    """Two different signed events at one seq are an 'equivocation' (both kept as proof); after
    it, that author's events from the fork on (every version) are kept as evidence (a
    certificate may have decided them) but never extend the chain."""
    w = world()
    r = Replica(w.charter)
    r.add_all(w.base[1 : w.base.index(w.fork[0])])
    assert r.add(w.fork[0]).status == "applied"
    out = r.add(w.fork[1])
    assert out.status == "equivocation" and out.rejection.code == "equivocation"
    assert_rejection_readable(out.rejection)
    author = bytes(rep(1).verify_key)
    assert r.ledger.forks[(author, w.fork_seq)] == (w.fork[0], w.fork[1])
    later = signed(rep(1), next_fields(r, rep(1), "proposal.submit", SUBMIT, seq=w.fork_seq + 1, prev=event_id(w.fork[0])))
    heads, records = dict(r.heads), dict(r.records)
    kept = r.add(later)
    assert kept.status == "excluded" and kept.rejection.code == "excluded_after_fork" and not kept.rejection.fatal
    assert_rejection_readable(kept.rejection)
    assert r.heads == heads and r.records == records and event_id(later) in r.evidence
    assert r.add(later).status == "duplicate"
    # a third version of the fork's seq is evidence too: which versions a replica keeps must not
    # depend on the order they came in
    third = signed(rep(1), next_fields(r, rep(1), "proposal.submit", {"title": "third", "summary": ""}, seq=w.fork_seq,
                                       prev=event_id(w.fork[0])))
    assert r.add(third).status == "excluded" and event_id(third) in r.evidence and r.heads == heads
    assert r.add(third).status == "duplicate"


@pytest.mark.parametrize("convenor_on_roster", [False, True])
def test_convenor_equivocating_with_the_charter_does_not_raise(convenor_on_roster):
    """The convenor's charter is their seq 1 and founds the assembly, so nothing else can take
    its place: a second event the convenor signs at seq 1 is refused outright (it once made
    ``add`` raise with the fork half recorded).

    Two ways to get there: a second 'charter'-kind event naming this assembly (the convenor may
    sign that kind), or, when the convenor is also on the roster, an ordinary submit at seq 1.
    """
    convenor = derived_key(7, "convenor", 0)
    reps = [derived_key(7, "rep", i) for i in range(2)]
    roster = [bytes(k.verify_key) for k in reps] + ([bytes(convenor.verify_key)] if convenor_on_roster else [])
    charter = Charter(name="Small assembly", roster=tuple(roster))
    charter_wire = sign_event(convenor, assembly=NO_ASSEMBLY, seq=1, prev=None, kind="charter", body=charter)
    r = Replica(charter_wire)
    assembly = event_id(charter_wire)
    if convenor_on_roster:
        second = sign_event(convenor, assembly=assembly, seq=1, prev=None, kind="proposal.submit", body=SUBMIT)
    else:
        second = sign_event(convenor, assembly=assembly, seq=1, prev=None, kind="charter", body={"name": "Second"})
    before = snapshot(r)
    outcome = r.add(second)
    assert outcome.status == "rejected"
    assert outcome.rejection.code == ("charter_position" if convenor_on_roster else "charter_inside_assembly")
    assert snapshot(r) == before


# --------------------------------------------------------------------------- charters from bytes


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300), cbor_values().map(lambda v: cbor2.dumps(v, canonical=True))))
def test_decode_charter_and_peek_kind_on_arbitrary_bytes(data):
    """``klero verify`` looks for charters in files with ``peek_kind`` and ``decode_charter``:
    on arbitrary bytes the first returns None or a str, the second raises only InvalidInput."""
    kind = peek_kind(data)
    assert kind is None or type(kind) is str
    with pytest.raises(InvalidInput) as info:
        decode_charter(data)
    assert_rejection_readable(info.value.rejection)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_charter_is_refused(data):
    """A charter with a bit flipped is refused (as a charter) with a reason; it can never found
    an assembly under the convenor's name."""
    charter = world().charter
    bit = data.draw(st.integers(0, len(charter) * 8 - 1))
    buf = bytearray(charter)
    buf[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises(InvalidInput) as info:
        Replica(bytes(buf))
    assert_rejection_readable(info.value.rejection)


# --------------------------------------------------------------------------- 3. framing: item_length, iter_items


class CountingBuffer:
    """A read-only buffer that counts how often it is indexed (to bound item_length's work)."""

    def __init__(self, data: bytes):
        self.data = data
        self.reads = 0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index):
        self.reads += 1
        return self.data[index]


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 300), st.sampled_from([1, 2, 16, 1 << 24]))
@example(bytes.fromhex("9a01000000"), 0, 1 << 24)  # claims 2**24 items in 5 bytes
@example(bytes.fromhex("9b" + "ff" * 8), 0, 1 << 24)
@example(bytes.fromhex("5b" + "ff" * 8), 0, 1 << 24)
@example(bytes.fromhex("bb" + "ff" * 8), 0, 1 << 24)
@example(bytes.fromhex("db" + "ff" * 8), 0, 1 << 24)
@example(b"\xd8\x1c" * 100, 0, 1 << 24)  # a long chain of tags
def test_item_length_on_arbitrary_bytes(buf, pos, max_bytes):
    """``item_length`` on hostile bytes: only IndexError (ends inside the item) or ValueError
    (what a strict encoder never writes, or too large), work linear in the input whatever it
    claims, and a returned length that fits in the buffer and in ``max_bytes``."""
    pos = min(pos, len(buf))
    counting = CountingBuffer(buf)
    try:
        n = cbor.item_length(counting, pos, max_bytes=max_bytes)
    except (IndexError, ValueError):
        n = None
    assert counting.reads <= 2 * (len(buf) - pos) + 2, "item_length did more work than the input allows"
    if n is None:
        return
    assert 1 <= n <= len(buf) - pos and n <= max_bytes
    # the length depends only on the item's own bytes ...
    assert cbor.item_length(buf[: pos + n], pos, max_bytes=max_bytes) == n
    assert cbor.item_length(memoryview(buf), pos, max_bytes=max_bytes) == n
    # ... and any strict prefix of the item is reported as truncated, never as malformed:
    # iter_items relies on this to know when to read more
    for k in sorted({0, n // 2, n - 1}):
        with pytest.raises(IndexError):
            cbor.item_length(buf[: pos + k], pos, max_bytes=max_bytes)


@settings(max_examples=300, deadline=None)
@given(st.lists(cbor_values(tags=True), min_size=1, max_size=4))
def test_item_length_frames_what_cbor2_writes(values):
    """On definite-length CBOR (what any strict encoder writes) ``item_length`` finds exactly
    each item of a sequence."""
    items = [cbor2.dumps(v) for v in values]
    seq = b"".join(items)
    pos = 0
    for item in items:
        assert cbor.item_length(seq, pos) == len(item)
        pos += len(item)


def _collect(stream, limit: int) -> list:
    """Everything ``iter_items`` yields, failing if it yields more than ``limit`` things."""
    out = list(itertools.islice(iter_items(stream), limit + 1))
    assert len(out) <= limit, "iter_items yielded more results than the input could hold"
    return out


def _check_items(data: bytes, results: list) -> None:
    pos = 0
    for i, result in enumerate(results):
        if isinstance(result, LogDamage):
            assert i == len(results) - 1, "LogDamage must be the last thing yielded"
            assert result.index == i and result.offset == pos
            assert result.reason and result.reason[0].isupper() and result.reason.endswith(".")
            assert pos < len(data)
            return
        index, offset, item = result
        assert index == i and offset == pos and type(item) is bytes and item
        assert data[pos : pos + len(item)] == item
        assert cbor.item_length(item) == len(item)
        pos += len(item)
    assert pos == len(data), "iter_items stopped early without a LogDamage"


class ShortReads(io.RawIOBase):
    """A stream that returns fewer bytes than asked for, as pipes and sockets do."""

    def __init__(self, data: bytes, sizes: list[int]):
        self._data = data
        self._pos = 0
        self._sizes = itertools.cycle(sizes)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        k = min(n if n >= 0 else len(self._data), next(self._sizes))
        chunk = self._data[self._pos : self._pos + k]
        self._pos += len(chunk)
        return chunk


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=400),
        st.lists(cbor_values(), max_size=5).map(lambda vs: b"".join(cbor2.dumps(v) for v in vs)),
        st.tuples(st.lists(st.sampled_from(world().valid_wires()), max_size=4), st.binary(max_size=20)).map(
            lambda t: b"".join(t[0]) + t[1]
        ),
    ),
    st.sampled_from([1, 2, 3, 7, 64, logfile.CHUNK]),
    st.lists(st.integers(1, 50), min_size=1, max_size=4),
)
@example(b"", 1, [1])
@example(b"\x82", 1, [1])
def test_iter_items_on_arbitrary_bytes(data, chunk, short_reads):
    """Reading a log file of hostile bytes: items whose concatenation is a prefix of the file,
    then (unless the whole file was read) exactly one LogDamage at the first unreadable byte.
    Never an exception, never an endless loop, and the same answer however the file arrives
    (chunk size, short reads)."""
    limit = len(data) + 1
    reference = _collect(io.BytesIO(data), limit)
    _check_items(data, reference)
    with mock.patch.object(logfile, "CHUNK", chunk):
        assert _collect(io.BytesIO(data), limit) == reference
        assert _collect(ShortReads(data, short_reads), limit) == reference


def test_iter_items_oversized_claim_is_damage_not_a_read():
    """An item that claims to be larger than any event is damage at once; the reader does not
    try to buffer gigabytes for it."""
    data = b"\x5b" + (1 << 40).to_bytes(8, "big") + b"x" * 10
    results = _collect(io.BytesIO(data), 2)
    assert len(results) == 1 and isinstance(results[0], LogDamage) and results[0].offset == 0
    valid = world().held_back
    results = _collect(io.BytesIO(valid + b"\x5a" + (logfile.MAX_ITEM + 1).to_bytes(4, "big")), 3)
    assert results[0] == (0, 0, valid)
    assert isinstance(results[1], LogDamage) and results[1].offset == len(valid)


# --------------------------------------------------------------------------- 4. Charter.from_body

#: keys a charter body may or may not have, plus strangers
CHARTER_KEYS = st.sampled_from(["name", "registrars", "roster", "limits", "stage", "", "Name"])
LIMIT_KEYS = st.sampled_from([*Limits._RANGES, "max_votes", ""])
KEY32 = st.binary(min_size=32, max_size=32)


def _canonical_order(d):
    """``d`` with its text keys (and those of a nested limits map) in canonical order."""
    if not isinstance(d, dict) or not all(type(k) is str for k in d):
        return d
    return {k: _canonical_order(d[k]) if k == "limits" else d[k] for k in sorted(d, key=key_order)}


def _out_of_order(d) -> bool:
    """Whether a map, or the charter's nested limits map, has text keys out of canonical order."""
    if not isinstance(d, dict):
        return False
    keys = list(d)
    if all(type(k) is str for k in keys) and keys != sorted(keys, key=key_order):
        return True
    return _out_of_order(d.get("limits"))


def _check_charter_outcome(body) -> None:
    try:
        charter = Charter.from_body(body)
    except InvalidInput as exc:
        assert_rejection_readable(exc.rejection)
        if exc.rejection.code == "not_canonical":
            assert _out_of_order(body), exc.rejection
        else:
            assert exc.rejection.code == "bad_charter", exc.rejection
        return
    assert isinstance(charter, Charter)
    # whatever is accepted survives the trip through the wire unchanged
    assert Charter.from_body(cbor.decode(cbor.encode(charter.to_body()))) == charter


CHARTER_LIKE = st.dictionaries(
    CHARTER_KEYS,
    st.one_of(
        st.text(max_size=210),
        st.lists(st.one_of(KEY32, st.binary(max_size=33), st.integers()), max_size=4),
        st.dictionaries(LIMIT_KEYS, st.one_of(st.integers(-5, 1 << 25), st.sampled_from([16, 1024, 65536, 1 << 24])), max_size=5),
        st.none(),
        st.integers(),
    ),
    max_size=5,
)


def _maybe_canonical(strategy):
    """Half the dicts in canonical key order, so that the checks behind the order check run."""
    return st.tuples(strategy, st.booleans()).map(lambda t: _canonical_order(t[0]) if t[1] else t[0])


@settings(max_examples=400, deadline=None)
@given(_maybe_canonical(st.one_of(CHARTER_LIKE, st.dictionaries(st.text(max_size=10), cbor_values(tags=False), max_size=5))))
@example({"name": "ok", "limits": {"max_text_chars": 70000}})
@example({"name": "ok", "roster": [bytes(32), bytes(32)]})
@example({"name": " "})
@example({"name": "ok", "limits": {"max_text_chars": 1 << 20, "max_event_bytes": 1 << 21}})
def test_charter_from_body_with_text_keyed_dicts(body):
    """Charter bodies with text keys (all the wire can deliver): either a Charter, or
    InvalidInput with code 'bad_charter' ('not_canonical' when, and only when, a map's keys are
    out of canonical order) and a sentence; nothing else escapes."""
    _check_charter_outcome(body)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers(), max_size=3), st.binary()))
def test_charter_from_body_with_non_maps(body):
    """A charter body that is not a map is refused with 'bad_charter'."""
    with pytest.raises(InvalidInput) as info:
        Charter.from_body(body)
    assert info.value.rejection.code == "bad_charter"


@settings(max_examples=300, deadline=None)
@given(
    _maybe_canonical(
        st.dictionaries(
            st.one_of(CHARTER_KEYS, st.integers(), st.binary(max_size=4), st.none(), st.booleans(), st.floats()),
            st.one_of(
                st.text(max_size=20),
                st.dictionaries(st.one_of(LIMIT_KEYS, st.integers(), st.binary(max_size=2)), st.integers(), max_size=3),
                cbor_values(),
            ),
            max_size=5,
        )
    )
)
@example({0: "x"})
@example({"name": "ok", 0: "x"})
@example({"name": "ok", "limits": {0: 1}})
@example({"limits": {b"x": 1, "max_votes": 2}, "name": "ok"})
def test_charter_from_body_with_arbitrary_dicts(body):
    """``Charter.from_body`` is a public constructor: with any dict (keys of any type, values of
    any type) it returns a Charter or raises InvalidInput, never another exception.  (Building
    the 'unknown parameters' sentence with ``sorted``/``join`` over non-text keys used to raise
    TypeError.)"""
    _check_charter_outcome(body)
