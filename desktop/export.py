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
    from PySide6.QtCore import QMarginsF
    from PySide6.QtGui import QPageLayout, QPageSize, QPainter, QPdfWriter

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
        return _draw(painter, writer, markdown, footer)
    finally:
        painter.end()


def _draw(painter, writer, markdown: str, footer: str) -> int:
    """The pages, each with its footer.

    The layout moves a line that would cross a page's bottom onto the next page, but drawing a
    page through a clip also draws the line just above the clip when its paragraph goes on
    below it (``QTextLayout::draw`` starts one line early).  The clip hides that line, yet the
    PDF's text layer keeps it: search, copy and screen readers met the previous page's last line
    again at nearly half the page starts of a 140-page bill.  So a paragraph continued from the
    previous page is drawn line by line, and the layout draws the page from below it."""
    from PySide6.QtCore import QRectF, QSizeF, Qt
    from PySide6.QtGui import QAbstractTextDocumentLayout, QFont, QPalette, QTextDocument

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
    layout = text.documentLayout()
    continued = _continued(text, body_h)
    for n in range(pages):
        if n:
            writer.newPage()
        top, bottom = n * body_h, (n + 1) * body_h
        painter.save()
        painter.translate(0, -top)
        painter.setClipRect(QRectF(0, top, width, body_h))
        context = QAbstractTextDocumentLayout.PaintContext()
        start = top
        if n in continued:
            block = continued[n]
            box = layout.blockBoundingRect(block)
            painter.setPen(context.palette.color(QPalette.ColorRole.Text))
            for i in range(block.layout().lineCount()):
                line = block.layout().lineAt(i)
                if top <= box.top() + line.y() < bottom:
                    line.draw(painter, box.topLeft())
            start = box.bottom() + 0.5  # the layout skips a paragraph that ends above its clip
        if start < bottom:
            context.clip = QRectF(0, start, width, bottom - start)
            layout.draw(painter, context)
        painter.restore()
        painter.setFont(small)
        painter.drawLine(0, int(body_h + 4), int(width), int(body_h + 4))
        painter.drawText(QRectF(0, body_h + 8, width, footer_h), Qt.TextFlag.TextWordWrap,
                         f"{footer}\nPage {n + 1} of {pages}")
    return pages


def _continued(text, page_height: float) -> dict:
    """Page number -> the paragraph of the main flow that goes on from the page before it."""
    layout, root = text.documentLayout(), text.rootFrame()
    out = {}
    block = text.begin()
    while block.isValid():
        box = layout.blockBoundingRect(block)
        if block.layout().lineCount() and text.frameAt(block.position()) == root:
            first = box.top() + block.layout().lineAt(0).y()
            page = int(first // page_height) + 1
            while page * page_height < box.bottom():
                out[page] = block
                page += 1
        block = block.next()
    return out
