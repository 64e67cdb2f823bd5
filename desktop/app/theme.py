"""Light and dark themes: Qt's Fusion style with a palette (colours come from the palette, so
every widget follows; the diff and blame views add strike-through and underline, never colour
alone)."""

from __future__ import annotations


def apply_theme(app, dark: bool) -> None:
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    if not dark:
        app.setPalette(app.style().standardPalette())
        return
    p = QPalette()
    roles = QPalette.ColorRole
    for role, colour in ((roles.Window, "#202124"), (roles.WindowText, "#e8eaed"), (roles.Base, "#17181a"),
                         (roles.AlternateBase, "#26282b"), (roles.Text, "#e8eaed"), (roles.Button, "#2d2f33"),
                         (roles.ButtonText, "#e8eaed"), (roles.Highlight, "#8ab4f8"), (roles.HighlightedText, "#202124"),
                         (roles.ToolTipBase, "#2d2f33"), (roles.ToolTipText, "#e8eaed"), (roles.PlaceholderText, "#9aa0a6"),
                         (roles.Link, "#8ab4f8")):
        p.setColor(role, QColor(colour))
    p.setColor(QPalette.ColorGroup.Disabled, roles.ButtonText, QColor("#6f7378"))
    p.setColor(QPalette.ColorGroup.Disabled, roles.Text, QColor("#6f7378"))
    app.setPalette(p)
