"""The ``klero`` command line and (from a later issue) the PySide6 desktop app."""
