"""The registered model set: its name, and loading it from the MLflow model registry (read only).

Serving, the reports and training all name the model set through :data:`MODEL_NAME`.

The service serves ``models:/aml-model-set@champion`` unless told another alias or a version. It
resolves the alias to a version once, at start (or on ``/v1/admin/reload``): a promotion in the
registry does not change a running service. Artifacts are downloaded into
``<state>/models/<name>/<version>/`` and reused from there on the next start; an old version is
loaded again from the registry only to explain a decision it made (:class:`ModelCache`).
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from amlscore.contract.errors import AmlError
from amlscore.core.audit import utc_now_iso

log = logging.getLogger(__name__)
MODEL_NAME = "aml-model-set"  # the registered model of every model set
MODEL_SET_SUBDIR = ("artifacts", "model_set")  # where the pyfunc keeps the model set inside a registered model
_COMPLETE = ".amlscore-download-complete"


class RegistryUnavailable(AmlError):
    """The registry cannot resolve or hand out a model set (no such alias or version, store unreachable)."""


class ModelSetLike(Protocol):
    """What serving needs of :class:`amlscore.models.model_set.ModelSet`."""

    feature_names: Any
    metadata: Any
    alert_threshold: float

    def score_vector(self, x: np.ndarray) -> Any: ...
    def explain_vector(self, x: np.ndarray, top_k: int = 8, lang: str = "en") -> Any: ...
    def check_features(self, names: Any) -> Any: ...


def meta_value(model_set: Any, key: str, default: Any = None) -> Any:
    """``model_set.metadata[key]`` whether the metadata is a mapping or an object with attributes."""
    meta = getattr(model_set, "metadata", None)
    if meta is None:
        return default
    if isinstance(meta, Mapping):
        return meta.get(key, default)
    return getattr(meta, key, default)


@dataclass
class LoadedModel:
    """A model set with where it came from."""

    model_set: Any
    name: str
    version: str
    alias: str | None
    source: str
    run_id: str | None = None
    loaded_at: str = field(default_factory=utc_now_iso)

    def versions(self) -> dict[str, Any]:
        """Model and configuration versions, as recorded with every decision."""
        ms = self.model_set
        return {
            "model_name": self.name,
            "model_version": self.version,
            "model_alias": self.alias,
            "feature_set_version": _str_or_none(meta_value(ms, "feature_set_version")),
            "feature_params_hash": _str_or_none(meta_value(ms, "feature_params_hash")),
            "rules_config_hash": _str_or_none(meta_value(ms, "rules_config_hash")),
            "data_fingerprint": _str_or_none(meta_value(ms, "data_fingerprint")),
        }


def _str_or_none(v: Any) -> str | None:
    return None if v is None else str(v)


def find_model_set_dir(root: Path) -> Path:
    """The model-set folder inside a downloaded registered model (``artifacts/model_set`` or the root)."""
    candidate = root.joinpath(*MODEL_SET_SUBDIR)
    if candidate.is_dir():
        return candidate
    for path in sorted(root.rglob("model_set")):
        if path.is_dir():
            return path
    return root


def load_model_set_dir(path: Path) -> Any:
    """``ModelSet.load(path)`` (imported here so that the rest of serving loads without it)."""
    from amlscore.models.model_set import ModelSet

    return ModelSet.load(path)


class RegistryLoader:
    """Resolves aliases and versions in the MLflow registry and loads model sets.

    Failures raise :attr:`unavailable` (serving sets its own 503 error class there).
    """

    unavailable: type[Exception] = RegistryUnavailable

    def __init__(self, tracking_uri: str, name: str, cache_dir: Path,
                 load_dir: Callable[[Path], Any] | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.name = name
        self.cache_dir = Path(cache_dir)
        self._load_dir = load_dir or load_model_set_dir

    def _client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def resolve(self, alias: str | None = None, version: str | None = None) -> tuple[str, str | None]:
        """(version, run_id) of ``version`` or of the version ``alias`` points at."""
        client = self._client()
        try:
            mv = client.get_model_version(self.name, str(version)) if version else client.get_model_version_by_alias(self.name, str(alias))
        except Exception as exc:  # mlflow raises MlflowException (and others for an unreachable store)
            what = f"version {version}" if version else f"alias {alias!r}"
            raise self.unavailable(f"cannot resolve {what} of registered model {self.name!r} at {self.tracking_uri}: "
                           f"{getattr(exc, 'message', None) or exc}. Train and promote a model set first "
                           "(amlscore train --data DIR; amlscore promote), or point MLFLOW_TRACKING_URI at the "
                           "registry that holds it.") from None
        return str(mv.version), getattr(mv, "run_id", None)

    def load(self, alias: str | None = None, version: str | None = None) -> LoadedModel:
        """Resolve, download (or reuse the cached download) and load a model set."""
        resolved, run_id = self.resolve(alias, version)
        local = self._download(resolved, run_id)
        model_set = self._load_dir(find_model_set_dir(local))
        meta = getattr(model_set, "metadata", None)
        if isinstance(meta, dict):  # the saved metadata predates the registry version number
            meta["model_version"] = resolved
            meta["registered_model_name"] = self.name
            meta["run_id"] = run_id
        return LoadedModel(model_set=model_set, name=self.name, version=resolved, alias=None if version else alias,
                           source=f"models:/{self.name}/{resolved}", run_id=run_id)

    def _download(self, version: str, run_id: str | None = None) -> Path:
        target = self.cache_dir / self.name / version
        if is_download_of(target, run_id):
            return target
        import mlflow
        import mlflow.artifacts

        # models:/ URIs are resolved partly through the process-wide URIs (the logged model of MLflow 3):
        # without these, MLflow would look in (and create) ./mlflow.db
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        if target.exists():
            shutil.rmtree(target)
        tmp = target.with_name(f".{version}.partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{self.name}/{version}", dst_path=str(tmp),
                                                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        except Exception as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise self.unavailable(f"cannot download models:/{self.name}/{version} from {self.tracking_uri}: "
                           f"{getattr(exc, 'message', None) or exc}") from None
        (tmp / _COMPLETE).write_text(utc_now_iso() + "\n", encoding="utf-8")
        tmp.rename(target)
        return target


_RUN_ID = re.compile(r"^run_id:\s*['\"]?([0-9A-Za-z_-]+)", re.M)


def download_run_id(folder: Path) -> str | None:
    """The run id a downloaded registered model came from (its ``MLmodel``), or None when unknown."""
    try:
        m = _RUN_ID.search((folder / "MLmodel").read_text(encoding="utf-8"))
    except OSError:
        return None
    return m.group(1) if m else None


def is_download_of(folder: Path, run_id: str | None) -> bool:
    """Whether ``folder`` holds a complete download of the model version made by ``run_id``.

    Downloads are kept by version number; a registry created anew (or another one at the same
    path) numbers its versions from 1 again, so a version's folder is reused only for the same run.
    """
    if not (folder / _COMPLETE).exists():
        return False
    found = download_run_id(folder)
    return run_id is None or found is None or found == run_id


class FolderLoader:
    """Serves the one model set saved in a folder, without a registry: what a Bento or a container image
    carries (``AML_MODEL_DIR``). Its version is the one recorded in the model set (``local`` if none).

    Failures raise :attr:`unavailable`, like :class:`RegistryLoader`.
    """

    unavailable: type[Exception] = RegistryUnavailable

    def __init__(self, folder: Path, name: str, load_dir: Callable[[Path], Any] | None = None) -> None:
        self.folder = Path(folder)
        self.name = name
        self._load_dir = load_dir or load_model_set_dir
        self._loaded: LoadedModel | None = None

    def resolve(self, alias: str | None = None, version: str | None = None) -> tuple[str, str | None]:
        """(version, run_id) of the folder's model set; any other version is unavailable."""
        loaded = self._load()
        if version is not None and str(version) != loaded.version:
            raise self.unavailable(f"model version {version} is not in {self.folder}, which holds version "
                                   f"{loaded.version} only.")
        return loaded.version, loaded.run_id

    def load(self, alias: str | None = None, version: str | None = None) -> LoadedModel:
        self.resolve(alias, version)
        assert self._loaded is not None
        return self._loaded

    def _load(self) -> LoadedModel:
        if self._loaded is None:
            if not self.folder.is_dir():
                raise self.unavailable(f"the model set folder {self.folder} does not exist (AML_MODEL_DIR).")
            try:
                model_set = self._load_dir(find_model_set_dir(self.folder))
            except AmlError as exc:
                raise self.unavailable(f"cannot load the model set in {self.folder}: {exc}") from None
            version = _str_or_none(meta_value(model_set, "model_version")) or "local"
            self._loaded = LoadedModel(model_set=model_set, name=self.name, version=version, alias=None,
                                       source=str(self.folder), run_id=_str_or_none(meta_value(model_set, "run_id")))
        return self._loaded


class ModelCache:
    """Model sets by version: the one serving plus a few older ones, loaded only to explain their decisions."""

    def __init__(self, loader: RegistryLoader, size: int = 3) -> None:
        self.loader = loader
        self.size = size
        self._lock = threading.Lock()
        self._by_version: OrderedDict[str, Any] = OrderedDict()

    def put(self, version: str, model_set: Any) -> None:
        with self._lock:
            self._by_version[version] = model_set
            self._by_version.move_to_end(version)
            while len(self._by_version) > self.size:
                self._by_version.popitem(last=False)

    def get(self, version: str) -> Any:
        with self._lock:
            if version in self._by_version:
                self._by_version.move_to_end(version)
                return self._by_version[version]
        log.info("loading model version %s to explain a decision it made", version)
        loaded = self.loader.load(version=version)
        self.put(version, loaded.model_set)
        return loaded.model_set
