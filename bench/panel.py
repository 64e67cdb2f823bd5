"""Cut-off panel costs (issues 5 and 12).

Usage: python bench/panel.py [--reps 250000] [--panel 31]

* the size of one cut-off in the worst case each deadline allows, for a city (800) and the given
  roster: a cut-off's size is bounded by the roster, never by history or one author's activity
  (docs/finality.md).  Worst cases: every representative submits its quota, leases, and every
  proposal in play is withdrawn (an intake); every stage-1 proposal has a text with a head by
  each member of its committee and its author (an editing window); every member of every
  stage-2 committee proposes an amendment; every seat of every stage-1 ballot voted; three
  plenary ballots in which everyone votes;
* the time to sign and check the largest, and to derive the decided set from a quorum of them;
* the time to find and check the certificates of a simulated testnet run.
Baseline for ratios: one Ed25519 verification in the same process.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def worst_cases(reps: int, rng: random.Random) -> dict:
    """The largest cut-off each kind of deadline allows for a roster of ``reps`` (city stage table)."""
    from consensus.legislature import AMENDMENTS_PER_MEMBER
    from consensus.panel import CutOff, bitmap
    from consensus.parliament import DEFAULT_STAGES, Parliament

    p = Parliament()
    quota = p.submissions_per_cycle
    ids = lambda n: sorted(os.urandom(32) for _ in range(n))  # noqa: E731
    everyone = bitmap(range(reps), reps)
    drafting, review = DEFAULT_STAGES[0], DEFAULT_STAGES[1]
    stage1 = reps * quota  # every submission taken: each gets a drafting committee
    in_play = stage1 + sum(s.slots for s in DEFAULT_STAGES)
    seats = stage1 * drafting.committee
    out = {
        # the intake: each author's first `quota` submissions, withdrawals of promoted proposals, every lease
        "intake": CutOff(items=tuple(ids(reps * quota)), leases=everyone, withdrawn=bitmap(range(in_play), in_play)),
        # the editing window: every stage-1 text written by its author and all its drafting committee
        "edit": CutOff(revisions=tuple(tuple(ids(drafting.committee + 1)) for _ in range(stage1))),
        # the same with one head a text (what editors whose clients merge leave)
        "edit (one head a text)": CutOff(revisions=tuple(tuple(ids(1)) for _ in range(stage1))),
        # stage-2 amendments: every member of every review committee proposes its maximum
        "amendments": CutOff(items=tuple(ids(min(drafting.slots * review.committee * AMENDMENTS_PER_MEMBER, reps * p.max_seats * AMENDMENTS_PER_MEMBER)))),
        # the stage-1 ballots: every member of every drafting committee voted
        "ballots (stage 1)": CutOff(votes=(bitmap(range(seats), seats), bitmap([], seats)), withdrawn=bitmap(range(in_play), in_play)),
        # the plenary: three ballots, everyone voted
        "plenary": CutOff(votes=(bytes(rng.getrandbits(8) for _ in range(3 * reps // 8)), bytes(rng.getrandbits(8) for _ in range(3 * reps // 8)))),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=250_000)
    ap.add_argument("--panel", type=int, default=31)
    args = ap.parse_args()
    import cbor2
    from nacl.signing import SigningKey

    from consensus.agreement import quorum_size
    from consensus.charter import Limits
    from consensus.events import sign_event, split_wire, verify_signature
    from consensus.kinds import Cut
    from consensus.panel import CutOff, bitmap, majority
    from p2p.tools.bots import AssemblySim, Behaviour

    rng = random.Random(1)
    signer = SigningKey(bytes(range(32)))
    rows: dict = {}
    for reps in (800, args.reps):
        for what, cut in worst_cases(reps, rng).items():
            rows[f"worst_{what.replace(' ', '_').replace('(', '').replace(')', '')}_cutoff_kib_{reps}_reps"] = round(
                len(cbor2.dumps(cut.to_body())) / 1024, 1)
    rows["event_limit_kib_default"] = Limits().max_event_bytes // 1024
    rows["event_limit_kib_largest_a_charter_may_set"] = Limits._RANGES["max_event_bytes"][1] // 1024

    # a realistic plenary: 80 % turnout, each member saw 98 % of the votes
    key = bytes(32)
    turnout = [i for i in range(args.reps) if rng.random() < 0.8]
    cutoffs = []
    for _ in range(args.panel):
        seen = [i for i in turnout if rng.random() < 0.98]
        yes = [i for i in seen if i % 3]
        no = [i for i in seen if not i % 3]
        cutoffs.append(CutOff((bitmap(yes, args.reps), bitmap(no, args.reps))))
    t = time.perf_counter()
    wire = sign_event(signer, assembly=bytes(32), seq=2, prev=bytes(32), kind="cutoff",
                      body={"deadline": b"plenary", "cutoff": cutoffs[0].to_body()})
    sign_s = time.perf_counter() - t
    t = time.perf_counter()
    enc, sig, fields = split_wire(wire, 1 << 24)
    verify_signature(fields["author"], enc, sig)
    Cut.from_body(fields["body"], Limits())
    check_s = time.perf_counter() - t
    q = quorum_size(args.panel)
    t = time.perf_counter()
    decided = majority(cutoffs[:q], {key: args.reps})
    majority_s = time.perf_counter() - t

    sim = AssemblySim("testnet", seed=1, cycles=2, proposals=5, behaviour=Behaviour(absent=0, late=0, equivocating=0, unauthorised=0))
    list(sim.run())
    r = sim.replica
    t = time.perf_counter()
    result = sim.legislature.evaluate_replica(r)
    evaluate_s = time.perf_counter() - t
    deadlines = len(result.deadlines)
    panel_events = [x for x in r.records.values() if x.kind in ("cutoff", "propose", "prevote", "precommit")]
    testnet_cutoffs = [len(cbor2.dumps(x.body.cutoff.to_body())) for x in panel_events if x.kind == "cutoff"]

    vk = signer.verify_key
    msg, s = b"x" * 200, signer.sign(b"x" * 200).signature
    t = time.perf_counter()
    for _ in range(2000):
        vk.verify(msg, s)
    ed = (time.perf_counter() - t) / 2000
    rows.update({
        f"plenary_cutoff_event_kib_{args.reps}_reps_one_ballot": round(len(wire) / 1024, 1),
        "sign_cutoff_ms": round(sign_s * 1000, 2),
        "decode_and_verify_cutoff_ms": round(check_s * 1000, 2),
        f"majority_of_{q}_cutoffs_ms": round(majority_s * 1000, 1),
        f"majority_of_{q}_cutoffs_in_ed25519_verifications": round(majority_s / ed),
        "counted_votes": sum(bin(x).count("1") for bits in decided.ballots[key] for x in bits),
        "testnet_deadlines": deadlines,
        "testnet_largest_cutoff_bytes": max(testnet_cutoffs),
        "testnet_panel_events_per_deadline": round(len(panel_events) / max(1, deadlines), 1),
        "testnet_evaluate_with_certificates_ms": round(evaluate_s * 1000, 1),
        "ed25519_verify_us": round(ed * 1e6, 1),
    })
    print("\n".join(f"{k}: {v}" for k, v in rows.items()))


if __name__ == "__main__":
    main()
