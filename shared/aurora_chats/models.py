"""Pydantic models: the API's JSON shapes (camelCase), the domain entities, and the character card.

ID types are defined once in :mod:`aurora_chats.ids`; every model and route parameter uses them.

No ``from __future__ import annotations`` here: pydantic reads every field's annotation when a class is defined, and
an annotation kept as a string is compiled and evaluated first (~1 ms of this module's import, ``make bench``).
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AliasPath, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from aurora_chats.ids import CharacterId, ChatId


def to_rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC with a ``Z`` suffix and millisecond precision (truncated, not rounded).

    ``isoformat`` writes the same characters as ``strftime("%Y-%m-%dT%H:%M:%S.")`` + the milliseconds for every
    four-digit year, in half the time (~1.5 µs per chat started, ``make bench``); ``tests/unit/test_ids.py`` pins it.
    """
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def epoch_seconds(timestamp: str) -> int:
    """The Unix time (whole seconds) of an RFC 3339 timestamp such as :func:`to_rfc3339` writes."""
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())


Timestamp = Annotated[
    str, Field(description="RFC 3339 UTC timestamp.", examples=["2026-11-26T10:00:00.000Z"])
]


class ApiModel(BaseModel):
    # defer_build: a model's validator is built when first used, not at import, so each function pays only for
    # the models its route touches (measured by `make bench`: ~4 ms of every cold start). Validation is unchanged.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid", defer_build=True
    )


# ---------------------------------------------------------------- domain entities (what the data layer stores)


class Message(ApiModel):
    message_id: Annotated[
        str, Field(description="Time-sortable message id (ULID).", min_length=26, max_length=26)
    ]
    role: Literal["character", "user"]
    content: str
    created_at: Timestamp


class Chat(ApiModel):
    """A chat's canonical record."""

    chat_id: ChatId
    user_id: str
    character_id: CharacterId
    created_at: Timestamp
    expires_at: int | None = None
    idempotency_key: str | None = None


class IdempotencyRecord(ApiModel):
    """What a first ``initialize`` stored under its ``Idempotency-Key``: enough to answer a replay."""

    user_id: str
    key: str
    chat_id: ChatId
    character_id: CharacterId
    created_at: Timestamp
    message: Message
    expires_at: int


class Character(ApiModel):
    character_id: CharacterId
    name: str
    first_mes: str = ""
    alternate_greetings: tuple[str, ...] = ()

    @property
    def greeting(self) -> str:
        """``first_mes``, or the first alternate greeting when ``first_mes`` is empty."""
        if self.first_mes.strip():
            return self.first_mes
        for alternate in self.alternate_greetings:
            if alternate.strip():
                return alternate
        return ""


# ---------------------------------------------------------------- API responses


class ChatSummary(ApiModel):
    chat_id: ChatId
    character_id: CharacterId
    created_at: Timestamp


# The SDK docs' values (chat 8, character 330905): one example per response, used by the models' schemas and by the
# routes' OpenAPI response examples.
LIST_EXAMPLE: dict[str, Any] = {
    "chatIds": [8],
    "chats": [{"chatId": 8, "characterId": 330905, "createdAt": "2026-11-26T10:00:00.000Z"}],
    "nextCursor": None,
}
INITIALIZE_EXAMPLE: dict[str, Any] = {
    "chatId": 8,
    "characterId": 330905,
    "createdAt": "2026-11-26T10:00:00.000Z",
    "message": {
        "messageId": "01JDQ8Z6R8W4X2V1T0S9R8Q7P6",
        "role": "character",
        "content": "Hi Alice, I'm Aurora!",
        "createdAt": "2026-11-26T10:00:00.000Z",
    },
}
DELETE_EXAMPLE: dict[str, Any] = {"chatId": 8, "deleted": True}


class GetChatsForUserResponse(ApiModel):
    """One page of the caller's chats, newest first."""

    model_config = ConfigDict(json_schema_extra={"examples": [LIST_EXAMPLE]})

    chat_ids: list[ChatId] = Field(description="The chat ids on this page, newest first.")
    chats: list[ChatSummary] = Field(description="The same chats with their character and creation time.")
    next_cursor: Annotated[str, Field(max_length=64)] | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class ChatListPage(GetChatsForUserResponse):
    """One page of the caller's chats, newest first: `chats.listPages` feeds `nextCursor` back as `cursor` until it
    is null (a page is never empty while `nextCursor` is set)."""


class InitializeChatResponse(ApiModel):
    """The new chat and the character's greeting, stored as the chat's first message."""

    model_config = ConfigDict(json_schema_extra={"examples": [INITIALIZE_EXAMPLE]})

    chat_id: ChatId
    character_id: CharacterId
    created_at: Timestamp
    message: Message


class DeleteChatResponse(ApiModel):
    """The deleted chat's id; its message history is purged shortly after."""

    # The schema describes what is sent: `deleted` always is, so it is required (not just defaulted).
    model_config = ConfigDict(
        json_schema_extra={"examples": [DELETE_EXAMPLE]},
        json_schema_mode_override="serialization",
        json_schema_serialization_defaults_required=True,
    )

    chat_id: ChatId
    deleted: Literal[True] = True


class FieldProblem(BaseModel):
    """One invalid request field."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    field: str = Field(description="Where the problem is, e.g. `path.chatId` or `query.limit`.")
    message: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """RFC 9457 problem details: the body of every error this API answers."""

    model_config = ConfigDict(
        frozen=True,
        defer_build=True,
        json_schema_extra={
            "examples": [
                {
                    "type": "https://docs.aurora-interactive.dev/problems/not-found",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "Chat 8 was not found.",
                }
            ]
        },
    )

    type: str = Field(description="A URI identifying the problem type; stable, safe to branch on.")
    title: str = Field(description="The HTTP status phrase.")
    status: int = Field(ge=400, le=599, description="The HTTP status code.")
    detail: str = Field(description="A human-readable explanation of this occurrence.")
    instance: str | None = Field(
        default=None, description="A URI identifying this occurrence, when there is one."
    )
    errors: list[FieldProblem] | None = Field(
        default=None, description="The invalid request fields (400 validation problems only)."
    )


# ---------------------------------------------------------------- character cards (import)


class CharacterCard(BaseModel):
    """A Character Card V2 or V3 file; our numeric id lives in ``data.extensions.aurora.characterId``."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    spec: Literal["chara_card_v2", "chara_card_v3"]
    character_id: CharacterId = Field(
        validation_alias=AliasPath("data", "extensions", "aurora", "characterId")
    )
    name: str = Field(validation_alias=AliasPath("data", "name"), min_length=1, max_length=200)
    first_mes: str = Field(default="", validation_alias=AliasPath("data", "first_mes"), max_length=20_000)
    alternate_greetings: list[Annotated[str, Field(max_length=20_000)]] = Field(
        default_factory=list, validation_alias=AliasPath("data", "alternate_greetings")
    )

    @field_validator("character_id", mode="before")
    @classmethod
    def _strict_int(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("data.extensions.aurora.characterId must be an integer")
        return value

    @model_validator(mode="after")
    def _has_greeting(self) -> Self:
        if not self.to_character().greeting:
            raise ValueError(
                "the card has no greeting: first_mes and every alternate_greetings entry are empty"
            )
        return self

    def to_character(self) -> Character:
        return Character(
            character_id=self.character_id,
            name=self.name,
            first_mes=self.first_mes,
            alternate_greetings=tuple(self.alternate_greetings),
        )
