"""A bounded, seeded fuzz run: mutants of four small model files each get a clean answer."""

from __future__ import annotations

from fuzz import run


def test_mutants_are_read_or_refused_cleanly(tmp_path):
    tally = run(count=100, seed=20261128, folder=tmp_path)
    assert sum(tally.values()) == 400
    assert tally.get("2", 0) > 0, tally  # the mutations do break files
