"""``make load``: a loopback load test of the real local runtime (``make run``'s entry point), bounded.

Starts ``python -m aurora_local run`` on free ports (``PORT``/``DYNAMODB_PORT``; 127.0.0.1 only), then runs
``--clients`` concurrent clients, each its own user with a keep-alive session, doing a mix of list / initialize /
delete (delete only of one of its own live chats) until ``--requests`` in all or ``--seconds`` have passed.
Prints requests/s, p50/p90/p99 latency per operation, statuses and errors, then checks that nothing was lost:

* zero 5xx;
* every chat a client created and did not delete is in its list (every page, following ``nextCursor``), and
  no deleted chat is;
* every deleted chat's partition (``CHAT#<id>``: messages) is empty within ``--purge-wait`` seconds - the stream
  feeds the cleanup function, checked on the embedded DynamoDB endpoint - and every live chat still has its
  first message.

Exit status 1 when any check fails. Not part of ``make test``; no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
import uuid
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from aurora_chats.dal import keys

from tests.support.local_runtime import LOCAL_TABLE, Runtime, start_runtime, token

ROOT = Path(__file__).resolve().parents[1]
CHARACTERS = (330905, 1001, 1002, 1003, 1004)  # characters/
MIX = {"list": 0.6, "initialize": 0.25, "delete": 0.15}
RETRIES = 3
STARTUP_SECONDS = 90.0


@dataclass
class Client:
    user: str
    created: set[int] = field(default_factory=set)
    deleted: set[int] = field(default_factory=set)


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    issued: int = 0
    retries: int = 0

    def take(self, limit: int) -> bool:
        with self.lock:
            if self.issued >= limit:
                return False
            self.issued += 1
            return True

    def record(self, op: str, seconds: float, status: int, detail: str = "", *, retry: bool = False) -> None:
        with self.lock:
            self.latencies[op].append(seconds)
            self.statuses[op][status] += 1
            self.retries += retry
            if status >= 500 or status == 0:
                self.errors.append(f"{op} {status} {detail[:200]}")


def run_client(base: str, client: Client, results: Results, limit: int, deadline: float, seed: int) -> None:
    rng = random.Random(seed)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token(client.user, client.user.title())}"
    ops, weights = list(MIX), list(MIX.values())
    while time.monotonic() < deadline and results.take(limit):
        op = rng.choices(ops, weights)[0]
        live = sorted(client.created - client.deleted)
        if op == "delete" and not live:
            op = "initialize"
        character, idem = rng.choice(CHARACTERS), str(uuid.UUID(int=rng.getrandbits(128)))
        chat_id = rng.choice(live) if op == "delete" else 0
        # A 503/504 is counted, then retried as the SDK does (same Idempotency-Key; a delete again), so that the
        # nothing-lost checks know every write's outcome.
        for attempt in range(RETRIES + 1):
            started = time.perf_counter()
            try:
                if op == "list":
                    response = session.get(f"{base}/chats", params={"limit": 20}, timeout=30)
                elif op == "initialize":
                    response = session.post(
                        f"{base}/characters/{character}/chats", headers={"Idempotency-Key": idem}, timeout=30
                    )
                else:
                    response = session.delete(f"{base}/chats/{chat_id}", timeout=30)
            except requests.RequestException as exc:
                results.record(op, time.perf_counter() - started, 0, repr(exc), retry=attempt > 0)
                continue
            results.record(
                op, time.perf_counter() - started, response.status_code, response.text, retry=attempt > 0
            )
            if response.status_code < 500:
                break
            time.sleep(float(response.headers.get("Retry-After", "1")))
        else:
            continue
        if op == "initialize" and response.status_code in (200, 201):
            client.created.add(int(response.json()["chatId"]))
        elif op == "delete" and (response.status_code == 200 or (attempt and response.status_code == 404)):
            client.deleted.add(chat_id)


def listed(base: str, user: str) -> set[int]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token(user, user.title())}"
    chats: set[int] = set()
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        response = session.get(f"{base}/chats", params=params, timeout=30)
        response.raise_for_status()
        body = response.json()
        chats.update(int(c) for c in body["chatIds"])
        cursor = body.get("nextCursor")
        if not cursor:
            return chats


def partition_size(dynamodb: Any, chat_id: int) -> int:
    page = dynamodb.query(
        TableName=LOCAL_TABLE,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.chat_pk(chat_id)}},
        ProjectionExpression="PK, SK",
        ConsistentRead=True,
    )
    return int(page["Count"])


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Loopback load test of the local runtime.")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=1500, help="requests in all (upper bound)")
    parser.add_argument("--seconds", type=float, default=60.0, help="load phase upper bound")
    parser.add_argument("--purge-wait", type=float, default=90.0, help="seconds to wait for purges")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)

    # make run's documented dev secret is short on purpose (it signs local test tokens only).
    warnings.filterwarnings("ignore", message="The HMAC key is", module="jwt")
    try:
        runtime: Runtime = start_runtime(startup_seconds=STARTUP_SECONDS)
    except pytest.fail.Exception as exc:  # the tests' helper reports a failed start the pytest way
        raise SystemExit(str(exc)) from None
    base = runtime.url
    failures: list[str] = []
    try:
        clients = [Client(f"load-user-{i}") for i in range(args.clients)]
        results = Results()
        started = time.monotonic()
        deadline = started + args.seconds
        threads = [
            threading.Thread(
                target=run_client,
                args=(base, c, results, args.requests, deadline, args.seed + i),
                daemon=True,
            )
            for i, c in enumerate(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        total = sum(len(v) for v in results.latencies.values())
        print(
            f"make load: {args.clients} clients, {total} requests in {elapsed:.1f} s = {total / elapsed:.1f} requests/s "
            f"(bounds: {args.requests} requests, {args.seconds:g} s; 127.0.0.1, one execution environment per function)"
        )
        for op in MIX:
            values = sorted(results.latencies.get(op, []))
            if not values:
                continue
            statuses = ", ".join(f"{s}: {n}" for s, n in sorted(results.statuses[op].items()))
            print(
                f"  {op:10s} n={len(values):5d}  p50 {percentile(values, 50) * 1000:6.1f} ms  "
                f"p90 {percentile(values, 90) * 1000:6.1f} ms  p99 {percentile(values, 99) * 1000:6.1f} ms  "
                f"statuses {{{statuses}}}"
            )
        server_errors = sum(
            n for op in results.statuses.values() for s, n in op.items() if s >= 500 or s == 0
        )
        print(
            f"  5xx / transport errors: {server_errors} (retried as the SDK does: {results.retries} retries)"
        )
        for error in results.errors[:10]:
            print(f"    {error}")
        if server_errors:
            failures.append(f"{server_errors} 5xx or transport errors")

        # nothing lost: lists
        created = sum(len(c.created) for c in clients)
        deleted = sum(len(c.deleted) for c in clients)
        missing = extra = 0
        for client in clients:
            seen = listed(base, client.user)
            missing += len((client.created - client.deleted) - seen)
            extra += len(seen & client.deleted) + len(seen - client.created)
        print(
            f"  lists: {created} created, {deleted} deleted; missing from lists {missing}, listed though deleted {extra}"
        )
        if missing or extra:
            failures.append(f"lists: {missing} missing, {extra} listed though deleted or unknown")

        # nothing lost: purges through the stream -> cleanup, and live chats keep their messages
        dynamodb = runtime.dynamodb()
        pending = {chat for c in clients for chat in c.deleted}
        purge_started = time.monotonic()
        while pending and time.monotonic() - purge_started < args.purge_wait:
            pending = {chat for chat in pending if partition_size(dynamodb, chat) > 0}
            if pending:
                time.sleep(1.0)
        purge_seconds = time.monotonic() - purge_started
        live = [chat for c in clients for chat in c.created - c.deleted]
        empty_live = sum(1 for chat in live if partition_size(dynamodb, chat) < 2)  # META + first message
        print(
            f"  purges: {deleted - len(pending)}/{deleted} deleted chats' partitions empty after {purge_seconds:.1f} s "
            f"(bound {args.purge_wait:g} s); live chats without their record or first message: {empty_live}/{len(live)}"
        )
        if pending:
            failures.append(f"{len(pending)} deleted chats not purged within {args.purge_wait:g} s")
        if empty_live:
            failures.append(f"{empty_live} live chats lost items")
    finally:
        runtime.stop()
    print("  result: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
