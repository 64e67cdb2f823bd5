"""Testers' tools: simulate, testnet, and document export."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path



def cmd_simulate(args) -> int:
    from p2p.tools.bots import AssemblySim, Behaviour
    from p2p.logfile import write_log

    shares = {"absent": args.absent, "late": args.late, "equivocating": args.equivocating, "unauthorised": args.unauthorised}
    if any(not 0 <= v <= 1 for v in shares.values()) or sum(shares.values()) > 1:
        print("--absent, --late, --equivocating and --unauthorised are shares from 0 to 1, together at most 1.", file=sys.stderr)
        return 2
    if (args.reps is not None and args.reps < 2) or args.proposals < 0 or not 1 <= args.cycles <= 1000:
        print("--reps must be at least 2, --proposals at least 0, --cycles from 1 to 1000.", file=sys.stderr)
        return 2
    if args.compare_absence:
        return _compare_absence(args, Behaviour(**shares))
    if not args.out:
        print("Name the log file to write: klero simulate OUT.log", file=sys.stderr)
        return 2
    sim = AssemblySim(
        args.charter, reps=args.reps, proposals=args.proposals, cycles=args.cycles, seed=args.seed, behaviour=Behaviour(**shares)
    )
    count = write_log(args.out, sim.run())
    made = ", ".join(f"{v} {k}" for k, v in sorted(sim.counts.items()))
    print(f"Wrote {count} items ({made}, {len(sim.replica.beacon)} beacon rounds) of assembly {sim.assembly.hex()} to {args.out}")
    print(f"Check it with: klero verify {args.out}")
    return 0


def absence_costs(sim, result) -> dict:
    """What silence cost in one simulated run: committee seats given to members who never vote,
    ballots they sat on silently, and how far proposals got."""
    absent = {b.public for b in sim.bots if b.kind == "absent"}
    seats = sum(len(d.members) for d in result.draws)
    silent = sum(1 for d in result.draws for m in d.members if m in absent)
    statuses = {}
    for p in result.proposals.values():
        statuses[p.status] = statuses.get(p.status, 0) + 1
    killed_close = 0  # killed although every member who voted promoted it: silence killed it
    for b in result.ballots:
        if b.amendment is None and b.kind == "stage" and b.outcome == "killed" and b.counts.get("kill", 0) == 0 \
                and b.counts.get("promote", 0) > 0:
            killed_close += 1
    reached = {k: sum(1 for p in result.proposals.values() for h in p.history if h[3] == k and h[2] == "in committee")
               for k in range(1, len(sim.legislature.p.stages) + 1)}
    return {"committee_seats": seats, "seats_of_absent": silent, "killed_by_silence": killed_close,
            "reached_stage": reached, "plenary": sum(1 for p in result.proposals.values() if p.status in ("passed", "failed")),
            "passed": statuses.get("passed", 0), "statuses": statuses}


def _compare_absence(args, behaviour) -> int:
    """Run one seed twice: absent representatives who say nothing (today's rule: drawn, and their
    silence counts as kill) and absent representatives who declare it (the draws skip them)."""
    from p2p.tools.bots import AssemblySim

    if behaviour.absent <= 0:
        print("--compare-absence needs a share of absent representatives (--absent 0.2, say).", file=sys.stderr)
        return 2
    rows = {}
    for declared in (False, True):
        sim = AssemblySim(args.charter, reps=args.reps, proposals=args.proposals, cycles=args.cycles, seed=args.seed,
                          behaviour=behaviour, constituents=1, declare_absence=declared)
        for _ in sim.run():
            pass
        rows[declared] = absence_costs(sim, sim.legislature.evaluate_replica(sim.replica))
    a, b = rows[False], rows[True]
    print(f"{args.cycles} cycles of the {args.charter!r} charter, seed {args.seed}, {behaviour.absent:.0%} of representatives absent:")
    print(f"{'':38}{'silent (today)':>16}{'declared':>12}")
    lines = [("committee seats drawn", "committee_seats"), ("  of them held by absent members", "seats_of_absent"),
             ("stage ballots killed by silence", "killed_by_silence"), ("proposals that reached a plenary", "plenary"),
             ("proposals passed", "passed")]
    for label, key in lines:
        print(f"{label:38}{a[key]:>16}{b[key]:>12}")
    for k in sorted(a["reached_stage"]):
        print(f"{'proposals in committee at stage ' + str(k):38}{a['reached_stage'][k]:>16}{b['reached_stage'][k]:>12}")
    print("Silent absence: the absent are drawn and their missing votes count as kill (a majority of the whole committee "
          "must promote). Declared absence: the draws skip them, so committees are made of people who are there; "
          "undeclared absence still counts as kill. docs/constituencies.md says why this is the rule.")
    if args.json:
        print(json.dumps({"silent": a, "declared": b}, indent=1))
    return 0


def cmd_document(args) -> int:
    from crdt import footer, to_markdown
    from p2p.documents import proposal_text, replay_log

    out = Path(args.out)
    if out.suffix.lower() not in (".md", ".pdf"):
        print(f"--out must end in .md or .pdf (not {out.name!r}): the format follows the name.", file=sys.stderr)
        return 2
    if not Path(args.log).is_file():
        print(f"There is no log file at {args.log}.", file=sys.stderr)
        return 2
    found = proposal_text(replay_log(args.log), args.proposal, latest=args.latest)
    signers = [k.hex()[:16] for k in found.signers]
    status = f"Status in the assembly: {found.status}."
    if out.suffix.lower() == ".md":
        text = to_markdown(found.document, found.revision, signers, found.beacon_round)
        out.write_text(text.replace("\n---\n", f"\n---\n\n{status}\n", 1), encoding="utf-8")
        pages = ""
    else:
        from desktop.export import write_pdf

        # the provenance goes in every page's footer, once; the body says where the proposal stands
        text = to_markdown(found.document, found.revision, signers, found.beacon_round).split("\n---\n")[0]
        count = write_pdf(text.rstrip() + f"\n\n{status}\n", footer(found.revision, signers, found.beacon_round), out,
                          title=found.title)
        pages = f" ({count} page{'' if count == 1 else 's'})"
    print(f"Wrote {found.which} of {found.title!r} ({found.status}) to {out}{pages}.")
    counted = sum(1 for h in found.history if h["in_revision"])
    rounds = [h["round"] for h in found.history]
    print(f"History: {len(found.history)} signed changes from beacon round {min(rounds)} to {max(rounds)}, "
          f"{counted} of them in this revision, by {len(found.signers)} signer(s).")
    for a in found.amendments:
        print(f"Amendment {a['id'][:12]} by {a['author'][:16]} (round {a['round']}): {a['summary']}")
    return 0


def panel_odds(reps: int, silent: int, panel: int) -> float:
    """The chance that a panel of ``panel`` drawn from ``reps`` representatives, ``silent`` of whom
    never sign (absent or equivocating), has the two thirds it needs to decide (hypergeometric)."""
    from math import comb

    from consensus.agreement import quorum_size

    n = min(panel, reps)
    if n <= 0:
        return 0.0
    need = quorum_size(n)
    ok = sum(comb(reps - silent, k) * comb(silent, n - k) for k in range(need, n + 1) if k <= reps - silent and n - k <= silent)
    return ok / comb(reps, n)


def warn_about_panels(args, say=print) -> None:
    """Before a run: say when the shares make panels unlikely to decide (the run would stall)."""
    from p2p.tools.bots import load_template

    reps = args.reps
    silent = round((args.absent + args.equivocating) * reps)
    if not silent:
        return
    size = int(load_template(args.charter)["parliament"].get("panel_size", 31))
    odds = panel_odds(reps, silent, size)
    if odds < 0.9:
        say(f"Warning: with {silent} of {reps} representatives absent or equivocating, a {min(size, reps)}-member panel has "
            f"two thirds present only {odds:.0%} of the time; deadlines will wait for fresh panels drawn from those "
            "present, and may stall.")


def _home_routers(args) -> dict[int, bool]:
    """--behind-nat and --forward-port as ``Testnet.up``'s ``nat``."""
    from p2p.tools.testnet import TestnetError

    stray = sorted(set(args.forward_port) - set(args.behind_nat))
    if stray:
        raise TestnetError(f"--forward-port {stray[0]}: only a node behind a home router (--behind-nat {stray[0]}) has a "
                           "router to forward its port.")
    return {k: k in args.forward_port for k in args.behind_nat}


def _testnet_behaviour(args):
    from p2p.tools.bots import Behaviour

    shares = {"absent": args.absent, "late": args.late, "equivocating": args.equivocating, "unauthorised": args.unauthorised}
    if any(not 0 <= v <= 1 for v in shares.values()) or sum(shares.values()) > 1:
        raise SystemExit("--absent, --late, --equivocating and --unauthorised are shares from 0 to 1, together at most 1.")
    return Behaviour(**shares)


def _print_testnet(rows, expected: str | None) -> None:
    """One line a node; planned runs compare with the plan, reactive ones show the node's own work."""
    work = "published" if expected else "sent/panel"
    if rows:
        legend = ("published/planned: items of its plan it published" if expected
                  else "sent: events published; panel: panel messages its bots or person signed")
        top, r0 = max(r["beacon_round"] for r in rows), rows[0]
        if expected:
            where = f"round {top:,} of {r0['round_of']:,}"
        else:
            end = r0.get("beacon_end")
            asked = r0.get("cycles_asked", 0)
            where = (f"round {top:,}; the {asked} cycle{'s' if asked != 1 else ''} asked for {'were' if asked != 1 else 'was'} planned to end at round {r0['round_of']:,}; "
                     + (f"the run is over and the beacon stopped after round {end:,}" if end is not None
                        else "the beacon goes on until every node has decided them"))
        cycle = max((r["cycle"] for r in rows if r.get("cycle") is not None), default=None)
        left = (r0["round_of"] - max(top, r0.get("due_round") or 0)) * r0["round_seconds"]
        when = (f" Cycle {cycle}." if cycle is not None and cycle >= 0 else "") + (
            f" About {left:.0f} s of the plan left." if left > 0 and r0.get("beacon_end") is None else "")
        print(f"Beacon: {where} ({r0['round_seconds']:g} s a round).{when} lag: rounds (and seconds) behind the round "
              f"due now; {legend}.")
    print(f"{'node':8} {'run':6} {'peers':>5} {'events':>7} {'round':>6} {'lag':>4} {'lag s':>6} {work:>10} {'cycles':>6}  state")
    hashes = {r["state_hash"] for r in rows}
    for r in rows:
        if expected:
            mark, done = ("= plan" if r["state_hash"] == expected else ""), f"{r['published']:>5}/{r['planned']:<4}"
        else:
            signed = sum((r.get("duties") or {}).get("signed", {}).values())
            mark, done = ("= all" if len(hashes) == 1 and r["state_hash"] else ""), f"{r['published']:>5}/{signed:<4}"
        run = ("paused" if r.get("paused") else "yes") if r["running"] else "no"
        print(f"{r['name']:8} {run:6} {r['peers']:>5} {r['events']:>7} {r['beacon_round']:>6} "
              f"{r['lag_rounds']:>4} {r['lag_rounds'] * r.get('round_seconds', 0):>6.1f} {done:>10} "
              f"{r['cycles_decided'] if r['cycles_decided'] is not None else '-':>6}  "
              f"{r['state_hash'][:16]} {mark}")
    faults = rows[0].get("faults") if rows else None
    if faults:
        print("Link faults: " + "; ".join(faults) + ".")
    routed = [r for r in rows if r.get("home_router")]
    if routed:
        print("Behind home routers: " + "; ".join(
            f"{r['name']} (port {r['home_router']}): {r.get('reach') or 'not checked yet'}" for r in routed) + ".")
    waiting = next((r for r in rows if r["running"] and r.get("waiting")), None)
    if waiting:
        silent = waiting.get("waiting_on") or []
        print(f"Waiting ({waiting['name']}'s view): {waiting['waiting']}"
              + (f" Silent panel members: {', '.join(silent)}." if silent else ""))


def cmd_testnet(args) -> int:
    from p2p.tools.testnet import Testnet

    net = Testnet(args.dir)
    if args.action == "partition":
        net.partition([side.split(",") for side in args.sides])
        print(f"Partitioned: {' | '.join(args.sides)} (the two sides hear nothing of each other; `klero testnet heal` joins them).")
        return 0
    if args.action == "heal":
        net.heal()
        print("Healed: every node is on one network again, with no delay or loss.")
        return 0
    if args.action in ("delay", "loss"):
        sides = [side.split(",") for side in args.sides]
        if args.action == "delay":
            net.degrade(sides, delay_ms=args.ms)
        else:
            net.degrade(sides, loss=args.percent / 100)
        faults = net.faults()
        print("Links now: " + ("; ".join(faults) if faults else "no delay or loss") + ". (Emulated inside the nodes: this "
              "kernel has no netem; see docs/testing.md. `klero testnet heal` ends them.)")
        return 0
    if args.action in ("kill", "restart", "pause", "resume"):
        k = net.index(args.node)
        name = net.info()["nodes"][k]["name"]
        if args.action == "kill":
            if not net.kill(k):
                print(f"{name} was not running; nothing to kill.")
                return 0
            print(f"{name} was killed (SIGKILL: no shutdown, nothing flushed); `klero testnet restart {name}` starts it again.")
        elif args.action == "restart":
            net.restart(k)
            print(f"{name} runs again on its replica, with the arguments it first had.")
        else:
            net.pause(k, args.action == "pause")
            print(f"{name} is {'paused (SIGSTOP: it holds its connections and answers nothing)' if args.action == 'pause' else 'running again'}.")
        return 0
    if args.action == "up":
        net.up(nodes=args.nodes, reps=args.reps, charter=args.charter, cycles=args.cycles, seed=args.seed,
               round_seconds=args.round_seconds, behaviour=_testnet_behaviour(args), planned=args.planned,
               bot_proposals=args.bot_proposals, netns=args.netns, nat=_home_routers(args))
        print(f"Watch it with: klero testnet status --dir {args.dir}")
        return 0
    if args.action == "status":
        info = net.info()
        watch_until = time.monotonic() + 24 * 3600 if getattr(args, "watch", False) else 0
        while True:
            rows = net.status()
            if args.json:
                print(json.dumps({"expected_state_hash": info["expected_state_hash"], "nodes": rows}, indent=2))
            else:
                if watch_until:
                    print("\033[2J\033[H", end="")  # a fresh screen each time, like watch(1)
                _print_testnet(rows, info["expected_state_hash"])
            if not watch_until or time.monotonic() > watch_until or not any(r["running"] for r in rows):
                return 0
            try:
                time.sleep(2)
            except KeyboardInterrupt:
                return 0
    if args.action == "down":
        rows = net.down()
        if not args.json:
            _print_testnet(rows, net.info()["expected_state_hash"])
        return 0
    # run: up, wait, down, summary
    say = (lambda line: print(line, file=sys.stderr)) if args.json else print
    warn_about_panels(args, say)
    from p2p.tools.testnet import check_scenario, load_scenario

    scenario = load_scenario(args.scenario) if args.scenario else []
    check_scenario(scenario, args.nodes)
    started = time.time()
    info = net.up(nodes=args.nodes, reps=args.reps, charter=args.charter, cycles=args.cycles, seed=args.seed,
                  round_seconds=args.round_seconds, behaviour=_testnet_behaviour(args), say=say, planned=args.planned,
                  bot_proposals=args.bot_proposals, netns=args.netns, nat=_home_routers(args))
    planned_s = (info["last_round"] - info["round_zero"] + 1) * info["round_seconds"]
    # the run's bound: the plan, the extra cycle a reactive run may take before it counts as stalled, and slack
    extra = args.patience if args.patience is not None else net.extra_rounds(info)
    last_step = max([info["last_round"]] + [s["round"] for s in scenario])
    bound_s = (last_step - info["round_zero"] + 1 + (0 if info.get("expected_state_hash") else extra)) * info["round_seconds"] + 120
    outcome = None
    try:
        outcome = net.wait(timeout=args.timeout or bound_s, say=say, scenario=scenario, extra_rounds=extra)
        converged = time.time()
    finally:
        rows = net.down(say=say)
    ok = bool(outcome)
    summary = {
        "converged": ok,
        "expected_state_hash": info["expected_state_hash"],
        "nodes": {r["name"]: {"state_hash": r["state_hash"], "events": r["events"], "refused": r["refused"],
                              "published": r["published"], "planned": r["planned"], "duties": r["duties"]} for r in rows},
        "outcomes": info["expected"] if info.get("expected_state_hash") else net.outcomes(0),
        "mode": info.get("mode", "planned"),
        "timings": {"planned_s": round(planned_s, 1), "until_converged_s": round(converged - info["start_at"], 1),
                    "total_s": round(time.time() - started, 1)},
        "dir": str(args.dir),
    }
    if outcome.why:
        summary["why"] = outcome.why
    # one final state is not enough: an assembly that decided fewer cycles than asked stalled
    decided = summary["outcomes"].get("cycles", 0) if not info.get("expected_state_hash") else args.cycles
    stalled = outcome.stalled or (ok and decided < args.cycles)
    summary["stalled"] = stalled
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_testnet(rows, info["expected_state_hash"])
        goal = "the plan's state" if info.get("expected_state_hash") else "one final state"
        everyone = "Every node" if all(r["state_hash"] == rows[0]["state_hash"] for r in rows) else "Every node still running"
        print((f"{everyone} reached {goal}" if ok else f"The nodes did NOT all reach {goal} ({outcome.why})")
              + f" ({summary['timings']['until_converged_s']} s after the first round was due).")
        if not info.get("expected_state_hash"):
            o = summary["outcomes"]
            print(f"Outcomes: {o['cycles']} cycles, {o['deadlines_decided']} deadlines settled by panels, proposals "
                  + ", ".join(f"{v} {k}" for k, v in o["proposals"].items()) + (f"; passed: {'; '.join(o['passed'])}" if o["passed"] else ""))
        if stalled:
            print(f"STALLED: the assembly decided {decided} of the {args.cycles} cycle{'s' if args.cycles != 1 else ''} asked for. "
                  f"{summary['outcomes'].get('waiting', '')}".rstrip())
    return 0 if ok and not stalled else 1


def register(sub, profile_arg) -> None:
    p = sub.add_parser("simulate", help="run a simulated assembly with bot representatives; write its signed log")
    p.add_argument("out", nargs="?", help="the log file to write (charter, beacon rounds and events)")
    p.add_argument("--charter", default="demo", help="charter template: demo, testnet, or a JSON file (default demo)")
    p.add_argument("--reps", type=int, help="number of representatives (default: the template's)")
    p.add_argument("--proposals", type=int, default=5, help="proposals submitted per cycle (default 5)")
    p.add_argument("--cycles", type=int, default=5, help="cycles to run (default 5: enough for a plenary)")
    p.add_argument("--seed", type=int, default=0, help="seed: the same seed gives the same log")
    p.add_argument("--absent", type=float, default=0.1, help="share of representatives who never vote (default 0.1)")
    p.add_argument("--late", type=float, default=0.05, help="share who vote after deadlines (default 0.05)")
    p.add_argument("--equivocating", type=float, default=0.0, help="share who sign a fork once (default 0)")
    p.add_argument("--unauthorised", type=float, default=0.05, help="share who vote where they have no seat (default 0.05)")
    p.add_argument("--compare-absence", action="store_true",
                   help="instead of writing a log, run the seed twice and show what absence costs proposals when the "
                        "absent stay silent (drawn, counted as kill) and when they declare it (the draws skip them)")
    p.add_argument("--json", action="store_true", help="with --compare-absence: the numbers as JSON too")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("document", help="export a proposal's text (a revision) as Markdown or PDF")
    p.add_argument("log", help="log file holding the proposal and its document changes")
    p.add_argument("--proposal", required=True, help="the proposal's id, or enough of its start to be unique")
    p.add_argument("--out", required=True, help="file to write: NAME.md or NAME.pdf")
    p.add_argument("--latest", action="store_true", help="the latest revision, not the one the assembly last decided on")
    p.set_defaults(func=cmd_document)

    testnet = sub.add_parser("testnet", help="run a local network of node processes with bot representatives")
    tsub = testnet.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("up", "start the nodes and the bots"), ("run", "start, run the cycles, stop, summarise"),
                         ("status", "show each node's state hash, peers, lag and progress"),
                         ("down", "stop every node (logs and replicas are kept)"),
                         ("kill", "SIGKILL one node (no shutdown): a crash"), ("restart", "start a stopped or killed node again"),
                         ("pause", "SIGSTOP one node: frozen, connections held"), ("resume", "SIGCONT a paused node"),
                         ("partition", "split a --netns testnet in two: NODES,… NODES,…"),
                         ("delay", "delay every link between two sides of a --netns testnet (emulated: no netem here)"),
                         ("loss", "lose TCP segments between two sides of a --netns testnet (emulated: no netem here)"),
                         ("heal", "join a partition again and end every delay and loss")):
        t = tsub.add_parser(action, help=text)
        t.add_argument("--dir", default="testnet", help="folder of the testnet (default ./testnet)")
        t.add_argument("--json", action="store_true", help="machine-readable output")
        if action in ("partition", "delay", "loss"):
            t.add_argument("sides", nargs=2, metavar="SIDE", help="the nodes of one side, comma-separated (node-0,node-1,node-2)")
        if action == "delay":
            t.add_argument("--ms", type=float, required=True, help="milliseconds added each way (0 ends the delay)")
        if action == "loss":
            t.add_argument("--percent", type=float, required=True, help="share of TCP segments lost, 0 to 90 (0 ends the loss)")
        if action in ("up", "run"):
            t.add_argument("--netns", action="store_true",
                           help="each node in a network namespace of its own (needs root): real partitions (docs/testing.md)")
            t.add_argument("--behind-nat", type=int, action="append", default=[], metavar="K",
                           help="with --netns: node K sits behind a home router that masquerades (needs nftables); repeatable")
            t.add_argument("--forward-port", type=int, action="append", default=[], metavar="K",
                           help="node K's home router forwards its port to it, as its owner would set up; repeatable")
        if action == "run":
            t.add_argument("--scenario", metavar="FILE", help="faults to make as the beacon reaches their rounds (docs/testing.md)")
            t.add_argument("--patience", type=int, metavar="ROUNDS", help="beacon rounds past the plan's last round (or the "
                           "scenario's) to wait for the cycles before calling the assembly stalled (default: one cycle)")
        if action == "status":
            t.add_argument("--watch", action="store_true", help="refresh every 2 s until the nodes stop (Ctrl-C ends it)")
        if action in ("kill", "restart", "pause", "resume"):
            t.add_argument("node", help="the node's name (node-3, a person's profile) or number")
        if action in ("up", "run"):
            t.add_argument("--nodes", type=int, default=5, help="node processes (default 5)")
            t.add_argument("--reps", type=int, default=25, help="bot representatives spread over the nodes (default 25)")
            t.add_argument("--charter", default="testnet", help="charter template (default testnet)")
            t.add_argument("--cycles", type=int, default=4, help="legislative cycles (default 4: every stage and a plenary)")
            t.add_argument("--seed", type=int, default=1, help="seed of the bots and the dev beacon")
            t.add_argument("--round-seconds", type=float, help="seconds per beacon round (default: the charter's period)")
            t.add_argument("--bot-proposals", type=int, default=4, help="proposals the reactive bots submit a cycle (default 4)")
            t.add_argument("--planned", action="store_true",
                           help="publish a precomputed simulation instead of reactive bots (every node must reach its known state)")
            for share in ("absent", "late", "equivocating", "unauthorised"):
                t.add_argument(f"--{share}", type=float, default=0.0, help=f"share of {share} bots (default 0)")
        if action == "run":
            t.add_argument("--timeout", type=float, help="seconds to wait for convergence (default: the run's length + 2 min)")
        t.set_defaults(func=cmd_testnet)
