"""Races: the real handlers in parallel processes against moto's HTTP endpoint, asserted on the table.

Why processes and not threads: Powertools' resolver keeps the current event in a *class* attribute
(``BaseRouter.current_event``), shared by every resolver in a process, and the Logger's keys and the Metrics set are
process-global. Two threads calling handlers at once could read each other's caller. Lambda runs one request per
execution environment at a time, so in production concurrency is between processes: that is what is tested here.
Each worker process is a warm "execution environment"; they all start their request at the same instant.

moto handles one request at a time (see ``aurora_local.dynamodb.dynamodb_endpoint``), as DynamoDB makes each request atomic; the races
under test are between requests: read-then-write in the use cases, retries, conditional writes.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from aurora_chats.dal import keys
from aurora_local.events import http_api_event

from tests.support.api import Api
from tests.support.aws import MotoServer, removed_chat_record, table_items
from tests.support.context import FakeContext
from tests.support.env import TABLE
from tests.support.loader import load_function

WORKERS = 6
PRELOAD = [
    "boto3",
    "botocore.client",
    "pydantic",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.metrics",
    "aurora_chats.http",
    "aurora_chats.dal.chats",
    "aurora_chats.usecases",
    "tests.support.api",
]
ROUTE_KEYS = {
    "list_chats": "GET /chats",
    "initialize_chat": "POST /characters/{characterId}/chats",
    "delete_chat": "DELETE /chats/{chatId}",
}

# ---------------------------------------------------------------- worker side (runs in the spawned processes)


def _init_worker(endpoint: str) -> None:
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    from tests.support.aws import reset_caches
    from tests.support.loader import load_function

    reset_caches()
    for name in ROUTE_KEYS:
        load_function(name)


def _warm(_: int) -> int:
    from aurora_chats.dal.client import get_client

    get_client().describe_table(TableName=TABLE)
    time.sleep(0.02)  # hold this worker a moment, so the other workers take the next tasks
    return os.getpid()


class _FrozenClock:
    """``datetime`` for the use cases with ``now()`` fixed: every chat id is minted in the same millisecond."""

    def __init__(self, real: Any, moment: Any) -> None:
        self._real, self._moment = real, moment

    def now(self, tz: Any = None) -> Any:
        return self._moment

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _CollidingRandom:
    """``secrets`` for the id generator: the first draw of the id's random bits is 0 in every process, later draws
    are random."""

    def __init__(self, real: Any) -> None:
        self._real, self._first = real, True

    def randbits(self, bits: int) -> int:
        from aurora_chats.ids import RANDOM_BITS

        if bits == RANDOM_BITS and self._first:
            self._first = False
            return 0
        return int(self._real.randbits(bits))


def _invoke(function: str, event: dict[str, Any], start_at: float, collide_at: Any = None) -> dict[str, Any]:
    from aurora_chats import ids, usecases
    from aurora_chats.dal.client import get_client

    from tests.support.context import FakeContext
    from tests.support.loader import load_function

    real_datetime, real_secrets = vars(usecases)["datetime"], vars(ids)["secrets"]
    if collide_at is not None:
        vars(usecases)["datetime"] = _FrozenClock(real_datetime, collide_at)
        vars(ids)["secrets"] = _CollidingRandom(real_secrets)
    attempts: list[str] = []
    client = get_client()
    client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: attempts.append(model.name), "race"
    )
    try:
        time.sleep(max(0.0, start_at - time.time()))
        # The cleanup gets a whole Lambda timeout (5 min): a user deletion then finishes in one round.
        context = FakeContext(300_000) if function == "chat_cleanup" else FakeContext()
        result: dict[str, Any] = load_function(function).handler(event, context)
        result["attempts"] = list(attempts)
        return result
    finally:
        client.meta.events.unregister("before-call.dynamodb", unique_id="race")
        vars(usecases)["datetime"], vars(ids)["secrets"] = real_datetime, real_secrets


# ---------------------------------------------------------------- test side


@pytest.fixture(scope="module")
def pool(moto_server: MotoServer) -> Iterator[ProcessPoolExecutor]:
    # Not fork: it would copy this process's threads (the moto server) and their locks. A fork server starts clean,
    # imports the heavy modules once, and forks each worker from that.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    with ProcessPoolExecutor(
        WORKERS, mp_context=context, initializer=_init_worker, initargs=(moto_server.endpoint,)
    ) as executor:
        yield executor


@pytest.fixture
def race(pool: ProcessPoolExecutor, server_ddb: Any) -> Any:
    """Run requests at the same instant, one per warm worker process."""
    # Every worker holds a warm client before the start line, so no request pays a cold start.
    # On a loaded machine one early worker can take every warm-up task: warm in rounds until all have answered.
    pids: set[int] = set()
    for _ in range(50):
        pids |= set(pool.map(_warm, range(WORKERS * 3)))
        if len(pids) == WORKERS:
            break
    assert len(pids) == WORKERS, "every worker must be up before the race starts"

    def run(
        requests: list[tuple[str, dict[str, Any]]], collide_at: Any = None, delays: list[float] | None = None
    ) -> list[dict[str, Any]]:
        """``delays``: per request, seconds after the common start (varies the interleaving, asserts nothing)."""
        assert len(requests) <= WORKERS
        start_at = time.time() + 0.3
        offsets = delays or [0.0] * len(requests)
        futures = [
            pool.submit(_invoke, fn, event, start_at + offset, collide_at)
            for (fn, event), offset in zip(requests, offsets, strict=True)
        ]
        return [f.result(timeout=60) for f in futures]

    return run


def event(
    function: str, *, user: str = "alice", chat_id: int = 0, character_id: int = 330905, key: str = ""
) -> dict[str, Any]:
    if function == "initialize_chat":
        path, params = f"/characters/{character_id}/chats", {"characterId": str(character_id)}
    elif function == "delete_chat":
        path, params = f"/chats/{chat_id}", {"chatId": str(chat_id)}
    else:
        path, params = "/chats", None
    method = ROUTE_KEYS[function].split()[0]
    return http_api_event(
        method, path, route_key=ROUTE_KEYS[function], path_parameters=params,
        headers={"Idempotency-Key": key} if key else None, claims={"sub": user},
    )  # fmt: skip


def body(result: dict[str, Any]) -> Any:
    import json

    return json.loads(result["body"])


def live_chats(ddb: Any, user: str = "alice") -> dict[str, set[int]]:
    """Chat records (owned by ``user``) and ``user``'s list entries, as chat ids: the two must always agree."""
    items = table_items(ddb)
    records = {
        int(i["chatId"]["N"]) for i in items if i["SK"]["S"] == keys.CHAT_META_SK and i["userId"]["S"] == user
    }
    entries = {
        int(i["chatId"]["N"])
        for i in items
        if i["PK"]["S"] == keys.user_pk(user) and keys.is_user_chat_entry_sk(i["SK"]["S"])
    }
    messages = {
        int(i["PK"]["S"].removeprefix(keys.CHAT_PREFIX)) for i in items if keys.is_message_sk(i["SK"]["S"])
    }
    return {"records": records, "entries": entries, "messages": messages}


def test_parallel_initializes_in_the_same_millisecond_make_distinct_chats_all_listed(
    race: Any, server_ddb: Any
) -> None:
    from datetime import UTC, datetime

    same_millisecond = datetime(2026, 11, 27, 10, 0, 0, 123_000, tzinfo=UTC)
    results = race([("initialize_chat", event("initialize_chat"))] * WORKERS, collide_at=same_millisecond)
    assert [r["statusCode"] for r in results] == [201] * WORKERS
    ids = [body(r)["chatId"] for r in results]
    assert len(set(ids)) == WORKERS
    # All minted the same first id; one conditional write won, every other one collided and retried.
    assert sum(r["attempts"].count("TransactWriteItems") for r in results) >= 2 * WORKERS - 1
    state = live_chats(server_ddb)
    assert state["records"] == state["entries"] == state["messages"] == set(ids)
    listed = Api().list(query="limit=100").json["chatIds"]
    assert sorted(listed) == sorted(ids)


def test_parallel_initializes_make_distinct_chats_all_listed(race: Any, server_ddb: Any) -> None:
    results = race([("initialize_chat", event("initialize_chat", character_id=1001))] * WORKERS)
    assert [r["statusCode"] for r in results] == [201] * WORKERS
    ids = {body(r)["chatId"] for r in results}
    assert len(ids) == WORKERS
    assert set(Api().list(query="limit=100").json["chatIds"]) == ids
    state = live_chats(server_ddb)
    assert state["records"] == state["entries"] == ids


def test_parallel_replays_of_one_idempotency_key_make_exactly_one_chat(race: Any, server_ddb: Any) -> None:
    results = race([("initialize_chat", event("initialize_chat", key="same-key"))] * WORKERS)
    statuses = sorted(r["statusCode"] for r in results)
    assert statuses == [200] * (WORKERS - 1) + [201]
    assert len({body(r)["chatId"] for r in results}) == 1
    assert len(live_chats(server_ddb)["records"]) == 1


def test_parallel_deletes_of_one_chat_all_answer_200_and_delete_it_once(race: Any, server_ddb: Any) -> None:
    """Retry-safe delete: the same caller's concurrent deletes all answer the first one's 200 (the losers find its
    tombstone); exactly one of them committed (one tombstone)."""
    chat_id = Api().initialize(330905).json["chatId"]
    results = race([("delete_chat", event("delete_chat", chat_id=chat_id))] * WORKERS)
    statuses = sorted(r["statusCode"] for r in results)
    assert statuses == [200] * WORKERS
    assert all(body(r) == {"chatId": chat_id, "deleted": True} for r in results)
    tombstones = [i for i in table_items(server_ddb) if keys.is_deleted_chat_sk(i["SK"]["S"])]
    assert len(tombstones) == 1
    state = live_chats(server_ddb)
    assert state["records"] == state["entries"] == set()
    assert Api().list().json["chatIds"] == []


@pytest.mark.parametrize("round_", range(4))
def test_a_delete_racing_replays_of_the_chats_idempotency_key_leaves_a_consistent_state(
    race: Any, server_ddb: Any, round_: int
) -> None:
    """Delete chat C while replays of the key that created C run. Every replay either saw C before the delete
    (200 C) or found the key's chat gone and started one new chat D (201 D once, 200 D for the others)."""
    api = Api()
    original = api.initialize(330905, key=f"k-{round_}").json["chatId"]
    record = next(
        i
        for i in table_items(server_ddb)
        if (i["PK"]["S"], i["SK"]["S"]) == (keys.chat_pk(original), keys.CHAT_META_SK)
    )
    requests = [("delete_chat", event("delete_chat", chat_id=original))]
    requests += [("initialize_chat", event("initialize_chat", key=f"k-{round_}"))] * (WORKERS - 1)
    # The delete starts a little later each round, so replays land before, during and after it.
    results = race(requests, delays=[0.004 * round_**2] + [0.0] * (WORKERS - 1))
    assert results[0]["statusCode"] == 200
    replays = [(r["statusCode"], body(r)["chatId"]) for r in results[1:]]
    assert {status for status, _ in replays} <= {200, 201}
    created = {chat for status, chat in replays if status == 201}
    assert len(created) <= 1 and sum(1 for status, _ in replays if status == 201) == len(created)
    successor = next(iter(created), None)
    assert {chat for _, chat in replays} <= {original, successor} - {None}
    if successor is None:
        assert all(chat == original for _, chat in replays)
    state = live_chats(server_ddb)
    expected = {successor} if successor is not None else set()
    assert state["records"] == state["entries"] == expected  # C is gone from everywhere but its message
    assert set(api.list().json["chatIds"]) == expected
    # The stream then purges C: its message and C's idempotency record go, unless the record now names D.
    purge = load_function("chat_cleanup").handler(
        {"Records": [removed_chat_record(record)]}, FakeContext(300_000)
    )
    assert purge == {"batchItemFailures": []}
    items = table_items(server_ddb)
    assert not [i for i in items if i["PK"]["S"] == keys.chat_pk(original)]
    key_records = [int(i["chatId"]["N"]) for i in items if i["SK"]["S"] == keys.idempotency_sk(f"k-{round_}")]
    assert key_records == ([successor] if successor is not None else [])
    # Afterwards the key is coherent: it names the surviving chat, or a new one if none survived.
    final = api.initialize(330905, key=f"k-{round_}")
    if successor is not None:
        assert (final.status, final.json["chatId"]) == (200, successor)
    else:
        assert final.status == 201 and final.json["chatId"] != original


# ---------------------------------------------------------------- the per-user chat limit, account deletion


def test_parallel_initializes_at_the_limit_never_leave_more_than_the_limit(
    race: Any, server_ddb: Any
) -> None:
    from aurora_chats.settings import get_settings

    limit = get_settings().max_chats_per_user
    # Two slots left: the user already has limit - 2 chats (counted on the user-state item).
    server_ddb.put_item(
        TableName=TABLE,
        Item={**keys.user_state_key("alice"), "chatCount": {"N": str(limit - 2)}},
    )
    results = race([("initialize_chat", event("initialize_chat"))] * WORKERS)
    statuses = sorted(r["statusCode"] for r in results)
    assert statuses == [201, 201] + [409] * (WORKERS - 2)
    refused = [body(r) for r in results if r["statusCode"] == 409]
    assert {p["type"].rsplit("/", 1)[1] for p in refused} == {"chat-limit-reached"}
    state = live_chats(server_ddb)
    assert len(state["records"]) == len(state["entries"]) == 2
    count = server_ddb.get_item(TableName=TABLE, Key=keys.user_state_key("alice"), ConsistentRead=True)
    assert count["Item"]["chatCount"] == {"N": str(limit)}


@pytest.mark.parametrize("round_", range(3))
def test_initializes_racing_a_user_deletion_either_fail_or_are_deleted_by_it(
    race: Any, server_ddb: Any, round_: int
) -> None:
    """UserDeleted and initializes of the same user at once: each initialize is refused (403) or its chat is found
    and deleted by the deletion; no chat record or list entry of the user survives, only the marker."""
    from tests.support.events import user_deleted

    for _ in range(3):
        assert Api().initialize(330905).status == 201
    requests = [("chat_cleanup", user_deleted("alice"))]
    requests += [("initialize_chat", event("initialize_chat"))] * (WORKERS - 1)
    # The deletion starts a little later each round, so initializes land before, during and after its marker.
    results = race(requests, delays=[0.01 * round_] + [0.0] * (WORKERS - 1))
    assert results[0]["complete"] is True
    assert {r["statusCode"] for r in results[1:]} <= {201, 403}
    state = live_chats(server_ddb)
    assert state["records"] == state["entries"] == set()
    left = [i["SK"]["S"] for i in table_items(server_ddb) if i["PK"]["S"] == keys.user_pk("alice")]
    assert left == [keys.USER_STATE_SK]
    assert Api().initialize(330905).status == 403
