"""The model set: everything that turns a feature row into a suspicion score, as one artefact.

A :class:`ModelSet` holds the feature specification it was trained on, the rule configuration,
the LightGBM classifier (:mod:`amlscore.models.supervised`), the IsolationForest detector
(:mod:`amlscore.models.anomaly`), the fusion (:mod:`amlscore.models.fusion`) and the alert thresholds. Training
evaluates exactly this object; the registry stores it (:meth:`ModelSet.save`); serving loads it
back (:meth:`ModelSet.load`) and gets the same scores to the last bit.

Scores (every one: **the higher, the more suspicious**)

=====================  =========  ==============================================================
``suspicion_score``    0..100     the fused, calibrated score (probability-like, in %)
``rule_score``         0..100     noisy-OR of the fired transaction rules (:mod:`amlscore.models.rules`)
``lgbm_probability``   0..1       LightGBM probability of a suspicious report
``anomaly_score``      0..1       IsolationForest ``2^(-E[h]/c)`` (bank-wide or against peer groups); higher = more anomalous
``alert``              bool       ``suspicion_score >= alert_threshold``
=====================  =========  ==============================================================

Saved layout (a directory; no pickled code objects are needed to score)::

    model_set.json          format, feature names, metadata, thresholds, fusion weights,
                            estimator parameters, sha256 of every file below
    lgbm.txt                LightGBM text model (only the kept trees)
    iforest.npz             IsolationForest trees as arrays (what scoring reads)
    iforest.joblib          the fitted scikit-learn IsolationForest (reference/audit only)
    peer_groups.json        with the peer-group anomaly detector (:mod:`amlscore.models.peer_anomaly`):
                            its fitted peer statistics (group keys, rows, shrinkage weights, medians, scales)
    rules.yaml              the validated rule configuration (same hash as at training)
    feature_params.yaml     the feature parameters (same hash as at training)
    reference.json          the training reference for drift monitoring (:mod:`amlscore.models.reference`);
                            absent from model sets saved before it existed
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import yaml

from amlscore.contract.errors import AmlError
from amlscore.features.catalogue import FEATURE_NAMES, FEATURE_SET_VERSION
from amlscore.features.labels import feature_label
from amlscore.features.params import FeatureParams, load_feature_params
from amlscore.models.anomaly import BehaviourAnomalyDetector
from amlscore.models.decision import (
    AnomalyAttribution,
    Explanation,
    FeatureContribution,
    RuleReason,
    ScoreBatch,
    json_safe,
)
from amlscore.models.fusion import COMPONENTS, AlertThresholds, SuspicionFusion
from amlscore.models.peer_anomaly import PeerGroupAnomalyDetector
from amlscore.models.reference import REFERENCE_FILE, ModelReference
from amlscore.models.rules import RulesConfig, evaluate_rules, explain_rules, load_rules_config, score_transaction_rules
from amlscore.models.supervised import SuspicionClassifier

__all__ = [
    "FORMAT_VERSION",
    "AnomalyAttribution",
    "Explanation",
    "FeatureContribution",
    "FeatureMismatchError",
    "ModelSet",
    "ModelSetError",
    "RuleReason",
    "ScoreBatch",
]

FORMAT_VERSION = 1
ID_COLUMNS = ("txn_id", "customer_id", "timestamp")
SCORE_COLUMNS = ("suspicion_score", "rule_score", "lgbm_probability", "anomaly_score", "alert", "top_reasons")
_MANIFEST = "model_set.json"
#: The anomaly detectors a manifest may name (``detector.kind``; absent in model sets saved before it: "bank").
_DETECTORS: dict[str, type[BehaviourAnomalyDetector]] = {
    BehaviourAnomalyDetector.KIND: BehaviourAnomalyDetector,
    PeerGroupAnomalyDetector.KIND: PeerGroupAnomalyDetector,
}


class ModelSetError(AmlError):
    """A model set directory is missing, incomplete, altered or of an unknown format."""


class FeatureMismatchError(AmlError, ValueError):
    """The features given do not match the ones the model set was trained on."""


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------


def _num(v: float) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


# ------------------------------------------------------------------------------------------------
# The model set
# ------------------------------------------------------------------------------------------------


class ModelSet:
    """Feature spec, rule configuration, LightGBM, IsolationForest, fusion and thresholds, as one.

    Parameters
    ----------
    classifier : SuspicionClassifier
        Fitted on the catalogue's feature matrix.
    detector : BehaviourAnomalyDetector
        Fitted on the same matrix layout: the bank-wide detector or its peer-group subclass
        (:class:`~amlscore.models.peer_anomaly.PeerGroupAnomalyDetector`).
    fusion : SuspicionFusion
        Fitted on the validation period.
    thresholds : AlertThresholds
    rules_config : RulesConfig
    feature_params : FeatureParams
    feature_names : sequence of str, default=FEATURE_NAMES
        Column order of every matrix the set reads.
    metadata : dict, optional
        feature_set_version, feature_params_hash, rules_config_hash, data_fingerprint,
        trained_at, seed, code_version, registered_model_name, model_version, ... (JSON-able).
    reference : ModelReference, optional
        The training reference of every feature and score for drift monitoring (None for model
        sets saved before training wrote one).

    Attributes
    ----------
    feature_names : tuple of str
    metadata : dict
    alert_threshold : float
        On the 0..100 suspicion score: an alert when ``suspicion_score >= alert_threshold``.
    """

    def __init__(self, classifier: SuspicionClassifier, detector: BehaviourAnomalyDetector, fusion: SuspicionFusion,
                 thresholds: AlertThresholds, rules_config: RulesConfig, feature_params: FeatureParams,
                 feature_names: Sequence[str] = FEATURE_NAMES, metadata: dict | None = None,
                 reference: ModelReference | None = None) -> None:
        self.classifier = classifier
        self.detector = detector
        self.fusion = fusion
        self.thresholds = thresholds
        self.rules_config = rules_config
        self.feature_params = feature_params
        self.reference = reference
        self.feature_names: tuple[str, ...] = tuple(feature_names)
        self._index = {n: i for i, n in enumerate(self.feature_names)}
        self._catalogue_order = self.feature_names == FEATURE_NAMES
        base = {
            "feature_set_version": FEATURE_SET_VERSION,
            "feature_params_hash": feature_params.hash,
            "rules_config_hash": rules_config.hash,
            "thresholds": thresholds.to_dict(),
        }
        base.update(metadata or {})
        base["thresholds"] = thresholds.to_dict()
        self.metadata: dict = base

    # -- properties -------------------------------------------------------------------------------
    @property
    def alert_threshold(self) -> float:
        """The cut-off in force on the 0..100 suspicion score."""
        return float(self.thresholds.alert_threshold)

    def __repr__(self) -> str:
        version = self.metadata.get("model_version")
        return (f"ModelSet({len(self.feature_names)} features, lgbm {self.classifier.best_iteration_} trees, "
                f"alert >= {self.alert_threshold:.3f}" + (f", version {version}" if version else "") + ")")

    # -- feature checks ---------------------------------------------------------------------------
    def check_features(self, names: Iterable[str], *, require_order: bool = True) -> None:
        """Check feature names against the ones seen at fit time.

        Raises
        ------
        FeatureMismatchError
            Listing the features unseen at fit time, the ones seen at fit time yet missing, or
            (``require_order``) the first position where the order differs.
        """
        got = [str(n) for n in names]
        fitted = self.feature_names
        got_set, fit_set = set(got), set(fitted)
        unseen = [n for n in got if n not in fit_set]
        missing = [n for n in fitted if n not in got_set]
        dupes = sorted({n for n in got if got.count(n) > 1}) if len(got) != len(got_set) else []
        if unseen or missing or dupes:
            msg = ["The feature names should match those that were passed during fit "
                   f"(feature set {self.metadata.get('feature_set_version')}, {len(fitted)} features)."]
            if unseen:
                msg.append("Feature names unseen at fit time:\n" + "\n".join(f"- {n}" for n in unseen[:20])
                           + (f"\n- ... and {len(unseen) - 20} more" if len(unseen) > 20 else ""))
            if missing:
                msg.append("Feature names seen at fit time, yet now missing:\n" + "\n".join(f"- {n}" for n in missing[:20])
                           + (f"\n- ... and {len(missing) - 20} more" if len(missing) > 20 else ""))
            if dupes:
                msg.append("Feature names given more than once:\n" + "\n".join(f"- {n}" for n in dupes))
            raise FeatureMismatchError("\n".join(msg))
        if require_order and tuple(got) != fitted:
            pos = next(i for i, (a, b) in enumerate(zip(got, fitted)) if a != b)
            raise FeatureMismatchError(
                "The feature names should be in the same order as they were in fit: "
                f"position {pos} is {got[pos]!r}, expected {fitted[pos]!r}.")

    def _matrix_from_frame(self, features: pd.DataFrame) -> np.ndarray:
        names = [c for c in features.columns if c not in ID_COLUMNS]
        self.check_features(names, require_order=False)
        return np.column_stack([features[n].to_numpy(dtype=np.float64, na_value=np.nan) for n in self.feature_names]) \
            if len(features) else np.zeros((0, len(self.feature_names)))

    def _check_vector(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise FeatureMismatchError(
                f"x must be a float64 array of shape (n, {len(self.feature_names)}) in the model set's "
                f"feature order. Got shape {x.shape} instead.")
        return x

    # -- scoring ----------------------------------------------------------------------------------
    def _components(self, X: np.ndarray, rule_score: np.ndarray) -> ScoreBatch:
        p = self.classifier.predict_one(X) if len(X) else np.zeros(0)
        a = self.detector.anomaly_score(X) if len(X) else np.zeros(0)
        s = self.fusion.score(rule_score, p, a) if len(X) else np.zeros(0)
        return ScoreBatch(suspicion_score=s, rule_score=np.asarray(rule_score, dtype=np.float64), lgbm_probability=p,
                          anomaly_score=a, alert=s >= self.alert_threshold, rules_fired=[], alert_threshold=self.alert_threshold)

    def score_vector(self, x: np.ndarray) -> ScoreBatch:
        """Score rows given as a float64 array of shape (n, len(feature_names)) (the online path).

        No DataFrame is built: for one row this takes well under 2 ms.
        """
        X = self._check_vector(x)
        rules = [self._rule_row(row) for row in X]
        batch = self._components(X, np.array([r.score for r in rules], dtype=np.float64))
        batch.rules_fired = [r.rule_ids for r in rules]
        batch.rules = rules
        return batch

    def _rule_row(self, row: np.ndarray):  # noqa: ANN202 - RuleScore
        if self._catalogue_order:
            return score_transaction_rules(row, self.rules_config)
        return score_transaction_rules(dict(zip(self.feature_names, row.tolist())), self.rules_config)

    def score_frame(self, features: pd.DataFrame, *, reasons: str = "alerts", top_k_reasons: int = 3,
                    chunk_rows: int = 200_000) -> pd.DataFrame:
        """Score a feature frame: one output row per input row, same index.

        Parameters
        ----------
        features : DataFrame
            The model set's feature columns (any order); ``txn_id`` / ``customer_id`` /
            ``timestamp`` may be present and are ignored, except ``txn_id`` which is carried over.
        reasons : {"alerts", "all", "none"}, default="alerts"
            For which rows ``top_reasons`` includes LightGBM contributions (TreeSHAP costs about
            as much as 50 predictions per row); fired rules are always listed.
        top_k_reasons : int, default=3
        chunk_rows : int, default=200_000
            Rows scored at a time (bounds memory on large frames).

        Returns
        -------
        DataFrame
            [txn_id,] suspicion_score, rule_score, lgbm_probability, anomaly_score, alert, top_reasons.
        """
        if reasons not in ("alerts", "all", "none"):
            raise ValueError(f"The 'reasons' parameter of score_frame must be 'alerts', 'all' or 'none'. Got {reasons!r} instead.")
        self.check_features([c for c in features.columns if c not in ID_COLUMNS], require_order=False)
        parts = [self._score_chunk(features.iloc[start:start + chunk_rows], reasons, top_k_reasons)
                 for start in range(0, max(len(features), 1), chunk_rows)]
        return parts[0] if len(parts) == 1 else pd.concat(parts)

    def _score_chunk(self, features: pd.DataFrame, reasons: str, top_k_reasons: int) -> pd.DataFrame:
        X = self._matrix_from_frame(features)
        rules = evaluate_rules(features, self.rules_config)  # reads its columns by name
        batch = self._components(X, rules["rule_score"].to_numpy(dtype=np.float64))
        out = pd.DataFrame(index=features.index)
        if "txn_id" in features.columns:
            out["txn_id"] = features["txn_id"].to_numpy()
        out["suspicion_score"] = batch.suspicion_score
        out["rule_score"] = batch.rule_score
        out["lgbm_probability"] = batch.lgbm_probability
        out["anomaly_score"] = batch.anomaly_score
        out["alert"] = batch.alert
        out["top_reasons"] = self._top_reasons(X, rules["rules_fired"].to_numpy(dtype=object), batch.alert, reasons,
                                               top_k_reasons)
        return out

    def _top_reasons(self, X: np.ndarray, fired: np.ndarray, alert: np.ndarray, reasons: str, k: int) -> np.ndarray:
        """``rule:<id>`` for fired rules (heaviest first), then ``<feature>=<value> (+contribution)``
        for the largest positive TreeSHAP contributions, ``; ``-joined, at most ``k`` items."""
        weights = {rid: float(r.weight) for rid, r in self.rules_config.transaction_rules.rules.items()}
        out = np.empty(len(X), dtype=object)
        for i, f in enumerate(fired):
            ids = [r for r in str(f).split("|") if r] if isinstance(f, str) else []
            ids.sort(key=lambda r: -weights.get(r, 0.0))
            out[i] = [f"rule:{r}" for r in ids[:k]]
        rows = np.flatnonzero(alert) if reasons == "alerts" else (np.arange(len(X)) if reasons == "all" else np.zeros(0, int))
        step = 20_000
        for start in range(0, len(rows), step):
            sel = rows[start:start + step]
            contrib = self.classifier.contributions(X[sel])[:, :-1]
            top = np.argsort(-contrib, axis=1)[:, :k]
            for r, i in enumerate(sel):
                items = out[i]
                for j in top[r]:
                    if len(items) >= k or contrib[r, j] <= 0:
                        break
                    items.append(f"{self.feature_names[j]}={_fmt(X[i, j])} (+{contrib[r, j]:.2f})")
        return np.array(["; ".join(items) for items in out], dtype=object)

    # -- explanation ------------------------------------------------------------------------------
    def _one_row(self, x: np.ndarray, lang: str, what: str) -> np.ndarray:
        if lang not in ("en", "zh"):
            raise ValueError(f"The 'lang' parameter of {what} must be 'en' or 'zh'. Got {lang!r} instead.")
        X = self._check_vector(x)
        if len(X) != 1:
            raise ValueError(f"{what} explains one row. Got {len(X)} rows instead.")
        return X

    def explain_vector(self, x: np.ndarray, top_k: int = 8, lang: str = "en") -> Explanation:
        """Explain one row (float64, shape (n_features,) or (1, n_features)).

        LightGBM TreeSHAP contributions (``booster.predict(pred_contrib=True)``) with the expected
        value, the anomaly attribution per feature, every fired rule with its conditions, and the
        fusion's terms. ``lang`` is ``"en"`` or ``"zh"`` for the texts. To score and explain a row,
        :meth:`score_and_explain` does both in one pass.
        """
        X = self._one_row(x, lang, "explain_vector")
        row = X[0]
        rule = self._rule_row(row)
        p = float(self.classifier.predict_one(X)[0])
        a, attribution = self.detector.score_and_attribution(row)
        return self._explanation(row, rule, p, a, attribution, top_k, lang)

    def score_and_explain(self, x: np.ndarray, top_k: int = 8, lang: str = "en") -> tuple[ScoreBatch, Explanation]:
        """Score and explain one row in one pass: ``(score_vector(x), explain_vector(x, top_k, lang))``.

        The rules, the LightGBM probability and the anomaly score (with its attribution) are computed
        once and shared; both results are exactly those of the two separate calls. This is what the
        service calls for an explained decision.
        """
        X = self._one_row(x, lang, "score_and_explain")
        row = X[0]
        rule = self._rule_row(row)
        p = self.classifier.predict_one(X)
        a, attribution = self.detector.score_and_attribution(row)
        rule_score = np.array([rule.score], dtype=np.float64)
        anomaly = np.array([a], dtype=np.float64)
        s = self.fusion.score(rule_score, p, anomaly)  # as score_vector (the explanation's own score is score_one's)
        batch = ScoreBatch(suspicion_score=s, rule_score=rule_score, lgbm_probability=p, anomaly_score=anomaly,
                           alert=s >= self.alert_threshold, rules_fired=[rule.rule_ids],
                           alert_threshold=self.alert_threshold, rules=[rule])
        return batch, self._explanation(row, rule, float(p[0]), a, attribution, top_k, lang)

    def _explanation(self, row: np.ndarray, rule: Any, p: float, a: float, attribution: list[tuple[str, float, float]],
                     top_k: int, lang: str) -> Explanation:
        score, terms = self.fusion.score_one(rule.score, p, a)
        contrib = self.classifier.contributions_one(row)
        values = contrib[:-1]
        order = np.argsort(-np.abs(values), kind="stable")[:top_k]
        names = self.feature_names
        # a feature on no decision path gets exactly 0; one whose path terms cancel gets rounding noise
        # (~1e-17 from the compiled TreeSHAP): neither moved the score, so neither is listed
        negligible = 1e-9 * max(1.0, float(np.abs(values).max(initial=0.0)))
        lgbm = [FeatureContribution(names[j], feature_label(names[j], lang), _num(v), c, "raises" if c > 0 else "lowers")
                for j, v, c in zip(order.tolist(), row[order].tolist(), values[order].tolist()) if abs(c) > negligible]
        anomaly = [AnomalyAttribution(name, feature_label(name, lang), _num(v), share)
                   for name, v, share in attribution[:top_k]]
        texts = explain_rules(rule, self.rules_config, lang=lang)
        rules_cfg = self.rules_config.transaction_rules.rules
        fired = []
        for i, f in enumerate(rule.fired):
            cfg = rules_cfg.get(f.rule_id)
            name = (cfg.name.zh if lang == "zh" else cfg.name.en) if cfg is not None else f.rule_id
            conds = [{"feature": c.feature, "op": c.op, "threshold": float(c.threshold), "value": _num(c.value)}
                     for c in f.conditions]
            fired.append(RuleReason(f.rule_id, name, float(f.weight), conds, texts[i + 1] if i + 1 < len(texts) else name))
        return Explanation(
            suspicion_score=float(score), alert=bool(score >= self.alert_threshold), alert_threshold=self.alert_threshold,
            components={"rule_score": float(rule.score), "lgbm_probability": p, "anomaly_score": a},
            fusion_intercept=float(self.fusion.intercept_), fusion_terms=dict(zip(COMPONENTS, (float(t) for t in terms))),
            lgbm_expected_value=float(contrib[-1]), lgbm_contributions=lgbm, anomaly_attribution=anomaly,
            rules_fired=fired, rules_summary=texts[:1], lang=lang,
            model={k: self.metadata.get(k) for k in ("registered_model_name", "model_version", "feature_set_version",
                                                     "rules_config_hash", "trained_at")},
        )

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the model set to the directory ``path`` (created; replaced if it is a model set)."""
        target = Path(path)
        if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / _MANIFEST).is_file())):
            raise ModelSetError(f"Cannot save a model set to {target}: it exists and is not a model set directory.")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            (staging / "lgbm.txt").write_text(self.classifier.to_text(), encoding="utf-8")
            detector_spec = self.detector.to_dir(staging)
            rules_yaml = ("# Rule configuration of this model set (validated content; sha256 "
                          f"{self.rules_config.hash}).\n") + yaml.safe_dump(
                self.rules_config.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
            (staging / "rules.yaml").write_text(rules_yaml, encoding="utf-8")
            params_yaml = f"# Feature parameters of this model set (hash {self.feature_params.hash}).\n" + yaml.safe_dump(
                self.feature_params.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
            (staging / "feature_params.yaml").write_text(params_yaml, encoding="utf-8")
            if self.reference is not None:
                (staging / REFERENCE_FILE).write_text(json.dumps(self.reference.to_dict()) + "\n", encoding="utf-8")
            files = sorted(p.name for p in staging.iterdir())
            manifest = {
                "format": "amlscore-model-set",
                "format_version": FORMAT_VERSION,
                "feature_names": list(self.feature_names),
                "metadata": json_safe(self.metadata),
                "thresholds": self.thresholds.to_dict(),
                "fusion": self.fusion.to_dict(),
                "classifier": self.classifier.describe(),
                "detector": detector_spec,
                "files": {name: _sha256(staging / name) for name in files},
            }
            (staging / _MANIFEST).write_text(json.dumps(json_safe(manifest), indent=2, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> "ModelSet":
        """Read a model set written by :meth:`save`, checking every file's sha256 and the config hashes.

        Raises
        ------
        ModelSetError
            If the directory or a file is missing, a file was altered, or the format is unknown.
        """
        folder = Path(path)
        manifest_path = folder / _MANIFEST
        if not manifest_path.is_file():
            # the MLflow pyfunc layout: <model>/artifacts/model_set/
            nested = folder / "artifacts" / "model_set" / _MANIFEST
            if nested.is_file():
                folder, manifest_path = nested.parent, nested
            else:
                raise ModelSetError(f"{folder} is not a model set: it has no {_MANIFEST}.")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != "amlscore-model-set" or manifest.get("format_version") != FORMAT_VERSION:
            raise ModelSetError(f"{folder} holds model set format {manifest.get('format_version')!r}; "
                                f"this code reads format {FORMAT_VERSION}.")
        for name, digest in manifest["files"].items():
            p = folder / name
            if not p.is_file():
                raise ModelSetError(f"The model set in {folder} is incomplete: {name} is missing.")
            if _sha256(p) != digest:
                raise ModelSetError(f"The model set in {folder} was altered: {name} does not match its recorded sha256.")
        metadata = manifest["metadata"]
        rules_config = load_rules_config(folder / "rules.yaml")
        if rules_config.hash != metadata["rules_config_hash"]:
            raise ModelSetError(f"rules.yaml in {folder} has hash {rules_config.short_hash}, "
                                f"the model set records {metadata['rules_config_hash'][:12]}.")
        feature_params = load_feature_params(folder / "feature_params.yaml")
        if feature_params.hash != metadata["feature_params_hash"]:
            raise ModelSetError(f"feature_params.yaml in {folder} has hash {feature_params.hash}, "
                                f"the model set records {metadata['feature_params_hash']}.")
        classifier = SuspicionClassifier.from_text((folder / "lgbm.txt").read_text(encoding="utf-8"), manifest["classifier"])
        detector = _load_detector(folder, manifest["detector"])
        fusion = SuspicionFusion.from_dict(manifest["fusion"])
        thresholds = AlertThresholds(**manifest["thresholds"])
        reference = None
        if REFERENCE_FILE in manifest["files"]:
            try:
                reference = ModelReference.from_dict(json.loads((folder / REFERENCE_FILE).read_text(encoding="utf-8")))
            except (ValueError, KeyError) as exc:
                raise ModelSetError(f"{REFERENCE_FILE} in {folder} cannot be read: {exc}") from None
        return cls(classifier, detector, fusion, thresholds, rules_config, feature_params,
                   feature_names=manifest["feature_names"], metadata=metadata, reference=reference)


def _load_detector(folder: Path, spec: dict) -> BehaviourAnomalyDetector:
    """The anomaly detector of the manifest's ``detector`` entry, of the kind it names."""
    kind = spec.get("kind", BehaviourAnomalyDetector.KIND)
    if kind not in _DETECTORS:
        raise ModelSetError(f"The model set in {folder} holds an anomaly detector of kind {kind!r}; this code reads "
                            f"{', '.join(repr(k) for k in _DETECTORS)}.")
    try:
        return _DETECTORS[kind].from_dir(folder, spec)
    except (KeyError, ValueError) as exc:
        raise ModelSetError(f"The anomaly detector ({kind}) in {folder} cannot be read: {exc}") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fmt(v: float) -> str:
    if v != v:
        return "NaN"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}"
