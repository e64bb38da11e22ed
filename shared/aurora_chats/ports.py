"""What the use cases need from storage (chats and cleanup): the data layer and the tests' in-memory fakes
implement it. Plain types only: this module imports nothing above the models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aurora_chats.models import Character, Chat, ChatSummary, IdempotencyRecord, Message


@dataclass(frozen=True, slots=True)
class ChatPage:
    chats: list[ChatSummary]
    last_chat_id: int | None  # where the next page starts after; None on the last page


class ChatRepository(Protocol):
    def get_character(self, character_id: int) -> Character | None: ...

    def create_chat(
        self,
        chat: Chat,
        first_message: Message,
        idempotency: IdempotencyRecord | None,
        replaces_stale_chat_id: int | None = None,
        max_chats: int | None = None,
    ) -> None:
        """Write chat, user entry, first message and idempotency record atomically, and count the chat on the
        user's state item, or nothing.

        Raises ``AccountDeleted`` when the user's deletion marker exists (before anything else),
        ``IdempotencyKeyTaken`` (with the live stored record) when the user already used the key — unless the
        stored record names ``replaces_stale_chat_id``, which is overwritten —, ``ChatLimitReached`` when the user
        already has ``max_chats`` chats (None: the settings' limit), ``ChatIdCollision`` when the chat id is taken,
        ``WriteConflict`` on a concurrent transaction, ``ServiceUnavailable`` when throttled.
        """
        ...

    def get_chat(self, chat_id: int) -> Chat | None: ...

    def list_chats(self, user_id: str, limit: int, after_chat_id: int | None, now_epoch: int) -> ChatPage: ...

    def delete_chat(self, user_id: str, chat_id: int, now_epoch: int) -> bool:
        """Delete the chat and the user's entry atomically, count the chat down and leave a tombstone that expires
        after 24 h (True). ``AccountDeleted`` once the user's deletion marker exists; ``ChatNotFound`` unless it
        exists, is the user's and has not expired - or this user already deleted it within those 24 h (then False:
        a repeated delete answers like the first, and nothing changed)."""
        ...


# ---------------------------------------------------------------- the cleanup's storage

CLEANUP_EVENTS_SOURCE = "aurora.chats"
USER_DELETION_CONTINUED = "UserDeletionContinued"

ItemKey = Mapping[str, Any]
"""A table key as the data layer returns it; opaque to the use cases."""


@dataclass(frozen=True, slots=True)
class RemovedChat:
    """A chat record that left the table (stream ``REMOVE``): what the purge needs to know about it."""

    chat_id: int
    user_id: str | None
    idempotency_key: str | None
    expired: bool  # removed by DynamoDB's TTL rather than by the API
    expires_at: int | None = None  # the chat record's expiresAt (retention), epoch seconds


@dataclass(frozen=True, slots=True)
class UserStateChange:
    """A write to a user's state item (stream ``INSERT``/``MODIFY``) that involves the deletion marker: whether the
    item was marked before and after it, and which region's ``IdRegion`` wrote the marker (``None``: unmarked now,
    or a marker written before markers named their region)."""

    user_id: str
    marked_before: bool
    marked_after: bool
    marked_in_region: int | None


@dataclass(frozen=True, slots=True)
class KeyPage:
    keys: list[ItemKey]
    next_start: ItemKey | None  # None: this was the last page


@dataclass(frozen=True, slots=True)
class UserItem:
    key: ItemKey  # one of the user's own items (list entry, idempotency record, anything else)
    chat_record_key: ItemKey | None  # for a list entry: the chat record it lists


@dataclass(frozen=True, slots=True)
class UserItemsPage:
    items: list[UserItem]
    next_start: ItemKey | None


class CleanupStore(Protocol):
    max_batch: int  # most keys one delete_items call accepts

    def chat_items_page(
        self, chat_id: int, start: ItemKey | None, *, left_to_ttl_by: int | None = None
    ) -> KeyPage:
        """Keys of the chat's partition (messages and anything else stored under the chat). With
        ``left_to_ttl_by``: only the items DynamoDB's TTL will not delete by then on its own (no ``expiresAt``, or a
        later one); a page may then hold no keys and still have a next one."""
        ...

    def user_items_page(self, user_id: str, start: ItemKey | None) -> UserItemsPage: ...

    def remove_list_entry(self, chat: RemovedChat) -> None:
        """Delete the owner's list entry of this chat and count the chat down, in one write that only happens
        while the entry exists (so a replay, or an entry the API delete already removed, counts nothing)."""
        ...

    def mark_user_deleted(self, user_id: str) -> None:
        """Write (or refresh) the user's deletion marker: from now on no chat can be stored for the user, for at
        least the deleted-account window. Idempotent; every round of a user deletion writes it first."""
        ...

    def delete_items(self, keys: Sequence[ItemKey]) -> None:
        """Delete at most ``max_batch`` items; retries throttling, raises ``ServiceUnavailable`` when it persists."""
        ...

    def delete_idempotency_record(self, user_id: str, idempotency_key: str, chat_id: int) -> None:
        """Delete the record only while it still names ``chat_id`` (the key may already serve a newer chat)."""
        ...


class ContinuationQueue(Protocol):
    def continue_user_deletion(self, user_id: str, round_: int, throttled: int = 0) -> None:
        """Continue now, in a new invocation (this one ran out of time)."""
        ...

    def continue_user_deletion_later(
        self, user_id: str, round_: int, throttled: int, delay_seconds: int
    ) -> None:
        """Continue in a new invocation in ``delay_seconds`` (DynamoDB kept throttling this one)."""
        ...
