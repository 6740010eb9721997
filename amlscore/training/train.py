"""Training: from a data folder in the contract to a fitted, evaluated model set.

Stages (each a small function; :func:`train` runs them and returns a :class:`TrainResult`;
:func:`amlscore.training.pipeline.train_and_register` then logs and registers it with :mod:`amlscore.training.tracking`):

1. **Prepare** (:func:`prepare`): load and validate the folder, merge analysts' feedback
   (:mod:`amlscore.training.feedback`), build the behavioural features (:mod:`amlscore.features.offline`), evaluate
   the transaction rules, split by time (:mod:`amlscore.training.split`) and derive each period's labels
   from the reports filed before that period's label cut-off (:mod:`amlscore.training.labels`).
2. **Fit** (:func:`fit_model_set`), on train and validation only:

   a. *Class imbalance.* Every suspicious and every confirmed ``not_suspicious`` row is kept;
      presumed-normal (unlabelled) rows are down-sampled to at most ``max_train_negatives``
      (seeded). The validation set used for early stopping keeps its positives and samples its
      unlabelled rows the same way, each sampled row weighing ``1 / rate`` so that its PR-AUC
      estimates the full period's.
   b. *Period-report refinement.* A period report labels all of a customer's transactions in the
      period, though usually only part of them is the laundering. An *instance model* (LightGBM
      trained on transaction-report positives only) ranks the rows of each period report, and only
      the top ``bag_keep_share`` of each report's rows are kept as positives; the rest are left out
      of training (neither positive nor negative). Validation bags are refined the same way. With
      no transaction-report positive, or ``bag_keep_share=1``, nothing is refined.
   c. *LightGBM* (:class:`amlscore.models.supervised.SuspicionClassifier`) on the refined labels,
      early-stopped on the validation PR-AUC.
   d. *IsolationForest* (:class:`amlscore.models.anomaly.BehaviourAnomalyDetector`) on presumed-normal
      training history: unlabelled rows of customers without any suspicious report (before the
      training label cut-off), at most ``anomaly_fit_rows`` of them. With ``anomaly_model="peer_group"``
      the features are first measured against each row's peer group
      (:class:`amlscore.models.peer_anomaly.PeerGroupAnomalyDetector`).
   e. *Fusion* (:class:`amlscore.models.fusion.SuspicionFusion`): monotone logistic fusion of rule
      score, LightGBM probability and anomaly score, calibrated as a probability. By default
      (``fusion_fit="oof"``) it is fitted on out-of-fold LightGBM probabilities over the training
      and validation periods (:mod:`amlscore.training.few_labels`), so it sees every labelled
      transaction rather than the validation period's few; ``fusion_fit="valid"`` fits it on the
      validation period alone. Positives are weighted so that every reported customer counts the
      same (its rows' weights sum to the mean count per customer); dropped period-report rows weigh 0.
   f. *Thresholds* (:func:`amlscore.models.fusion.choose_thresholds`) on the validation fused scores: for a
      target alert rate and for a target precision.
   g. *Reference* (:func:`amlscore.models.reference.build_reference`) of every feature and score on the
      validation period, stored with the model set for drift monitoring.
3. **Evaluate** (:func:`evaluate_period`) the model set on the test period, with ground truth
   when the folder has it, else the reports (:mod:`amlscore.training.evaluate`).

Every random choice takes ``seed``.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.contract import report_data_warnings
from amlscore.contract.load import Dataset, load_dataset
from amlscore.features.catalogue import FEATURE_NAMES, FEATURE_SET_VERSION
from amlscore.features.feature_folder import read_feature_folder
from amlscore.features.offline import build_features
from amlscore.features.params import FeatureParams, load_feature_params
from amlscore.models.anomaly import BehaviourAnomalyDetector
from amlscore.models.peer_anomaly import PeerGroupAnomalyDetector, load_peer_anomaly_config
from amlscore.models.fusion import AlertThresholds, SuspicionFusion, choose_thresholds
from amlscore.models.model_set import ModelSet
from amlscore.models.reference import ModelReference, build_reference
from amlscore.models.rules import RulesConfig, evaluate_rules, load_rules_config
from amlscore.models.supervised import SuspicionClassifier
from amlscore.training.evaluate import (
    EvaluationReport,
    evaluate_scores,
    evaluation_labels,
    read_ground_truth,
    score_metrics,
    slice_labels,
)
from amlscore.training.feedback import feedback_files, merge_feedback
from amlscore.training.few_labels import FusionSample, anomaly_evidence, explain_fusion, oof_fusion_sample
from amlscore.training.labels import bank_days, derive_labels, reported_customers
from amlscore.training.result import (
    REGISTERED_MODEL_NAME,
    Prepared,
    ProgressFn,
    TrainConfig,
    TrainResult,
    feature_matrix,
    git_version,
    no_progress,
)
from amlscore.training.split import make_split

__all__ = ["Prepared", "TrainConfig", "TrainResult", "evaluate_period", "fit_model_set", "prepare", "train",
           "git_version"]

_noop = no_progress


# ------------------------------------------------------------------------------------------------
# 1. Prepare
# ------------------------------------------------------------------------------------------------


def prepare(config: TrainConfig, progress: ProgressFn = _noop, dataset: Dataset | None = None) -> Prepared:
    """Load the data folder (or use ``dataset``), merge feedback, build features, rules, split and labels."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    progress("loading data", 0.0)
    if dataset is None:
        dataset = load_dataset(config.data)
        report_data_warnings(dataset)
    loaded_fingerprint = dataset.fingerprint
    dataset, n_feedback = merge_feedback(dataset, feedback_files(config.data, config.feedback))
    rules_config = load_rules_config(config.rules_config_path)
    params = load_feature_params(config.feature_params_path)
    timings["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if config.features is not None:  # computed by another engine (Spark) for this data: checked, not recomputed
        features = read_feature_folder(config.features, dataset, params, data_fingerprint=loaded_fingerprint)
    else:
        features = build_features(dataset, params, progress=lambda s, f: progress("features", 0.05 + 0.45 * f))
    txns = dataset.transactions
    if not np.array_equal(features["txn_id"].astype(str).to_numpy(dtype=object),
                          txns["txn_id"].astype(str).to_numpy(dtype=object)):  # pragma: no cover - defensive
        txns = txns.set_index(txns["txn_id"].astype(str)).loc[features["txn_id"].astype(str)].reset_index(drop=True)
        dataset = Dataset(dataset.customers, txns, dataset.reports, dataset.source, dataset.fingerprint, dataset.warnings)
    timings["features"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    progress("rules and labels", 0.5)
    rule_score = rule_scores(features, rules_config)
    offset = params.bank_utc_offset_hours
    split = make_split(txns["timestamp"], fractions=config.fractions, valid_start=config.valid_start,
                       test_start=config.test_start, cutoff=config.cutoff, utc_offset_hours=offset)
    codes = split.codes(txns["timestamp"])
    labels = {name: derive_labels(txns, dataset.reports, cutoff=split.label_cutoff(name), utc_offset_hours=offset)
              for name in ("train", "valid", "test")}
    timings["rules_labels"] = time.perf_counter() - t0
    return Prepared(dataset, features, rule_score, split, codes, labels, read_ground_truth(dataset.source),
                    rules_config, params, n_feedback, timings)


# ------------------------------------------------------------------------------------------------
# 2. Fit
# ------------------------------------------------------------------------------------------------


def rule_scores(features: pd.DataFrame, rules_config: RulesConfig) -> np.ndarray:
    """The transaction rules' score of every feature row."""
    return evaluate_rules(features, rules_config)["rule_score"].to_numpy(dtype=np.float64)


def features_and_rules(dataset: Dataset, params: FeatureParams,
                       rules_config: RulesConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """The feature rows of ``dataset`` (its reports feed the reported-neighbour features) and their rule scores."""
    features = build_features(dataset, params)
    return features, rule_scores(features, rules_config)


def _sample(rows: np.ndarray, cap: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """At most ``cap`` of ``rows`` (sorted), and the sampling rate."""
    if len(rows) <= cap:
        return rows, 1.0
    return np.sort(rng.choice(rows, size=cap, replace=False)), cap / len(rows)


def _refine_bags(lab: pd.DataFrame, rows: np.ndarray, scores: np.ndarray, keep_share: float) -> np.ndarray:
    """Among ``rows`` (period-only positives), those in the top ``keep_share`` of their bag by score."""
    if len(rows) == 0:
        return rows
    frame = pd.DataFrame({"bag": lab["bag"].to_numpy()[rows], "s": scores})
    pct = frame.groupby("bag")["s"].rank(method="first", ascending=False, pct=True).to_numpy()
    return rows[pct <= keep_share + 1e-12]


def fit_model_set(prep: Prepared, config: TrainConfig, progress: ProgressFn = _noop) -> tuple[ModelSet, dict[str, Any], dict[str, float]]:
    """Fit LightGBM, IsolationForest, fusion and thresholds on the train and validation periods.

    Returns
    -------
    (ModelSet, diagnostics, timings)
    """
    rng = np.random.default_rng(config.seed)
    timings: dict[str, float] = {}
    feats = prep.features
    codes = prep.split_codes
    lab_tr, lab_va = prep.labels["train"], prep.labels["valid"]
    status_tr = lab_tr["status"].astype(str).to_numpy(dtype=object)
    status_va = lab_va["status"].astype(str).to_numpy(dtype=object)
    src_tr = lab_tr["source"].to_numpy(dtype=object)
    src_va = lab_va["source"].to_numpy(dtype=object)
    tr, va = codes == 0, codes == 1

    pos_txn_tr = np.flatnonzero(tr & (status_tr == "suspicious") & (src_tr == "transaction"))
    pos_bag_tr = np.flatnonzero(tr & (status_tr == "suspicious") & (src_tr == "period"))
    neg_conf_tr = np.flatnonzero(tr & (status_tr == "not_suspicious"))
    unl_tr, rate_tr = _sample(np.flatnonzero(tr & (status_tr == "unlabelled")), config.max_train_negatives, rng)
    pos_txn_va = np.flatnonzero(va & (status_va == "suspicious") & (src_va == "transaction"))
    pos_bag_va = np.flatnonzero(va & (status_va == "suspicious") & (src_va == "period"))
    neg_conf_va = np.flatnonzero(va & (status_va == "not_suspicious"))
    unl_va, rate_va = _sample(np.flatnonzero(va & (status_va == "unlabelled")), config.max_valid_negatives, rng)
    if len(pos_txn_tr) + len(pos_bag_tr) == 0:
        raise AmlError(f"No suspicious report labels a training transaction (reports filed before "
                       f"{prep.split.label_cutoff('train')}); cannot train the supervised model.")
    if len(pos_txn_va) + len(pos_bag_va) == 0:
        raise AmlError(f"No suspicious report labels a validation transaction (reports filed before "
                       f"{prep.split.label_cutoff('valid')}); cannot early-stop or fit the fusion.")
    lgbm_params = {"random_state": config.seed, "n_jobs": config.n_jobs, **config.lgbm}
    neg_tr = np.concatenate([neg_conf_tr, unl_tr])
    w_neg_va = np.concatenate([np.ones(len(neg_conf_va)), np.full(len(unl_va), 1.0 / rate_va)])
    neg_va = np.concatenate([neg_conf_va, unl_va])

    # b. refine period-report positives with an instance model trained on transaction-report positives
    t0 = time.perf_counter()
    keep_bag_tr, keep_bag_va = pos_bag_tr, pos_bag_va
    refine = config.bag_keep_share < 1 and len(pos_txn_tr) > 0 and len(pos_txn_va) > 0 and (len(pos_bag_tr) or len(pos_bag_va))
    instance_iter = 0
    if refine:
        progress("instance model (period-report refinement)", 0.55)
        rows = np.concatenate([pos_txn_tr, neg_tr])
        y = np.r_[np.ones(len(pos_txn_tr)), np.zeros(len(neg_tr))]
        rows_v = np.concatenate([pos_txn_va, neg_va])
        y_v = np.r_[np.ones(len(pos_txn_va)), np.zeros(len(neg_va))]
        w_v = np.r_[np.ones(len(pos_txn_va)), w_neg_va]
        # the instance model only ranks rows within a report: a shorter, faster fit is enough
        inst = SuspicionClassifier(**{**lgbm_params, "learning_rate": 0.1,
                                      "n_estimators": min(300, lgbm_params.get("n_estimators", 300)),
                                      "min_rounds": min(20, lgbm_params.get("min_rounds", 20)),
                                      "early_stopping_rounds": min(30, lgbm_params.get("early_stopping_rounds", 30))})
        inst.fit(feature_matrix(feats, rows), y, eval_set=(feature_matrix(feats, rows_v), y_v, w_v))
        instance_iter = inst.best_iteration_
        bag_rows = np.concatenate([pos_bag_tr, pos_bag_va])
        s = inst.predict_proba(feature_matrix(feats, bag_rows))[:, 1] if len(bag_rows) else np.zeros(0)
        keep_bag_tr = _refine_bags(lab_tr, pos_bag_tr, s[: len(pos_bag_tr)], config.bag_keep_share)
        keep_bag_va = _refine_bags(lab_va, pos_bag_va, s[len(pos_bag_tr):], config.bag_keep_share)
    timings["instance_model"] = time.perf_counter() - t0

    # c. LightGBM on the refined labels
    t0 = time.perf_counter()
    progress("LightGBM", 0.62)
    pos_tr = np.concatenate([pos_txn_tr, keep_bag_tr])
    rows = np.concatenate([pos_tr, neg_tr])
    y = np.r_[np.ones(len(pos_tr)), np.zeros(len(neg_tr))]
    pos_va = np.concatenate([pos_txn_va, keep_bag_va])
    rows_v = np.concatenate([pos_va, neg_va])
    y_v = np.r_[np.ones(len(pos_va)), np.zeros(len(neg_va))]
    w_v = np.r_[np.ones(len(pos_va)), w_neg_va]
    clf = SuspicionClassifier(**lgbm_params)
    clf.fit(feature_matrix(feats, rows), y, eval_set=(feature_matrix(feats, rows_v), y_v, w_v))
    timings["lgbm"] = time.perf_counter() - t0

    # d. IsolationForest on presumed-normal training history
    t0 = time.perf_counter()
    progress("IsolationForest", 0.75)
    flagged = reported_customers(prep.dataset.reports, prep.split.label_cutoff("train"))
    clean = tr & (status_tr == "unlabelled") & ~prep.dataset.transactions["customer_id"].astype(str).isin(flagged).to_numpy()
    normal_rows, _ = _sample(np.flatnonzero(clean), config.anomaly_fit_rows, rng)
    det = anomaly_detector(config)
    det.fit(feature_matrix(feats, normal_rows))
    timings["iforest"] = time.perf_counter() - t0

    # e. fusion on the whole validation period (refined labels: dropped bag rows weigh 0)
    t0 = time.perf_counter()
    progress("fusion and thresholds", 0.8)
    va_rows = np.flatnonzero(va)
    Xv = feature_matrix(feats, va_rows)
    p_v = clf.predict_proba(Xv)[:, 1]
    a_v = det.anomaly_score(Xv)
    del Xv
    r_v = prep.rule_score[va_rows]
    y_fuse = np.zeros(len(feats), dtype=np.float64)
    y_fuse[pos_va] = 1.0
    w_fuse = np.ones(len(feats))
    if config.fusion_balance and len(pos_va):
        cust = prep.dataset.transactions["customer_id"].astype(str).to_numpy(dtype=object)[pos_va]
        counts = pd.Series(cust).value_counts()
        w_fuse[pos_va] = counts.mean() / counts.reindex(cust).to_numpy()
    w_fuse[np.setdiff1d(pos_bag_va, keep_bag_va)] = 0.0
    fusion_info: dict[str, Any] = {"fit": config.fusion_fit, "pu": config.pu}
    n_reported = len(reported_customers(prep.dataset.reports, prep.split.label_cutoff("valid")))
    if config.fusion_fit == "oof":
        sample, pu_model, population = _oof_sample(prep, config, rng, det, lgbm_params, int(clf.best_iteration_),
                                       np.concatenate([pos_txn_tr, keep_bag_tr]), keep_bag_va)
        evidence = anomaly_evidence(sample.anomaly_score, sample.y, sample.weight * population)
        fusion = fusion_of(config, evidence, n_reported).fit(sample.rule_score, sample.lgbm_probability,
                                                 sample.anomaly_score, sample.y, sample_weight=sample.weight)
        fusion_info.update(folds=sample.folds, rows=int(len(sample.rows)), positives=sample.positives,
                           components=explain_fusion(fusion, sample), **sample.pu)
        if pu_model is not None:
            # served: the model refitted on train + valid. The thresholds and the drift reference below stay
            # on ``p_v``, the train-only model's held-out probabilities of the validation period: the refitted
            # model has seen those rows, and thresholds chosen on its in-sample scores would sit too high
            # (no alert at all on a later period of a small bank).
            clf = pu_model
    else:
        evidence = anomaly_evidence(a_v, y_fuse[va_rows], w_fuse[va_rows])
        fusion = fusion_of(config, evidence, n_reported).fit(r_v, p_v, a_v, y_fuse[va_rows], sample_weight=w_fuse[va_rows])
        fusion_info.update(rows=int(len(va_rows)), positives=int((w_fuse[pos_va] > 0).sum()))
    fusion_info["anomaly_floor"] = floor_decision(config, evidence, n_reported)
    s_v = fusion.score(r_v, p_v, a_v)
    if config.fusion_fit == "oof":
        # the thresholds on the validation period's out-of-fold fused scores: the served LightGBM may be
        # refitted on train + valid (its own scores of those rows are in-sample), and the fold models are of
        # its kind (PU weighting included), so their scores are calibrated as its scores of later data are
        in_va = va[sample.rows]
        s_oof = fusion.score(sample.rule_score[in_va], sample.lgbm_probability[in_va], sample.anomaly_score[in_va])
        thresholds: AlertThresholds = choose_thresholds(
            s_oof, sample.y[in_va], target_alert_rate=config.target_alert_rate,
            target_precision=config.target_precision, policy=config.alert_policy, sample_weight=population[in_va])
    else:
        thresholds = choose_thresholds(
            s_v, y_fuse[va_rows], target_alert_rate=config.target_alert_rate, target_precision=config.target_precision,
            policy=config.alert_policy, sample_weight=w_fuse[va_rows])
    timings["fusion"] = time.perf_counter() - t0

    metadata = {
        "feature_set_version": FEATURE_SET_VERSION,
        "feature_params_hash": prep.feature_params.hash,
        "rules_config_hash": prep.rules_config.hash,
        "data_fingerprint": prep.dataset.fingerprint,
        "data_source": str(Path(prep.dataset.source).resolve()) if prep.dataset.source else None,
        "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": config.seed,
        "code_version": git_version(),
        "registered_model_name": REGISTERED_MODEL_NAME,
        "model_version": None,
        "split": prep.split.describe(),
    }
    t0 = time.perf_counter()
    reference = training_reference(prep, va_rows, {"suspicion_score": s_v, "rule_score": r_v, "lgbm_probability": p_v,
                                                   "anomaly_score": a_v}, thresholds.alert_threshold)
    timings["reference"] = time.perf_counter() - t0
    model_set = ModelSet(clf, det, fusion, thresholds, prep.rules_config, prep.feature_params, FEATURE_NAMES, metadata,
                         reference=reference)
    raw_va = (status_va == "suspicious")[va_rows].astype(int)
    valid_metrics = {
        "valid_pr_auc": score_metrics(raw_va, s_v)["pr_auc"],
        "valid_lgbm_pr_auc": score_metrics(raw_va, p_v)["pr_auc"],
        "valid_rules_pr_auc": score_metrics(raw_va, r_v)["pr_auc"],
        "valid_anomaly_pr_auc": score_metrics(raw_va, a_v)["pr_auc"],
        "valid_lgbm_best_pr_auc_refined": float(clf.best_score_) if clf.best_score_ is not None else float("nan"),
    }
    diagnostics = {
        "rows_train": int(tr.sum()), "rows_valid": int(va.sum()), "rows_test": int((codes == 2).sum()),
        "train_positives_transaction": int(len(pos_txn_tr)), "train_positives_period": int(len(pos_bag_tr)),
        "train_positives_period_kept": int(len(keep_bag_tr)), "train_confirmed_negatives": int(len(neg_conf_tr)),
        "train_unlabelled_sampled": int(len(unl_tr)), "train_unlabelled_rate": float(rate_tr),
        "valid_positives_transaction": int(len(pos_txn_va)), "valid_positives_period": int(len(pos_bag_va)),
        "valid_positives_period_kept": int(len(keep_bag_va)), "valid_unlabelled_rate": float(rate_va),
        "instance_model_trees": int(instance_iter), "lgbm_trees": int(clf.best_iteration_),
        "anomaly_fit_rows": int(len(normal_rows)), "anomaly_model": det.KIND, "anomaly": det.describe(),
        "fusion_coef": [float(c) for c in fusion.coef_],
        "fusion_intercept": float(fusion.intercept_), "fusion": fusion_info, "valid_metrics": valid_metrics,
    }
    return model_set, diagnostics, timings


def floor_decision(config: TrainConfig, evidence: float, reported: int = 0) -> dict[str, Any]:
    """Whether the anomaly score's floor applies: configured; (with a gate) the anomaly score alone ranks
    the bank's reported rows with a ROC-AUC ``evidence`` at or above ``config.fusion_anomaly_gate``; and
    fewer than ``config.fusion_anomaly_max_reported`` customers are ``reported``."""
    floor, gate, most = float(config.fusion_anomaly_floor), config.fusion_anomaly_gate, config.fusion_anomaly_max_reported
    applied = (floor > 0 and (gate is None or (np.isfinite(evidence) and evidence >= gate))
               and (most is None or reported < most))
    return {"floor": floor, "gate": gate, "evidence_roc_auc": float(evidence), "max_reported": most,
            "reported_customers": int(reported), "applied": bool(applied)}


def fusion_of(config: TrainConfig, evidence: float = float("nan"), reported: int = 0) -> SuspicionFusion:
    """The unfitted fusion: ``config.fusion_c``, and the anomaly score's floor ``config.fusion_anomaly_floor``
    where :func:`floor_decision` applies it (``evidence``: the anomaly score's ROC-AUC on the reports;
    ``reported``: customers with a suspicious report at the validation cut-off)."""
    decision = floor_decision(config, evidence, reported)
    floor = decision["floor"] if decision["applied"] else 0.0
    return SuspicionFusion(C=config.fusion_c, min_log_odds_per_sd=(0.0, 0.0, floor) if floor > 0 else None)


def anomaly_detector(config: TrainConfig) -> BehaviourAnomalyDetector:
    """The unfitted anomaly component ``config.anomaly_model`` names: bank-wide, or against peer groups with
    the configuration file's parameters (``config.anomaly`` overrides either)."""
    params = {"random_state": config.seed, **config.anomaly}
    if config.anomaly_model == "peer_group":
        return PeerGroupAnomalyDetector(**{**load_peer_anomaly_config(config.anomaly_peer_config).estimator_params(),
                                           **params})
    return BehaviourAnomalyDetector(**params)


def training_reference(prep: Prepared, rows: np.ndarray, scores: dict[str, np.ndarray],
                       alert_threshold: float) -> ModelReference:
    """The drift reference of ``rows`` (the validation period): every feature, the scores, alert rates by
    channel and customer type."""
    feats = prep.features
    columns = {name: feats[name].to_numpy(dtype=np.float64, na_value=np.nan)[rows] for name in FEATURE_NAMES}
    columns.update({name: np.asarray(v, dtype=np.float64) for name, v in scores.items()})
    txns = prep.dataset.transactions.iloc[rows]
    ctype = prep.dataset.customers.set_index(prep.dataset.customers["customer_id"].astype(str))["customer_type"]
    segments = {"channel": txns["channel"].astype(str).to_numpy(dtype=object),
                "customer_type": ctype.astype(str).reindex(txns["customer_id"].astype(str)).fillna("unknown")
                .to_numpy(dtype=object)}
    day = bank_days(txns["timestamp"], prep.feature_params.bank_utc_offset_hours)
    period = f"{pd.Timestamp(day.min()).date()}..{pd.Timestamp(day.max()).date()}" if len(day) else ""
    return build_reference(columns, scores["suspicion_score"] >= alert_threshold, segments, period=period,
                           alert_threshold=alert_threshold)


def _oof_sample(prep: Prepared, config: TrainConfig, rng: np.random.Generator, det: BehaviourAnomalyDetector,
                lgbm_params: dict[str, Any], n_trees: int, pos_tr: np.ndarray,
                keep_bag_va: np.ndarray) -> tuple[FusionSample, SuspicionClassifier | None]:
    """The fusion's rows over train + valid with out-of-fold LightGBM probabilities (:mod:`few_labels`).

    Labels are those at the validation cut-off (reports filed before the test period). Positives:
    the training positives as LightGBM saw them, and the validation period's transaction-report
    positives and kept period-report rows; period-report rows the refinement dropped stay out.
    """
    lab = prep.labels["valid"]
    status = lab["status"].astype(str).to_numpy(dtype=object)
    source = lab["source"].to_numpy(dtype=object)
    codes = prep.split_codes
    tv = (codes == 0) | (codes == 1)
    pos_txn = np.flatnonzero(tv & (status == "suspicious") & (source == "transaction"))
    positives = np.union1d(np.union1d(pos_txn, pos_tr), keep_bag_va)
    confirmed = np.flatnonzero(tv & (status == "not_suspicious"))
    confirmed = np.setdiff1d(confirmed, positives)
    unl_all = np.setdiff1d(np.flatnonzero(tv & (status == "unlabelled")), positives)
    unl, rate = _sample(unl_all, config.max_train_negatives, rng)
    customers = prep.dataset.transactions["customer_id"].astype(str).to_numpy(dtype=object)
    sample, refitted = oof_fusion_sample(prep.features, prep.rule_score, det, positives=positives, confirmed_negatives=confirmed,
                             unlabelled=unl, unlabelled_rate=rate, customers=customers, lgbm_params=lgbm_params,
                             n_trees=n_trees, folds=config.fusion_folds, balance=config.fusion_balance,
                             pu=config.pu == "elkan_noto", pu_scale=config.pu_weight_scale, refit=config.fusion_refit or config.pu != "none")
    population = np.where(np.isin(sample.rows, unl), 1.0 / rate, 1.0)  # an unlabelled row stands for 1/rate
    return sample, refitted, population


# ------------------------------------------------------------------------------------------------
# 3. Evaluate
# ------------------------------------------------------------------------------------------------


def high_risk_industries(config: RulesConfig, min_score: int = 4) -> set[str]:
    """Industries the rule configuration scores at least ``min_score`` (of 5) for industry risk."""
    cats = config.sub_items["industry_risk"].categories or {}
    return {k for k, v in cats.items() if v >= min_score}


def evaluate_period(model_set: ModelSet, prep: Prepared, rows: np.ndarray, *, period: str,
                    label_cutoff: Any = None) -> tuple[EvaluationReport, pd.DataFrame]:
    """Score ``rows`` of a prepared data set with ``model_set`` and evaluate them.

    Returns
    -------
    (EvaluationReport, DataFrame)
        The report and the score frame (``txn_id`` + the score columns) of the rows.
    """
    feats = prep.features.iloc[rows]
    scores = model_set.score_frame(feats, reasons="none")
    txns = prep.dataset.transactions.iloc[rows]
    labels = evaluation_labels(feats["txn_id"], prep.dataset.transactions, prep.dataset.reports, prep.ground_truth,
                               cutoff=label_cutoff, utc_offset_hours=prep.feature_params.bank_utc_offset_hours)
    slices = slice_labels(txns, prep.dataset.customers, high_risk_industries(model_set.rules_config))
    report = evaluate_scores(scores, labels, alert_threshold=model_set.alert_threshold, slices=slices, period=period)
    return report, scores


# ------------------------------------------------------------------------------------------------
# All together
# ------------------------------------------------------------------------------------------------


def train(config: TrainConfig, progress: ProgressFn = _noop, *, dataset: Dataset | None = None) -> TrainResult:
    """Prepare, fit and evaluate on the test period; nothing is logged (see
    :func:`amlscore.training.pipeline.train_and_register`)."""
    t_all = time.perf_counter()
    prep = prepare(config, progress, dataset=dataset)
    model_set, diagnostics, fit_timings = fit_model_set(prep, config, progress)
    t0 = time.perf_counter()
    progress("evaluating on the test period", 0.85)
    test_rows = np.flatnonzero(prep.split_codes == 2)
    d = prep.split.describe()
    report, test_scores = evaluate_period(model_set, prep, test_rows, period=f"test {d['test_start']}..{d['test_end']}",
                                          label_cutoff=prep.split.label_cutoff("test"))
    timings = {**prep.timings, **fit_timings, "evaluate": time.perf_counter() - t0}
    diagnostics["feedback_rows"] = prep.feedback_rows
    timings["total"] = time.perf_counter() - t_all
    return TrainResult(model_set, prep, report, diagnostics.pop("valid_metrics"), diagnostics, timings,
                       test_scores=test_scores)
