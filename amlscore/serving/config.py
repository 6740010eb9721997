"""Settings of the scoring service, as validated data read from the environment.

``amlscore serve`` turns its command-line options into these ``AML_*`` environment variables and
starts ``bentoml serve amlscore.serving.service:AmlScoring``; starting ``bentoml serve`` by hand reads the
same variables. Nothing here touches the disk at import time: folders are created by the service
when it starts.

==========================  =========================================================  ============================
variable                    meaning                                                    default
==========================  =========================================================  ============================
``AML_DATA_DIR``            data folder in the contract (customers; transactions and   ``<home>/data/default``
                            reports for the warm-up and the ratings)
``AML_STATE_DIR``           online feature state, audit log, feedback, API keys         ``<project>/state``
``MLFLOW_TRACKING_URI``     MLflow tracking server / registry                          ``sqlite:///<home>/mlflow.db``
``AML_MODEL_NAME``          registered model name                                      ``aml-model-set``
``AML_MODEL_ALIAS``         alias to serve                                             ``champion``
``AML_MODEL_VERSION``       a registry version to serve instead of the alias           (none)
``AML_MODEL_DIR``           a saved model set folder to serve instead of the registry  (none)
                            (what a Bento or a container image carries)
``AML_API_KEYS_FILE``       YAML or JSON file of API key hashes and roles             ``<state>/api_keys.yaml``
``AML_WARM_UP_DAYS``        days of the data folder's history replayed into an empty   ``100``
                            online state (``0``: none, ``all``: the whole history)
``AML_STATE_URL``           online feature state shared by several workers:            (embedded SQLite)
                            ``redis://host:port/db`` (Valkey or Redis)
``AML_DATABASE_URL``        audit log and feedback in PostgreSQL:                      (SQLite files)
                            ``postgresql://user@host:port/db``
``AML_WORKERS``             service worker processes; more than 1 needs both of the    ``1``
                            shared backends above (the embedded ones are single-writer)
``AML_AUDIT_SYNC``          ``full`` (an fsync per decision: survives a power cut) or  ``full``
                            ``normal`` (survives a crash of the process)
``AML_MAX_BODY_BYTES``      largest request body, single requests                      ``65536``
``AML_MAX_BATCH_BODY_BYTES`` largest request body, ``/v1/score_batch``                  ``4194304``
``AML_MAX_BATCH_SIZE``      most transactions in one batch                             ``1000``
``AML_TOP_K``               feature attributions in an explanation                     ``8``
``AML_MAX_FUTURE_SECONDS``  refuse transactions dated further ahead of the server      ``86400``
                            clock than this (``0``: no check)
``AML_TRACING``             ``off``: BentoML's OpenTelemetry middleware skips every    ``off``
                            route (it costs ~0.7 ms of CPU per request, for spans that
                            BentoML's default sample rate of 0 never records); ``on``:
                            spans on every route, sampled and exported as BentoML's
                            ``tracing`` configuration says
``AML_STALL_REPORT_MS``     log the event loop's Python stack whenever it stalls for    (off)
                            longer than this many milliseconds, and how long the stall
                            lasted (``amlscore.serving.stalls``): where latency spikes come from
``AML_SCORE_DISPATCH``      ``direct``: the gate answers ``POST /v1/score`` itself,     ``direct``
                            right after its checks (``amlscore.serving.middleware``; 0.4-0.7 ms
                            of CPU less per request); ``bentoml``: through BentoML's
                            router and API method like the other routes (same answers)
``AML_SHADOW``              a second model set (an alias, e.g. ``challenger``, or       (off)
                            ``version:N``) that scores every decided transaction off the
                            response path, from the champion's feature row; its scores go
                            to the audit log's ``shadow_scores`` table, never to a response
                            (``amlscore.serving.shadow``; ``amlscore compare`` reads them)
``AML_SHADOW_QUEUE``        rows waiting for the shadow at most; beyond, a row's shadow  ``10000``
                            score is dropped and counted (``amlscore_shadow_dropped_total``)
``AML_LOG_FORMAT``          ``json``: the service's logs as JSON lines, with one line   ``text``
                            per request (request id, caller, status, latency;
                            ``amlscore.serving.access_log``); ``text``: as before
==========================  =========================================================  ============================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from amlscore.contract.errors import AmlError
from amlscore.settings import default_data_dir, default_state_dir, default_tracking_uri, path_settings

from amlscore.core.registry import MODEL_NAME  # noqa: E402 - one name for every stage
ENV_PREFIX = "AML_"


class SettingsError(AmlError):
    """A setting of the service is missing or invalid."""


class Settings(BaseModel):
    """Everything the service needs to start; see the module docstring for the variables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir,
                           description="Data folder in the contract: customers (required), transactions and reports.")
    state_dir: Path = Field(default_factory=default_state_dir,
                            description="Durable state: online features, audit log, feedback, API keys, model cache.")
    tracking_uri: str = Field(default_factory=default_tracking_uri, description="MLflow tracking / registry URI.")
    model_name: str = Field(MODEL_NAME, min_length=1, description="Registered model name of the model set.")
    model_alias: str = Field("champion", min_length=1, description="Registry alias to serve.")
    model_version: str | None = Field(None, pattern=r"^[0-9]+$", description="Registry version to serve instead of the alias.")
    model_dir: Path | None = Field(None, description="A saved model set folder to serve instead of the registry.")
    api_keys_file: Path | None = Field(None, description="API keys file; default <state_dir>/api_keys.yaml.")
    warm_up_days: int | None = Field(100, ge=0, description="Days of history replayed into an empty state; None: all.")
    state_url: str | None = Field(default_factory=lambda: path_settings().state_url,
                                  pattern=r"^(redis|rediss|unix)://", description="Shared online state (Valkey/Redis).")
    database_url: str | None = Field(default_factory=lambda: path_settings().database_url,
                                     pattern=r"^postgres(ql)?://", description="Audit log and feedback in PostgreSQL.")
    workers: int = Field(1, ge=1, le=64, description="Service worker processes (more than 1: shared backends only).")
    audit_sync: Literal["full", "normal"] = Field("full", description="SQLite synchronous mode of the audit log.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body (single requests).")
    max_batch_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Largest request body of a batch.")
    max_batch_size: int = Field(1000, ge=1, le=100_000, description="Most transactions in one batch.")
    top_k: int = Field(8, ge=1, le=50, description="Feature attributions in an explanation.")
    max_future_seconds: int = Field(86_400, ge=0, description="Refuse transactions dated further in the future (0: off).")
    tracing: Literal["off", "on"] = Field("off", description="OpenTelemetry spans per request (BentoML's middleware).")
    stall_report_ms: float | None = Field(None, gt=0, le=60_000,
                                          description="Log the event loop's stack when it stalls longer (off: None).")
    score_dispatch: Literal["direct", "bentoml"] = Field(
        "direct", description="Who answers POST /v1/score: the gate directly, or BentoML's router (same answers).")

    shadow: str | None = Field(None, pattern=r"^(version:[0-9]+|[A-Za-z][A-Za-z0-9_-]*)$",
                               description="Shadow model set: an alias or version:N (off: None).")
    shadow_queue: int = Field(10_000, ge=1, le=1_000_000, description="Rows waiting for the shadow at most.")

    @model_validator(mode="after")
    def _workers_need_shared_backends(self) -> "Settings":
        if self.workers > 1 and not (self.state_url and self.database_url):
            missing = " and ".join(n for n, v in (("AML_STATE_URL", self.state_url),
                                                   ("AML_DATABASE_URL", self.database_url)) if not v)
            raise ValueError(f"{self.workers} workers need the shared backends, and {missing} is not set: the embedded "
                             "online state and audit log (SQLite in the state folder) have a single writer. Run one "
                             "worker, or set AML_STATE_URL=redis://... and AML_DATABASE_URL=postgresql://... "
                             "(docs/scale-out.md)")
        return self

    @property
    def shared(self) -> bool:
        """Whether the online state and the audit log live on shared servers (several workers may run)."""
        return bool(self.state_url and self.database_url)

    @property
    def shadow_ref(self) -> tuple[str | None, str | None] | None:
        """``(alias, version)`` of the shadow model set, or None when there is none."""
        if self.shadow is None:
            return None
        if self.shadow.startswith("version:"):
            return None, self.shadow.split(":", 1)[1]
        return self.shadow, None

    @property
    def keys_file(self) -> Path:
        """The API keys file actually used."""
        return self.api_keys_file if self.api_keys_file is not None else self.state_dir / "api_keys.yaml"

    @property
    def model_ref(self) -> str:
        """``name@alias`` or ``name/version``: what the service was asked to serve."""
        return f"{self.model_name}/{self.model_version}" if self.model_version else f"{self.model_name}@{self.model_alias}"

    def to_env(self) -> dict[str, str]:
        """These settings as ``AML_*`` variables (what ``amlscore serve`` hands to ``bentoml serve``)."""
        env = {
            "AML_DATA_DIR": str(self.data_dir),
            "AML_STATE_DIR": str(self.state_dir),
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "AML_MODEL_NAME": self.model_name,
            "AML_MODEL_ALIAS": self.model_alias,
            "AML_WARM_UP_DAYS": "all" if self.warm_up_days is None else str(self.warm_up_days),
            "AML_AUDIT_SYNC": self.audit_sync,
            "AML_MAX_BODY_BYTES": str(self.max_body_bytes),
            "AML_MAX_BATCH_BODY_BYTES": str(self.max_batch_body_bytes),
            "AML_MAX_BATCH_SIZE": str(self.max_batch_size),
            "AML_TOP_K": str(self.top_k),
            "AML_MAX_FUTURE_SECONDS": str(self.max_future_seconds),
            "AML_TRACING": self.tracing,
            "AML_SCORE_DISPATCH": self.score_dispatch,
            "AML_WORKERS": str(self.workers),
        }
        if self.state_url:
            env["AML_STATE_URL"] = self.state_url
        if self.database_url:
            env["AML_DATABASE_URL"] = self.database_url
        if self.stall_report_ms is not None:
            env["AML_STALL_REPORT_MS"] = f"{self.stall_report_ms:g}"
        if self.shadow is not None:
            env["AML_SHADOW"] = self.shadow
            env["AML_SHADOW_QUEUE"] = str(self.shadow_queue)
        if self.model_version:
            env["AML_MODEL_VERSION"] = self.model_version
        if self.model_dir is not None:
            env["AML_MODEL_DIR"] = str(self.model_dir)
        if self.api_keys_file is not None:
            env["AML_API_KEYS_FILE"] = str(self.api_keys_file)
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Read the settings from ``environ`` (default ``os.environ``); ``overrides`` win.

        Raises :class:`SettingsError` naming the variable, what it must be and what it was.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        names = {
            "data_dir": "AML_DATA_DIR", "state_dir": "AML_STATE_DIR", "model_name": "AML_MODEL_NAME",
            "model_alias": "AML_MODEL_ALIAS", "model_version": "AML_MODEL_VERSION", "model_dir": "AML_MODEL_DIR",
            "api_keys_file": "AML_API_KEYS_FILE", "warm_up_days": "AML_WARM_UP_DAYS", "audit_sync": "AML_AUDIT_SYNC",
            "max_body_bytes": "AML_MAX_BODY_BYTES", "max_batch_body_bytes": "AML_MAX_BATCH_BODY_BYTES",
            "max_batch_size": "AML_MAX_BATCH_SIZE", "top_k": "AML_TOP_K", "max_future_seconds": "AML_MAX_FUTURE_SECONDS",
            "tracing": "AML_TRACING", "stall_report_ms": "AML_STALL_REPORT_MS",
            "score_dispatch": "AML_SCORE_DISPATCH", "shadow": "AML_SHADOW", "shadow_queue": "AML_SHADOW_QUEUE",
            "state_url": "AML_STATE_URL", "database_url": "AML_DATABASE_URL", "workers": "AML_WORKERS",
        }
        for field, var in names.items():
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            raw = raw.strip()
            if field == "shadow" and raw.lower() == "off":
                continue
            if field == "warm_up_days" and raw.lower() == "all":
                values[field] = None
            else:
                values[field] = raw
        uri = env.get("MLFLOW_TRACKING_URI") or env.get("AML_TRACKING_URI")
        if uri:
            values["tracking_uri"] = uri
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            reverse = {**names, "tracking_uri": "MLFLOW_TRACKING_URI"}
            problems = []
            for err in exc.errors(include_url=False):
                if not err["loc"]:  # a rule across settings: its message says it all (and the input holds URLs)
                    problems.append(str(err["msg"]).removeprefix("Value error, ") + ".")
                    continue
                field = str(err["loc"][0])
                problems.append(f"The '{reverse.get(field, field)}' setting {err['msg'][0].lower() + err['msg'][1:]}. "
                                f"Got {err.get('input')!r} instead.")
            raise SettingsError("invalid service settings: " + " ".join(problems)) from None


def bentoml_tracing(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """BentoML's ``tracing`` configuration for ``AML_TRACING`` (read when the service class is defined).

    ``off`` (the default, or any value other than ``on``: :meth:`Settings.from_env` refuses those
    when the service starts) excludes every URL from the OpenTelemetry middleware.
    """
    env = os.environ if environ is None else environ
    if (env.get("AML_TRACING") or "off").strip().lower() == "on":
        return {}
    return {"excluded_urls": ["/"]}  # every URL has a slash: no span is started
