"""``amlscore demo --out DIR``: the main job on the embedded default data set.

generate (synthetic bank, defaults: 2,000 customers, 365 days, seed 42; skipped when DIR already
holds it) -> validate (the data contract) -> train (features, labels, LightGBM, IsolationForest,
fusion, thresholds; logged to MLflow and registered as @challenger) -> promote (the first model
becomes @champion; a later one only if it beats the champion) -> evaluate on the test period ->
the metrics table, per typology, and how to open the MLflow UI -> prepare the case reports (what
``amlscore report prepare --alias champion`` does: the data set's case store, @champion's scores
of every transaction and explanations of every alert, so that ``amlscore report case`` of any alert
takes a few seconds; ``--no-reports`` skips it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from amlscore.cli.progress import stage_progress
from amlscore.cli.train import print_report, print_slices


def _has_data(folder: Path) -> bool:
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    return all(any(f"{t}{s}" in names for s in (".parquet", ".csv")) for t in ("customers", "transactions", "reports"))


def demo(
    out: Annotated[Path, typer.Option("--out", help="Data folder: generated here unless it already holds a data set.")] = Path("data/default"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generator and of training.")] = 42,
    regenerate: Annotated[bool, typer.Option("--regenerate", help="Generate the data again even if DIR holds a data set.")] = False,
    n_jobs: Annotated[int, typer.Option("--n-jobs", min=1, help="LightGBM threads.")] = 1,
    reports: Annotated[bool, typer.Option("--reports/--no-reports", help="Prepare the case reports of @champion's alerts (case store, scores, explanations).")] = True,
) -> None:
    """Generate -> validate -> train -> promote -> evaluate -> prepare case reports, on the default synthetic bank."""
    from amlscore.contract import load_dataset, report_data_warnings  # noqa: PLC0415
    from amlscore.synth.bank import generate_bank, write_bank  # noqa: PLC0415
    from amlscore.synth.config import SynthConfig  # noqa: PLC0415
    from amlscore.training.promote import promote  # noqa: PLC0415
    from amlscore.training.scoring import evaluate_model_set, load_folder  # noqa: PLC0415
    from amlscore.training.tracking import CHAMPION, load_model_set, tracking_uri  # noqa: PLC0415
    from amlscore.training.pipeline import train_and_register  # noqa: PLC0415
    from amlscore.training.train import TrainConfig  # noqa: PLC0415

    console = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True)
    t_all = time.perf_counter()

    # 1. generate
    if regenerate or not _has_data(out):
        t0 = time.perf_counter()
        with stage_progress("generate", err) as report:
            report("synthetic bank", 0.1)
            bank = generate_bank(SynthConfig(seed=seed))
            report("writing", 0.8)
            write_bank(bank, out)
        s = bank.summary()
        console.print(f"[bold]1. generate[/]: {s['customers']:,} customers, {s['transactions']:,} transactions, "
                      f"{s['reports']:,} reports into {out} ({time.perf_counter() - t0:.0f} s).")
    else:
        console.print(f"[bold]1. generate[/]: {out} already holds a data set; kept (use --regenerate to rebuild).")

    # 2. validate
    t0 = time.perf_counter()
    dataset = load_dataset(out)
    report_data_warnings(dataset)
    console.print(f"[bold]2. validate[/]: meets the data contract: {len(dataset.customers):,} customers, "
                  f"{len(dataset.transactions):,} transactions, {len(dataset.reports):,} reports; fingerprint "
                  f"{dataset.fingerprint[:16]} ({time.perf_counter() - t0:.0f} s).")

    # 3. train
    t0 = time.perf_counter()
    with stage_progress("train", err) as report:
        result = train_and_register(TrainConfig(data=out, seed=seed, n_jobs=n_jobs), report, dataset=dataset)
    d = result.prepared.split.describe()
    console.print(f"[bold]3. train[/]: run {result.run_id}, aml-model-set version {result.model_version} (@challenger); "
                  f"train {d['train_start']}..{d['valid_start']}, validation {d['valid_start']}..{d['test_start']}, "
                  f"test {d['test_start']}..{d['test_end']} ({time.perf_counter() - t0:.0f} s).")

    # 4. promote
    t0 = time.perf_counter()
    with stage_progress("promote", err) as report:
        decision = promote(data=out, progress=report)
    verdict = "promoted to @champion" if decision.promoted else "kept the current @champion"
    console.print(f"[bold]4. promote[/]: {verdict}: {decision.reason} ({time.perf_counter() - t0:.0f} s).")
    for w in decision.warnings:
        console.print(f"[yellow]warning:[/] {w}")

    # 5. evaluate the champion on the test period
    t0 = time.perf_counter()
    reg = load_model_set(alias=CHAMPION)
    if reg.version == result.model_version:
        rep = result.test_report  # the champion is the model just trained and evaluated on this test period
    else:
        with stage_progress("evaluate", err) as report:
            rep, _ = evaluate_model_set(reg.model_set, load_folder(out), start=d["test_start"], end=d["test_end"],
                                        progress=report)
    console.print(f"[bold]5. evaluate[/]: @champion = version {reg.version} on the test period "
                  f"({time.perf_counter() - t0:.0f} s).")
    print_report(console, rep, "Test period")
    print_slices(console, rep)
    low = rep.per_typology[rep.per_typology["recall_at_1pct"] < 0.5]["typology"].tolist()
    if low:
        console.print(f"[yellow]Typologies under 0.5 recall@1%:[/] {', '.join(low)} (the run's model_card.md and "
                      "per_typology.csv in MLflow give the numbers).")
    uri = tracking_uri()

    # 6. case reports: the case store and @champion's scores and explanations (amlscore.reports.model_cache)
    if reports:
        _prepare_reports(console, err, out, uri, dataset, result, reg.version)

    console.print(f"\nDone in {time.perf_counter() - t_all:.0f} s. MLflow: {uri}")
    if uri.startswith("sqlite:"):
        console.print("Open the MLflow UI from the project folder with:\n"
                      "  .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db\n"
                      "then browse http://127.0.0.1:5000 (experiment 'amlscore'; model 'aml-model-set').")
    else:
        console.print(f"Open your MLflow server's UI ({uri}); experiment 'amlscore', model 'aml-model-set'.")


def _prepare_reports(console: Console, err: Console, out: Path, uri: str, dataset: object, result: object,
                     champion_version: str) -> None:
    """Step 6: what ``amlscore report prepare --alias champion`` does, reusing the features just computed."""
    from amlscore.features.params import load_feature_params  # noqa: PLC0415
    from amlscore.reports.model_cache import prepare_model  # noqa: PLC0415
    from amlscore.reports.sources import load_registered_model  # noqa: PLC0415
    from amlscore.reports.store import CaseStore  # noqa: PLC0415

    t0 = time.perf_counter()
    prep = getattr(result, "prepared", None)
    reuse = (prep is not None and getattr(prep, "feedback_rows", 1) == 0
             and prep.feature_params.hash == load_feature_params().hash)
    with stage_progress("case store", err) as report:
        store = CaseStore.open(out, progress=report, dataset=dataset if reuse else None,
                               features=prep.features if reuse else None)
    model = load_registered_model(alias="champion", tracking_uri=uri)  # resolved once here; kept for the reports
    with stage_progress("explain alerts", err) as report:
        done = prepare_model(store, model, progress=report)
    console.print(f"[bold]6. case reports[/]: @champion (version {champion_version}) scores and explanations of its "
                  f"{done['alerts']:,} alerts kept in {store.root} ({time.perf_counter() - t0:.0f} s); "
                  "`amlscore report case --txn TXN_ID --out case.html` writes an alert's report in a few seconds.")


__all__ = ["demo"]
