"""The registry as serving sees it: :mod:`amlscore.core.registry` with failures as HTTP 503 (not ready)."""

from __future__ import annotations

from amlscore.core import registry as _core
from amlscore.core.registry import (  # noqa: F401 - re-exported for the service's modules
    MODEL_NAME,
    FolderLoader as _CoreFolderLoader,
    LoadedModel,
    ModelCache,
    find_model_set_dir,
)
from amlscore.serving.errors import NotReady


class RegistryLoader(_core.RegistryLoader):
    """:class:`amlscore.core.registry.RegistryLoader` whose failures are :class:`NotReady` (503)."""

    unavailable = NotReady


class FolderLoader(_CoreFolderLoader):
    """:class:`amlscore.core.registry.FolderLoader` (``AML_MODEL_DIR``) whose failures are :class:`NotReady` (503)."""

    unavailable = NotReady
