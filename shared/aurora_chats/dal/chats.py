""":class:`aurora_chats.ports.ChatRepository` on the single table: the chat API's four operations.

Writes carry a ``ClientRequestToken`` so botocore's retries of a transaction whose answer was lost are idempotent.
Failures become domain errors through :mod:`aurora_chats.dal.errors`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from aurora_chats.dal import errors, keys
from aurora_chats.dal.client import get_client
from aurora_chats.dal.items import (
    CHAT_COUNT,
    DELETED_AT,
    LISTED_UNTIL,
    Item,
    character_from,
    chat_from,
    chat_item,
    chat_summary_from,
    deleted_chat_item,
    idempotency_from,
    idempotency_item,
    message_item,
    n,
    s,
    user_entry_item,
)
from aurora_chats.errors import (
    AccountDeleted,
    ChatIdCollision,
    ChatLimitReached,
    ChatNotFound,
    IdempotencyKeyTaken,
    WriteConflict,
)
from aurora_chats.models import Character, Chat, IdempotencyRecord, Message, epoch_seconds
from aurora_chats.ports import ChatPage, ChatRepository
from aurora_chats.settings import Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# Positions in initialize's transaction: chat 0, list entry 1, first message 2, user state 3, idempotency record 4.
_STATE = 3
_IDEMPOTENCY = 4
DELETED_CHAT_TTL_SECONDS = 24 * 3600  # how long a repeated DELETE of a deleted chat still answers 200
# See list_chats: the Limit of the reads that follow a first Query which found only expired entries. None = no Limit
# (each reads up to DynamoDB's 1 MB page); tests set a small one to run the loop deep on moto, which has no 1 MB cap.
FOLLOW_UP_QUERY_LIMIT: int | None = None


class DynamoDBChatRepository:
    """:class:`aurora_chats.ports.ChatRepository` on one DynamoDB table."""

    def __init__(self, table_name: str | None = None, client: DynamoDBClient | None = None) -> None:
        self._table_name = table_name
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> DynamoDBChatRepository:
        return cls(settings.table_name)

    @property
    def client(self) -> DynamoDBClient:
        return self._client if self._client is not None else get_client()

    @property
    def table_name(self) -> str:
        """The given table, else the settings' (read on each use: a cached repository follows the settings)."""
        return self._table_name or get_settings().table_name

    # -- characters

    def get_character(self, character_id: int) -> Character | None:
        try:
            response = self.client.get_item(TableName=self.table_name, Key=keys.character_key(character_id))
        except errors.TRANSPORT_ERRORS as exc:
            raise (errors.unavailable(exc) or exc) from exc
        item = response.get("Item")
        return character_from(item) if item is not None else None

    # -- chats

    def create_chat(
        self,
        chat: Chat,
        first_message: Message,
        idempotency: IdempotencyRecord | None,
        replaces_stale_chat_id: int | None = None,
        max_chats: int | None = None,
    ) -> None:
        now = int(chat.created_at and epoch_seconds(chat.created_at))
        limit = max_chats if max_chats is not None else get_settings().max_chats_per_user
        items: list[Any] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": chat_item(chat),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {"Put": {"TableName": self.table_name, "Item": user_entry_item(chat)}},
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": message_item(chat, first_message),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            # The user's state item: counts the chat (the per-user limit, atomic with the chat itself) and refuses
            # it once the account is deleted (the marker UserDeleted writes before it deletes anything).
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": keys.user_state_key(chat.user_id),
                    "UpdateExpression": "ADD #count :one",
                    "ConditionExpression": (
                        "attribute_not_exists(#deleted) AND (attribute_not_exists(#count) OR #count < :max)"
                    ),
                    "ExpressionAttributeNames": {"#count": CHAT_COUNT, "#deleted": DELETED_AT},
                    "ExpressionAttributeValues": {":one": n(1), ":max": n(limit)},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ]
        if idempotency is not None:
            condition = "attribute_not_exists(PK) OR expiresAt < :now"
            values: Item = {":now": n(now)}
            if replaces_stale_chat_id is not None:
                condition += " OR chatId = :stale"
                values[":stale"] = n(replaces_stale_chat_id)
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": idempotency_item(idempotency),
                        "ConditionExpression": condition,
                        "ExpressionAttributeValues": values,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        try:
            self.client.transact_write_items(TransactItems=items, ClientRequestToken=str(uuid.uuid4()))
        except errors.TRANSPORT_ERRORS as exc:
            reasons = errors.cancellation_or_raise(exc)
            codes = errors.reason_codes(reasons)
            # Which condition failed decides the answer, in this order: a deleted account (403) before anything,
            # then an idempotent replay (200, even at the limit: it creates nothing), then the limit (409).
            state_failed = len(codes) > _STATE and codes[_STATE] == "ConditionalCheckFailed"
            state = (
                (reasons[_STATE].get("Item") or self._get_user_state(chat.user_id)) if state_failed else None
            )
            if state is not None and DELETED_AT in state:
                raise AccountDeleted() from exc
            if (
                idempotency is not None
                and len(codes) > _IDEMPOTENCY
                and codes[_IDEMPOTENCY] == "ConditionalCheckFailed"
            ):
                stored = reasons[_IDEMPOTENCY].get("Item") or self._get_idempotency(
                    idempotency.user_id, idempotency.key
                )
                if stored is None:  # expired or removed in between: try again
                    raise WriteConflict() from exc
                raise IdempotencyKeyTaken(idempotency_from(stored)) from exc
            if state_failed:
                if state is None:  # the state item went in between (its marker expired): try again
                    raise WriteConflict() from exc
                raise ChatLimitReached(limit) from exc
            if codes and codes[0] == "ConditionalCheckFailed":
                raise ChatIdCollision() from exc
            failure = errors.cancelled(codes)
            if failure is not None:
                raise failure from exc
            raise

    def _get_user_state(self, user_id: str) -> Item | None:
        """Only when a cancellation did not return the state item (DynamoDB returns it: ALL_OLD)."""
        try:
            response = self.client.get_item(
                TableName=self.table_name, Key=keys.user_state_key(user_id), ConsistentRead=True
            )
        except errors.TRANSPORT_ERRORS as exc:
            raise (errors.unavailable(exc) or exc) from exc
        return response.get("Item")

    def _get_idempotency(self, user_id: str, idem_key: str) -> Item | None:
        try:
            response = self.client.get_item(
                TableName=self.table_name, Key=keys.idempotency_key(user_id, idem_key), ConsistentRead=True
            )
        except errors.TRANSPORT_ERRORS as exc:
            raise (errors.unavailable(exc) or exc) from exc
        return response.get("Item")

    def get_chat(self, chat_id: int) -> Chat | None:
        try:
            response = self.client.get_item(
                TableName=self.table_name, Key=keys.chat_record_key(chat_id), ConsistentRead=True
            )
        except errors.TRANSPORT_ERRORS as exc:
            raise (errors.unavailable(exc) or exc) from exc
        item = response.get("Item")
        return chat_from(item) if item is not None else None

    def list_chats(self, user_id: str, limit: int, after_chat_id: int | None, now_epoch: int) -> ChatPage:
        # One more than asked for: tells whether another page exists without an empty trailing page.
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "FilterExpression": "attribute_not_exists(#until) OR #until > :now",
            "ExpressionAttributeNames": {"#until": LISTED_UNTIL},
            "ProjectionExpression": "chatId, characterId, createdAt",
            "ExpressionAttributeValues": {
                ":pk": s(keys.user_pk(user_id)),
                ":prefix": s(keys.CHAT_ENTRY_PREFIX),
                ":now": n(now_epoch),
            },
            "ScanIndexForward": False,
            "ConsistentRead": True,
            "Limit": limit + 1,
        }
        if after_chat_id is not None:
            # Built from the caller's own user id: no cursor can point a query at another partition.
            params["ExclusiveStartKey"] = keys.user_entry_key(user_id, after_chat_id)
        # Normally ONE Query (limit + 1 entries). Only when every entry it read was expired (TTL deletes lazily) and
        # more remain does it read on - without the small Limit, so each further Query reads up to 1 MB (~10,000
        # entries, 256 RCU) - until it finds a live entry or the partition's end: no page is empty while a cursor is
        # given, however long the run of expired entries (an SDK that stops paging at an empty page would miss the
        # older live chats otherwise).
        while True:
            try:
                response = self.client.query(**params)
            except errors.TRANSPORT_ERRORS as exc:
                raise (errors.unavailable(exc) or exc) from exc
            items = response.get("Items", [])
            last_key = response.get("LastEvaluatedKey")
            if items or last_key is None:
                break
            params["ExclusiveStartKey"] = last_key  # from our own query of the caller's partition
            params.pop("Limit", None)
            if FOLLOW_UP_QUERY_LIMIT is not None:
                params["Limit"] = FOLLOW_UP_QUERY_LIMIT
        chats = [chat_summary_from(item) for item in items]
        if len(chats) > limit:
            return ChatPage(chats=chats[:limit], last_chat_id=chats[limit - 1].chat_id)
        if last_key is not None:
            return ChatPage(chats=chats, last_chat_id=keys.chat_id_from_entry_sk(last_key["SK"]["S"]))
        return ChatPage(chats=chats, last_chat_id=None)

    def delete_chat(self, user_id: str, chat_id: int, now_epoch: int) -> bool:
        items: list[Any] = [
            {
                "Delete": {
                    "TableName": self.table_name,
                    "Key": keys.chat_record_key(chat_id),
                    "ConditionExpression": "userId = :user AND (attribute_not_exists(expiresAt) OR expiresAt > :now)",
                    "ExpressionAttributeValues": {":user": s(user_id), ":now": n(now_epoch)},
                }
            },
            # The entry and the count go together, the decrement conditioned on the entry: a chat is counted down
            # exactly once, by whichever write removes its entry (this one, or the purge after TTL).
            {
                "Delete": {
                    "TableName": self.table_name,
                    "Key": keys.user_entry_key(user_id, chat_id),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": keys.user_state_key(user_id),
                    "UpdateExpression": "ADD #count :minus",
                    "ConditionExpression": "attribute_not_exists(#deleted)",
                    "ExpressionAttributeNames": {"#count": CHAT_COUNT, "#deleted": DELETED_AT},
                    "ExpressionAttributeValues": {":minus": n(-1)},
                }
            },
        ]
        items.append(self._tombstone_put(user_id, chat_id, now_epoch))
        try:
            self.client.transact_write_items(TransactItems=items, ClientRequestToken=str(uuid.uuid4()))
        except errors.TRANSPORT_ERRORS as exc:
            reasons = errors.cancellation_or_raise(exc)
            codes = errors.reason_codes(reasons)
            if len(codes) > 2 and codes[2] == "ConditionalCheckFailed":
                raise AccountDeleted() from exc
            if "ConditionalCheckFailed" in codes[:2]:
                if self._deleted_by(user_id, chat_id, now_epoch):
                    return False  # a repeat of this caller's own delete (e.g. an SDK retry after a lost 200)
                raise ChatNotFound(chat_id) from exc
            failure = errors.cancelled(codes)
            if failure is not None:
                raise failure from exc
            raise
        return True

    # -- retry-safe delete: a tombstone in the caller's own partition, written by the delete's transaction

    def _tombstone_put(self, user_id: str, chat_id: int, now_epoch: int) -> dict[str, Any]:
        """One more Put in the delete's transaction (~70-byte item: +2 WCU, transactional), expiring by TTL."""
        item = deleted_chat_item(user_id, chat_id, now_epoch + DELETED_CHAT_TTL_SECONDS)
        return {"Put": {"TableName": self.table_name, "Item": item}}

    def _deleted_by(self, user_id: str, chat_id: int, now_epoch: int) -> bool:
        """Whether this user deleted this chat within the tombstone's lifetime: 1 consistent GetItem (1 RCU).

        Only the caller's partition is read, so another user's delete of the same id is never found (404)."""
        try:
            response = self.client.get_item(
                TableName=self.table_name, Key=keys.deleted_chat_key(user_id, chat_id), ConsistentRead=True
            )
        except errors.TRANSPORT_ERRORS as exc:
            raise (errors.unavailable(exc) or exc) from exc
        item = response.get("Item")
        return item is not None and int(item["expiresAt"]["N"]) > now_epoch  # TTL deletes lazily


_repository: ChatRepository | None = None


def chat_repository() -> ChatRepository:
    """The API functions' repository, made on first use and kept per container. Its table and client follow the
    settings and :func:`aurora_chats.dal.client.get_client`, so keeping it changes nothing but the allocation."""
    global _repository
    if _repository is None:
        _repository = DynamoDBChatRepository()
    return _repository


def use_chat_repository(repository: ChatRepository | None) -> None:
    """Make :func:`chat_repository` answer ``repository`` (None: the DynamoDB one again). The bench's stub."""
    global _repository
    _repository = repository
