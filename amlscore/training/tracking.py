"""MLflow: where runs go, what a training run logs, and the model registry.

This is the only module that writes to MLflow.

Where
-----
* ``MLFLOW_TRACKING_URI`` when set (a tracking server, or any MLflow URI); otherwise
  ``sqlite:///<home>/mlflow.db`` (:mod:`amlscore.settings`). The registry uses the same URI.
* For a SQLite store, artifacts go to ``mlartifacts/`` beside the database file (so the project's
  default is ``<home>/mlartifacts``, and a test's ``sqlite:///<tmp>/mlflow.db`` keeps its
  artifacts in ``<tmp>/mlartifacts``). A server keeps its own artifact store.
* Experiment: ``amlscore`` unless told otherwise.

What a training run logs
------------------------
* **params**: the :class:`~amlscore.training.result.TrainConfig` (``seed``, ``cutoff``, ``fractions``, caps,
  overrides...), the split (``train_start``, ``valid_start``, ``test_start``, ``test_end`` and the
  three label cut-offs), ``data_fingerprint``, ``feature_set_version``, ``feature_params_hash``,
  ``rules_config_hash``, ``code_version`` (git sha), ``n_features``, ``feature_list``, the fitted
  LightGBM tree count, fusion weights and thresholds.
* **metrics**: ``test_*`` (fused score on the primary labels: ``pr_auc``, ``roc_auc``,
  ``recall_at_0_5pct``, ``recall_at_1pct``, ``precision_at_k``, ``f1_at_threshold`` ...),
  ``test_<component>_*`` for rules/lgbm/anomaly, ``test_reports_*`` (report labels),
  ``test_typology_recall_1pct_<typology>``, ``valid_*``, ``seconds_<stage>``, label counts.
* **artifacts**: ``pr_curve.png``, ``score_histograms.png``, ``shap_summary.png``, ``model_card.md``,
  ``metrics.json``, ``per_typology.csv``, ``slices.csv``, ``features.json``.
* **model**: the model set as ONE pyfunc model named ``model_set`` (code: ``pyfunc_model.py``;
  artifact ``model_set`` = the :meth:`ModelSet.save` directory), with signature and input example,
  registered as :data:`REGISTERED_MODEL_NAME` with the alias ``challenger`` on the new version. The
  ``amlscore`` package itself travels with it (``code_paths``: ``code/amlscore`` in the logged model), so
  ``mlflow models serve -m models:/aml-model-set@champion`` and ``mlflow.pyfunc.load_model`` work where
  amlscore is not installed (its dependencies are the model's pip requirements).

Loading a registered version without this module: ``mlflow.artifacts.download_artifacts(
"models:/aml-model-set@champion")`` then ``ModelSet.load(<download>/artifacts/model_set)``
(:meth:`ModelSet.load` also accepts ``<download>`` itself).
"""

from __future__ import annotations

import importlib.metadata
import shutil
import tempfile
import time
import weakref
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.models.model_set import ModelSet
from amlscore.training.result import REGISTERED_MODEL_NAME

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.entities.model_registry import ModelVersion

    from amlscore.training.result import TrainConfig, TrainResult

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "DEFAULT_EXPERIMENT",
    "REGISTERED_MODEL_NAME",
    "RegisteredModelSet",
    "artifact_root_for",
    "client",
    "configure",
    "finish_protocol_run",
    "log_protocol_cell",
    "load_model_set",
    "log_model_set",
    "log_training_run",
    "resolve_version",
    "start_protocol_run",
    "tracking_uri",
]

CHALLENGER = "challenger"
CHAMPION = "champion"
DEFAULT_EXPERIMENT = "amlscore"
MODEL_NAME_IN_RUN = "model_set"
_PIP_PACKAGES = ("lightgbm", "scikit-learn", "scipy", "numpy", "pandas", "pyarrow", "numba", "pyyaml", "pydantic",
                 "joblib", "mlflow")


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` or ``sqlite:///<home>/mlflow.db`` (:mod:`amlscore.settings`)."""
    from amlscore.settings import default_tracking_uri

    return default_tracking_uri()


def artifact_root_for(uri: str) -> str | None:
    """For a SQLite store, ``file://<folder of the db>/mlartifacts``; else None (the server decides)."""
    if not uri.startswith("sqlite:"):
        return None
    # sqlite:///relative.db or sqlite:////absolute/path.db
    path = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else urlparse(uri).path
    db = Path(path)
    return (db.resolve().parent / "mlartifacts").as_uri()


def configure(experiment: str | None = None) -> str:
    """Point MLflow at :func:`tracking_uri` and make sure the experiment exists; return its id."""
    import mlflow  # noqa: PLC0415

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    name = experiment or DEFAULT_EXPERIMENT
    c = mlflow.MlflowClient()
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    root = artifact_root_for(uri)
    return c.create_experiment(name, artifact_location=f"{root}/{name}" if root else None)


def client():  # noqa: ANN201 - mlflow.MlflowClient
    """An MlflowClient on :func:`tracking_uri` (tracking and registry)."""
    import mlflow  # noqa: PLC0415

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _pip_requirements() -> list[str]:
    reqs = []
    for pkg in _PIP_PACKAGES:
        try:
            reqs.append(f"{pkg}=={importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - environment specific
            reqs.append(pkg)
    return reqs


def _input_example(features: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """Two synthetic rows (medians and 90th percentiles of the given rows): no real transaction leaves."""
    cols = {n: features[n].astype("float64") for n in names}
    frame = pd.DataFrame(cols)
    med = frame.median(skipna=True)
    hi = frame.quantile(0.9, numeric_only=True)
    return pd.DataFrame([med.to_numpy(), hi.to_numpy()], columns=list(names)).astype("float64")


def log_model_set(model_set: ModelSet, example_features: pd.DataFrame, *, tags: dict[str, str] | None = None,
                  alias: str | None = CHALLENGER) -> tuple[str, str]:
    """Log ``model_set`` as one pyfunc model in the active run, register it, set ``alias``.

    Returns
    -------
    (model_uri, version)
    """
    import mlflow  # noqa: PLC0415
    from mlflow.models import infer_signature  # noqa: PLC0415

    example = _input_example(example_features, model_set.feature_names)
    signature = infer_signature(example, model_set.score_frame(example))
    with tempfile.TemporaryDirectory(prefix="amlscore-model-set-") as tmp:
        local = Path(tmp) / "model_set"
        model_set.save(local)
        with warnings.catch_warnings():
            # MLflow asks for type hints on predict; the explicit signature below is the schema instead.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\..*")
            info = _log_pyfunc(mlflow, local, signature, example, model_set)
    version = mlflow.register_model(info.model_uri, REGISTERED_MODEL_NAME, tags=tags or {})
    c = client()
    if alias:
        c.set_registered_model_alias(REGISTERED_MODEL_NAME, alias, version.version)
    c.set_registered_model_tag(REGISTERED_MODEL_NAME, "model_set_artifact_path", "artifacts/model_set")
    return info.model_uri, str(version.version)


def package_code(target: Path) -> Path:
    """A copy of the ``amlscore`` package (sources, configs, templates; no byte code) in ``target/amlscore``.

    Logged as the model's ``code_paths``: MLflow puts ``<model>/code`` first on ``sys.path`` when it
    loads the model, so the pyfunc imports the amlscore it was logged with.
    """
    import amlscore  # noqa: PLC0415

    source = Path(amlscore.__file__).resolve().parent
    destination = target / "amlscore"
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.partial"))
    return destination


def _log_pyfunc(mlflow: Any, local: Path, signature: Any, example: pd.DataFrame, model_set: ModelSet) -> Any:
    with tempfile.TemporaryDirectory(prefix="amlscore-code-") as code:
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME_IN_RUN,
            python_model=str(Path(__file__).with_name("pyfunc_model.py")),  # models from code: no pickle
            artifacts={"model_set": str(local)},
            code_paths=[str(package_code(Path(code)))],
            signature=signature,
            input_example=example,
            pip_requirements=_pip_requirements(),
            metadata={k: v for k, v in model_set.metadata.items() if isinstance(v, (str, int, float, bool))},
        )


def log_training_run(result: "TrainResult", config: "TrainConfig", test_scores: pd.DataFrame | None = None, *,
                     experiment: str | None = None) -> tuple[str, str]:
    """Log a finished training as one MLflow run and register its model set (alias ``challenger``).

    Fills ``result.run_id``, ``result.model_version`` and ``result.model_uri``.
    """
    import mlflow  # noqa: PLC0415

    from amlscore.training.report import write_artifacts  # noqa: PLC0415

    if test_scores is None:
        if result.test_scores is None:
            raise AmlError("The training result carries no test scores to log (train() fills them).")
        test_scores = result.test_scores

    exp_id = configure(experiment)
    ms = result.model_set
    md = ms.metadata
    split = result.prepared.split.describe()
    params: dict[str, Any] = {**config.to_params(), **{k: ("" if v is None else v) for k, v in split.items()}}
    params.update({
        "data_fingerprint": md["data_fingerprint"], "feature_set_version": md["feature_set_version"],
        "feature_params_hash": md["feature_params_hash"], "rules_config_hash": md["rules_config_hash"],
        "code_version": md["code_version"], "n_features": len(ms.feature_names),
        "feature_list": ",".join(ms.feature_names), "anomaly_features": ",".join(ms.detector.feature_names_),
        "lgbm_trees": ms.classifier.best_iteration_, "fusion_coef": ",".join(f"{c:.6g}" for c in ms.fusion.coef_),
        "fusion_intercept": f"{ms.fusion.intercept_:.6g}", "alert_threshold": f"{ms.alert_threshold:.6g}",
        "rate_threshold": f"{ms.thresholds.rate_threshold:.6g}",
        "precision_threshold": f"{ms.thresholds.precision_threshold:.6g}",
        "label_source_test": result.test_report.label_source,
    })
    metrics = result.test_report.flat_metrics("test")
    metrics.update({k: v for k, v in result.valid_metrics.items() if v == v})
    metrics.update({f"seconds_{k}": v for k, v in result.timings.items()})
    metrics.update({k: float(v) for k, v in result.diagnostics.items() if isinstance(v, (int, float)) and v == v})
    with mlflow.start_run(experiment_id=exp_id, run_name=f"train {split['test_start']}") as run:
        mlflow.set_tags({"mlflow.source.git.commit": md["code_version"], "amlscore.stage": "train",
                         "data_source": md.get("data_source") or ""})
        result.run_id = run.info.run_id  # the model card names its run
        mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory(prefix="amlscore-run-") as tmp:
            write_artifacts(Path(tmp), result, config, test_scores)
            mlflow.log_artifacts(tmp)
        tags = {"run_id": run.info.run_id, "data_fingerprint": md["data_fingerprint"],
                "data_source": md.get("data_source") or "", "test_start": split["test_start"],
                "test_end": split["test_end"], "valid_start": split["valid_start"],
                "test_pr_auc": f"{result.test_report.overall['pr_auc']:.6f}",
                "test_recall_at_1pct": f"{result.test_report.overall['recall_at_1pct']:.6f}",
                "label_source": result.test_report.label_source}
        model_uri, version = log_model_set(ms, result.prepared.features.iloc[np.flatnonzero(result.prepared.split_codes == 1)],
                                           tags=tags)
        mlflow.set_tag("registered_model_version", version)
    result.run_id, result.model_version, result.model_uri = run.info.run_id, version, model_uri
    ms.metadata["model_version"] = version
    ms.metadata["run_id"] = run.info.run_id
    return run.info.run_id, version


# ------------------------------------------------------------------------------------------------
# The generalisation protocol: a parent run per grid, a child run per cell
# ------------------------------------------------------------------------------------------------


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and v == v and abs(v) != float("inf")}


def start_protocol_run(name: str, params: dict[str, Any], *, experiment: str | None = None) -> str:
    """Open the parent run of a protocol grid (left running until :func:`finish_protocol_run`); its id."""
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME  # noqa: PLC0415

    exp_id = configure(experiment)
    c = client()
    run = c.create_run(exp_id, tags={MLFLOW_RUN_NAME: f"protocol {name}", "amlscore.stage": "protocol"})
    for k, v in params.items():
        c.log_param(run.info.run_id, k, str(v)[:6000])
    return run.info.run_id


def log_protocol_cell(parent_run_id: str, name: str, params: dict[str, Any], metrics: dict[str, float],
                      tags: dict[str, str] | None = None) -> str:
    """One finished cell as a child run of the grid's parent run: its parameters and metrics."""
    from mlflow.entities import Metric, Param, RunTag  # noqa: PLC0415
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME  # noqa: PLC0415

    c = client()
    parent = c.get_run(parent_run_id)
    run = c.create_run(parent.info.experiment_id, tags={MLFLOW_PARENT_RUN_ID: parent_run_id, MLFLOW_RUN_NAME: name,
                                                        "amlscore.stage": "protocol_cell", **(tags or {})})
    now = int(time.time() * 1000)
    c.log_batch(run.info.run_id,
                metrics=[Metric(k, v, now, 0) for k, v in _finite(metrics).items()],
                params=[Param(k, str(v)[:6000]) for k, v in params.items()],
                tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()])
    c.set_terminated(run.info.run_id)
    return run.info.run_id


def finish_protocol_run(parent_run_id: str, metrics: dict[str, float], artifacts: list[Path]) -> None:
    """Log the grid's summary metrics and files on the parent run and close it."""
    c = client()
    now = int(time.time() * 1000)
    from mlflow.entities import Metric  # noqa: PLC0415

    c.log_batch(parent_run_id, metrics=[Metric(k, v, now, 0) for k, v in _finite(metrics).items()])
    for path in artifacts:
        c.log_artifact(parent_run_id, str(path))
    c.set_terminated(parent_run_id)


# ------------------------------------------------------------------------------------------------
# Registry reads
# ------------------------------------------------------------------------------------------------


@dataclass
class RegisteredModelSet:
    """A model set loaded from the registry, with its version record."""

    model_set: ModelSet
    version: str
    aliases: tuple[str, ...]
    tags: dict[str, str]
    run_id: str | None


def resolve_version(version: str | int | None = None, alias: str | None = None) -> "ModelVersion":
    """The registry record of ``version``, or of ``alias`` (default ``champion``).

    Raises
    ------
    AmlError
        When the registered model, the version or the alias does not exist.
    """
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    c = client()
    try:
        if version is not None:
            return c.get_model_version(REGISTERED_MODEL_NAME, str(version))
        return c.get_model_version_by_alias(REGISTERED_MODEL_NAME, alias or CHAMPION)
    except MlflowException as exc:
        what = f"version {version}" if version is not None else f"alias @{alias or CHAMPION}"
        raise AmlError(f"No {what} of the registered model {REGISTERED_MODEL_NAME} in {tracking_uri()}: "
                       f"{exc.message if hasattr(exc, 'message') else exc}") from None


def load_model_set(version: str | int | None = None, alias: str | None = None,
                   dst: str | Path | None = None) -> RegisteredModelSet:
    """Download a registered version's artifacts and load its model set (as serving does)."""
    import mlflow  # noqa: PLC0415

    mv = resolve_version(version, alias)
    client()
    target = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="amlscore-model-"))
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{REGISTERED_MODEL_NAME}/{mv.version}",
                                                    dst_path=str(target))
        ms = ModelSet.load(Path(local) / "artifacts" / "model_set")
    except BaseException:
        if dst is None:
            shutil.rmtree(target, ignore_errors=True)
        raise
    if dst is None:
        # a download of our own: removed with the model set (or at exit), which reads it lazily until then
        weakref.finalize(ms, shutil.rmtree, str(target), True)
    ms.metadata["model_version"] = str(mv.version)
    ms.metadata["registered_model_name"] = REGISTERED_MODEL_NAME
    ms.metadata["run_id"] = mv.run_id
    return RegisteredModelSet(ms, str(mv.version), tuple(getattr(mv, "aliases", ()) or ()), dict(mv.tags or {}), mv.run_id)


def set_alias(alias: str, version: str) -> None:
    """Point ``alias`` at ``version``."""
    client().set_registered_model_alias(REGISTERED_MODEL_NAME, alias, str(version))


def tag_version(version: str, tags: dict[str, str]) -> None:
    c = client()
    for k, v in tags.items():
        c.set_model_version_tag(REGISTERED_MODEL_NAME, str(version), k, str(v))
