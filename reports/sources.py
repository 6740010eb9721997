"""Where a report's inputs come from: the model registry, a model-set folder and the audit log.

Reports only read. The model set is loaded the way the service loads it
(:class:`serving.registry.RegistryLoader`: ``models:/aml-model-set@champion`` downloaded once into
``<state>/models/<name>/<version>``); a version already downloaded is loaded from there without
asking MLflow at all, which keeps the report of an alert fast. The audit log is opened through
:class:`serving.audit.AuditLog` and only its reader methods are called.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from contract.errors import AmlError
from reports.case import CaseError, ModelInfo

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "aml-model-set"
_COMPLETE = ".amlscore-download-complete"


class SourceError(AmlError):
    """A model set or an audit log cannot be opened."""


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else the project's ``sqlite:///<project>/mlflow.db`` (as serving)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"


def default_state_dir() -> Path:
    """``AML_STATE_DIR``, else ``<project>/state`` (as serving)."""
    return Path(os.environ.get("AML_STATE_DIR") or PROJECT_ROOT / "state")


def default_audit_path() -> Path:
    return default_state_dir() / "audit.sqlite"


def default_data_dir() -> Path:
    """``AML_DATA_DIR``, else ``<project>/data/default``."""
    return Path(os.environ.get("AML_DATA_DIR") or PROJECT_ROOT / "data" / "default")


def load_model_dir(path: str | Path) -> ModelInfo:
    """A model set from a local folder (``ModelSet.load``), e.g. ``artifacts/model_set`` of a download."""
    from models.model_set import ModelSet

    path = Path(path)
    if not path.is_dir():
        raise SourceError(f"The '--model-dir' option must be a model-set folder. Got {str(path)!r} instead.")
    ms = ModelSet.load(path)
    meta = getattr(ms, "metadata", None)
    get = (lambda k: meta.get(k)) if isinstance(meta, dict) else (lambda k: getattr(meta, k, None))
    return ModelInfo(model_set=ms, name=get("model_name") or path.name, version=get("model_version"), alias=None,
                     run_id=get("run_id"))


def load_registered_model(alias: str | None = "champion", version: str | None = None, tracking_uri: str | None = None,
                          name: str = MODEL_NAME, cache_dir: str | Path | None = None) -> ModelInfo:
    """A registered model set by alias or version.

    A version already downloaded into ``cache_dir`` (default ``<state>/models``, shared with the
    service) is loaded without contacting MLflow; otherwise the registry resolves and downloads it.
    """
    from serving.registry import RegistryLoader, find_model_set_dir, load_model_set_dir

    cache = Path(cache_dir) if cache_dir is not None else default_state_dir() / "models"
    if version is not None:
        local = cache / name / str(version)
        if (local / _COMPLETE).exists():
            return ModelInfo(model_set=load_model_set_dir(find_model_set_dir(local)), name=name, version=str(version))
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        # MLflow would create an empty store there: say what is missing instead
        raise SourceError(f"there is no MLflow store at {uri} (train a model set first: amlscore demo, or pass --tracking-uri)")
    loader = RegistryLoader(uri, name, cache)
    try:
        loaded = loader.load(alias=None if version else alias, version=version)
    except Exception as exc:  # serving.errors.NotReady and MLflow's own
        what = f"version {version}" if version else f"alias @{alias}"
        raise SourceError(f"cannot load {what} of the registered model {name!r} from {tracking_uri or default_tracking_uri()}: "
                          f"{getattr(exc, 'message', None) or exc}") from None
    return ModelInfo(model_set=loaded.model_set, name=loaded.name, version=loaded.version, alias=loaded.alias,
                     run_id=loaded.run_id)


def open_audit(path: str | Path | None = None) -> Any:
    """The audit log at ``path`` (default ``<state>/audit.sqlite``), for reading. It must exist."""
    from serving.audit import AuditLog

    p = Path(path) if path is not None else default_audit_path()
    if not p.is_file():
        raise SourceError(f"The audit log {p} does not exist: pass --audit with the service's <state>/audit.sqlite.")
    return AuditLog(p, sync="normal")


def audit_record(audit: Any, request_id: str) -> Any:
    """The decision recorded under ``request_id``; :class:`CaseError` naming it when there is none."""
    rec = audit.by_request(str(request_id))
    if rec is None:
        raise CaseError(f"no decision with request id {request_id!r} in the audit log {getattr(audit, 'path', '')}")
    return rec


def deferred_explanation(audit: Any, request_id: str, lang: str) -> dict[str, Any] | None:
    """An explanation frozen in the audit log after the decision (``/v1/explain``), in ``lang`` or any language."""
    for lg in (lang, "en", "zh"):
        stored = audit.explanation(request_id, lg)
        if stored is not None:
            return stored["explanation"]
    return None


def open_audit_if_present(path: str | Path | None = None) -> Any:
    """The audit log at ``path`` (default ``<state>/audit.sqlite``) when it exists, else None."""
    p = Path(path) if path is not None else default_audit_path()
    return open_audit(p) if p.is_file() else None


def load_model_or_none(alias: str = "champion", tracking_uri: str | None = None) -> ModelInfo | None:
    """The registered model set by alias, or None (with the reason printed) when there is none yet."""
    try:
        return load_registered_model(alias=alias, tracking_uri=tracking_uri)
    except SourceError as exc:
        print(f"no model set: {exc}")
        return None
