"""Shared fixtures: seeded simulated assemblies and isolated profile homes."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# real Qt widgets, headless (brief: QT_QPA_PLATFORM=offscreen), unless a display is asked for
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

settings.register_profile("default", deadline=None)
settings.load_profile("default")


@pytest.fixture
def klero_home(tmp_path, monkeypatch):
    """A private data directory for profiles, so tests never touch the user's own."""
    home = tmp_path / "home"
    monkeypatch.setenv("KLERO_HOME", str(home))
    monkeypatch.setenv("KLERO_PASSPHRASE", "a long test passphrase")
    return home


@pytest.fixture(scope="session")
def small_log():
    """A seeded simulated log: charter first, 600 events, two equivocations."""
    from p2p.tools.simulate import Simulation

    return list(Simulation(seed=7, reps=6).log(600, forks=2))
