"""InitializeChatFunction: ``POST /characters/{characterId}/chats`` (SDK ``chats.initialize(characterId)``).

Entry point only: parse, one use case, answer (201 created, 200 idempotent replay).
"""

from __future__ import annotations

from typing import Annotated, Any

from aurora_chats.dynamodb import DynamoDBChatRepository
from aurora_chats.http import RETRY_ON_THROTTLING_ONLY, create_app, current_caller, problem_responses
from aurora_chats.ids import CharacterId, decimal_digits
from aurora_chats.models import INITIALIZE_EXAMPLE, InitializeChatResponse
from aurora_chats.observability import logger, metrics, tracer, with_request_correlation_id
from aurora_chats.settings import get_settings
from aurora_chats.usecases import initialize_chat
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Header, Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BeforeValidator

app = create_app()


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
                "examples": {
                    "sdk": {
                        "summary": "chats.initialize(330905)",
                        "value": INITIALIZE_EXAMPLE,
                    }
                },
            }
        },
        # Stateful contract tests and SDK docs: what a client does next with the new chat.
        "links": {
            "DeleteChat": {"operationId": "deleteChat", "parameters": {"chatId": "$response.body#/chatId"}},
            "ListChats": {"operationId": "getChatsForUser"},
        },
    }


@app.post(
    "/characters/<characterId>/chats",
    operation_id="initializeChat",
    summary="Initialize chat with AI character",
    description=(
        "Start a chat with an AI character; the character's greeting is stored in the same write as the chat's "
        "first message and returned with it. The SDK retries 429 and 503 on its own (the server wrote nothing), "
        "but not a lost connection, after which the chat may exist: send an `Idempotency-Key` and repeat the "
        "call with the same key to retry safely — the repeat returns the same chat (200) and creates nothing."
    ),
    tags=["chats"],
    status_code=201,
    responses={
        201: _chat_response("The chat was created."),
        200: _chat_response("Idempotent replay: this key already created this chat; nothing new."),
        **problem_responses(
            {
                404: "No AI character with this id.",
                409: "This Idempotency-Key was already used to start a chat with another character.",
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
    openapi_extensions={
        "x-speakeasy-group": "chats",
        "x-speakeasy-name-override": "initialize",
        "x-speakeasy-retries": RETRY_ON_THROTTLING_ONLY,
    },
)
def initialize_chat_route(
    characterId: Annotated[
        CharacterId,
        BeforeValidator(decimal_digits),
        Path(
            description="The AI character to chat with.",
            openapi_examples={"sdk": {"summary": "chats.initialize(330905)", "value": 330905}},
        ),
    ],
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description=(
                "1..255 visible ASCII characters, e.g. a UUID. Repeating a request with the same key returns "
                "the same chat (200) instead of creating another; keys are kept for 24 hours."
            ),
            openapi_examples={"uuid": {"value": "5f0c6f1e-3b8a-4d2e-9a57-2f1f0f7c9b1d"}},
        ),
    ] = None,
) -> Response[InitializeChatResponse]:
    caller = current_caller(app)
    result, created = initialize_chat(
        DynamoDBChatRepository(),
        get_settings(),
        caller.user_id,
        caller.display_name,
        characterId,
        idempotency_key,
    )
    if created:
        metrics.add_metric(name="ChatsCreated", unit=MetricUnit.Count, value=1)
    return Response(
        status_code=201 if created else 200,
        content_type=content_types.APPLICATION_JSON,
        body=result,
        headers={"Location": f"{_base_path()}/chats/{result.chat_id}"},
    )


def _base_path() -> str:
    """``/<stage>`` on a deployed stage's execute-api URL (the stage is part of every path there), else ``""``."""
    event = app.current_event
    return event.raw_path[: len(event.raw_path) - len(event.path)]


# log_event=False explicitly: POWERTOOLS_LOGGER_LOG_EVENT must not be able to log the Authorization header.
# The correlation id (the request id) is set by with_request_correlation_id: no JMESPath per request.
@logger.inject_lambda_context(clear_state=True, log_event=False)
@with_request_correlation_id
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
