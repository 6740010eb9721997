"""A folder of feature rows written by another engine (Spark), read back on one node for training.

The folder's manifest (:data:`MANIFEST`) says what the rows were computed from: the data folder's
fingerprint, the feature parameters' hash and a digest of the reports the graph features read (the
suspicious reports' customers and dates). :func:`read_feature_folder` refuses a folder whose rows
were computed from anything else, so a model is never trained on features of other data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.features.catalogue import FEATURE_NAMES, INTEGER_FEATURES
from amlscore.features.offline import ID_COLUMNS, ordered_transactions
from amlscore.features.params import FeatureParams

if TYPE_CHECKING:  # pragma: no cover
    from amlscore.contract.load import Dataset

MANIFEST = "_amlscore_features.json"  # beside Spark's part files (Spark ignores names starting with _)


class FeatureFolderError(AmlError):
    """A feature folder that is missing, incomplete or computed from other data or parameters."""


def reports_digest(reports: pd.DataFrame | None) -> str:
    """sha256 of what the features read of the reports: each suspicious report's customer and date."""
    digest = hashlib.sha256()
    if reports is not None and len(reports):
        rep = reports[reports["label"].astype(str) == "suspicious"]
        dates = pd.to_datetime(rep["report_date"].astype(str)).dt.strftime("%Y-%m-%d")
        for line in sorted(set(zip(rep["customer_id"].astype(str).tolist(), dates.tolist()))):
            digest.update(f"{line[0]}\t{line[1]}\n".encode())
    return digest.hexdigest()


def folder_manifest(rows: int, dataset: Dataset, params: FeatureParams, **extra: object) -> dict:
    """What :func:`read_feature_folder` checks, for a folder of ``rows`` feature rows of ``dataset``."""
    return {"rows": rows, "feature_params_hash": params.hash, "data_fingerprint": dataset.fingerprint,
            "reports_digest": reports_digest(dataset.reports), **extra}


def write_manifest(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def read_feature_folder(path: str | Path, dataset: Dataset, params: FeatureParams, *,
                        data_fingerprint: str | None = None) -> pd.DataFrame:
    """The feature rows of ``dataset`` from a folder written by ``amlscore features --engine spark``, as
    :func:`amlscore.features.offline.build_features` returns them: time order, the dataset's own
    ``txn_id``, ``customer_id`` and ``timestamp`` columns, integer features int32, the others float64.

    ``data_fingerprint`` is the data folder's fingerprint when ``dataset`` is it with feedback merged
    (the merge changes the fingerprint; the reports are checked by their digest).

    Raises
    ------
    FeatureFolderError
        If the folder has no manifest, or was computed from other data, parameters or reports, or
        misses or adds transactions.
    """
    folder = Path(path)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise FeatureFolderError(f"{folder} is not a feature folder written by amlscore features --engine spark "
                                 f"(no {MANIFEST} in it).")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    expected = {"data_fingerprint": data_fingerprint or dataset.fingerprint, "feature_params_hash": params.hash,
                "reports_digest": reports_digest(dataset.reports)}
    what = {"data_fingerprint": "another data folder (or the folder changed since)",
            "feature_params_hash": "other feature parameters (give the same --params)",
            "reports_digest": "other reports (feedback merged since, or reports changed)"}
    for key, value in expected.items():
        if manifest.get(key) != value:
            raise FeatureFolderError(f"The features in {folder} were computed from {what[key]}: its {key} is "
                                     f"{manifest.get(key)!r}, this run's is {value!r}. Compute them again.")
    columns = ["txn_id", *FEATURE_NAMES]
    frame = pd.read_parquet(folder, columns=columns)
    txns = ordered_transactions(dataset.transactions)
    ids = txns["txn_id"].astype(str).to_numpy(dtype=object)
    position = pd.Index(frame["txn_id"].astype(str).to_numpy(dtype=object))
    if len(frame) != len(ids) or not position.is_unique:
        raise FeatureFolderError(f"{folder} holds {len(frame):,} feature rows for {len(ids):,} transactions.")
    take = position.get_indexer(ids)
    if (take < 0).any():
        missing = ids[np.flatnonzero(take < 0)[0]]
        raise FeatureFolderError(f"{folder} has no feature row for transaction {missing!r}.")
    features = frame.iloc[take][list(FEATURE_NAMES)].reset_index(drop=True)
    features = features.astype({n: (np.int32 if n in INTEGER_FEATURES else np.float64) for n in FEATURE_NAMES})
    return pd.concat([txns[list(ID_COLUMNS)].reset_index(drop=True), features], axis=1)
