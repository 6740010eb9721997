"""``amlscore monitor`` and ``amlscore backtest``: drift against the training reference, and what a change would do.

* ``monitor --data DIR``: score DIR (or ``--start..--end`` of it) with the champion (or ``--version``,
  ``--alias``, ``--model-dir``), compare every feature, score and alert rate with the training reference
  stored in the model set, write an HTML drift report and its JSON summary.
* ``backtest --data DIR --rules NEW.yaml | --model challenger``: replay DIR with the champion and with the
  candidate (the champion under the new rules, or another registered version), report alerts added
  and removed per day, typology and channel, workload, recall and precision; HTML and JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from amlscore.cli.options import aml_error, parse_date
from amlscore.cli.progress import stage_progress

_DATA = typer.Option("--data", help="Data folder in the contract.", show_default=False)
_LEVELS = ("never", "warning", "action")






def load_model(version: Optional[int], alias: Optional[str], model_dir: Optional[Path]) -> tuple[Any, str]:
    """The model set to use and how to name it: a saved folder, a registered version or an alias."""
    if model_dir is not None:
        if version is not None or alias is not None:
            raise aml_error("Give --model-dir, or --version / --alias, not both.")
        from amlscore.models.model_set import ModelSet  # noqa: PLC0415

        return ModelSet.load(model_dir), str(model_dir)
    if version is not None and alias is not None:
        raise aml_error("Give --version or --alias, not both.")
    from amlscore.training.tracking import load_model_set  # noqa: PLC0415

    reg = load_model_set(version=version, alias=alias if version is None else None)
    return reg.model_set, f"aml-model-set version {reg.version}"


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(payload, indent=2, default=str, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _finite(obj: Any) -> Any:
    """NaN and infinities as None (strict JSON)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    return obj


def monitor(
    data: Annotated[Path, _DATA],
    out: Annotated[Path, typer.Option("--out", help="HTML drift report to write; its JSON summary goes next to it (.json).")] = Path("drift_report.html"),
    version: Annotated[Optional[int], typer.Option("--version", help="Registered version number.")] = None,
    alias: Annotated[Optional[str], typer.Option("--alias", help="Registered alias (default: champion).")] = None,
    model_dir: Annotated[Optional[Path], typer.Option("--model-dir", help="A saved model set folder instead of the registry.")] = None,
    start: Annotated[Optional[str], typer.Option("--start", help="First day YYYY-MM-DD to monitor (default: the first).")] = None,
    end: Annotated[Optional[str], typer.Option("--end", help="Last day YYYY-MM-DD to monitor (default: the last).")] = None,
    thresholds: Annotated[Optional[Path], typer.Option("--thresholds", help="Drift thresholds YAML (default: the package's config/drift.yaml).")] = None,
    fail_on: Annotated[str, typer.Option("--fail-on", help="Exit 1 when the status reaches this level: never, warning or action.")] = "never",
) -> None:
    """Drift of features, scores and alert rates against the model set's training reference (HTML + JSON)."""
    from amlscore.monitoring.batch import score_period  # noqa: PLC0415
    from amlscore.monitoring.config import load_thresholds  # noqa: PLC0415
    from amlscore.monitoring.drift import compute_drift, require_reference  # noqa: PLC0415
    from amlscore.monitoring.html import render_drift, write_html  # noqa: PLC0415

    if fail_on not in _LEVELS:
        raise aml_error(f"--fail-on must be never, warning or action. Got {fail_on!r} instead.")
    if out.suffix != ".html":
        raise aml_error(f"--out must end in .html. Got {out.name!r} instead.")
    limits = load_thresholds(thresholds)
    model_set, name = load_model(version, alias, model_dir)
    reference = require_reference(model_set)
    with stage_progress("monitor", Console(stderr=True)) as report:
        period = score_period(model_set, data, start=parse_date(start, "--start"), end=parse_date(end, "--end"), progress=report)
        report("drift", 0.95)
        drift = compute_drift(reference, period.columns, period.alert, period.segments, period.days, limits,
                              alert_threshold=model_set.alert_threshold,
                              model={k: model_set.metadata.get(k) for k in ("registered_model_name", "model_version",
                                                                             "trained_at", "rules_config_hash")})
    write_html(out, render_drift(drift, limits))
    _write_json(out.with_suffix(".json"), _finite(drift.to_dict()))
    console = Console(highlight=False, soft_wrap=True)
    worst = drift.worst_psi
    overall = drift.alert_rates[0]
    colour = {"ok": "green", "warning": "yellow", "action": "red"}[drift.status]
    console.print(f"[{colour}]{drift.status}[/]: {drift.rows:,} transactions {drift.period} with {name} against its "
                  f"reference {drift.reference_period}; worst PSI {worst.name} {worst.psi:.3f}; alert rate "
                  f"{overall.rate:.3%} (reference {overall.reference_rate:.3%}).")
    for f in drift.findings[:10]:
        console.print(f"  {f.level}: {f.subject}: {f.message}")
    if len(drift.findings) > 10:
        console.print(f"  ... and {len(drift.findings) - 10} more in the report")
    console.print(f"Wrote {out} and {out.with_suffix('.json')}.")
    if fail_on != "never" and _LEVELS.index(drift.status if drift.status != "ok" else "never") >= _LEVELS.index(fail_on):
        raise typer.Exit(code=1)


def backtest(
    data: Annotated[Path, _DATA],
    rules: Annotated[Optional[Path], typer.Option("--rules", help="A new rules.yaml to replay with (on the candidate model set).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Candidate model set: a registered alias (challenger), a version number or a saved model set folder.")] = None,
    base: Annotated[str, typer.Option("--base", help="Base model set: a registered alias, a version number or a saved model set folder.")] = "champion",
    start: Annotated[Optional[str], typer.Option("--start", help="First day YYYY-MM-DD to replay (default: the first).")] = None,
    end: Annotated[Optional[str], typer.Option("--end", help="Last day YYYY-MM-DD to replay (default: the last).")] = None,
    out: Annotated[Path, typer.Option("--out", help="HTML report to write; its JSON summary goes next to it (.json).")] = Path("backtest_report.html"),
) -> None:
    """Replay a period with a new rules.yaml and/or another model set: alerts added and removed, workload, recall, precision."""
    from amlscore.monitoring.backtest import compare  # noqa: PLC0415
    from amlscore.monitoring.html import render_backtest, write_html  # noqa: PLC0415
    from amlscore.training.replay import replay, with_rules  # noqa: PLC0415
    from amlscore.training.scoring import load_folder  # noqa: PLC0415

    if rules is None and model is None:
        raise aml_error("Give --rules NEW.yaml, --model CANDIDATE, or both: there is nothing to compare.")
    if out.suffix != ".html":
        raise aml_error(f"--out must end in .html. Got {out.name!r} instead.")
    base_set, base_name = _model_by_reference(base, "--base")
    candidate_set, candidate_name = (base_set, base_name) if model is None else _model_by_reference(model, "--model")
    if rules is not None:
        candidate_set = with_rules(candidate_set, rules)
        candidate_name = f"{candidate_name} with the rules of {rules}"
    with stage_progress("backtest", Console(stderr=True)) as report:
        folder = load_folder(data)
        frame = replay(base_set, candidate_set, folder, start=parse_date(start, "--start"), end=parse_date(end, "--end"),
                       progress=report)
        result = compare(frame, base=base_name, candidate=candidate_name)
    write_html(out, render_backtest(result))
    _write_json(out.with_suffix(".json"), _finite(result.to_dict()))
    console = Console(highlight=False, soft_wrap=True)
    b, c = result.metrics["base"], result.metrics["candidate"]

    def pct(v: Optional[float]) -> str:
        return "–" if v is None else f"{v:.3f}"

    console.print(f"{result.rows:,} transactions over {result.days} days ({result.period}): base {b['alerts']:,} alerts, "
                  f"candidate {c['alerts']:,} (+{result.added:,} added, -{result.removed:,} removed).")
    console.print(f"Alerts per day: base {b['alerts_per_day_mean']:.1f} (max {b['alerts_per_day_max']}), candidate "
                  f"{c['alerts_per_day_mean']:.1f} (max {c['alerts_per_day_max']}). Recall on reports: base "
                  f"{pct(b['recall_reports'])}, candidate {pct(c['recall_reports'])}; precision: base "
                  f"{pct(b['precision_reports'])}, candidate {pct(c['precision_reports'])}.")
    console.print(f"Wrote {out} and {out.with_suffix('.json')}.")


def _model_by_reference(ref: str, option: str) -> tuple[Any, str]:
    """A model set from ``ref``: a saved folder if it is one, else a version number, else an alias."""
    path = Path(ref)
    if path.is_dir():
        return load_model(None, None, path)
    if ref.isdigit():
        return load_model(int(ref), None, None)
    if not ref.replace("-", "").replace("_", "").isalnum():
        raise aml_error(f"{option} must be an alias, a version number or a model set folder. Got {ref!r} instead.")
    model_set, name = load_model(None, ref, None)
    return model_set, f"{name} (@{ref})"
