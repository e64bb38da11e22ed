"""In-memory fakes of the data layer with the same semantics as the DynamoDB ones (for use-case unit tests):
``InMemoryChats`` (a ``ChatRepository``) and ``InMemoryCleanupStore`` (a ``CleanupStore``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aurora_chats.dal import keys
from aurora_chats.dal.chats import DELETED_CHAT_TTL_SECONDS
from aurora_chats.errors import (
    AccountDeleted,
    ChatIdCollision,
    ChatLimitReached,
    ChatNotFound,
    IdempotencyKeyTaken,
    ServiceUnavailable,
)
from aurora_chats.models import Character, Chat, ChatSummary, IdempotencyRecord, Message
from aurora_chats.ports import ChatPage, ItemKey, KeyPage, RemovedChat, UserItem, UserItemsPage


@dataclass
class InMemoryChats:
    characters: dict[int, Character] = field(default_factory=dict)
    chats: dict[int, Chat] = field(default_factory=dict)
    messages: dict[int, list[Message]] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    tombstones: dict[tuple[str, int], int] = field(default_factory=dict)  # (user, chat) -> expiresAt
    character_reads: int = 0
    now_epoch: int = 0
    # The user-state items: chat counts, and the users whose deletion marker exists.
    chat_counts: dict[str, int] = field(default_factory=dict)
    deleted_users: set[str] = field(default_factory=set)
    default_max_chats: int = 1000

    def get_character(self, character_id: int) -> Character | None:
        self.character_reads += 1
        return self.characters.get(character_id)

    def create_chat(
        self,
        chat: Chat,
        first_message: Message,
        idempotency: IdempotencyRecord | None,
        replaces_stale_chat_id: int | None = None,
        max_chats: int | None = None,
    ) -> None:
        # The same order of conditions as the DynamoDB transaction: deleted, replay, limit, id collision.
        if chat.user_id in self.deleted_users:
            raise AccountDeleted()
        if idempotency is not None:
            stored = self.idempotency.get((idempotency.user_id, idempotency.key))
            if (
                stored is not None
                and stored.expires_at >= self.now_epoch
                and stored.chat_id != replaces_stale_chat_id
            ):
                raise IdempotencyKeyTaken(stored)
        limit = max_chats if max_chats is not None else self.default_max_chats
        if self.chat_counts.get(chat.user_id, 0) >= limit:
            raise ChatLimitReached(limit)
        if chat.chat_id in self.chats:
            raise ChatIdCollision()
        self.chat_counts[chat.user_id] = self.chat_counts.get(chat.user_id, 0) + 1
        self.chats[chat.chat_id] = chat
        self.messages[chat.chat_id] = [first_message]
        if idempotency is not None:
            self.idempotency[(idempotency.user_id, idempotency.key)] = idempotency

    def get_chat(self, chat_id: int) -> Chat | None:
        return self.chats.get(chat_id)

    def list_chats(self, user_id: str, limit: int, after_chat_id: int | None, now_epoch: int) -> ChatPage:
        mine = sorted(
            (
                c
                for c in self.chats.values()
                if c.user_id == user_id
                and (c.expires_at is None or c.expires_at > now_epoch)
                and (after_chat_id is None or c.chat_id < after_chat_id)
            ),
            key=lambda c: c.chat_id,
            reverse=True,
        )
        page = [
            ChatSummary(chat_id=c.chat_id, character_id=c.character_id, created_at=c.created_at) for c in mine
        ]
        if len(page) > limit:
            return ChatPage(chats=page[:limit], last_chat_id=page[limit - 1].chat_id)
        return ChatPage(chats=page, last_chat_id=None)

    def delete_chat(self, user_id: str, chat_id: int, now_epoch: int) -> bool:
        if user_id in self.deleted_users:
            raise AccountDeleted()
        chat = self.chats.get(chat_id)
        if (
            chat is None
            or chat.user_id != user_id
            or (chat.expires_at is not None and chat.expires_at <= now_epoch)
        ):
            if self.tombstones.get((user_id, chat_id), 0) > now_epoch:
                return False  # this user's own delete, repeated within 24 h
            raise ChatNotFound(chat_id)
        del self.chats[chat_id]
        self.chat_counts[user_id] -= 1
        self.tombstones[(user_id, chat_id)] = now_epoch + DELETED_CHAT_TTL_SECONDS
        return True

    def expire(self, chat_id: int) -> None:
        """TTL removed the chat record and the purge removed its list entry (one decrement, like the DAL's)."""
        chat = self.chats.pop(chat_id, None)
        if chat is not None:
            self.chat_counts[chat.user_id] -= 1


class InMemoryCleanupStore:
    """:class:`aurora_chats.ports.CleanupStore` over a set of (PK, SK) keys; ``fail_on`` makes a delete fail,
    ``throttled`` makes every call refuse with ``ServiceUnavailable`` (DynamoDB still throttling after retries)."""

    max_batch = 25

    def __init__(self, item_keys: set[tuple[str, str]], counts: dict[str, int] | None = None) -> None:
        self.keys = set(item_keys)
        self.counts: dict[str, int] = dict(counts or {})
        self.expires_at: dict[tuple[str, str], int] = {}  # an item's expiresAt (TTL), if it has one
        self.deleted_users: list[str] = []  # every mark_user_deleted call, in order
        self.throttled = False
        self.fail_on: Callable[[list[tuple[str, str]]], bool] = lambda batch: False

    def _refuse_if_throttled(self) -> None:
        if self.throttled:
            raise ServiceUnavailable("throttled")

    def _page(self, pk: str) -> list[dict[str, Any]]:
        return [keys.key(p, s) for p, s in sorted(self.keys) if p == pk]

    def chat_items_page(
        self, chat_id: int, start: ItemKey | None, *, left_to_ttl_by: int | None = None
    ) -> KeyPage:
        self._refuse_if_throttled()
        page: list[ItemKey] = list(self._page(keys.chat_pk(chat_id)))
        if left_to_ttl_by is not None:
            page = [
                k
                for k in page
                if self.expires_at.get((k["PK"]["S"], k["SK"]["S"]), left_to_ttl_by + 1) > left_to_ttl_by
            ]
        return KeyPage(keys=page, next_start=None)

    def user_items_page(self, user_id: str, start: ItemKey | None) -> UserItemsPage:
        self._refuse_if_throttled()
        items = [
            UserItem(
                key=k,
                chat_record_key=keys.chat_record_key(keys.chat_id_from_entry_sk(k["SK"]["S"]))
                if keys.is_user_chat_entry_sk(k["SK"]["S"])
                else None,
            )
            for k in self._page(keys.user_pk(user_id))
            if not keys.is_user_state_sk(k["SK"]["S"])
        ]
        return UserItemsPage(items=items, next_start=None)

    def remove_list_entry(self, chat: RemovedChat) -> None:
        self._refuse_if_throttled()
        if chat.user_id is None:
            return
        entry = (keys.user_pk(chat.user_id), keys.user_chat_sk(chat.chat_id))
        if entry in self.keys:  # the condition: only while the entry exists, so replays count nothing
            self.keys.discard(entry)
            self.counts[chat.user_id] = self.counts.get(chat.user_id, 0) - 1

    def mark_user_deleted(self, user_id: str) -> None:
        self._refuse_if_throttled()
        self.keys.add((keys.user_pk(user_id), keys.USER_STATE_SK))
        self.deleted_users.append(user_id)

    def delete_items(self, keys: Sequence[ItemKey]) -> None:
        self._refuse_if_throttled()
        batch = [(k["PK"]["S"], k["SK"]["S"]) for k in keys]
        assert len(batch) <= self.max_batch
        if self.fail_on(batch):
            raise RuntimeError("injected failure")
        self.keys -= set(batch)

    def delete_idempotency_record(self, user_id: str, idempotency_key: str, chat_id: int) -> None:
        self._refuse_if_throttled()
        self.keys.discard((keys.user_pk(user_id), keys.idempotency_sk(idempotency_key)))


@dataclass
class RecordingContinuation:
    """:class:`aurora_chats.ports.ContinuationQueue` that records what it was asked: (round, throttled, delay)."""

    published: list[tuple[int, int, int | None]] = field(default_factory=list)

    def continue_user_deletion(self, user_id: str, round_: int, throttled: int = 0) -> None:
        self.published.append((round_, throttled, None))

    def continue_user_deletion_later(
        self, user_id: str, round_: int, throttled: int, delay_seconds: int
    ) -> None:
        self.published.append((round_, throttled, delay_seconds))
