"""The BentoML service: ``bentoml serve amlscore.serving.service:AmlScoring`` (or ``amlscore serve``).

One worker by default: the embedded online feature state lives in this process and has a single
writer. With the shared backends (``AML_STATE_URL``, ``AML_DATABASE_URL``; docs/scale-out.md),
``AML_WORKERS`` (``amlscore serve --workers N``) runs N workers, each with a replica of the state. Scoring runs
on the event loop itself (``async`` API methods calling the engine directly): requests are
serialised by the engine's lock anyway, and handing each one to a worker thread cost about 4 ms of
GIL hand-over per request on two cores. Calls that may take long (an explanation that has to load
an old model version, a rating refresh, feedback export, a model reload) stay synchronous and run in
BentoML's thread, taking the same lock only for their short critical sections.
Routes (all ``POST``, JSON; roles in brackets; see docs/serving.md)::

    /v1/score            [channel, compliance, admin]   one transaction
    /v1/score_batch      [channel, compliance, admin]   many, in order, as one by one
    /v1/explain          [compliance, admin]            a past decision by request id, frozen
    /v1/customer_risk    [compliance, admin]            a customer's rating with its breakdown
    /v1/feedback         [compliance, admin]            an analyst's disposition, for the next training
    /v1/metadata         [every role]                   model version, configuration hashes, features
    /v1/health           [every role]                   status with counts
    /v1/admin/reload     [admin]                        load the alias (or a version) again
    /v1/admin/customers  [admin]                        add or change customers while serving

and, without a key, ``GET /livez``, ``/readyz`` (ready once the model set, the state, the audit log
and the ratings are loaded), ``/healthz``, ``/metrics``, the OpenAPI page ``/`` and ``/docs.json``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from typing import Any

import bentoml
from pydantic import ValidationError
import orjson
from starlette.responses import JSONResponse

from amlscore.contract.errors import AmlError
from amlscore.core.identity import UserStore
from amlscore.serving.auth import Caller, KeyStore, ensure_keys_file
from amlscore.serving.config import Settings, bentoml_tracing
from amlscore.serving.access_log import AccessLogMiddleware
from amlscore.serving.listen import spread_connections
from amlscore.serving.errors import InternalError, InvalidRequest, ServingError, UnprocessableTransaction, Unauthorized
from amlscore.serving.middleware import GATE, GateMiddleware, invalid_request_body
from amlscore.serving.schemas import (
    BatchResult,
    CustomerRiskRequest,
    CustomerRiskResult,
    CustomersRequest,
    CustomersResult,
    Decision,
    DriftRequest,
    DriftSummary,
    EmptyRequest,
    ExplainRequest,
    ExplainResult,
    FeedbackReceipt,
    FeedbackRequest,
    Health,
    Metadata,
    ReloadRequest,
    ReloadResult,
    ScoreBatchRequest,
    ScoreRequest,
    Transaction,
)
from amlscore.serving.outcome import wait_all
from amlscore.serving.scoring import ScoringEngine
from amlscore.serving.stalls import StallReporter
from amlscore.serving.telemetry import audit_commit_observer, drift_gauges, shadow_drop_counter
from amlscore.serving.views import decision_view, full_view

log = logging.getLogger("serving")


class _QuietValidationErrors(logging.Filter):
    """BentoML logs every rejected request body as an ERROR with a traceback; one WARNING line is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "rejected an invalid request body: %s"
            record.args = (str(exc).splitlines()[0],)
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("bentoml._internal.server.http_app").addFilter(_QuietValidationErrors())


def make_engine(settings: Settings) -> ScoringEngine:
    """The engine the service runs (tests replace this function to inject a model-set loader)."""
    return ScoringEngine(settings)


class _HeapFreezer:
    """Keep the cyclic garbage collector off the long-lived heap.

    The online state, the ratings and the loaded libraries are hundreds of thousands of objects that
    live as long as the process; a full collection walks them all (~0.3-0.5 s, seconds on a busy
    machine) and stalls every request in flight. After start they are frozen (``gc.freeze``: left out
    of collections); every ``every`` decisions the young generations are collected and what survived
    is frozen too, so full collections stay short.
    """

    def __init__(self, every: int = 5_000) -> None:
        self.every = every
        self._since = 0

    def freeze_now(self) -> None:
        gc.collect()
        gc.freeze()

    def tick(self, n: int = 1) -> None:
        self._since += n
        if self._since >= self.every:
            self._since = 0
            gc.collect(1)
            gc.freeze()


def _render(content: Any) -> bytes:
    """JSON by orjson (a decision with its explanation: ~0.2 ms less than ``json.dumps``).

    Non-finite floats never reach here (decisions are cleaned by :func:`amlscore.core.decision.json_safe`);
    orjson would write them as ``null``, as that function does.
    """
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class _JSON(JSONResponse):
    """A JSON response rendered by :func:`_render`."""

    def render(self, content: Any) -> bytes:
        return _render(content)


def _respond(ctx: bentoml.Context, data: Any, status: int = 200) -> JSONResponse:
    ctx.response.status_code = status
    return _JSON(data, status_code=status)


def _error(ctx: bentoml.Context, err: ServingError) -> JSONResponse:
    caller = getattr(ctx.request.state, "aml_caller", None)
    return _respond(ctx, _error_body(err, caller if isinstance(caller, Caller) else None), err.status)


def _error_body(err: ServingError, caller: Caller | None) -> dict[str, Any]:
    """The error body for ``caller``: the channel role (or an unknown caller) gets the message without other
    transactions' details; the full message goes to the server log."""
    full_view = caller is not None and caller.full_view
    if not full_view and err.channel_message is not None:
        log.info("refused a request of key %s (%s) with %s: %s", caller.key_id if caller else "?",
                 caller.role if caller else "?", err.code, err.message)
    return err.body(full_view)


def _as_serving_error(exc: Exception, route: str) -> ServingError:
    """The error to answer ``exc`` with: its own for a :class:`ServingError`, 422 for a contract or
    configuration rule (:class:`AmlError`), and for anything else a logged 500 without internal details.

    What such a failure leaves is in docs/serving.md, "Failures": the engine decides every transaction
    a batch counted, and a transaction counted but not decided is decided when sent again.
    """
    if isinstance(exc, ServingError):
        return exc
    if isinstance(exc, AmlError):
        return UnprocessableTransaction(str(exc))
    log.error("unexpected failure answering %s", route, exc_info=exc)
    return InternalError()


def _caller(ctx: bentoml.Context) -> Caller:
    caller = getattr(ctx.request.state, "aml_caller", None)
    if not isinstance(caller, Caller):  # only when the gate middleware is missing
        raise Unauthorized("missing API key")
    return caller


def _workers() -> int:
    """``AML_WORKERS`` (``amlscore serve --workers N``), read when the class is defined; checked by the settings.

    More than one worker needs the shared backends (:class:`~amlscore.serving.config.Settings` refuses it on
    the embedded ones, whose online state and audit log have a single writer).
    """
    raw = os.environ.get("AML_WORKERS", "1").strip() or "1"
    return int(raw) if raw.isdigit() and int(raw) >= 1 else 1


# In each of several workers, before it serves: a listening socket of its own, so that connections
# spread over the workers instead of all going to the first one awake (amlscore.serving.listen).
spread_connections(_workers())


@bentoml.service(
    name="amlscore",
    workers=_workers(),
    threads=1,
    traffic={"timeout": 60, "max_concurrency": 256},
    resources={"cpu": "2"},
    tracing=bentoml_tracing(),  # AML_TRACING=off (default): no OpenTelemetry span per request (~0.7 ms of CPU)
)
class AmlScoring:
    """Money-laundering suspicion scoring: online features, the model set from the registry, an audit log."""

    def __init__(self) -> None:
        settings = Settings.from_env()
        created = ensure_keys_file(settings.keys_file)
        if created:
            lines = "\n".join(f"    {role:<11} {key}" for role, key in created.items())
            banner = (f"\nNo API keys file: wrote {settings.keys_file} with one development key per role. "
                      f"The keys are shown this once (the file keeps only their SHA-256):\n{lines}\n")
            print(banner, flush=True)  # noqa: T201 - shown to the operator once, by design
            log.warning("generated development API keys in %s", settings.keys_file)
        keys = KeyStore.load(settings.keys_file)
        self.users = UserStore.in_state(settings.state_dir)  # named people, Authorization: Basic
        GATE.configure(keys, settings.max_body_bytes, settings.max_batch_body_bytes, self.users)
        self.settings = settings
        self.engine = make_engine(settings)
        if AmlScoring.config.get("metrics", {}).get("enabled", True):  # off where several apps share a process (tests)
            self.engine.audit.on_commit = audit_commit_observer()
            self.engine.observe_drift(drift_gauges())
            if self.engine.shadow is not None:
                self.engine.shadow.on_drop = shadow_drop_counter()
        self.heap = _HeapFreezer()
        self.heap.freeze_now()
        self.stalls = StallReporter(settings.stall_report_ms) if settings.stall_report_ms else None
        if settings.score_dispatch == "direct":  # last: the handler needs everything above
            GATE.serve_directly("/v1/score", self.score_direct)

    def __is_ready__(self) -> bool:
        return bool(self.engine.ready)

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        """Snapshot the online state and close the stores."""
        if self.stalls is not None:
            self.stalls.stop()
        self.engine.close()
        self.users.close()

    def _run(self, ctx: bentoml.Context, fn: Any) -> JSONResponse:
        try:
            return _respond(ctx, fn(_caller(ctx)))
        except Exception as exc:  # noqa: BLE001 - every failure gets the one error shape
            return _error(ctx, _as_serving_error(exc, ctx.request.url.path))

    # -- scoring ------------------------------------------------------------------------------
    @bentoml.api(route="/v1/score", input_spec=ScoreRequest, output_spec=Decision)
    async def score(self, transaction: Transaction, explain: bool = True, lang: str = "en",
              ctx: bentoml.Context = None) -> Decision:  # type: ignore[assignment]
        """Score one transaction: suspicion score 0-100, alert decision and request id; for compliance
        callers also the components, risk level, attributions, rules fired and versions.
        Sending a txn_id again returns the original decision (``replayed: true``)."""

        try:
            return _respond(ctx, await self._scored(transaction, explain, lang, _caller(ctx)))  # type: ignore[return-value]
        except Exception as exc:  # noqa: BLE001 - every failure gets the one error shape
            return _error(ctx, _as_serving_error(exc, "/v1/score"))  # type: ignore[return-value]

    async def score_direct(self, body: bytes, caller: Caller) -> tuple[int, bytes]:
        """``POST /v1/score`` answered by the gate (``AML_SCORE_DISPATCH=direct``, the default).

        The same validation (:class:`ScoreRequest`), scoring and answer as :meth:`score`, without
        BentoML's per-request dispatch (:mod:`amlscore.serving.middleware`, step 5).
        """
        try:
            req = ScoreRequest.model_validate_json(body or b"{}")  # an empty body reads as {}, as BentoML reads it
        except ValidationError as exc:
            log.warning("rejected an invalid request body: %s", str(exc).splitlines()[0])
            return 400, invalid_request_body(exc.errors(include_context=False, include_input=False))
        try:
            return 200, _render(await self._scored(req.transaction, req.explain, req.lang, caller))
        except Exception as exc:  # noqa: BLE001 - every failure gets the one error shape
            err = _as_serving_error(exc, "/v1/score")
            return err.status, _render(_error_body(err, caller))

    async def _scored(self, transaction: Transaction, explain: bool, lang: str, caller: Caller) -> dict[str, Any]:
        """Score one transaction and return what the caller's role sees, once the decision is durable."""
        if self.stalls is not None:
            self.stalls.ensure_started()
        outcome = self.engine.score(transaction, caller, explain=explain, lang=lang, wait=False)
        await outcome.wait_async()  # durable in the audit log before the answer; other requests go on meanwhile
        self.heap.tick()
        return decision_view(outcome.record, outcome.replayed, caller.full_view, lang)

    @bentoml.api(route="/v1/score_batch", input_spec=ScoreBatchRequest, output_spec=BatchResult)
    async def score_batch(self, transactions: list[Transaction], explain: bool = False, lang: str = "en",
                    ctx: bentoml.Context = None) -> BatchResult:  # type: ignore[assignment]
        """Score many transactions in order, with the same results as one by one. Each result is a
        decision or the error that transaction got (which changed nothing)."""

        try:
            caller = _caller(ctx)
            if len(transactions) > self.settings.max_batch_size:
                raise InvalidRequest(f"a batch holds at most {self.settings.max_batch_size} transactions; "
                                     f"got {len(transactions)}")
            batch_id, results = self.engine.score_batch(transactions, caller, explain=explain, lang=lang, wait=False)
            for f in wait_all(results):  # durable before the answer
                await asyncio.wrap_future(f)
        except Exception as exc:  # noqa: BLE001 - every failure gets the one error shape
            return _error(ctx, _as_serving_error(exc, "/v1/score_batch"))  # type: ignore[return-value]

        def run(caller: Caller) -> dict[str, Any]:
            self.heap.tick(len(results))
            out: list[dict[str, Any]] = []
            n_err = n_replay = 0
            for i, res in enumerate(results):
                if isinstance(res, ServingError):
                    n_err += 1
                    out.append({"index": i, "txn_id": transactions[i].txn_id, "status": res.status, "code": res.code,
                                "error": _error_body(res, caller)["error"]})
                else:
                    n_replay += int(res.replayed)
                    out.append(decision_view(res.record, res.replayed, caller.full_view, lang))
            return {"batch_id": batch_id, "n": len(results), "n_scored": len(results) - n_err - n_replay,
                    "n_replayed": n_replay, "n_errors": n_err, "results": out}

        return self._run(ctx, run)  # type: ignore[return-value]

    # -- compliance ---------------------------------------------------------------------------
    @bentoml.api(route="/v1/explain", input_spec=ExplainRequest, output_spec=ExplainResult)
    def explain(self, request_id: str, lang: str = "en", ctx: bentoml.Context = None) -> ExplainResult:  # type: ignore[assignment]
        """A past decision by request id, exactly as recorded, with its explanation computed by the
        model version that decided (even after another model was promoted or reloaded)."""

        def run(caller: Caller) -> dict[str, Any]:
            rec, explanation, source = self.engine.explain(request_id, lang)
            return {"request_id": rec.request_id, "decision": full_view(rec, False, lang, explanation),
                    "explanation": explanation, "explanation_source": source,
                    "caller": {"key_id": rec.caller_key_id, "role": rec.caller_role, "endpoint": rec.endpoint}}

        return self._run(ctx, run)  # type: ignore[return-value]

    @bentoml.api(route="/v1/customer_risk", input_spec=CustomerRiskRequest, output_spec=CustomerRiskResult)
    def customer_risk(self, customer_id: str, lang: str = "en", refresh: bool = False,
                      ctx: bentoml.Context = None) -> CustomerRiskResult:  # type: ignore[assignment]
        """A customer's risk rating with its full sub-item breakdown (as of start, or refreshed now)."""

        def run(caller: Caller) -> dict[str, Any]:
            detail, refreshed = self.engine.customer_risk(customer_id, lang, refresh)
            return {"customer_id": customer_id, "refreshed": refreshed, **detail}

        return self._run(ctx, run)  # type: ignore[return-value]

    @bentoml.api(route="/v1/feedback", input_spec=FeedbackRequest, output_spec=FeedbackReceipt)
    def feedback(self, label: str, request_id: str | None = None, txn_id: str | None = None,
                 typology: str | None = None, analyst: str | None = None, note: str | None = None,
                 report_date: Any = None, ctx: bentoml.Context = None) -> FeedbackReceipt:  # type: ignore[assignment]
        """Record an analyst's disposition of a decision; it is exported in the contract's reports format."""

        def run(caller: Caller) -> dict[str, Any]:
            req = FeedbackRequest.model_construct(request_id=request_id, txn_id=txn_id, label=label, typology=typology,
                                                  analyst=analyst, note=note, report_date=report_date)
            return self.engine.record_feedback(req, caller)

        return self._run(ctx, run)  # type: ignore[return-value]

    # -- operations ---------------------------------------------------------------------------
    @bentoml.api(route="/v1/metadata", input_spec=EmptyRequest, output_spec=Metadata)
    async def metadata(self, ctx: bentoml.Context = None) -> Metadata:  # type: ignore[assignment]
        """Model name and version, configuration hashes, thresholds and the feature list."""
        return self._run(ctx, lambda caller: self.engine.metadata())  # type: ignore[return-value]

    @bentoml.api(route="/v1/health", input_spec=EmptyRequest, output_spec=Health)
    async def health(self, ctx: bentoml.Context = None) -> Health:  # type: ignore[assignment]
        """Status with the model version and the audit log and state counts."""
        return self._run(ctx, lambda caller: self.engine.health())  # type: ignore[return-value]

    @bentoml.api(route="/v1/admin/drift", input_spec=DriftRequest, output_spec=DriftSummary)
    def admin_drift(self, day: str | None = None, ctx: bentoml.Context = None) -> DriftSummary:  # type: ignore[assignment]
        """A bank day's drift figures (PSI of every feature and score, alert rates, score quantiles) against the
        served model set's training reference (compliance and admin)."""
        return self._run(ctx, lambda caller: self.engine.drift_summary(day))  # type: ignore[return-value]

    @bentoml.api(route="/v1/admin/customers", input_spec=CustomersRequest, output_spec=CustomersResult)
    def admin_customers(self, customers: list[dict[str, Any]],
                        ctx: bentoml.Context = None) -> CustomersResult:  # type: ignore[assignment]
        """Add or change customers (admin): their features and ratings use the rows from the next transaction on."""

        def run(caller: Caller) -> dict[str, Any]:
            log.warning("customers change requested by %s (%s): %d rows", caller.key_id, caller.role, len(customers))
            return self.engine.upsert_customers(customers, caller)

        return self._run(ctx, run)  # type: ignore[return-value]

    @bentoml.api(route="/v1/admin/reload", input_spec=ReloadRequest, output_spec=ReloadResult)
    def admin_reload(self, alias: str | None = None, version: str | None = None,
                     ctx: bentoml.Context = None) -> ReloadResult:  # type: ignore[assignment]
        """Load the alias (or a version) from the registry again and serve it from the next request."""

        def run(caller: Caller) -> dict[str, Any]:
            log.warning("model reload requested by %s (%s): alias=%s version=%s", caller.key_id, caller.role, alias, version)
            previous, current = self.engine.reload(alias, version)
            return {"previous": previous, "current": current,
                    "changed": previous["model_version"] != current["model_version"]}

        return self._run(ctx, run)  # type: ignore[return-value]


AmlScoring.add_asgi_middleware(AccessLogMiddleware)  # outermost: sees refused and directly answered requests too
AmlScoring.add_asgi_middleware(GateMiddleware)
