"""Fixtures of the casework tests: a state folder with people, alerts in a real audit log, a tiny bank."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def tiny_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200-customer, 30-day synthetic bank in the contract (session-wide, read only)."""
    from amlscore.synth import SynthConfig, generate_bank, write_bank

    folder = tmp_path_factory.mktemp("casebank") / "data"
    write_bank(generate_bank(SynthConfig(customers=200, days=30, seed=3)), folder)
    return folder


@pytest.fixture()
def state(tmp_path: Path) -> Path:
    from casework_helpers import add_people

    folder = tmp_path / "state"
    folder.mkdir()
    add_people(folder)
    return folder


@pytest.fixture()
def work(state: Path) -> Any:
    from casework_helpers import open_work

    w = open_work(state)
    yield w
    w.store.close()
