"""The HTTP edge shared by the API functions: resolver factory, problem responses, caller identity.

One place maps every domain error to its RFC 9457 problem response, so the three functions answer alike.
Validation failures are 400 (Powertools' default is 422), with ``errors`` naming the offending field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar, cast

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
    ResponseValidationError,
)

from aurora_chats.errors import (
    CharacterNotFound,
    ChatNotFound,
    IdempotencyKeyConflict,
    InvalidCursor,
    ServiceUnavailable,
    Unauthenticated,
)
from aurora_chats.greeting import display_name
from aurora_chats.observability import logger
from aurora_chats.settings import get_settings

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://docs.aurora-interactive.dev/problems/"
_USER_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    display_name: str


def problem(
    status: int,
    slug: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return Response(
        status_code=status,
        content_type=PROBLEM_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=headers,
    )


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in loc]
    return ".".join(parts) if parts else "request"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    problems = []
    for error in exc.errors():
        message = str(error.get("msg", "is invalid"))
        problems.append({"field": _field_name(error.get("loc", ())), "message": message[:200]})
    return problems


def user_hash(user_id: str) -> str:
    """A stable, non-reversible user id for logs (user ids are personal data)."""
    return hashlib.sha256(b"aurora-chats-log:" + user_id.encode()).hexdigest()[:16]


Handler = TypeVar("Handler", bound=Callable[..., Any])


def _on(
    app: APIGatewayHttpResolver, exc_class: type[Exception] | list[type[Exception]]
) -> Callable[[Handler], Handler]:
    """``app.exception_handler`` with its type kept (Powertools' decorator is untyped)."""
    return cast(Callable[[Handler], Handler], app.exception_handler(exc_class))


def create_app() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True, response_validation_error_http_code=500)

    @_on(app, RequestValidationError)
    def _bad_request(exc: RequestValidationError) -> Response[Any]:
        errors = _validation_errors(exc)
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return problem(400, "validation-error", f"The request is not valid: {fields}.", errors=errors)

    @_on(app, InvalidCursor)
    def _bad_cursor(exc: InvalidCursor) -> Response[Any]:
        return problem(
            400, "invalid-cursor", str(exc), errors=[{"field": "query.cursor", "message": "invalid cursor"}]
        )

    @_on(app, Unauthenticated)
    def _unauthenticated(exc: Unauthenticated) -> Response[Any]:
        return problem(401, "unauthenticated", str(exc), headers={"WWW-Authenticate": "Bearer"})

    @_on(app, [ChatNotFound, CharacterNotFound])
    def _not_found(exc: ChatNotFound | CharacterNotFound) -> Response[Any]:
        return problem(404, "not-found", str(exc))

    @_on(app, IdempotencyKeyConflict)
    def _conflict(exc: IdempotencyKeyConflict) -> Response[Any]:
        return problem(409, "idempotency-key-conflict", str(exc))

    @_on(app, ServiceUnavailable)
    def _unavailable(exc: ServiceUnavailable) -> Response[Any]:
        logger.warning("DynamoDB unavailable after retries", extra={"reason": str(exc)})
        retry_after = str(get_settings().retry_after_seconds)
        return problem(503, "service-unavailable", str(exc), headers={"Retry-After": retry_after})

    @_on(app, ResponseValidationError)
    def _bad_response(exc: ResponseValidationError) -> Response[Any]:
        logger.error("response failed validation", extra={"errors": str(exc.errors())[:1000]})
        return problem(500, "internal-error", "The server failed to answer this request.")

    @_on(app, Exception)
    def _unexpected(exc: Exception) -> Response[Any]:
        logger.exception("unhandled error")
        return problem(500, "internal-error", "The server failed to answer this request.")

    @app.not_found
    def _no_route(exc: Exception) -> Response[Any]:
        return problem(404, "not-found", "No such resource.")

    return app


def current_caller(app: APIGatewayHttpResolver) -> Caller:
    """The caller from the JWT authorizer's claims; :class:`Unauthenticated` when there is no usable identity."""
    event = app.current_event
    authorizer = (event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    sub = claims.get("sub") if isinstance(claims, dict) else None
    if not isinstance(sub, str) or not _USER_ID.match(sub):
        raise Unauthenticated()
    logger.append_keys(user=user_hash(sub))
    return Caller(user_id=sub, display_name=display_name(claims))
