"""What a training run is given and what it gives back: the types every stage of training shares.

:mod:`amlscore.training.train` fits and evaluates; :mod:`amlscore.training.tracking` logs a
:class:`TrainResult` to MLflow; :mod:`amlscore.training.report` draws its artefacts. All three import
these types from here, so none of them imports another (the command composes them:
:func:`amlscore.training.pipeline.train_and_register`).
"""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.contract.load import Dataset
from amlscore.core.registry import MODEL_NAME as REGISTERED_MODEL_NAME
from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.features.params import FeatureParams
from amlscore.models.model_set import ModelSet
from amlscore.models.peer_anomaly import load_peer_anomaly_config
from amlscore.models.rules import RulesConfig
from amlscore.training.evaluate import EvaluationReport
from amlscore.training.split import TimeSplit

__all__ = ["Prepared", "ProgressFn", "REGISTERED_MODEL_NAME", "TrainConfig", "TrainResult", "feature_matrix",
           "git_version", "no_progress"]

ProgressFn = Callable[[str, float], None]


def no_progress(step: str, fraction: float) -> None:  # pragma: no cover - trivial
    """A :data:`ProgressFn` that shows nothing."""
    return None


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on besides the data (all logged to MLflow).

    Attributes
    ----------
    data : Path
        Data folder in the contract.
    cutoff : date or None
        Training cut-off: reports filed on or after it are not used (None: all reports).
    seed : int
        Seed of every sample and fit.
    fractions : (train, valid, test)
        Shares of transactions per period (unless ``valid_start`` / ``test_start`` are given).
    valid_start, test_start : date or None
        Explicit period boundaries (bank clock).
    target_alert_rate, target_precision : float
        For the two alert thresholds; ``alert_policy`` picks the one in force.
    max_train_negatives, max_valid_negatives : int
        Caps on presumed-normal rows for LightGBM's training and early-stopping sets.
    bag_keep_share : float in (0, 1]
        Share of each period report's rows kept as positives (1 = no refinement).
    anomaly_fit_rows : int
        Presumed-normal rows the IsolationForest is fitted on (at most).
    lgbm, anomaly : dict
        Parameter overrides for :class:`SuspicionClassifier` / :class:`BehaviourAnomalyDetector`.
    anomaly_model : {"bank", "peer_group"}
        The anomaly component: the IsolationForest against the whole bank (``bank``) or against each
        row's peer group (``peer_group``, :mod:`amlscore.models.peer_anomaly`; the default since the
        gated floor, docs/generalisation.md).
    anomaly_peer_config : Path or None
        With ``peer_group``: its configuration file (None: ``amlscore/models/config/peer_anomaly.yaml``),
        validated when the configuration is made.
    fusion_c : float
        Inverse L2 strength of the fusion.
    fusion_anomaly_floor : float >= 0
        The least the fusion lets one standard deviation of the anomaly score move the log-odds
        (:class:`~amlscore.models.fusion.SuspicionFusion`'s ``min_log_odds_per_sd``). The reports
        only teach the fusion the typologies someone reported; the floor keeps the one component
        that can rank an unreported kind in the score. 0: the fit alone decides. Default 1.0, a round
        value set before it was measured (docs/generalisation.md, "The anomaly floor").
    fusion_anomaly_gate : float in [0.5, 1) or None
        With a floor: apply it only when the anomaly score alone ranks the bank's own reported rows
        with a ROC-AUC of at least this (:func:`~amlscore.training.few_labels.anomaly_evidence`, on
        the fusion's rows). A detector that ranks the reported kinds poorly in this bank is no
        evidence for the unreported ones, and a floor would then only add noise. None: the floor
        always applies. Default 0.85, chosen on tuning banks (seeds 4-6 and the default data) by
        ``benchmarks/choose_anomaly_gate.py`` and judged on others (docs/generalisation.md).
    fusion_anomaly_max_reported : int >= 1 or None
        With a floor: apply it only while fewer customers than this have a suspicious report at the
        validation cut-off. The floor stands in for the typologies the reports miss, which matters
        while they are few; with many reported customers the fit's own weights are the better
        judge (on 10,000-customer banks the floor cost ranking and customers caught). None: no limit.
        Default 40, chosen on the tuning banks by ``benchmarks/choose_anomaly_gate.py --cache`` (the floor
        helped with 19-30 reported customers and hurt with 61-66).
    fusion_balance : bool
        Weigh the positives so that every reported customer counts the same in the fusion (one
        customer's long period report does not decide the weights).
    fusion_fit : {"oof", "valid"}
        Fit the fusion on out-of-fold LightGBM probabilities over train + valid (``oof``,
        :mod:`amlscore.training.few_labels`) or on the validation period alone (``valid``).
    fusion_folds : int
        Time blocks of the out-of-fold fit (2 to 10).
    fusion_refit : bool
        With ``fusion_fit="oof"``: serve a LightGBM refitted on train + valid with the tree count
        of the early-stopped one (stacking's refit; always on with ``pu``).
    pu : {"none", "elkan_noto"}
        Positive-unlabelled treatment of the unreported history (needs ``fusion_fit="oof"``;
        :mod:`amlscore.models.pu`): unlabelled rows also count as positives with Elkan & Noto's
        weights, and the served LightGBM is refitted on train + valid with them.
    pu_weight_scale : float in (0, 1]
        Multiplies the PU weights (1: Elkan & Noto's weights as they are).
    n_jobs : int
        LightGBM threads.
    feedback : tuple of Path
        Extra feedback files (``<data>/feedback/*.csv`` is always read).
    rules_config_path, feature_params_path : Path or None
        Non-default configuration files.
    features : Path or None
        A feature folder written by ``amlscore features --engine spark`` for this data folder and these
        feature parameters, read instead of computing the features here (checked on read).
    """

    data: Path
    cutoff: dt.date | None = None
    seed: int = 42
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    valid_start: dt.date | None = None
    test_start: dt.date | None = None
    target_alert_rate: float = 0.01
    target_precision: float = 0.5
    alert_policy: str = "alert_rate"
    max_train_negatives: int = 100_000
    max_valid_negatives: int = 100_000
    bag_keep_share: float = 0.5
    anomaly_fit_rows: int = 200_000
    lgbm: dict = field(default_factory=dict)
    anomaly: dict = field(default_factory=dict)
    anomaly_model: str = "peer_group"
    anomaly_peer_config: Path | None = None
    fusion_c: float = 1.0
    fusion_anomaly_floor: float = 1.0
    fusion_anomaly_gate: float | None = 0.85
    fusion_anomaly_max_reported: int | None = 40
    fusion_balance: bool = True
    fusion_fit: str = "oof"
    fusion_folds: int = 3
    fusion_refit: bool = True
    pu: str = "elkan_noto"
    pu_weight_scale: float = 1.0
    n_jobs: int = 1
    feedback: tuple[Path, ...] = ()
    rules_config_path: Path | None = None
    feature_params_path: Path | None = None
    features: Path | None = None

    def __post_init__(self) -> None:
        if not 0 < self.bag_keep_share <= 1:
            raise AmlError(f"The 'bag_keep_share' parameter must be in (0, 1]. Got {self.bag_keep_share!r} instead.")
        if self.fusion_fit not in ("oof", "valid"):
            raise AmlError(f"The 'fusion_fit' parameter must be 'oof' or 'valid'. Got {self.fusion_fit!r} instead.")
        if isinstance(self.fusion_folds, bool) or not isinstance(self.fusion_folds, int) or not 2 <= self.fusion_folds <= 10:
            raise AmlError(f"The 'fusion_folds' parameter must be a whole number in [2, 10]. Got {self.fusion_folds!r} instead.")
        if isinstance(self.pu_weight_scale, bool) or not 0 < float(self.pu_weight_scale) <= 1:
            raise AmlError(f"The 'pu_weight_scale' parameter must be a number in (0, 1]. Got {self.pu_weight_scale!r} instead.")
        floor = self.fusion_anomaly_floor
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0 <= float(floor) <= 5:
            raise AmlError(f"The 'fusion_anomaly_floor' parameter must be a number in [0, 5] (log-odds per standard "
                           f"deviation of the anomaly score). Got {floor!r} instead.")
        gate = self.fusion_anomaly_gate
        if gate is not None and (isinstance(gate, bool) or not isinstance(gate, (int, float))
                                 or not 0.5 <= float(gate) < 1):
            raise AmlError(f"The 'fusion_anomaly_gate' parameter must be a ROC-AUC in [0.5, 1) or None. "
                           f"Got {gate!r} instead.")
        most = self.fusion_anomaly_max_reported
        if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 1):
            raise AmlError(f"The 'fusion_anomaly_max_reported' parameter must be a whole number >= 1 or None. "
                           f"Got {most!r} instead.")
        if self.pu not in ("none", "elkan_noto"):
            raise AmlError(f"The 'pu' parameter must be 'none' or 'elkan_noto'. Got {self.pu!r} instead.")
        if self.pu != "none" and self.fusion_fit != "oof":
            raise AmlError(f"The 'pu' parameter {self.pu!r} needs fusion_fit='oof' (its weights come from out-of-fold "
                           f"predictions). Got fusion_fit={self.fusion_fit!r} instead.")
        if self.alert_policy not in ("alert_rate", "precision"):
            raise AmlError(f"The 'alert_policy' parameter must be 'alert_rate' or 'precision'. Got {self.alert_policy!r} instead.")
        if self.anomaly_model not in ("bank", "peer_group"):
            raise AmlError(f"The 'anomaly_model' parameter must be 'bank' or 'peer_group'. Got {self.anomaly_model!r} instead.")
        if self.anomaly_peer_config is not None:
            # a protocol file gives a string (the dataclass is frozen: set it as its own __init__ does)
            object.__setattr__(self, "anomaly_peer_config", Path(self.anomaly_peer_config))
        if self.anomaly_model == "peer_group":
            load_peer_anomaly_config(self.anomaly_peer_config)  # a bad file fails here, before any data is read
        for name in ("max_train_negatives", "max_valid_negatives", "anomaly_fit_rows"):
            if getattr(self, name) < 100:
                raise AmlError(f"The '{name}' parameter must be at least 100. Got {getattr(self, name)!r} instead.")

    def to_params(self) -> dict[str, Any]:
        """Flat, string-valued parameters for MLflow."""
        d = asdict(self)
        out: dict[str, Any] = {}
        for k, v in d.items():
            if isinstance(v, dict):
                for kk, vv in v.items():
                    out[f"{k}.{kk}"] = vv
            elif isinstance(v, (tuple, list)):
                out[k] = ",".join(str(x) for x in v)
            else:
                out[k] = v
        out["data"] = str(Path(self.data).resolve())
        return {k: ("" if v is None else str(v)) for k, v in out.items()}


@dataclass
class Prepared:
    """A loaded data folder with its features, rule scores, split and labels (row-aligned).

    ``features`` and ``dataset.transactions`` are in the same (time) order; ``rules`` holds the
    rule score per row; ``split_codes`` is 0/1/2; ``labels`` maps train/valid/test to the output
    of :func:`amlscore.training.labels.derive_labels` at that period's label cut-off.
    """

    dataset: Dataset
    features: pd.DataFrame
    rule_score: np.ndarray
    split: TimeSplit
    split_codes: np.ndarray
    labels: dict[str, pd.DataFrame]
    ground_truth: pd.DataFrame | None
    rules_config: RulesConfig
    feature_params: FeatureParams
    feedback_rows: int
    timings: dict[str, float]


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    model_set: ModelSet
    prepared: Prepared
    test_report: EvaluationReport
    valid_metrics: dict[str, float]
    diagnostics: dict[str, Any]
    timings: dict[str, float]
    run_id: str | None = None
    model_version: str | None = None
    model_uri: str | None = None
    test_scores: pd.DataFrame | None = None  # the test period's score frame (txn_id + score columns)

    def summary(self) -> dict[str, Any]:
        """JSON-able results (``--results-fp``)."""
        return {"run_id": self.run_id, "model_version": self.model_version, "model_uri": self.model_uri,
                "registered_model_name": REGISTERED_MODEL_NAME, "split": self.prepared.split.describe(),
                "data_fingerprint": self.prepared.dataset.fingerprint, "test": self.test_report.to_dict(),
                "valid": self.valid_metrics, "diagnostics": self.diagnostics, "timings": self.timings,
                "alert_threshold": self.model_set.alert_threshold, "thresholds": self.model_set.thresholds.to_dict()}


def git_version(root: Path | None = None) -> str:
    """The git sha of the code (``-dirty`` when the working tree has changes).

    An installed (non-editable) package is not a git checkout: its version is ``amlscore <version>``.
    """
    root = root or Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        from amlscore import __version__

        return f"amlscore {__version__}"
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def feature_matrix(features: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Feature rows ``rows`` as a float64 matrix in catalogue order (never the whole table at once)."""
    out = np.empty((len(rows), len(FEATURE_NAMES)), dtype=np.float64)
    for j, name in enumerate(FEATURE_NAMES):
        out[:, j] = features[name].to_numpy()[rows]
    return out
