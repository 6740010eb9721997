"""The service's OpenAPI 3.1 document (``GET /docs.json``), built from the request and response models.

BentoML writes an OpenAPI 3.0.2 document whose schemas use 3.1 constructs and drops ``null`` from
optional fields; clients generated from it reject real answers (a compliance ``explain: false``
decision has ``attributions``, ``anomaly_attribution``, ``explanation`` and ``explanation_lang``
null). This one is OpenAPI 3.1 (its schemas are pydantic's JSON Schema 2020-12, nullability
included), declares the API-key security schemes, marks request bodies required where they are,
and lists for every route each status it can answer with, with the one error body
(:mod:`amlscore.serving.errors`). The gate (:mod:`amlscore.serving.middleware`) serves it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from amlscore.serving import schemas as s
from amlscore.serving.auth import EVERY_ROLE, PERMISSIONS

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{model}"


class ErrorDetail(BaseModel):
    loc: str = Field(description="Where in the body: e.g. transaction.amount.")
    msg: str = Field(description="What is wrong there.")
    type: str = Field(description="pydantic's error type.")


class ErrorBody(BaseModel):
    """Every error answer, whatever produced it."""

    error: str = Field(description="What is wrong, for people.")
    code: str = Field(description="Stable machine code, e.g. invalid_request, late_transaction, unknown_customer.")
    status: int = Field(description="The HTTP status, repeated.")
    details: list[ErrorDetail] | None = Field(None, description="Validation errors only: one entry per problem.")


@dataclass(frozen=True)
class Route:
    path: str
    request: type[BaseModel]
    response: type[BaseModel]
    summary: str
    statuses: dict[int, str]  # statuses of this route besides the ones every /v1/ route has
    body_required: bool = True


_EVERY_ROUTE = {
    400: "The body is not valid JSON or does not match the schema (every problem in `details`).",
    401: "No API key, or an unknown one (or a named person's wrong name or password).",
    429: "A named person's credential is locked after too many wrong passwords (see `Retry-After`).",
    413: "The body is larger than the route accepts.",
    415: "The body is not JSON.",
    500: "An unexpected failure (logged on the server; nothing internal in the answer).",
    503: "The service is starting, or could not load what it needs.",
}
_FORBIDDEN = "The key's role may not call this route."

ROUTES: tuple[Route, ...] = (
    Route("/v1/score", s.ScoreRequest, s.Decision,
          "Score one transaction (channel: the first six fields; compliance and admin: everything).",
          {409: "A late transaction (older than the customer's latest) or a txn_id reused with other content.",
           422: "Well-formed but refused: unknown customer, dated too far ahead, or a contract rule."}),
    Route("/v1/score_batch", s.ScoreBatchRequest, s.BatchResult,
          "Score many transactions in order, as one by one; each result is a decision or that item's error.", {}),
    Route("/v1/explain", s.ExplainRequest, s.ExplainResult,
          "A past decision by request id, exactly as recorded, with its explanation by the model that decided.",
          {404: "No decision with that request id."}),
    Route("/v1/customer_risk", s.CustomerRiskRequest, s.CustomerRiskResult,
          "A customer's risk rating with its full breakdown (as of start, or refreshed now).",
          {404: "The customer is not in the customers table, or is not rated."}),
    Route("/v1/feedback", s.FeedbackRequest, s.FeedbackReceipt,
          "An analyst's disposition of a decision, stored for the next training.",
          {404: "No decision with that request id or txn_id.",
           422: "Refused by a contract rule."}),
    Route("/v1/metadata", s.EmptyRequest, s.Metadata,
          "Model name and version, configuration hashes, thresholds and the feature list.", {}, body_required=False),
    Route("/v1/health", s.EmptyRequest, s.Health,
          "Status with the model version and the audit log and state counts.", {}, body_required=False),
    Route("/v1/admin/reload", s.ReloadRequest, s.ReloadResult,
          "Load the alias (or a version) from the registry again and serve it from the next request.",
          {404: "The registry has no such version or alias.",
           422: "The model set does not match the service's features or parameters."}, body_required=False),
    Route("/v1/admin/customers", s.CustomersRequest, s.CustomersResult,
          "Add or change customers (contract rows): from the next transaction on their features and ratings use "
          "them; a changed customer is rated again and its previous rating kept in its history.",
          {400: "A row breaks the data contract (named)."}),
)


def _responses(route: Route) -> dict[str, Any]:
    statuses = dict(_EVERY_ROUTE)
    if PERMISSIONS.get(route.path) is not None and PERMISSIONS[route.path] != EVERY_ROLE:
        statuses[403] = _FORBIDDEN
    statuses.update(route.statuses)
    error = {"application/json": {"schema": {"$ref": _REF.format(model="ErrorBody")}}}
    out: dict[str, Any] = {"200": {"description": "OK",
                                   "content": {"application/json": {"schema": {"$ref": _REF.format(
                                       model=route.response.__name__)}}}}}
    for status in sorted(statuses):
        out[str(status)] = {"description": statuses[status], "content": error}
    return out


def _operation(route: Route) -> dict[str, Any]:
    roles = sorted(PERMISSIONS.get(route.path, ()))
    return {
        "summary": route.summary,
        "description": f"Roles: {', '.join(roles)}.",
        "operationId": route.path.strip("/").replace("/", "_"),
        "requestBody": {"required": route.body_required,
                        "content": {"application/json": {"schema": {"$ref": _REF.format(model=route.request.__name__)}}}},
        "responses": _responses(route),
    }


def _open_path(summary: str, media: str = "application/json") -> dict[str, Any]:
    return {"get": {"summary": summary, "security": [], "responses": {"200": {"description": "OK", "content": {
        media: {"schema": {"type": "string"} if media != "application/json" else {}}}}}}}


def build_openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the service."""
    models = {r.request for r in ROUTES} | {r.response for r in ROUTES} | {ErrorBody}
    keyed = [(m, "validation" if m in {r.request for r in ROUTES} else "serialization") for m in
             sorted(models, key=lambda m: m.__name__)]
    _, top = models_json_schema(keyed, ref_template=_REF)
    paths: dict[str, Any] = {r.path: {"post": _operation(r)} for r in ROUTES}
    paths["/livez"] = _open_path("Alive (no key).")
    paths["/readyz"] = _open_path("Ready to score (no key): 503 until the model set, state and logs are loaded.")
    paths["/healthz"] = _open_path("Alive and ready (no key).")
    paths["/metrics"] = _open_path("Prometheus metrics (no key).", "text/plain")
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "amlscore", "version": s.API_VERSION,
                 "description": "Money-laundering suspicion scoring: one API key per caller, sent as "
                                "`Authorization: Bearer <key>` or `X-API-Key: <key>`; roles channel, compliance "
                                "and admin (docs/serving.md). A named person (`amlscore users add`) sends "
                                "`Authorization: Basic` instead and is recorded as `user:<name>`."},
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "The API key as a bearer token."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The API key."},
                "person": {"type": "http", "scheme": "basic",
                           "description": "A named person's name and password (roles analyst, reviewer, admin, "
                                          "channel); 5 wrong passwords in 15 minutes lock the name for 15 minutes."},
            },
        },
        # not "person": a generated check of invalid Basic credentials would lock its made-up name (429)
        "security": [{"bearer": []}, {"apiKey": []}],
    }


@lru_cache(maxsize=1)
def openapi_json() -> bytes:
    """:func:`build_openapi` as JSON, built once."""
    return json.dumps(build_openapi(), ensure_ascii=False).encode("utf-8")
