"""``amlscore train | evaluate | promote | score | feedback``: the model's life cycle on the command line.

* ``train --data DIR``: fit a model set, log the run to MLflow, register a version as ``@challenger``.
* ``evaluate --data DIR [--version N | --alias champion]``: score a registered version on a folder.
* ``promote [--force]``: move ``@champion`` to ``@challenger`` if it is better on the same held-out period.
* ``score --data DIR --out FILE``: batch scores, one row per transaction.
* ``feedback --data DIR --file FILE``: append analysts' dispositions for the next training.

MLflow: ``MLFLOW_TRACKING_URI`` or ``sqlite:///<project>/mlflow.db`` (see :mod:`amlscore.training.tracking`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from amlscore.cli.options import ENGINE_HELP, MASTER_HELP, aml_error, check_engine, parse_date
from amlscore.cli.progress import stage_progress

_DATA = typer.Option("--data", help="Data folder in the contract (customers, transactions, reports).", show_default=False)


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def print_report(console: Console, report: Any, title: str) -> None:
    """The metrics table (fused score and components), the threshold line and per-typology recall."""
    from amlscore.training.report import metrics_table_rows  # noqa: PLC0415

    table = Table(title=f"{title}: {report.period} ({report.label_source.replace('_', ' ')} labels, "
                        f"{int(report.overall['n']):,} transactions, {int(report.overall['positives']):,} positives)",
                  title_justify="left", show_edge=False)
    for col in ("score", "PR-AUC", "ROC-AUC", "recall@0.5%", "recall@1%", "precision@100"):
        table.add_column(col, justify="left" if col == "score" else "right")
    for row in metrics_table_rows(report):
        table.add_row(*row)
    console.print(table)
    o = report.overall
    console.print(f"At the alert threshold {report.alert_threshold:.3f}: alert rate {_fmt(o.get('alert_rate_at_threshold'), 4)}, "
                  f"precision {_fmt(o.get('precision_at_threshold'))}, recall {_fmt(o.get('recall_at_threshold'))}, "
                  f"F1 (suspicious class) {_fmt(o.get('f1_at_threshold'))}.")
    if report.reports:
        r = report.reports
        console.print(f"Against the reports instead ({int(r['positives']):,} reported): PR-AUC {_fmt(r['pr_auc'])}, "
                      f"recall@1% {_fmt(r['recall_at_1pct'])}, precision@100 {_fmt(r['precision_at_k'])}.")
    if len(report.per_typology):
        t = Table(title="Recall per typology", title_justify="left", show_edge=False)
        for col in ("typology", "laundering txns", "recall@0.5%", "recall@1%", "recall@threshold"):
            t.add_column(col, justify="left" if col == "typology" else "right")
        for r in report.per_typology.itertuples(index=False):
            low = r.recall_at_1pct < 0.5
            t.add_row(r.typology, f"{r.laundering_txns:,}", _fmt(r.recall_at_0_5pct),
                      f"[red]{r.recall_at_1pct:.3f}[/]" if low else f"{r.recall_at_1pct:.3f}", _fmt(r.recall_at_threshold))
        console.print(t)


def print_slices(console: Console, report: Any) -> None:
    if not len(report.slices):
        return
    t = Table(title="Per slice (alerts = alert rate at the threshold; prec/rec at the threshold; rec@1% within the "
                    "overall top 1 %)", title_justify="left", show_edge=False)
    for col in ("slice", "value", "n", "pos", "alerts", "PR-AUC", "rec@1%", "prec", "rec"):
        t.add_column(col, justify="left" if col in ("slice", "value") else "right")
    for r in report.slices.itertuples(index=False):
        t.add_row(r.slice.replace("customer_type", "type").replace("industry_risk", "industry"),
                  r.value.replace("_industry", "").replace("_banking", ""), f"{r.n:,}", f"{r.positives:,}",
                  _fmt(r.alert_rate, 4), _fmt(r.pr_auc),
                  _fmt(r.recall_at_1pct), _fmt(r.precision_at_threshold), _fmt(r.recall_at_threshold))
    console.print(t)


def _write_json(path: Optional[Path], payload: dict) -> None:
    if path is None:
        return
    from amlscore.training.report import clean_json  # noqa: PLC0415

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean_json(payload), indent=2, default=str) + "\n", encoding="utf-8")


def train(
    data: Annotated[Path, _DATA],
    cutoff: Annotated[Optional[str], typer.Option("--cutoff", help="Training cut-off YYYY-MM-DD: reports filed on or after it are not used (default: all).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every sample and fit.")] = 42,
    experiment: Annotated[str, typer.Option("--experiment", help="MLflow experiment name.")] = "amlscore",
    target_alert_rate: Annotated[float, typer.Option("--target-alert-rate", min=0.0001, max=0.5, help="Share of transactions the rate threshold alerts on validation.")] = 0.01,
    target_precision: Annotated[float, typer.Option("--target-precision", min=0.01, max=1.0, help="Precision the precision threshold reaches on validation.")] = 0.5,
    alert_policy: Annotated[str, typer.Option("--alert-policy", help="Threshold in force: alert_rate or precision.")] = "alert_rate",
    valid_start: Annotated[Optional[str], typer.Option("--valid-start", help="First validation day YYYY-MM-DD (default: by --fractions).")] = None,
    test_start: Annotated[Optional[str], typer.Option("--test-start", help="First test day YYYY-MM-DD (default: by --fractions).")] = None,
    fractions: Annotated[str, typer.Option("--fractions", help="Train,valid,test shares of transactions.")] = "0.6,0.2,0.2",
    feedback: Annotated[Optional[list[Path]], typer.Option("--feedback", help="Extra feedback file(s) in the reports format (DIR/feedback/*.csv is always read).")] = None,
    n_jobs: Annotated[int, typer.Option("--n-jobs", min=1, help="LightGBM threads (1 is safest on a busy 2-core machine).")] = 1,
    results_fp: Annotated[Optional[Path], typer.Option("--results-fp", help="Write the results (with run_id) as JSON here.")] = None,
    features: Annotated[Optional[Path], typer.Option("--features", help="Read the features from this folder written by "
                                                     "amlscore features --engine spark for DIR (checked) instead of computing them.")] = None,
    anomaly_model: Annotated[Optional[str], typer.Option("--anomaly-model", help="What the anomaly component measures a row "
                                                         "against: bank (the whole bank) or peer_group (its peer group; "
                                                         "docs/generalisation.md). Default: TrainConfig's.")] = None,
    anomaly_peer_config: Annotated[Optional[Path], typer.Option("--anomaly-peer-config", help="With --anomaly-model "
                                                                "peer_group: its configuration file (default: the packaged one).")] = None,
    fusion_anomaly_floor: Annotated[Optional[float], typer.Option("--fusion-anomaly-floor", help="The least one standard "
                                                                  "deviation of the anomaly score moves the fused log-odds "
                                                                  "(0: the reports alone decide; docs/generalisation.md). "
                                                                  "Default: TrainConfig's.")] = None,
    fusion_anomaly_gate: Annotated[Optional[float], typer.Option("--fusion-anomaly-gate", help="With a floor: apply it "
                                                                 "only when the anomaly score alone ranks the bank's "
                                                                 "reported rows with at least this ROC-AUC "
                                                                 "(docs/generalisation.md). Default: TrainConfig's.")] = None,
    fusion_anomaly_max_reported: Annotated[Optional[int], typer.Option("--fusion-anomaly-max-reported", help="With a "
                                                                       "floor: apply it only while fewer customers than "
                                                                       "this are reported (docs/generalisation.md). "
                                                                       "Default: TrainConfig's.")] = None,
) -> None:
    """Train a model set, log it to MLflow and register it as @challenger."""
    from amlscore.training.train import TrainConfig  # noqa: PLC0415
    from amlscore.training.pipeline import train_and_register as run_training  # noqa: PLC0415

    try:
        shares = tuple(float(x) for x in fractions.split(","))
    except ValueError:
        raise aml_error(f"--fractions must be three numbers like 0.6,0.2,0.2. Got {fractions!r} instead.") from None
    config = TrainConfig(data=data, cutoff=parse_date(cutoff, "--cutoff"), seed=seed, fractions=shares,  # type: ignore[arg-type]
                         valid_start=parse_date(valid_start, "--valid-start"), test_start=parse_date(test_start, "--test-start"),
                         target_alert_rate=target_alert_rate, target_precision=target_precision,
                         alert_policy=alert_policy, n_jobs=n_jobs, feedback=tuple(feedback or ()), features=features,
                         anomaly_peer_config=anomaly_peer_config,
                         **{k: v for k, v in (("anomaly_model", anomaly_model), ("fusion_anomaly_floor", fusion_anomaly_floor),
                                                 ("fusion_anomaly_gate", fusion_anomaly_gate),
                                                 ("fusion_anomaly_max_reported", fusion_anomaly_max_reported))
                            if v is not None})
    console = Console(highlight=False, soft_wrap=True)
    start = time.perf_counter()
    with stage_progress("train", Console(stderr=True)) as report:
        result = run_training(config, report, experiment=experiment)
    seconds = time.perf_counter() - start
    print_report(console, result.test_report, "Test period")
    ms = result.model_set
    console.print(f"Fusion weights (rule/100, logit LightGBM, anomaly): "
                  f"{', '.join(f'{c:.3f}' for c in ms.fusion.coef_)}; thresholds: alert {ms.alert_threshold:.3f} "
                  f"({ms.thresholds.policy}), rate {ms.thresholds.rate_threshold:.3f}, precision "
                  f"{ms.thresholds.precision_threshold:.3f}{'' if ms.thresholds.precision_met else ' (target not met on validation)'}.")
    console.print(f"Run [bold]{result.run_id}[/]; registered [bold]aml-model-set[/] version [bold]{result.model_version}[/] "
                  f"as @challenger ({seconds:.0f} s). Promote it with: amlscore promote")
    _write_json(results_fp, result.summary())


def _load_registered(version: Optional[int], alias: Optional[str]):  # noqa: ANN202
    from amlscore.training.tracking import load_model_set  # noqa: PLC0415

    if version is not None and alias is not None:
        raise aml_error("Give --version or --alias, not both.")
    return load_model_set(version=version, alias=alias if version is None else None)


def evaluate(
    data: Annotated[Optional[Path], _DATA] = None,
    version: Annotated[Optional[int], typer.Option("--version", help="Registered version number.")] = None,
    alias: Annotated[Optional[str], typer.Option("--alias", help="Registered alias (default: champion).")] = None,
    period: Annotated[str, typer.Option("--period", help="auto (the version's test period when DIR is its training data, else all), test, or all.")] = "auto",
    start: Annotated[Optional[str], typer.Option("--start", help="First day YYYY-MM-DD to evaluate (overrides --period).")] = None,
    end: Annotated[Optional[str], typer.Option("--end", help="Last day YYYY-MM-DD to evaluate.")] = None,
    slices: Annotated[bool, typer.Option("--slices/--no-slices", help="Print the per-slice table.")] = True,
    results_fp: Annotated[Optional[Path], typer.Option("--results-fp", help="Write the results as JSON here.")] = None,
    protocol: Annotated[Optional[Path], typer.Option("--protocol", help="Run the generalisation protocol of this YAML "
                                                     "grid instead (docs/generalisation.md).")] = None,
    out: Annotated[Path, typer.Option("--out", help="With --protocol: folder for cells.csv, summary.csv/.md, targets.json.")] = Path("protocol_results"),
    cache: Annotated[Path, typer.Option("--cache", help="With --protocol: folder of the generated banks (reused).")] = Path("data/protocol"),
    mlflow: Annotated[bool, typer.Option("--mlflow/--no-mlflow", help="With --protocol: log each cell to MLflow.")] = True,
) -> None:
    """Score a registered version on a data folder and print the metrics, or run a protocol grid (--protocol)."""
    if protocol is not None:
        from amlscore.cli.protocol import run_protocol_command  # noqa: PLC0415

        console = Console(highlight=False, soft_wrap=True)
        done = run_protocol_command(protocol, out, cache, mlflow=mlflow, say=console.print)
        console.print(Path(done["paths"]["markdown"]).read_text(encoding="utf-8"))
        _write_json(results_fp, done)
        return
    if data is None:
        raise aml_error("Give --data DIR (a folder to evaluate a registered version on) or --protocol FILE.")
    from amlscore.training.scoring import evaluate_model_set, load_folder  # noqa: PLC0415

    if period not in ("auto", "test", "all"):
        raise aml_error(f"--period must be auto, test or all. Got {period!r} instead.")
    console = Console(highlight=False, soft_wrap=True)
    reg = _load_registered(version, alias)
    folder = load_folder(data)
    split = reg.model_set.metadata.get("split") or {}
    same = folder.dataset.fingerprint == reg.model_set.metadata.get("data_fingerprint")
    if start is None and end is None and (period == "test" or (period == "auto" and same)):
        start, end = split.get("test_start"), split.get("test_end")
        note = "its test period" if same else "its test period dates (other data)"
    else:
        note = "the chosen days" if (start or end) else "every transaction"
    with stage_progress("evaluate", Console(stderr=True)) as report:
        rep, _ = evaluate_model_set(reg.model_set, folder, start=parse_date(start, "--start"), end=parse_date(end, "--end"),
                                    progress=report)
    console.print(f"aml-model-set version {reg.version} ({', '.join('@' + a for a in reg.aliases) or 'no alias'}) on "
                  f"{data}, {note}:")
    print_report(console, rep, "Evaluation")
    if slices:
        print_slices(console, rep)
    _write_json(results_fp, {"version": reg.version, "run_id": reg.run_id, "data": str(data), **rep.to_dict()})


def promote(
    force: Annotated[bool, typer.Option("--force", help="Promote the challenger even if it is not better.")] = False,
    data: Annotated[Optional[Path], typer.Option("--data", help="Data folder to compare on (default: the challenger's training folder).")] = None,
) -> None:
    """Move @champion to @challenger if it beats the champion on the same held-out period."""
    from amlscore.training.promote import promote as run_promote  # noqa: PLC0415

    console = Console(highlight=False, soft_wrap=True)
    with stage_progress("promote", Console(stderr=True)) as report:
        result = run_promote(force=force, data=data, progress=report)
    if result.table:
        t = Table(title=f"Held-out period {result.period} ({result.label_source.replace('_', ' ')} labels)",
                  title_justify="left", show_edge=False)
        t.add_column("metric")
        t.add_column(f"champion v{result.champion_version}", justify="right")
        t.add_column(f"challenger v{result.challenger_version}", justify="right")
        for name, a, b in result.table:
            t.add_row(name, _fmt(a, 4), _fmt(b, 4))
        for name, a, b in result.typology_table:
            t.add_row(f"recall@1% {name}", _fmt(a), _fmt(b))
        console.print(t)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    if result.promoted:
        console.print(f"[green]Promoted[/] version {result.challenger_version} to @champion: {result.reason}.")
    else:
        console.print(f"[red]Not promoted[/]: {result.reason}. Use --force to promote anyway.")
        raise typer.Exit(code=1)


def score(
    data: Annotated[Path, _DATA],
    out: Annotated[Path, typer.Option("--out", help="File to write: .parquet or .csv.", show_default=False)],
    version: Annotated[Optional[int], typer.Option("--version", help="Registered version number.")] = None,
    alias: Annotated[Optional[str], typer.Option("--alias", help="Registered alias (default: champion).")] = None,
    reasons: Annotated[str, typer.Option("--reasons", help="Rows whose top_reasons include LightGBM contributions: alerts, all or none.")] = "alerts",
    daily: Annotated[bool, typer.Option("--daily/--no-daily", help="Also keep the per-day distributions of features and scores on the model set's reference bins in <out>.daily/ (docs/monitoring.md; local engine only).")] = True,
    engine: Annotated[str, typer.Option("--engine", help=ENGINE_HELP)] = "local",
    master: Annotated[Optional[str], typer.Option("--master", help=MASTER_HELP, show_default=False)] = None,
) -> None:
    """Batch scoring: one row per transaction (txn_id, scores, alert, top reasons).

    With --engine spark, OUT is a Parquet folder (part files) and no per-day distributions are kept.
    """
    from amlscore.contract import load_dataset, report_data_warnings  # noqa: PLC0415
    from amlscore.features.offline import build_features  # noqa: PLC0415

    check_engine(engine, master)
    if engine == "local" and out.suffix not in (".parquet", ".csv"):
        raise aml_error(f"--out must end in .parquet or .csv. Got {out.name!r} instead.")
    if engine == "spark" and out.suffix == ".csv":
        raise aml_error(f"--engine spark writes a Parquet folder; --out {out.name!r} names a CSV file.")
    console = Console(highlight=False, soft_wrap=True)
    reg = _load_registered(version, alias)
    ms = reg.model_set
    if engine == "spark":
        _score_with_spark(data, out, ms, reg.version, reasons, master, console)
        return
    start = time.perf_counter()
    with stage_progress("score", Console(stderr=True)) as report:
        dataset = load_dataset(data, require_reports=False)
        report_data_warnings(dataset)
        feats = build_features(dataset, ms.feature_params, progress=lambda s, f: report("features", 0.8 * f))
        report("scoring", 0.85)
        scores = ms.score_frame(feats, reasons=reasons)
    columns = ["txn_id", "suspicion_score", "rule_score", "lgbm_probability", "anomaly_score", "alert", "top_reasons"]
    scores = scores[columns]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    if out.suffix == ".parquet":
        scores.to_parquet(tmp, index=False)
    else:
        scores.to_csv(tmp, index=False)
    tmp.replace(out)
    if daily and ms.reference is not None:
        from amlscore.monitoring.batch import daily_counts  # noqa: PLC0415

        days_written = daily_counts(ms, dataset, feats, scores).save(out.with_name(out.name + ".daily"))
        console.print(f"Kept the per-day distributions of {days_written} day(s) in {out.name}.daily/.")
    console.print(f"Scored {len(scores):,} transactions with aml-model-set version {reg.version} in "
                  f"{time.perf_counter() - start:.1f} s: {int(scores['alert'].sum()):,} alerts "
                  f"(threshold {ms.alert_threshold:.3f}); wrote {out}.")


def _score_with_spark(data: Path, out: Path, ms, version, reasons: str, master: Optional[str],  # noqa: ANN001
                      console: Console) -> None:
    from amlscore.contract import load_dataset, report_data_warnings  # noqa: PLC0415
    from amlscore.features.spark import command_session  # noqa: PLC0415
    from amlscore.training.spark_scoring import score_spark  # noqa: PLC0415

    start = time.perf_counter()
    dataset = load_dataset(data, require_reports=False)
    report_data_warnings(dataset)
    out.parent.mkdir(parents=True, exist_ok=True)
    with command_session(master) as spark:
        rows, alerts = score_spark(spark, dataset, ms, out, reasons=reasons)
    console.print(f"Scored {rows:,} transactions with aml-model-set version {version} on Spark in "
                  f"{time.perf_counter() - start:.1f} s: {alerts:,} alerts (threshold {ms.alert_threshold:.3f}); "
                  f"wrote the Parquet folder {out} (no per-day distributions with --engine spark: run amlscore monitor).")


def feedback(
    data: Annotated[Path, _DATA],
    file: Annotated[Path, typer.Option("--file", help="Dispositions in the reports format (.csv or .parquet).", show_default=False)],
    to: Annotated[Optional[Path], typer.Option("--to", help="Feedback file to append to (default: DIR/feedback/feedback.csv).")] = None,
) -> None:
    """Append analysts' dispositions (suspicious / not_suspicious) for the next training."""
    from amlscore.contract import load_dataset, report_data_warnings  # noqa: PLC0415
    from amlscore.training.feedback import append_feedback  # noqa: PLC0415

    dataset = load_dataset(data)
    report_data_warnings(dataset)
    target, added, replaced = append_feedback(file, dataset, data, feedback_file=to)
    Console(highlight=False).print(f"Appended {added:,} disposition(s) ({replaced:,} replaced by report_id) to {target}.")
