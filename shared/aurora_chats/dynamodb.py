"""The single-table DynamoDB data layer: the only code that knows keys, item shapes and DynamoDB error codes.

Access patterns (table ``PK``/``SK`` strings, TTL on ``expiresAt``, stream NEW_AND_OLD_IMAGES):

=========================  ===========================  ==============================  ==============================
item                       PK                           SK                              holds
=========================  ===========================  ==============================  ==============================
character                  ``CHARACTER#<characterId>``  ``PROFILE``                     name, firstMes, alternateGreetings
chat (canonical record)    ``CHAT#<chatId>``            ``META``                        userId, characterId, createdAt,
                                                                                        expiresAt?, idempotencyKey?
user's chat entry          ``USER#<userId>``            ``CHAT#<chatId, 16 digits>``    chatId, characterId, createdAt,
                                                                                        expiresAt?
message                    ``CHAT#<chatId>``            ``MSG#<ULID>``                  role, content, createdAt,
                                                                                        expiresAt?
idempotency record         ``USER#<userId>``            ``IDEMPOTENCY#<key>``           chatId, characterId, createdAt,
                                                                                        message, expiresAt (24 h)
=========================  ===========================  ==============================  ==============================

=====================  ==========================================================================================
operation              DynamoDB calls
=====================  ==========================================================================================
list                   1 strongly consistent ``Query`` on ``USER#<userId>``, ``begins_with(SK, "CHAT#")``,
                       descending (chat ids are time-ordered, so newest first), expired entries filtered out
initialize             ``GetItem`` of the character (skipped while cached), then 1 ``TransactWriteItems``: chat
                       (``attribute_not_exists``), user entry, first message, idempotency record (if a key was sent)
initialize replay      the same ``TransactWriteItems`` is cancelled by the idempotency record's condition, which
                       returns the stored record; 1 consistent ``GetItem`` confirms the chat still exists
delete                 1 ``TransactWriteItems``: chat record (condition: owned by the caller and not expired) and
                       the user entry; a cancelled condition is "not found"
=====================  ==========================================================================================

Writes carry a ``ClientRequestToken`` so botocore's retries of a transaction whose answer was lost are idempotent.

Failures, after botocore's retries (``standard`` mode, bounded attempts, connect/read timeouts):

=========================================  =====================  ==========================================
what the last attempt got                  read (GetItem, Query)  write (TransactWriteItems)
=========================================  =====================  ==========================================
throttling / 5xx / connection refused      ServiceUnavailable     ServiceUnavailable (nothing was written), or
                                                                  OutcomeUnknown if an earlier attempt's
                                                                  answer was lost
answer lost (read timeout, reset)          ServiceUnavailable     OutcomeUnknown (it may have been written)
``TransactionInProgressException``         -                      OutcomeUnknown (an earlier attempt runs)
cancelled: ``TransactionConflict``         -                      WriteConflict (the use case retries)
=========================================  =====================  ==========================================
"""

from __future__ import annotations

import json
import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from aurora_chats.errors import (
    ChatIdCollision,
    ChatNotFound,
    IdempotencyKeyTaken,
    OutcomeUnknown,
    ServiceUnavailable,
    WriteConflict,
)
from aurora_chats.models import Character, Chat, ChatSummary, IdempotencyRecord, Message
from aurora_chats.ports import ChatPage
from aurora_chats.settings import Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Item = dict[str, Any]

CHAT_ID_DIGITS = 16
MAX_QUERIES_PER_PAGE = 4  # see list_chats: extra reads only past pages made entirely of expired entries
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)

# ---------------------------------------------------------------- key builders


def character_pk(character_id: int) -> str:
    return f"CHARACTER#{character_id}"


CHARACTER_SK = "PROFILE"
CHAT_META_SK = "META"
CHAT_ENTRY_PREFIX = "CHAT#"
MESSAGE_PREFIX = "MSG#"
IDEMPOTENCY_PREFIX = "IDEMPOTENCY#"


def chat_pk(chat_id: int) -> str:
    return f"CHAT#{chat_id}"


def user_pk(user_id: str) -> str:
    return f"USER#{user_id}"


def user_chat_sk(chat_id: int) -> str:
    return f"{CHAT_ENTRY_PREFIX}{chat_id:0{CHAT_ID_DIGITS}d}"


def message_sk(message_id: str) -> str:
    return f"{MESSAGE_PREFIX}{message_id}"


def idempotency_sk(key: str) -> str:
    return f"{IDEMPOTENCY_PREFIX}{key}"


def key(pk: str, sk: str) -> Item:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


# ---------------------------------------------------------------- client

_client: DynamoDBClient | None = None


def get_client() -> DynamoDBClient:
    """The DynamoDB client, created on first use (never at import) and cached per container.

    Endpoint and region come from the standard AWS settings (``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_REGION``...).
    Retries: botocore's ``standard`` mode (throttling, 5xx and transaction conflicts are retried with backoff),
    bounded attempts, and timeouts well below the function timeout so a 503 can still be answered.
    """
    global _client
    if _client is None:
        from botocore.config import Config
        from botocore.session import get_session

        settings = get_settings()
        # botocore's session, not boto3's: the very same client without importing boto3 (~20 ms of cold start).
        session = get_session()
        session.register_component("data_loader", _dynamodb_loader(session.get_component("data_loader")))
        client: DynamoDBClient = session.create_client(  # type: ignore[assignment]
            "dynamodb",
            config=Config(
                retries={"mode": "standard", "total_max_attempts": settings.ddb_max_attempts},
                connect_timeout=settings.ddb_connect_timeout,
                read_timeout=settings.ddb_read_timeout,
                tcp_keepalive=True,
            ),
        )
        client.meta.events.register("before-call.dynamodb", _start_call)
        client.meta.events.register("needs-retry.dynamodb", _after_attempt)
        _client = client
    return _client


def _dynamodb_loader(standard: Any) -> Any:
    """botocore's data loader (same search paths, ``AWS_DATA_PATH`` included) for a session that only makes
    DynamoDB clients.

    To load a model, botocore first lists every service it could load - about 450 directories listed and their
    files stat-ed, ~11 ms of CPU on every cold start - only to raise ``UnknownServiceError`` for an unknown name.
    Here the known services are DynamoDB alone, checked in its own directory; everything else is botocore's.
    """
    from botocore.exceptions import DataNotFoundError
    from botocore.loaders import Loader

    class DynamoDBLoader(Loader):
        def list_available_services(self, type_name: str) -> list[str]:
            try:
                self.list_api_versions("dynamodb", type_name)
            except DataNotFoundError:
                return []
            return ["dynamodb"]

    return DynamoDBLoader(extra_search_paths=list(standard.search_paths), include_default_search_paths=False)


def reset_client() -> None:
    global _client
    _client = None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _reasons(exc: ClientError) -> list[dict[str, Any]]:
    return list(exc.response.get("CancellationReasons", []) or [])  # type: ignore[arg-type]


# True once an attempt of the current call was sent but its answer was lost (read timeout, connection reset): from
# then on, a later attempt's throttling answer no longer proves that nothing was written.
_answer_lost: ContextVar[bool] = ContextVar("aurora_chats_ddb_answer_lost", default=False)


def _start_call(**_: Any) -> None:
    _answer_lost.set(False)


def _after_attempt(caught_exception: Exception | None = None, **_: Any) -> None:
    if isinstance(caught_exception, HTTPClientError):
        _answer_lost.set(True)


def _unavailable(exc: Exception) -> ServiceUnavailable | None:
    """A failed read (or a write DynamoDB refused): the domain error, or None to re-raise ``exc`` as it is."""
    if isinstance(exc, ClientError):
        return ServiceUnavailable() if _code(exc) in THROTTLING_CODES else None
    if isinstance(exc, EndpointUnreachable | HTTPClientError):
        return ServiceUnavailable()
    return None


def _write_failed(exc: Exception) -> ServiceUnavailable | OutcomeUnknown | None:
    """A failed write: honest about whether it may have happened."""
    if isinstance(exc, HTTPClientError):
        return OutcomeUnknown()
    if isinstance(exc, ClientError) and _code(exc) == "TransactionInProgressException":
        return OutcomeUnknown()
    unavailable = _unavailable(exc)
    if unavailable is not None and _answer_lost.get():
        return OutcomeUnknown()
    return unavailable


_TRANSPORT_ERRORS = (ClientError, EndpointUnreachable, HTTPClientError)


# ---------------------------------------------------------------- item shapes


def _s(value: str) -> Item:
    return {"S": value}


def _n(value: int) -> Item:
    return {"N": str(value)}


def _with_expiry(item: Item, expires_at: int | None) -> Item:
    if expires_at is not None:
        item["expiresAt"] = _n(expires_at)
    return item


def chat_item(chat: Chat) -> Item:
    item = {
        **key(chat_pk(chat.chat_id), CHAT_META_SK),
        "type": _s("chat"),
        "chatId": _n(chat.chat_id),
        "userId": _s(chat.user_id),
        "characterId": _n(chat.character_id),
        "createdAt": _s(chat.created_at),
    }
    if chat.idempotency_key is not None:
        item["idempotencyKey"] = _s(chat.idempotency_key)
    return _with_expiry(item, chat.expires_at)


def user_entry_item(chat: Chat) -> Item:
    item = {
        **key(user_pk(chat.user_id), user_chat_sk(chat.chat_id)),
        "type": _s("userChat"),
        "chatId": _n(chat.chat_id),
        "characterId": _n(chat.character_id),
        "createdAt": _s(chat.created_at),
    }
    return _with_expiry(item, chat.expires_at)


def _message_attributes(message: Message) -> Item:
    return {
        "messageId": _s(message.message_id),
        "role": _s(message.role),
        "content": _s(message.content),
        "createdAt": _s(message.created_at),
    }


def message_item(chat: Chat, message: Message) -> Item:
    item = {
        **key(chat_pk(chat.chat_id), message_sk(message.message_id)),
        "type": _s("message"),
        **_message_attributes(message),
    }
    return _with_expiry(item, chat.expires_at)


def idempotency_item(record: IdempotencyRecord) -> Item:
    return {
        **key(user_pk(record.user_id), idempotency_sk(record.key)),
        "type": _s("idempotency"),
        "chatId": _n(record.chat_id),
        "characterId": _n(record.character_id),
        "createdAt": _s(record.created_at),
        "message": {"M": _message_attributes(record.message)},
        "expiresAt": _n(record.expires_at),
    }


def character_item(character: Character, card: dict[str, Any] | None = None) -> Item:
    item: Item = {
        **key(character_pk(character.character_id), CHARACTER_SK),
        "type": _s("character"),
        "characterId": _n(character.character_id),
        "name": _s(character.name),
        "firstMes": _s(character.first_mes),
        "alternateGreetings": {"L": [_s(g) for g in character.alternate_greetings]},
    }
    if card is not None:
        item["card"] = _s(json.dumps(card, separators=(",", ":"), ensure_ascii=False))
    return item


MAX_ITEM_BYTES = 400 * 1024  # DynamoDB's item size limit (names and values, UTF-8)
# A message's content is stored twice (message item, idempotency record): each item's keys (user id, idempotency
# key) and other attributes take well under 2 KB.
MAX_MESSAGE_CONTENT_BYTES = MAX_ITEM_BYTES - 2048


def item_bytes(item: Item) -> int:
    """An item's size as DynamoDB counts it against :data:`MAX_ITEM_BYTES` (an upper bound for numbers).

    ``UnicodeEncodeError`` for a string botocore cannot send either (a lone surrogate has no UTF-8 form).
    """

    def value_bytes(value: Item) -> int:
        ((kind, inner),) = value.items()
        if kind == "S":
            return len(str(inner).encode("utf-8"))  # UnicodeEncodeError: not storable (lone surrogate)
        if kind == "N":
            return len(str(inner)) + 1
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "L":
            return 3 + sum(1 + value_bytes(v) for v in inner)
        if kind == "M":
            return 3 + sum(1 + len(k.encode()) + value_bytes(v) for k, v in inner.items())
        return len(inner) if isinstance(inner, bytes | str) else sum(len(v) for v in inner)

    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


def _chat_from(item: Item) -> Chat:
    return Chat(
        chat_id=int(item["chatId"]["N"]),
        user_id=item["userId"]["S"],
        character_id=int(item["characterId"]["N"]),
        created_at=item["createdAt"]["S"],
        expires_at=int(item["expiresAt"]["N"]) if "expiresAt" in item else None,
        idempotency_key=item["idempotencyKey"]["S"] if "idempotencyKey" in item else None,
    )


def _idempotency_from(item: Item) -> IdempotencyRecord:
    message = item["message"]["M"]
    return IdempotencyRecord(
        user_id=item["PK"]["S"].removeprefix("USER#"),
        key=item["SK"]["S"].removeprefix(IDEMPOTENCY_PREFIX),
        chat_id=int(item["chatId"]["N"]),
        character_id=int(item["characterId"]["N"]),
        created_at=item["createdAt"]["S"],
        message=Message(
            message_id=message["messageId"]["S"],
            role=message["role"]["S"],
            content=message["content"]["S"],
            created_at=message["createdAt"]["S"],
        ),
        expires_at=int(item["expiresAt"]["N"]),
    )


# ---------------------------------------------------------------- repository


class DynamoDBChatRepository:
    """:class:`aurora_chats.ports.ChatRepository` on one DynamoDB table."""

    def __init__(self, table_name: str | None = None, client: DynamoDBClient | None = None) -> None:
        self._table = table_name or get_settings().table_name
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> DynamoDBChatRepository:
        return cls(settings.table_name)

    @property
    def client(self) -> DynamoDBClient:
        return self._client if self._client is not None else get_client()

    @property
    def table_name(self) -> str:
        return self._table

    # -- characters

    def get_character(self, character_id: int) -> Character | None:
        try:
            response = self.client.get_item(
                TableName=self._table, Key=key(character_pk(character_id), CHARACTER_SK)
            )
        except _TRANSPORT_ERRORS as exc:
            raise (_unavailable(exc) or exc) from exc
        item = response.get("Item")
        if item is None:
            return None
        return Character(
            character_id=int(item["characterId"]["N"]),
            name=item["name"]["S"],
            first_mes=item.get("firstMes", {}).get("S", ""),
            alternate_greetings=tuple(g["S"] for g in item.get("alternateGreetings", {}).get("L", [])),
        )

    def put_character(self, character: Character, card: dict[str, Any] | None = None) -> None:
        self.client.put_item(TableName=self._table, Item=character_item(character, card))

    # -- chats

    def create_chat(
        self,
        chat: Chat,
        first_message: Message,
        idempotency: IdempotencyRecord | None,
        replaces_stale_chat_id: int | None = None,
    ) -> None:
        now = int(chat.created_at and _epoch(chat.created_at))
        items: list[Any] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": chat_item(chat),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {"Put": {"TableName": self._table, "Item": user_entry_item(chat)}},
            {
                "Put": {
                    "TableName": self._table,
                    "Item": message_item(chat, first_message),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]
        if idempotency is not None:
            condition = "attribute_not_exists(PK) OR expiresAt < :now"
            values: Item = {":now": _n(now)}
            if replaces_stale_chat_id is not None:
                condition += " OR chatId = :stale"
                values[":stale"] = _n(replaces_stale_chat_id)
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": idempotency_item(idempotency),
                        "ConditionExpression": condition,
                        "ExpressionAttributeValues": values,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        try:
            self.client.transact_write_items(TransactItems=items, ClientRequestToken=str(uuid.uuid4()))
        except _TRANSPORT_ERRORS as exc:
            if not isinstance(exc, ClientError) or _code(exc) != "TransactionCanceledException":
                raise (_write_failed(exc) or exc) from exc
            reasons = _reasons(exc)
            codes = [str(r.get("Code", "None")) for r in reasons]
            if idempotency is not None and len(codes) > 3 and codes[3] == "ConditionalCheckFailed":
                stored = reasons[3].get("Item") or self._get_idempotency(idempotency.user_id, idempotency.key)
                if stored is None:  # expired or removed in between: try again
                    raise WriteConflict() from exc
                raise IdempotencyKeyTaken(_idempotency_from(stored)) from exc
            if codes and codes[0] == "ConditionalCheckFailed":
                raise ChatIdCollision() from exc
            if "TransactionConflict" in codes:
                raise WriteConflict() from exc
            if any(c in {"ThrottlingError", "ProvisionedThroughputExceeded"} for c in codes):
                raise (OutcomeUnknown() if _answer_lost.get() else ServiceUnavailable()) from exc
            raise

    def _get_idempotency(self, user_id: str, idem_key: str) -> Item | None:
        try:
            response = self.client.get_item(
                TableName=self._table,
                Key=key(user_pk(user_id), idempotency_sk(idem_key)),
                ConsistentRead=True,
            )
        except _TRANSPORT_ERRORS as exc:
            raise (_unavailable(exc) or exc) from exc
        return response.get("Item")

    def get_chat(self, chat_id: int) -> Chat | None:
        try:
            response = self.client.get_item(
                TableName=self._table, Key=key(chat_pk(chat_id), CHAT_META_SK), ConsistentRead=True
            )
        except _TRANSPORT_ERRORS as exc:
            raise (_unavailable(exc) or exc) from exc
        item = response.get("Item")
        return _chat_from(item) if item is not None else None

    def list_chats(self, user_id: str, limit: int, after_chat_id: int | None, now_epoch: int) -> ChatPage:
        # One more than asked for: tells whether another page exists without an empty trailing page.
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "FilterExpression": "attribute_not_exists(expiresAt) OR expiresAt > :now",
            "ProjectionExpression": "chatId, characterId, createdAt",
            "ExpressionAttributeValues": {
                ":pk": _s(user_pk(user_id)),
                ":prefix": _s(CHAT_ENTRY_PREFIX),
                ":now": _n(now_epoch),
            },
            "ScanIndexForward": False,
            "ConsistentRead": True,
            "Limit": limit + 1,
        }
        if after_chat_id is not None:
            # Built from the caller's own user id: no cursor can point a query at another partition.
            params["ExclusiveStartKey"] = key(user_pk(user_id), user_chat_sk(after_chat_id))
        # Normally ONE Query. Only when every entry it read was expired (TTL deletes lazily) and more remain does it
        # read on, a bounded number of times, so that a page is not empty while older live chats exist: an SDK that
        # stops paging at an empty page would otherwise miss them.
        for attempt in range(1, MAX_QUERIES_PER_PAGE + 1):
            try:
                response = self.client.query(**params)
            except _TRANSPORT_ERRORS as exc:
                raise (_unavailable(exc) or exc) from exc
            items = response.get("Items", [])
            last_key = response.get("LastEvaluatedKey")
            if items or last_key is None or attempt == MAX_QUERIES_PER_PAGE:
                break
            params["ExclusiveStartKey"] = last_key  # from our own query of the caller's partition
        chats = [
            ChatSummary(
                chat_id=int(item["chatId"]["N"]),
                character_id=int(item["characterId"]["N"]),
                created_at=item["createdAt"]["S"],
            )
            for item in items
        ]
        if len(chats) > limit:
            return ChatPage(chats=chats[:limit], last_chat_id=chats[limit - 1].chat_id)
        if last_key is not None:
            return ChatPage(
                chats=chats, last_chat_id=int(last_key["SK"]["S"].removeprefix(CHAT_ENTRY_PREFIX))
            )
        return ChatPage(chats=chats, last_chat_id=None)

    def delete_chat(self, user_id: str, chat_id: int, now_epoch: int) -> None:
        items: list[Any] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": key(chat_pk(chat_id), CHAT_META_SK),
                    "ConditionExpression": "userId = :user AND (attribute_not_exists(expiresAt) OR expiresAt > :now)",
                    "ExpressionAttributeValues": {":user": _s(user_id), ":now": _n(now_epoch)},
                }
            },
            {"Delete": {"TableName": self._table, "Key": key(user_pk(user_id), user_chat_sk(chat_id))}},
        ]
        try:
            self.client.transact_write_items(TransactItems=items, ClientRequestToken=str(uuid.uuid4()))
        except _TRANSPORT_ERRORS as exc:
            if not isinstance(exc, ClientError) or _code(exc) != "TransactionCanceledException":
                raise (_write_failed(exc) or exc) from exc
            codes = [str(r.get("Code", "None")) for r in _reasons(exc)]
            if codes and codes[0] == "ConditionalCheckFailed":
                raise ChatNotFound(chat_id) from exc
            if "TransactionConflict" in codes:
                raise WriteConflict() from exc
            if any(c in {"ThrottlingError", "ProvisionedThroughputExceeded"} for c in codes):
                raise (OutcomeUnknown() if _answer_lost.get() else ServiceUnavailable()) from exc
            raise


def _epoch(timestamp: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())
