"""What a case report needs of a model set, kept in the case store so that a report need not load it.

A case report asks a model set two things: the scores of the customer's transactions in the shown
window, and the explanation of the focal transaction (TreeSHAP, anomaly attribution, fusion
terms). Loading the model set to answer them (LightGBM, scikit-learn, the IsolationForest) costs a
fresh process several seconds, more than the rest of the report. So both answers are computed
once per model set and data set and kept in the data set's case store (:mod:`amlscore.reports.store`):

==================================  ================================================================
file                                content
==================================  ================================================================
``scores-<key>.parquet``            every transaction scored (``CaseStore.batch_scores``), in the
                                    store's customer order: a report reads its customer's rows
``explain-<key>.sqlite``            explanations by feature vector: sha256 of ``top_k`` and the row's
                                    float64 bytes -> the explanation's numbers (JSON)
==================================  ================================================================

``<key>`` is :func:`model_key`: the registry name and version, **the first 12 hex digits of the
sha256 of the model set's manifest** (which holds the sha256 of every model file) and **8 of the
sha256 of the scoring code** (:func:`scoring_code_hash`: the ``models`` package and this module).
So a model set trained again under a reused version number never meets the answers of the earlier
one, changed scoring code computes them again, and the store folder itself is per data
fingerprint. Only model sets opened from their folder
(:class:`amlscore.reports.sources.LazyModelSet`, whatever ``amlscore.reports.sources`` loads) have such a key; a
model set object handed in by a caller is always asked directly.

An explanation is looked up by the exact bytes of the feature vector: the same bytes give the same
explanation (the model set is deterministic), other bytes are a miss and the model set is asked
(and the answer kept). Only the numbers and feature names are kept (:func:`explanation_numbers`):
that is all a report reads of an explanation (it words the features itself), so one entry serves
both languages.

:func:`prepare_model` fills both for every alert of the data set (``amlscore report prepare
--alias champion``, run by ``amlscore demo``); without it, the first report of an alert loads the
model set and keeps what it computed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amlscore.reports.case_facts import score_frame_fast
from amlscore.reports.case_types import ModelInfo
from amlscore.reports.files import package_code_hash
from amlscore.reports.store import CaseStore

SCORE_COLUMNS = ("suspicion_score", "rule_score", "lgbm_probability", "anomaly_score", "alert")
_EXPLAIN_TABLE = "explanation"


def model_key(model: ModelInfo) -> str:
    """The name of a model set's files in the case store: ``<name>-v<version>`` and, for a model set opened
    from its folder, ``-<sha256 of its manifest, 12 hex digits>-<scoring code, 8 hex digits>``."""
    base = f"{model.name or 'model'}-v{model.version or 'local'}".replace("/", "_")
    h = content_hash(model)
    return f"{base}-{h[:12]}-{scoring_code_hash()[:8]}" if h else base


def scoring_code_hash() -> str:
    """sha256 of the code that computes the kept answers: every module of the :mod:`models` package
    (scores, explanations, rules) and this one (what is kept of an explanation). Changed code, same
    model files: other answers may follow, so the answers are computed again."""
    return package_code_hash("amlscore.models", __file__)


def content_hash(model: ModelInfo | None) -> str | None:
    """sha256 of the model set's manifest when it was opened from its folder, else None."""
    h = getattr(getattr(model, "model_set", None), "content_hash", None) if model is not None else None
    return h if isinstance(h, str) and h else None


def model_scores(store: CaseStore, model: ModelInfo, progress: Callable[[str, float], None] | None = None) -> pd.DataFrame:
    """Every transaction of the data set scored by ``model`` (computed once, then read from the store)."""
    return store.batch_scores(model_key(model), lambda f: score_frame_fast(model.model_set, f), progress=progress)


# ---------------------------------------------------------------------------------------------
# Scores of one customer's transactions
# ---------------------------------------------------------------------------------------------
def cached_scores(store: CaseStore, model: ModelInfo | None, customer_id: str,
                  txn_ids: pd.Series | Sequence[str]) -> pd.DataFrame | None:
    """``suspicion_score, rule_score, lgbm_probability, anomaly_score, alert`` of ``txn_ids`` (transactions of
    ``customer_id``, in that order) from the store's batch scores of ``model``; None when there are
    none (no cache key, not computed yet, or a transaction missing)."""
    if model is None or model.model_set is None or content_hash(model) is None:
        return None
    path = store.scores_path(model_key(model))
    rows = store.rows.get(str(customer_id))
    if not path.is_file() or rows is None:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    start, stop = rows
    pf = pq.ParquetFile(path, memory_map=True)
    names = set(pf.schema_arrow.names)
    columns = ["txn_id", *(c for c in SCORE_COLUMNS if c in names)]
    groups, first, offset = [], None, 0
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if offset < stop and offset + n > start:
            groups.append(g)
            first = offset if first is None else first
        offset += n
    if not groups or offset != store.meta.get("transactions", offset):
        return None
    table: pa.Table = pf.read_row_groups(groups, columns=columns).slice(start - first, stop - start)
    frame = table.to_pandas()
    if "alert" not in frame:
        return None
    ids = pd.Index(frame["txn_id"].astype(str).to_numpy())
    want = np.asarray(txn_ids, dtype=object).astype(str)
    pos = ids.get_indexer(want)
    if (pos < 0).any():
        return None
    out = pd.DataFrame(index=pd.RangeIndex(len(want)))
    for c in SCORE_COLUMNS[:4]:
        out[c] = frame[c].to_numpy(dtype=float)[pos] if c in frame else np.nan
    out["alert"] = frame["alert"].to_numpy(dtype=bool)[pos]
    return out


# ---------------------------------------------------------------------------------------------
# Explanations
# ---------------------------------------------------------------------------------------------
def explanation_numbers(expl: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an explanation (:meth:`amlscore.models.decision.Explanation.to_dict`) a case report reads:
    components, fusion terms and intercept, the LightGBM expected value and contributions, the
    anomaly shares, each with its feature name and value. The worded texts (labels, rule sentences)
    are left out: :func:`amlscore.reports.case_facts.explanation_facts` words the features in the report's language."""
    out = {k: expl[k] for k in ("suspicion_score", "alert", "alert_threshold", "components", "fusion_intercept",
                                "fusion_terms", "lgbm_expected_value") if k in expl}
    for key, amount in (("lgbm_contributions", "contribution"), ("anomaly_attribution", "share")):
        out[key] = [{k: it[k] for k in ("feature", "value", amount) if k in it} for it in expl.get(key) or []]
    return out


def vector_key(x: np.ndarray, top_k: int) -> str:
    """sha256 of ``top_k`` and the row's float64 bytes."""
    row = np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(-1))
    return hashlib.sha256(f"{int(top_k)}|".encode() + row.tobytes()).hexdigest()


def explain_path(store: CaseStore, model: ModelInfo) -> Path:
    return store.root / f"explain-{model_key(model)}.sqlite"


def _connect(path: Path, write: bool) -> sqlite3.Connection:
    if write:
        con = sqlite3.connect(path, timeout=30)
        con.execute(f"CREATE TABLE IF NOT EXISTS {_EXPLAIN_TABLE} (key TEXT PRIMARY KEY, txn_id TEXT, body TEXT NOT NULL)")
        return con
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def cached_explanation(store: CaseStore, model: ModelInfo, x: np.ndarray, top_k: int) -> dict[str, Any] | None:
    """The kept explanation of the row ``x`` by ``model``, or None."""
    if content_hash(model) is None:
        return None
    path = explain_path(store, model)
    if not path.is_file():
        return None
    try:
        con = _connect(path, write=False)
        try:
            row = con.execute(f"SELECT body FROM {_EXPLAIN_TABLE} WHERE key = ?", (vector_key(x, top_k),)).fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return None if row is None else json.loads(row[0])


def keep_explanations(store: CaseStore, model: ModelInfo, rows: list[tuple[np.ndarray, str | None, Mapping[str, Any]]],
                      top_k: int) -> None:
    """Keep ``(x, txn_id, explanation)`` rows (their numbers); a store that cannot be written keeps nothing."""
    if content_hash(model) is None or not rows:
        return
    try:
        con = _connect(explain_path(store, model), write=True)
        try:
            with con:
                con.executemany(f"INSERT OR REPLACE INTO {_EXPLAIN_TABLE} (key, txn_id, body) VALUES (?, ?, ?)",
                                [(vector_key(x, top_k), txn, json.dumps(explanation_numbers(e))) for x, txn, e in rows])
        finally:
            con.close()
    except (sqlite3.Error, OSError):
        pass


def explain(store: CaseStore | None, model: ModelInfo, x: np.ndarray, top_k: int, lang: str,
            txn_id: str | None = None) -> dict[str, Any]:
    """The explanation of the row ``x`` (shape (1, n_features)) by ``model``: kept in the store, or computed
    by the model set (and then kept)."""
    if store is not None:
        hit = cached_explanation(store, model, x, top_k)
        if hit is not None:
            return hit
    expl = model.model_set.explain_vector(x, top_k=top_k, lang=lang).to_dict()
    if store is not None:
        keep_explanations(store, model, [(x, txn_id, expl)], top_k)
    return expl


# ---------------------------------------------------------------------------------------------
# Preparing a model set for a data set
# ---------------------------------------------------------------------------------------------
def prepare_model(store: CaseStore, model: ModelInfo, progress: Callable[[str, float], None] | None = None,
                  chunk: int = 500) -> dict[str, Any]:
    """Score every transaction with ``model`` and explain every alert, into the store (what is already
    there is kept). Returns ``{"key", "alerts", "explained"}`` (explained: newly computed)."""
    from amlscore.features.catalogue import FEATURE_NAMES
    from amlscore.reports.case_types import TOP_ATTRIBUTIONS

    key = model_key(model)
    scores = model_scores(store, model, progress=progress)
    alerts = scores.loc[scores["alert"].to_numpy(dtype=bool), ["txn_id", "customer_id"]]
    if content_hash(model) is None or not len(alerts):
        return {"key": key, "alerts": int(len(alerts)), "explained": 0}
    done: set[str] = set()
    path = explain_path(store, model)
    if path.is_file():
        try:
            con = _connect(path, write=False)
            try:
                done = {r[0] for r in con.execute(f"SELECT key FROM {_EXPLAIN_TABLE}")}
            finally:
                con.close()
        except sqlite3.Error:
            done = set()
    names = list(FEATURE_NAMES)
    customers = alerts["customer_id"].astype(str).unique().tolist()
    wanted = set(alerts["txn_id"].astype(str))
    pending: list[tuple[np.ndarray, str, Mapping[str, Any]]] = []
    explained = 0
    for first in range(0, len(customers), 50):
        feats = store.features(customers[first:first + 50])
        feats = feats[feats["txn_id"].astype(str).isin(wanted).to_numpy()]
        X = feats[names].to_numpy(dtype=float)
        for i, txn in enumerate(feats["txn_id"].astype(str)):
            x = X[i:i + 1]
            if vector_key(x, TOP_ATTRIBUTIONS) in done:
                continue
            pending.append((x, txn, model.model_set.explain_vector(x, top_k=TOP_ATTRIBUTIONS, lang="en").to_dict()))
            if len(pending) >= chunk:
                keep_explanations(store, model, pending, TOP_ATTRIBUTIONS)
                explained += len(pending)
                pending = []
        if progress:
            progress("explaining alerts", min(first + 50, len(customers)) / len(customers))
    keep_explanations(store, model, pending, TOP_ATTRIBUTIONS)
    explained += len(pending)
    return {"key": key, "alerts": int(len(alerts)), "explained": explained}
