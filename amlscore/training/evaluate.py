"""Evaluation: metrics of the fused score and of each component, per typology and per slice.

Labels for evaluation
---------------------
* **ground truth** when the data folder has ``ground_truth.csv`` (synthetic data): every laundering
  transaction is a positive, reported or not. This is the primary label source when present.
* **reports** otherwise (and in addition when ground truth is present): transactions labelled
  suspicious by the reports filed before the evaluation cut-off (:func:`amlscore.training.labels.derive_labels`).

Metrics (all on the rows evaluated; "alert rate r" means the top ``ceil(r * n)`` rows by score,
ties broken by row order)
-----------------------------------------------------------------------------------------------
``pr_auc`` (average precision), ``roc_auc``, ``recall_at_0_5pct`` and ``recall_at_1pct``
(recall among the top 0.5 % / 1 %), ``precision_at_k`` (top ``k`` rows, default 100),
``f1_at_threshold`` (F1 of the suspicious class with alerts at ``score >= alert_threshold``) with
its ``precision_at_threshold``, ``recall_at_threshold`` and ``alert_rate_at_threshold``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from amlscore.contract.schema import GROUND_TRUTH_FILE
from amlscore.training.labels import derive_labels

__all__ = [
    "COMPONENT_COLUMNS",
    "EvaluationReport",
    "customers_caught",
    "evaluate_scores",
    "evaluation_labels",
    "read_ground_truth",
    "recall_at_rate",
    "score_metrics",
    "slice_labels",
]

COMPONENT_COLUMNS = {"fused": "suspicion_score", "rules": "rule_score", "lgbm": "lgbm_probability",
                     "anomaly": "anomaly_score"}
RATES = {"recall_at_0_5pct": 0.005, "recall_at_1pct": 0.01}


def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` highest scores (ties by row order)."""
    mask = np.zeros(len(scores), dtype=bool)
    if k > 0 and len(scores):
        mask[np.argsort(-scores, kind="stable")[:k]] = True
    return mask


def recall_at_rate(y: np.ndarray, scores: np.ndarray, rate: float) -> float:
    """Recall among the top ``ceil(rate * n)`` rows."""
    pos = float(np.sum(y))
    if pos == 0:
        return float("nan")
    k = int(math.ceil(rate * len(scores)))
    return float(np.sum(y[top_k_mask(scores, k)]) / pos)


def customers_caught(customer_ids: Any, y: Any, scores: Any, typology: Any, rate: float) -> dict[str, Any]:
    """What the same alert budget finds per customer: a case is opened on every customer with a row
    among the top ``ceil(rate * n)``, so a laundering customer is *caught* when any of its rows is
    there (not necessarily a laundering one: the analyst reviews the customer).

    Returns ``laundering_customers`` (customers with a positive row), ``customer_recall`` (the share
    caught), ``alerted_customers`` and ``customer_precision`` (the share of alerted customers that
    launder), and ``per_typology``: the share caught among the customers with a positive row of
    each typology.
    """
    ids = np.asarray(customer_ids, dtype=object)
    y = np.asarray(y, dtype=np.int64)
    typ = np.asarray(typology, dtype=object)
    top = top_k_mask(np.asarray(scores, dtype=np.float64), int(math.ceil(rate * len(y))))
    alerted = set(ids[top].tolist())
    bad = set(ids[y == 1].tolist())
    per_typology = {}
    for t in sorted(set(typ[y == 1].tolist()) - {""}):
        members = set(ids[(y == 1) & (typ == t)].tolist())
        per_typology[str(t)] = len(members & alerted) / len(members)
    return {"laundering_customers": len(bad), "alerted_customers": len(alerted),
            "customer_recall": len(bad & alerted) / len(bad) if bad else float("nan"),
            "customer_precision": len(bad & alerted) / len(alerted) if alerted else float("nan"),
            "per_typology": per_typology}


def _pr_auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(average_precision_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def _roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def score_metrics(y: Any, scores: Any, *, threshold: float | None = None, k: int = 100) -> dict[str, float]:
    """The metric set of one score against binary labels (see module docstring)."""
    y = np.asarray(y, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    out: dict[str, float] = {"n": float(len(y)), "positives": float(y.sum()), "pr_auc": _pr_auc(y, s),
                             "roc_auc": _roc_auc(y, s)}
    for name, rate in RATES.items():
        out[name] = recall_at_rate(y, s, rate)
    kk = min(k, len(s))
    out["precision_at_k"] = float(y[top_k_mask(s, kk)].mean()) if kk else float("nan")
    if threshold is not None:
        alert = s >= threshold
        tp = float((y[alert] == 1).sum())
        prec = tp / alert.sum() if alert.sum() else 0.0
        rec = tp / y.sum() if y.sum() else float("nan")
        out["alert_rate_at_threshold"] = float(alert.mean()) if len(s) else float("nan")
        out["precision_at_threshold"] = float(prec)
        out["recall_at_threshold"] = float(rec)
        out["f1_at_threshold"] = float(2 * prec * rec / (prec + rec)) if (prec + rec) > 0 else 0.0
    return out


# ------------------------------------------------------------------------------------------------
# Labels and slices
# ------------------------------------------------------------------------------------------------


def read_ground_truth(folder: str | Path | None) -> pd.DataFrame | None:
    """``ground_truth.csv`` of a data folder (txn_id, customer_id, typology, scenario_id, reported), or None."""
    if folder is None:
        return None
    path = Path(folder) / GROUND_TRUTH_FILE
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"txn_id": str, "customer_id": str, "typology": str, "scenario_id": str})


@dataclass
class EvalLabels:
    """Labels of the evaluated rows: primary ``y`` and its ``source``; ``typology`` of ground-truth
    positives (else ""); ``y_reports`` from reports (also when the primary source is ground truth)."""

    y: np.ndarray
    source: str
    typology: np.ndarray
    y_reports: np.ndarray


def evaluation_labels(txn_ids: pd.Series, transactions: pd.DataFrame, reports: pd.DataFrame,
                      ground_truth: pd.DataFrame | None, *, cutoff: Any, utc_offset_hours: float) -> EvalLabels:
    """Labels for ``txn_ids`` (rows of ``transactions``, same order): ground truth when present, and reports."""
    lab = derive_labels(transactions, reports, cutoff=cutoff, utc_offset_hours=utc_offset_hours)
    lab = lab.set_index(lab["txn_id"].astype(str))
    ids = txn_ids.astype(str).to_numpy(dtype=object)
    y_rep = lab["label"].reindex(ids).fillna(0).to_numpy(dtype=np.int64)
    if ground_truth is not None:
        gt = ground_truth.drop_duplicates("txn_id").set_index("txn_id")
        typ = gt["typology"].reindex(ids)
        y = typ.notna().to_numpy().astype(np.int64)
        return EvalLabels(y, "ground_truth", typ.fillna("").astype(str).to_numpy(dtype=object), y_rep)
    typ = lab["typology"].reindex(ids).fillna("").astype(str).to_numpy(dtype=object)
    return EvalLabels(y_rep, "reports", np.where(y_rep == 1, typ, ""), y_rep)


def slice_labels(txns: pd.DataFrame, customers: pd.DataFrame, high_risk_industries: set[str]) -> dict[str, np.ndarray]:
    """Per-row slice values: customer type, PEP (pep, not_pep or pep_unknown), channel, high-risk industry
    (for the rows of ``txns``)."""
    cust = customers.set_index(customers["customer_id"].astype(str))
    cid = txns["customer_id"].astype(str).to_numpy(dtype=object)
    ctype = cust["customer_type"].astype(str).reindex(cid).to_numpy(dtype=object)
    pep_flag = cust["is_pep"].astype("boolean").reindex(cid)  # empty (contract 1.1) stays unknown
    pep = pep_flag.fillna(False).to_numpy(dtype=bool)
    pep_unknown = pep_flag.isna().to_numpy(dtype=bool)
    industry = cust["occupation_or_industry"].astype(str).reindex(cid).to_numpy(dtype=object)
    high = np.isin(industry, list(high_risk_industries))
    return {
        "customer_type": ctype,
        "pep": np.where(pep_unknown, "pep_unknown", np.where(pep, "pep", "not_pep")).astype(object),
        "channel": txns["channel"].astype(str).to_numpy(dtype=object),
        "industry_risk": np.where(high, "high_risk_industry", "other_industry").astype(object),
    }


# ------------------------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------------------------


@dataclass
class EvaluationReport:
    """Metrics of one scored period.

    ``overall``: metrics of the fused score on the primary labels; ``components``: the same for each
    component (fused, rules, lgbm, anomaly); ``reports``: the fused score against report labels
    (when the primary source is ground truth); ``per_typology`` and ``slices``: frames.
    """

    label_source: str
    period: str
    overall: dict[str, float]
    components: dict[str, dict[str, float]]
    reports: dict[str, float] | None
    per_typology: pd.DataFrame
    slices: pd.DataFrame
    alert_threshold: float
    extra: dict[str, Any] = field(default_factory=dict)

    def flat_metrics(self, prefix: str) -> dict[str, float]:
        """``{prefix}_{metric}`` for the fused score, ``{prefix}_{component}_{metric}`` for components,
        ``{prefix}_reports_{metric}``, ``{prefix}_typology_recall_1pct_{typology}``; NaN left out."""
        out: dict[str, float] = {}
        for k, v in self.overall.items():
            out[f"{prefix}_{k}"] = v
        for comp, m in self.components.items():
            if comp == "fused":
                continue
            for k in ("pr_auc", "roc_auc", "recall_at_0_5pct", "recall_at_1pct", "precision_at_k"):
                out[f"{prefix}_{comp}_{k}"] = m[k]
        if self.reports:
            for k, v in self.reports.items():
                out[f"{prefix}_reports_{k}"] = v
        for row in self.per_typology.itertuples(index=False):
            out[f"{prefix}_typology_recall_1pct_{row.typology}"] = row.recall_at_1pct
        return {k: float(v) for k, v in out.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}

    def to_dict(self) -> dict:
        def clean(d: dict) -> dict:
            return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}
        return {
            "label_source": self.label_source, "period": self.period, "alert_threshold": self.alert_threshold,
            "overall": clean(self.overall), "components": {k: clean(v) for k, v in self.components.items()},
            "reports": clean(self.reports) if self.reports else None,
            "per_typology": [clean(r) for r in self.per_typology.to_dict(orient="records")],
            "slices": [clean(r) for r in self.slices.to_dict(orient="records")], **self.extra,
        }


def evaluate_scores(scores: pd.DataFrame, labels: EvalLabels, *, alert_threshold: float,
                    slices: dict[str, np.ndarray] | None = None, period: str = "", k: int = 100) -> EvaluationReport:
    """Evaluate a :meth:`amlscore.models.model_set.ModelSet.score_frame` output against labels.

    Parameters
    ----------
    scores : DataFrame
        suspicion_score, rule_score, lgbm_probability, anomaly_score (one row per evaluated transaction).
    labels : EvalLabels
        Same rows and order.
    alert_threshold : float
        The model set's threshold on the suspicion score.
    slices : dict of str to array, optional
        Slice name -> per-row value (:func:`slice_labels`).
    period : str
        Words for the report ("test period 2025-10-22..2025-12-31").
    k : int, default=100
        For ``precision_at_k``.
    """
    y = labels.y
    fused = scores["suspicion_score"].to_numpy(dtype=np.float64)
    overall = score_metrics(y, fused, threshold=alert_threshold, k=k)
    components = {name: score_metrics(y, scores[col].to_numpy(dtype=np.float64), k=k)
                  for name, col in COMPONENT_COLUMNS.items()}
    rep = None
    if labels.source != "reports":
        rep = score_metrics(labels.y_reports, fused, threshold=alert_threshold, k=k)
        rep = {key: rep[key] for key in ("positives", "pr_auc", "roc_auc", "recall_at_1pct", "precision_at_k",
                                          "f1_at_threshold")}
    n = len(fused)
    top05 = top_k_mask(fused, int(math.ceil(0.005 * n)))
    top1 = top_k_mask(fused, int(math.ceil(0.01 * n)))
    alert = fused >= alert_threshold
    rows = []
    for typ in sorted(set(labels.typology[y == 1].tolist()) - {""}):
        m = (y == 1) & (labels.typology == typ)
        rows.append({"typology": typ, "laundering_txns": int(m.sum()), "recall_at_0_5pct": float(top05[m].mean()),
                     "recall_at_1pct": float(top1[m].mean()), "recall_at_threshold": float(alert[m].mean())})
    per_typology = pd.DataFrame(rows, columns=["typology", "laundering_txns", "recall_at_0_5pct", "recall_at_1pct",
                                               "recall_at_threshold"])
    srows = []
    for sname, values in (slices or {}).items():
        for val in sorted(set(values.tolist()), key=str):
            m = values == val
            ym, sm = y[m], fused[m]
            srows.append({"slice": sname, "value": str(val), "n": int(m.sum()), "positives": int(ym.sum()),
                          "alert_rate": float(alert[m].mean()), "pr_auc": _pr_auc(ym, sm),
                          "recall_at_1pct": float(top1[m][ym == 1].mean()) if ym.sum() else float("nan"),
                          "precision_at_threshold": float(ym[alert[m]].mean()) if alert[m].any() else float("nan"),
                          "recall_at_threshold": float(alert[m][ym == 1].mean()) if ym.sum() else float("nan")})
    slices_frame = pd.DataFrame(srows, columns=["slice", "value", "n", "positives", "alert_rate", "pr_auc",
                                                "recall_at_1pct", "precision_at_threshold", "recall_at_threshold"])
    return EvaluationReport(labels.source, period, overall, components, rep, per_typology, slices_frame, alert_threshold)
