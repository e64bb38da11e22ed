"""Section 5: purge cost and DELETE latency for chats of 100 to 10,000 messages."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

from aurora_chats.dal import keys

from bench.common import DELETE_CHAT_ID, ROOT, USER, log, median
from bench.dynamodb_cost import Meter, in_process_context, load_function, use_service_env
from bench.table import create_table, restore_chat_record, seed_chat, side_client


def purge_cost(endpoint: str, sizes: list[int], delete_samples: int) -> dict[str, Any]:
    """DELETE /chats/{id} of a chat with N messages, then the cleanup function's purge of what it left."""
    from aurora_chats.dal.client import get_client

    delete_handler = load_function("delete_chat").handler
    cleanup_handler = load_function("chat_cleanup").handler
    template = json.loads((ROOT / "events" / "cleanup_stream_delete.json").read_text())
    delete_event = json.loads((ROOT / "events" / "delete_chat.json").read_text())
    side = side_client(endpoint)
    figures: dict[str, Any] = {}
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for size in sizes:
            table = f"aurora-bench-purge-{size}"  # one table per size: moto's costs grow with the table
            create_table(endpoint, table)
            use_service_env(endpoint, table)
            meter = Meter(get_client(), side, table)
            chat_id = DELETE_CHAT_ID + size
            log(f"  purge: seeding a chat with {size} messages ...")
            seed_chat(endpoint, table, chat_id, messages=size)
            pk = keys.chat_pk(chat_id)
            event = json.loads(json.dumps(delete_event).replace(str(DELETE_CHAT_ID), str(chat_id)))
            control_id = chat_id + 1  # a 1-message chat in the same table: the control for moto's own costs
            control_event = json.loads(json.dumps(delete_event).replace(str(DELETE_CHAT_ID), str(control_id)))
            seed_chat(endpoint, table, control_id, messages=1)
            latencies: list[float] = []
            control: list[float] = []
            delete_calls: dict[str, int] = {}
            old_image: dict[str, Any] = {}
            control_image: dict[str, Any] = {}
            for sample in range(delete_samples):
                if sample:  # the messages are still there: only the record and the list entry come back
                    restore_chat_record(side, table, old_image)
                    restore_chat_record(side, table, control_image)
                old_image = side.get_item(TableName=table, Key=keys.chat_record_key(chat_id))["Item"]
                control_image = side.get_item(TableName=table, Key=keys.chat_record_key(control_id))["Item"]
                meter.take_snapshot([pk])
                meter.clear()
                millis, result = timed_without_gc(delete_handler, event)
                latencies.append(millis)
                if result["statusCode"] != 200:
                    raise SystemExit(
                        f"DELETE of a {size}-message chat: {result['statusCode']} {result['body']}"
                    )
                delete_calls = meter.counts()
                millis, result = timed_without_gc(delete_handler, control_event)
                control.append(millis)
                if result["statusCode"] != 200:
                    raise SystemExit(f"DELETE of the control chat: {result['statusCode']} {result['body']}")
            record = json.loads(json.dumps(template["Records"][0]))
            record["dynamodb"]["Keys"] = keys.chat_record_key(chat_id)
            record["dynamodb"]["OldImage"] = old_image
            meter.take_snapshot([pk, keys.user_pk(USER)])
            meter.clear()
            started = time.perf_counter()
            # 300 s: the cleanup function's 5-minute timeout, never reached here
            outcome = cleanup_handler({"Records": [record]}, in_process_context(300_000))
            wall = time.perf_counter() - started
            if outcome.get("batchItemFailures"):
                raise SystemExit(f"purge of {size} messages reported failures: {outcome}")
            left = side.query(
                TableName=table,
                KeyConditionExpression="PK = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
                Select="COUNT",
            )["Count"]
            reads, writes = meter.units()
            figures[str(size)] = {
                "messages": size,
                "delete_calls": delete_calls,
                "delete_ms": median(latencies),
                "delete_ms_all": [round(x, 1) for x in latencies],
                "control_delete_ms": median(control),
                "purge_calls": meter.counts(),
                "purge_seconds": wall,
                "purge_rcu": reads,
                "purge_wcu": writes,
                "items_left": left,
            }
    return figures


def timed_without_gc(
    handler: Callable[..., dict[str, Any]], event: dict[str, Any]
) -> tuple[float, dict[str, Any]]:
    """One in-process call, in ms, with the collector paused: moto (in this process) allocates heavily per
    transaction, and a collection landing on one side of a comparison would decide it."""
    import gc

    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        result = handler(event, in_process_context())
        return (time.perf_counter() - started) * 1000, result
    finally:
        gc.enable()


def purge_rows(figures: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    for size_text, figure in figures.items():
        size = figure["messages"]
        calls = figure["purge_calls"]
        batches, queries = calls.get("BatchWriteItem", 0), calls.get("Query", 0)
        batch_budget, query_budget = math.ceil(size / 25) + 2, math.ceil(size / 100) + 2
        others = {op: n for op, n in calls.items() if op not in ("BatchWriteItem", "Query")}
        extra = "".join(f", {n} {op}" for op, n in others.items())
        ok = batches <= batch_budget and queries <= query_budget and figure["items_left"] == 0
        verdict = "met" if ok else f"MISSED ({figure['items_left']} items left)"
        rows.append([
            f"purge {size_text} messages",
            f"{batches} BatchWriteItem, {queries} Query{extra}; {figure['purge_wcu']:g} WCU, "
            f"{figure['purge_rcu']:g} RCU; {figure['purge_seconds']:.2f} s",
            f"<= {batch_budget} BWI, <= {query_budget} Query",
            verdict,
        ])  # fmt: skip
        ratio = figure["delete_ms"] / figure["control_delete_ms"]
        total = sum(figure["delete_calls"].values())
        rows.append([
            f"DELETE latency, {size_text} messages",
            f"{figure['delete_ms']:.1f} ms = {ratio:.2f}x a 1-message chat in the same table; {total} call",
            "1 call, flat in N (<= 1.5x the control)",
            "met" if ratio <= 1.5 and total == 1 else "MISSED",
        ])  # fmt: skip
    return rows
