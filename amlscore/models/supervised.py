"""Supervised suspicion model: a thin, typed, scikit-learn-style wrapper over LightGBM's core.

:class:`SuspicionClassifier` trains a binary LightGBM booster on labelled reports (``1`` =
suspicious), early-stopped on the validation set's PR-AUC (LightGBM's ``average_precision``
metric), and explains a prediction with LightGBM's TreeSHAP (``pred_contrib=True``; one row at a
time with its compiled equivalent, :mod:`amlscore.models.treeshap`), so the explanation comes from the very
trees that score.

Heavy class imbalance is handled in two places, both explicit: the caller may down-sample
presumed-normal rows (see :mod:`amlscore.training.train`), and ``scale_pos_weight`` weighs the positives.
Neither keeps :meth:`~SuspicionClassifier.predict_proba` calibrated to the population's base rate;
the fusion (:mod:`amlscore.models.fusion`) recalibrates on an untouched validation period.

Score direction: :meth:`~SuspicionClassifier.predict_proba` ``[:, 1]`` is in [0, 1]; **the higher,
the more suspicious**.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Union

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_random_state, validate_data

__all__ = ["NotFittedError", "SuspicionClassifier"]

if TYPE_CHECKING:
    from amlscore.models.treeshap import CompiledTreeShap

# Named input types, in the manner of lightgbm/sklearn.py.
_MatrixLike = Union[np.ndarray, pd.DataFrame]
_LabelLike = Union[np.ndarray, pd.Series, list]
_EvalSet = tuple  # (X_valid, y_valid) or (X_valid, y_valid, sample_weight)


class NotFittedError(_SklearnNotFittedError):
    """Raised when a fitted-only attribute or method is used before :meth:`fit` (a scikit-learn NotFittedError)."""


_doc_predict = """{what}

Parameters
----------
X : array-like of shape (n_samples, n_features)
    Rows in the column order used at fit (``feature_names_in_``).

Returns
-------
{returns}
"""


class SuspicionClassifier(ClassifierMixin, BaseEstimator):
    """LightGBM binary classifier of suspicious transactions.

    Parameters
    ----------
    n_estimators : int, default=600
        Maximum number of boosting rounds; early stopping usually ends sooner.
    learning_rate : float, default=0.05
    num_leaves : int, default=31
    min_child_samples : int, default=20
        Minimum rows in a leaf (a rare typology may have only a few dozen labelled rows).
    colsample_bytree : float in (0, 1], default=0.7
    subsample : float in (0, 1], default=0.8
        Row bagging fraction (bagging every round).
    reg_lambda : float >= 0, default=1.0
    max_bin : int, default=63
        Histogram bins per feature (fewer bins: faster, and enough for these features).
    scale_pos_weight : float > 0, default=1.0
        Weight of positive rows relative to negative ones.
    early_stopping_rounds : int, default=100
        Stop when the validation PR-AUC has not improved for this many rounds (needs ``eval_set``).
    min_rounds : int, default=50
        Never stop (nor choose a best iteration) before this many rounds: the first rounds'
        PR-AUC on a small, noisy validation set is not a reliable optimum.
    n_jobs : int, default=1
        Threads. 1 is the safe choice on a small shared machine (OpenMP threads spin when cores
        are busy); raise it on a dedicated one.
    random_state : int, RandomState instance or None, default=None
        Turned into a plain int before it reaches LightGBM, so a run replays.

    Attributes
    ----------
    booster_ : lightgbm.Booster
        The trained booster, cut at ``best_iteration_``.
    best_iteration_ : int
        Rounds kept (the best validation PR-AUC, or all rounds without ``eval_set``).
    best_score_ : float or None
        Validation PR-AUC at ``best_iteration_``.
    evals_result_ : dict
        Validation PR-AUC per round.
    classes_ : ndarray of shape (2,)
        The two labels seen at fit; ``classes_[1]`` (1 = suspicious) is the positive class.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names seen at fit (only when fitted on a DataFrame).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 3)); y = (X[:, 0] > 1.2).astype(int)
    >>> clf = SuspicionClassifier(n_estimators=20, min_child_samples=5, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, 1, closed="right")],
        "num_leaves": [Interval(Integral, 2, 131072, closed="both")],
        "min_child_samples": [Interval(Integral, 1, None, closed="left")],
        "colsample_bytree": [Interval(Real, 0, 1, closed="right")],
        "subsample": [Interval(Real, 0, 1, closed="right")],
        "reg_lambda": [Interval(Real, 0, None, closed="left")],
        "max_bin": [Interval(Integral, 2, None, closed="left")],
        "scale_pos_weight": [Interval(Real, 0, None, closed="neither")],
        "early_stopping_rounds": [Interval(Integral, 1, None, closed="left")],
        "min_rounds": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_estimators: int = 600, learning_rate: float = 0.05, num_leaves: int = 31,
                 min_child_samples: int = 20, colsample_bytree: float = 0.7, subsample: float = 0.8,
                 reg_lambda: float = 1.0, max_bin: int = 63, scale_pos_weight: float = 1.0,
                 early_stopping_rounds: int = 100, min_rounds: int = 50, n_jobs: int = 1,
                 random_state: Any = None) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.scale_pos_weight = scale_pos_weight
        self.early_stopping_rounds = early_stopping_rounds
        self.min_rounds = min_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- helpers ----------------------------------------------------------------------------------
    def _core_params(self) -> dict[str, Any]:
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1)) if not isinstance(
            self.random_state, (int, np.integer)) else int(self.random_state)
        return {
            "objective": "binary",
            "metric": "average_precision",
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "min_child_samples": int(self.min_child_samples),
            "feature_fraction": float(self.colsample_bytree),
            "bagging_fraction": float(self.subsample),
            "bagging_freq": 1 if self.subsample < 1 else 0,
            "lambda_l2": float(self.reg_lambda),
            "max_bin": int(self.max_bin),
            "scale_pos_weight": float(self.scale_pos_weight),
            "num_threads": int(self.n_jobs),
            "seed": seed,
            "deterministic": True,
            "force_col_wise": True,
            "verbose": -1,
        }

    def _check_fitted(self) -> lgb.Booster:
        booster = getattr(self, "booster_", None)
        if booster is None:
            raise NotFittedError("No booster found. Need to call fit beforehand.")
        return booster

    def _input(self, X: _MatrixLike) -> np.ndarray:
        """Validated float64 matrix (feature count and, for a DataFrame, names as at fit)."""
        self._check_fitted()
        return validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")

    # -- fit / predict ------------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: _MatrixLike, y: _LabelLike, sample_weight: np.ndarray | None = None,
            eval_set: _EvalSet | None = None) -> "SuspicionClassifier":
        """Train the booster; early-stop on ``eval_set``'s PR-AUC when given.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            1 = suspicious, 0 = not (confirmed or presumed).
        sample_weight : array-like of shape (n_samples,), optional
        eval_set : tuple (X_valid, y_valid[, sample_weight_valid]), optional
            The validation period. Weights let a down-sampled validation set stand for the whole.

        Returns
        -------
        self
        """
        arr, y_raw = validate_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan")
        check_classification_targets(y_raw)
        classes = np.unique(y_raw)
        if len(classes) != 2:
            raise ValueError(f"Only binary classification is supported. y must hold both classes of a binary target "
                             f"(e.g. 0 and 1). Got {len(classes)} class(es) instead: {classes.tolist()[:5]!r}.")
        y_arr = (y_raw == classes[1]).astype(np.float64)  # classes_[1] (1 = suspicious) is the positive class
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, arr, dtype=np.float64)
            if not np.any(sample_weight > 0):
                raise ValueError("sample_weight must have at least one positive weight. Got all zeros instead.")
        names = [str(n) for n in getattr(self, "feature_names_in_", [f"f{i}" for i in range(arr.shape[1])])]
        params = self._core_params()
        train = lgb.Dataset(arr, y_arr, weight=sample_weight, feature_name=_safe_names(names),
                            params={"max_bin": params["max_bin"], "verbose": -1}, free_raw_data=True)
        valid_sets, callbacks, record = [], [], {}
        if eval_set is not None:
            Xv, yv = eval_set[0], eval_set[1]
            wv = eval_set[2] if len(eval_set) > 2 else None
            arr_v = validate_data(self, Xv, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
            yv01 = (np.asarray(yv) == classes[1]).astype(np.float64)
            valid_sets = [lgb.Dataset(arr_v, yv01, weight=wv, reference=train)]
            callbacks = [lgb.record_evaluation(record), _EarlyStopping(self.early_stopping_rounds, self.min_rounds)]
        booster = lgb.train(params, train, num_boost_round=int(self.n_estimators), valid_sets=valid_sets,
                            valid_names=["valid"] if valid_sets else None, callbacks=callbacks)
        curve = record.get("valid", {}).get("average_precision", [])
        if eval_set is not None and booster.best_iteration > 0:
            best = booster.best_iteration
        elif curve:  # LightGBM ended by itself (no split left) before the early-stopping rule could decide
            best = int(np.argmax(curve)) + 1
        else:
            best = booster.current_iteration()
        best = max(1, min(best, booster.current_iteration(), len(curve) if curve else best))
        # Keep only the chosen trees: the text model then scores without a num_iteration argument.
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        self.best_iteration_ = int(best)
        self.best_score_ = float(curve[best - 1]) if curve else None
        self.evals_result_ = {"valid_average_precision": [float(v) for v in curve]}
        self.classes_ = classes
        return self

    def predict_proba(self, X: _MatrixLike) -> np.ndarray:
        arr = self._input(X)
        p = self.booster_.predict(arr, num_threads=int(self.n_jobs))
        return np.column_stack([1.0 - p, p])

    predict_proba.__doc__ = _doc_predict.format(
        what="Probability of each class; column 1 is suspicious (**the higher, the more suspicious**).",
        returns="proba : ndarray of shape (n_samples, 2)")

    def predict(self, X: _MatrixLike) -> np.ndarray:
        positive = self.predict_proba(X)[:, 1] >= 0.5
        return self.classes_[positive.astype(int)]

    predict.__doc__ = _doc_predict.format(what="Class label at probability 0.5 (1 = suspicious).",
                                          returns="labels : ndarray of shape (n_samples,)")

    def contributions(self, X: _MatrixLike) -> np.ndarray:
        arr = self._input(X)
        return self.booster_.predict(arr, pred_contrib=True, num_threads=int(self.n_jobs))

    contributions.__doc__ = _doc_predict.format(
        what="TreeSHAP contributions to the log-odds (LightGBM ``pred_contrib=True``); the last column is the "
             "expected value, and each row sums to the raw log-odds score.",
        returns="contrib : ndarray of shape (n_samples, n_features + 1)")

    def predict_one(self, x: np.ndarray) -> np.ndarray:
        """Probability of suspicion of rows given as a float64 array, skipping DataFrame checks (online path).

        One row goes through LightGBM's single-row C API (:class:`_SingleRowPredictor`, ~10 us instead of
        ~50-200 us for ``Booster.predict``, same numbers to the last bit); several rows through
        ``Booster.predict`` on one thread. Returns an array of shape (n_rows,).
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 2 and x.shape[0] == 1:
            fast = self._single_row()
            if fast is not None:
                return np.array([fast.predict(x[0])])
        return self.booster_.predict(x, num_threads=1)

    def contributions_one(self, x: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions of one row (float64, shape (n_features,) or (1, n_features)), skipping checks.

        The numbers of ``contributions(x)[0]`` (LightGBM ``pred_contrib=True``): shape (n_features + 1,),
        the last entry the expected value. Computed by the compiled path-based TreeSHAP of
        :mod:`amlscore.models.treeshap` when it supports the model (numerical splits, one output): about a
        sixth of the CPU of LightGBM's recursion, LightGBM's values to rounding (~1e-14; the
        summation order differs) and its expected value to the last bit. Otherwise LightGBM computes
        them, through its single-row C API (:class:`_SingleRowPredictor`) or ``Booster.predict``.
        """
        row = np.asarray(x, dtype=np.float64).reshape(-1)
        compiled = self._compiled_treeshap()
        if compiled is not None:
            return compiled.contributions(row)
        fast = self._single_row()
        if fast is not None:
            return fast.contributions(row)
        return self.booster_.predict(row.reshape(1, -1), pred_contrib=True, num_threads=1)[0]

    def _compiled_treeshap(self) -> "CompiledTreeShap | None":
        """The compiled TreeSHAP of the current booster, built on first use (None if the model is not supported).

        Built from the same trees as the single-row predictor and ``Booster.predict``: every tree of
        the booster (``fit`` keeps only the best iteration's trees, and so does the saved text).
        Building takes ~0.1 s for 130 trees and loading the numba kernel's disk cache ~0.3 s, both on
        the first call: a warm-up explanation pays them, not the first request.
        """
        booster = self._check_fitted()
        cached = self.__dict__.get("_compiled_treeshap_for")
        if cached is None or cached[0] is not booster:
            from amlscore.models.treeshap import CompiledTreeShap

            cached = (booster, CompiledTreeShap.build(booster))
            self.__dict__["_compiled_treeshap_for"] = cached
        return cached[1]

    def _single_row(self) -> "_SingleRowPredictor | None":
        """The single-row predictor of the current booster, made on first use (None if LightGBM lacks the API)."""
        fast = self.__dict__.get("_single_row_predictor")
        booster = self._check_fitted()
        if fast is None or fast.booster is not booster:
            fast = _SingleRowPredictor.create(booster)
            self.__dict__["_single_row_predictor"] = fast if fast is not None else False
        return fast or None

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_single_row_predictor", None)  # a C handle: made again on first use after unpickling
        state.pop("_compiled_treeshap_for", None)  # tables made again on first use
        return state

    # -- persistence ------------------------------------------------------------------------------
    def to_text(self) -> str:
        """The booster as LightGBM's text model format."""
        return self._check_fitted().model_to_string()

    def describe(self) -> dict:
        """JSON-able parameters and fit results (stored beside the text model)."""
        self._check_fitted()
        params = {k: (None if isinstance(v, np.random.RandomState) else v) for k, v in self.get_params().items()}
        names = getattr(self, "feature_names_in_", None)
        return {"params": params, "best_iteration": self.best_iteration_, "best_score": self.best_score_,
                "classes": [c.item() if hasattr(c, "item") else c for c in self.classes_],
                "n_features_in": int(self.n_features_in_),
                "feature_names_in": [str(n) for n in names] if names is not None else None}

    @classmethod
    def from_text(cls, text: str, spec: dict) -> "SuspicionClassifier":
        """Rebuild a fitted classifier from :meth:`to_text` and :meth:`describe` output."""
        clf = cls(**spec["params"])
        clf.booster_ = lgb.Booster(model_str=text)
        clf.best_iteration_ = int(spec["best_iteration"])
        clf.best_score_ = spec.get("best_score")
        clf.evals_result_ = {}
        clf.classes_ = np.asarray(spec.get("classes", [0, 1]))
        clf.n_features_in_ = int(spec.get("n_features_in") or clf.booster_.num_feature())
        if spec.get("feature_names_in"):
            clf.feature_names_in_ = np.asarray(spec["feature_names_in"], dtype=object)
        return clf

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags


class _SingleRowPredictor:
    """One booster's single-row prediction through LightGBM's C API (``LGBM_BoosterPredictForMatSingleRowFast``).

    ``Booster.predict`` builds a predictor and parses its parameters on every call (50-200 us for one
    row, more than scoring the row); the C API's "fast" single-row functions set that up once
    (``LGBM_BoosterPredictForMatSingleRowFastInit``) and reuse it. The Python package does not expose
    them (LightGBM 4.7; lightgbm-org/LightGBM#6913), so they are called through the package's loaded
    library. Both predictors run the same code as ``Booster.predict`` on one row (normal prediction
    and TreeSHAP ``pred_contrib``) and give the same numbers to the last bit (tests check it). LightGBM
    serialises calls on a booster with its own lock; every call has its own output buffer.
    """

    def __init__(self, booster: lgb.Booster, normal: Any, contrib: Any, n_features: int, lib: Any) -> None:
        import ctypes
        import weakref

        self.booster = booster
        self._normal, self._contrib = normal, contrib
        self.n_features = n_features
        self._lib = lib
        self._c = ctypes
        # free the C configurations before the booster (the finaliser holds a reference to it)
        weakref.finalize(self, _SingleRowPredictor._free, lib, (normal, contrib), booster)

    @classmethod
    def create(cls, booster: lgb.Booster) -> "_SingleRowPredictor | None":
        import ctypes

        try:
            from lightgbm.basic import _C_API_DTYPE_FLOAT64, _C_API_PREDICT_CONTRIB, _C_API_PREDICT_NORMAL, _LIB, _c_str

            n_features = int(booster.num_feature())
            handles = []
            for predict_type in (_C_API_PREDICT_NORMAL, _C_API_PREDICT_CONTRIB):
                handle = ctypes.c_void_p()
                rc = _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                    booster._handle, ctypes.c_int(predict_type), ctypes.c_int(0), ctypes.c_int(-1),
                    ctypes.c_int(_C_API_DTYPE_FLOAT64), ctypes.c_int32(n_features), _c_str("num_threads=1"),
                    ctypes.byref(handle))
                if rc != 0:
                    cls._free(_LIB, tuple(handles), booster)
                    return None
                handles.append(handle)
        except (AttributeError, ImportError, OSError):  # another LightGBM build: Booster.predict is used instead
            return None
        return cls(booster, handles[0], handles[1], n_features, _LIB)

    @staticmethod
    def _free(lib: Any, handles: tuple, booster: Any) -> None:  # noqa: ARG004 - booster kept alive until now
        for handle in handles:
            lib.LGBM_FastConfigFree(handle)

    def _call(self, handle: Any, row: np.ndarray, n_out: int) -> np.ndarray:
        row = np.ascontiguousarray(row, dtype=np.float64)
        if row.shape != (self.n_features,):
            raise ValueError(f"a row of {self.n_features} features is expected. Got shape {row.shape} instead.")
        out = np.empty(n_out, dtype=np.float64)
        c = self._c
        rc = self._lib.LGBM_BoosterPredictForMatSingleRowFast(
            handle, row.ctypes.data_as(c.c_void_p), c.byref(c.c_int64(0)), out.ctypes.data_as(c.POINTER(c.c_double)))
        if rc != 0:
            from lightgbm.basic import LightGBMError, _LIB

            raise LightGBMError(_LIB.LGBM_GetLastError().decode("utf-8"))
        return out

    def predict(self, row: np.ndarray) -> float:
        """The probability of one row (what ``Booster.predict(row[None, :])[0]`` gives)."""
        return float(self._call(self._normal, row, 1)[0])

    def contributions(self, row: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions of one row, shape (n_features + 1,) (``pred_contrib=True``)."""
        return self._call(self._contrib, row, self.n_features + 1)


def _safe_names(names: list[str]) -> list[str]:
    """LightGBM forbids some characters in feature names; the catalogue's names are already safe."""
    return [n if all(c.isalnum() or c == "_" for c in n) else f"f{i}" for i, n in enumerate(names)]


class _EarlyStopping:
    """Stop when the validation PR-AUC has not improved for ``rounds`` rounds, never before ``min_rounds``.

    LightGBM's own callback has no minimum; on a small validation set the first rounds' PR-AUC is
    noisy, and an early maximum there would end training after a handful of trees. The best
    iteration is only chosen among rounds ``>= min_rounds``.
    """

    order = 30

    def __init__(self, rounds: int, min_rounds: int) -> None:
        self.rounds = rounds
        self.min_rounds = min_rounds
        self.best = -np.inf
        self.best_iter = 0  # 1-based; 0 = none yet

    def __call__(self, env: Any) -> None:
        it = env.iteration + 1
        score = float(env.evaluation_result_list[0][2])
        if it < self.min_rounds:
            return
        if score > self.best:
            self.best, self.best_iter = score, it
        if it - self.best_iter >= self.rounds or it == env.end_iteration:
            raise lgb.callback.EarlyStopException(self.best_iter - 1, env.evaluation_result_list)
