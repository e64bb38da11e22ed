""":class:`aurora_chats.cleanup.CleanupStore` on the single table, the stream records it reads, and the one
non-DynamoDB adapter the cleanup needs (publishing a user deletion's continuation to EventBridge).

Keys come from :mod:`aurora_chats.dal.keys`, failures are translated by :mod:`aurora_chats.dal.errors`; the calls
are listed in :mod:`aurora_chats.dal`'s table. The operator's Scan lives in ``aurora_ops``, never here.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from aurora_chats.dal import errors, keys
from aurora_chats.dal.client import get_client, get_events_client, get_scheduler_client
from aurora_chats.dal.items import CHAT_COUNT, DELETED_AT, DELETED_IN_REGION
from aurora_chats.errors import ServiceUnavailable
from aurora_chats.observability import logger
from aurora_chats.ports import (
    CLEANUP_EVENTS_SOURCE,
    USER_DELETION_CONTINUED,
    ItemKey,
    KeyPage,
    RemovedChat,
    UserItem,
    UserItemsPage,
    UserStateChange,
)
from aurora_chats.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events.client import EventBridgeClient

MAX_BATCH_WRITE = 25  # DynamoDB's limit for BatchWriteItem
PAGE_SIZE = 1000  # keys per Query page: ~60 KB keys-only, 40 batches; the time budget is checked per batch
MAX_BATCH_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 2.0
TTL_PRINCIPAL = "dynamodb.amazonaws.com"


def _record_key(record: Mapping[str, Any]) -> tuple[str, str]:
    """A stream record's (PK, SK); empty strings where the record has none."""
    record_keys = (record.get("dynamodb") or {}).get("Keys") or {}
    return str(record_keys.get("PK", {}).get("S", "")), str(record_keys.get("SK", {}).get("S", ""))


def is_chat_removal(record: Mapping[str, Any]) -> bool:
    """Whether a stream record is the ``REMOVE`` of a chat record (what the template's filter lets through)."""
    return record.get("eventName") == "REMOVE" and keys.is_chat_record(*_record_key(record))


def removed_chat(record: Mapping[str, Any]) -> RemovedChat:
    """The chat a stream ``REMOVE`` record of a chat record is about (``ValueError`` for any other record)."""
    if not is_chat_removal(record):
        raise ValueError(
            f"not the removal of a chat record: {record.get('eventName')} {record.get('dynamodb')}"
        )
    body = record["dynamodb"]
    chat_id = int(body["Keys"]["PK"]["S"].removeprefix(keys.CHAT_PREFIX))
    old = body.get("OldImage") or {}
    identity = record.get("userIdentity") or {}
    return RemovedChat(
        chat_id=chat_id,
        user_id=old["userId"]["S"] if "userId" in old else None,
        idempotency_key=old["idempotencyKey"]["S"] if "idempotencyKey" in old else None,
        expired=identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL,
        expires_at=int(old["expiresAt"]["N"]) if "expiresAt" in old else None,
    )


def user_state_change(record: Mapping[str, Any]) -> UserStateChange | None:
    """The deletion-marker side of a stream ``INSERT``/``MODIFY`` of a user-state item (what the template's second
    and third filters let through); ``None`` for any other record, or one that neither had nor has a marker."""
    if record.get("eventName") not in ("INSERT", "MODIFY"):
        return None
    pk, sk = _record_key(record)
    if not (keys.is_user_pk(pk) and keys.is_user_state_sk(sk)):
        return None
    body = record.get("dynamodb") or {}
    old = body.get("OldImage") or {}
    new = body.get("NewImage") or {}
    if DELETED_AT not in old and DELETED_AT not in new:
        return None
    region = new.get(DELETED_IN_REGION, {}).get("N") if DELETED_AT in new else None
    return UserStateChange(
        user_id=pk.removeprefix(keys.USER_PREFIX),
        marked_before=DELETED_AT in old,
        marked_after=DELETED_AT in new,
        marked_in_region=int(region) if region is not None else None,
    )


class DynamoDBCleanupStore:
    """:class:`aurora_chats.cleanup.CleanupStore` on one DynamoDB table."""

    max_batch = MAX_BATCH_WRITE

    def __init__(
        self,
        table_name: str | None = None,
        client: DynamoDBClient | None = None,
        page_size: int = PAGE_SIZE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table_name or get_settings().table_name
        self._client = client
        self._page_size = page_size
        self._sleep = sleep

    @property
    def client(self) -> DynamoDBClient:
        return self._client if self._client is not None else get_client()

    @property
    def table_name(self) -> str:
        return self._table

    @property
    def page_size(self) -> int:
        return self._page_size

    def _query_keys(
        self, pk: str, start: ItemKey | None, left_to_ttl_by: int | None = None
    ) -> tuple[list[ItemKey], ItemKey | None]:
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ProjectionExpression": "PK, SK",
            "ConsistentRead": True,
            "Limit": self._page_size,
        }
        if left_to_ttl_by is not None:
            # A Query's read units count every item it reads, before the filter: the filter costs no extra reads
            # and saves the delete (a write unit per KB) of every item TTL deletes for free.
            params["FilterExpression"] = "attribute_not_exists(expiresAt) OR expiresAt > :ttl"
            params["ExpressionAttributeValues"][":ttl"] = {"N": str(left_to_ttl_by)}
        if start is not None:
            params["ExclusiveStartKey"] = dict(start)
        try:
            response = self.client.query(**params)
        except errors.TRANSPORT_ERRORS as exc:
            raise (errors.unavailable(exc) or exc) from exc
        items: list[ItemKey] = [keys.key(i["PK"]["S"], i["SK"]["S"]) for i in response.get("Items", [])]
        return items, response.get("LastEvaluatedKey")

    def chat_items_page(
        self, chat_id: int, start: ItemKey | None, *, left_to_ttl_by: int | None = None
    ) -> KeyPage:
        item_keys, next_start = self._query_keys(keys.chat_pk(chat_id), start, left_to_ttl_by)
        return KeyPage(keys=item_keys, next_start=next_start)

    def user_items_page(self, user_id: str, start: ItemKey | None) -> UserItemsPage:
        user_keys, next_start = self._query_keys(keys.user_pk(user_id), start)
        items: list[UserItem] = []
        for item_key in user_keys:
            sk = str(item_key["SK"]["S"])
            if keys.is_user_state_sk(sk):
                continue  # the deletion marker stays: it expires by TTL, after the deleted-account window
            chat_record = (
                keys.chat_record_key(keys.chat_id_from_entry_sk(sk))
                if keys.is_user_chat_entry_sk(sk)
                else None
            )
            items.append(UserItem(key=item_key, chat_record_key=chat_record))
        return UserItemsPage(items=items, next_start=next_start)

    def remove_list_entry(self, chat: RemovedChat) -> None:
        """1 ``TransactWriteItems``: the list entry (``attribute_exists``) and the owner's chat count minus one.

        A cancelled condition means the entry is already gone (the API delete removed it with its own decrement,
        a user deletion removed it, or this is a replay): nothing to count, nothing to do."""
        if chat.user_id is None:
            logger.warning(
                "removed chat record without an old image: list entry left", extra={"chatId": chat.chat_id}
            )
            return
        items: list[Any] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": keys.user_entry_key(chat.user_id, chat.chat_id),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.user_state_key(chat.user_id),
                    "UpdateExpression": "ADD #count :minus",
                    "ExpressionAttributeNames": {"#count": CHAT_COUNT},
                    "ExpressionAttributeValues": {":minus": {"N": "-1"}},
                }
            },
        ]
        try:
            self.client.transact_write_items(TransactItems=items, ClientRequestToken=str(uuid.uuid4()))
        except errors.TRANSPORT_ERRORS as exc:
            reasons = errors.cancellation_reasons(exc)
            if reasons is None:
                raise (errors.write_failed(exc) or exc) from exc
            codes = errors.reason_codes(reasons)
            if codes and codes[0] == "ConditionalCheckFailed":
                return
            raise (errors.cancelled(codes) or exc) from exc

    def mark_user_deleted(self, user_id: str) -> None:
        """1 ``UpdateItem`` of the user-state item: ``deletedAt`` (first deletion time, kept), ``expiresAt`` =
        now + the deleted-account window (refreshed by each round, so the window starts when the work ends) and
        ``deletedInRegion`` = this region's ``IdRegion``."""
        now = int(time.time())
        until = now + get_settings().deleted_account_window_seconds
        try:
            self.client.update_item(
                TableName=self._table,
                Key=keys.user_state_key(user_id),
                UpdateExpression=(
                    "SET #deleted = if_not_exists(#deleted, :now), expiresAt = :until, #region = :region"
                ),
                ExpressionAttributeNames={"#deleted": DELETED_AT, "#region": DELETED_IN_REGION},
                ExpressionAttributeValues={
                    ":now": {"N": str(now)},
                    ":until": {"N": str(until)},
                    ":region": {"N": str(get_settings().id_region)},
                },
            )
        except errors.TRANSPORT_ERRORS as exc:
            raise (errors.write_failed(exc) or exc) from exc

    def delete_items(self, keys: Sequence[ItemKey]) -> None:
        if len(keys) > MAX_BATCH_WRITE:
            raise ValueError(f"at most {MAX_BATCH_WRITE} keys per BatchWriteItem, got {len(keys)}")
        pending: list[Any] = [{"DeleteRequest": {"Key": dict(k)}} for k in keys]
        for attempt in range(MAX_BATCH_ATTEMPTS):
            if not pending:
                return
            if attempt:
                # Full jitter: many shards backing off at once must not retry in lockstep.
                self._sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)))
            try:
                response = self.client.batch_write_item(RequestItems={self._table: pending})
            except ClientError as exc:
                if not errors.is_throttling(exc):
                    raise
                continue  # the whole batch was refused: retry all of it
            except errors.CONNECTION_ERRORS:
                continue  # deletes are idempotent: an attempt whose answer was lost is safe to repeat
            pending = list(response.get("UnprocessedItems", {}).get(self._table, []))
        if pending:
            raise ServiceUnavailable(
                f"{len(pending)} deletes still unprocessed after {MAX_BATCH_ATTEMPTS} attempts"
            )

    def delete_idempotency_record(self, user_id: str, idempotency_key: str, chat_id: int) -> None:
        try:
            self.client.delete_item(
                TableName=self._table,
                Key=keys.idempotency_key(user_id, idempotency_key),
                ConditionExpression="chatId = :chat",
                ExpressionAttributeValues={":chat": {"N": str(chat_id)}},
            )
        except errors.TRANSPORT_ERRORS as exc:
            if errors.code(exc) == "ConditionalCheckFailedException":
                return
            raise (errors.unavailable(exc) or exc) from exc


class EventBridgeContinuation:
    """:class:`aurora_chats.cleanup.ContinuationQueue`: re-publish an unfinished user deletion to the default bus,
    at once (``PutEvents``) or later (a one-shot EventBridge Scheduler schedule that puts the same event on the bus
    and deletes itself)."""

    def __init__(
        self,
        client: EventBridgeClient | None = None,
        bus_name: str = "default",
        scheduler: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._bus = bus_name
        self._scheduler = scheduler
        self._clock = clock

    def continue_user_deletion(self, user_id: str, round_: int, throttled: int = 0) -> None:
        client = self._client if self._client is not None else get_events_client()
        response = client.put_events(
            Entries=[
                {
                    "Source": CLEANUP_EVENTS_SOURCE,
                    "DetailType": USER_DELETION_CONTINUED,
                    "Detail": _continuation_detail(user_id, round_, throttled),
                    "EventBusName": self._bus,
                }
            ]
        )
        if response.get("FailedEntryCount", 0):
            raise ServiceUnavailable(f"could not publish the continuation: {response.get('Entries')}")

    def continue_user_deletion_later(
        self, user_id: str, round_: int, throttled: int, delay_seconds: int
    ) -> None:
        settings = get_settings()
        client = self._scheduler if self._scheduler is not None else get_scheduler_client()
        at = datetime.fromtimestamp(int(self._clock()) + delay_seconds, UTC)
        client.create_schedule(
            Name=f"user-deletion-{round_}-{uuid.uuid4().hex}",  # unique; ≤ 64 characters; no user id in it
            GroupName=settings.continuation_schedule_group,
            ScheduleExpression=f"at({at:%Y-%m-%dT%H:%M:%S})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target={
                "Arn": settings.continuation_bus_arn,
                "RoleArn": settings.continuation_role_arn,
                "Input": _continuation_detail(user_id, round_, throttled),
                "EventBridgeParameters": {
                    "DetailType": USER_DELETION_CONTINUED,
                    "Source": CLEANUP_EVENTS_SOURCE,
                },
                "RetryPolicy": {"MaximumRetryAttempts": 20, "MaximumEventAgeInSeconds": 21_600},
            },
        )


def _continuation_detail(user_id: str, round_: int, throttled: int) -> str:
    return json.dumps({"userId": user_id, "continuation": round_, "throttled": throttled})
