"""Behavioural anomaly score: an IsolationForest over scale-free behavioural features.

:class:`BehaviourAnomalyDetector` wraps :class:`sklearn.ensemble.IsolationForest` the scikit-learn
way (``_parameter_constraints``, ``fit`` returns ``self``, learned state ends in ``_``) and adds
two things the service needs:

* a **compiled scorer** (:class:`CompiledIsolationForest`): the fitted trees' arrays evaluated
  by a numba kernel. It gives the same numbers as ``IsolationForest.score_samples`` (a test pins
  the difference below 1e-12) but scores one row in microseconds instead of ~12 ms;
* an **attribution** of the anomaly score to features, from the same traversal (method below).

Score direction
---------------
:meth:`BehaviourAnomalyDetector.anomaly_score` is ``2 ** (-E[h(x)] / c(psi))`` (Liu, Ting and
Zhou, 2008): in (0, 1], **the higher, the more anomalous**; about 0.5 and below is ordinary.
:meth:`~BehaviourAnomalyDetector.score_samples` keeps scikit-learn's convention (its opposite:
the lower, the more abnormal), :meth:`~BehaviourAnomalyDetector.decision_function` shifts it by
``offset_`` and :meth:`~BehaviourAnomalyDetector.predict` gives -1 for outliers, +1 for inliers.

Input transform
---------------
The detector reads only :data:`BEHAVIOUR_FEATURES` (shares, ratios, counts of shared identifiers,
velocity counts: what a customer *does*, not how rich it is) out of a full feature matrix in
:data:`amlscore.features.catalogue.FEATURE_NAMES` order, maps each value ``v`` to ``sign(v) * log(1 + |v|)``
(heavy tails compressed; order kept) and an undefined value (NaN) to 0.

Attribution method
------------------
In each tree the row follows one root-to-leaf path. Every split on it keeps only part of the
node's training sample: a split on feature ``j`` that sends the row from a node of ``n`` training
rows to a child of ``m`` rows is credited ``log2(n / m)`` (how many halvings of the sample it
achieved). Along a path the credits telescope to ``log2(psi / n_leaf)``: the whole isolation,
shared among the features that did it. A split that cuts an outlying value away from almost all the
sample earns many bits; an ordinary split about one. Credits are summed over trees and normalised
to sum to 1: ``share_j`` is the part of the isolation due to feature ``j``.
"""

from __future__ import annotations

import json
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numba import njit
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context
from sklearn.ensemble import IsolationForest
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from amlscore.features.catalogue import FEATURE_NAMES

__all__ = [
    "BEHAVIOUR_FEATURES",
    "BehaviourAnomalyDetector",
    "CompiledIsolationForest",
    "average_path_length",
]

#: Scale-free behavioural features the anomaly detector reads (a subset of FEATURE_NAMES).
BEHAVIOUR_FEATURES: tuple[str, ...] = (
    "log_amount", "amount_vs_own_mean_90d", "amount_z_own_90d", "days_since_prev_txn", "out_within_24h_of_in",
    "cash_share_30d", "round_amount_share_30d", "near_threshold_cash_cnt_7d", "night_share_30d",
    "share_online_banking_30d", "share_mobile_banking_30d", "share_phone_banking_30d", "share_pos_30d",
    "share_atm_30d", "share_counter_30d", "passthrough_ratio_24h", "passthrough_ratio_7d",
    "residual_balance_ratio_7d", "in_share_30d", "fan_in_7d", "fan_out_7d", "new_cp_cnt_7d",
    "corp_indiv_cnt_30d", "cross_border_share_30d", "high_risk_cnt_30d", "ip_abroad_cnt_7d",
    "ip_outside_region_cnt_7d", "ip_customers_7d", "device_customers_7d", "operator_customers_30d",
    "agent_other_customers", "phone_other_customers", "emergency_phone_other_customers",
    "peer_cash_ratio_30d", "peer_txn_freq_ratio_30d", "flow_vs_income_90d", "in_vs_income_30d",
)
_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}


def average_path_length(n: np.ndarray | Sequence[float] | float) -> np.ndarray:
    """``c(n)``: average path length of an unsuccessful search in a binary search tree of ``n`` items.

    The same formula as scikit-learn's private ``_average_path_length``: 0 for n <= 1, 1 for n = 2,
    else ``2 (ln(n - 1) + gamma) - 2 (n - 1) / n``.
    """
    n = np.asarray(n, dtype=np.float64)
    shape = n.shape
    n = n.reshape((1, -1))
    out = np.zeros(n.shape)
    mask_1 = n <= 1
    mask_2 = n == 2
    rest = ~np.logical_or(mask_1, mask_2)
    out[mask_2] = 1.0
    out[rest] = 2.0 * (np.log(n[rest] - 1.0) + np.euler_gamma) - 2.0 * (n[rest] - 1.0) / n[rest]
    return out.reshape(shape)


# ------------------------------------------------------------------------------------------------
# Compiled kernels
# ------------------------------------------------------------------------------------------------


@njit(cache=True)
def _forest_depths(X, left, right, feature, threshold, missing_left, leaf_term, roots):  # pragma: no cover - compiled
    """Per row: sum over trees (in tree order) of the leaf's ``depth + c(n_leaf) - 1``."""
    n = X.shape[0]
    out = np.zeros(n, dtype=np.float64)
    for i in range(n):
        d = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] != -1:
                v = X[i, feature[node]]
                if v != v:
                    node = left[node] if missing_left[node] else right[node]
                elif v <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            d += leaf_term[node]
        out[i] = d
    return out


@njit(cache=True)
def _forest_attribution(x, left, right, feature, threshold, missing_left, n_samples, roots,
                        n_features):  # pragma: no cover - compiled
    """Credit per input column for isolating one row (see the module docstring), unnormalised."""
    credit = np.zeros(n_features, dtype=np.float64)
    for t in range(roots.shape[0]):
        node = roots[t]
        while left[node] != -1:
            v = x[feature[node]]
            if v != v:
                child = left[node] if missing_left[node] else right[node]
            elif v <= threshold[node]:
                child = left[node]
            else:
                child = right[node]
            credit[feature[node]] += np.log2(n_samples[node] / n_samples[child])
            node = child
    return credit


class CompiledIsolationForest:
    """A fitted IsolationForest's trees as flat arrays, scored by a numba kernel.

    Parameters
    ----------
    left, right : ndarray of int64
        Absolute child indices into the flat node arrays; -1 at a leaf.
    feature : ndarray of int64
        Input column tested at each split node (already mapped through ``estimators_features_``).
    threshold : ndarray of float64
        Split thresholds (a value ``<=`` threshold goes left).
    missing_left : ndarray of uint8
        Where a missing (NaN) value goes at each split.
    leaf_term : ndarray of float64
        ``depth + c(n_node_samples) - 1`` at each node (used at leaves), computed as scikit-learn does.
    n_samples : ndarray of float64
        Training rows that reached each node (for the attribution).
    roots : ndarray of int64
        Index of each tree's root.
    max_samples : int
        ``max_samples_`` of the forest (``psi``).
    n_features : int
        Width of the input the trees were fitted on.
    """

    ARRAYS = ("left", "right", "feature", "threshold", "missing_left", "leaf_term", "n_samples", "roots")

    def __init__(self, left: np.ndarray, right: np.ndarray, feature: np.ndarray, threshold: np.ndarray,
                 missing_left: np.ndarray, leaf_term: np.ndarray, n_samples: np.ndarray, roots: np.ndarray,
                 max_samples: int, n_features: int) -> None:
        self.left = np.ascontiguousarray(left, dtype=np.int64)
        self.right = np.ascontiguousarray(right, dtype=np.int64)
        self.feature = np.ascontiguousarray(feature, dtype=np.int64)
        self.threshold = np.ascontiguousarray(threshold, dtype=np.float64)
        self.missing_left = np.ascontiguousarray(missing_left, dtype=np.uint8)
        self.leaf_term = np.ascontiguousarray(leaf_term, dtype=np.float64)
        self.n_samples = np.ascontiguousarray(n_samples, dtype=np.float64)
        self.roots = np.ascontiguousarray(roots, dtype=np.int64)
        self.max_samples = int(max_samples)
        self.n_features = int(n_features)
        self.c_psi = float(average_path_length([self.max_samples])[0])
        self.denominator = float(len(self.roots)) * self.c_psi

    @classmethod
    def from_sklearn(cls, forest: IsolationForest) -> "CompiledIsolationForest":
        """Extract the arrays of a fitted :class:`~sklearn.ensemble.IsolationForest`."""
        check_is_fitted(forest)
        n_in = int(forest.n_features_in_)
        subsample = forest._max_features != n_in  # what scikit-learn checks before indexing columns
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("left", "right", "feature", "threshold", "missing", "term",
                                                               "n")}
        roots = []
        offset = 0
        for tree, features in zip(forest.estimators_, forest.estimators_features_):
            t = tree.tree_
            n_nodes = t.node_count
            roots.append(offset)
            left = t.children_left.astype(np.int64)
            right = t.children_right.astype(np.int64)
            leaf = left == -1
            parts["left"].append(np.where(leaf, -1, left + offset))
            parts["right"].append(np.where(leaf, -1, right + offset))
            feat = t.feature.astype(np.int64)
            if subsample:
                feat = np.where(leaf, 0, np.asarray(features, dtype=np.int64)[np.maximum(feat, 0)])
            parts["feature"].append(np.where(leaf, 0, feat))
            parts["threshold"].append(t.threshold.astype(np.float64))
            missing = getattr(t, "missing_go_to_left", None)
            parts["missing"].append(np.zeros(n_nodes, np.uint8) if missing is None else np.asarray(missing, np.uint8))
            # exactly as scikit-learn: depths += (decision_path_length + average_path_length) - 1.0
            parts["term"].append(t.compute_node_depths() + average_path_length(t.n_node_samples) - 1.0)
            parts["n"].append(t.n_node_samples.astype(np.float64))
            offset += n_nodes
        cat = {k: np.concatenate(v) for k, v in parts.items()}
        return cls(cat["left"], cat["right"], cat["feature"], cat["threshold"], cat["missing"], cat["term"], cat["n"],
                   np.asarray(roots, np.int64), int(forest.max_samples_), n_in)

    def _args(self) -> tuple:
        return (self.left, self.right, self.feature, self.threshold, self.missing_left, self.leaf_term, self.roots)

    def _attr_args(self) -> tuple:
        return (self.left, self.right, self.feature, self.threshold, self.missing_left, self.n_samples, self.roots)

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X must be a 2-D array with {self.n_features} columns. Got shape {X.shape} instead.")
        # scikit-learn scores float32 input; the thresholds were learned on float32 values.
        return np.ascontiguousarray(X, dtype=np.float32)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """The same as ``IsolationForest.score_samples``: ``-2 ** (-E[h(x)] / c(psi))``, the lower the more abnormal."""
        return -self.anomaly_score(X)

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        """``2 ** (-E[h(x)] / c(psi))`` in (0, 1]: the higher, the more anomalous."""
        depths = _forest_depths(self._check(X), *self._args())
        if self.denominator == 0:
            return np.ones_like(depths)
        return 2.0 ** (-(depths / self.denominator))

    def attribution(self, x: np.ndarray) -> np.ndarray:
        """Share of the isolation of one row due to each input column (sums to 1; see module docstring)."""
        row = self._check(np.asarray(x).reshape(1, -1))[0]
        credit = _forest_attribution(row.astype(np.float64), *self._attr_args(), self.n_features)
        total = credit.sum()
        return credit / total if total > 0 else credit

    def to_npz(self, path: str | Path) -> None:
        """Write the arrays (no pickle) to ``path`` (.npz)."""
        np.savez(path, **{k: getattr(self, k) for k in self.ARRAYS},
                 meta=np.array([self.max_samples, self.n_features], dtype=np.int64))

    @classmethod
    def from_npz(cls, path: str | Path) -> "CompiledIsolationForest":
        with np.load(path, allow_pickle=False) as z:
            meta = z["meta"]
            return cls(*(z[k] for k in cls.ARRAYS), max_samples=int(meta[0]), n_features=int(meta[1]))


# ------------------------------------------------------------------------------------------------
# The estimator
# ------------------------------------------------------------------------------------------------


def transform_behaviour(X: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The detector's input: the chosen columns, ``sign(v) * log1p(|v|)``, NaN -> 0."""
    Z = np.asarray(X, dtype=np.float64)[:, columns]
    Z = np.sign(Z) * np.log1p(np.abs(Z))
    return np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0)


class BehaviourAnomalyDetector(OutlierMixin, BaseEstimator):
    """IsolationForest on behavioural features, fitted on presumed-normal history.

    Parameters
    ----------
    features : tuple of str or None, default=None
        Names of the features to read, a subset of :data:`amlscore.features.catalogue.FEATURE_NAMES`;
        None means :data:`BEHAVIOUR_FEATURES`.
    n_estimators : int, default=200
        Number of isolation trees.
    max_samples : int, default=256
        Rows drawn to grow each tree (``psi``).
    contamination : "auto" or float in (0, 0.5], default="auto"
        Only sets ``offset_`` (for :meth:`predict`); the anomaly score does not depend on it.
    random_state : int, RandomState instance or None, default=None
        Seed of the tree growing; pass an int for reproducible fits.

    Attributes
    ----------
    iforest_ : IsolationForest
        The fitted forest (None after :meth:`from_dir` until :meth:`load_reference` is called).
    compiled_ : CompiledIsolationForest
        The trees as arrays; every score comes from it.
    feature_names_ : tuple of str
        The features read, in order.
    feature_indices_ : ndarray of int
        Their positions in :data:`~features.catalogue.FEATURE_NAMES`.
    offset_ : float
        ``decision_function = score_samples - offset_``.
    n_features_in_ : int
        Width of the input matrix (``len(FEATURE_NAMES)``).

    Examples
    --------
    >>> import numpy as np
    >>> from amlscore.features.catalogue import FEATURE_NAMES
    >>> X = np.random.default_rng(0).normal(size=(500, len(FEATURE_NAMES)))
    >>> det = BehaviourAnomalyDetector(n_estimators=20, random_state=0).fit(X)
    >>> s = det.anomaly_score(X[:3])
    >>> bool(((s > 0) & (s <= 1)).all())
    True
    """

    #: What the model set's manifest records as the detector's kind (amlscore.models.model_set reads it back).
    KIND = "bank"

    _parameter_constraints: dict = {
        "features": [tuple, list, None],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_samples": [Interval(Integral, 2, None, closed="left")],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "random_state": ["random_state"],
    }

    def __init__(self, features: Sequence[str] | None = None, n_estimators: int = 200, max_samples: int = 256,
                 contamination: str | float = "auto", random_state: Any = None) -> None:
        self.features = features
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination = contamination
        self.random_state = random_state

    def _columns(self) -> tuple[tuple[str, ...], np.ndarray]:
        names = tuple(self.features) if self.features is not None else BEHAVIOUR_FEATURES
        unknown = [n for n in names if n not in _INDEX]
        if unknown or not names:
            raise ValueError(f"The 'features' parameter of {type(self).__name__} must name features of the catalogue. "
                             f"Got {unknown or list(names)!r} instead.")
        return names, np.array([_INDEX[n] for n in names], dtype=np.int64)

    def _validate_X(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"X must be a 2-D array with {len(FEATURE_NAMES)} columns in FEATURE_NAMES order. "
                             f"Got shape {X.shape} instead.")
        return X

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None, sample_weight: np.ndarray | None = None) -> "BehaviourAnomalyDetector":
        """Fit the forest on rows presumed normal.

        Parameters
        ----------
        X : array-like of shape (n_samples, len(FEATURE_NAMES))
            Feature rows in catalogue order.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        X = self._validate_X(X)
        names, columns = self._columns()
        self.feature_names_ = names
        self.feature_indices_ = columns
        Z = self._fit_input(X, sample_weight)
        forest = IsolationForest(n_estimators=self.n_estimators, max_samples=min(self.max_samples, len(Z)),
                                 contamination=self.contamination, random_state=self.random_state, n_jobs=1)
        forest.fit(Z, sample_weight=sample_weight)
        self.iforest_ = forest
        self.compiled_ = CompiledIsolationForest.from_sklearn(forest)
        self.offset_ = float(forest.offset_)
        self.n_features_in_ = X.shape[1]
        return self

    def _fit_input(self, X: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
        """The forest's training input from the fit rows (a subclass may learn its transform here first)."""
        return self._input(X)

    def _input(self, X: np.ndarray) -> np.ndarray:
        """The forest's input for feature rows: :func:`transform_behaviour` of the chosen columns. Every
        scoring path (batch, one row, attribution) goes through here, so they cannot disagree."""
        return transform_behaviour(X, self.feature_indices_)

    def anomaly_score(self, X: Any) -> np.ndarray:
        """Anomaly score in (0, 1]: **the higher, the more anomalous** (``-score_samples``)."""
        check_is_fitted(self, "compiled_")
        X = self._validate_X(X)
        Z, which = self._route(X)
        forests = self._forests()
        if len(forests) == 1:
            return forests[0].anomaly_score(Z)
        out = np.empty(len(Z), dtype=np.float64)
        for f in np.unique(which).tolist():
            rows = which == f
            out[rows] = forests[f].anomaly_score(Z[rows])
        return out

    def _route(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The forest input of feature rows and, per row, the index into :meth:`_forests` of the forest
        that scores it (here one forest for every row)."""
        return self._input(X), np.zeros(len(X), dtype=np.int64)

    def _forests(self) -> list[CompiledIsolationForest]:
        """The fitted forests :meth:`_route` points into."""
        return [self.compiled_]

    def score_samples(self, X: Any) -> np.ndarray:
        """scikit-learn's convention: the opposite of :meth:`anomaly_score`; **the lower, the more abnormal**."""
        return -self.anomaly_score(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers, positive for inliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """-1 for outliers, +1 for inliers (by ``offset_``)."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def attribution(self, x: np.ndarray) -> list[tuple[str, float, float]]:
        """One row's anomaly attribution: ``(feature, raw value, share)`` sorted by share, shares summing to 1."""
        check_is_fitted(self, "compiled_")
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        Z, which = self._route(x.reshape(1, -1))
        return self._attribution_list(x, self._forests()[int(which[0])].attribution(Z[0]))

    def score_and_attribution(self, x: np.ndarray) -> tuple[float, list[tuple[str, float, float]]]:
        """One row's anomaly score and attribution in one pass (the row transformed once).

        The same numbers as ``anomaly_score(x[None, :])[0]`` and ``attribution(x)``.
        """
        check_is_fitted(self, "compiled_")
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if x.shape[0] != len(FEATURE_NAMES):
            raise ValueError(f"x must be one row of {len(FEATURE_NAMES)} features in FEATURE_NAMES order. "
                             f"Got shape {x.shape} instead.")
        Z, which = self._route(x.reshape(1, -1))
        forest = self._forests()[int(which[0])]
        z = forest._check(Z)
        depths = _forest_depths(z, *forest._args())
        score = float(np.ones_like(depths)[0] if forest.denominator == 0 else (2.0 ** (-(depths / forest.denominator)))[0])
        credit = _forest_attribution(z[0].astype(np.float64), *forest._attr_args(), forest.n_features)
        total = credit.sum()
        shares = credit / total if total > 0 else credit
        return score, self._attribution_list(x, shares)

    def describe(self) -> str:
        """One sentence for the model card: what the scores are measured against."""
        check_is_fitted(self, "compiled_")
        return (f"an **IsolationForest** anomaly score on {len(self.feature_names_)} behavioural features, measured "
                "against the whole bank, fitted on presumed-normal history.")

    def _attribution_list(self, x: np.ndarray, shares: np.ndarray) -> list[tuple[str, float, float]]:
        """``(feature, raw value, share)`` of the features with a share, largest first (ties in feature order)."""
        order = np.argsort(-shares, kind="stable")
        keep = order[shares[order] > 0]
        names = self.feature_names_
        return list(zip([names[j] for j in keep.tolist()], x[self.feature_indices_[keep]].tolist(), shares[keep].tolist()))

    # -- persistence (used by amlscore.models.model_set) --------------------------------------------------
    def to_dir(self, folder: Path) -> dict:
        """Write ``iforest.npz`` (arrays used for scoring; no pickle) and ``iforest.joblib`` (the
        fitted scikit-learn object, for reference); return the JSON-able description."""
        import joblib  # noqa: PLC0415 - only when saving

        check_is_fitted(self, "compiled_")
        self.compiled_.to_npz(folder / "iforest.npz")
        if getattr(self, "iforest_", None) is not None:
            joblib.dump(self.iforest_, folder / "iforest.joblib")
        return {"kind": self.KIND, "params": _json_params(self.get_params()), "feature_names": list(self.feature_names_),
                "offset": self.offset_, "n_features_in": int(self.n_features_in_)}

    @classmethod
    def from_dir(cls, folder: Path, spec: dict) -> "BehaviourAnomalyDetector":
        """Rebuild a fitted detector from :meth:`to_dir` output (reads only the .npz arrays)."""
        det = cls(**spec["params"])
        names = tuple(spec["feature_names"])
        det.feature_names_ = names
        det.feature_indices_ = np.array([_INDEX[n] for n in names], dtype=np.int64)
        det.compiled_ = CompiledIsolationForest.from_npz(folder / "iforest.npz")
        det.offset_ = float(spec["offset"])
        det.n_features_in_ = int(spec["n_features_in"])
        det.iforest_ = None
        det._folder = folder
        return det

    def load_reference(self) -> IsolationForest:
        """The scikit-learn forest saved beside the arrays (joblib; only for audits and tests)."""
        if getattr(self, "iforest_", None) is None:
            import joblib  # noqa: PLC0415

            self.iforest_ = joblib.load(Path(self._folder) / "iforest.joblib")
        return self.iforest_


def _json_params(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        if isinstance(v, (np.integer,)):
            v = int(v)
        elif isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, np.random.RandomState):
            v = None
        out[k] = v
    json.dumps(out)
    return out
