"""The cleanup's data layer: :class:`aurora_chats.cleanup.CleanupStore` on the single table, plus the one
non-DynamoDB adapter the cleanup needs (publishing a user deletion's continuation to EventBridge).

Key builders and item layout live in :mod:`aurora_chats.dynamodb` (the access-pattern table); nothing here spells
a key. DynamoDB calls:

=====================  ==========================================================================================
operation              DynamoDB calls
=====================  ==========================================================================================
chat partition page    1 strongly consistent keys-only ``Query`` of ``CHAT#<chatId>`` (``PAGE_SIZE`` keys)
user page              1 strongly consistent keys-only ``Query`` of ``USER#<userId>`` (``PAGE_SIZE`` keys); a list
                       entry's SK names its chat record (``CHAT#<chatId>`` / ``META``)
delete items           1 ``BatchWriteItem`` of at most 25 deletes, plus one per retry of ``UnprocessedItems``
                       (exponential backoff with full jitter; throttling errors are retried the same way)
idempotency record     1 ``DeleteItem`` with condition ``chatId = :chatId`` (a failed condition means it is gone
                       or already serves a newer chat under the same key: both fine)
orphan scan (admin)    keys-only strongly consistent ``Scan`` pages + 1 consistent ``GetItem`` per candidate;
                       ``chats-admin`` only, with operator credentials: the Lambda functions never Scan
=====================  ==========================================================================================

A 2,000-message purge therefore costs 1 ``BatchWriteItem`` (the list entry), 1 ``DeleteItem`` (only when the chat
was started with an ``Idempotency-Key``), 3 ``Query`` pages and 80 ``BatchWriteItem`` calls: 85 (counted in
``tests/test_cleanup.py``; 84 on moto, which omits the empty page DynamoDB answers after a full one).

The stream record's item images are DynamoDB JSON, so turning a ``REMOVE`` record into a
:class:`~aurora_chats.cleanup.RemovedChat` is this module's job too (:func:`removed_chat`).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from aurora_chats.cleanup import (
    CLEANUP_EVENTS_SOURCE,
    USER_DELETION_CONTINUED,
    ItemKey,
    KeyPage,
    RemovedChat,
    UserItem,
    UserItemsPage,
)
from aurora_chats.dynamodb import (
    CHAT_ENTRY_PREFIX,
    CHAT_META_SK,
    THROTTLING_CODES,
    chat_pk,
    get_client,
    idempotency_sk,
    key,
    user_chat_sk,
    user_pk,
)
from aurora_chats.errors import ServiceUnavailable
from aurora_chats.observability import logger
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
CHAT_PK_PREFIX = chat_pk(0).removesuffix("0")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_chat_removal(record: Mapping[str, Any]) -> bool:
    """Whether a stream record is the ``REMOVE`` of a chat record (what the template's filter lets through)."""
    keys = (record.get("dynamodb") or {}).get("Keys") or {}
    pk = str(keys.get("PK", {}).get("S", ""))
    sk = str(keys.get("SK", {}).get("S", ""))
    return record.get("eventName") == "REMOVE" and pk.startswith(CHAT_PK_PREFIX) and sk == CHAT_META_SK


def removed_chat(record: Mapping[str, Any]) -> RemovedChat:
    """The chat a stream ``REMOVE`` record of a chat record is about (``ValueError`` for any other record)."""
    if not is_chat_removal(record):
        raise ValueError(
            f"not the removal of a chat record: {record.get('eventName')} {record.get('dynamodb')}"
        )
    body = record["dynamodb"]
    chat_id = int(body["Keys"]["PK"]["S"].removeprefix(CHAT_PK_PREFIX))
    old = body.get("OldImage") or {}
    identity = record.get("userIdentity") or {}
    return RemovedChat(
        chat_id=chat_id,
        user_id=old["userId"]["S"] if "userId" in old else None,
        idempotency_key=old["idempotencyKey"]["S"] if "idempotencyKey" in old else None,
        expired=identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL,
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

    def _query_keys(self, pk: str, start: ItemKey | None) -> tuple[list[ItemKey], ItemKey | None]:
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ProjectionExpression": "PK, SK",
            "ConsistentRead": True,
            "Limit": self._page_size,
        }
        if start is not None:
            params["ExclusiveStartKey"] = dict(start)
        try:
            response = self.client.query(**params)
        except ClientError as exc:
            if _code(exc) in THROTTLING_CODES:
                raise ServiceUnavailable() from exc
            raise
        items: list[ItemKey] = [key(i["PK"]["S"], i["SK"]["S"]) for i in response.get("Items", [])]
        return items, response.get("LastEvaluatedKey")

    def chat_items_page(self, chat_id: int, start: ItemKey | None) -> KeyPage:
        keys, next_start = self._query_keys(chat_pk(chat_id), start)
        return KeyPage(keys=keys, next_start=next_start)

    def user_items_page(self, user_id: str, start: ItemKey | None) -> UserItemsPage:
        user_keys, next_start = self._query_keys(user_pk(user_id), start)
        items: list[UserItem] = []
        for item_key in user_keys:
            sk = str(item_key["SK"]["S"])
            chat_record = (
                key(chat_pk(int(sk.removeprefix(CHAT_ENTRY_PREFIX))), CHAT_META_SK)
                if sk.startswith(CHAT_ENTRY_PREFIX)
                else None
            )
            items.append(UserItem(key=item_key, chat_record_key=chat_record))
        return UserItemsPage(items=items, next_start=next_start)

    def owner_keys(self, chat: RemovedChat) -> list[ItemKey]:
        if chat.user_id is None:
            logger.warning(
                "removed chat record without an old image: list entry left", extra={"chatId": chat.chat_id}
            )
            return []
        return [key(user_pk(chat.user_id), user_chat_sk(chat.chat_id))]

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
                if _code(exc) not in THROTTLING_CODES:
                    raise
                continue  # the whole batch was refused: retry all of it
            except (EndpointUnreachable, HTTPClientError):
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
                Key=key(user_pk(user_id), idempotency_sk(idempotency_key)),
                ConditionExpression="chatId = :chat",
                ExpressionAttributeValues={":chat": {"N": str(chat_id)}},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return
            if _code(exc) in THROTTLING_CODES:
                raise ServiceUnavailable() from exc
            raise

    # ------------------------------------------------------------ operator only (chats-admin; never the Lambdas)

    def chat_record_exists(self, chat_id: int) -> bool:
        """1 strongly consistent ``GetItem`` of ``CHAT#<chatId>`` / ``META`` (keys only)."""
        response = self.client.get_item(
            TableName=self._table,
            Key=key(chat_pk(chat_id), CHAT_META_SK),
            ProjectionExpression="PK",
            ConsistentRead=True,
        )
        return "Item" in response

    def orphaned_chat_candidates(self) -> Iterator[int]:
        """Chat partitions that have items but no chat record, by a paginated keys-only strongly consistent
        ``Scan`` (``PAGE_SIZE`` items a page, filtered to ``CHAT#`` keys; read-only, so safe while the API and
        the cleanup function run). Only candidates: a caller must re-check :meth:`chat_record_exists` before it
        deletes anything. Each chat id is yielded at most once; non-numeric ``CHAT#`` keys are skipped.

        A Scan returns each partition's items together, so only the current partition is held in memory."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "ProjectionExpression": "PK, SK",
            "FilterExpression": "begins_with(PK, :chat)",
            "ExpressionAttributeValues": {":chat": {"S": CHAT_PK_PREFIX}},
            "ConsistentRead": True,
            "Limit": self._page_size,
        }
        yielded: set[int] = set()
        current: str | None = None
        current_has_record = False
        while True:
            response = self.client.scan(**params)
            for item in response.get("Items", []):
                pk, sk = item["PK"]["S"], item["SK"]["S"]
                if pk != current:
                    if current is not None and not current_has_record:
                        chat_id = _chat_id(current)
                        if chat_id is not None and chat_id not in yielded:
                            yielded.add(chat_id)
                            yield chat_id
                    current, current_has_record = pk, False
                current_has_record = current_has_record or sk == CHAT_META_SK
            start = response.get("LastEvaluatedKey")
            if start is None:
                break
            params["ExclusiveStartKey"] = start
        if current is not None and not current_has_record:
            chat_id = _chat_id(current)
            if chat_id is not None and chat_id not in yielded:
                yield chat_id


def _chat_id(pk: str) -> int | None:
    digits = pk.removeprefix(CHAT_PK_PREFIX)
    return int(digits) if digits.isdigit() else None


# ---------------------------------------------------------------- continuation (EventBridge)

_events_client: EventBridgeClient | None = None


def get_events_client() -> EventBridgeClient:
    """The EventBridge client, created on first use and cached per container (same retry policy as DynamoDB)."""
    global _events_client
    if _events_client is None:
        import boto3
        from botocore.config import Config

        settings = get_settings()
        _events_client = boto3.client(
            "events",
            config=Config(
                retries={"mode": "standard", "total_max_attempts": settings.ddb_max_attempts},
                connect_timeout=settings.ddb_connect_timeout,
                read_timeout=settings.ddb_read_timeout,
            ),
        )
    return _events_client


def reset_events_client() -> None:
    global _events_client
    _events_client = None


class EventBridgeContinuation:
    """:class:`aurora_chats.cleanup.ContinuationQueue`: re-publish an unfinished user deletion to the default bus."""

    def __init__(self, client: EventBridgeClient | None = None, bus_name: str = "default") -> None:
        self._client = client
        self._bus = bus_name

    def continue_user_deletion(self, user_id: str, round_: int) -> None:
        client = self._client if self._client is not None else get_events_client()
        response = client.put_events(
            Entries=[
                {
                    "Source": CLEANUP_EVENTS_SOURCE,
                    "DetailType": USER_DELETION_CONTINUED,
                    "Detail": json.dumps({"userId": user_id, "continuation": round_}),
                    "EventBusName": self._bus,
                }
            ]
        )
        if response.get("FailedEntryCount", 0):
            raise ServiceUnavailable(f"could not publish the continuation: {response.get('Entries')}")
