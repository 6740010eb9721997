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
from amlscore.models.pu import calibrate_subsampled, label_frequency, unlabelled_positive_weights
from amlscore.models.supervised import SuspicionClassifier
from amlscore.training.result import feature_matrix

__all__ = ["FusionSample", "anomaly_evidence", "explain_fusion", "oof_fusion_sample", "time_blocks"]


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
    pu: dict[str, float]

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


def _fit_predict_folds(feats: pd.DataFrame, rows: np.ndarray, y: np.ndarray, fit_weight: np.ndarray,
                       origin: np.ndarray, blocks: list[np.ndarray], n_out: int, params: dict[str, Any]) -> np.ndarray:
    """Out-of-fold probabilities of the ``n_out`` sample rows.

    ``rows``, ``y`` and ``fit_weight`` are the fitting rows (a sample row may appear twice, as a
    weighted positive and a weighted negative); ``origin`` maps each to its sample row; ``blocks``
    are sample-row positions. A block whose complement lacks a class stays NaN.
    """
    p = np.full(n_out, np.nan)
    for block in blocks:
        held = np.isin(origin, block)
        fit = ~held & (fit_weight > 0)
        if not fit.any() or y[fit].min() == y[fit].max():
            continue
        model = SuspicionClassifier(**params)
        model.fit(feature_matrix(feats, rows[fit]), y[fit], sample_weight=fit_weight[fit])
        sample_rows = np.zeros(n_out, dtype=np.int64)
        sample_rows[origin] = rows  # every sample row appears at least once in rows
        p[block] = model.predict_proba(feature_matrix(feats, sample_rows[block]))[:, 1]
    return p


def oof_fusion_sample(feats: pd.DataFrame, rule_score: np.ndarray, detector: Any, *, positives: np.ndarray,
                      confirmed_negatives: np.ndarray, unlabelled: np.ndarray, unlabelled_rate: float,
                      customers: np.ndarray, lgbm_params: dict[str, Any], n_trees: int, folds: int = 3,
                      balance: bool = True, pu: bool = False, pu_scale: float = 1.0,
                      refit: bool = False) -> tuple[FusionSample, SuspicionClassifier | None]:
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
        The sampling rate of ``unlabelled`` (each weighs ``1 / rate`` in the fusion).
    customers : array
        Customer id per row of ``feats`` (for the per-customer balance of positives).
    lgbm_params : dict
        Parameters of the main LightGBM; each fold fits ``n_trees`` trees without early stopping.
    folds : int
        Time blocks (at least 2).
    pu : bool
        Treat the unlabelled rows as positive-unlabelled (:mod:`amlscore.models.pu`, Elkan & Noto
        2008): a first round of folds gives each row a held-out ``g``; the label frequency ``c``
        comes from the positives' ``g``; every unlabelled row then also counts as a positive with
        weight ``w(x)`` (and as a negative with ``1 - w(x)``) in a second round of folds, whose
        probabilities the fusion is fitted on (and in the refit).
    pu_scale : float in (0, 1]
        Multiplies ``w(x)``: a hedge against reports not being chosen at random (Elkan & Noto assume
        they are; a typology nobody reports breaks it).
    refit : bool
        Also fit a LightGBM on all the rows the folds were fitted on (train + valid, with the PU
        weights when ``pu``), ``n_trees`` trees: stacking's usual refit on everything once the
        meta-model (the fusion) is fitted, so the served model's probabilities are on the scale
        the fusion learned and it has seen the validation period's reports too.

    Returns
    -------
    (FusionSample, SuspicionClassifier or None)
        The fusion's rows, and with ``refit`` the refitted LightGBM (else None).
    """
    rows = np.concatenate([positives, confirmed_negatives, unlabelled])
    kind = np.r_[np.zeros(len(positives)), np.ones(len(confirmed_negatives)), np.full(len(unlabelled), 2.0)]
    y = (kind == 0).astype(np.float64)
    w = np.r_[customer_balance(customers[positives]) if (balance and len(positives)) else np.ones(len(positives)),
              np.ones(len(confirmed_negatives)), np.full(len(unlabelled), 1.0 / unlabelled_rate)]
    order = np.argsort(rows, kind="stable")
    rows, y, w, kind = rows[order], y[order], w[order], kind[order]
    n = len(rows)
    blocks = time_blocks(np.arange(n), max(2, folds))
    params = {**lgbm_params, "n_estimators": int(max(1, n_trees))}
    ones = np.ones(n)
    # Unlabelled rows enter LightGBM unweighted, as in the main fit; the 1 / rate weights are the fusion's.
    p = _fit_predict_folds(feats, rows, y, ones, np.arange(n), blocks, n, params)
    fit_rows, fit_y, fit_w = rows, y, ones
    pu_info: dict[str, float] = {}
    if pu:
        g = calibrate_subsampled(np.nan_to_num(p, nan=0.0), unlabelled_rate)
        pos, unl = (kind == 0) & ~np.isnan(p), (kind == 2) & ~np.isnan(p)
        c = label_frequency(g[pos], w[pos])
        w_pos = np.zeros(n)
        w_pos[unl] = pu_scale * unlabelled_positive_weights(g[unl], c)
        dup = np.flatnonzero(w_pos > 0.01)
        fit_rows = np.r_[rows, rows[dup]]
        fit_y = np.r_[y, np.ones(len(dup))]
        fit_w = np.r_[np.where(kind == 2, 1.0 - w_pos, 1.0), w_pos[dup]]
        origin = np.r_[np.arange(n), dup]
        p = _fit_predict_folds(feats, fit_rows, fit_y, fit_w, origin, blocks, n, params)
        pu_info = {"label_frequency": c, "unlabelled_as_positive": float(w_pos[unl].sum() / max(unlabelled_rate, 1e-12)),
                   "unlabelled_weighted_rows": float(len(dup))}
    final: SuspicionClassifier | None = None
    if refit:
        final = SuspicionClassifier(**params)
        keep = fit_w > 0
        final.fit(feature_matrix(feats, fit_rows[keep]), fit_y[keep], sample_weight=fit_w[keep])
    done = ~np.isnan(p)
    rows, y, w, p = rows[done], y[done], w[done], p[done]
    a = np.empty(len(rows))
    for chunk in np.array_split(np.arange(len(rows)), max(1, len(rows) // 200_000 + 1)):
        a[chunk] = detector.anomaly_score(feature_matrix(feats, rows[chunk]))
    return FusionSample(rows, rule_score[rows], p, a, y, w, len(blocks), pu_info), final


def anomaly_evidence(anomaly_score: np.ndarray, y: np.ndarray, weight: np.ndarray) -> float:
    """How well the anomaly score **alone** ranks the bank's reported rows: its weighted ROC-AUC
    (reported against the rest; ``weight`` 0 drops a row, an unlabelled row weighs what it stands for).

    The floor under the anomaly score's weight (:func:`amlscore.training.train.fusion_of`) rests on it:
    the anomaly detector never saw a report, so ranking the reported kinds well is the evidence that
    it ranks laundering in *this* bank, and so likely the kinds nobody reported. ROC-AUC, not PR-AUC:
    it does not move with the share of rows reported, which differs from bank to bank. NaN when a
    class has no weight.
    """
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    a, yv, w = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (anomaly_score, y, weight))
    keep = w > 0
    if len(np.unique(yv[keep])) < 2:
        return float("nan")
    return float(roc_auc_score(yv[keep], a[keep], sample_weight=w[keep]))


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
        without = SuspicionFusion(C=fusion.C, min_log_odds_per_sd=fusion.min_log_odds_per_sd).fit(
            *flat, y, sample_weight=w)
        loss_without = _weighted_log_loss(without, tuple(flat), y, w)
        out.append({"component": name, "weight": float(fusion.coef_[j]),
                    "log_odds_per_sd": float(fusion.coef_[j] * sd[j]),
                    "log_loss_increase_without": float(loss_without - base),
                    "at_floor": bool(getattr(fusion, "at_floor_", [False] * len(COMPONENTS))[j])})
    return out


def describe_component(entry: dict[str, Any]) -> str:
    """One sentence on why a component has its weight (for the model card)."""
    name = entry["component"].replace("_", " ")
    gain = entry["log_loss_increase_without"]
    if entry.get("at_floor"):
        return (f"{name}: weight {entry['weight']:.3f}, held at the floor set for it (one standard deviation moves the "
                f"log-odds by {entry['log_odds_per_sd']:.2f}): the reports alone would give it less, but they only "
                f"cover the typologies someone reported, and this component also ranks kinds nobody reported "
                f"(refitted without it, the log-loss changes by {gain:+.4f}).")
    if entry["weight"] <= 0:
        return (f"{name}: weight 0; weights are kept non-negative (the score is monotone in every component) and, "
                f"given the other components, more of it does not make a report more likely: what it knows is "
                f"already in them (refitted without it, the log-loss changes by {abs(gain):.4f}).")
    return (f"{name}: weight {entry['weight']:.3f}; one standard deviation moves the log-odds by "
            f"{entry['log_odds_per_sd']:.2f}; without it the fit's log-loss rises by {gain:.4f}.")
