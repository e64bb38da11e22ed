"""Domain errors. The data layer raises them (``raise ChatNotFound(...) from exc``); the HTTP layer maps them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aurora_chats.models import IdempotencyRecord


class DomainError(Exception):
    """Base class of every error the API turns into a problem response."""


class ChatNotFound(DomainError):
    def __init__(self, chat_id: int) -> None:
        super().__init__(f"Chat {chat_id} was not found.")
        self.chat_id = chat_id


class CharacterNotFound(DomainError):
    def __init__(self, character_id: int) -> None:
        super().__init__(f"Character {character_id} was not found.")
        self.character_id = character_id


class IdempotencyKeyConflict(DomainError):
    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used to start a chat with another character.")


class AccountDeleted(DomainError):
    """The caller's account was deleted (``UserDeleted``): its token still verifies, but nothing may be stored."""

    def __init__(self) -> None:
        super().__init__("This account has been deleted; nothing can be stored for it.")


class ChatLimitReached(DomainError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This account already has the maximum of {limit} chats; delete one to start another."
        )
        self.limit = limit


class InvalidCursor(DomainError):
    def __init__(self, reason: str = "The cursor is not valid for this list.") -> None:
        super().__init__(reason)


class Unauthenticated(DomainError):
    def __init__(self) -> None:
        super().__init__("A valid bearer token is required.")


class ServiceUnavailable(DomainError):
    """DynamoDB still throttled or failed after the client's retries; nothing was written."""

    def __init__(self, reason: str = "The service is busy; retry after the indicated delay.") -> None:
        super().__init__(reason)


class OutcomeUnknown(DomainError):
    """A write was sent but DynamoDB's answer never arrived (timeouts after retries): it may have taken effect.

    Not a :class:`ServiceUnavailable` (that one promises nothing was written, so clients retry it blindly).
    """

    def __init__(
        self,
        reason: str = (
            "The database did not confirm the change in time, so it may or may not have been made. "
            "Repeat the request to find out: with the same Idempotency-Key a repeated POST returns the chat "
            "if it was created; a repeated DELETE answers 404 if the chat was deleted."
        ),
    ) -> None:
        super().__init__(reason)


class ChatIdCollision(DomainError):
    """Internal: the generated chat id is taken; the use case retries with a new id."""


class IdempotencyKeyTaken(DomainError):
    """Internal: an idempotency record exists for this user and key; carries the stored record."""

    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__("idempotency key already used")
        self.record = record


class WriteConflict(DomainError):
    """Internal: a concurrent transaction touched the same items; the use case retries."""
