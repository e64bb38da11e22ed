"""An in-memory ChatRepository with the same semantics as the DynamoDB one (for use-case unit tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aurora_chats.errors import ChatIdCollision, ChatNotFound, IdempotencyKeyTaken
from aurora_chats.models import Character, Chat, ChatSummary, IdempotencyRecord, Message
from aurora_chats.ports import ChatPage


@dataclass
class InMemoryChats:
    characters: dict[int, Character] = field(default_factory=dict)
    chats: dict[int, Chat] = field(default_factory=dict)
    messages: dict[int, list[Message]] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    character_reads: int = 0
    now_epoch: int = 0

    def get_character(self, character_id: int) -> Character | None:
        self.character_reads += 1
        return self.characters.get(character_id)

    def create_chat(
        self,
        chat: Chat,
        first_message: Message,
        idempotency: IdempotencyRecord | None,
        replaces_stale_chat_id: int | None = None,
    ) -> None:
        if idempotency is not None:
            stored = self.idempotency.get((idempotency.user_id, idempotency.key))
            if (
                stored is not None
                and stored.expires_at >= self.now_epoch
                and stored.chat_id != replaces_stale_chat_id
            ):
                raise IdempotencyKeyTaken(stored)
        if chat.chat_id in self.chats:
            raise ChatIdCollision()
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

    def delete_chat(self, user_id: str, chat_id: int, now_epoch: int) -> None:
        chat = self.chats.get(chat_id)
        if (
            chat is None
            or chat.user_id != user_id
            or (chat.expires_at is not None and chat.expires_at <= now_epoch)
        ):
            raise ChatNotFound(chat_id)
        del self.chats[chat_id]
