"""Fixtures for the serving tests: a tiny synthetic bank, API keys, and the service behind a TestClient.

Unit tests run the real BentoML app in process (``AmlScoring.to_asgi()`` + Starlette's TestClient)
with a stand-in model set (:mod:`serving_fakes`) injected through ``amlscore.serving.service.make_engine``;
the end-to-end tests (``test_e2e.py``) start ``bentoml serve`` with a model set from the registry.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from serving_fakes import FakeLoader  # noqa: E402
from serving_helpers import start_client  # noqa: E402


@pytest.fixture(scope="session")
def tiny_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200-customer, 30-day synthetic bank written in the contract (session-wide, read only)."""
    from amlscore.synth import SynthConfig, generate_bank, write_bank

    folder = tmp_path_factory.mktemp("bank") / "data"
    write_bank(generate_bank(SynthConfig(customers=200, days=30, seed=11)), folder)
    return folder


@pytest.fixture(scope="session")
def tiny_dataset(tiny_bank: Path) -> Any:
    from amlscore.contract import load_dataset

    return load_dataset(tiny_bank)


@pytest.fixture(scope="module")
def service_env(tmp_path_factory: pytest.TempPathFactory, tiny_bank: Path) -> Iterator[dict[str, Any]]:
    """One running app for a test module: its client, loader and state folder."""
    import os

    saved = dict(os.environ)
    state = tmp_path_factory.mktemp("state")
    loader = FakeLoader()
    client = start_client(tiny_bank, state, loader)
    try:
        yield {"client": client, "loader": loader, "state": state, "data": tiny_bank}
    finally:
        client.__exit__(None, None, None)
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture()
def client(service_env: dict[str, Any]) -> Any:
    return service_env["client"]
