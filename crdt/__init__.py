"""Proposal documents on Automerge (DESIGN.md §8): every change signed, every revision addressable.

Built so far (issue 6, in progress): the document wrapper (create, edit in one change per pause,
apply remote changes in any order, read any revision, history), diffs at word and line level,
blame, and the conflict report for adopted amendments touching one passage.  Forks as amendment
texts, anchored comments, remote-change splices for the editor and export come next.
"""

from .document import Change, DocumentError, ProposalDocument, move_cursor, order_changes
from .revisions import Passage, blame, conflicts, diff, diff_texts, revision_id, to_markdown

__all__ = [
    "Change", "DocumentError", "Passage", "ProposalDocument", "blame", "conflicts", "diff", "diff_texts",
    "move_cursor", "order_changes", "revision_id", "to_markdown",
]
