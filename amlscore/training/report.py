"""Run artifacts: PR curves, score histograms, SHAP summary plot, model card and tables.

Pure file writers (matplotlib with the Agg backend, shap); :mod:`amlscore.training.tracking` logs the files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from amlscore.training.result import TrainConfig, TrainResult

__all__ = ["clean_json", "metrics_table_rows", "write_artifacts"]

_COMPONENT_LABELS = {"suspicion_score": "fused suspicion score", "lgbm_probability": "LightGBM probability",
                     "rule_score": "rule score", "anomaly_score": "anomaly score"}


def _plt():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def pr_curve_png(path: Path, y: np.ndarray, scores: pd.DataFrame, title: str) -> None:
    """Precision-recall curves of the fused score and each component."""
    from sklearn.metrics import average_precision_score, precision_recall_curve  # noqa: PLC0415

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for col, label in _COMPONENT_LABELS.items():
        s = scores[col].to_numpy(dtype=np.float64)
        if y.sum() == 0:
            continue
        p, r, _ = precision_recall_curve(y, s)
        ax.plot(r, p, label=f"{label} (AP {average_precision_score(y, s):.3f})", lw=2 if col == "suspicion_score" else 1)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.93, bottom=0.1)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def score_histograms_png(path: Path, y: np.ndarray, scores: pd.DataFrame, threshold: float, title: str) -> None:
    """Histograms of each score for positives and negatives (log counts), the threshold marked."""
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, (col, label) in zip(axes.ravel(), _COMPONENT_LABELS.items()):
        s = scores[col].to_numpy(dtype=np.float64)
        lo, hi = float(np.nanmin(s)), float(np.nanmax(s))
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, 51)
        for mask, name in ((y == 0, "not laundering / not reported"), (y == 1, "laundering / reported")):
            counts, _ = np.histogram(s[mask], bins=edges)
            ax.stairs(counts, edges, fill=True, alpha=0.5, label=f"{name} ({int(mask.sum()):,})")
        ax.set_yscale("symlog", linthresh=1)
        if col == "suspicion_score":
            ax.axvline(threshold, color="k", ls="--", lw=1, label=f"alert threshold {threshold:.2f}")
        ax.set_title(label, fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(hspace=0.3, wspace=0.2, left=0.06, right=0.98, top=0.92, bottom=0.06)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def shap_summary_png(path: Path, contributions: np.ndarray, X: np.ndarray, names: list[str]) -> None:
    """shap.summary_plot of LightGBM's own TreeSHAP contributions (``pred_contrib=True``)."""
    import shap  # noqa: PLC0415

    plt = _plt()
    plt.figure(figsize=(8, 8))
    shap.summary_plot(contributions, X, feature_names=names, show=False, max_display=20)
    plt.title("LightGBM TreeSHAP contributions (log-odds), test sample", fontsize=10)
    plt.savefig(path, dpi=90, bbox_inches="tight")
    plt.close("all")


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def metrics_table_rows(report: Any) -> list[tuple[str, ...]]:
    """Rows (score, PR-AUC, ROC-AUC, recall@0.5 %, recall@1 %, precision@100) for printing."""
    names = {"fused": "fused score", "lgbm": "LightGBM", "rules": "rules", "anomaly": "IsolationForest"}
    rows = []
    for key, label in names.items():
        m = report.components[key]
        rows.append((label, _fmt(m["pr_auc"]), _fmt(m["roc_auc"]), _fmt(m["recall_at_0_5pct"]),
                     _fmt(m["recall_at_1pct"]), _fmt(m["precision_at_k"])))
    return rows


def fusion_card_lines(info: dict[str, Any]) -> list[str]:
    """The model card's section on how the fusion was fitted and why each component has its weight."""
    from amlscore.training.few_labels import describe_component  # noqa: PLC0415

    if not info:
        return []
    if info.get("fit") == "oof":
        head = (f"Fitted on out-of-fold LightGBM probabilities over the training and validation periods "
                f"({info.get('folds')} time blocks, {info.get('rows', 0):,} rows, {info.get('positives', 0):,} "
                "labelled positives), so the weights rest on every labelled transaction, not on the validation "
                "period's few.")
    else:
        head = (f"Fitted on the validation period ({info.get('rows', 0):,} rows, {info.get('positives', 0):,} "
                "labelled positives).")
    lines = ["## Fusion: each component's weight and why", head, ""]
    lines += [f"* {describe_component(c)}" for c in info.get("components", [])]
    floor = info.get("anomaly_floor") or {}
    if floor.get("floor"):
        lines += ["", floor_card_line(floor)]
    return lines + [""]


def floor_card_line(floor: dict[str, Any]) -> str:
    """One sentence on whether the anomaly score's floor applied, and on which evidence."""
    auc, gate, most = floor.get("evidence_roc_auc", float("nan")), floor.get("gate"), floor.get("max_reported")
    seen = (f"the anomaly score alone ranks the bank's reported rows with a ROC-AUC of {auc:.3f}"
            if auc == auc else "the reports left no way to tell how well the anomaly score alone ranks them")
    if gate is not None:
        seen += f" (the bar is {gate:.3f}: {'met' if auc == auc and auc >= gate else 'not met'})"
    if most is not None:
        reported = int(floor.get("reported_customers", 0))
        seen += (f"; {reported:,} customers are reported (the floor stops at {most:,}, from where the fit's own "
                 f"weights are trusted: {'under' if reported < most else 'reached'})")
    verdict = "applies" if floor.get("applied") else "does not apply"
    if gate is None and most is None and floor.get("applied"):
        verdict = "applies ungated"
    return f"The anomaly score's floor ({floor['floor']:g} log-odds per standard deviation) {verdict}: {seen}."


def model_card_md(result: "TrainResult", config: "TrainConfig") -> str:
    """A short model card in Markdown."""
    ms = result.model_set
    rep = result.test_report
    d = result.prepared.split.describe()
    diag = result.diagnostics
    lines = [
        f"# Model card: {ms.metadata.get('registered_model_name')} (run {result.run_id or 'not logged'})",
        "",
        "## What it is",
        "A suspicion score from 0 to 100 per transaction (higher = more suspicious, probability-like: calibrated "
        "on the validation period as the chance of a suspicious report), fusing three components:",
        "* the PBoC-style transaction **rule score** (0..100, rule configuration "
        f"`{ms.metadata['rules_config_hash'][:12]}`);",
        f"* a **LightGBM** classifier trained on suspicious-transaction reports ({diag['lgbm_trees']} trees);",
        f"* {ms.detector.describe()} Its fusion weight: {ms.fusion.coef_[2]:.3f} (why: the fusion section below).",
        f"Fusion weights (rule/100, logit p, anomaly): {', '.join(f'{c:.3f}' for c in ms.fusion.coef_)}; "
        f"intercept {ms.fusion.intercept_:.3f}.",
        "",
        *fusion_card_lines(diag.get("fusion") or {}),
        "## Data",
        f"* Data fingerprint `{ms.metadata['data_fingerprint'][:16]}`, feature set `{ms.metadata['feature_set_version']}` "
        f"(parameters `{ms.metadata['feature_params_hash']}`), code `{ms.metadata['code_version']}`, seed {config.seed}.",
        f"* Time split (bank clock): train {d['train_start']}..{d['valid_start']} (exclusive), validation "
        f"{d['valid_start']}..{d['test_start']} (exclusive), test {d['test_start']}..{d['test_end']}.",
        f"* Label cut-offs: train reports filed before {d['train_label_cutoff']}, validation before "
        f"{d['valid_label_cutoff']}, test (evaluation only) "
        f"{'before ' + d['test_label_cutoff'] if d['test_label_cutoff'] else 'every report in the folder'}.",
        f"* Training labels: {diag['train_positives_transaction']} transaction-report positives, "
        f"{diag['train_positives_period']} period-report positives of which {diag['train_positives_period_kept']} kept "
        f"after refinement, {diag['train_confirmed_negatives']} confirmed negatives, "
        f"{diag['train_unlabelled_sampled']} presumed-normal rows sampled (rate {diag['train_unlabelled_rate']:.3f}).",
        "",
        "## Alert thresholds (chosen on validation)",
        f"* In force ({ms.thresholds.policy}): **{ms.alert_threshold:.3f}**.",
        f"* Target alert rate {ms.thresholds.target_alert_rate:.2%}: threshold {ms.thresholds.rate_threshold:.3f}.",
        f"* Target precision {ms.thresholds.target_precision:.0%}: threshold {ms.thresholds.precision_threshold:.3f} "
        f"({'met' if ms.thresholds.precision_met else 'not met on validation reports; best precision cut-off'}).",
        "",
        f"## Test-period results ({rep.label_source.replace('_', ' ')} labels, {int(rep.overall['n']):,} transactions, "
        f"{int(rep.overall['positives']):,} positives)",
        "",
        "| score | PR-AUC | ROC-AUC | recall@0.5% | recall@1% | precision@100 |",
        "|---|---|---|---|---|---|",
    ]
    for row in metrics_table_rows(rep):
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", f"At the threshold: F1 {_fmt(rep.overall.get('f1_at_threshold'))}, precision "
              f"{_fmt(rep.overall.get('precision_at_threshold'))}, recall {_fmt(rep.overall.get('recall_at_threshold'))}, "
              f"alert rate {_fmt(rep.overall.get('alert_rate_at_threshold'), 4)}."]
    if len(rep.per_typology):
        lines += ["", "### Recall per typology", "", "| typology | laundering txns | recall@0.5% | recall@1% | recall@threshold |",
                  "|---|---|---|---|---|"]
        for r in rep.per_typology.itertuples(index=False):
            lines.append(f"| {r.typology} | {r.laundering_txns} | {r.recall_at_0_5pct:.3f} | {r.recall_at_1pct:.3f} | "
                         f"{r.recall_at_threshold:.3f} |")
    lines += [
        "",
        "## Intended use and limits",
        "* Ranks transactions for analyst review; it does not decide to file a report.",
        "* Trained on reports, which are incomplete and late: unreported laundering counts as normal in training, and "
        "precision measured against reports is a lower bound.",
        "* Every score is explained (LightGBM TreeSHAP, anomaly attribution, fired rules): see `ModelSet.explain_vector`.",
        "* Check per-slice results (slices.csv) before use on a customer segment.",
    ]
    return "\n".join(lines) + "\n"


def write_artifacts(folder: Path, result: "TrainResult", config: "TrainConfig", test_scores: pd.DataFrame,
                    *, shap_rows: int = 1000) -> dict[str, Path]:
    """Write every run artifact into ``folder``; return name -> path."""
    from amlscore.training.evaluate import evaluation_labels  # noqa: PLC0415
    from amlscore.training.result import feature_matrix  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    prep = result.prepared
    rep = result.test_report
    rows = np.flatnonzero(prep.split_codes == 2)
    labels = evaluation_labels(prep.features["txn_id"].iloc[rows], prep.dataset.transactions, prep.dataset.reports,
                               prep.ground_truth, cutoff=prep.split.label_cutoff("test"),
                               utc_offset_hours=prep.feature_params.bank_utc_offset_hours)
    title = f"test period, {rep.label_source.replace('_', ' ')} labels"
    out: dict[str, Path] = {}
    out["pr_curve"] = folder / "pr_curve.png"
    pr_curve_png(out["pr_curve"], labels.y, test_scores, title)
    out["score_histograms"] = folder / "score_histograms.png"
    score_histograms_png(out["score_histograms"], labels.y, test_scores, result.model_set.alert_threshold, title)
    rng = np.random.default_rng(config.seed)
    pick = np.sort(rng.choice(rows, size=min(shap_rows, len(rows)), replace=False))
    X = feature_matrix(prep.features, pick)
    contrib = result.model_set.classifier.contributions(X)[:, :-1]
    out["shap_summary"] = folder / "shap_summary.png"
    shap_summary_png(out["shap_summary"], contrib, X, list(result.model_set.feature_names))
    out["model_card"] = folder / "model_card.md"
    out["model_card"].write_text(model_card_md(result, config), encoding="utf-8")
    out["metrics"] = folder / "metrics.json"
    out["metrics"].write_text(json.dumps(clean_json(result.summary()), indent=2, default=_json_default) + "\n",
                              encoding="utf-8")
    out["per_typology"] = folder / "per_typology.csv"
    rep.per_typology.to_csv(out["per_typology"], index=False)
    out["slices"] = folder / "slices.csv"
    rep.slices.to_csv(out["slices"], index=False)
    out["features"] = folder / "features.json"
    out["features"].write_text(json.dumps({"feature_set_version": result.model_set.metadata["feature_set_version"],
                                           "feature_params_hash": result.model_set.metadata["feature_params_hash"],
                                           "features": list(result.model_set.feature_names),
                                           "anomaly_features": list(result.model_set.detector.feature_names_)},
                                          indent=2) + "\n", encoding="utf-8")
    return out


def clean_json(obj: Any) -> Any:
    """A structure with NaN/inf replaced by None and numpy scalars by Python ones (valid JSON)."""
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.floating,)):
        f = float(v)
        return None if math.isnan(f) else f
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, float) and math.isnan(v):
        return None
    return str(v)
