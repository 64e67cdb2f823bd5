"""A proposal's revision as a PDF, with Qt's PDF writer (the only layer that imports Qt).

The text is the Markdown export of ``crdt.revisions.to_markdown`` laid out by ``QTextDocument``;
every page carries a footer with the revision id, the signers, the beacon round and the page
number, so a printed page can be traced back to the exact signed revision.
"""

from __future__ import annotations

import os
from pathlib import Path


def _app():
    """A Qt application for fonts and layout; headless unless a display is set."""
    from PySide6.QtGui import QGuiApplication

    if QGuiApplication.instance() is None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _app.keep = QGuiApplication([])
    return QGuiApplication.instance()


def write_pdf(markdown: str, footer: str, path: str | Path, title: str = "") -> int:
    """Lay out ``markdown`` on A4 pages with ``footer`` under each; returns the page count."""
    _app()
    from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt
    from PySide6.QtGui import QFont, QPageLayout, QPageSize, QPainter, QPdfWriter, QTextDocument

    writer = QPdfWriter(str(path))
    writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    writer.setPageMargins(QMarginsF(20, 18, 20, 18), QPageLayout.Unit.Millimeter)
    writer.setResolution(144)
    writer.setTitle(title)
    writer.setCreator("Kleroterion")
    painter = QPainter()
    if not painter.begin(writer):
        raise OSError(f"Cannot write a PDF to {path}: check that its folder exists and is writable.")
    try:
        page = writer.pageLayout().paintRectPixels(writer.resolution())
        width, height = page.width(), page.height()
        small = QFont("Sans Serif", 7)
        painter.setFont(small)
        footer_box = painter.boundingRect(QRectF(0, 0, width, height), Qt.TextFlag.TextWordWrap, footer + "\nPage 999 of 999")
        footer_h = footer_box.height() + 12
        text = QTextDocument()
        text.documentLayout().setPaintDevice(writer)  # lay out at the PDF's resolution, not the screen's
        text.setDefaultFont(QFont("Serif", 10))
        text.setMarkdown(markdown)
        text.setPageSize(QSizeF(width, height - footer_h))
        pages = max(1, text.pageCount())
        body_h = height - footer_h
        for n in range(pages):
            if n:
                writer.newPage()
            painter.save()
            painter.translate(0, -n * body_h)
            text.drawContents(painter, QRectF(0, n * body_h, width, body_h))
            painter.restore()
            painter.setFont(small)
            painter.drawLine(0, int(body_h + 4), int(width), int(body_h + 4))
            painter.drawText(QRectF(0, body_h + 8, width, footer_h), Qt.TextFlag.TextWordWrap,
                             f"{footer}\nPage {n + 1} of {pages}")
        return pages
    finally:
        painter.end()
