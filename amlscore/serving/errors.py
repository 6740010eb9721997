"""Errors the service answers with, each carrying its HTTP status (``error_code``) and a stable code.

Every error response has one shape, whatever produced it (authentication, the body-size limit,
request validation, the scoring itself)::

    {"error": "<what is wrong, for people>", "code": "<stable machine code>", "status": 400,
     "details": [...]}          # details only for validation errors: one entry per problem

The classes derive from :class:`bentoml.exceptions.BentoMLException` (so BentoML maps them to
their status when one escapes an API method) and from :class:`amlscore.contract.errors.AmlError` (so the
CLI prints them without a traceback).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from bentoml.exceptions import BentoMLException

from amlscore.contract.errors import AmlError


class ServingError(BentoMLException, AmlError):
    """Base of the errors the service turns into an HTTP response."""

    error_code = HTTPStatus.BAD_REQUEST
    code = "bad_request"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None,
                 channel_message: str | None = None) -> None:
        super().__init__(message)
        self.details = details
        self.channel_message = channel_message

    @property
    def status(self) -> int:
        return int(self.error_code)

    def message_for(self, full_view: bool) -> str:
        """The message a caller sees: the full one for compliance and admin; for the channel role the
        ``channel_message`` when there is one, which says what to fix without revealing other
        transactions (another transaction's time, another request's id)."""
        return self.message if full_view or self.channel_message is None else self.channel_message

    def body(self, full_view: bool = True) -> dict[str, Any]:
        """The JSON error body (for a caller with the full view, or the channel role's)."""
        out: dict[str, Any] = {"error": self.message_for(full_view), "code": self.code, "status": self.status}
        if self.details:
            out["details"] = self.details
        return out


class InvalidRequest(ServingError):
    """The body is not valid JSON or does not match the endpoint's schema."""

    error_code = HTTPStatus.BAD_REQUEST
    code = "invalid_request"


class Unauthorized(ServingError):
    """No API key, or a key the service does not know."""

    error_code = HTTPStatus.UNAUTHORIZED
    code = "unauthorized"


class Forbidden(ServingError):
    """A known key whose role may not call this endpoint."""

    error_code = HTTPStatus.FORBIDDEN
    code = "forbidden"


class NotFound(ServingError):
    """The request id, customer or route does not exist."""

    error_code = HTTPStatus.NOT_FOUND
    code = "not_found"


class Conflict(ServingError):
    """The request contradicts what the service already holds (a reused txn_id, a late transaction)."""

    error_code = HTTPStatus.CONFLICT
    code = "conflict"


class TooManySignIns(ServingError):
    """A named person's credential is locked for a while after too many wrong passwords."""

    error_code = HTTPStatus.TOO_MANY_REQUESTS
    code = "sign_in_locked"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLarge(ServingError):
    """The request body is larger than the endpoint accepts."""

    error_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"


class UnsupportedMediaType(ServingError):
    """The body is not JSON."""

    error_code = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_media_type"


class UnprocessableTransaction(ServingError):
    """Well-formed, but the contract or the customers table refuses it (e.g. an unknown customer)."""

    error_code = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "unprocessable"


class NotReady(ServingError):
    """The service is starting, reloading or could not load what it needs."""

    error_code = HTTPStatus.SERVICE_UNAVAILABLE
    code = "not_ready"


class InternalError(ServingError):
    """A failure the service did not foresee: logged with its trace, answered without internal details."""

    error_code = HTTPStatus.INTERNAL_SERVER_ERROR
    code = "internal_error"

    def __init__(self, message: str = "An unexpected error has occurred; it is logged on the server. Sending the "
                                      "same request again is safe (a transaction is never counted twice).",
                 **kwargs: Any) -> None:
        super().__init__(message, **kwargs)


def with_code(cls: type[ServingError], code: str, message: str, **kwargs: Any) -> ServingError:
    """An error of class ``cls`` with a more precise ``code`` (e.g. ``unknown_customer``)."""
    err = cls(message, **kwargs)
    err.code = code
    return err

