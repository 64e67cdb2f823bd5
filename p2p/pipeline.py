"""Signature checks on several cores, for replaying large logs.

Ed25519 verification is the one real cost of accepting an event (STACK.md); everything else the
replica does is cheap bookkeeping that must stay on one thread to be deterministic.  So a pool of
worker processes checks signatures of whole batches ahead of the replica, and the replica is told
which wires are already known to be correctly signed.  A wire whose check failed (or that the
worker could not even parse) goes through the normal path, which finds the precise reason.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Iterable, Iterator

BATCH = 512


def check_signatures(wires: list[bytes], chain_body: dict | None = None) -> list[bool]:
    """For each item: True iff it is an event with a valid author signature, or a beacon round
    (a 3-array) that verifies against the chain ``chain_body`` names."""
    import cbor2
    from nacl.signing import VerifyKey

    from consensus.beacon import chain_from_body, decode_round
    from consensus.errors import InvalidInput
    from consensus.events import DOMAIN, _split_outer

    keys: dict[bytes, VerifyKey] = {}
    chain = chain_from_body(chain_body) if chain_body else None
    result = []
    for wire in wires:
        if wire[:1] == b"\x83":
            try:
                result.append(chain is not None and bool(decode_round(chain, wire)))
            except (InvalidInput, Exception):
                result.append(False)
            continue
        try:
            encoding, signature = _split_outer(wire)
            author = cbor2.loads(encoding, max_depth=4, allow_indefinite=False)["author"]
            vk = keys.get(author)
            if vk is None:
                vk = keys[author] = VerifyKey(author)
            vk.verify(DOMAIN + encoding, signature)
            result.append(True)
        except (InvalidInput, Exception):
            result.append(False)
    return result


def die_with_parent(parent: int) -> None:
    """Pool worker initializer: end when the process that started the pool ends, however it ends.

    A worker blocked on its task queue never learns that a SIGKILLed parent is gone (it holds the
    queue's write end itself), so orphans used to wait for ever.  Linux delivers SIGKILL to the
    worker when its parent dies (``PR_SET_PDEATHSIG``); the parent id check closes the race of a
    parent that died before the call.  Elsewhere workers still end when their queue breaks."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(0)


def default_workers() -> int:
    return max(1, (os.cpu_count() or 1))


def checked(
    items: Iterable, key=lambda item: item, workers: int | None = None, batch: int = BATCH, chain_body: dict | None = None
) -> Iterator[tuple[object, bool]]:
    """Yield ``(item, signature_ok)`` in input order, checking ``key(item)`` wires in a process pool
    (beacon rounds too, against the chain ``chain_body`` names).

    With ``workers`` <= 1 nothing is checked ahead (every flag is False), so the caller's normal
    path does all the work; results are identical either way.
    """
    workers = default_workers() if workers is None else workers
    if workers <= 1:
        for item in items:
            yield item, False
        return
    it = iter(items)
    with ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        inflight = []

        def submit() -> bool:
            chunk = []
            for item in it:
                chunk.append(item)
                if len(chunk) >= batch:
                    break
            if not chunk:
                return False
            inflight.append((chunk, pool.submit(check_signatures, [key(x) for x in chunk], chain_body)))
            return True

        for _ in range(workers * 2):
            if not submit():
                break
        while inflight:
            chunk, future = inflight.pop(0)
            flags = future.result()
            submit()
            yield from zip(chunk, flags)
