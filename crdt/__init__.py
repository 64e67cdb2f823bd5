"""Proposal documents on Automerge (DESIGN.md §8).  Built by issue 6; empty until then."""
