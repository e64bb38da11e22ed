"""The HTTP edge shared by the API functions: resolver factory, problem responses, caller identity, and the one
handler stack (:func:`api_handler`). The per-operation OpenAPI documentation is :mod:`aurora_chats.api_docs`.

One place maps every domain error to its RFC 9457 problem response, so the three functions answer alike.
Validation failures are 400 (Powertools' default is 422), with ``errors`` naming the offending field.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar, cast

import pydantic_core
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from aurora_chats.errors import (
    AccountDeleted,
    CharacterNotFound,
    ChatLimitReached,
    ChatNotFound,
    IdempotencyKeyConflict,
    InvalidCursor,
    OutcomeUnknown,
    ServiceUnavailable,
    Unauthenticated,
)
from aurora_chats.greeting import display_name
from aurora_chats.lazy_imports import VERIFIED_VERSION
from aurora_chats.observability import lambda_handler, logger, user_hash
from aurora_chats.settings import get_settings

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://docs.aurora-interactive.dev/problems/"
_USER_ID = re.compile(r"^[\x21-\x7e]{1,255}$")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
# No route takes a request body (the SDK sends none): any body is a 400, and a large one a 413 without being read.
MAX_BODY_BYTES = 1024
# API Gateway's own limit for the request line and headers; enforced here too so every front behaves alike.
MAX_HEADER_BYTES = 10_240


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


# ---------------------------------------------------------------- the problems, as the OpenAPI document shows them

# The slug and default wording of every problem status the handlers below can answer; `api_docs.problem_responses`
# turns them into route `responses=` so the generated document lists exactly what this module sends.
PROBLEMS: dict[int, tuple[str, str]] = {
    400: (
        "validation-error",
        "The request is not valid: a path, query or header value is malformed or out of range "
        "(`errors` names each field).",
    ),
    401: ("unauthenticated", "No usable identity: the bearer token is missing or carries no subject."),
    403: (
        "account-deleted",
        "The caller's account was deleted: its token is still valid, but nothing can be stored for it any more.",
    ),
    404: ("not-found", "No such resource."),
    409: ("idempotency-key-conflict", "The request conflicts with an earlier one."),
    500: (
        "internal-error",
        "Unexpected server error; no internals are disclosed and the request id is logged.",
    ),
    503: (
        "service-unavailable",
        "The database is still throttling after retries and nothing was written: retry after `Retry-After` seconds.",
    ),
    413: (
        "content-too-large",
        f"The operation takes no request body; this one is over {MAX_BODY_BYTES} bytes.",
    ),
    431: (
        "request-header-fields-too-large",
        f"The request headers are over {MAX_HEADER_BYTES} bytes.",
    ),
    504: (
        "outcome-unknown",
        "The database did not confirm the change in time: it may or may not have been made. Repeat the request "
        "(POST with the same Idempotency-Key) to find out.",
    ),
}


# Further problem types that share a status with one above (each its own `type`): slug -> (status, description).
MORE_PROBLEMS: dict[str, tuple[int, str]] = {
    "chat-limit-reached": (
        409,
        "The caller already has the maximum number of chats (`MaxChatsPerUser`); deleting one frees a slot at once.",
    ),
}


def json_body(value: Any) -> str:
    """The resolver's response serializer: compact JSON, UTF-8 (``application/json``'s encoding) rather than
    ``\\u`` escapes. pydantic-core's encoder takes half the time of Powertools' ``json.dumps`` (12 vs 24 µs on a
    page of 20 chats); ``json.dumps`` is the fallback for what it refuses (lone surrogates from a character card)."""
    try:
        return pydantic_core.to_json(value).decode()
    except (ValueError, TypeError, pydantic_core.PydanticSerializationError):
        return json.dumps(value, separators=(",", ":"))


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in loc]
    return ".".join(parts) if parts else "request"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    problems = []
    for error in exc.errors():
        message = str(error.get("msg", "is invalid"))
        problems.append({"field": _field_name(error.get("loc", ())), "message": message[:200]})
    return problems


Handler = TypeVar("Handler", bound=Callable[..., Any])


def _on(
    app: APIGatewayHttpResolver, exc_class: type[Exception] | list[type[Exception]]
) -> Callable[[Handler], Handler]:
    """``app.exception_handler`` with its type kept (Powertools' decorator is untyped)."""
    return cast(Callable[[Handler], Handler], app.exception_handler(exc_class))


def remember_parameter_kinds() -> bool:
    """Powertools' request validation asks ``is_scalar_field(param)`` of every query and header parameter on every
    request, re-deriving from the parameter's annotation what its route fixed once registered (~10-15 µs of a
    request, ``make bench``). Remember each answer per parameter; the answer itself is Powertools' own.

    Only for the Powertools version this was checked against (:data:`aurora_chats.lazy_imports.VERIFIED_VERSION`,
    ``tests/unit/test_lazy_imports.py``); returns whether the request validation now remembers them.
    """
    from aws_lambda_powertools.event_handler.middlewares import openapi_validation
    from aws_lambda_powertools.shared.version import VERSION

    # The middleware's own binding of `from ...dependant import is_scalar_field` (not re-exported, hence the ignores).
    original = openapi_validation.is_scalar_field  # type: ignore[attr-defined]
    if getattr(original, "__wrapped__", None) is not None:
        return True
    if VERSION != VERIFIED_VERSION:
        return False
    # id -> (the parameter, its kind): the parameter is kept, so its id cannot be reused for another one.
    kinds: dict[int, tuple[Any, bool]] = {}

    @functools.wraps(original)
    def is_scalar_field(field: Any) -> bool:
        known = kinds.get(id(field))
        if known is not None and known[0] is field:
            return known[1]
        kind = original(field)
        if len(kinds) >= 1024:  # routes have a handful of parameters; never grow without bound
            kinds.clear()
        kinds[id(field)] = (field, kind)
        return kind

    openapi_validation.is_scalar_field = is_scalar_field  # type: ignore[attr-defined]
    return True


# The source of the Powertools method :func:`lean_request_validation` stands in for, hashed (sha256 of
# ``inspect.getsource``): a test fails when the pinned version's method differs, so an upgrade is checked again.
REQUEST_VALIDATION_SOURCE_SHA256 = "bbe465c855d8e7df295a9b6c285c279c130fbb345875d6caa9418579febdb22d"


def _plain_strings(mapping: Any) -> bool:
    """``None`` or a dict of strings to strings."""
    if mapping is None:
        return True
    if type(mapping) is not dict:
        return False
    for name, value in mapping.items():  # noqa: SIM110 - a loop: twice as fast as all() over a generator
        if type(name) is not str or type(value) is not str:
            return False
    return True


def _plain_http_api_event(raw: dict[str, Any]) -> bool:
    """Whether the parts the lean validation may leave unread have the HTTP API (v2) shapes, which Powertools reads
    without raising: string headers and query values, no multi-value fields, no cookies, a string query string.
    Any other event goes through Powertools' own method, which would raise where it raises."""
    raw_query = raw.get("rawQueryString")
    return (
        _plain_strings(raw.get("headers"))
        and _plain_strings(raw.get("queryStringParameters"))
        and raw.get("multiValueHeaders") is None
        and raw.get("multiValueQueryStringParameters") is None
        and not raw.get("cookies")
        and (not raw_query or type(raw_query) is str)
    )


def lean_request_validation(app: APIGatewayHttpResolver) -> bool:
    """Powertools' request validation reads and normalises the query string, every header (two case-insensitive
    copies) and the cookies of every request, then validates them against the route's parameters of each kind -
    even for a kind the route has none of (DELETE has only a path parameter, GET /chats no header): 5-12 µs of a
    request, ``make bench``. This stand-in is Powertools' own method minus the kinds the route does not have; it
    calls the same functions in the same order for the kinds it has, so values, errors and their order are
    Powertools'. Routes with cookie or body parameters, and events of other shapes, go to Powertools' method.

    Only for the Powertools version this was checked against (:data:`aurora_chats.lazy_imports.VERIFIED_VERSION`
    and :data:`REQUEST_VALIDATION_SOURCE_SHA256`, ``tests/unit/test_lean_validation.py``); returns whether ``app``
    now validates requests with it.
    """
    from aws_lambda_powertools.event_handler.middlewares import openapi_validation as ov

    return _swap_middleware(
        app,
        "_request_validation_middleware",
        ov.OpenAPIRequestValidationMiddleware,
        _lean_request_validation_class(),
    )


def _swap_middleware(
    app: APIGatewayHttpResolver, attribute: str, powertools: type[Any], lean: type[Any]
) -> bool:
    """Put ``lean`` (a subclass of Powertools' ``powertools`` middleware) where the resolver keeps ``attribute``,
    with the state Powertools gave its own (serializer, settings), if the installed Powertools is the verified
    version and the middleware there is exactly Powertools' class; returns whether ``lean`` is in place."""
    from aws_lambda_powertools.shared.version import VERSION

    current = getattr(app, attribute, None)
    if isinstance(current, lean):
        return True
    if VERSION != VERIFIED_VERSION or type(current) is not powertools:
        return False
    replacement = lean()
    replacement.__dict__.update(current.__dict__)
    setattr(app, attribute, replacement)
    return True


@functools.cache
def _lean_request_validation_class() -> type[Any]:
    from aws_lambda_powertools.event_handler.middlewares import openapi_validation as ov
    from aws_lambda_powertools.utilities.data_classes.common import CaseInsensitiveDict

    class LeanRequestValidationMiddleware(ov.OpenAPIRequestValidationMiddleware):
        def handler(self, app: Any, next_middleware: NextMiddleware) -> Response[Any]:
            dependant = app.context["_route"].dependant
            event = app.current_event
            raw = event.raw_event
            if dependant.cookie_params or dependant.body_params or not _plain_http_api_event(raw):
                return super().handler(app, next_middleware)
            ov.logger.debug("OpenAPIRequestValidationMiddleware handler")
            values, errors = ov._request_params_to_args(dependant.path_params, app.context["_route_args"])
            if dependant.query_params:
                query_string = ov._normalize_multi_params(
                    event.resolved_query_string_parameters,
                    dependant.query_params,
                    multi_value_params=ov._get_multi_value_query_params(event),
                )
                query_values, query_errors = ov._request_params_to_args(dependant.query_params, query_string)
                values.update(query_values)
                errors += query_errors
            if dependant.header_params:
                headers = ov._normalize_multi_params(
                    event.resolved_headers_field,
                    dependant.header_params,
                    multi_value_params=CaseInsensitiveDict(raw.get("multiValueHeaders")),  # type: ignore[no-untyped-call]
                )
                header_values, header_errors = ov._request_params_to_args(dependant.header_params, headers)
                values.update(header_values)
                errors += header_errors
            if errors:
                raise RequestValidationError(ov._normalize_errors(errors))  # type: ignore[attr-defined]
            app.context["_route_args"] = values
            return next_middleware(app)

    return LeanRequestValidationMiddleware


# The source of the Powertools method :func:`lean_response_builder` short-cuts, hashed like the one above.
COMPRESSION_CHECK_SOURCE_SHA256 = "ebc0eab5154a0775fa23bbc3575149d92fff8b9351978441e819fc401f7de89e"


def lean_response_builder(app: APIGatewayHttpResolver) -> bool:
    """Powertools decides whether to gzip a response by first reading the request's ``Accept-Encoding``: it builds
    two case-insensitive copies of every header of every request (~5 µs, ``make bench``), even though no route
    here compresses (``compress=`` on neither route nor response), so its answer is always False. The stand-in
    answers False at once when neither asks for compression and the headers have the HTTP API shape (strings,
    which Powertools reads without raising); otherwise it asks Powertools' own method, so every answer (or error)
    is Powertools'.

    Only for the Powertools version this was checked against (:data:`aurora_chats.lazy_imports.VERIFIED_VERSION`
    and :data:`COMPRESSION_CHECK_SOURCE_SHA256`, ``tests/unit/test_lean_validation.py``); returns whether ``app``
    now builds its responses with it.
    """
    from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
    from aws_lambda_powertools.shared.version import VERSION

    lean = _lean_response_builder_class()
    current = getattr(app, "_response_builder_class", None)
    if current is lean:
        return True
    # Powertools sets ResponseBuilder[BaseProxyEvent] (a generic alias of the class): anything else is left alone.
    if VERSION != VERIFIED_VERSION or getattr(current, "__origin__", None) is not ResponseBuilder:
        return False
    app._response_builder_class = lean
    return True


@functools.cache
def _lean_response_builder_class() -> type[Any]:
    from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder

    class LeanResponseBuilder(ResponseBuilder[Any]):
        @staticmethod
        def _has_compression_enabled(
            route_compression: bool, response_compression: bool | None, event: Any
        ) -> bool:
            # Powertools: the response's setting when it has one, else the route's - and only if gzip is accepted.
            wanted = route_compression if response_compression is None else response_compression
            # Headers of other shapes make Powertools' reading of them raise: left to Powertools' method.
            if not wanted and _plain_strings(event.raw_event.get("headers")):
                return False
            answer: bool = ResponseBuilder._has_compression_enabled(
                route_compression, response_compression, event
            )
            return answer

    return LeanResponseBuilder


# The sources of the Powertools methods :func:`lean_response_validation` stands in for, hashed together like the ones
# above: ``OpenAPIResponseValidationMiddleware._handle_response`` and ``._serialize_response_with_validation`` and
# the ``ModelField.serialize`` they call.
RESPONSE_VALIDATION_SOURCE_SHA256 = "3a00227e67ccc616033f3ba0ca62fafd6ff81d7e23c1da96fbff2aa64e396771"


def lean_response_validation(app: APIGatewayHttpResolver) -> bool:
    """Powertools validates a route's return value, serialises it into JSON-ready Python values
    (``dump_python(mode="json")``), and the resolver then writes those values as JSON with the app's serializer
    (:func:`json_body`): two passes over the response (11-12 µs for a page of 20 chats, ``make bench``). The
    stand-in validates the same way (Powertools' ``_validate_field``, same errors, same exceptions) and writes the
    validated value as JSON in one pass with the same pydantic serializer (``dump_json``, the same bytes as
    :func:`json_body` of ``dump_python(mode="json")``). Anything else - a response that is not JSON, a route
    without a return type, another serializer, a validation error, a value pydantic cannot write as JSON (a lone
    surrogate, which :func:`json_body` writes with ``json.dumps``) - goes to Powertools' own method.

    Only for the Powertools version this was checked against (:data:`aurora_chats.lazy_imports.VERIFIED_VERSION`
    and :data:`RESPONSE_VALIDATION_SOURCE_SHA256`, ``tests/unit/test_lean_validation.py``); returns whether ``app``
    now validates responses with it.
    """
    from aws_lambda_powertools.event_handler.middlewares import openapi_validation as ov

    return _swap_middleware(
        app,
        "_response_validation_middleware",
        ov.OpenAPIResponseValidationMiddleware,
        _lean_response_validation_class(),
    )


@functools.cache
def _lean_response_validation_class() -> type[Any]:
    from aws_lambda_powertools.event_handler.middlewares import openapi_validation as ov

    class LeanResponseValidationMiddleware(ov.OpenAPIResponseValidationMiddleware):
        def _handle_response(self, *, route: Any, response: Response[Any]) -> Response[Any]:
            field = route.dependant.return_param
            if field is None or not response.is_json() or self._validation_serializer is not json_body:
                return cast(Response[Any], super()._handle_response(route=route, response=response))
            # Powertools' own reading of the body (ALB's "" for None).
            content = None if response.body == "" and field.type_ in (None, type(None)) else response.body
            errors: list[dict[str, Any]] = []
            value = ov._validate_field(field=field, value=content, loc=("response",), existing_errors=errors)
            if not errors:
                try:
                    response.body = field._type_adapter.dump_json(value, by_alias=True).decode()
                    return response
                except (ValueError, TypeError, pydantic_core.PydanticSerializationError):
                    pass
            return cast(Response[Any], super()._handle_response(route=route, response=response))

    return LeanResponseValidationMiddleware


def create_app() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(
        enable_validation=True, response_validation_error_http_code=500, serializer=json_body
    )
    remember_parameter_kinds()
    lean_request_validation(app)
    lean_response_validation(app)
    lean_response_builder(app)

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

    @_on(app, AccountDeleted)
    def _account_deleted(exc: AccountDeleted) -> Response[Any]:
        return problem(403, "account-deleted", str(exc))

    @_on(app, ChatLimitReached)
    def _chat_limit(exc: ChatLimitReached) -> Response[Any]:
        return problem(409, "chat-limit-reached", str(exc))

    @_on(app, ServiceUnavailable)
    def _unavailable(exc: ServiceUnavailable) -> Response[Any]:
        logger.warning("DynamoDB unavailable after retries", extra={"reason": str(exc)})
        retry_after = str(get_settings().retry_after_seconds)
        return problem(503, "service-unavailable", str(exc), headers={"Retry-After": retry_after})

    @_on(app, OutcomeUnknown)
    def _outcome_unknown(exc: OutcomeUnknown) -> Response[Any]:
        logger.warning("DynamoDB did not confirm a write; its outcome is unknown")
        retry_after = str(get_settings().retry_after_seconds)
        return problem(504, "outcome-unknown", str(exc), headers={"Retry-After": retry_after})

    @_on(app, ResponseValidationError)
    def _bad_response(exc: ResponseValidationError) -> Response[Any]:
        # Where and what kind, never the offending value: it is response content (greetings, cursors).
        where = [{"loc": _field_name(e.get("loc", ())), "type": str(e.get("type", ""))} for e in exc.errors()]
        logger.error("response failed validation", extra={"errors": where[:20]})
        return problem(500, "internal-error", "The server failed to answer this request.")

    @_on(app, Exception)
    def _unexpected(exc: Exception) -> Response[Any]:
        logger.exception("unhandled error")
        return problem(500, "internal-error", "The server failed to answer this request.")

    @app.not_found
    def _no_route(exc: Exception) -> Response[Any]:
        return problem(404, "not-found", "No such resource.")

    app.use(middlewares=[_request_limits])
    return app


def _request_limits(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Resource limits (OWASP API4): headers up to API Gateway's size, a clean path, and no request body at all."""
    raw = app.current_event.raw_event
    headers = raw.get("headers") or {}
    header_bytes = 4 * len(headers)  # ": " and CRLF per header
    for name, value in headers.items():
        header_bytes += len(str(name)) + len(str(value))
    if header_bytes > MAX_HEADER_BYTES:
        return problem(431, "request-header-fields-too-large", PROBLEMS[431][1])
    path = str(raw.get("rawPath") or "")
    if _CONTROL_CHARACTER.search(path):
        # The route pattern's ``$`` would match before a trailing newline: "/chats/1\n" must not mean chat 1.
        return problem(
            400,
            "validation-error",
            "The request is not valid: path.",
            errors=[{"field": "path", "message": "control characters are not allowed"}],
        )
    body = raw.get("body")
    if body:
        text = str(body)
        size = (
            len(text) * 3 // 4 if raw.get("isBase64Encoded") else len(text.encode("utf-8", "surrogatepass"))
        )
        if size > MAX_BODY_BYTES:
            return problem(413, "content-too-large", PROBLEMS[413][1])
        return problem(
            400,
            "validation-error",
            "The request is not valid: body.",
            errors=[{"field": "body", "message": "this operation takes no request body"}],
        )
    return next_middleware(app)


def current_caller(app: APIGatewayHttpResolver) -> Caller:
    """The caller from the JWT authorizer's claims; :class:`Unauthenticated` when there is no usable identity."""
    event = app.current_event
    authorizer = (event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    sub = claims.get("sub") if isinstance(claims, dict) else None
    if not isinstance(sub, str) or not _USER_ID.fullmatch(sub):  # match() would accept a trailing newline
        raise Unauthenticated()
    logger.append_keys(user=user_hash(sub))
    return Caller(user_id=sub, display_name=display_name(claims))


def base_path(app: APIGatewayHttpResolver) -> str:
    """``/<stage>`` on a deployed stage's execute-api URL (the stage is part of every path there), else ``""``."""
    event = app.current_event
    return event.raw_path[: len(event.raw_path) - len(event.path)]


def api_handler(app: APIGatewayHttpResolver) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda ``handler`` of an API function: ``app.resolve`` inside the one handler stack
    (:func:`aurora_chats.observability.lambda_handler`, with the request's correlation id, and the collector resumed
    once the first request is answered)."""

    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    return lambda_handler(handler, request_correlation_id=True, gc_after_first_invocation=True)
