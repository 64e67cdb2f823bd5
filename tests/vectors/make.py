"""Regenerate the golden vectors: `python tests/vectors/make.py` (the constituency vector), with
`--all` the demo-run vectors too (their simulation's output has drifted since they were made, so
regenerating them changes their bytes: do it only on purpose).

Each vector is a log (an RFC 8742 CBOR sequence of signed events and beacon rounds) plus a JSON
file with what any correct implementation must conclude from it: the state hash, every
rejected item's code, every equivocation, every ballot's counts and outcome, every proposal's
final status.  They are data, meant for a second implementation or an auditor as much as for our
own tests.  Regenerate only when the format or the rules change on purpose, and say so in the
commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))


def expected_of(path: Path) -> dict:
    from p2p.audit import verify_log

    report = verify_log(path, workers=1).as_dict()
    return {
        "state_hash": report["state_hash"],
        "events": report["events"],
        "rounds": report["rounds"],
        "rejected": [{"index": r["index"], "code": r["code"]} for r in report["rejected"]],
        "equivocations": [{"author": e["author"], "seq": e["seq"], "versions": len(e["events"])} for e in report["equivocations"]],
        "cycles": report["cycles"],
        "proposals": [{"id": p["id"], "status": p["status"], "stage": p["stage"]} for p in report["proposals"]],
        "ballots": [
            {k: b[k] for k in ("kind", "proposal", "amendment", "cycle", "stage", "counts", "outcome")}
            | {"neutralised": sorted(n["code"] for n in b["neutralised"])}
            for b in report["ballots"]
        ],
        "draws": [{k: d[k] for k in ("proposal", "cycle", "stage", "round", "seed", "members")} for d in report["draws"]],
        "deadlines": report["deadlines"],
        "panel_equivocations": [{k: e[k] for k in ("author", "kind", "round")} for e in report["panel_equivocations"]],
    }


def constituency_run() -> list[bytes]:
    """An assembly whose seats come from constituencies (9 bots, 3 constituent bots each, a cap
    of 4 members), with one bad act of every kind the rules neutralise, and a seat that moves in
    the middle of cycle 0 (so it changes at the boundary of cycle 1, not before)."""
    from nacl.signing import SigningKey

    from p2p.tools.bots import AssemblySim, Behaviour

    def make():
        return AssemblySim("demo", seed=21, proposals=3, cycles=3, start_round=30, constituents=3,
                           behaviour=Behaviour(0, 0, 0, 0), representation={"max_constituency": 4})

    probe = make()
    items = list(probe.run())
    groups = {r.author: r.id for r in probe.replica.records.values() if r.kind == "constituency.found"}
    sim = make()
    n, at = len(sim.bots), 28  # constituents are signers n..; the setup acts name round 25
    gid = [groups[b.public] for b in sim.bots]
    fresh = [bytes(SigningKey(bytes([i]) * 32).verify_key) for i in (1, 2)]
    person = bytes([7]) * 32
    acts = [
        (-1, "registrar.revoke", {"subject": sim.signer(n + 7).public}),    # a constituent of group 2 loses their certification
        (n + 7, "endorse", {"constituency": gid[2], "member": sim.bots[2].public}),  # and acts no more
        (-1, "registrar.certify", {"subject": fresh[0], "person": person}),
        (-1, "registrar.certify", {"subject": fresh[1], "person": person}),  # the same person twice
        (n + 3, "constituency.join", {"constituency": gid[0]}),              # already a member of group 1
        (1, "constituency.leave", {"constituency": gid[1]}),
        (1, "constituency.join", {"constituency": gid[0]}),                  # group 0 is full (4)
        (n + 1, "endorse", {"constituency": gid[0], "member": sim.bots[5].public}),  # not a member there
        (n + 4, "endorse", {"constituency": gid[0], "member": sim.bots[0].public}),  # not a member of group 0
    ] + [(n + 6, "serve", {"answer": "yes"})] * 7                                   # 9 acts in one cycle: a flood
    for signer, kind, body in acts:
        sim.plan_act(at, signer, kind, body)
    mid = sim.legislature.cycle_start(0) + 50
    sim.plan_act(mid, n + 9, "serve", {"answer": "yes"})
    for c in (n + 9, n + 10, n + 11):  # bot 3's constituents turn to one of themselves
        sim.plan_act(mid, c, "endorse", {"constituency": gid[3], "member": sim.signer(n + 9).public})
    from consensus.events import sign_event

    # a key no registrar certified: its act waits for ever (verify: not_certified)
    stranger = sign_event(SigningKey(bytes([3]) * 32), assembly=sim.assembly, seq=1, prev=None, kind="constituency.join",
                          body={"constituency": gid[0]})
    return list(sim.run()) + [stranger]


def representation_of(path: Path) -> dict:
    from p2p.audit import verify_log

    report = verify_log(path, workers=1).as_dict()
    return {
        "state_hash": report["state_hash"],
        "cycles": report["cycles"],
        "rejected": [{"index": r["index"], "code": r["code"]} for r in report["rejected"]],
        "rosters": report["rosters"],
        "seats": report["seats"],
        "representation_problems": report["representation_problems"],
        "duplicates": report["duplicates"],
        "decided_seats": {str(d["cycle"]): d.get("decided_seats") for d in report["deadlines"] if d["what"] == "intake"},
        "decided_absent": {str(d["cycle"]): d.get("decided_absent", []) for d in report["deadlines"] if d["what"] == "intake"},
    }


def hostile_items(sim, sim_items: list[bytes]) -> list[bytes]:
    """A few items every implementation must reject, each for its own reason."""
    import cbor2

    from consensus.events import decode_charter, sign_event
    from p2p.tools.simulate import derived_key

    assembly = decode_charter(sim_items[0]).id
    event = next(i for i in sim_items[1:] if i[:1] == b"\x82")
    flipped = bytearray(event)
    flipped[-1] ^= 1
    stranger = sign_event(derived_key(99, "stranger", 0), assembly=assembly, seq=1, prev=None, kind="comment",
                          body={"proposal": bytes(32), "text": "not a member"})
    other_assembly = sign_event(derived_key(99, "stranger", 1), assembly=bytes(range(32)), seq=1, prev=None, kind="comment",
                                body={"proposal": bytes(32), "text": "elsewhere"})
    # a correctly signed event of a kind nobody defined, by a seated representative
    unknown = sign_event(sim.bots[0].key, assembly=assembly, seq=10_000, prev=bytes(32), kind="referendum", body={})
    return [bytes(flipped), stranger, other_assembly, cbor2.dumps({"a": 1}), unknown]


def finality_attacks(sim, sim_items: list[bytes]) -> list[bytes]:
    """What a legitimate key can still sign once a deadline is certified (issue 12), appended after
    the run: a committee member's second version of a counted promote vote (an equivocation:
    it changes no tally), a third version at that seq (evidence too), a beacon round older than
    the assembly (refused before any check), an event whose round prefix is not its round's (it
    breaks its author's chain) and one naming a round the log never holds (it waits)."""
    from consensus.beacon import encode_round
    from consensus.events import event_id, sign_event, split_wire

    def fields(wire):
        return split_wire(wire, 1 << 20)[2]

    honest = {b.public for b in sim.bots if b.kind == "honest"}
    vote = next(i for i in sim_items if i[:1] == b"\x82" and fields(i)["kind"] == "vote" and fields(i)["body"]["choice"] == "promote"
                and fields(i)["author"] in honest)
    f = fields(vote)
    key = next(b.key for b in sim.bots if b.public == f["author"])
    common = dict(assembly=f["assembly"], seq=f["seq"], prev=f["prev"], kind="vote", round=f["round"][0], round_prefix=f["round"][1])
    kill = sign_event(key, body={**f["body"], "choice": "kill"}, **common)
    third = sign_event(key, body={**f["body"], "choice": "kill", "revision": [bytes(32)]}, **common)
    assert event_id(kill) != event_id(vote) != event_id(third)
    # another honest bot names a published round with a made-up prefix, and a third one a round
    # the log never holds (it waits for it for ever)
    others = [b for b in sim.bots if b.kind == "honest" and b.public != f["author"]][:2]
    top = max(sim.replica.beacon)
    fake = sign_event(others[0].key, assembly=f["assembly"], seq=others[0].seq + 1, prev=others[0].prev, kind="comment",
                      body={"proposal": f["body"]["proposal"], "text": "I saw that round"}, round=top, round_prefix=bytes(8))
    unheard = sign_event(others[1].key, assembly=f["assembly"], seq=others[1].seq + 1, prev=others[1].prev, kind="comment",
                         body={"proposal": f["body"]["proposal"], "text": "from the future"}, round=top + 10**6,
                         round_prefix=bytes(8))
    return [kill, third, encode_round(sim.dev.sign(1)), fake, unheard]


def main() -> None:
    from p2p.tools.bots import AssemblySim, Behaviour
    from p2p.logfile import write_log

    # the assembly starts at round 100, so beacon round 1 is older than it
    sim = AssemblySim("demo", seed=11, proposals=3, cycles=5, start_round=100,
                      behaviour=Behaviour(absent=0.12, late=0.12, equivocating=0.12, unauthorised=0.12))
    items = list(sim.run())
    vectors = {
        "demo-run": items,
        "demo-run-with-rejections": items[:40] + hostile_items(sim, items) + items[40:] + finality_attacks(sim, items),
    }
    for name, log in vectors.items() if "--all" in sys.argv else ():
        path = HERE / f"{name}.log"
        write_log(path, log)
        (HERE / f"{name}.expected.json").write_text(json.dumps(expected_of(path), indent=1) + "\n")
        print(f"wrote {path.name} ({len(log)} items)")
    path = HERE / "constituencies.log"
    log = constituency_run()
    write_log(path, log)
    (HERE / "constituencies.expected.json").write_text(json.dumps(representation_of(path), indent=1) + "\n")
    print(f"wrote {path.name} ({len(log)} items)")


if __name__ == "__main__":
    main()
