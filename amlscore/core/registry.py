"""The registered model set: its name, and loading it from the MLflow model registry (read only).

Serving, the reports and training all name the model set through :data:`MODEL_NAME`.

The service serves ``models:/aml-model-set@champion`` unless told another alias or a version. It
resolves the alias to a version once, at start (or on ``/v1/admin/reload``): a promotion in the
registry does not change a running service. Artifacts are downloaded into
``<state>/models/<name>/<version>/`` and reused from there on the next start; an old version is
loaded again from the registry only to explain a decision it made (:class:`ModelCache`).

The reports use the same loader, through :meth:`RegistryLoader.resolve_cached`: for a SQLite
registry (the project's default ``mlflow.db``) an answer is kept in ``<cache>/<name>.resolved.json``
with the database file's size and modification time (and its ``-wal`` file's, if any). Every write
to the registry (a training run, a promotion) changes them, and the next question goes to MLflow
again; a registry behind a server is asked every time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlscore.contract.errors import AmlError
from amlscore.core.audit import utc_now_iso
from amlscore.core.decision import ModelSetLike
from amlscore.storage.dirs import replace_dir

log = logging.getLogger(__name__)
MODEL_NAME = "aml-model-set"  # the registered model of every model set
MODEL_SET_SUBDIR = ("artifacts", "model_set")  # where the pyfunc keeps the model set inside a registered model
_COMPLETE = ".amlscore-download-complete"
RESOLVED_SUFFIX = ".resolved.json"  # <cache>/<name>.resolved.json: resolve_cached's answers


class RegistryUnavailable(AmlError):
    """The registry cannot resolve or hand out a model set (no such alias or version, store unreachable)."""


@dataclass
class LoadedModel:
    """A model set with where it came from."""

    model_set: ModelSetLike
    name: str
    version: str
    alias: str | None
    source: str
    run_id: str | None = None
    loaded_at: str = field(default_factory=utc_now_iso)

    def versions(self) -> dict[str, Any]:
        """Model and configuration versions, as recorded with every decision."""
        meta = self.model_set.metadata
        return {
            "model_name": self.name,
            "model_version": self.version,
            "model_alias": self.alias,
            "feature_set_version": _str_or_none(meta.get("feature_set_version")),
            "feature_params_hash": _str_or_none(meta.get("feature_params_hash")),
            "rules_config_hash": _str_or_none(meta.get("rules_config_hash")),
            "data_fingerprint": _str_or_none(meta.get("data_fingerprint")),
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


def load_model_set_dir(path: Path) -> ModelSetLike:
    """``ModelSet.load(path)`` (imported here so that the rest of serving loads without it)."""
    from amlscore.models.model_set import ModelSet

    return ModelSet.load(path)


class RegistryLoader:
    """Resolves aliases and versions in the MLflow registry and loads model sets.

    Failures raise :attr:`unavailable` (serving sets its own 503 error class there).
    """

    unavailable: type[Exception] = RegistryUnavailable

    def __init__(self, tracking_uri: str, name: str, cache_dir: Path,
                 load_dir: Callable[[Path], ModelSetLike] | None = None) -> None:
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

    def resolve_cached(self, alias: str | None = None, version: str | None = None) -> tuple[str, str | None]:
        """:meth:`resolve`, answered from ``<cache>/<name>.resolved.json`` while a SQLite registry is unchanged.

        The registry file's stamp (:func:`registry_stamp`) is taken before asking, so a write made
        while MLflow answers leaves the kept answer stale. Other registries are asked every time.
        """
        stamp = registry_stamp(self.tracking_uri)
        book_path = self.cache_dir / f"{self.name}{RESOLVED_SUFFIX}"
        key = f"version:{version}" if version is not None else f"alias:{alias}"
        book: dict[str, Any] = {}
        if stamp is not None:
            book = _read_json(book_path)
            if book.get("uri") == self.tracking_uri and book.get("stamp") == stamp:
                hit = book.get("entries", {}).get(key)
                if isinstance(hit, dict) and hit.get("version"):
                    return str(hit["version"]), hit.get("run_id")
            else:
                book = {}
        resolved, run_id = self.resolve(alias=None if version is not None else alias, version=version)
        if stamp is not None:
            entries = dict(book.get("entries", {}))
            entries[key] = entries[f"version:{resolved}"] = {"version": resolved, "run_id": run_id}
            _write_json(book_path, {"uri": self.tracking_uri, "stamp": stamp, "entries": entries})
        return resolved, run_id

    def load(self, alias: str | None = None, version: str | None = None) -> LoadedModel:
        """Resolve, download (or reuse the cached download) and load a model set."""
        resolved, run_id = self.resolve(alias, version)
        local = self.download(resolved, run_id)
        model_set = self._load_dir(find_model_set_dir(local))
        # the saved metadata predates the registry version number
        model_set.metadata.update(model_version=resolved, registered_model_name=self.name, run_id=run_id)
        return LoadedModel(model_set=model_set, name=self.name, version=resolved, alias=None if version else alias,
                           source=f"models:/{self.name}/{resolved}", run_id=run_id)

    def download(self, version: str, run_id: str | None = None) -> Path:
        """``<cache>/<name>/<version>``: reused when it is a complete download of ``run_id``, else downloaded.

        The download goes to a staging folder first and replaces the old one by renames, so a
        reader (a report, another service) never sees half of either.
        """
        target = self.cache_dir / self.name / version
        if is_download_of(target, run_id):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{version}.{uuid.uuid4().hex[:8]}.partial")
        try:
            self._fetch(version, tmp)
            (tmp / _COMPLETE).write_text(utc_now_iso() + "\n", encoding="utf-8")
            replace_dir(tmp, target)
        except Exception as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise self.unavailable(f"cannot download models:/{self.name}/{version} from {self.tracking_uri}: "
                                   f"{getattr(exc, 'message', None) or exc}") from None
        return target

    def _fetch(self, version: str, dst: Path) -> None:
        """MLflow's download of ``models:/<name>/<version>`` into the new folder ``dst``."""
        import mlflow
        import mlflow.artifacts

        # models:/ URIs are resolved partly through the process-wide URIs (the logged model of MLflow 3):
        # without these, MLflow would look in (and create) ./mlflow.db
        with process_wide_mlflow_uri(self.tracking_uri):
            mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{self.name}/{version}", dst_path=str(dst),
                                                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)


@contextmanager
def process_wide_mlflow_uri(uri: str) -> Iterator[None]:
    """MLflow's process-wide tracking and registry URIs set to ``uri`` for the block, then put back.

    ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into the environment: left set, a
    report's or the service's registry would become every later MLflow call's in the same process
    (training, the notebooks, the tests), and :mod:`amlscore.settings` reads that variable too.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved_env = {name: os.environ.get(name) for name in names}
    saved = (getattr(tracking_utils, "_tracking_uri", None), getattr(registry_utils, "_registry_uri", None))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        if saved[0] is not None:
            mlflow.set_tracking_uri(saved[0])
        else:
            tracking_utils._tracking_uri = None
        registry_utils._registry_uri = saved[1]
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI; None for any other registry."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def registry_stamp(uri: str) -> str | None:
    """For a SQLite registry: its file's path, size and modification time (and its ``-wal`` file's), which
    change with every write. None for other registries (they are asked every time) or a missing file."""
    path = sqlite_path(uri)
    if path is None:
        return None
    parts = []
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = p.stat()
        except OSError:
            if p is path:
                return None
            continue
        parts.append(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write atomically; a cache that cannot be written (read-only state) is simply not kept."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


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
            version = _str_or_none(model_set.metadata.get("model_version")) or "local"
            self._loaded = LoadedModel(model_set=model_set, name=self.name, version=version, alias=None,
                                       source=str(self.folder), run_id=_str_or_none(model_set.metadata.get("run_id")))
        return self._loaded


class ModelCache:
    """Model sets by version: the one serving plus a few older ones, loaded only to explain their decisions."""

    def __init__(self, loader: RegistryLoader, size: int = 3) -> None:
        self.loader = loader
        self.size = size
        self._lock = threading.Lock()
        self._by_version: OrderedDict[str, ModelSetLike] = OrderedDict()

    def put(self, version: str, model_set: ModelSetLike) -> None:
        with self._lock:
            self._by_version[version] = model_set
            self._by_version.move_to_end(version)
            while len(self._by_version) > self.size:
                self._by_version.popitem(last=False)

    def get(self, version: str) -> ModelSetLike:
        with self._lock:
            if version in self._by_version:
                self._by_version.move_to_end(version)
                return self._by_version[version]
        log.info("loading model version %s to explain a decision it made", version)
        loaded = self.loader.load(version=version)
        self.put(version, loaded.model_set)
        return loaded.model_set
