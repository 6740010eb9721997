"""The registry as serving sees it: :mod:`amlscore.core.registry` with failures as HTTP errors.

A version or alias the registry does not have is a 404 (``unknown_model``, a message for people); any
other failure (registry unreachable, download failed) a 503 (not ready).
"""

from __future__ import annotations

from amlscore.core import registry as _core
from amlscore.core.registry import (  # noqa: F401 - re-exported for the service's modules
    MODEL_NAME,
    FolderLoader as _CoreFolderLoader,
    LoadedModel,
    ModelCache,
    find_model_set_dir,
)
from amlscore.serving.errors import NotFound, NotReady, with_code

# MLflow's codes for a version or alias that does not exist (or cannot: an alias name it refuses)
_NOT_IN_REGISTRY = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


class RegistryLoader(_core.RegistryLoader):
    """:class:`amlscore.core.registry.RegistryLoader` whose failures are 404 (no such version or alias) or 503."""

    unavailable = NotReady

    def resolve(self, alias: str | None = None, version: str | None = None) -> tuple[str, str | None]:
        try:
            return super().resolve(alias, version)
        except NotReady as exc:
            cause = exc.__context__  # the registry's own exception (suppressed from the message, kept here)
            if getattr(cause, "error_code", None) in _NOT_IN_REGISTRY:
                raise unknown_model(self.name, alias, version) from None
            raise
        except Exception as exc:  # noqa: BLE001 - opening the registry's store failed (MLflow raises many kinds)
            raise NotReady(f"cannot open the model registry at {self.tracking_uri}: {exc}") from None


def unknown_model(name: str, alias: str | None, version: str | None) -> NotFound:  # type: ignore[return-value]
    """The 404 for a version or alias the registry does not have."""
    what = f"version {version}" if version else f"alias @{alias}"
    return with_code(NotFound, "unknown_model",  # type: ignore[return-value]
                     f"The model registry has no {what} of the model {name!r}. Give a registered version "
                     "number or an existing alias (champion, challenger).")


class FolderLoader(_CoreFolderLoader):
    """:class:`amlscore.core.registry.FolderLoader` (``AML_MODEL_DIR``) whose failures are :class:`NotReady` (503)."""

    unavailable = NotReady
