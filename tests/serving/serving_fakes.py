"""A stand-in for the registry, for the serving unit tests only, handing out the tests' one model-set
stand-in (:class:`fakes.FakeModelSet`), so tests run without MLflow or a trained model. The service
itself never imports this module.
"""

from __future__ import annotations

from fakes import FakeModelSet

from amlscore.core.registry import LoadedModel
from amlscore.serving.registry import unknown_model

__all__ = ["FakeLoader", "FakeModelSet"]


class FakeLoader:
    """Registry stand-in: aliases point at versions; ``promote`` moves an alias."""

    def __init__(self, versions: dict[str, FakeModelSet] | None = None, aliases: dict[str, str] | None = None) -> None:
        self.versions = versions or {"1": FakeModelSet("1")}
        self.aliases = aliases or {"champion": "1"}
        self.name = "aml-model-set"
        self.loads: list[str] = []

    def promote(self, alias: str, version: str) -> None:
        self.aliases[alias] = version

    def resolve(self, alias: str | None = None, version: str | None = None) -> tuple[str, str | None]:
        v = version or self.aliases.get(alias or "")
        if v is None or v not in self.versions:  # as the real loader (amlscore.serving.registry) answers
            raise unknown_model(self.name, alias, version)
        return v, None

    def load(self, alias: str | None = None, version: str | None = None) -> LoadedModel:
        v, _ = self.resolve(alias, version)
        self.loads.append(v)
        return LoadedModel(model_set=self.versions[v], name=self.name, version=v, alias=None if version else alias,
                           source=f"models:/{self.name}/{v}")

