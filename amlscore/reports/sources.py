"""Where a report's inputs come from: the model registry, a model-set folder and the audit log.

Reports only read. A registered model set is found and opened in three steps, each remembered so
that, once a version has been seen, the report of an alert neither starts MLflow nor loads the
estimators:

1. **Resolution** of the alias (or version) to a registry version and its run id:
   :meth:`amlscore.core.registry.RegistryLoader.resolve_cached`, which keeps the answer while a
   SQLite registry file is unchanged (a registry behind a server is asked every time; a version
   already downloaded is then used as it is).
2. **Download** into ``<cache>/<name>/<version>`` (default cache ``<state>/models``, shared with the
   service): :meth:`amlscore.core.registry.RegistryLoader.download`, the service's own. A folder whose
   ``MLmodel`` names another run than the registry's version (a registry deleted and trained again
   numbers its versions from 1 again) is downloaded again.
3. **Opening**: :class:`LazyModelSet` reads the model set's manifest (metadata, thresholds, and the
   sha256 of every file, checked) and its rules configuration; LightGBM, the IsolationForest and
   scikit-learn are imported and loaded on first use only. A case report finds the window's scores
   and the explanation it needs in the case store (:mod:`amlscore.reports.model_cache`, keyed by the
   manifest's sha256), so it usually never loads them.

The audit log is opened through :class:`amlscore.core.audit.AuditLog` and only its reader methods are
called.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlscore.contract.errors import AmlError
from amlscore.core.registry import (
    _COMPLETE,
    MODEL_NAME,
    RegistryLoader,
    RegistryUnavailable,
    download_run_id,
    find_model_set_dir,
    sqlite_path,
)
from amlscore.reports.case_types import CaseError, ModelInfo
from amlscore.settings import default_data_dir, default_state_dir, default_tracking_uri  # noqa: F401 - the notebooks read them here

if TYPE_CHECKING:  # the estimators' modules load only when a report needs them
    from amlscore.core.audit import AuditLog, AuditRecord
    from amlscore.models.model_set import ModelSet
    from amlscore.models.rules import RulesConfig

MANIFEST = "model_set.json"  # amlscore.models.model_set's manifest file


class SourceError(AmlError):
    """A model set or an audit log cannot be opened."""


def default_audit_path() -> Path:
    return default_state_dir() / "audit.sqlite"


# ---------------------------------------------------------------------------------------------
# A model set opened lazily
# ---------------------------------------------------------------------------------------------
class LazyModelSet:
    """A saved model set (:meth:`amlscore.models.model_set.ModelSet.save`) whose estimators load on first use.

    What a report reads of every model set is here at once, from the manifest: ``metadata``,
    ``feature_names``, ``alert_threshold``, ``rules_config`` (``rules.yaml``, hash checked) and
    ``content_hash`` (sha256 of the manifest, which holds the sha256 of every file, so it names
    the model's content). Every file's sha256 is checked on opening, as ``ModelSet.load`` does.
    Any other attribute (``score_frame``, ``explain_vector``, ``classifier``, ...) loads the model
    set with ``ModelSet.load`` and is taken from it.

    Parameters
    ----------
    folder : path
        The model-set folder, or a downloaded registered model holding ``artifacts/model_set``.
    extra_metadata : mapping, optional
        Added to ``metadata`` (the registry's name, version and run id, as the service adds them).
    """

    def __init__(self, folder: str | Path, extra_metadata: Mapping[str, Any] | None = None) -> None:
        folder = Path(folder)
        path = folder / MANIFEST
        if not path.is_file():
            nested = folder / "artifacts" / "model_set" / MANIFEST
            if not nested.is_file():
                raise SourceError(f"{folder} is not a model set: it has no {MANIFEST}.")
            folder, path = nested.parent, nested
        raw = path.read_bytes()
        manifest = json.loads(raw)
        if manifest.get("format") != "amlscore-model-set":
            raise SourceError(f"{folder} is not a model set: its {MANIFEST} has format {manifest.get('format')!r}.")
        for name, digest in manifest.get("files", {}).items():
            p = folder / name
            if not p.is_file():
                raise SourceError(f"The model set in {folder} is incomplete: {name} is missing.")
            with p.open("rb") as handle:
                actual = hashlib.file_digest(handle, "sha256").hexdigest()
            if actual != digest:
                raise SourceError(f"The model set in {folder} was altered: {name} does not match its recorded sha256.")
        self.folder = folder
        self.content_hash = hashlib.sha256(raw).hexdigest()
        self.feature_names: tuple[str, ...] = tuple(manifest["feature_names"])
        self._thresholds = dict(manifest["thresholds"])
        self._extra = dict(extra_metadata or {})
        # as ModelSet.__init__ builds it: the saved metadata (which holds the feature-set version and the
        # hashes), the thresholds in force, then what the registry adds
        self.metadata: dict[str, Any] = {**manifest["metadata"], "thresholds": dict(self._thresholds), **self._extra}
        self._model_set: ModelSet | None = None

    @property
    def alert_threshold(self) -> float:
        """The cut-off in force on the 0..100 suspicion score."""
        return float(self._thresholds["alert_threshold"])

    @cached_property
    def rules_config(self) -> RulesConfig:
        """The model set's rules configuration (``rules.yaml``), checked against the recorded hash."""
        from amlscore.models.rules import load_rules_config

        cfg = load_rules_config(self.folder / "rules.yaml")
        recorded = self.metadata.get("rules_config_hash")
        if recorded is not None and cfg.hash != recorded:
            raise SourceError(f"rules.yaml in {self.folder} has hash {cfg.hash[:12]}, the model set records {str(recorded)[:12]}.")
        return cfg

    @property
    def is_loaded(self) -> bool:
        """Whether the estimators have been loaded (reports served from the case store's caches never do)."""
        return self._model_set is not None

    def load(self) -> ModelSet:
        """The :class:`amlscore.models.model_set.ModelSet` itself (loaded once)."""
        if self._model_set is None:
            from amlscore.models.model_set import ModelSet

            ms = ModelSet.load(self.folder)
            ms.metadata.update(self._extra)
            self._model_set = ms
        return self._model_set

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # private and special names are never forwarded (copy, pickle, half-built objects)
            raise AttributeError(name)
        return getattr(self.load(), name)

    def __repr__(self) -> str:
        state = "loaded" if self._model_set is not None else "not loaded yet"
        return f"LazyModelSet({str(self.folder)!r}, {self.content_hash[:12]}, {state})"


def load_model_dir(path: str | Path) -> ModelInfo:
    """A model set from a local folder, e.g. ``artifacts/model_set`` of a download (opened lazily)."""
    path = Path(path)
    if not path.is_dir():
        raise SourceError(f"The '--model-dir' option must be a model-set folder. Got {str(path)!r} instead.")
    ms = LazyModelSet(path)
    get = ms.metadata.get
    return ModelInfo(model_set=ms, name=get("model_name") or path.name, version=get("model_version"), alias=None,
                     run_id=get("run_id"))


def _download(loader: RegistryLoader, version: str, run_id: str | None) -> None:
    """The service's download of ``version`` (reused when it is of ``run_id``); its failure as :class:`SourceError`."""
    try:
        loader.download(version, run_id)
    except RegistryUnavailable as exc:
        raise SourceError(str(exc)) from None


def load_registered_model(alias: str | None = "champion", version: str | None = None, tracking_uri: str | None = None,
                          name: str = MODEL_NAME, cache_dir: str | Path | None = None) -> ModelInfo:
    """A registered model set by alias or version, opened lazily (:class:`LazyModelSet`).

    The version is resolved in the registry unless a SQLite registry is unchanged since it was last
    resolved; the download in ``cache_dir`` (default ``<state>/models``, shared with the service)
    is reused when it is of the registry's run. See the module docstring.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_state_dir() / "models"
    uri = tracking_uri or default_tracking_uri()
    db = sqlite_path(uri)
    pinned = cache / name / str(version) if version is not None else None
    if pinned is not None and (db is None or not db.is_file()) and (pinned / _COMPLETE).exists():
        # a version already downloaded, and a registry we cannot cheaply check: used as it is
        resolved, run_id = str(version), download_run_id(pinned)
    else:
        if db is not None and not db.is_file():
            # MLflow would create an empty store there: say what is missing instead
            raise SourceError(f"there is no MLflow store at {uri} (train a model set first: amlscore demo, or pass --tracking-uri)")
        try:
            loader = RegistryLoader(uri, name, cache)
            resolved, run_id = loader.resolve_cached(alias, None if version is None else str(version))
            _download(loader, resolved, run_id)
        except SourceError:
            raise
        except Exception as exc:  # amlscore.serving.errors.NotReady and MLflow's own
            what = f"version {version}" if version else f"alias @{alias}"
            raise SourceError(f"cannot load {what} of the registered model {name!r} from {uri}: "
                              f"{getattr(exc, 'message', None) or exc}") from None
    local = cache / name / resolved
    ms = LazyModelSet(find_model_set_dir(local),
                      extra_metadata={"model_version": resolved, "registered_model_name": name, "run_id": run_id})
    return ModelInfo(model_set=ms, name=name, version=resolved, alias=None if version else alias, run_id=run_id)


def open_audit(path: str | Path | None = None) -> AuditLog:
    """The audit log at ``path`` (default ``<state>/audit.sqlite``), for reading. It must exist."""
    from amlscore.core.audit import AuditLog

    p = Path(path) if path is not None else default_audit_path()
    if not p.is_file():
        raise SourceError(f"The audit log {p} does not exist: pass --audit with the service's <state>/audit.sqlite.")
    return AuditLog(p, sync="normal")


def audit_record(audit: AuditLog, request_id: str) -> AuditRecord:
    """The decision recorded under ``request_id``; :class:`CaseError` naming it when there is none."""
    rec = audit.by_request(str(request_id))
    if rec is None:
        raise CaseError(f"no decision with request id {request_id!r} in the audit log {getattr(audit, 'path', '')}")
    return rec


def deferred_explanation(audit: AuditLog, request_id: str, lang: str) -> dict[str, Any] | None:
    """An explanation frozen in the audit log after the decision (``/v1/explain``), in ``lang`` or any language."""
    for lg in (lang, "en", "zh"):
        stored = audit.explanation(request_id, lg)
        if stored is not None:
            return stored["explanation"]
    return None


def open_audit_if_present(path: str | Path | None = None) -> AuditLog | None:
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
