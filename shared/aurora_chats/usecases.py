"""The three chat operations as use cases: business rules only, storage passed in (never boto3 here)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aurora_chats.cursor import decode_cursor, encode_cursor
from aurora_chats.errors import (
    CharacterNotFound,
    ChatIdCollision,
    IdempotencyKeyConflict,
    IdempotencyKeyTaken,
    ServiceUnavailable,
    WriteConflict,
)
from aurora_chats.greeting import render_greeting
from aurora_chats.ids import new_chat_id, new_message_id
from aurora_chats.models import (
    Character,
    Chat,
    ChatSummary,
    DeleteChatResponse,
    GetChatsForUserResponse,
    IdempotencyRecord,
    InitializeChatResponse,
    Message,
    to_rfc3339,
)
from aurora_chats.ports import ChatRepository
from aurora_chats.settings import Settings

Clock = Callable[[], datetime]
MAX_CREATE_ATTEMPTS = 6


def utc_now() -> datetime:
    return datetime.now(UTC)


# Characters change rarely and every initialize needs one: keep them per container for a few minutes.
_character_cache: dict[int, tuple[float, Character]] = {}


def clear_character_cache() -> None:
    _character_cache.clear()


def get_character(repo: ChatRepository, character_id: int, cache_seconds: float) -> Character:
    cached = _character_cache.get(character_id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    character = repo.get_character(character_id)
    if character is None:
        raise CharacterNotFound(character_id)
    if cache_seconds > 0:
        _character_cache[character_id] = (time.monotonic() + cache_seconds, character)
    return character


def list_chats(
    repo: ChatRepository,
    settings: Settings,
    user_id: str,
    limit: int,
    cursor: str | None,
    clock: Clock = utc_now,
) -> GetChatsForUserResponse:
    after = decode_cursor(settings.cursor_secret, user_id, cursor) if cursor is not None else None
    page = repo.list_chats(user_id, limit, after, int(clock().timestamp()))
    next_cursor = (
        encode_cursor(settings.cursor_secret, user_id, page.last_chat_id)
        if page.last_chat_id is not None
        else None
    )
    return GetChatsForUserResponse(
        chat_ids=[chat.chat_id for chat in page.chats], chats=page.chats, next_cursor=next_cursor
    )


def _response_from(record: IdempotencyRecord) -> InitializeChatResponse:
    return InitializeChatResponse(
        chat_id=record.chat_id,
        character_id=record.character_id,
        created_at=record.created_at,
        message=record.message,
    )


def initialize_chat(
    repo: ChatRepository,
    settings: Settings,
    user_id: str,
    user_name: str,
    character_id: int,
    idempotency_key: str | None,
    clock: Clock = utc_now,
) -> tuple[InitializeChatResponse, bool]:
    """Start a chat; returns the response and whether it was created now (False: an idempotent replay)."""
    character = get_character(repo, character_id, settings.character_cache_seconds)
    content = render_greeting(character, user_name)
    replaces_stale: int | None = None
    for attempt in range(MAX_CREATE_ATTEMPTS):
        now = clock()
        now_ms = int(now.timestamp() * 1000)
        created_at = to_rfc3339(now)
        expires_at = (
            int(now.timestamp()) + settings.chat_retention_days * 86_400
            if settings.chat_retention_days
            else None
        )
        message = Message(
            message_id=new_message_id(now_ms), role="character", content=content, created_at=created_at
        )
        chat = Chat(
            chat_id=new_chat_id(now_ms, settings.id_region),
            user_id=user_id,
            character_id=character_id,
            created_at=created_at,
            expires_at=expires_at,
            idempotency_key=idempotency_key,
        )
        record = (
            IdempotencyRecord(
                user_id=user_id,
                key=idempotency_key,
                chat_id=chat.chat_id,
                character_id=character_id,
                created_at=created_at,
                message=message,
                expires_at=int(now.timestamp()) + settings.idempotency_ttl_seconds,
            )
            if idempotency_key is not None
            else None
        )
        try:
            repo.create_chat(chat, message, record, replaces_stale, max_chats=settings.max_chats_per_user)
        except ChatIdCollision:
            continue
        except WriteConflict:
            time.sleep(random.uniform(0, 0.02 * 2**attempt))
            continue
        except IdempotencyKeyTaken as taken:
            stored = taken.record
            if stored.character_id != character_id:
                raise IdempotencyKeyConflict() from None
            existing = repo.get_chat(stored.chat_id)
            alive = existing is not None and (
                existing.expires_at is None or existing.expires_at > now.timestamp()
            )
            if existing is not None and existing.user_id == user_id and alive:
                return _response_from(stored), False
            # The chat made under this key was deleted (or expired) since: the key is free again.
            replaces_stale = stored.chat_id
            continue
        return InitializeChatResponse(
            chat_id=chat.chat_id, character_id=character_id, created_at=created_at, message=message
        ), True
    raise ServiceUnavailable("Could not start the chat because of concurrent writes; retry shortly.")


def delete_chat(
    repo: ChatRepository, user_id: str, chat_id: int, clock: Clock = utc_now
) -> tuple[DeleteChatResponse, bool]:
    """Delete a chat; returns the response and whether it was deleted now (False: the caller's repeat, < 24 h)."""
    for attempt in range(MAX_CREATE_ATTEMPTS):
        try:
            deleted_now = repo.delete_chat(user_id, chat_id, int(clock().timestamp()))
        except WriteConflict:
            # A concurrent delete of the same chat: once it commits, our retry finds its tombstone (200).
            time.sleep(random.uniform(0, 0.02 * 2**attempt))
            continue
        return DeleteChatResponse(chat_id=chat_id), deleted_now
    raise ServiceUnavailable("Could not delete the chat because of concurrent writes; retry shortly.")


__all__ = ["ChatSummary", "delete_chat", "initialize_chat", "list_chats"]
