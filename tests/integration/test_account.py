"""Account deletion is final and the per-user chat limit, on moto with the table of template.yaml.

The handlers run as API Gateway and EventBridge invoke them; the table is asserted item by item. Interleavings of
an initialize with a user deletion are forced with botocore hooks on the cleanup's own calls (the parallel races
are in ``test_races.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aurora_chats.cleanup import MAX_THROTTLED_ROUNDS, UserDeletionStalled
from aurora_chats.dal.client import reset_scheduler_client
from aurora_chats.dal.keys import USER_STATE_SK, user_pk
from aurora_chats.settings import reset_settings

from tests.support.api import Api, Response
from tests.support.aws import CallLog, chat_count, fake_response, inject, table_items, user_state
from tests.support.context import FakeContext
from tests.support.events import user_deleted
from tests.support.loader import load_function

PROBLEMS = "https://docs.aurora-interactive.dev/problems/"
SCHEDULE_GROUP = "aurora-chats-test-continuations"
THROTTLING = {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}

Item = dict[str, Any]


@pytest.fixture(autouse=True)
def _real_dynamodb_limits(calls: CallLog) -> None:
    """Every call is checked against DynamoDB's real limits (tests/support/aws.py)."""


@pytest.fixture
def limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("MAX_CHATS_PER_USER", "3")
    reset_settings()
    yield 3
    reset_settings()


def cleanup(event: Item, remaining_ms: int = 300_000) -> Any:
    return load_function("chat_cleanup").handler(event, FakeContext(remaining_ms=remaining_ms))


def snapshot(ddb: Any) -> list[str]:
    return sorted(json.dumps(i, sort_keys=True) for i in table_items(ddb))


def user_items(ddb: Any, user: str) -> list[Item]:
    return [
        i for i in table_items(ddb) if i["PK"]["S"] == user_pk(user) or i.get("userId", {}).get("S") == user
    ]


def assert_problem(response: Response, status: int, slug: str) -> None:
    assert response.status == status, response
    assert response.content_type.startswith("application/problem+json")
    assert response.json["type"] == PROBLEMS + slug and response.json["status"] == status
    assert response.json["title"] and response.json["detail"]


# ---------------------------------------------------------------- account deletion is final


def test_after_user_deleted_a_valid_token_can_store_nothing_403_and_nothing_is_written(
    api: Api, ddb: Any
) -> None:
    kept = api.initialize(330905, key="k-1").json["chatId"]
    bobs = api.initialize(330905, user="bob").json["chatId"]
    assert cleanup(user_deleted("alice"))["complete"] is True
    # Only the marker is left of alice (her chat records went; their messages follow through the stream).
    (marker,) = user_items(ddb, "alice")
    assert marker["SK"]["S"] == USER_STATE_SK
    assert int(marker["expiresAt"]["N"]) - int(marker["deletedAt"]["N"]) >= 86_400
    before = snapshot(ddb)

    # Her token is still valid for up to the window: every write is a 403 of its own type, and writes nothing.
    assert_problem(api.initialize(330905), 403, "account-deleted")
    assert_problem(api.initialize(330905, key="k-1"), 403, "account-deleted")  # not an idempotent replay
    assert_problem(api.initialize(1001, key="k-new"), 403, "account-deleted")
    assert_problem(api.delete(kept), 403, "account-deleted")
    assert snapshot(ddb) == before
    # Reads answer what exists: nothing (200, empty), at no extra cost.
    listing = api.list()
    assert listing.status == 200 and listing.json["chatIds"] == []
    # Nobody else is affected.
    assert api.list(user="bob").json["chatIds"] == [bobs]
    assert api.initialize(330905, user="bob").status == 201


def test_a_bad_request_of_a_deleted_account_is_still_a_400_and_touches_nothing(api: Api, ddb: Any) -> None:
    api.initialize(330905)
    cleanup(user_deleted("alice"))
    before = snapshot(ddb)
    response = api.initialize("0")
    assert response.status == 400 and response.content_type.startswith("application/problem+json")
    assert api.delete("abc").status == 400
    assert snapshot(ddb) == before


def test_continuation_rounds_keep_the_marker_and_extend_its_window(api: Api, ddb: Any) -> None:
    for _ in range(3):
        api.initialize(330905)
    assert cleanup(user_deleted("alice"))["complete"] is True
    first = user_state(ddb, "alice")
    assert first is not None
    replay = user_deleted("alice")
    replay["source"], replay["detail-type"] = "aurora.chats", "UserDeletionContinued"
    replay["detail"]["continuation"] = 2
    assert cleanup(replay)["complete"] is True
    again = user_state(ddb, "alice")
    assert again is not None and again["deletedAt"] == first["deletedAt"]  # the deletion time is kept
    assert int(again["expiresAt"]["N"]) >= int(first["expiresAt"]["N"])
    assert_problem(api.initialize(330905), 403, "account-deleted")


def test_an_initialize_that_commits_before_the_marker_is_deleted_by_the_deletion(api: Api, ddb: Any) -> None:
    """The race's first half: the chat is committed just before UserDeleted writes its marker."""
    raced: list[Response] = []

    def initialize_first(**_: Any) -> None:
        if not raced:
            raced.append(api.initialize(330905, key="racer"))

    ddb.meta.events.register("before-call.dynamodb.UpdateItem", initialize_first, "race")
    try:
        assert cleanup(user_deleted("alice"))["complete"] is True
    finally:
        ddb.meta.events.unregister("before-call.dynamodb.UpdateItem", unique_id="race")
    assert raced[0].status == 201
    # The deletion's strongly consistent queries ran after the marker, so they found that chat: nothing survives.
    assert [i["SK"]["S"] for i in user_items(ddb, "alice")] == [USER_STATE_SK]
    assert not [
        i for i in table_items(ddb) if i["SK"]["S"] == "META" and i.get("userId", {}).get("S") == "alice"
    ]


def test_an_initialize_that_comes_after_the_marker_is_refused(api: Api, ddb: Any) -> None:
    """The race's second half: the marker is written, the deletion has not finished."""
    raced: list[Response] = []

    def initialize_after(**_: Any) -> None:
        if not raced:
            raced.append(api.initialize(330905))

    api.initialize(330905)
    ddb.meta.events.register("after-call.dynamodb.UpdateItem", initialize_after, "race")
    try:
        assert cleanup(user_deleted("alice"))["complete"] is True
    finally:
        ddb.meta.events.unregister("after-call.dynamodb.UpdateItem", unique_id="race")
    assert_problem(raced[0], 403, "account-deleted")
    assert [i["SK"]["S"] for i in user_items(ddb, "alice")] == [USER_STATE_SK]


# ---------------------------------------------------------------- the per-user chat limit


def test_an_initialize_past_the_limit_is_a_409_of_its_own_type_and_writes_nothing(
    api: Api, ddb: Any, limit: int, calls: CallLog
) -> None:
    made = [api.initialize(330905).json["chatId"] for _ in range(limit)]
    assert chat_count(ddb, "alice") == limit
    before = snapshot(ddb)
    calls.clear()
    refused = api.initialize(330905, key="over")
    assert_problem(refused, 409, "chat-limit-reached")
    assert str(limit) in refused.json["detail"]
    assert calls.calls == ["TransactWriteItems"]  # refused by the transaction itself: no extra read
    assert snapshot(ddb) == before
    # The idempotency conflict keeps its own type.
    api.delete(made[0])
    api.initialize(330905, key="k")
    assert_problem(api.initialize(1001, key="k"), 409, "idempotency-key-conflict")
    # Other users have their own count.
    assert api.initialize(330905, user="bob").status == 201


def test_a_delete_frees_a_slot_at_once(api: Api, ddb: Any, limit: int) -> None:
    made = [api.initialize(330905).json["chatId"] for _ in range(limit)]
    assert api.initialize(330905).status == 409
    assert api.delete(made[1]).status == 200
    assert chat_count(ddb, "alice") == limit - 1
    assert api.initialize(330905).status == 201
    assert api.initialize(330905).status == 409
    assert api.delete(made[1]).status == 200  # a repeated delete answers like the first and counts nothing
    assert chat_count(ddb, "alice") == limit


def test_idempotent_replays_never_count_and_still_answer_at_the_limit(api: Api, ddb: Any, limit: int) -> None:
    first = api.initialize(330905, key="k-1")
    for _ in range(3):
        replay = api.initialize(330905, key="k-1")
        assert replay.status == 200 and replay.json["chatId"] == first.json["chatId"]
    assert chat_count(ddb, "alice") == 1
    for _ in range(limit - 1):
        api.initialize(330905)
    replay = api.initialize(330905, key="k-1")  # at the limit, a replay creates nothing: it is answered
    assert replay.status == 200 and replay.json["chatId"] == first.json["chatId"]
    # The key's chat deleted: the key is free again, but a new chat must fit the limit.
    assert api.delete(first.json["chatId"]).status == 200
    assert api.initialize(1001).status == 201
    assert_problem(api.initialize(330905, key="k-1"), 409, "chat-limit-reached")
    assert chat_count(ddb, "alice") == limit


def test_the_count_is_the_number_of_listed_chats_through_deletes_purges_and_replays(
    api: Api, ddb: Any
) -> None:
    from tests.support.aws import removed_chat_record

    chats = [api.initialize(330905).json["chatId"] for _ in range(5)]
    records = {
        int(i["chatId"]["N"]): i for i in table_items(ddb) if i["SK"]["S"] == "META"
    }  # the old images the stream will carry
    for chat in chats[:2]:
        assert api.delete(chat).status == 200
    # The purges of deleted chats (their entries went with the DELETE) count nothing, even replayed.
    for _ in range(2):
        batch = {"Records": [removed_chat_record(records[c]) for c in chats[:2]]}
        assert cleanup(batch) == {"batchItemFailures": []}
    listed = api.list().json["chatIds"]
    assert chat_count(ddb, "alice") == len(listed) == 3


# ---------------------------------------------------------------- sustained throttling continues later


@pytest.fixture
def scheduler(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("CONTINUATION_SCHEDULE_GROUP", SCHEDULE_GROUP)
    monkeypatch.setenv("CONTINUATION_ROLE_ARN", "arn:aws:iam::123456789012:role/scheduler")
    monkeypatch.setenv("CONTINUATION_BUS_ARN", "arn:aws:events:us-east-1:123456789012:event-bus/default")
    reset_settings()
    reset_scheduler_client()
    client = boto3.client("scheduler", region_name="us-east-1")
    client.create_schedule_group(Name=SCHEDULE_GROUP)
    yield client
    reset_scheduler_client()
    reset_settings()


def schedules(client: Any) -> list[Item]:
    names = [s["Name"] for s in client.list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"]]
    return [client.get_schedule(Name=name, GroupName=SCHEDULE_GROUP) for name in names]


def delivered(schedule: Item) -> Item:
    """The event EventBridge delivers when the schedule puts its target's input on the bus."""
    target = schedule["Target"]
    return {
        "version": "0", "id": "scheduled", "account": "123456789012", "region": "us-east-1", "resources": [],
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": target["EventBridgeParameters"]["Source"],
        "detail-type": target["EventBridgeParameters"]["DetailType"],
        "detail": json.loads(target["Input"]),
    }  # fmt: skip


def test_a_user_deletion_under_sustained_throttling_continues_later_instead_of_failing(
    api: Api, ddb: Any, scheduler: Any
) -> None:
    for _ in range(4):
        api.initialize(330905)
    with inject(ddb, "BatchWriteItem", lambda params: fake_response(400, {"Error": THROTTLING})):
        result = cleanup(user_deleted("alice"))
    assert result["complete"] is False and result["continuation"] == 1 and result["delayedSeconds"] == 60
    # The marker went first: from now on nothing can be stored for alice, throttled or not.
    assert_problem(api.initialize(330905), 403, "account-deleted")

    (schedule,) = schedules(scheduler)
    assert schedule["ActionAfterCompletion"] == "DELETE" and schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    at = datetime.strptime(schedule["ScheduleExpression"], "at(%Y-%m-%dT%H:%M:%S)").replace(tzinfo=UTC)
    assert 50 <= (at - datetime.now(UTC)).total_seconds() <= 61
    event = delivered(schedule)
    assert event["source"] == "aurora.chats" and event["detail-type"] == "UserDeletionContinued"
    assert event["detail"] == {"userId": "alice", "continuation": 1, "throttled": 1}

    # When the schedule fires and DynamoDB answers again, the deletion completes.
    assert cleanup(event)["complete"] is True
    assert [i["SK"]["S"] for i in user_items(ddb, "alice")] == [USER_STATE_SK]


def test_a_user_deletion_that_stays_throttled_stops_after_a_bounded_number_of_rounds(
    api: Api, ddb: Any, scheduler: Any
) -> None:
    api.initialize(330905)
    event = user_deleted("alice")
    delays = []
    with inject(ddb, "Query", lambda params: fake_response(400, {"Error": THROTTLING})):
        for _ in range(MAX_THROTTLED_ROUNDS):
            delays.append(cleanup(event)["delayedSeconds"])
            (latest,) = [
                s
                for s in schedules(scheduler)
                if json.loads(s["Target"]["Input"])["throttled"] == len(delays)
            ]
            event = delivered(latest)
        # One more throttled round: the invocation fails (Lambda retries twice, then UserDeletedDLQ, alarmed).
        with pytest.raises(UserDeletionStalled):
            cleanup(event)
    assert delays == [60, 120, 240, 480, 900, 900, 900, 900]
    assert len(schedules(scheduler)) == MAX_THROTTLED_ROUNDS
