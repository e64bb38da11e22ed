"""Key prefixes, builders and parsers of the single table: the one place a key string is spelled.

The layout is the access-pattern table in :mod:`aurora_chats.dal`. Everything else - the repositories, the
operator tools, the bench and the tests - builds and reads keys through these functions. Pure: no I/O, no imports
of ours.
"""

from __future__ import annotations

from typing import Any

CHARACTER_PREFIX = "CHARACTER#"
CHARACTER_SK = "PROFILE"
CHAT_PREFIX = "CHAT#"  # a chat's partition (PK), and a user's list entries (SK)
CHAT_META_SK = "META"
CHAT_ENTRY_PREFIX = CHAT_PREFIX
USER_PREFIX = "USER#"
MESSAGE_PREFIX = "MSG#"
IDEMPOTENCY_PREFIX = "IDEMPOTENCY#"
# The user's state item (chat count, deletion marker). Not under CHAT#: the list query never reads it.
USER_STATE_SK = "STATE"
DELETED_PREFIX = (
    "DELETED#"  # a user's tombstone of a chat they deleted (retry-safe delete, expires after 24 h)
)
CHAT_ID_DIGITS = 16  # a list entry's SK zero-pads the chat id so that the SK order is the id order

Key = dict[str, Any]


# ---------------------------------------------------------------- builders


def character_pk(character_id: int) -> str:
    return f"{CHARACTER_PREFIX}{character_id}"


def chat_pk(chat_id: int) -> str:
    return f"{CHAT_PREFIX}{chat_id}"


def user_pk(user_id: str) -> str:
    return f"{USER_PREFIX}{user_id}"


def user_chat_sk(chat_id: int) -> str:
    return f"{CHAT_ENTRY_PREFIX}{chat_id:0{CHAT_ID_DIGITS}d}"


def message_sk(message_id: str) -> str:
    return f"{MESSAGE_PREFIX}{message_id}"


def idempotency_sk(key: str) -> str:
    return f"{IDEMPOTENCY_PREFIX}{key}"


def deleted_chat_sk(chat_id: int) -> str:
    return f"{DELETED_PREFIX}{chat_id:0{CHAT_ID_DIGITS}d}"


def key(pk: str, sk: str) -> Key:
    """A key in DynamoDB JSON."""
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def character_key(character_id: int) -> Key:
    return key(character_pk(character_id), CHARACTER_SK)


def chat_record_key(chat_id: int) -> Key:
    return key(chat_pk(chat_id), CHAT_META_SK)


def user_entry_key(user_id: str, chat_id: int) -> Key:
    return key(user_pk(user_id), user_chat_sk(chat_id))


def idempotency_key(user_id: str, idem_key: str) -> Key:
    return key(user_pk(user_id), idempotency_sk(idem_key))


def user_state_key(user_id: str) -> Key:
    return key(user_pk(user_id), USER_STATE_SK)


def deleted_chat_key(user_id: str, chat_id: int) -> Key:
    """The tombstone of a chat the user deleted: in the user's own partition, so nobody else's delete finds it."""
    return key(user_pk(user_id), deleted_chat_sk(chat_id))


# ---------------------------------------------------------------- parsers and predicates


def chat_id_from_pk(pk: str) -> int | None:
    """The chat id of a ``CHAT#<id>`` partition key, or None for any other (or non-numeric) key."""
    if not pk.startswith(CHAT_PREFIX):
        return None
    digits = pk.removeprefix(CHAT_PREFIX)
    return int(digits) if digits.isdigit() else None


def chat_id_from_entry_sk(sk: str) -> int:
    """The chat id of a user's list entry SK (``ValueError`` for anything else)."""
    return int(sk.removeprefix(CHAT_ENTRY_PREFIX))


def user_id_from_pk(pk: str) -> str:
    return pk.removeprefix(USER_PREFIX)


def idempotency_key_from_sk(sk: str) -> str:
    return sk.removeprefix(IDEMPOTENCY_PREFIX)


def is_chat_pk(pk: str) -> bool:
    return pk.startswith(CHAT_PREFIX)


def is_user_pk(pk: str) -> bool:
    return pk.startswith(USER_PREFIX)


def is_chat_record(pk: str, sk: str) -> bool:
    return pk.startswith(CHAT_PREFIX) and sk == CHAT_META_SK


def is_user_chat_entry_sk(sk: str) -> bool:
    return sk.startswith(CHAT_ENTRY_PREFIX)


def is_user_state_sk(sk: str) -> bool:
    return sk == USER_STATE_SK


def is_message_sk(sk: str) -> bool:
    return sk.startswith(MESSAGE_PREFIX)


def is_idempotency_sk(sk: str) -> bool:
    return sk.startswith(IDEMPOTENCY_PREFIX)


def is_deleted_chat_sk(sk: str) -> bool:
    return sk.startswith(DELETED_PREFIX)


def is_character_pk(pk: str) -> bool:
    return pk.startswith(CHARACTER_PREFIX)
