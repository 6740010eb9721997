"""Peer-group anomaly score: each row's behaviour measured against its own peer group, then isolated.

The bank-wide detector (:mod:`amlscore.models.anomaly`) compares every transaction with the whole
bank, so a segment whose normal behaviour is unusual for the bank (corporates' fan-in, cash
businesses' cash share) looks anomalous every day. :class:`PeerGroupAnomalyDetector` follows **peer
group analysis** (Bolton & Hand, 2001, "Peer group analysis - local anomaly detection in longitudinal
data"; for anti-money laundering, Weston, Hand, Adams, Whitrow & Juszczak, 2008, "Plastic card fraud
detection using peer group analysis"): a customer is judged against the customers that are expected
to behave like it, not against everybody. Here the peer groups are static segments read from the
feature row (the ``group_by`` features, flags or codes such as ``is_corporate``), not groups found by
clustering trajectories as in Bolton & Hand: a segment is known for a new customer on its first day
and at serving time.

Method
------
1. The behavioural features ``v`` are transformed as the bank-wide detector does,
   ``t = sign(v) * log(1 + |v|)`` (an undefined value stays undefined for now).
2. **Robust peer statistics** on the presumed-normal fit rows: per group and bank-wide, the median
   ``m`` of each feature and its scale ``s = 1.4826 * MAD`` (the modified z-score, Iglewicz & Hoaglin,
   1993); where the MAD is 0 (a count that is mostly 0) ``s = 1.2533 * mean |t - m|`` (the mean
   absolute deviation, scaled to the same normal consistency), and 1 where that is 0 too.
3. **Shrinkage to the bank** (credibility weighting, Buhlmann, 1967): a group of ``n`` fit rows gets
   ``w = n / (n + k)`` (``k``: ``shrinkage_rows``) and the statistics ``w * group + (1 - w) * bank``,
   so a small group's noisy median does not decide its members' scores. A group with fewer than
   ``min_group_rows`` fit rows, or one unseen in training, uses the bank-wide statistics (``w = 0``).
4. Each row becomes ``z = (t - m_g) / s_g`` (undefined values: 0, the peer median), and one
   IsolationForest (Liu, Ting & Zhou, 2008) is fitted on the ``z`` of all groups pooled: a row is
   anomalous when its deviations from its own peers are rare across the bank.

Inside one group the standardisation is an increasing affine map per feature, which does not change
how an IsolationForest isolates that group's rows from each other; what it changes is that the groups
are aligned, so a corporate is no longer isolated for being a corporate.

``forest="per_group"`` (the packaged configuration's choice: it measured better alone) also fits one
IsolationForest per group with statistics of its own, on that group's rows alone; it scores its
group's rows, and the shared forest scores the rest. It can learn a group's own combinations of features, where the shared forest only
sees each feature's deviation; scores of different forests are on the same ``2^(-E[h]/c(psi))``
scale, normalised by the subsample size as Liu et al. intend.

Explanation: the attribution (:meth:`~amlscore.models.anomaly.BehaviourAnomalyDetector.attribution`,
same method) credits the features whose deviation *from the peers* isolated the row;
:meth:`PeerGroupAnomalyDetector.peer_deviations` gives each feature's ``z`` and its peers' median.

Serving scores one row with the same :meth:`_input` as a batch, and the fitted statistics are saved
as JSON beside the forest's arrays (no pickle is read to score).
"""

from __future__ import annotations

import json
import math
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sklearn.ensemble import IsolationForest
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from amlscore.contract.config_file import load_yaml_model
from amlscore.contract.errors import AmlError
from amlscore.features.catalogue import FEATURE_NAMES, SPECS_BY_NAME
from amlscore.models.anomaly import BEHAVIOUR_FEATURES, BehaviourAnomalyDetector, CompiledIsolationForest

__all__ = [
    "DEFAULT_PEER_ANOMALY_CONFIG",
    "PEER_GROUPS_FILE",
    "PeerAnomalyConfig",
    "PeerAnomalyConfigError",
    "PeerBaseline",
    "PeerGroupAnomalyDetector",
    "load_peer_anomaly_config",
    "robust_centre_scale",
]

DEFAULT_PEER_ANOMALY_CONFIG = Path(__file__).with_name("config") / "peer_anomaly.yaml"
PEER_GROUPS_FILE = "peer_groups.json"
_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
_MAD_TO_SD = 1.4826  # 1 / Phi^-1(3/4): the MAD of a normal sample times this estimates its sd
_MEAN_AD_TO_SD = 1.2533  # sqrt(pi / 2): the same for the mean absolute deviation
_GROUP_KINDS = ("flag", "code")  # a peer group is a segment, not a band of a continuous value


class PeerAnomalyConfigError(AmlError):
    """The peer-group anomaly configuration file is missing, not YAML, or breaks a rule."""


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------


def _check_catalogue(names: Sequence[str], what: str) -> None:
    unknown = [n for n in names if n not in _INDEX]
    if unknown:
        raise ValueError(f"{what} must name features of the catalogue; {unknown[0]!r} is not one")
    dupes = sorted({n for n in names if list(names).count(n) > 1})
    if dupes:
        raise ValueError(f"{what} names {dupes[0]!r} more than once")


class PeerAnomalyConfig(BaseModel):
    """The peer-group anomaly component's configuration (``amlscore/models/config/peer_anomaly.yaml``).

    Attributes
    ----------
    group_by : tuple of str
        Features that define a row's peer group (flags or codes of the catalogue): the group is the
        combination of their values.
    features : tuple of str or None
        Behavioural features measured against the peers (None: :data:`BEHAVIOUR_FEATURES`); none of
        them may be a ``group_by`` feature.
    min_group_rows : int >= 2
        Fit rows a group needs for statistics of its own; smaller groups use the bank's.
    shrinkage_rows : float >= 0
        ``k`` in the weight ``n / (n + k)`` of a group's own statistics (0: no shrinkage).
    forest : {"shared", "per_group"}
        One IsolationForest on every group's standardised rows (``shared``), or one per group with
        statistics of its own, the shared one scoring the other groups (``per_group``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    group_by: tuple[str, ...] = Field(("is_corporate",), min_length=1, max_length=4)
    features: tuple[str, ...] | None = None
    min_group_rows: int = Field(200, ge=2)
    shrinkage_rows: float = Field(500.0, ge=0, allow_inf_nan=False)
    forest: Literal["shared", "per_group"] = "shared"

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        _check_catalogue(v, "group_by")
        bad = [n for n in v if SPECS_BY_NAME[n].kind not in _GROUP_KINDS]
        if bad:
            raise ValueError(f"group_by must name flag or code features; {bad[0]!r} is a "
                             f"{SPECS_BY_NAME[bad[0]].kind}")
        return v

    @field_validator("features")
    @classmethod
    def _features(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None:
            if not v:
                raise ValueError("features must name at least one feature (or be null for the default list)")
            _check_catalogue(v, "features")
        return v

    @model_validator(mode="after")
    def _disjoint(self) -> "PeerAnomalyConfig":
        both = sorted(set(self.features or BEHAVIOUR_FEATURES) & set(self.group_by))
        if both:
            raise ValueError(f"{both[0]!r} is both a group_by feature and a feature measured against the group")
        return self

    def estimator_params(self) -> dict[str, Any]:
        """The :class:`PeerGroupAnomalyDetector` parameters this configuration sets."""
        return {"group_by": self.group_by, "features": self.features, "min_group_rows": self.min_group_rows,
                "shrinkage_rows": self.shrinkage_rows, "forest": self.forest}


def load_peer_anomaly_config(path: str | Path | None = None) -> PeerAnomalyConfig:
    """The validated configuration in ``path`` (default: the packaged ``config/peer_anomaly.yaml``).

    Raises
    ------
    PeerAnomalyConfigError
        Naming the file, the key, what is allowed and the value received.
    """
    return load_yaml_model(Path(path) if path is not None else DEFAULT_PEER_ANOMALY_CONFIG, PeerAnomalyConfig,
                           PeerAnomalyConfigError, what="peer-group anomaly configuration")


# ------------------------------------------------------------------------------------------------
# Robust statistics
# ------------------------------------------------------------------------------------------------


def robust_centre_scale(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``T`` (NaN = undefined, ignored): the median and the robust scale.

    The scale is ``1.4826 * MAD``; where that is 0, ``1.2533 * mean |t - median|``; where that is 0
    too (a constant column), 1. A column with no defined value gets centre NaN and scale NaN (the
    caller falls back to the bank's).
    """
    n_cols = T.shape[1]
    centre = np.full(n_cols, np.nan)
    scale = np.full(n_cols, np.nan)
    for j in range(n_cols):
        col = T[:, j]
        col = col[~np.isnan(col)]
        if not len(col):
            continue
        med = float(np.median(col))
        dev = np.abs(col - med)
        s = _MAD_TO_SD * float(np.median(dev))
        if s <= 0:
            s = _MEAN_AD_TO_SD * float(dev.mean())
        centre[j], scale[j] = med, (s if s > 0 else 1.0)
    return centre, scale


def _log_transform(X: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``sign(v) * log1p(|v|)`` of the chosen columns; NaN and infinities become NaN (undefined)."""
    T = np.asarray(X, dtype=np.float64)[:, columns]
    T = np.sign(T) * np.log1p(np.abs(T))
    T[~np.isfinite(T)] = np.nan
    return T


def _key_part(name: str, value: float) -> str:
    if math.isnan(value):
        return f"{name}=missing"
    return f"{name}={int(value)}" if float(value).is_integer() else f"{name}={value!r}"


def group_keys(G: np.ndarray, names: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct peer-group keys of the rows of ``G`` (their ``group_by`` values) and each row's
    index into them. A key reads ``"is_corporate=1"`` (``|``-joined for several features)."""
    G = np.asarray(G, dtype=np.float64)
    if not len(G):
        return [], np.zeros(0, dtype=np.int64)
    # NaN != NaN would split "missing" into one group per row: give it a value no flag or code takes
    sentinel = np.where(np.isnan(G), np.inf, G)
    uniq, inverse = np.unique(sentinel, axis=0, return_inverse=True)
    keys = ["|".join(_key_part(n, float(v) if np.isfinite(v) else math.nan) for n, v in zip(names, row))
            for row in uniq]
    return keys, inverse.reshape(-1).astype(np.int64)


class PeerBaseline:
    """Fitted peer statistics: per known group and bank-wide, the centre and scale of each feature.

    Parameters
    ----------
    group_by, features : sequence of str
        The ``group_by`` features and the features measured (their order is the columns').
    keys : sequence of str
        The groups with statistics of their own (see :func:`group_keys`).
    rows : sequence of int
        Fit rows of each group.
    weights : sequence of float
        Each group's shrinkage weight ``n / (n + k)``.
    centres, scales : array of shape (len(keys) + 1, len(features))
        The shrunk statistics per group; the **last row is the bank's**, used for every other group.
    bank_rows : int
        Fit rows in all.
    """

    def __init__(self, group_by: Sequence[str], features: Sequence[str], keys: Sequence[str], rows: Sequence[int],
                 weights: Sequence[float], centres: np.ndarray, scales: np.ndarray, bank_rows: int) -> None:
        self.group_by = tuple(group_by)
        self.features = tuple(features)
        self.keys = tuple(keys)
        self.rows = tuple(int(r) for r in rows)
        self.weights = tuple(float(w) for w in weights)
        self.centres = np.ascontiguousarray(centres, dtype=np.float64)
        self.scales = np.ascontiguousarray(scales, dtype=np.float64)
        self.bank_rows = int(bank_rows)
        shape = (len(self.keys) + 1, len(self.features))
        if self.centres.shape != shape or self.scales.shape != shape:
            raise ValueError(f"peer statistics must have shape {shape} (groups + bank, features). "
                             f"Got {self.centres.shape} and {self.scales.shape} instead.")
        if not (np.isfinite(self.centres).all() and np.isfinite(self.scales).all() and (self.scales > 0).all()):
            raise ValueError("peer statistics must be finite with positive scales")
        self._slot = {k: i for i, k in enumerate(self.keys)}
        self._group_cols = np.array([_INDEX[n] for n in self.group_by], dtype=np.int64)

    @classmethod
    def fit(cls, T: np.ndarray, G: np.ndarray, group_by: Sequence[str], features: Sequence[str], *,
            min_group_rows: int, shrinkage_rows: float) -> "PeerBaseline":
        """Statistics of the transformed fit rows ``T`` (NaN = undefined) grouped by ``G`` (their ``group_by``
        values); see the module docstring for the method."""
        bank_centre, bank_scale = robust_centre_scale(T)
        # a feature never defined in the fit rows: centre 0 (where undefined values go), scale 1
        bank_centre = np.nan_to_num(bank_centre, nan=0.0)
        bank_scale = np.where(np.isnan(bank_scale), 1.0, bank_scale)
        keys, inverse = group_keys(G, group_by)
        kept_keys, rows, weights, centres, scales = [], [], [], [], []
        for g, key in enumerate(keys):
            members = inverse == g
            n = int(members.sum())
            if n < min_group_rows:
                continue
            centre, scale = robust_centre_scale(T[members])
            centre = np.where(np.isnan(centre), bank_centre, centre)  # nothing defined in the group: the bank's
            scale = np.where(np.isnan(scale), bank_scale, scale)
            w = n / (n + shrinkage_rows)
            kept_keys.append(key)
            rows.append(n)
            weights.append(w)
            centres.append(w * centre + (1.0 - w) * bank_centre)
            scales.append(w * scale + (1.0 - w) * bank_scale)
        centres.append(bank_centre)
        scales.append(bank_scale)
        return cls(group_by, features, kept_keys, rows, weights, np.vstack(centres), np.vstack(scales), len(T))

    def slots(self, X: np.ndarray) -> np.ndarray:
        """Each feature row's statistics row: its group's, or the bank's (last) for a group without its own."""
        G = np.asarray(X, dtype=np.float64)[:, self._group_cols]
        bank = len(self.keys)
        if len(G) == 1:  # the online path: the same key as group_keys makes, without its sort
            key = "|".join(_key_part(n, float(v) if np.isfinite(v) else math.nan) for n, v in zip(self.group_by, G[0]))
            return np.array([self._slot.get(key, bank)], dtype=np.int64)
        keys, inverse = group_keys(G, self.group_by)
        per_key = np.array([self._slot.get(k, bank) for k in keys], dtype=np.int64)
        return per_key[inverse] if len(keys) else np.zeros(0, dtype=np.int64)

    def standardise(self, T: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """``(T - centre) / scale`` of each row's group; undefined values become 0 (the peer median)."""
        Z = (T - self.centres[slots]) / self.scales[slots]
        return np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able statistics (floats written in full: ``json`` round-trips them exactly)."""
        return {"group_by": list(self.group_by), "features": list(self.features), "bank_rows": self.bank_rows,
                "groups": [{"key": k, "rows": n, "weight": w, "centre": c.tolist(), "scale": s.tolist()}
                           for k, n, w, c, s in zip(self.keys, self.rows, self.weights, self.centres, self.scales)],
                "bank": {"centre": self.centres[-1].tolist(), "scale": self.scales[-1].tolist()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PeerBaseline":
        groups = d["groups"]
        centres = [g["centre"] for g in groups] + [d["bank"]["centre"]]
        scales = [g["scale"] for g in groups] + [d["bank"]["scale"]]
        return cls(d["group_by"], d["features"], [g["key"] for g in groups], [g["rows"] for g in groups],
                   [g["weight"] for g in groups], np.array(centres, dtype=np.float64),
                   np.array(scales, dtype=np.float64), d["bank_rows"])


# ------------------------------------------------------------------------------------------------
# The estimator
# ------------------------------------------------------------------------------------------------


class PeerGroupAnomalyDetector(BehaviourAnomalyDetector):
    """IsolationForest on behavioural features standardised by each row's peer group (module docstring).

    Parameters
    ----------
    group_by : tuple of str, default=("is_corporate",)
        Flag or code features whose values make a row's peer group.
    features : tuple of str or None, default=None
        Features measured against the peers (None: :data:`BEHAVIOUR_FEATURES`).
    min_group_rows : int, default=200
        Fit rows a group needs for statistics of its own.
    shrinkage_rows : float, default=500.0
        ``k`` of the shrinkage weight ``n / (n + k)``.
    forest : {"shared", "per_group"}, default="shared"
        One forest on all groups' standardised rows, or also one per group with statistics of its own.
    n_estimators, max_samples, contamination, random_state
        As :class:`~amlscore.models.anomaly.BehaviourAnomalyDetector`.

    Attributes
    ----------
    baseline_ : PeerBaseline
        The fitted peer statistics.
    group_forests_ : list of CompiledIsolationForest
        With ``forest="per_group"``: one per group of ``baseline_.keys`` (else empty); ``compiled_``
        scores the other groups.
    (and those of :class:`~amlscore.models.anomaly.BehaviourAnomalyDetector`)

    Examples
    --------
    >>> import numpy as np
    >>> from amlscore.features.catalogue import FEATURE_NAMES
    >>> X = np.abs(np.random.default_rng(0).normal(size=(600, len(FEATURE_NAMES))))
    >>> X[:, FEATURE_NAMES.index("is_corporate")] = np.arange(600) % 2
    >>> det = PeerGroupAnomalyDetector(n_estimators=20, min_group_rows=100, random_state=0).fit(X)
    >>> det.baseline_.keys
    ('is_corporate=0', 'is_corporate=1')
    """

    KIND = "peer_group"

    _parameter_constraints: dict = {
        **BehaviourAnomalyDetector._parameter_constraints,
        "group_by": [tuple, list],
        "min_group_rows": [Interval(Integral, 2, None, closed="left")],
        "shrinkage_rows": [Interval(Real, 0, None, closed="left")],
        "forest": [StrOptions({"shared", "per_group"})],
    }

    def __init__(self, group_by: Sequence[str] = ("is_corporate",), features: Sequence[str] | None = None,
                 min_group_rows: int = 200, shrinkage_rows: float = 500.0, forest: str = "shared", n_estimators: int = 200,
                 max_samples: int = 256, contamination: str | float = "auto", random_state: Any = None) -> None:
        super().__init__(features=features, n_estimators=n_estimators, max_samples=max_samples,
                         contamination=contamination, random_state=random_state)
        self.group_by = group_by
        self.min_group_rows = min_group_rows
        self.shrinkage_rows = shrinkage_rows
        self.forest = forest

    def _fit_input(self, X: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
        """Learn the peer statistics from the fit rows (unweighted: they describe normal behaviour), then
        standardise them."""
        try:  # the same rules as the configuration file, for parameters given in code
            config = PeerAnomalyConfig(group_by=tuple(self.group_by), features=self.feature_names_,
                                       min_group_rows=self.min_group_rows, shrinkage_rows=self.shrinkage_rows,
                                       forest=self.forest)
        except ValueError as exc:
            raise ValueError(f"Invalid parameters of {type(self).__name__}: {exc}") from None
        group_cols = np.array([_INDEX[n] for n in config.group_by], dtype=np.int64)
        self.baseline_ = PeerBaseline.fit(_log_transform(X, self.feature_indices_), X[:, group_cols], config.group_by,
                                          self.feature_names_, min_group_rows=config.min_group_rows,
                                          shrinkage_rows=config.shrinkage_rows)
        Z, slots = self._standardised(X)
        self.group_forests_ = self._fit_group_forests(Z, slots, sample_weight) if config.forest == "per_group" else []
        return Z

    def _fit_group_forests(self, Z: np.ndarray, slots: np.ndarray,
                           sample_weight: np.ndarray | None) -> list[CompiledIsolationForest]:
        """One forest per group with statistics of its own, on that group's rows (seeds drawn from
        ``random_state`` in group order, so a fit is reproducible)."""
        rng = check_random_state(self.random_state)
        forests = []
        for g in range(len(self.baseline_.keys)):
            rows = slots == g
            seed = int(rng.randint(np.iinfo(np.int32).max))
            forest = IsolationForest(n_estimators=self.n_estimators, max_samples=min(self.max_samples, int(rows.sum())),
                                     contamination=self.contamination, random_state=seed, n_jobs=1)
            forest.fit(Z[rows], sample_weight=None if sample_weight is None else np.asarray(sample_weight)[rows])
            forests.append(CompiledIsolationForest.from_sklearn(forest))
        return forests

    def _standardised(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's transformed features standardised by its peer group's statistics, and its statistics row."""
        slots = self.baseline_.slots(X)
        return self.baseline_.standardise(_log_transform(X, self.feature_indices_), slots), slots

    def _input(self, X: np.ndarray) -> np.ndarray:
        """The forest's input: each row's transformed features standardised by its peer group's statistics."""
        return self._standardised(X)[0]

    def _route(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The standardised rows and their forest: the group's own (``per_group``), else the shared one (0)."""
        Z, slots = self._standardised(X)
        if not self.group_forests_:
            return Z, np.zeros(len(Z), dtype=np.int64)
        return Z, np.where(slots < len(self.baseline_.keys), slots + 1, 0)

    def _forests(self) -> list[CompiledIsolationForest]:
        return [self.compiled_, *self.group_forests_]

    def peer_deviations(self, x: np.ndarray) -> list[tuple[str, float, float, float]]:
        """One row's ``(feature, raw value, peers' median in raw units, z)``, largest ``|z|`` first.

        ``z`` is how many robust standard deviations (of the log-transformed value) the row is from its
        peer group's median; the median is turned back into the feature's own units to be read.
        """
        check_is_fitted(self, "baseline_")
        x = np.asarray(x, dtype=np.float64).reshape(1, -1)
        self._validate_X(x)
        z = self._input(x)[0]
        centre = self.baseline_.centres[self.baseline_.slots(x)[0]]
        median_raw = np.sign(centre) * np.expm1(np.abs(centre))
        order = np.argsort(-np.abs(z), kind="stable")
        raw = x[0, self.feature_indices_]
        return [(self.feature_names_[j], float(raw[j]), float(median_raw[j]), float(z[j])) for j in order.tolist()]

    def peer_group_of(self, x: np.ndarray) -> str:
        """The key of one row's peer group, or ``"bank"`` when the group has no statistics of its own."""
        check_is_fitted(self, "baseline_")
        slot = int(self.baseline_.slots(np.asarray(x, dtype=np.float64).reshape(1, -1))[0])
        return self.baseline_.keys[slot] if slot < len(self.baseline_.keys) else "bank"

    def describe(self) -> str:
        """One sentence for the model card: what the scores are measured against."""
        check_is_fitted(self, "baseline_")
        b = self.baseline_
        groups = ", ".join(f"{k} ({n:,} rows, weight {w:.2f})" for k, n, w in zip(b.keys, b.rows, b.weights))
        return (f"an **IsolationForest** anomaly score on {len(b.features)} behavioural features, each measured "
                f"against the customer's peer group ({', '.join(b.group_by)}; robust median and MAD shrunk toward "
                f"the bank's with k = {self.shrinkage_rows:g} rows; groups: {groups or 'none large enough'}; any "
                f"other group against the bank), fitted on {b.bank_rows:,} presumed-normal rows"
                + (", one forest per group." if self.group_forests_ else ", one forest for all groups."))

    # -- persistence (used by amlscore.models.model_set) --------------------------------------------------
    def to_dir(self, folder: Path) -> dict:
        """The forest as :meth:`BehaviourAnomalyDetector.to_dir` writes it, and :data:`PEER_GROUPS_FILE`
        (the peer statistics, JSON)."""
        check_is_fitted(self, "baseline_")
        spec = super().to_dir(folder)
        (folder / PEER_GROUPS_FILE).write_text(json.dumps(self.baseline_.to_dict(), indent=1) + "\n", encoding="utf-8")
        spec["peer_groups_file"] = PEER_GROUPS_FILE
        spec["group_forest_files"] = []
        for g, forest in enumerate(self.group_forests_):
            name = f"iforest_group_{g}.npz"
            forest.to_npz(folder / name)
            spec["group_forest_files"].append(name)
        return spec

    @classmethod
    def from_dir(cls, folder: Path, spec: dict) -> "PeerGroupAnomalyDetector":
        det = super().from_dir(folder, spec)
        det.baseline_ = PeerBaseline.from_dict(json.loads((folder / spec["peer_groups_file"]).read_text(encoding="utf-8")))
        if det.baseline_.features != det.feature_names_:
            raise ValueError(f"{spec['peer_groups_file']} in {folder} holds statistics of other features than the "
                             "forest's")
        det.group_forests_ = [CompiledIsolationForest.from_npz(folder / name) for name in spec["group_forest_files"]]
        if det.group_forests_ and len(det.group_forests_) != len(det.baseline_.keys):
            raise ValueError(f"{folder} holds {len(det.group_forests_)} group forests for "
                             f"{len(det.baseline_.keys)} peer groups")
        return det
