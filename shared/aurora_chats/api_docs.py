"""The API's OpenAPI documentation, one place per operation: each route's decorator arguments (:func:`operation`)
and its documented parameter types, next to the problem responses and SDK retry policies they share.

The generated ``openapi.json`` comes from these (through the routes in ``functions/*/app.py``) and the models'
examples; ``aurora_local.openapi`` only merges the functions' documents and adds what API Gateway answers itself.
Documentation only: nothing here runs per request.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, BeforeValidator, Field

from aurora_chats.cursor import MAX_CURSOR_LENGTH
from aurora_chats.http import MORE_PROBLEMS, PROBLEM_BASE, PROBLEM_JSON, PROBLEMS
from aurora_chats.ids import CharacterId, ChatId, decimal_digits
from aurora_chats.models import (
    DELETE_EXAMPLE,
    INITIALIZE_EXAMPLE,
    LIST_EXAMPLE,
    ChatListPage,
    DeleteChatResponse,
    GetChatsForUserResponse,
    InitializeChatResponse,
    Problem,
)

# ---------------------------------------------------------------- shared pieces

PROBLEM_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The authentication scheme to use: `Bearer`.",
            "required": True,
            "schema": {"type": "string", "examples": ["Bearer"]},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "required": True,
            "schema": {"type": "integer", "minimum": 0, "examples": [1]},
        }
    },
    504: {
        "Retry-After": {
            "description": "Seconds to wait before repeating the request.",
            "required": True,
            "schema": {"type": "integer", "minimum": 0, "examples": [1]},
        }
    },
}


# Speakeasy SDK retry policies (`x-speakeasy-retries`, https://www.speakeasy.com/docs/sdks/customize/runtime/retries):
# exponential backoff that the SDK jitters itself, on the two statuses that promise nothing was done (429 from the
# gateway's throttling, 503 from `_unavailable`). Connection errors (the request may have reached the server and only
# its answer was lost) are retried only where a repeat is harmless: reads, and the delete, whose repeat by the same
# caller answers the same 200 for 24 h (the tombstone in `aurora_chats.dal.chats`).
_BACKOFF = {"initialInterval": 500, "maxInterval": 30_000, "maxElapsedTime": 120_000, "exponent": 1.5}
RETRY_ON_THROTTLING_AND_CONNECTION_ERRORS: dict[str, Any] = {
    "strategy": "backoff",
    "backoff": _BACKOFF,
    "statusCodes": ["429", "503"],
    "retryConnectionErrors": True,
}
# The delete also retries its 504 (outcome unknown): the repeat tells whether it happened (200 either way).
RETRY_DELETE: dict[str, Any] = RETRY_ON_THROTTLING_AND_CONNECTION_ERRORS | {
    "statusCodes": ["429", "503", "504"]
}
# For writes that are not idempotent without a key: a lost connection may have created the resource.
RETRY_ON_THROTTLING_ONLY: dict[str, Any] = RETRY_ON_THROTTLING_AND_CONNECTION_ERRORS | {
    "retryConnectionErrors": False
}

# ---------------------------------------------------------------- what the generated SDK sees (Speakeasy)

# Optional inputs the API accepts and documents, hidden from the generated SDK with `x-speakeasy-ignore: true`
# (https://www.speakeasy.com/docs/sdks/customize/methods, "Exclude parameters from signatures"): as method parameters
# they would come before `options` (or turn the call into a request object) and break the seed SDK's documented
# `listForUser(options?)` and `initialize(characterId, options?)`. Paging stays reachable through
# `getChatPagesForUser` (`chats.listPages`), the key through `options.fetchOptions.headers`. aurora_local.openapi
# applies it (Powertools has no parameter-level extensions).
SDK_HIDDEN_PARAMETERS: dict[str, tuple[str, ...]] = {
    "getChatsForUser": ("limit", "cursor"),
    "initializeChat": ("Idempotency-Key",),
}
# The seed operations whose success schemas are inlined (no `$ref` to a same-named component): with
# `responseFormat: flat` a `$ref`'d body would come back as `components.<Name>`, an inline one as the seed's
# `operations.<OperationId>Response` (https://www.speakeasy.com/docs/sdks/customize/responses/responses).
SDK_INLINE_SUCCESS: tuple[str, ...] = ("getChatsForUser", "initializeChat", "deleteChat")


def _problem_example(slug: str, status: int, detail: str, summary: str) -> dict[str, Any]:
    value = {
        "type": PROBLEM_BASE + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    return {"summary": summary, "value": value}


def problem_responses(
    overrides: dict[int, str] | None = None, *statuses: int, more: tuple[str, ...] = ()
) -> dict[int, OpenAPIResponse]:
    """OpenAPI ``responses`` for the given problem statuses, all ``application/problem+json`` with one schema.

    ``overrides`` maps a status to an operation-specific description (its keys are included too); ``more`` names
    further problem types of :data:`aurora_chats.http.MORE_PROBLEMS`, each an example of its status.
    """
    wanted = sorted({*statuses, *(overrides or {}), *(MORE_PROBLEMS[slug][0] for slug in more)})
    responses: dict[int, OpenAPIResponse] = {}
    for status in wanted:
        slug, description = PROBLEMS[status]
        detail = (overrides or {}).get(status, description)
        examples = {slug: _problem_example(slug, status, detail, HTTPStatus(status).phrase)}
        for extra in more:
            extra_status, extra_detail = MORE_PROBLEMS[extra]
            if extra_status == status:
                summary = f"{HTTPStatus(status).phrase}: {extra.replace('-', ' ')}"
                examples[extra] = _problem_example(extra, status, extra_detail, summary)
        response: OpenAPIResponse = {
            "description": detail,
            "content": {PROBLEM_JSON: {"model": Problem, "examples": examples}},
        }
        if status in PROBLEM_HEADERS:
            response["headers"] = PROBLEM_HEADERS[status]
        responses[status] = response
    return responses


# ---------------------------------------------------------------- getChatsForUser: GET /chats

ListLimit = Annotated[
    int,
    Field(ge=1, le=100),
    BeforeValidator(decimal_digits),
    Query(description="Page size, 1..100.", openapi_examples={"default": {"value": 20}}),
]
ListCursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_CURSOR_LENGTH,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Opaque: the previous page's `nextCursor`, valid only for the caller it was issued to.",
    ),
]


def _list_problems() -> dict[int, OpenAPIResponse]:
    return problem_responses(
        {
            400: "The request is not valid: `limit` out of 1..100, or a cursor this list did not issue to the caller."
        },
        401,
        500,
        413,
        431,
        503,
    )


def _list_responses(model: type[BaseModel], sdk_call: str) -> dict[int, OpenAPIResponse]:
    """Both list operations answer the same page (each under its own schema name, see SDK_INLINE_SUCCESS)."""
    return {
        200: {
            "description": "One page of the caller's chats; `nextCursor` is null on the last page.",
            "content": {
                "application/json": {
                    "model": model,
                    "examples": {"sdk": {"summary": sdk_call, "value": LIST_EXAMPLE}},
                }
            },
            "links": {
                "DeleteFirstChat": {
                    "operationId": "deleteChat",
                    "parameters": {"chatId": "$response.body#/chatIds/0"},
                }
            },
        },
        **_list_problems(),
    }


def _get_chats_for_user() -> dict[str, Any]:
    return {
        "rule": "/chats",
        "operation_id": "getChatsForUser",
        "summary": "Get all chats assigned to user",
        "description": (
            "The chat ids assigned to the calling user, with each chat's character and creation time, newest "
            "first, a page at a time: useful to fetch a chat's context and message history. A chat just created "
            "by `initialize` is already in the list. The SDK's `chats.listForUser()` reads the first page; "
            "`chats.listPages()` (`GET /chats/pages`, the same list) pages through all of it."
        ),
        "tags": ["chats"],
        "responses": _list_responses(GetChatsForUserResponse, "chats.listForUser()"),
        "openapi_extensions": {
            "x-speakeasy-group": "chats",
            "x-speakeasy-name-override": "listForUser",
            # No x-speakeasy-pagination here: it would make `listForUser` return a PageIterator whose pages wrap the
            # body in `.result` (the seed returns the body). Paging is `getChatPagesForUser`'s.
            "x-speakeasy-retries": RETRY_ON_THROTTLING_AND_CONNECTION_ERRORS,
        },
    }


# ---------------------------------------------------------------- getChatPagesForUser: GET /chats/pages


def _get_chat_pages_for_user() -> dict[str, Any]:
    """The same list as `getChatsForUser`, for SDKs: `limit` and `cursor` visible, and cursor pagination."""
    return {
        "rule": "/chats/pages",
        "operation_id": "getChatPagesForUser",
        "summary": "Page through all chats assigned to user",
        "description": (
            "The same list as `GET /chats` (same parameters, same answers), for SDKs that page by themselves: "
            "`chats.listPages({ limit })` returns a page iterator that feeds `nextCursor` back as `cursor` until "
            "it is null. A page is never empty while `nextCursor` is set, so following it reaches every chat."
        ),
        "tags": ["chats"],
        "responses": _list_responses(ChatListPage, "chats.listPages()"),
        "openapi_extensions": {
            "x-speakeasy-group": "chats",
            "x-speakeasy-name-override": "listPages",
            # https://www.speakeasy.com/docs/sdks/customize/runtime/pagination: `next()` re-calls with
            # `cursor = nextCursor` and ends when it is null. No `results`: with it the SDK would also stop at an
            # empty array ("When provided, next() returns null if the array ... is empty"), which the server never
            # sends with a cursor - but a stop condition the server does not need is one that can only cut short.
            "x-speakeasy-pagination": {
                "type": "cursor",
                "inputs": [{"name": "cursor", "in": "parameters", "type": "cursor"}],
                "outputs": {"nextCursor": "$.nextCursor"},
            },
            "x-speakeasy-retries": RETRY_ON_THROTTLING_AND_CONNECTION_ERRORS,
        },
    }


# ---------------------------------------------------------------- initializeChat: POST /characters/{characterId}/chats

InitializeCharacterId = Annotated[
    CharacterId,
    BeforeValidator(decimal_digits),
    Path(
        description="The AI character to chat with.",
        openapi_examples={"sdk": {"summary": "chats.initialize(330905)", "value": 330905}},
    ),
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description=(
            "1..255 visible ASCII characters, e.g. a UUID. Repeating a request with the same key returns "
            "the same chat (200) instead of creating another; keys are kept for 24 hours. Not a parameter of "
            "the SDK's `chats.initialize(characterId, options?)`: send it as "
            '`initialize(330905, { fetchOptions: { headers: { "Idempotency-Key": key } } })`.'
        ),
        openapi_examples={"uuid": {"value": "5f0c6f1e-3b8a-4d2e-9a57-2f1f0f7c9b1d"}},
    ),
]

# Powertools' OpenAPIResponseHeader TypedDict lacks `required` (its Header model has it), hence the plain dict.
_LOCATION: dict[str, Any] = {
    "description": (
        "The new chat's path on this server: `/chats/{chatId}`, prefixed with `/{stage}` on a deployed stage's "
        "execute-api URL (the id is what `chats.delete(chatId)` takes)."
    ),
    "required": True,
    "schema": {
        "type": "string",
        "pattern": "^(/[a-z0-9-]{1,32})?/chats/[1-9][0-9]{0,15}$",
        "examples": ["/chats/8", "/dev/chats/8"],
    },
}


def _chat_response(description: str) -> OpenAPIResponse:
    """201 and the idempotent 200 replay answer alike: the chat, its greeting and where it lives."""
    return {
        "description": description,
        "headers": {"Location": _LOCATION},  # type: ignore[dict-item]
        "content": {
            "application/json": {
                "model": InitializeChatResponse,
                "examples": {"sdk": {"summary": "chats.initialize(330905)", "value": INITIALIZE_EXAMPLE}},
            }
        },
        # Stateful contract tests and SDK docs: what a client does next with the new chat.
        "links": {
            "DeleteChat": {"operationId": "deleteChat", "parameters": {"chatId": "$response.body#/chatId"}},
            "ListChats": {"operationId": "getChatsForUser"},
        },
    }


def _initialize_chat() -> dict[str, Any]:
    return {
        "rule": "/characters/<characterId>/chats",
        "operation_id": "initializeChat",
        "summary": "Initialize chat with AI character",
        "description": (
            "Start a chat with an AI character; the character's greeting is stored in the same write as the "
            "chat's first message and returned with it. The SDK retries 429 and 503 on its own (the server wrote "
            "nothing), but not a lost connection, after which the chat may exist: send an `Idempotency-Key` and "
            "repeat the call with the same key to retry safely — the repeat returns the same chat (200) and "
            "creates nothing."
        ),
        "tags": ["chats"],
        "status_code": 201,
        "responses": {
            201: _chat_response("The chat was created."),
            200: _chat_response("Idempotent replay: this key already created this chat; nothing new."),
            **problem_responses(
                {
                    403: "The caller's account was deleted (a token issued before the deletion): nothing was "
                    "written, and nothing can be stored for this account any more.",
                    404: "No AI character with this id.",
                    409: "Either this Idempotency-Key was already used to start a chat with another character "
                    "(`type` .../idempotency-key-conflict), or the caller already has the maximum number of chats "
                    "(`type` .../chat-limit-reached: delete one to free a slot). Nothing was written.",
                },
                400,
                401,
                500,
                413,
                431,
                503,
                504,
                more=("chat-limit-reached",),
            ),
        },
        "openapi_extensions": {
            "x-speakeasy-group": "chats",
            "x-speakeasy-name-override": "initialize",
            "x-speakeasy-retries": RETRY_ON_THROTTLING_ONLY,
        },
    }


# ---------------------------------------------------------------- deleteChat: DELETE /chats/{chatId}

DeleteChatId = Annotated[
    ChatId,
    BeforeValidator(decimal_digits),
    Path(
        description="The chat to delete.",
        openapi_examples={"sdk": {"summary": "chats.delete(8)", "value": 8}},
    ),
]


def _delete_chat() -> dict[str, Any]:
    return {
        "rule": "/chats/<chatId>",
        "operation_id": "deleteChat",
        "summary": "Delete a chat",
        "description": (
            "Delete one of the caller's chats, given its chat id, together with all of its stored message "
            "history. The chat leaves every list at once; its messages are purged shortly after. Safe to retry: "
            "for 24 hours, the same caller repeating the delete (e.g. after a lost response) gets the same 200."
        ),
        "tags": ["chats"],
        "responses": {
            200: {
                "description": "The chat was deleted.",
                "content": {
                    "application/json": {
                        "model": DeleteChatResponse,
                        "examples": {"sdk": {"summary": "chats.delete(8)", "value": DELETE_EXAMPLE}},
                    }
                },
            },
            **problem_responses(
                {
                    403: "The caller's account was deleted (a token issued before the deletion): nothing changed.",
                    404: "No chat with this id belongs to the caller (someone else's chat is indistinguishable).",
                    504: "The database did not confirm the delete in time: repeat it (a delete that did happen "
                    "answers 200 again).",
                },
                400,
                401,
                500,
                413,
                431,
                503,
                504,
            ),
        },
        "openapi_extensions": {
            "x-speakeasy-group": "chats",
            "x-speakeasy-name-override": "delete",
            "x-speakeasy-retries": RETRY_DELETE,
        },
    }


_OPERATIONS = {
    "getChatsForUser": _get_chats_for_user,
    "getChatPagesForUser": _get_chat_pages_for_user,
    "initializeChat": _initialize_chat,
    "deleteChat": _delete_chat,
}


def operation(operation_id: str) -> dict[str, Any]:
    """The route decorator's arguments for one operation: ``@app.get(**operation("getChatsForUser"))``.

    Built on demand, so a function builds only its own operation's documentation."""
    return _OPERATIONS[operation_id]()
