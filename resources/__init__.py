"""Data files shipped with Kleroterion (charters, icons, themes, beacon test vectors)."""
