"""Fixtures for the contract tests; the tables themselves live in contract_data.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from contract_data import Tables, valid_tables, write_csv_tables


@pytest.fixture
def tables() -> Tables:
    return valid_tables()


@pytest.fixture
def csv_folder(tmp_path: Path) -> Callable[[Tables], Path]:
    """Write (possibly broken) tables to a fresh CSV folder and return it."""
    counter = iter(range(1000))

    def write(tables: Tables) -> Path:
        return write_csv_tables(tables, tmp_path / f"data{next(counter)}")

    return write
