"""moto and DynamoDB helpers: real-limit guards (moto enforces none), a call log, cache resets, a table scan, moto
behind a real HTTP server, and the stream record Lambda delivers for a removed chat record."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders

from tests.support.env import TABLE

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
    """Forget everything the service caches per container (settings, clients, characters, repository)."""
    from aurora_chats import settings, usecases
    from aurora_chats.dal import chats, client

    settings.reset_settings()
    client.reset_client()
    client.reset_scheduler_client()
    chats.use_chat_repository(None)
    usecases.clear_character_cache()


def all_items(operation: Callable[..., Any], **params: Any) -> list[dict[str, Any]]:
    """Every item of a paginated ``scan`` or ``query`` (``operation``, a client's method), all pages."""
    items: list[dict[str, Any]] = []
    while True:
        page = operation(**params)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def table_items(client: Any, table: str = TABLE) -> list[dict[str, Any]]:
    return all_items(client.scan, TableName=table)


def user_state(client: Any, user: str, table: str = TABLE) -> dict[str, Any] | None:
    """The user's state item (chat count, deletion marker), strongly consistent; None when there is none."""
    from aurora_chats.dal.keys import user_state_key

    item: dict[str, Any] | None = client.get_item(
        TableName=table, Key=user_state_key(user), ConsistentRead=True
    ).get("Item")
    return item


def chat_count(client: Any, user: str, table: str = TABLE) -> int | None:
    """The user's chat count on the user-state item (None: no state item, or no count on it)."""
    item = user_state(client, user, table)
    return int(item["chatCount"]["N"]) if item and "chatCount" in item else None


@dataclass
class MotoServer:
    endpoint: str


@contextmanager
def moto_http_server() -> Iterator[MotoServer]:
    """moto's DynamoDB behind a threaded HTTP server on a free port (port 0: no race for a port number), with the
    local runtime's DynamoDB semantics on top (one request at a time, ``ClientRequestToken``): see
    :func:`aurora_local.dynamodb.dynamodb_endpoint`. Races between *requests* stay real."""
    from aurora_local.dynamodb import serve_dynamodb_endpoint

    server = serve_dynamodb_endpoint("127.0.0.1", 0)
    try:
        yield MotoServer(endpoint=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()  # returns once serve_forever has
        server.server_close()


def removed_chat_record(record: dict[str, Any], table: str = TABLE) -> dict[str, Any]:
    """The stream record Lambda delivers when a chat record is deleted (NEW_AND_OLD_IMAGES)."""
    return {
        "eventID": "1",
        "eventName": "REMOVE",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"PK": record["PK"], "SK": record["SK"]},
            "OldImage": record,
            "SequenceNumber": "1",
            "SizeBytes": 1,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-11-27T00:00:00.000",
    }


def fake_response(status: int, parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0})
    return AWSResponse("https://dynamodb.us-east-1.amazonaws.com/", status, HTTPHeaders(), None), parsed


@contextmanager
def inject(ddb: Any, operation: str, answer: Callable[[dict[str, Any]], Any]) -> Iterator[None]:
    """Let ``answer(request parameters)`` replace DynamoDB's response to ``operation`` while it returns something.

    A ``before-call`` hook on the real client: everything before it (parameter validation, the limit guards)
    runs as usual, and the code under test gets the answer exactly as from DynamoDB."""

    def hook(params: dict[str, Any], **_: Any) -> Any:
        return answer(json.loads(params["body"]))

    event = f"before-call.dynamodb.{operation}"
    ddb.meta.events.register(event, hook)
    try:
        yield
    finally:
        ddb.meta.events.unregister(event, hook)
