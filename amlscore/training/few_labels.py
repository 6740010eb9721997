"""Learning from few labels: the fusion fitted on out-of-fold predictions over several periods.

Why: the fusion of rule score, LightGBM probability and anomaly score used to be fitted on the
validation period alone, where a bank with few reports has a few dozen positives: its weights
swung from seed to seed, and in one run the rule score got a weight of exactly 0. Here the fusion
sees every labelled transaction of the training **and** validation periods, each scored by a
LightGBM that never saw it:

* the rows of train + valid are cut into ``k`` contiguous **time blocks**; for each block a
  LightGBM with the main model's parameters and tree count is fitted on the other blocks and
  predicts the block (cross-fitting / stacking: Wolpert 1992, "Stacked generalization",
  Neural Networks 5(2); out-of-fold predictions with blocked folds for time-ordered data:
  Bergmeir & Benitez 2012, "On the use of cross-validation for time series predictor
  evaluation", Information Sciences 191);
* the labels are the reports filed before the test period (the validation cut-off), so the
  training period's rows carry the reports filed while the validation period ran as well;
* unlabelled rows are down-sampled and weighted back (``1 / rate``) like everywhere else.

The fitted fusion is then applied to the main LightGBM (fitted on the training period and
early-stopped on validation, as before). :func:`explain_fusion` says, per component, its weight,
how much a one-standard-deviation change moves the log-odds, and how much worse the fusion fits
without it: the "why" the model card prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from amlscore.models.fusion import COMPONENTS, SuspicionFusion, component_matrix
from amlscore.models.supervised import SuspicionClassifier
from amlscore.training.result import feature_matrix

__all__ = ["FusionSample", "explain_fusion", "oof_fusion_sample", "time_blocks"]


@dataclass
class FusionSample:
    """Rows the fusion is fitted on, with their components, labels and weights."""

    rows: np.ndarray
    rule_score: np.ndarray
    lgbm_probability: np.ndarray
    anomaly_score: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    folds: int

    @property
    def positives(self) -> int:
        return int((self.y[self.weight > 0] == 1).sum())


def time_blocks(rows: np.ndarray, k: int) -> list[np.ndarray]:
    """``rows`` (time-ordered row numbers) cut into ``k`` contiguous blocks of about equal size."""
    return [b for b in np.array_split(np.sort(rows), k) if len(b)]


def customer_balance(customers: np.ndarray) -> np.ndarray:
    """Weights that make every customer's positives count the same in total (their mean count)."""
    counts = pd.Series(customers).value_counts()
    return counts.mean() / counts.reindex(customers).to_numpy()


def oof_fusion_sample(feats: pd.DataFrame, rule_score: np.ndarray, detector: Any, *, positives: np.ndarray,
                      confirmed_negatives: np.ndarray, unlabelled: np.ndarray, unlabelled_rate: float,
                      customers: np.ndarray, lgbm_params: dict[str, Any], n_trees: int, folds: int = 3,
                      balance: bool = True) -> FusionSample:
    """Out-of-fold LightGBM probabilities and the other components on the fusion's rows.

    Parameters
    ----------
    feats : DataFrame
        The features of every transaction (row-aligned with ``rule_score``).
    detector
        The fitted anomaly detector (``anomaly_score(X)``).
    positives, confirmed_negatives, unlabelled : array of row numbers
        Labelled rows of train + valid (positives already refined), and a sample of the unlabelled.
    unlabelled_rate : float
        The sampling rate of ``unlabelled`` (each weighs ``1 / rate``).
    customers : array
        Customer id per row of ``feats`` (for the per-customer balance of positives).
    lgbm_params : dict
        Parameters of the main LightGBM; each fold fits ``n_trees`` trees without early stopping.
    folds : int
        Time blocks (at least 2).
    """
    rows = np.concatenate([positives, confirmed_negatives, unlabelled])
    y = np.r_[np.ones(len(positives)), np.zeros(len(confirmed_negatives) + len(unlabelled))]
    w = np.r_[customer_balance(customers[positives]) if (balance and len(positives)) else np.ones(len(positives)),
              np.ones(len(confirmed_negatives)), np.full(len(unlabelled), 1.0 / unlabelled_rate)]
    order = np.argsort(rows, kind="stable")
    rows, y, w = rows[order], y[order], w[order]
    p = np.full(len(rows), np.nan)
    blocks = time_blocks(np.arange(len(rows)), max(2, folds))
    params = {**lgbm_params, "n_estimators": int(max(1, n_trees))}
    for block in blocks:
        fit_idx = np.setdiff1d(np.arange(len(rows)), block, assume_unique=True)
        yf = y[fit_idx]
        if yf.min() == yf.max() or y[block].size == 0:
            continue  # a fold without both classes cannot be fitted: its rows are left out of the fusion
        model = SuspicionClassifier(**params)
        # Unlabelled rows enter LightGBM unweighted, as in the main fit; the weights are the fusion's.
        model.fit(feature_matrix(feats, rows[fit_idx]), yf)
        p[block] = model.predict_proba(feature_matrix(feats, rows[block]))[:, 1]
    done = ~np.isnan(p)
    rows, y, w, p = rows[done], y[done], w[done], p[done]
    a = np.empty(len(rows))
    for chunk in np.array_split(np.arange(len(rows)), max(1, len(rows) // 200_000 + 1)):
        a[chunk] = detector.anomaly_score(feature_matrix(feats, rows[chunk]))
    return FusionSample(rows, rule_score[rows], p, a, y, w, len(blocks))


def _weighted_log_loss(fusion: SuspicionFusion, z: tuple[np.ndarray, np.ndarray, np.ndarray], y: np.ndarray,
                       w: np.ndarray) -> float:
    m = fusion.decision_function(*z)
    return float(np.dot(w, np.logaddexp(0.0, m) - y * m) / w.sum())


def explain_fusion(fusion: SuspicionFusion, sample: FusionSample) -> list[dict[str, Any]]:
    """Per component: its weight, the log-odds moved by one standard deviation of it, and how much
    the fusion's weighted log-loss rises when it is refitted without that component."""
    z = (sample.rule_score, sample.lgbm_probability, sample.anomaly_score)
    keep = sample.weight > 0
    y, w = sample.y[keep], sample.weight[keep]
    zk = tuple(c[keep] for c in z)
    base = _weighted_log_loss(fusion, zk, y, w)
    Z = component_matrix(*zk)
    sd = np.sqrt(np.average((Z - np.average(Z, axis=0, weights=w)) ** 2, axis=0, weights=w))
    out = []
    for j, name in enumerate(COMPONENTS):
        flat = [c.copy() for c in zk]
        # A constant column carries no information: the refit is the fusion without this component.
        flat[j] = np.full_like(flat[j], 0.5 if name == "lgbm_probability" else 0.0)
        without = SuspicionFusion(C=fusion.C).fit(*flat, y, sample_weight=w)
        loss_without = _weighted_log_loss(without, tuple(flat), y, w)
        out.append({"component": name, "weight": float(fusion.coef_[j]),
                    "log_odds_per_sd": float(fusion.coef_[j] * sd[j]),
                    "log_loss_increase_without": float(loss_without - base)})
    return out


def describe_component(entry: dict[str, Any]) -> str:
    """One sentence on why a component has its weight (for the model card)."""
    name = entry["component"].replace("_", " ")
    gain = entry["log_loss_increase_without"]
    if entry["weight"] <= 0:
        return (f"{name}: weight 0; it adds nothing the other components do not already say "
                f"(log-loss without it {gain:+.4f}).")
    return (f"{name}: weight {entry['weight']:.3f}; one standard deviation moves the log-odds by "
            f"{entry['log_odds_per_sd']:.2f}; without it the fit's log-loss rises by {gain:.4f}.")
