"""What the use cases need from storage. The DynamoDB data layer and the tests' in-memory fake implement it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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
    ) -> None:
        """Write chat, user entry, first message and idempotency record atomically, or nothing.

        Raises ``ChatIdCollision`` when the chat id is taken, ``IdempotencyKeyTaken`` (with the live stored record)
        when the user already used the key — unless the stored record names ``replaces_stale_chat_id``, which is
        overwritten — ``WriteConflict`` on a concurrent transaction, ``ServiceUnavailable`` when throttled.
        """
        ...

    def get_chat(self, chat_id: int) -> Chat | None: ...

    def list_chats(self, user_id: str, limit: int, after_chat_id: int | None, now_epoch: int) -> ChatPage: ...

    def delete_chat(self, user_id: str, chat_id: int, now_epoch: int) -> None:
        """Delete the chat and the user's entry atomically; ``ChatNotFound`` unless it exists, is the user's
        and has not expired."""
        ...
