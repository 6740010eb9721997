"""A registry download leaves MLflow's process-wide URIs (and the environment) as it found them."""

from __future__ import annotations

import mlflow
import pytest

from amlscore.core.registry import process_wide_mlflow_uri


@pytest.mark.parametrize("before", ["sqlite:////tmp/a/mlflow.db", None])
def test_the_process_wide_uri_is_put_back(monkeypatch, tmp_path, before):
    from mlflow.tracking._tracking_service import utils as tracking_utils

    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    if before is None:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", before)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with process_wide_mlflow_uri(other):
        assert mlflow.get_tracking_uri() == other and mlflow.get_registry_uri() == other
    import os

    assert os.environ.get("MLFLOW_TRACKING_URI") == before
    assert tracking_utils._tracking_uri is None
    if before is not None:
        assert mlflow.get_tracking_uri() == before
