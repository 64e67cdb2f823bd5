"""The node shell: replica store, logs, profiles, and (later) the libp2p host.

Nothing here imports libp2p at module level: ``import libp2p`` costs ~0.9 s and ~82 MB, and
``klero verify`` must not pay for it (STACK.md).
"""
