"""Item shapes (DynamoDB JSON) of the single table, their sizes, and the domain objects read back from them."""

from __future__ import annotations

import json
from typing import Any

from aurora_chats.dal.keys import (
    character_key,
    chat_pk,
    chat_record_key,
    deleted_chat_key,
    idempotency_key,
    idempotency_key_from_sk,
    key,
    message_sk,
    user_entry_key,
    user_id_from_pk,
)
from aurora_chats.models import Character, Chat, ChatSummary, IdempotencyRecord, Message

Item = dict[str, Any]

MAX_ITEM_BYTES = 400 * 1024  # DynamoDB's item size limit (names and values, UTF-8)
# A message's content is stored twice (message item, idempotency record): each item's keys (user id, idempotency
# key) and other attributes take well under 2 KB.
MAX_MESSAGE_CONTENT_BYTES = MAX_ITEM_BYTES - 2048


def s(value: str) -> Item:
    return {"S": value}


def n(value: int) -> Item:
    return {"N": str(value)}


def _with_expiry(item: Item, expires_at: int | None) -> Item:
    if expires_at is not None:
        item["expiresAt"] = n(expires_at)
    return item


def chat_item(chat: Chat) -> Item:
    item = {
        **chat_record_key(chat.chat_id),
        "type": s("chat"),
        "chatId": n(chat.chat_id),
        "userId": s(chat.user_id),
        "characterId": n(chat.character_id),
        "createdAt": s(chat.created_at),
    }
    if chat.idempotency_key is not None:
        item["idempotencyKey"] = s(chat.idempotency_key)
    return _with_expiry(item, chat.expires_at)


# The user's state item: how many chats are listed (the per-user limit) and, once the account is deleted, when.
CHAT_COUNT = "chatCount"
DELETED_AT = "deletedAt"
# The IdRegion of the region whose cleanup wrote the marker last (a global table: the other region's stream sees the
# replicated marker arrive, and runs its own deletion round; see aurora_chats.cleanup).
DELETED_IN_REGION = "deletedInRegion"
# A list entry's end of retention. Deliberately NOT the TTL attribute: only the purge (stream REMOVE of the chat
# record) deletes an entry, in the same transaction that decrements the chat count, conditioned on the entry
# existing. Were TTL to remove entries on its own, the count would never learn of it.
LISTED_UNTIL = "listedUntil"


def user_entry_item(chat: Chat) -> Item:
    item = {
        **user_entry_key(chat.user_id, chat.chat_id),
        "type": s("userChat"),
        "chatId": n(chat.chat_id),
        "characterId": n(chat.character_id),
        "createdAt": s(chat.created_at),
    }
    if chat.expires_at is not None:
        item[LISTED_UNTIL] = n(chat.expires_at)
    return item


def deleted_chat_item(user_id: str, chat_id: int, expires_at: int) -> Item:
    """The tombstone a delete leaves in the user's partition: ~70 bytes, removed by TTL after ``expires_at``."""
    return {
        **deleted_chat_key(user_id, chat_id),
        "type": s("deletedChat"),
        "chatId": n(chat_id),
        "expiresAt": n(expires_at),
    }


def _message_attributes(message: Message) -> Item:
    return {
        "messageId": s(message.message_id),
        "role": s(message.role),
        "content": s(message.content),
        "createdAt": s(message.created_at),
    }


def message_item(chat: Chat, message: Message) -> Item:
    item = {
        **key(chat_pk(chat.chat_id), message_sk(message.message_id)),
        "type": s("message"),
        **_message_attributes(message),
    }
    return _with_expiry(item, chat.expires_at)


def idempotency_item(record: IdempotencyRecord) -> Item:
    return {
        **idempotency_key(record.user_id, record.key),
        "type": s("idempotency"),
        "chatId": n(record.chat_id),
        "characterId": n(record.character_id),
        "createdAt": s(record.created_at),
        "message": {"M": _message_attributes(record.message)},
        "expiresAt": n(record.expires_at),
    }


def character_item(character: Character, card: dict[str, Any] | None = None) -> Item:
    item: Item = {
        **character_key(character.character_id),
        "type": s("character"),
        "characterId": n(character.character_id),
        "name": s(character.name),
        "firstMes": s(character.first_mes),
        "alternateGreetings": {"L": [s(g) for g in character.alternate_greetings]},
    }
    if card is not None:
        item["card"] = s(json.dumps(card, separators=(",", ":"), ensure_ascii=False))
    return item


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


# ---------------------------------------------------------------- items read back


def character_from(item: Item) -> Character:
    return Character(
        character_id=int(item["characterId"]["N"]),
        name=item["name"]["S"],
        first_mes=item.get("firstMes", {}).get("S", ""),
        alternate_greetings=tuple(g["S"] for g in item.get("alternateGreetings", {}).get("L", [])),
    )


def chat_from(item: Item) -> Chat:
    return Chat(
        chat_id=int(item["chatId"]["N"]),
        user_id=item["userId"]["S"],
        character_id=int(item["characterId"]["N"]),
        created_at=item["createdAt"]["S"],
        expires_at=int(item["expiresAt"]["N"]) if "expiresAt" in item else None,
        idempotency_key=item["idempotencyKey"]["S"] if "idempotencyKey" in item else None,
    )


def chat_summary_from(item: Item) -> ChatSummary:
    return ChatSummary(
        chat_id=int(item["chatId"]["N"]),
        character_id=int(item["characterId"]["N"]),
        created_at=item["createdAt"]["S"],
    )


def idempotency_from(item: Item) -> IdempotencyRecord:
    message = item["message"]["M"]
    return IdempotencyRecord(
        user_id=user_id_from_pk(item["PK"]["S"]),
        key=idempotency_key_from_sk(item["SK"]["S"]),
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
