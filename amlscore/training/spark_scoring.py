"""Batch scoring with Spark (``amlscore score --engine spark``): the Spark features, then the model set's
own :meth:`~amlscore.models.model_set.ModelSet.score_frame` per Arrow batch through ``mapInPandas``.

The model set goes to the executors as a folder written by :meth:`ModelSet.save` (``SparkContext.addFile``
on a classic session; on Spark Connect the folder beside ``out``, which must then be on storage every
executor reads) and is loaded once per Python worker (checked file by file on load), not once per batch.
Scores depend on their row only, so any batching gives the local engine's values.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pandas as pd

from amlscore.models.model_set import ModelSet
from amlscore.storage.staged import staged_folder

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from amlscore.contract.load import Dataset

SCORE_COLUMNS = ("txn_id", "suspicion_score", "rule_score", "lgbm_probability", "anomaly_score", "alert", "top_reasons")
_SCHEMA = ("txn_id string, suspicion_score double, rule_score double, lgbm_probability double, anomaly_score double, "
           "alert boolean, top_reasons string")
_MODEL_FOLDER = "amlscore_model_set"
_LOADED: dict[str, ModelSet] = {}  # per Python worker: the model sets it has loaded, by folder


def _model_set(folder: str, shipped: bool) -> ModelSet:
    if shipped:
        from pyspark import SparkFiles  # noqa: PLC0415 - only inside a Spark task

        folder = SparkFiles.get(Path(folder).name)
    if folder not in _LOADED:
        _LOADED[folder] = ModelSet.load(folder)
    return _LOADED[folder]


def score_spark(spark: SparkSession, dataset: Dataset, model_set: ModelSet, out: str | Path, *,
                reasons: str = "alerts") -> tuple[int, int]:
    """Score every transaction of ``dataset`` with Spark and write :data:`SCORE_COLUMNS` as a Parquet
    folder ``out`` (renamed into place when complete); returns (rows, alerts)."""
    from amlscore.features.spark import feature_frame  # noqa: PLC0415

    if reasons not in ("alerts", "all", "none"):
        raise ValueError(f"The 'reasons' parameter of score_spark must be 'alerts', 'all' or 'none'. Got {reasons!r} instead.")
    with staged_folder(out) as (tmp, staging):
        features = feature_frame(spark, dataset, staging, model_set.feature_params)
        # a new name per call: a session refuses a second file of the same name
        folder = staging / f"{_MODEL_FOLDER}_{uuid.uuid4().hex[:12]}"
        model_set.save(folder)
        shipped = _ship(spark, folder)
        local = str(folder)

        def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            ms = _model_set(local, shipped)
            for frame in batches:
                yield ms.score_frame(frame, reasons=reasons)[list(SCORE_COLUMNS)]

        features.mapInPandas(score, _SCHEMA).write.mode("overwrite").parquet(str(tmp))
        written = spark.read.parquet(str(tmp))
        rows, alerts = written.count(), written.where("alert").count()
    return rows, alerts


def _ship(spark: SparkSession, folder: Path) -> bool:
    """Send the model set folder to every executor when the session can (classic Spark)."""
    try:
        context = spark.sparkContext
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext
        return False
    context.addFile(str(folder), recursive=True)
    return True
