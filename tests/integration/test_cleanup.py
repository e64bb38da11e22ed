"""Event-driven cleanup on moto: stream purge of deleted and expired chats, UserDeleted, retries, time budget.

Stream records are read from moto's real table stream, passed through the template's own ``FilterCriteria`` and
wrapped as Lambda wraps them; nothing here hand-writes a stream record.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from aurora_chats.cleanup import DEFAULT_RESERVE_MS, MAX_USER_DELETION_ROUNDS
from aurora_chats.dal.chats import DynamoDBChatRepository
from aurora_chats.dal.cleanup import is_chat_removal, removed_chat
from aurora_chats.dal.client import reset_events_client
from aurora_chats.dal.items import message_item
from aurora_chats.dal.keys import (
    CHAT_META_SK,
    USER_STATE_SK,
    chat_pk,
    chat_record_key,
    is_deleted_chat_sk,
    is_message_sk,
    user_pk,
    user_state_key,
)
from aurora_chats.ids import new_message_id
from aurora_chats.models import Message
from aurora_local.filters import matches_criteria
from aurora_local.template import resources
from pydantic import ValidationError

from tests.support.api import Api
from tests.support.aws import CallLog, all_items, chat_count, fake_response, inject, table_items, user_state
from tests.support.context import FakeContext
from tests.support.env import ROOT, TABLE
from tests.support.events import cleanup_props, stream_filter, user_deleted
from tests.support.loader import load_function

REGION = "us-east-1"
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

Item = dict[str, Any]


# ---------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _real_dynamodb_limits(request: pytest.FixtureRequest) -> None:
    """Every test on moto gets the ``calls`` guards: a BatchWriteItem of more than 25 items fails the test."""
    if "ddb" in request.fixturenames:
        request.getfixturevalue("calls")


def cleanup() -> Any:
    return load_function("chat_cleanup")


class Stream:
    """Reads the table's stream like Lambda's poller: new records since the last read, filtered, wrapped."""

    def __init__(self, ddb: Any) -> None:
        # botocore derives an account endpoint (<account>.streams-ddb...) from the stream ARN, which moto does not
        # route; the regional endpoint is what moto serves.
        self.client = boto3.client(
            "dynamodbstreams",
            region_name=REGION,
            endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com",
        )
        self.arn: str = ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        shards = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        self.iterators = [
            self.client.get_shard_iterator(
                StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for shard in shards
        ]

    def read(self) -> list[Item]:
        records: list[Item] = []
        for index, iterator in enumerate(self.iterators):
            while True:
                page = self.client.get_records(ShardIterator=iterator, Limit=1000)
                iterator = page["NextShardIterator"]
                records.extend(self._as_lambda_record(r) for r in page["Records"])
                if not page["Records"]:
                    break
            self.iterators[index] = iterator
        return records

    def _as_lambda_record(self, record: Any) -> Item:
        wrapped: Item = json.loads(json.dumps(record, default=_epoch))
        wrapped["eventSourceARN"] = self.arn
        wrapped.setdefault("awsRegion", REGION)
        return wrapped

    def passed(self) -> list[Item]:
        """The new records that pass the template's filters, in stream order."""
        return [r for r in self.read() if matches_criteria(stream_filter(), r)]

    def removed_chats(self, *, ttl: bool = False) -> list[Item]:
        """The new chat-record removals among them (TTL deletions carry the service identity); the user-state
        writes the filters also pass (deletion markers) are left out."""
        passed = [r for r in self.passed() if is_chat_removal(r)]
        if ttl:
            for record in passed:
                record["userIdentity"] = dict(TTL_IDENTITY)
        return passed


def _epoch(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp())
    raise TypeError(type(value))


def batch(records: list[Item]) -> dict[str, Any]:
    return {"Records": records}


def countdown(checks: int, step_ms: int = 1_000) -> FakeContext:
    """A Lambda context whose remaining time drops by ``step_ms`` every time it is asked: after ``checks`` budget
    checks the purge sees less than its reserve left."""
    return FakeContext(DEFAULT_RESERVE_MS + checks * step_ms, step_ms=step_ms)


def plenty() -> FakeContext:
    return FakeContext(remaining_ms=300_000)


def grow_chat(ddb: Any, chat_id: int, total_messages: int) -> None:
    """Bring the chat's history to ``total_messages`` by writing messages as the data layer stores them."""
    chat = DynamoDBChatRepository(TABLE).get_chat(chat_id)
    assert chat is not None
    existing = len(messages(ddb, chat_id))
    items = [
        message_item(
            chat,
            Message(
                message_id=new_message_id(),
                role="user" if n % 2 else "character",
                content=f"message {n}",
                created_at=chat.created_at,
            ),
        )
        for n in range(total_messages - existing)
    ]
    for start in range(0, len(items), 25):
        requests: Any = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        assert not ddb.batch_write_item(RequestItems={TABLE: requests}).get("UnprocessedItems")
    assert len(messages(ddb, chat_id)) == total_messages


def messages(ddb: Any, chat_id: int) -> list[Item]:
    return [i for i in partition(ddb, chat_pk(chat_id)) if is_message_sk(i["SK"]["S"])]


def partition(ddb: Any, pk: str) -> list[Item]:
    return all_items(
        ddb.query,
        TableName=TABLE,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
    )


def assert_only_the_deletion_marker_is_left(ddb: Any, user: str, window: int = 86_400) -> Item:
    """Of the user's partition only the marker is left: when it was deleted, when the marker expires (TTL), and
    the count it froze at. Returns the marker."""
    (marker,) = partition(ddb, user_pk(user))
    assert marker["SK"]["S"] == USER_STATE_SK
    assert set(marker) <= {"PK", "SK", "deletedAt", "expiresAt", "deletedInRegion", "chatCount"}
    assert int(marker["expiresAt"]["N"]) >= int(marker["deletedAt"]["N"]) + window
    return marker


def keys_of(items: list[Item]) -> set[tuple[str, str]]:
    return {(i["PK"]["S"], i["SK"]["S"]) for i in items}


def leftovers(ddb: Any, chat_id: int, user: str) -> list[Item]:
    """Every item the chat left anywhere: its partition, the user's list entry, idempotency records naming it -
    all but the delete's tombstone, which is meant to stay until its TTL (24 h: a repeated delete answers 200)."""
    chat_items = partition(ddb, chat_pk(chat_id))
    user_items = [
        i
        for i in partition(ddb, user_pk(user))
        if i.get("chatId", {}).get("N") == str(chat_id) and not is_deleted_chat_sk(i["SK"]["S"])
    ]
    return chat_items + user_items


def start_chat(api: Api, user: str = "alice", key: str | None = None, character: int = 330905) -> int:
    response = api.initialize(character, user=user, key=key)
    assert response.status == 201, response
    chat_id: int = response.json["chatId"]
    return chat_id


# ---------------------------------------------------------------- purge after DELETE


def test_deleting_a_chat_with_2000_messages_purges_all_of_it_through_the_real_stream(
    api: Api, ddb: Any, calls: CallLog
) -> None:
    # Given alice's chat with 2,000 messages (started with an Idempotency-Key), another chat of hers and bob's
    doomed = start_chat(api, key="first-chat")
    grow_chat(ddb, doomed, 2_000)
    kept = start_chat(api)
    grow_chat(ddb, kept, 30)
    bobs = start_chat(api, user="bob", key="first-chat")
    stream = Stream(ddb)
    stream.read()  # the writes so far are not what we are testing
    others_before = [i for i in table_items(ddb) if i["PK"]["S"] != chat_pk(doomed)]

    # When alice deletes it and the stream's records reach the cleanup function
    assert api.delete(doomed).status == 200
    records = stream.removed_chats()
    assert len(records) == 1  # the chat record's REMOVE; the list entry's REMOVE is filtered out
    calls.clear()
    response = cleanup().handler(batch(records), plenty())
    purge_calls = CallLog(calls=list(calls.calls))

    # Then nothing of that chat is left, the other chats are untouched, in few calls of at most 25 items
    assert response == {"batchItemFailures": []}
    assert leftovers(ddb, doomed, "alice") == []
    others_before = [
        i
        for i in others_before
        if i.get("chatId", {}).get("N") != str(doomed) and i["SK"]["S"] != USER_STATE_SK
    ]
    # the user's state item (count) changes; the delete leaves a 24 h tombstone
    remaining = [
        i for i in table_items(ddb) if i["SK"]["S"] != USER_STATE_SK and not is_deleted_chat_sk(i["SK"]["S"])
    ]
    assert sorted(map(json.dumps, remaining)) == sorted(map(json.dumps, others_before))
    assert {kept, bobs} <= {int(i["chatId"]["N"]) for i in table_items(ddb) if i["SK"]["S"] == CHAT_META_SK}
    # The DELETE counted the chat down; the purge (its list entry already gone) counts nothing more.
    assert chat_count(ddb, "alice") == 1 and chat_count(ddb, "bob") == 1
    # 1,000 keys per page: 1,000 + 1,000 (+ the empty page real DynamoDB answers after a full one; moto does not)
    assert purge_calls.count("Query") in (2, 3)
    assert purge_calls.count("TransactWriteItems") == 1  # the list entry with its decrement (cancelled: gone)
    assert purge_calls.count("BatchWriteItem") == 80  # 2,000 messages 25 at a time
    assert purge_calls.count("DeleteItem") == 1  # the idempotency record, only while it names this chat
    assert len(purge_calls.calls) <= 85

    # Replaying the same batch is harmless and cheap
    calls.clear()
    assert cleanup().handler(batch(records), plenty()) == {"batchItemFailures": []}
    assert calls.calls == ["TransactWriteItems", "DeleteItem", "Query"]
    assert leftovers(ddb, doomed, "alice") == []
    assert chat_count(ddb, "alice") == 1


def test_purge_keeps_an_idempotency_key_that_already_serves_a_newer_chat(api: Api, ddb: Any) -> None:
    first = start_chat(api, key="k-1")
    stream = Stream(ddb)
    assert api.delete(first).status == 200
    # The key is free again once its chat is gone: a new chat takes it before the purge runs.
    second = api.initialize(330905, key="k-1")
    assert second.status == 201 and second.json["chatId"] != first
    assert cleanup().handler(batch(stream.removed_chats()), plenty()) == {"batchItemFailures": []}
    replay = api.initialize(330905, key="k-1")
    assert replay.status == 200 and replay.json["chatId"] == second.json["chatId"]
    assert leftovers(ddb, first, "alice") == []


# ---------------------------------------------------------------- retention (TTL)


def test_expired_chat_is_hidden_refused_and_purged_when_ttl_removes_its_record(
    api: Api, ddb: Any, calls: CallLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aurora_chats.settings import reset_settings

    monkeypatch.setenv("CHAT_RETENTION_DAYS", "1")
    reset_settings()
    expiring = start_chat(api)
    grow_chat(ddb, expiring, 60)
    kept = start_chat(api)
    chat_items = partition(ddb, chat_pk(expiring)) + leftovers(ddb, expiring, "alice")
    # Every item of the chat expires by TTL except its list entry, whose end of listing is not the TTL attribute:
    # only the purge removes it, in the write that counts the chat down.
    entry = keys_of(leftovers(ddb, expiring, "alice")) - keys_of(partition(ddb, chat_pk(expiring)))
    assert len(entry) == 1
    for item in chat_items:
        in_entry = (item["PK"]["S"], item["SK"]["S"]) in entry
        assert ("listedUntil" in item and "expiresAt" not in item) if in_entry else "expiresAt" in item
    assert chat_count(ddb, "alice") == 2

    # Time passes: every item of the chat is past its expiry, but TTL has not removed anything yet.
    for item in chat_items:
        attribute = "listedUntil" if (item["PK"]["S"], item["SK"]["S"]) in entry else "expiresAt"
        ddb.update_item(
            TableName=TABLE,
            Key={"PK": item["PK"], "SK": item["SK"]},
            UpdateExpression="SET #at = :past",
            ExpressionAttributeNames={"#at": attribute},
            ExpressionAttributeValues={":past": {"N": "1700000000"}},
        )
    assert api.list().json["chatIds"] == [kept]
    assert api.delete(expiring).status == 404
    # Two items TTL would not delete with the chat: one written without expiresAt, one with a later one.
    untimed = {**messages(ddb, expiring)[0], "SK": {"S": "MSG#untimed"}}
    untimed.pop("expiresAt")
    later = {**messages(ddb, expiring)[0], "SK": {"S": "MSG#later"}, "expiresAt": {"N": "1900000000"}}
    for item in (untimed, later):
        ddb.put_item(TableName=TABLE, Item=item)

    # DynamoDB's TTL removes the chat record (only that one, as it may): the stream carries the TTL identity.
    stream = Stream(ddb)
    stream.read()
    ddb.delete_item(TableName=TABLE, Key=chat_record_key(expiring))
    records = stream.removed_chats(ttl=True)
    assert len(records) == 1 and removed_chat(records[0]).expired
    assert removed_chat(records[0]).expires_at == 1700000000
    calls.clear()
    assert cleanup().handler(batch(records), plenty()) == {"batchItemFailures": []}
    assert chat_count(ddb, "alice") == 1  # the expired chat's slot is free
    assert calls.count("BatchWriteItem") == 1  # the two items TTL would not delete; none of its 60 messages
    assert cleanup().handler(batch(records), plenty()) == {"batchItemFailures": []}  # a replay
    assert chat_count(ddb, "alice") == 1  # counts nothing twice

    # The list entry and the two are gone; the messages are TTL's (expiresAt past, deleted at no cost).
    left = leftovers(ddb, expiring, "alice")
    assert len(left) == 60 and all(int(i["expiresAt"]["N"]) <= 1700000000 for i in left)
    assert api.list().json["chatIds"] == [kept]
    for item in left:  # TTL catches up (moto never expires items)
        ddb.delete_item(TableName=TABLE, Key={"PK": item["PK"], "SK": item["SK"]})
    assert leftovers(ddb, expiring, "alice") == []
    assert partition(ddb, chat_pk(kept))


# ---------------------------------------------------------------- retries and failures


def test_unprocessed_items_and_throttling_are_retried_until_the_purge_is_clean(
    api: Api, ddb: Any, calls: CallLog
) -> None:
    chat = start_chat(api)
    grow_chat(ddb, chat, 100)
    stream = Stream(ddb)
    assert api.delete(chat).status == 200
    records = stream.removed_chats()
    seen = {"batches": 0}

    def throttle(params: dict[str, Any]) -> Any:
        seen["batches"] += 1
        if seen["batches"] == 2:  # DynamoDB took none of this batch: all of it comes back unprocessed
            return fake_response(200, {"UnprocessedItems": params["RequestItems"]})
        if seen["batches"] == 4:  # and later it refuses a whole call
            error = {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}
            return fake_response(400, {"Error": error})
        return None

    calls.clear()
    with inject(ddb, "BatchWriteItem", throttle):
        assert cleanup().handler(batch(records), plenty()) == {"batchItemFailures": []}
    assert leftovers(ddb, chat, "alice") == []
    assert calls.count("TransactWriteItems") == 1  # the list entry (already gone with the DELETE)
    assert calls.count("BatchWriteItem") == 4 + 2  # 100 messages + the two retried calls


def test_a_record_that_keeps_failing_is_reported_alone_and_the_rest_of_the_batch_completes(
    api: Api, ddb: Any
) -> None:
    chats = [start_chat(api) for _ in range(3)]
    for chat in chats:
        grow_chat(ddb, chat, 40)
    stream = Stream(ddb)
    for chat in chats:
        assert api.delete(chat).status == 200
    records = stream.removed_chats()
    assert [removed_chat(r).chat_id for r in records] == chats
    poisoned = chat_pk(chats[1])

    def refuse(params: dict[str, Any]) -> Any:
        if params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S") == poisoned:
            return fake_response(400, {"Error": {"Code": "ValidationException", "Message": "refused"}})
        return None

    with inject(ddb, "Query", refuse):
        for _ in range(2):  # it keeps failing, the same way each time
            response = cleanup().handler(batch(records), plenty())
            assert response == {
                "batchItemFailures": [{"itemIdentifier": records[1]["dynamodb"]["SequenceNumber"]}]
            }
    assert leftovers(ddb, chats[0], "alice") == [] and leftovers(ddb, chats[2], "alice") == []
    assert len(partition(ddb, poisoned)) == 40

    # Once the cause is gone, Lambda's redelivery (from the failed record on) finishes it.
    assert cleanup().handler(batch(records[1:]), plenty()) == {"batchItemFailures": []}
    assert all(leftovers(ddb, chat, "alice") == [] for chat in chats)


# ---------------------------------------------------------------- time budget


def test_a_purge_that_runs_out_of_time_continues_in_the_next_invocation(api: Api, ddb: Any) -> None:
    big, small = start_chat(api), start_chat(api)
    grow_chat(ddb, big, 300)
    grow_chat(ddb, small, 10)
    stream = Stream(ddb)
    assert api.delete(big).status == 200 and api.delete(small).status == 200
    records = stream.removed_chats()
    assert len(records) == 2

    pending, rounds, remaining = records, 0, []
    while pending:
        rounds += 1
        assert rounds < 20, "the purge makes no progress"
        # Each invocation may do 6 budgeted steps (a page or a batch of 25) before its time runs low.
        response = cleanup().handler(batch(pending), countdown(checks=6))
        remaining.append(len(partition(ddb, chat_pk(big))))
        failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
        if rounds == 1:  # the big chat stopped halfway; the small one after it was not started
            assert failed == [r["dynamodb"]["SequenceNumber"] for r in records]
        # Lambda resumes from the lowest reported sequence number.
        pending = [
            r for r in pending if failed and int(r["dynamodb"]["SequenceNumber"]) >= min(map(int, failed))
        ]

    assert rounds > 2
    assert remaining == sorted(remaining, reverse=True) and remaining[-1] == 0
    assert leftovers(ddb, big, "alice") == [] and leftovers(ddb, small, "alice") == []


# ---------------------------------------------------------------- UserDeleted


def test_user_deleted_removes_every_item_of_that_user_and_nothing_else(api: Api, ddb: Any) -> None:
    alices = [start_chat(api, key="k-a"), start_chat(api), start_chat(api, character=1001)]
    for chat in alices:
        grow_chat(ddb, chat, 30)
    bobs = start_chat(api, user="bob", key="k-a")
    grow_chat(ddb, bobs, 30)
    assert api.delete(start_chat(api)).status == 200  # leaves a tombstone in alice's partition
    stream = Stream(ddb)
    stream.read()
    alice_keys = {k for chat in alices for k in keys_of(partition(ddb, chat_pk(chat)))}
    alice_keys |= keys_of(partition(ddb, user_pk("alice")))
    assert any(is_deleted_chat_sk(sk) for _, sk in keys_of(partition(ddb, user_pk("alice"))))
    marker = (user_pk("alice"), USER_STATE_SK)
    assert marker in alice_keys  # her chat count, which becomes the deletion marker
    alice_keys.discard(marker)
    others = [i for i in table_items(ddb) if (i["PK"]["S"], i["SK"]["S"]) not in alice_keys | {marker}]

    result = cleanup().handler(user_deleted("alice"), plenty())
    assert result["complete"] is True and result["chatsDeleted"] == 3
    assert_only_the_deletion_marker_is_left(ddb, "alice")
    # Each deleted chat record then purges its chat through the stream, as after a DELETE.
    records = stream.removed_chats()
    assert sorted(removed_chat(r).chat_id for r in records) == sorted(alices)
    assert cleanup().handler(batch(records), plenty()) == {"batchItemFailures": []}

    remaining = [i for i in table_items(ddb) if (i["PK"]["S"], i["SK"]["S"]) != marker]
    assert not keys_of(remaining) & alice_keys
    assert not [i for i in remaining if i.get("userId", {}).get("S") == "alice"]
    assert sorted(map(json.dumps, remaining)) == sorted(map(json.dumps, others))
    assert_only_the_deletion_marker_is_left(ddb, "alice")
    assert api.list(user="bob").json["chatIds"] == [bobs]


def test_a_large_account_is_deleted_across_invocations_via_continuation_events(api: Api, ddb: Any) -> None:
    for _ in range(60):
        start_chat(api, key=None)
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    reset_events_client()
    queue_url = sqs.create_queue(QueueName="continuations")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    # The template's rule for continuation events, with a queue standing in for the function.
    pattern = cleanup_props()["Events"]["UserDeletionContinued"]["Properties"]["Pattern"]
    events.put_rule(Name="continued", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="continued", Targets=[{"Id": "q", "Arn": queue_arn}])

    event, rounds = user_deleted("alice"), 0
    while True:
        rounds += 1
        result = cleanup().handler(event, countdown(checks=1))  # time for one group of 25
        if result["complete"]:
            break
        assert result["continuation"] == rounds
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        assert len(messages) == 1
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        event = json.loads(messages[0]["Body"])
        event.setdefault(
            "account", "123456789012"
        )  # EventBridge always sends it; moto's SQS delivery drops it
        assert event["source"] == "aurora.chats" and event["detail"]["userId"] == "alice"
    assert 2 < rounds < MAX_USER_DELETION_ROUNDS
    assert_only_the_deletion_marker_is_left(ddb, "alice")
    assert not [i for i in table_items(ddb) if i.get("userId", {}).get("S") == "alice"]


def test_malformed_or_unknown_events_fail_loudly(ddb: Any) -> None:
    with pytest.raises(ValidationError):
        cleanup().handler(user_deleted(""), plenty())
    with pytest.raises(ValueError, match="unsupported event"):
        cleanup().handler({"hello": "world"}, plenty())


# ---------------------------------------------------------------- event files and template


@pytest.mark.parametrize("path", sorted((ROOT / "events").glob("cleanup_*.json")), ids=lambda p: p.name)
def test_cleanup_event_files_are_accepted(ddb: Any, path: Path) -> None:
    event = json.loads(path.read_text())
    result = cleanup().handler(event, plenty())
    if "Records" in event:
        passed = [r for r in event["Records"] if matches_criteria(stream_filter(), r)]
        assert passed, "an event file whose records the function would never receive"
        assert result == {"batchItemFailures": []}
    else:
        assert result["complete"] is True


def test_cleanup_function_is_wired_with_bounded_retries_dlqs_and_least_privilege() -> None:
    props = cleanup_props()
    stream = props["Events"]["ChatRemoved"]["Properties"]
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stream["BisectBatchOnFunctionError"] is True
    assert 0 < stream["MaximumRetryAttempts"] <= 50 and 0 < stream["MaximumRecordAgeInSeconds"] <= 86_400
    dlqs = {stream["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]}
    for name in ("UserDeleted", "UserDeletionContinued"):
        rule = props["Events"][name]["Properties"]
        assert rule["RetryPolicy"]["MaximumRetryAttempts"] > 0
        dlqs.add(rule["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])
    assert props["Events"]["UserDeleted"]["Properties"]["Pattern"] == {
        "source": ["aurora.users"],
        "detail-type": ["UserDeleted"],
    }
    dlqs.add(props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0])
    everything = resources()
    for dlq in dlqs:
        queue = everything[dlq]["Properties"]
        assert queue["MessageRetentionPeriod"] == 14 * 86_400 and queue["SqsManagedSseEnabled"] is True
    alarms = [a["Properties"] for a in resources("AWS::CloudWatch::Alarm").values()]
    alarmed = {json.dumps(d["Value"]) for a in alarms for d in a.get("Dimensions", [])}
    assert {json.dumps({"Fn::GetAtt": [q, "QueueName"]}) for q in dlqs} <= alarmed
    function_alarms = {
        a["MetricName"]
        for a in alarms
        if {"Name": "FunctionName", "Value": {"Ref": "ChatCleanupFunction"}} in a.get("Dimensions", [])
    }
    assert {"Errors", "IteratorAge"} <= function_alarms
    role = resources()[props["Role"]["Fn::GetAtt"][0]]["Properties"]
    actions = {
        action
        for policy in role["Policies"]
        if policy["PolicyName"] == "code-calls"
        for statement in policy["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert actions == {
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
        "events:PutEvents",
        "scheduler:CreateSchedule",
        "iam:PassRole",
    }


# ---------------------------------------------------------------- global table: replicated removals


def _mint_in(monkeypatch: pytest.MonkeyPatch, region: int, api: Api, ddb: Any) -> int:
    from aurora_chats.settings import reset_settings

    monkeypatch.setenv("ID_REGION", str(region))
    reset_settings()
    chat_id = start_chat(api)
    grow_chat(ddb, chat_id, 40)
    return chat_id


def _cleanup_in(monkeypatch: pytest.MonkeyPatch, region: int, *, own_only: bool, records: list[Item]) -> Any:
    from aurora_chats.settings import reset_settings

    monkeypatch.setenv("ID_REGION", str(region))
    monkeypatch.setenv("PURGE_OWN_REGION_ONLY", "true" if own_only else "false")
    reset_settings()
    return cleanup().handler(batch(records), plenty())


def test_with_a_replica_each_region_purges_only_the_chats_it_minted_from_the_real_stream(
    api: Api, ddb: Any, calls: CallLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a chat minted in region 1 and one minted in region 2, both deleted: with a global table both removals
    # reach both regions' streams (moto's one table stands for either replica)
    ours, theirs = _mint_in(monkeypatch, 1, api, ddb), _mint_in(monkeypatch, 2, api, ddb)
    stream = Stream(ddb)
    assert api.delete(ours).status == 200 and api.delete(theirs).status == 200
    records = stream.removed_chats()
    assert len(records) == 2

    # When region 1's cleanup (a stack with a replica) receives both
    calls.clear()
    assert _cleanup_in(monkeypatch, 1, own_only=True, records=records) == {"batchItemFailures": []}

    # Then it purged its own chat and did not touch the other region's (a success: no retry, no DLQ)
    assert leftovers(ddb, ours, "alice") == []
    assert len(partition(ddb, chat_pk(theirs))) == 40
    assert calls.count("BatchWriteItem") == 2  # 40 messages of one chat, 25 at a time: never the other's

    # And region 2's cleanup, on the same records, purges the rest (its deletes replicate to region 1)
    assert _cleanup_in(monkeypatch, 2, own_only=True, records=records) == {"batchItemFailures": []}
    assert leftovers(ddb, theirs, "alice") == []


def test_a_single_region_stack_purges_every_removal_whatever_region_bits_the_id_carries(
    api: Api, ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chats minted under other IdRegion values (before a change of IdRegion, say) are still this stack's to purge.
    chats = [_mint_in(monkeypatch, region, api, ddb) for region in (0, 5, 7)]
    stream = Stream(ddb)
    for chat_id in chats:
        assert api.delete(chat_id).status == 200
    records = stream.removed_chats()
    assert _cleanup_in(monkeypatch, 0, own_only=False, records=records) == {"batchItemFailures": []}
    assert all(leftovers(ddb, chat_id, "alice") == [] for chat_id in chats)


def test_the_template_sets_purge_own_region_only_exactly_when_the_stack_has_a_replica() -> None:
    from aurora_local.intrinsics import Resolver
    from aurora_local.template import load_template

    variables = resources()["ChatCleanupFunction"]["Properties"]["Environment"]["Variables"]
    for replica, expected in (("", "false"), ("eu-west-1", "true")):
        resolver = Resolver(load_template(), TABLE, overrides={"ReplicaRegion": replica})
        assert resolver.resolve(variables["PURGE_OWN_REGION_ONLY"]) == expected


# ---------------------------------------------------------------- global table: a user deletion reaches every region


class Continuations:
    """The template's rule for ``UserDeletionContinued`` on moto's EventBridge, a queue standing in for the
    function: :meth:`take` returns the events published since the last call."""

    def __init__(self) -> None:
        self.sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        reset_events_client()
        self.url = self.sqs.create_queue(QueueName="replicated-deletions")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        pattern = cleanup_props()["Events"]["UserDeletionContinued"]["Properties"]["Pattern"]
        events.put_rule(Name="continued-replica", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="continued-replica", Targets=[{"Id": "q", "Arn": arn}])

    def take(self) -> list[Item]:
        taken: list[Item] = []
        while messages := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
                event = json.loads(message["Body"])
                event.setdefault("account", "123456789012")  # moto's SQS delivery drops it
                taken.append(event)
        return taken


def _in_region(monkeypatch: pytest.MonkeyPatch, region: int) -> None:
    from aurora_chats.settings import reset_settings

    monkeypatch.setenv("ID_REGION", str(region))
    monkeypatch.setenv("PURGE_OWN_REGION_ONLY", "true")
    reset_settings()


def _replicate(ddb: Any, item: Item) -> None:
    """What replication does to the other replica: the whole item as the writing region left it (a PutItem)."""
    ddb.put_item(TableName=TABLE, Item=item)


def _state(ddb: Any, user: str) -> Item:
    item = user_state(ddb, user)
    assert item is not None, f"{user} has no user-state item"
    return item


def test_a_marker_replicated_from_the_other_region_runs_a_deletion_round_here(
    api: Api, ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given region 2's replica: alice has two chats; one (minted here, in region 2) committed just before the marker
    # that region 1's UserDeleted wrote arrived - region 1's queries could not see it
    continuations = Continuations()
    _in_region(monkeypatch, 2)
    early, late = start_chat(api), start_chat(api)
    stream = Stream(ddb)
    stream.passed()  # what the stream held before: chat writes, filtered out anyway
    marked = {**_state(ddb, "alice")}
    marked |= {
        "deletedAt": {"N": "1796100000"},
        "expiresAt": {"N": "1796186400"},
        "deletedInRegion": {"N": "1"},
    }
    _replicate(ddb, marked)
    records = stream.passed()
    assert [r["eventName"] for r in records] == [
        "MODIFY"
    ]  # the marker's arrival passes the template's filter

    # When region 2's cleanup receives it, it starts a deletion round in region 2
    assert cleanup().handler(batch(records), plenty()) == {"batchItemFailures": []}
    (event,) = continuations.take()
    assert event["source"] == "aurora.chats" and event["detail-type"] == "UserDeletionContinued"
    assert event["detail"] == {"userId": "alice", "continuation": 0, "throttled": 0}
    result = cleanup().handler(event, plenty())
    assert result["complete"] is True and result["chatsDeleted"] == 2

    # Then both chats are gone with everything they left (their removals are region 2's to purge), only the marker
    # stays - now region 2's own - and its refresh starts no further round anywhere
    assert cleanup().handler(batch(stream.removed_chats()), plenty()) == {"batchItemFailures": []}
    assert leftovers(ddb, early, "alice") == [] and leftovers(ddb, late, "alice") == []
    marker = assert_only_the_deletion_marker_is_left(ddb, "alice")
    assert marker["deletedInRegion"] == {"N": "2"} and marker["deletedAt"] == {
        "N": "1796100000"
    }  # first time kept
    rest = [r for r in stream.passed() if not is_chat_removal(r)]
    for region in (1, 2):
        _in_region(monkeypatch, region)
        assert cleanup().handler(batch(rest), plenty()) == {"batchItemFailures": []}
    assert continuations.take() == []


def test_a_marker_lost_to_a_later_write_from_the_other_region_is_written_again(
    api: Api, ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given region 1 deleted alice's account (marker written, chats deleted)
    continuations = Continuations()
    _in_region(monkeypatch, 1)
    start_chat(api)
    assert cleanup().handler(user_deleted("alice"), plenty())["complete"] is True
    stream = Stream(ddb)
    marker = assert_only_the_deletion_marker_is_left(ddb, "alice")
    # ... and then region 2's initialize, committed there before the marker arrived but with a later timestamp, won
    # last-writer-wins: its chat replicated in, and its whole state item (counted, unmarked) replaced the marker.
    # Played on moto's one table: region 2's replica (no marker yet) creates the chat, then region 1's replica
    # (the marker) receives region 2's state item.
    ddb.delete_item(TableName=TABLE, Key=user_state_key("alice"))
    _in_region(monkeypatch, 2)
    chat = start_chat(api)
    from_region_2 = _state(ddb, "alice")
    assert "deletedAt" not in from_region_2 and from_region_2["chatCount"] == {"N": "1"}
    ddb.put_item(TableName=TABLE, Item=marker)
    stream.passed()
    _replicate(ddb, from_region_2)
    records = stream.passed()
    assert [r["eventName"] for r in records] == ["MODIFY"]  # marked before, unmarked after: passes the filter

    # When region 1's cleanup receives that write, it starts a deletion round
    _in_region(monkeypatch, 1)
    assert cleanup().handler(batch(records), plenty()) == {"batchItemFailures": []}
    (event,) = continuations.take()
    assert event["detail"]["userId"] == "alice"
    assert cleanup().handler(event, plenty())["chatsDeleted"] == 1

    # Then the account is deleted again - the marker back, the late chat gone (region 2 purges what it minted) - and
    # the rounds end: the marker region 1 wrote again arrives in region 2 as a marker from another region (one
    # more round there, harmless), and that round's refresh starts nothing
    marker_again = assert_only_the_deletion_marker_is_left(ddb, "alice")
    assert marker_again["deletedInRegion"] == {"N": "1"}
    rounds = 0
    for _ in range(4):
        records = stream.passed()
        if not records:
            break
        for region in (1, 2):
            _in_region(monkeypatch, region)
            assert cleanup().handler(batch(records), plenty()) == {"batchItemFailures": []}
        published = continuations.take()
        for event in published:
            _in_region(monkeypatch, 2)
            assert cleanup().handler(event, plenty())["complete"] is True
        rounds += len(published)
    assert rounds == 1
    assert leftovers(ddb, chat, "alice") == []
    assert_only_the_deletion_marker_is_left(ddb, "alice")


def test_one_region_never_starts_a_round_from_its_own_markers(api: Api, ddb: Any) -> None:
    continuations = Continuations()
    start_chat(api)
    stream = Stream(ddb)
    assert cleanup().handler(user_deleted("alice"), plenty())["complete"] is True
    assert cleanup().handler(user_deleted("alice"), plenty())["complete"] is True  # a replayed event
    records = stream.passed()
    markers = [r for r in records if not is_chat_removal(r)]
    assert [r["eventName"] for r in markers] == ["MODIFY", "MODIFY"]  # marker written, then refreshed
    assert cleanup().handler(batch(records), plenty()) == {"batchItemFailures": []}
    assert continuations.take() == []
    assert_only_the_deletion_marker_is_left(ddb, "alice")


def test_the_stream_filters_pass_marker_writes_and_drop_other_user_state_writes(api: Api, ddb: Any) -> None:
    stream = Stream(ddb)
    chat = start_chat(api)  # the state item counts the chat: no marker, filtered out
    assert api.delete(chat).status == 200  # counted down: filtered out (the chat record's REMOVE passes)
    passed = stream.passed()
    assert [is_chat_removal(r) for r in passed] == [True]
    ddb.update_item(
        TableName=TABLE,
        Key=user_state_key("alice"),
        UpdateExpression="SET deletedAt = :t, expiresAt = :t",
        ExpressionAttributeValues={":t": {"N": "1"}},
    )
    ddb.delete_item(TableName=TABLE, Key=user_state_key("alice"))  # the marker's expiry (TTL): a REMOVE
    assert [r["eventName"] for r in stream.passed()] == ["MODIFY"]
