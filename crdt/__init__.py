"""Proposal documents on Automerge (DESIGN.md §8): every change signed, every revision addressable.

Built so far (issue 6, in progress): the document wrapper (create, edit in one change per pause,
apply remote changes in any order, read any revision, history).  Diffs, blame, amendments as
forks, anchored comments and export come next.
"""

from .document import Change, DocumentError, ProposalDocument, order_changes

__all__ = ["Change", "DocumentError", "ProposalDocument", "order_changes"]
