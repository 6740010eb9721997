"""Where amlscore keeps its files: one typed settings object, read once, passed down.

Every default path is relative to the **working folder** (``AML_HOME``, default: the current
directory), never to the installed package, so an installed ``amlscore`` writes nothing into
site-packages. Values come from, highest precedence first:

1. environment variables (``AML_HOME``, ``AML_DATA_DIR``, ``AML_STATE_DIR``, ``AML_STATE_URL`` (Valkey/Redis
   online state shared by several workers) and what it keeps (``AML_STATE_TRIM``, ``AML_STATE_KEEP_SNAPSHOTS``,
   ``AML_STATE_RETRY_HOURS``), ``AML_DATABASE_URL`` (PostgreSQL audit log and feedback), and
   MLflow's own ``MLFLOW_TRACKING_URI``);
2. a ``.env`` file in the current directory;
3. a TOML file: ``AML_CONFIG_FILE``, else ``amlscore.toml`` in the current directory, if present
   (keys as the field names below, e.g. ``state_dir = "/var/lib/amlscore"``);
4. the defaults: ``<home>/data/default``, ``<home>/state``, ``sqlite:///<home>/mlflow.db``.

Relative paths are taken relative to ``home``. The service's own settings
(:mod:`amlscore.serving.config`) start from these paths.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["PathSettings", "path_settings", "default_data_dir", "default_state_dir", "default_tracking_uri"]

CONFIG_FILE_NAME = "amlscore.toml"


class PathSettings(BaseSettings):
    """The folders and the MLflow URI every stage agrees on."""

    model_config = SettingsConfigDict(env_prefix="AML_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore", frozen=True)

    home: Path = Field(default_factory=Path.cwd,
                       description="Working folder: relative paths and the defaults below live here.")
    data_dir: Path = Field(Path("data/default"), description="The default data folder in the contract.")
    state_dir: Path = Field(Path("state"),
                            description="Durable state: online features, audit log, feedback, API keys, model cache.")
    tracking_uri: str | None = Field(None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "AML_TRACKING_URI",
                                                                          "tracking_uri"),
                                     description="MLflow tracking / registry URI (default sqlite:///<home>/mlflow.db).")

    state_url: str | None = Field(None, description="Online feature state shared by several workers: "
                                  "redis://host:port/db (Valkey or Redis; rediss:// for TLS). Unset: the embedded store.")
    database_url: str | None = Field(None, description="Audit log and feedback in PostgreSQL: postgresql://user@host:port/db. "
                                     "Unset: SQLite files in the state folder.")

    # What the shared online state (AML_STATE_URL) keeps: docs/scale-out.md, "Trimming"
    state_trim: bool = Field(True, description="Trim the shared state: its log up to the oldest snapshot kept, feature "
                             "rows and txn ids after the retry window. Off: only snapshots are ever deleted.")
    state_keep_snapshots: int = Field(2, ge=1, le=100, description="Snapshots of the shared state kept (the newest); "
                                      "the log keeps what follows the oldest of them.")
    state_retry_hours: float = Field(1.0, gt=0, le=24 * 366, description="Hours of transaction time (before the newest "
                                     "transaction counted) during which a resent transaction gets its stored feature "
                                     "row; older resends are refused as late, never counted twice.")

    @field_validator("state_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.startswith(("redis://", "rediss://", "valkey://", "valkeys://", "unix://")):
            raise ValueError(f"AML_STATE_URL must be a redis:// or rediss:// URL (Valkey or Redis); got {value!r}")
        return value.replace("valkey", "redis", 1) if value.startswith("valkey") else value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("AML_DATABASE_URL must be a postgresql:// URL; got "
                             f"{value.split('@')[-1] if '@' in value else value!r}")
        return value

    @model_validator(mode="after")
    def _anchor_to_home(self) -> "PathSettings":
        home = self.home.expanduser().resolve()
        object.__setattr__(self, "home", home)
        for name in ("data_dir", "state_dir"):
            value: Path = getattr(self, name).expanduser()
            object.__setattr__(self, name, value if value.is_absolute() else home / value)
        if not self.tracking_uri:
            object.__setattr__(self, "tracking_uri", f"sqlite:///{home / 'mlflow.db'}")
        return self

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        config = Path(os.environ.get("AML_CONFIG_FILE") or CONFIG_FILE_NAME)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        if config.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)


@lru_cache(maxsize=8)
def _cached(environ_key: tuple[tuple[str, str], ...], cwd: str) -> PathSettings:
    return PathSettings()


def path_settings() -> PathSettings:
    """The settings for the current environment and directory (re-read when either changes)."""
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("AML_", "MLFLOW_TRACKING_URI"))))
    return _cached(key, os.getcwd())


def default_data_dir() -> Path:
    return path_settings().data_dir


def default_state_dir() -> Path:
    return path_settings().state_dir


def default_tracking_uri() -> str:
    uri = path_settings().tracking_uri
    assert uri is not None  # filled by the validator
    return uri
