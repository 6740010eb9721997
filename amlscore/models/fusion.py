"""Fusion of the three component scores into one suspicion score from 0 to 100, and alert thresholds.

Score direction: the suspicion score is in [0, 100]; **the higher, the more suspicious**. It is
monotone non-decreasing in each component (rule score, LightGBM probability, anomaly score): a
component going up never lowers it.

Method
------
:class:`SuspicionFusion` is a logistic regression on three inputs,

    z = [rule_score / 100, logit(lgbm_probability), anomaly_score]
    suspicion_score = 100 * sigmoid(intercept_ + coef_ . z)

fitted on the validation period (a period none of the components was fitted on) with an L2
penalty and **non-negative weights** (L-BFGS-B with bounds), which is what makes the score
monotone in every component. A component may also be given a **floor**: a least effect on the
log-odds per standard deviation of it (``min_log_odds_per_sd``). The labels are the bank's
reports, so a fit of them alone weighs only what predicts the typologies someone already
reported; the anomaly score is the one component that can rank a kind of laundering nobody
reported, and a floor keeps it in the score when the reports alone would set it to 0 (a
constrained, informative prior on one weight, in the spirit of the hybrid supervised and
unsupervised detectors of Carcillo et al. 2021, "Combining unsupervised and supervised learning
in credit card fraud detection", Information Sciences 557). Being a logistic fit of the labels, it
is Platt-calibrated by construction: on data like the validation period, a score ``s`` reads as a probability of
``s`` % that the transaction gets a suspicious report. (Reports are incomplete, so it is a
probability of being *reported*, a lower bound on being laundering.)

:func:`choose_thresholds` then picks two cut-offs on the validation scores: one that alerts a
target share of transactions (the desk's capacity, default 1 %) and one that reaches a target
precision against the validation labels (the lowest score at which it is met).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from numbers import Real
from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval

__all__ = ["COMPONENTS", "AlertThresholds", "SuspicionFusion", "choose_thresholds", "component_matrix"]

#: The fused components, in the order of ``coef_``.
COMPONENTS: tuple[str, ...] = ("rule_score", "lgbm_probability", "anomaly_score")
_P_CLIP = 1e-7


def component_matrix(rule_score: Any, lgbm_probability: Any, anomaly_score: Any) -> np.ndarray:
    """The fusion's inputs ``[rule_score / 100, logit(p), anomaly_score]`` as an (n, 3) array."""
    r = np.asarray(rule_score, dtype=np.float64).reshape(-1) / 100.0
    p = np.clip(np.asarray(lgbm_probability, dtype=np.float64).reshape(-1), _P_CLIP, 1.0 - _P_CLIP)
    a = np.asarray(anomaly_score, dtype=np.float64).reshape(-1)
    return np.column_stack([r, np.log(p) - np.log1p(-p), a])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|


class SuspicionFusion(BaseEstimator):
    """Monotone logistic fusion of rule score, LightGBM probability and anomaly score.

    Parameters
    ----------
    C : float > 0, default=1.0
        Inverse strength of the L2 penalty on the weights (the intercept is not penalised).
    nonnegative : bool, default=True
        Constrain the weights to be >= 0 (monotone in each component). Leave it on.
    min_log_odds_per_sd : sequence of 3 floats >= 0, or None, default=None
        Per component (in :data:`COMPONENTS` order), the least amount one standard deviation of it
        (over the weighted fitting rows) moves the log-odds: a lower bound on its standardised weight.
        None: no floor (0 for all).

    Attributes
    ----------
    coef_ : ndarray of shape (3,)
        Weights of ``[rule_score / 100, logit(p), anomaly_score]``, all >= 0.
    intercept_ : float
    n_samples_fit_ : int
    base_rate_ : float
        Weighted share of positives in the fitting data.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> r, p, a = rng.uniform(0, 100, 500), rng.uniform(0, 1, 500), rng.uniform(0.3, 0.8, 500)
    >>> y = (p + rng.normal(0, 0.2, 500) > 0.9).astype(int)
    >>> fusion = SuspicionFusion().fit(r, p, a, y)
    >>> s = fusion.score(r, p, a)
    >>> bool(((s >= 0) & (s <= 100)).all())
    True
    """

    _parameter_constraints: dict = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "nonnegative": ["boolean"],
        "min_log_odds_per_sd": ["array-like", None],
    }

    def __init__(self, C: float = 1.0, nonnegative: bool = True, min_log_odds_per_sd: Any = None) -> None:
        self.C = C
        self.nonnegative = nonnegative
        self.min_log_odds_per_sd = min_log_odds_per_sd

    def _floors(self) -> np.ndarray:
        """The per-component floors as an array of 3 (zeros without any), checked."""
        if self.min_log_odds_per_sd is None:
            return np.zeros(len(COMPONENTS))
        floors = np.asarray(self.min_log_odds_per_sd, dtype=np.float64).reshape(-1)
        if len(floors) != len(COMPONENTS) or not np.all(np.isfinite(floors)) or np.any(floors < 0):
            raise ValueError(f"The 'min_log_odds_per_sd' parameter must be {len(COMPONENTS)} finite numbers >= 0 "
                             f"(one per component: {', '.join(COMPONENTS)}). Got {self.min_log_odds_per_sd!r} instead.")
        return floors

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, rule_score: Any, lgbm_probability: Any, anomaly_score: Any, y: Any,
            sample_weight: Any = None) -> "SuspicionFusion":
        """Fit the weights on labelled rows (the validation period).

        Parameters
        ----------
        rule_score : array-like of shape (n,), 0..100
        lgbm_probability : array-like of shape (n,), 0..1
        anomaly_score : array-like of shape (n,), 0..1
        y : array-like of shape (n,)
            1 = suspicious, 0 = not.
        sample_weight : array-like of shape (n,), optional
            0 drops a row (e.g. an uncertain label).

        Returns
        -------
        self
        """
        floors = self._floors()
        Z = component_matrix(rule_score, lgbm_probability, anomaly_score)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if not (len(Z) == len(y) == len(w)):
            raise ValueError("rule_score, lgbm_probability, anomaly_score, y and sample_weight must have the same length.")
        keep = w > 0
        Z, y, w = Z[keep], y[keep], w[keep]
        if len(np.unique(y)) < 2:
            raise ValueError("y must hold both classes (0 and 1) among rows with positive weight to fit the fusion.")
        # Standardise the inputs for the optimiser; the penalty is on the standardised weights.
        mu = np.average(Z, axis=0, weights=w)
        sd = np.sqrt(np.average((Z - mu) ** 2, axis=0, weights=w))
        constant = sd == 0
        sd[constant] = 1.0
        X = (Z - mu) / sd
        wsum = w.sum()
        lam = 1.0 / (self.C * wsum)
        base = float(np.average(y, weights=w))

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            b, beta = theta[0], theta[1:]
            m = b + X @ beta
            # log(1 + e^m) - y m, stably
            ll = np.logaddexp(0.0, m) - y * m
            value = float(np.dot(w, ll)) / wsum + 0.5 * lam * float(beta @ beta)
            r = (_sigmoid(m) - y) * w / wsum
            grad = np.concatenate([[r.sum()], X.T @ r + lam * beta])
            return value, grad

        # a floor binds only on a component that varies: a constant one carries nothing to weigh
        lower = [float(f) if f > 0 and not c else (0.0 if self.nonnegative else None) for f, c in zip(floors, constant)]
        theta0 = np.zeros(4)
        theta0[0] = math.log(base / (1.0 - base))
        theta0[1:] = [lo or 0.0 for lo in lower]
        bounds = [(None, None)] + [(lo, None) for lo in lower]
        res = minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": 1000, "gtol": 1e-10, "ftol": 1e-14})
        beta = res.x[1:] / sd
        self.coef_ = np.maximum(beta, 0.0) if self.nonnegative else beta
        self.intercept_ = float(res.x[0] - np.dot(res.x[1:], mu / sd))
        self.n_samples_fit_ = int(len(y))
        self.base_rate_ = base
        self.converged_ = bool(res.success)
        self.at_floor_ = np.array([f > 0 and not c and res.x[1 + j] <= f * (1 + 1e-9)
                                   for j, (f, c) in enumerate(zip(floors, constant))])
        return self

    def decision_function(self, rule_score: Any, lgbm_probability: Any, anomaly_score: Any) -> np.ndarray:
        """The fused log-odds; **the higher, the more suspicious**."""
        Z = component_matrix(rule_score, lgbm_probability, anomaly_score)
        return self.intercept_ + Z @ self.coef_

    def score(self, rule_score: Any, lgbm_probability: Any, anomaly_score: Any) -> np.ndarray:  # type: ignore[override]
        """Suspicion score in [0, 100]: ``100 * sigmoid(decision_function)``; **the higher, the more suspicious**."""
        return 100.0 * _sigmoid(self.decision_function(rule_score, lgbm_probability, anomaly_score))

    def score_one(self, rule_score: float, lgbm_probability: float, anomaly_score: float) -> tuple[float, list[float]]:
        """One row without numpy overhead: ``(score, per-component terms of the log-odds)``."""
        p = min(max(float(lgbm_probability), _P_CLIP), 1.0 - _P_CLIP)
        terms = [self._c0 * rule_score / 100.0, self._c1 * (math.log(p) - math.log1p(-p)), self._c2 * anomaly_score]
        m = self.intercept_ + terms[0] + terms[1] + terms[2]
        return 100.0 * (0.5 * (1.0 + math.tanh(0.5 * m))), terms

    @property
    def _c0(self) -> float:
        return float(self.coef_[0])

    @property
    def _c1(self) -> float:
        return float(self.coef_[1])

    @property
    def _c2(self) -> float:
        return float(self.coef_[2])

    def to_dict(self) -> dict:
        params = self.get_params()
        if params["min_log_odds_per_sd"] is not None:
            params["min_log_odds_per_sd"] = [float(f) for f in self._floors()]
        return {"params": params, "components": list(COMPONENTS), "coef": [float(c) for c in self.coef_],
                "intercept": self.intercept_, "n_samples_fit": self.n_samples_fit_, "base_rate": self.base_rate_,
                "converged": getattr(self, "converged_", True),
                "at_floor": [bool(b) for b in getattr(self, "at_floor_", np.zeros(len(COMPONENTS), bool))]}

    @classmethod
    def from_dict(cls, spec: dict) -> "SuspicionFusion":
        if list(spec.get("components", COMPONENTS)) != list(COMPONENTS):
            raise ValueError(f"fusion components must be {list(COMPONENTS)}. Got {spec.get('components')!r} instead.")
        f = cls(**spec["params"])
        f.coef_ = np.asarray(spec["coef"], dtype=np.float64)
        f.intercept_ = float(spec["intercept"])
        f.n_samples_fit_ = int(spec["n_samples_fit"])
        f.base_rate_ = float(spec["base_rate"])
        f.converged_ = bool(spec.get("converged", True))
        f.at_floor_ = np.asarray(spec.get("at_floor", [False] * len(COMPONENTS)), dtype=bool)
        return f


@dataclass(frozen=True)
class AlertThresholds:
    """Cut-offs on the 0..100 suspicion score (an alert when ``score >= threshold``).

    Attributes
    ----------
    alert_threshold : float
        The one in force (chosen by ``policy``).
    policy : {"alert_rate", "precision"}
    rate_threshold : float
        Alerts ``target_alert_rate`` of the validation transactions.
    target_alert_rate : float
    precision_threshold : float
        Lowest score at which validation precision reaches ``target_precision`` (or, if it never
        does, the score of best precision among cut-offs alerting at least ``min_alerts`` rows).
    target_precision : float
    precision_met : bool
        Whether ``target_precision`` was reached on validation.
    validation_precision_at_rate, validation_recall_at_rate : float
        Precision and recall (against validation reports) at ``rate_threshold``.
    validation_alert_rate_at_precision : float
        Share of validation rows at or above ``precision_threshold``.
    """

    alert_threshold: float
    policy: str
    rate_threshold: float
    target_alert_rate: float
    precision_threshold: float
    target_precision: float
    precision_met: bool
    validation_precision_at_rate: float
    validation_recall_at_rate: float
    validation_alert_rate_at_precision: float

    def to_dict(self) -> dict:
        return asdict(self)


def choose_thresholds(scores: Any, y: Any, *, target_alert_rate: float = 0.01, target_precision: float = 0.5,
                      policy: str = "alert_rate", sample_weight: Any = None, min_alerts: int = 10) -> AlertThresholds:
    """Choose alert thresholds on validation scores.

    Parameters
    ----------
    scores : array-like
        Suspicion scores (0..100) of the validation period.
    y : array-like
        1 = suspicious report, 0 otherwise.
    target_alert_rate : float in (0, 1), default=0.01
    target_precision : float in (0, 1], default=0.5
    policy : {"alert_rate", "precision"}, default="alert_rate"
        Which threshold raises alerts.
    sample_weight : array-like, optional
        0 excludes a row from the precision count (an uncertain label); every row counts for the rate.
    min_alerts : int, default=10
        The precision threshold must alert at least this many validation rows (precision on a
        handful of rows means nothing).

    Returns
    -------
    AlertThresholds
    """
    if not 0 < target_alert_rate < 1:
        raise ValueError(f"The 'target_alert_rate' parameter must be in (0, 1). Got {target_alert_rate!r} instead.")
    if not 0 < target_precision <= 1:
        raise ValueError(f"The 'target_precision' parameter must be in (0, 1]. Got {target_precision!r} instead.")
    if policy not in ("alert_rate", "precision"):
        raise ValueError(f"The 'policy' parameter must be 'alert_rate' or 'precision'. Got {policy!r} instead.")
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    yv = np.asarray(y, dtype=np.float64).reshape(-1)
    w = np.ones(len(s)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    n = len(s)
    if n == 0:
        raise ValueError("no validation scores to choose thresholds on")
    order = np.argsort(-s, kind="stable")
    ss = s[order]
    k = max(1, int(math.ceil(target_alert_rate * n)))
    rate_threshold = float(ss[k - 1])
    counted = (w[order] > 0).astype(np.float64)
    tp = np.cumsum(yv[order] * counted)
    cnt = np.cumsum(counted)
    positives = max(tp[-1], 1.0)
    # cut-offs only where the score changes (ties alert together)
    last_of_tie = np.r_[ss[1:] != ss[:-1], True]
    idx = np.flatnonzero(last_of_tie & (np.arange(n) + 1 >= min(min_alerts, n)))
    prec = np.divide(tp[idx], cnt[idx], out=np.zeros(len(idx)), where=cnt[idx] > 0)
    ok = idx[prec >= target_precision]
    if len(ok):
        j = int(ok.max())  # lowest score that still meets the target
        met = True
    else:
        j = int(idx[np.argmax(prec)]) if len(idx) else n - 1
        met = False
    precision_threshold = float(ss[j])
    at_rate = s >= rate_threshold
    tp_rate = float((yv * (w > 0))[at_rate].sum())
    cnt_rate = float((w > 0)[at_rate].sum())
    return AlertThresholds(
        alert_threshold=rate_threshold if policy == "alert_rate" else precision_threshold,
        policy=policy,
        rate_threshold=rate_threshold,
        target_alert_rate=float(target_alert_rate),
        precision_threshold=precision_threshold,
        target_precision=float(target_precision),
        precision_met=met,
        validation_precision_at_rate=tp_rate / cnt_rate if cnt_rate else 0.0,
        validation_recall_at_rate=tp_rate / positives,
        validation_alert_rate_at_precision=float((s >= precision_threshold).mean()),
    )
