"""Fixtures of the rule-score tests; the builders live in rules_builders.py."""

from __future__ import annotations

import pytest

from amlscore.models.rules import load_rules_config


@pytest.fixture(scope="session")
def cfg():
    """The packaged rules configuration."""
    return load_rules_config()
