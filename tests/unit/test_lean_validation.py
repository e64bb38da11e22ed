"""``aurora_chats.http.lean_request_validation``: Powertools' request validation minus the parameter kinds a route
does not have. Pinned to the Powertools method it stands in for (a changed method fails here), used by every API
function, and answering exactly as Powertools' own middleware on the same requests - valid, invalid, missing,
repeated and comma-joined values, and events of other shapes (which go to Powertools' method)."""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
from typing import Annotated, Any, Literal

import pytest
from aurora_chats import http
from aurora_chats.lazy_imports import VERIFIED_VERSION
from aurora_local.events import http_api_event
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from tests.support.context import FakeContext
from tests.support.loader import load_function


def test_it_stands_in_for_the_verified_powertools_method() -> None:
    from aws_lambda_powertools.shared.version import VERSION

    assert VERSION == VERIFIED_VERSION
    source = inspect.getsource(OpenAPIRequestValidationMiddleware.handler)
    assert hashlib.sha256(source.encode()).hexdigest() == http.REQUEST_VALIDATION_SOURCE_SHA256, (
        "Powertools' OpenAPIRequestValidationMiddleware.handler changed: compare it with "
        "aurora_chats.http's LeanRequestValidationMiddleware, then update REQUEST_VALIDATION_SOURCE_SHA256"
    )


@pytest.mark.parametrize("name", ["list_chats", "initialize_chat", "delete_chat"])
def test_every_api_function_validates_with_it(name: str) -> None:
    app = load_function(name).app
    middleware = app._request_validation_middleware
    assert type(middleware).__name__ == "LeanRequestValidationMiddleware"
    assert isinstance(middleware, OpenAPIRequestValidationMiddleware)
    assert http.lean_request_validation(app)  # already installed: left as it is
    assert app._request_validation_middleware is middleware


def _handler(lean: bool) -> Any:
    app = http.create_app()
    if not lean:
        app._request_validation_middleware = OpenAPIRequestValidationMiddleware()  # type: ignore[no-untyped-call]

    @app.get("/items/<item_id>")
    def item(
        item_id: Annotated[int, Path(gt=0)],
        limit: Annotated[int, Query(ge=1, le=50)] = 20,
        words: Annotated[list[str] | None, Query()] = None,
        tag: Annotated[str | None, Header(alias="x-tag", max_length=4)] = None,
    ) -> dict[str, object]:
        return {"item": item_id, "limit": limit, "words": words, "tag": tag}

    @app.get("/paths/<item_id>")
    def path_only(item_id: Annotated[int, Path(gt=0)]) -> dict[str, object]:
        return {"item": item_id}

    @app.get("/queries")
    def query_only(
        limit: Annotated[int, Query(ge=1)] = 20, cursor: Annotated[str | None, Query()] = None
    ) -> Any:
        return {"limit": limit, "cursor": cursor}

    @app.post("/headers")
    def header_only(key: Annotated[str | None, Header(alias="idempotency-key", min_length=2)] = None) -> Any:
        return {"key": key}

    return http.api_handler(app)


def _events() -> list[dict[str, Any]]:
    claims = {"sub": "alice"}
    events = []
    for path in ("/items/7", "/items/0", "/items/x", "/paths/3", "/paths/-1", "/queries"):
        for query in ("", "limit=5", "limit=0", "limit=a", "limit=1,2", "limit=3&limit=4", "words=a,b&words=c",
                      "cursor=a,b", "cursor=x&cursor=y", "unknown=1"):  # fmt: skip
            for headers in ({}, {"x-tag": "t1"}, {"X-Tag": "toolong"}, {"x-tag": "a,b"}):
                events.append(http_api_event("GET", path, raw_query=query, claims=claims, headers=headers))
    for headers in ({}, {"Idempotency-Key": "k1"}, {"idempotency-key": "k"}, {"idempotency-key": "a,b"}):
        events.append(http_api_event("POST", "/headers", claims=claims, headers=headers))
        events.append(http_api_event("POST", "/headers", claims=claims, headers=headers, raw_query="limit=2"))
    # Other shapes: Powertools' own method takes these (and raises where it raises).
    base = http_api_event("GET", "/paths/3", raw_query="limit=2", claims=claims, headers={"x-tag": "t"})
    odd: list[tuple[str, Any]] = [
        ("cookies", ["a=b", "c=d"]),
        ("cookies", [1]),
        ("multiValueHeaders", {"x-tag": ["a", "b"]}),
        ("multiValueQueryStringParameters", {"limit": ["1", "2"]}),
        ("multiValueQueryStringParameters", ["not", "a", "dict"]),
        ("headers", {"x-tag": None}),
        ("headers", None),
        ("queryStringParameters", {"limit": 5}),
        ("queryStringParameters", None),
        ("rawQueryString", None),
        ("rawQueryString", 12),
    ]
    for key, value in odd:
        for path in ("/paths/3", "/queries", "/items/2"):
            event = copy.deepcopy(base)
            event["rawPath"] = event["requestContext"]["http"]["path"] = path
            event[key] = value
            events.append(event)
    return events


def _outcome(handler: Any, event: dict[str, Any]) -> tuple[Any, ...]:
    try:
        answer = handler(copy.deepcopy(event), FakeContext())
    except Exception as exc:  # what escapes Powertools must escape alike
        return ("raised", type(exc).__name__, str(exc))
    return (answer["statusCode"], json.loads(answer["body"]), answer)


def test_it_answers_as_powertools_own_request_validation() -> None:
    lean, plain = _handler(lean=True), _handler(lean=False)
    answers: list[tuple[Any, ...]] = []
    for event in _events():
        ours = _outcome(lean, event)
        assert ours == _outcome(plain, event), event
        answers.append(ours[:2])
    statuses = {answer[0] for answer in answers}
    # valid, invalid and (from the odd shapes) failing requests were all compared
    assert statuses >= {200, 400, 500, "raised"}
    assert (200, {"item": 7, "limit": 5, "words": None, "tag": "t1"}) in answers


# ---------------------------------------------------------------- aurora_chats.http.lean_response_builder


def test_the_compression_check_stands_in_for_the_verified_powertools_method() -> None:
    from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder

    source = inspect.getsource(ResponseBuilder._has_compression_enabled)
    assert hashlib.sha256(source.encode()).hexdigest() == http.COMPRESSION_CHECK_SOURCE_SHA256, (
        "Powertools' ResponseBuilder._has_compression_enabled changed: compare it with aurora_chats.http's "
        "LeanResponseBuilder, then update COMPRESSION_CHECK_SOURCE_SHA256"
    )


@pytest.mark.parametrize("name", ["list_chats", "initialize_chat", "delete_chat"])
def test_every_api_function_builds_responses_with_it(name: str) -> None:
    from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder

    app = load_function(name).app
    builder = app._response_builder_class
    assert builder.__name__ == "LeanResponseBuilder"
    assert issubclass(builder, ResponseBuilder)
    assert http.lean_response_builder(app)  # already installed: left as it is
    assert app._response_builder_class is builder


class _Headers:
    """An event whose headers are only what ``accept_encoding`` says, counting how often they are read."""

    def __init__(self, accept_encoding: str | list[str] | None) -> None:
        self.accept_encoding = accept_encoding
        self.reads = 0
        self.raw_event = {
            "headers": {"accept-encoding": accept_encoding} if isinstance(accept_encoding, str) else {}
        }

    @property
    def resolved_headers_field(self) -> dict[str, Any]:
        self.reads += 1
        return {} if self.accept_encoding is None else {"accept-encoding": self.accept_encoding}


def test_it_answers_as_powertools_own_compression_check_and_reads_no_header_when_nothing_compresses() -> None:
    from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder

    lean = http._lean_response_builder_class()
    for route in (False, True):
        for response in (None, False, True):
            for encoding in (None, "gzip", "br, gzip", "identity", ["br", "gzip"], ["br"]):
                ours, theirs = _Headers(encoding), _Headers(encoding)
                answer = lean._has_compression_enabled(route, response, ours)
                assert answer == ResponseBuilder._has_compression_enabled(route, response, theirs)  # type: ignore[type-var]
                asked = response if response is not None else route
                assert ours.reads == (1 if asked else 0), (route, response, encoding)


def test_a_compressed_route_is_still_gzipped() -> None:
    import base64
    import gzip

    app = http.create_app()

    @app.get("/big", compress=True)
    def big() -> dict[str, str]:
        return {"text": "a" * 500}

    @app.get("/told")
    def told() -> Response[str]:
        return Response(status_code=200, content_type="text/plain", body="b" * 500, compress=True)

    handler: Any = http.api_handler(app)
    for path in ("/big", "/told"):
        for accept, compressed in (("gzip, br", True), ("br", False), (None, False)):
            headers = {"accept-encoding": accept} if accept else {}
            event = http_api_event("GET", path, claims={"sub": "alice"}, headers=headers)
            answer = handler(event, FakeContext())
            assert answer["statusCode"] == 200
            assert answer["isBase64Encoded"] is compressed, (path, accept)
            body = (
                gzip.decompress(base64.b64decode(answer["body"])).decode() if compressed else answer["body"]
            )
            assert body in ('{"text":"' + "a" * 500 + '"}', "b" * 500)


# ---------------------------------------------------------------- aurora_chats.http.lean_response_validation


def test_response_validation_stands_in_for_the_verified_powertools_methods() -> None:
    from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
        OpenAPIResponseValidationMiddleware as Middleware,
    )
    from aws_lambda_powertools.event_handler.openapi.compat import ModelField

    source = "".join(
        inspect.getsource(method)
        for method in (
            Middleware._handle_response,
            Middleware._serialize_response_with_validation,
            ModelField.serialize,
        )
    )
    assert hashlib.sha256(source.encode()).hexdigest() == http.RESPONSE_VALIDATION_SOURCE_SHA256, (
        "Powertools' response validation changed: compare OpenAPIResponseValidationMiddleware._handle_response, "
        "._serialize_response_with_validation and ModelField.serialize with aurora_chats.http's "
        "LeanResponseValidationMiddleware, then update RESPONSE_VALIDATION_SOURCE_SHA256"
    )


@pytest.mark.parametrize("name", ["list_chats", "initialize_chat", "delete_chat"])
def test_every_api_function_validates_responses_with_it(name: str) -> None:
    from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
        OpenAPIResponseValidationMiddleware,
    )

    app = load_function(name).app
    middleware = app._response_validation_middleware
    assert type(middleware).__name__ == "LeanResponseValidationMiddleware"
    assert isinstance(middleware, OpenAPIResponseValidationMiddleware)
    assert middleware._validation_serializer is http.json_body
    assert middleware._has_response_validation_error is True
    assert http.lean_response_validation(app)  # already installed: left as it is
    assert app._response_validation_middleware is middleware


class _Item(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    item_id: int
    label: str
    tags: list[str] = []
    note: str | None = None
    ok: Literal[True] = True


def _response_handler(lean: bool) -> Any:
    from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
        OpenAPIResponseValidationMiddleware,
    )

    app = http.create_app()
    if not lean:
        plain = OpenAPIResponseValidationMiddleware(validation_serializer=http.json_body)
        plain._has_response_validation_error = True
        app._response_validation_middleware = plain
    labels = {"plain": "a", "unicode": "Grüße 😀 \u2028", "surrogate": "cut \ud83d", "quote": '"<&>\\'}

    @app.get("/items/<kind>")
    def item(kind: str) -> _Item:
        return _Item(item_id=7, label=labels[kind], tags=[labels[kind], "x"])

    @app.get("/pages")
    def pages() -> list[_Item]:
        return [_Item(item_id=i, label=str(i)) for i in range(3)]

    @app.get("/dicts")
    def dicts() -> dict[str, int]:
        return {"a": 1, "b": 2}

    @app.get("/wrong")
    def wrong() -> _Item:
        return {"itemId": "not a number", "label": 3}  # type: ignore[return-value]

    @app.get("/untyped")
    def untyped():  # type: ignore[no-untyped-def]
        return {"free": [1, 2]}

    @app.get("/nothing")
    def nothing() -> None:
        return None

    @app.post("/wrapped")
    def wrapped() -> Response[_Item]:
        return Response(status_code=201, content_type="application/json", body=_Item(item_id=1, label="w"))

    @app.get("/text")
    def text() -> Response[str]:
        return Response(status_code=200, content_type="text/plain", body="plain words")

    return http.api_handler(app)


def _raw_outcome(handler: Any, event: dict[str, Any]) -> tuple[Any, ...]:
    try:
        answer = handler(copy.deepcopy(event), FakeContext())
    except Exception as exc:
        return ("raised", type(exc).__name__, str(exc))
    body = answer["body"]
    return (
        answer["statusCode"],
        json.loads(body) if answer["headers"].get("Content-Type", "").endswith("json") else body,
        answer,
    )


def test_it_answers_as_powertools_own_response_validation() -> None:
    lean, plain = _response_handler(lean=True), _response_handler(lean=False)
    paths = ["/items/plain", "/items/unicode", "/items/surrogate", "/items/quote", "/items/unknown", "/pages"]
    paths += ["/dicts", "/wrong", "/untyped", "/nothing", "/text"]
    answers = []
    for method, path in [("GET", p) for p in paths] + [("POST", "/wrapped")]:
        event = http_api_event(method, path, claims={"sub": "alice"})
        ours = _raw_outcome(lean, event)
        assert ours == _raw_outcome(plain, event), path
        answers.append(ours[:2])
    assert (
        200,
        {"itemId": 7, "label": "Grüße 😀 \u2028", "tags": ["Grüße 😀 \u2028", "x"], "note": None, "ok": True},
    ) in answers
    assert {answer[0] for answer in answers} >= {200, 201, 500}
