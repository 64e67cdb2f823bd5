"""What a node runs after each new beacon round or panel message: evaluate the legislature, then
sign what the hosted representatives owe (panel duties: leases, cut-offs, agreement messages,
``p2p.duties``) and, on testnets, what their bots do (``p2p.tools.reactive``)."""

from __future__ import annotations

import logging

from consensus.legislature import Legislature

from .duties import Hands, PanelDuties

log = logging.getLogger("klero.reactor")


class Reactor:
    """What a node runs after each new beacon round or panel message: evaluate, then the hosted
    representatives' panel duties and (testnets) their bots' acts."""

    def __init__(self, replica, keys, *, bots=None, lease: bool = True):
        self.replica = replica
        keys = list(keys)
        self.keys = keys
        absent = {b.public for b in bots.hosted if b.kind in ("absent", "equivocating")} if bots else set()
        self.duties = PanelDuties([bytes(k.verify_key) for k in keys if bytes(k.verify_key) not in absent], lease=lease)
        self.bots = bots
        self.leg = Legislature(replica.charter, replica.charter_event.round)
        self.result = None
        self.evaluated = None
        self.evaluations = 0
        #: why the last step failed ("" if it did not): shown in the node's status
        self.problem = ""

    def step(self, add=None, *, rounds: int = 8, evaluate: bool = True) -> list[bytes]:
        """Act until nothing more is owed (at most ``rounds`` passes: a pass's own messages can
        enable the next, when one node hosts several members of a panel); returns the signed wires.

        ``evaluate=False`` reuses the last evaluation (the caller's choice when only panel
        messages arrived: feeding them to the agreements needs no new evaluation, and at city
        scale an evaluation costs ~0.3 s)."""
        hands = Hands(self.replica, self.keys, add)
        try:
            for _ in range(rounds):
                before = len(hands.out)
                if evaluate or self.result is None:
                    r = self.replica
                    self.result = self.leg.evaluate_replica(r, explain=False)
                    #: (beacon round, records, forks) it saw: the service reuses it while current
                    self.evaluated = (max(r.beacon, default=0), len(r.records), len(r.forks))
                    self.evaluations += 1
                    evaluate = False
                self.duties.step(self.leg, hands)
                if self.bots is not None:
                    self.bots.step(self.leg, self.result, hands)
                if len(hands.out) == before:
                    break
            self.problem = ""
        except Exception as exc:  # what was signed before the failure is stored: it must still go out
            self.problem = f"{type(exc).__name__}: {exc}"
            log.exception("the node's own duties failed this round")
        return hands.out
