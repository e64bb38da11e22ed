"""Section 4: DynamoDB calls and capacity units per operation (the real handlers against moto)."""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable
from typing import Any

from aurora_local.loader import load_module

from bench.common import DELETE_CHAT_ID, FUNCTIONS, REGION, ROOT
from bench.table import create_table, seed_chat, side_client
from tests.support.context import FakeContext


def value_size(value: dict[str, Any]) -> int:
    """Bytes DynamoDB bills for one attribute value (the documented item-size rules)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        digits = data.lstrip("-").replace(".", "").strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in data)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(element) for name, element in data.items())
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: element}) for element in data)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def item_key(item: dict[str, Any]) -> tuple[str, str]:
    return (item["PK"]["S"], item["SK"]["S"])


class Meter:
    """Counts the service client's calls and estimates their capacity units from item sizes.

    moto answers ``ReturnConsumedCapacity`` with constants (1.0, 0.5 for GetItem) and not at all for transactions,
    so the billed units are computed from DynamoDB's documented rules: reads 4 KB units (0.5 when eventually
    consistent, a Query sums the items it reads before its filter), writes 1 KB units per item (the larger of old
    and new image), transactional writes twice that. The bench asks for ``ReturnConsumedCapacity=TOTAL`` anyway and
    records what came back.
    """

    CAPACITY_OPS = frozenset(
        {
            "GetItem",
            "Query",
            "Scan",
            "PutItem",
            "DeleteItem",
            "UpdateItem",
            "BatchWriteItem",
            "TransactWriteItems",
        }
    )

    def __init__(self, client: Any, side: Any, table: str) -> None:
        self.side = side
        self.table = table
        self.calls: list[dict[str, Any]] = []
        self.snapshot: dict[tuple[str, str], dict[str, Any]] = {}
        client.meta.events.register("before-parameter-build.dynamodb.*", self._before)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def take_snapshot(self, partitions: list[str] | None = None) -> None:
        """Every item of the table (or of the given partitions), to size what writes replace or delete."""
        self.snapshot = {}
        pages: list[dict[str, Any]] = []
        if partitions is None:
            pages = list(self.side.get_paginator("scan").paginate(TableName=self.table))
        else:
            for pk in partitions:
                pages += self.side.get_paginator("query").paginate(
                    TableName=self.table,
                    KeyConditionExpression="PK = :pk",
                    ExpressionAttributeValues={":pk": {"S": pk}},
                )
        for page in pages:
            for item in page.get("Items", []):
                self.snapshot[item_key(item)] = item

    def clear(self) -> None:
        self.calls = []

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for call in self.calls:
            counted[call["op"]] = counted.get(call["op"], 0) + 1
        return counted

    def units(self) -> tuple[float, float]:
        reads = sum(c["rcu"] for c in self.calls)
        writes = sum(c["wcu"] for c in self.calls)
        return reads, writes

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        op = model.name
        if op in self.CAPACITY_OPS:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
        rcu, wcu = 0.0, 0.0
        if op == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                ((kind, body),) = entry.items()
                if kind == "ConditionCheck":
                    rcu += 2 * math.ceil(max(item_size(self.snapshot.get(item_key(body["Key"]))), 1) / 4096)
                    continue
                new = body.get("Item")
                old = self.snapshot.get(item_key(new or body["Key"]))
                wcu += 2 * math.ceil(max(item_size(new), item_size(old), 1) / 1024)
        elif op == "BatchWriteItem":
            for requests in params.get("RequestItems", {}).values():
                for request in requests:
                    if "PutRequest" in request:
                        new = request["PutRequest"]["Item"]
                        old = self.snapshot.get(item_key(new))
                    else:
                        new, old = None, self.snapshot.get(item_key(request["DeleteRequest"]["Key"]))
                    wcu += math.ceil(max(item_size(new), item_size(old), 1) / 1024)
        elif op in ("PutItem", "DeleteItem", "UpdateItem"):
            new = params.get("Item")
            old = self.snapshot.get(item_key(new or params["Key"]))
            wcu += math.ceil(max(item_size(new), item_size(old), 1) / 1024)
        elif op == "GetItem":
            item = self.snapshot.get(item_key(params["Key"]))
            rcu += math.ceil(max(item_size(item), 1) / 4096) * (1.0 if params.get("ConsistentRead") else 0.5)
        elif op == "Query":
            rcu += self._query_units(params)
        self.calls.append({"op": op, "rcu": rcu, "wcu": wcu, "moto": None})

    def _query_units(self, params: dict[str, Any]) -> float:
        """A Query is billed for every item it reads (before its filter): rerun it unfiltered on the side client."""
        condition = params["KeyConditionExpression"]
        values = {k: v for k, v in params.get("ExpressionAttributeValues", {}).items() if k in condition}
        side_params: dict[str, Any] = {
            "TableName": params["TableName"],
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": params.get("ScanIndexForward", True),
        }
        for name in ("Limit", "ExclusiveStartKey", "IndexName"):
            if name in params:
                side_params[name] = params[name]
        # Only the names the key condition uses: the filter's (e.g. #until) go with the filter.
        names = {k: v for k, v in params.get("ExpressionAttributeNames", {}).items() if k in condition}
        if names:
            side_params["ExpressionAttributeNames"] = names
        items = self.side.query(**side_params).get("Items", [])
        total = sum(item_size(item) for item in items)
        return math.ceil(max(total, 1) / 4096) * (1.0 if params.get("ConsistentRead") else 0.5)

    def _after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if self.calls and self.calls[-1]["op"] == model.name:
            self.calls[-1]["moto"] = parsed.get("ConsumedCapacity")


def load_function(name: str) -> Any:
    """A fresh import of ``functions/<name>/app.py`` (each section starts its own execution environment)."""
    return load_module(ROOT / "functions" / name / "app.py", f"bench_{name}_app")


def in_process_context(remaining_ms: int = 10_000) -> FakeContext:
    return FakeContext(remaining_ms, function_name="bench-function", request_id="bench-request-id")


def use_service_env(endpoint: str, table: str) -> None:
    """Point the service code in this process at moto (the tracer stays off outside Lambda)."""
    os.environ.update(
        {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
            "TABLE_NAME": table,
            "CURSOR_SECRET": "bench-cursor-secret",
            "POWERTOOLS_SERVICE_NAME": "aurora-chats",
            "POWERTOOLS_METRICS_NAMESPACE": "AuroraChats",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            # moto deep-copies a table on every TransactWriteItems (seconds for 10,000 items): a generous read
            # timeout, so botocore never retries a slow write while moto is still copying (moto races itself).
            "DDB_READ_TIMEOUT": "300",
        }
    )
    from aurora_chats import settings, usecases
    from aurora_chats.dal import client as dal_client

    settings.reset_settings()
    dal_client.reset_client()
    usecases.clear_character_cache()


def dynamodb_cost(endpoint: str) -> dict[str, Any]:
    table = "aurora-bench-cost"
    create_table(endpoint, table)
    use_service_env(endpoint, table)
    from aurora_chats import usecases
    from aurora_chats.dal.client import get_client

    for index in range(25):
        seed_chat(endpoint, table, 375_000_000_000_000 + index)
    meter = Meter(get_client(), side_client(endpoint), table)
    handlers = {name: load_function(name).handler for name in FUNCTIONS}

    def event(name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
        return loaded

    def nothing() -> None:
        return None

    def seed_deleted_chat() -> None:
        seed_chat(endpoint, table, DELETE_CHAT_ID)

    operations: list[tuple[str, Callable[[], None], str, str, int]] = [
        ("list (GET /chats, page of 20)", nothing, "list_chats", "list_chats.json", 200),
        (
            "initialize, character not cached",
            usecases.clear_character_cache,
            "initialize_chat",
            "initialize_chat.json",
            201,
        ),
        ("initialize, character cached", nothing, "initialize_chat", "initialize_chat.json", 201),
        (
            "initialize with Idempotency-Key",
            nothing,
            "initialize_chat",
            "initialize_chat_idempotent.json",
            201,
        ),
        ("initialize, idempotent replay", nothing, "initialize_chat", "initialize_chat_idempotent.json", 200),
        ("delete", seed_deleted_chat, "delete_chat", "delete_chat.json", 200),
    ]
    figures: dict[str, Any] = {}
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for label, prepare, function, event_file, status in operations:
            prepare()
            meter.take_snapshot()
            meter.clear()
            result = handlers[function](event(event_file), in_process_context())
            if result["statusCode"] != status:
                raise SystemExit(
                    f"{label}: status {result['statusCode']}, expected {status}: {result['body']}"
                )
            reads, writes = meter.units()
            figures[label] = {
                "calls": meter.counts(),
                "rcu": reads,
                "wcu": writes,
                "moto_consumed_capacity": [c["moto"] for c in meter.calls],
            }
    return figures
