"""Log hygiene: what the functions write to CloudWatch (Powertools' JSON lines on stdout), captured and checked.

Never in a log line: the bearer token or Authorization header, message content (greetings), cursors or the cursor
secret, the raw user id. Always in a log line of an identified request: the request id (``correlation_id``) and the
hashed user id (``user`` = :func:`aurora_chats.observability.user_hash`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aurora_local.events import http_api_event
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ReadTimeoutError

from tests.support.api import Response
from tests.support.context import FakeContext
from tests.support.env import ROOT
from tests.support.loader import fresh_function, load_function

SUB = "7c1e0f3a-user-sub-5d2b"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI3YzFlMGYzYSJ9.c2lnbmF0dXJlLXNlY3JldA"
CURSOR_SECRET = "test-cursor-secret"  # conftest's CURSOR_SECRET
ROUTES = {
    "list": ("list_chats", "GET", "GET /chats", "/chats", None),
    "initialize": ("initialize_chat", "POST", "POST /characters/{characterId}/chats", "/characters/330905/chats",
                   {"characterId": "330905"}),
    "delete": ("delete_chat", "DELETE", "DELETE /chats/{chatId}", "/chats/{id}", {"chatId": "{id}"}),
}  # fmt: skip


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def logs() -> Iterator[Captured]:
    """The Powertools logger's own handler, pointed at a buffer: exactly the JSON CloudWatch would receive."""
    from aurora_chats.observability import logger

    captured = Captured()
    handler: Any = logger.registered_handler
    previous = handler.setStream(captured.stream)
    level = logger.log_level
    logger.setLevel("DEBUG")  # the template allows LogLevel DEBUG: nothing may leak at any level
    try:
        yield captured
    finally:
        logger.setLevel(level)
        handler.setStream(previous)


def call(
    route: str, *, chat_id: int = 0, query: str = "", key: str | None = None, sub: str | None = SUB
) -> Response:
    function, method, route_key, path, params = ROUTES[route]
    headers = {"Authorization": f"Bearer {TOKEN}", "User-Agent": "sdk"}
    if key is not None:
        headers["Idempotency-Key"] = key
    event = http_api_event(
        method, path.format(id=chat_id), route_key=route_key,
        path_parameters={k: v.format(id=chat_id) for k, v in (params or {}).items()} or None,
        raw_query=query, headers=headers, claims={"sub": sub, "name": "Alice"} if sub else None,
        request_id=f"req-{route}-{chat_id}-{len(query)}",
    )  # fmt: skip
    return Response(load_function(function).handler(event, FakeContext()))


def assert_clean(captured: Captured, secrets: list[str]) -> list[dict[str, Any]]:
    from aurora_chats.observability import user_hash

    text = captured.text()
    for secret in [TOKEN, "Bearer", CURSOR_SECRET, SUB, *secrets]:
        assert secret not in text, f"{secret[:30]!r} leaked into the logs"
    lines = captured.lines()
    for line in lines:
        assert line["correlation_id"].startswith("req-"), line
        assert line["function_request_id"] == FakeContext.DEFAULT_REQUEST_ID
        assert line["user"] == user_hash(SUB), line
    return lines


def throttle(ddb: Any, operation: str) -> None:
    def refuse(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}, "ResponseMetadata": {}}
        return AWSResponse("https://dynamodb", 400, HTTPHeaders(), None), error

    ddb.meta.events.register(f"before-call.dynamodb.{operation}", refuse, unique_id=f"throttle-{operation}")


def lose_answers(ddb: Any, operation: str) -> None:
    def lost(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://dynamodb")

    ddb.meta.events.register(f"before-call.dynamodb.{operation}", lost, unique_id=f"lost-{operation}")


def test_a_whole_session_logs_no_token_content_cursor_or_raw_user_id(
    api: Any, ddb: Any, logs: Captured
) -> None:
    created = [call("initialize", key=f"key-{i}") for i in range(3)]
    greeting = created[0].json["message"]["content"]
    page = call("list", query="limit=1")
    cursor = page.json["nextCursor"]
    call("list", query=f"limit=1&cursor={cursor}")
    call("list", query="cursor=garbled")  # 400
    call("initialize", key="key-0")  # replay
    call("delete", chat_id=created[0].json["chatId"])
    call("delete", chat_id=created[0].json["chatId"])  # 404
    call("list", sub=None)  # 401
    assert_clean(logs, [greeting, cursor, "key-0"])


def test_a_503_is_logged_with_request_id_and_hashed_user_only(api: Any, ddb: Any, logs: Captured) -> None:
    greeting = call("initialize").json["message"]["content"]
    throttle(ddb, "Query")
    throttle(ddb, "TransactWriteItems")
    assert call("list").status == 503
    assert call("initialize").status == 503
    lines = assert_clean(logs, [greeting])
    assert [line["level"] for line in lines] == ["WARNING", "WARNING"]
    assert {line["correlation_id"] for line in lines} == {"req-list-0-0", "req-initialize-0-0"}


def test_a_504_is_logged_without_the_message_it_was_writing(api: Any, ddb: Any, logs: Captured) -> None:
    greeting = call("initialize").json["message"]["content"]
    lose_answers(ddb, "TransactWriteItems")
    assert call("initialize", key="order-9").status == 504
    lines = assert_clean(logs, [greeting, "order-9"])
    assert len(lines) == 1


def test_a_500_is_logged_with_the_request_id_but_no_internals_leak_to_the_client(
    api: Any, ddb: Any, logs: Captured
) -> None:
    def invalid(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Error": {"Code": "ValidationException", "Message": "bad key"}, "ResponseMetadata": {}}
        return AWSResponse("https://dynamodb", 400, HTTPHeaders(), None), error

    ddb.meta.events.register("before-call.dynamodb.Query", invalid)
    response = call("list")
    assert response.status == 500
    assert "ValidationException" not in response.raw["body"]
    lines = assert_clean(logs, [])
    assert [line["level"] for line in lines] == ["ERROR"]
    assert "ValidationException" in lines[0]["exception"]  # the operator does get the cause


def test_a_response_that_fails_validation_is_logged_without_its_content(
    api: Any, ddb: Any, logs: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load_function("list_chats")
    secret_content = "Hi Alice, this greeting must never reach a log"
    monkeypatch.setattr(module, "list_chats", lambda *a, **k: {"chatIds": [secret_content], "chats": []})
    response = call("list")
    assert response.status == 500
    lines = assert_clean(logs, [secret_content])
    assert [line["level"] for line in lines] == ["ERROR"]


def test_the_event_is_not_logged_even_when_powertools_is_told_to(
    api: Any, logs: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``POWERTOOLS_LOGGER_LOG_EVENT=true`` (read when the handler is decorated) must not log the event."""
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    for name in ("list_chats", "initialize_chat", "delete_chat"):
        module = fresh_function(name, f"log_event_{name}")
        event = http_api_event(
            "GET", "/chats", route_key="GET /chats", headers={"Authorization": f"Bearer {TOKEN}"},
            claims={"sub": SUB}, request_id="req-log-event",
        )  # fmt: skip
        module.handler(event, FakeContext())
    assert_clean(logs, [])


def test_the_template_never_turns_event_logging_or_debug_on() -> None:
    from aurora_local.template import load_template

    template = load_template()
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    for env in [variables] + [f["Properties"].get("Environment", {}).get("Variables", {}) for f in functions]:
        assert "POWERTOOLS_LOGGER_LOG_EVENT" not in env
        assert "POWERTOOLS_DEBUG" not in env
    assert template["Parameters"]["LogLevel"]["Default"] == "INFO"


# ---------------------------------------------------------------- metrics (EMF on stdout)


def emf_documents(text: str) -> list[dict[str, Any]]:
    documents = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def metric_values(documents: list[dict[str, Any]], name: str) -> list[float]:
    values: list[float] = []
    for document in documents:
        if name in document:
            value = document[name]
            values.extend(value if isinstance(value, list) else [value])
    return values


def test_chats_created_and_deleted_are_counted_once_per_real_change_with_no_user_dimension(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    created = call("initialize", key="m-1")
    call("initialize", key="m-1")  # replay: nothing created
    call("delete", chat_id=created.json["chatId"])
    call("delete", chat_id=created.json["chatId"])  # the repeat: the same 200, nothing deleted
    call("delete", chat_id=99)  # 404: nothing deleted
    documents = emf_documents(capsys.readouterr().out)
    assert metric_values(documents, "ChatsCreated") == [1.0]
    assert metric_values(documents, "ChatsDeleted") == [1.0]
    for document in documents:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "AuroraChatsTest"
            assert all(set(dimensions) <= {"service"} for dimensions in directive["Dimensions"])
    assert SUB not in json.dumps(documents)


def test_account_deletion_logs_the_hashed_user_never_the_raw_id(api: Any, ddb: Any, logs: Captured) -> None:
    from aurora_chats.observability import user_hash

    user = "deleted-user-0d1e"
    call("initialize", sub=user)
    event = json.loads((ROOT / "events" / "cleanup_user_deleted.json").read_text())
    event["detail"]["userId"] = user
    result = load_function("chat_cleanup").handler(event, FakeContext(remaining_ms=60_000))
    assert result["complete"] is True
    text = logs.text()
    assert user not in text
    assert any(line.get("user") == user_hash(user) for line in logs.lines())
