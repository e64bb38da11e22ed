"""Shared fixtures: a moto DynamoDB table built from template.yaml, real-limit guards, handler loading, events."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TABLE = "aurora-chats-test"

os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "TABLE_NAME": TABLE,
        "POWERTOOLS_SERVICE_NAME": "aurora-chats",
        "POWERTOOLS_METRICS_NAMESPACE": "AuroraChatsTest",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "CURSOR_SECRET": "test-cursor-secret",
        "DDB_MAX_ATTEMPTS": "2",
    }
)
os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
os.environ.pop("AWS_ENDPOINT_URL", None)

from aurora_local.events import http_api_event  # noqa: E402
from aurora_local.template import create_table  # noqa: E402

# DynamoDB's real limits, which moto does not enforce.
MAX_BATCH_WRITE = 25
MAX_TRANSACT_ITEMS = 100
MAX_ITEM_BYTES = 400 * 1024


class DynamoDBLimitExceeded(AssertionError):
    pass


def _item_keys(entry: dict[str, Any]) -> tuple[str, str] | None:
    for op in ("Put", "Update", "Delete", "ConditionCheck"):
        if op in entry:
            body = entry[op]
            item = body.get("Item") or body.get("Key") or {}
            return (json.dumps(item.get("PK")), json.dumps(item.get("SK")))
    return None


def enforce_real_limits(params: dict[str, Any], model: Any, **_: Any) -> None:
    """Fail the test when a call would be rejected by real DynamoDB."""
    name = model.name
    if name == "BatchWriteItem":
        count = sum(len(v) for v in params.get("RequestItems", {}).values())
        if count > MAX_BATCH_WRITE:
            raise DynamoDBLimitExceeded(f"BatchWriteItem with {count} items (limit {MAX_BATCH_WRITE})")
    if name == "TransactWriteItems":
        items = params.get("TransactItems", [])
        if len(items) > MAX_TRANSACT_ITEMS:
            raise DynamoDBLimitExceeded(
                f"TransactWriteItems with {len(items)} items (limit {MAX_TRANSACT_ITEMS})"
            )
        keys = [_item_keys(i) for i in items]
        if len(set(keys)) != len(keys):
            raise DynamoDBLimitExceeded("TransactWriteItems touches the same item twice")
        for entry in items:
            item = entry.get("Put", {}).get("Item")
            if item is not None and len(json.dumps(item)) > MAX_ITEM_BYTES:
                raise DynamoDBLimitExceeded("item larger than 400 KB")
    if name == "PutItem" and len(json.dumps(params.get("Item", {}))) > MAX_ITEM_BYTES:
        raise DynamoDBLimitExceeded("item larger than 400 KB")


@dataclass
class CallLog:
    calls: list[str]

    def count(self, name: str) -> int:
        return self.calls.count(name)

    def clear(self) -> None:
        self.calls.clear()


def instrument(client: Any, log: CallLog) -> None:
    client.meta.events.register("before-parameter-build.dynamodb.*", enforce_real_limits)

    def record(model: Any, **_: Any) -> None:
        log.calls.append(model.name)

    client.meta.events.register("before-call.dynamodb.*", record)


def reset_caches() -> None:
    from aurora_chats import settings, usecases
    from aurora_chats.dal import client as dal_client

    settings.reset_settings()
    dal_client.reset_client()
    usecases.clear_character_cache()


@pytest.fixture
def ddb() -> Iterator[Any]:
    """A fresh moto account with the table of template.yaml; the service's own client, instrumented."""
    from moto import mock_aws

    with mock_aws():
        reset_caches()
        from aurora_chats.dal.client import get_client

        client = get_client()
        create_table(client, TABLE)
        yield client
        reset_caches()


@pytest.fixture
def calls(ddb: Any) -> CallLog:
    log = CallLog(calls=[])
    instrument(ddb, log)
    return log


@pytest.fixture
def characters(ddb: Any) -> None:
    from aurora_ops.admin import import_characters

    assert import_characters([str(ROOT / "characters")], TABLE, region="us-east-1") == 0


_loaded: dict[str, ModuleType] = {}


def load_function(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` as its own module (every function's module is called ``app``)."""
    if name not in _loaded:
        path = ROOT / "functions" / name / "app.py"
        spec = importlib.util.spec_from_file_location(f"functions_{name}_app", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        _loaded[name] = module
    return _loaded[name]


class FakeContext:
    function_name = "test-function"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "test-request-id"

    def __init__(self, remaining_ms: int = 10_000) -> None:
        self._remaining = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining


@dataclass
class Api:
    """Calls the three API handlers with real HTTP API v2 events, as API Gateway would."""

    def call(
        self,
        method: str,
        path: str,
        *,
        user: str | None = "alice",
        name: str | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> Response:
        claims: dict[str, Any] | None = None
        if user is not None:
            claims = {"sub": user}
            if name is not None:
                claims["name"] = name
        segments = path.strip("/").split("/")
        if method == "GET" and segments == ["chats"]:
            function, route, params = "list_chats", "GET /chats", {}
        elif (
            method == "POST" and len(segments) == 3 and segments[0] == "characters" and segments[2] == "chats"
        ):
            function, route = "initialize_chat", "POST /characters/{characterId}/chats"
            params = {"characterId": segments[1]}
        elif method == "DELETE" and len(segments) == 2 and segments[0] == "chats":
            function, route, params = "delete_chat", "DELETE /chats/{chatId}", {"chatId": segments[1]}
        else:
            raise AssertionError(f"no route for {method} {path}")
        event = http_api_event(
            method, path, route_key=route, path_parameters=params, raw_query=query, headers=headers,
            claims=claims, body=body,
        )  # fmt: skip
        result = load_function(function).handler(event, FakeContext())
        return Response(result)

    def list(self, user: str | None = "alice", query: str = "") -> Response:
        return self.call("GET", "/chats", user=user, query=query)

    def initialize(
        self, character_id: int | str = 330905, user: str | None = "alice", key: str | None = None, **kw: Any
    ) -> Response:
        headers = {"Idempotency-Key": key} if key is not None else None
        return self.call("POST", f"/characters/{character_id}/chats", user=user, headers=headers, **kw)

    def delete(self, chat_id: int | str, user: str | None = "alice") -> Response:
        return self.call("DELETE", f"/chats/{chat_id}", user=user)


class Response:
    def __init__(self, result: dict[str, Any]) -> None:
        self.raw = result
        self.status: int = result["statusCode"]
        self.headers: dict[str, str] = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        body = result.get("body") or ""
        self.json: Any = json.loads(body) if body else None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.json}>"


@pytest.fixture
def api(ddb: Any, characters: None) -> Api:
    return Api()


def table_items(client: Any, table: str = TABLE) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# ---------------------------------------------------------------- moto as a real HTTP endpoint (faults, races, smoke)


@dataclass
class MotoServer:
    endpoint: str


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's DynamoDB behind a threaded HTTP server on a free port (port 0: no race for a port number), with the
    local runtime's DynamoDB semantics on top (one request at a time, ``ClientRequestToken``): see
    :func:`aurora_local.cli.dynamodb_endpoint`. Races between *requests* stay real."""
    from aurora_local.cli import dynamodb_endpoint
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    server = make_server(
        "127.0.0.1", 0, dynamodb_endpoint(), threaded=True, request_handler=MotoRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    thread.start()
    try:
        yield MotoServer(endpoint=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def server_ddb(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh table (from template.yaml) with the demo characters on the moto server; the service's own client."""
    import urllib.request

    urllib.request.urlopen(
        urllib.request.Request(f"{moto_server.endpoint}/moto-api/reset", method="POST"), timeout=10
    ).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_server.endpoint)
    reset_caches()
    from aurora_chats.dal.client import get_client
    from aurora_ops.admin import import_characters

    client = get_client()
    create_table(client, TABLE)
    assert import_characters([str(ROOT / "characters")], TABLE, endpoint_url=moto_server.endpoint) == 0
    yield client
    reset_caches()


# ---------------------------------------------------------------- X-Ray: a stand-in daemon (UDP) and its reader


@pytest.fixture
def xray_daemon() -> Iterator[socket.socket]:
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(0.5)
    try:
        yield daemon
    finally:
        daemon.close()


def xray_documents(daemon: socket.socket) -> list[dict[str, Any]]:
    """Every (sub)segment document the X-Ray SDK sent to ``daemon``, nested subsegments flattened."""
    documents: list[dict[str, Any]] = []
    while True:
        try:
            packet, _ = daemon.recvfrom(65_535)
        except TimeoutError:
            break
        header, _, body = packet.decode().partition("\n")
        assert json.loads(header)["format"] == "json"
        documents.append(json.loads(body))
    flat: list[dict[str, Any]] = []
    while documents:
        document = documents.pop()
        flat.append(document)
        documents.extend(document.get("subsegments", []))
    return flat
