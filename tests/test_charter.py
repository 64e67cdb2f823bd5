"""Charters: templates load, parameters round-trip, unknown or contradictory ones are refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.beacon import QUICKNET, chain_to_body
from consensus.cbor import key_order
from consensus.charter import Charter
from consensus.errors import InvalidInput
from consensus.parliament import Parliament
from p2p.beacon import load_chain
from p2p.founding import TEMPLATES, canonical, load_template


def parliament(**changes) -> dict:
    body = canonical(load_template("demo")["parliament"])
    body.update(changes)
    return canonical(body)


@pytest.mark.parametrize("name", TEMPLATES)
def test_shipped_templates_are_valid_and_round_trip(name):
    p = Parliament.from_body(canonical(load_template(name)["parliament"]))
    assert Parliament.from_body(p.to_body()) == p
    assert [s.mode for s in p.stages] == ["edit", "amend", "comment"]


def test_city_template_matches_the_design():
    p = Parliament.from_body(canonical(load_template("city")["parliament"]))
    assert [s.committee for s in p.stages] == [7, 31, 127]
    assert [s.slots for s in p.stages] == [40, 10, 3]
    assert p.cycle_rounds * 3 == 7 * 24 * 3600  # seven days of 3-second quicknet rounds
    assert (p.max_seats, p.submissions_per_cycle, p.panel_size) == (5, 2, 31)


def test_pinned_quicknet_in_code_equals_the_resource():
    assert load_chain("quicknet") == QUICKNET and load_chain("quicknet").hash == QUICKNET.hash


def test_charter_round_trips_with_its_beacon_and_parliament():
    c = Charter(name="Town", roster=tuple(bytes([i]) * 32 for i in range(10)), parliament=Parliament.from_body(parliament()))
    again = Charter.from_body(c.to_body())
    assert again == c and again.beacon.hash == c.beacon.hash


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"quorum": 3}, "unknown parameters"),
        ({"cycle_rounds": 10}, "too short"),
        ({"draw_delay": 0}, "draw_delay must be"),
        ({"max_seats": 0}, "max_seats must be"),
        ({"stages": []}, "1 to 8 stages"),
        ({"stages": [{"mode": "comment", "committee": 3, "slots": 1}]}, "first stage must be the drafting stage"),
        ({"stages": [{"mode": "edit", "committee": 3, "slots": 1, "threshold": 4}]}, "larger than its committee"),
        ({"stages": [{"mode": "edit", "committee": 3, "slots": 1}, {"mode": "amend", "committee": 5, "slots": 1}]}, "needs amend_rounds"),
        ({"stages": [{"mode": "edit", "committee": 3, "slots": 1, "amend_rounds": 2}]}, "does not amend"),
        ({"stages": [{"mode": "edit", "committee": 3, "slots": 1}, {"mode": "edit", "committee": 5, "slots": 1}]}, "Only the first stage"),
        ({"stages": [{"mode": "vote", "committee": 3, "slots": 1}]}, "mode of stage 1"),
        ({"plenary": {"quorum_permille": 1001}}, "quorum_permille"),
    ],
)
def test_contradictory_or_unknown_parameters_are_refused_with_a_reason(changes, words):
    with pytest.raises(InvalidInput) as info:
        Parliament.from_body(canonical(parliament(**changes)))
    assert info.value.rejection.code == "bad_charter"
    assert words in info.value.rejection.reason


def test_a_charter_with_a_bad_beacon_is_refused():
    body = Charter(name="Town").to_body()
    beacon = dict(chain_to_body(QUICKNET))
    beacon["public_key"] = bytes(96)
    body["beacon"] = canonical(beacon)
    with pytest.raises(InvalidInput) as info:
        Charter.from_body(body)
    assert info.value.rejection.code == "bad_charter" and "beacon" in info.value.rejection.reason


scalars = st.one_of(st.integers(-5, 10**7), st.text(max_size=5), st.binary(max_size=4), st.none(), st.booleans())


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(list(Parliament.SCALARS) + ["stages", "plenary", "junk"]),
                       st.one_of(scalars, st.lists(st.dictionaries(st.text(max_size=12), scalars, max_size=6), max_size=3),
                                 st.dictionaries(st.text(max_size=16), scalars, max_size=4)), max_size=9))
def test_arbitrary_parliaments_give_a_reason_or_a_valid_one(body):
    try:
        p = Parliament.from_body(canonical(body))
    except InvalidInput as exc:
        assert exc.rejection.code in ("bad_charter", "not_canonical") and exc.rejection.reason
    else:
        assert Parliament.from_body(p.to_body()) == p


def test_a_limit_added_later_is_written_only_when_set():
    """Adding a limit to the protocol keeps existing charters' bytes (and assembly ids) the same."""
    from consensus.charter import Limits

    assert "max_doc_changes_per_round" not in Limits().to_body()
    assert set(Limits().to_body()) == set(Limits._FIRST)
    tight = Limits(max_doc_changes_per_round=2)
    assert tight.to_body()["max_doc_changes_per_round"] == 2
    assert Limits.from_body(tight.to_body()) == tight


SEED = "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWNLHwhf6fw95Zfr9fmQh7qFTWpNQHDwQsBFxhQQ24yiQq"


def test_bootstrap_peers_round_trip_and_are_written_only_when_given():
    """Seed peers in the charter: a new node dials them first.  A charter without any keeps the
    bytes (and assembly id) it had before the field existed."""
    plain = Charter(name="Town")
    assert "bootstrap" not in plain.to_body()
    seeded = Charter(name="Town", bootstrap=(SEED, SEED.replace("203.0.113.7", "198.51.100.2")))
    assert Charter.from_body(seeded.to_body()) == seeded and seeded.to_body()["bootstrap"][0] == SEED


@pytest.mark.parametrize("bad", [
    [], "not a list", [SEED, SEED], [b"/ip4/1.2.3.4/tcp/1/p2p/x"], ["/ip4/1.2.3.4/tcp/1"], ["ip4/1.2.3.4/tcp/1/p2p/X"],
    ["/ip4/1.2.3.4/tcp/1/p2p/X Y"], ["/ip4/1.2.3.4/tcp/1/p2p/" + "X" * 300], [SEED + "é"], [SEED + str(i) for i in range(65)],
])
def test_bad_bootstrap_peers_are_refused_with_a_reason(bad):
    body = {**Charter(name="Town").to_body(), "bootstrap": bad}
    with pytest.raises(InvalidInput) as caught:
        Charter.from_body({k: body[k] for k in sorted(body, key=key_order)})
    assert caught.value.rejection.code == "bad_charter" and "bootstrap" in caught.value.rejection.reason


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=40), st.integers()), max_size=70))
def test_any_bootstrap_value_is_either_accepted_as_printable_addresses_or_refused(value):
    body = {**Charter(name="Town").to_body(), "bootstrap": value}
    try:
        charter = Charter.from_body({k: body[k] for k in sorted(body, key=key_order)})
    except InvalidInput as exc:
        assert exc.rejection.code == "bad_charter"
    else:
        assert all(a.isascii() and a.isprintable() and "/p2p/" in a for a in charter.bootstrap)
