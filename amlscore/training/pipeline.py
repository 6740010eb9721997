"""Training composed with tracking: fit, evaluate, then log the run and register the model set.

:func:`amlscore.training.train.train` knows nothing of MLflow; :func:`amlscore.training.tracking.log_training_run`
knows nothing of fitting. This is where the two meet, for the command, the notebooks and the benchmarks.
"""

from __future__ import annotations

import time

from amlscore.contract.load import Dataset
from amlscore.training.result import ProgressFn, TrainConfig, TrainResult, no_progress
from amlscore.training.train import train

__all__ = ["train_and_register"]


def train_and_register(config: TrainConfig, progress: ProgressFn = no_progress, *, experiment: str | None = None,
                       dataset: Dataset | None = None) -> TrainResult:
    """Train, then log one MLflow run and register its model set with the alias ``challenger``.

    Returns the :class:`TrainResult` with ``run_id``, ``model_version`` and ``model_uri`` filled and the
    logging time in ``timings["mlflow"]`` (``timings["total"]`` includes it).
    """
    from amlscore.training.tracking import log_training_run  # MLflow is imported only here

    result = train(config, progress, dataset=dataset)
    progress("logging to MLflow", 0.92)
    t0 = time.perf_counter()
    log_training_run(result, config, experiment=experiment)
    result.timings["mlflow"] = time.perf_counter() - t0
    result.timings["total"] += result.timings["mlflow"]
    progress("done", 1.0)
    return result
