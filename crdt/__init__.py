"""Proposal documents on Automerge (DESIGN.md §8): every change signed, every revision addressable.

The document wrapper (create, edit in one change per pause, apply remote changes in any order
and turn them into splices for the editor, read any revision, history, forks for amendments,
anchored comments), diffs at word and line level, blame, the conflict report for adopted
amendments touching one passage, and Markdown export (PDF is in ``desktop/export.py``).
"""

from .document import Anchor, Change, DocumentError, Editor, ProposalDocument, move_cursor, order_changes
from .revisions import Passage, blame, conflicts, diff, diff_texts, footer, revision_id, to_markdown

__all__ = [
    "Anchor", "Change", "DocumentError", "Editor", "Passage", "ProposalDocument", "blame", "conflicts", "diff", "diff_texts",
    "footer", "move_cursor", "order_changes", "revision_id", "to_markdown",
]
