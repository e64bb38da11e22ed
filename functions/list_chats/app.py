"""ListChatsFunction: ``GET /chats`` (SDK ``chats.listForUser()``). Entry point only: parse, one use case, answer."""

from __future__ import annotations

from typing import Annotated, Any

from aurora_chats.cursor import MAX_CURSOR_LENGTH
from aurora_chats.dynamodb import DynamoDBChatRepository
from aurora_chats.http import (
    RETRY_ON_THROTTLING_AND_CONNECTION_ERRORS,
    create_app,
    current_caller,
    problem_responses,
)
from aurora_chats.ids import decimal_digits
from aurora_chats.models import LIST_EXAMPLE, GetChatsForUserResponse
from aurora_chats.observability import logger, metrics, tracer, with_request_correlation_id
from aurora_chats.settings import get_settings
from aurora_chats.usecases import list_chats
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BeforeValidator, Field

app = create_app()


@app.get(
    "/chats",
    operation_id="getChatsForUser",
    summary="Get all chats assigned to user",
    description=(
        "The chat ids assigned to the calling user, with each chat's character and creation time, newest first, "
        "a page at a time: useful to fetch a chat's context and message history. A chat just created by "
        "`initialize` is already in the list."
    ),
    tags=["chats"],
    responses={
        200: {
            "description": "One page of the caller's chats; `nextCursor` is null on the last page.",
            "content": {
                "application/json": {
                    "model": GetChatsForUserResponse,
                    "examples": {
                        "sdk": {
                            "summary": "chats.listForUser()",
                            "value": LIST_EXAMPLE,
                        }
                    },
                }
            },
            "links": {
                "DeleteFirstChat": {
                    "operationId": "deleteChat",
                    "parameters": {"chatId": "$response.body#/chatIds/0"},
                }
            },
        },
        **problem_responses(
            {
                400: "The request is not valid: `limit` out of 1..100, or a cursor this list did not issue to the caller."
            },
            401,
            500,
            413,
            431,
            503,
        ),
    },
    openapi_extensions={
        "x-speakeasy-group": "chats",
        "x-speakeasy-name-override": "listForUser",
        # The regenerated SDK pages by itself: it feeds `nextCursor` back as `cursor` until it is null.
        "x-speakeasy-pagination": {
            "type": "cursor",
            "inputs": [{"name": "cursor", "in": "parameters", "type": "cursor"}],
            "outputs": {"nextCursor": "$.nextCursor", "results": "$.chatIds"},
        },
        "x-speakeasy-retries": RETRY_ON_THROTTLING_AND_CONNECTION_ERRORS,
    },
)
def get_chats_for_user(
    limit: Annotated[
        int,
        Field(ge=1, le=100),
        BeforeValidator(decimal_digits),
        Query(description="Page size, 1..100.", openapi_examples={"default": {"value": 20}}),
    ] = 20,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_CURSOR_LENGTH,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="Opaque: the previous page's `nextCursor`, valid only for the caller it was issued to.",
        ),
    ] = None,
) -> GetChatsForUserResponse:
    caller = current_caller(app)
    return list_chats(DynamoDBChatRepository(), get_settings(), caller.user_id, limit, cursor)


# log_event=False explicitly: POWERTOOLS_LOGGER_LOG_EVENT must not be able to log the Authorization header.
# The correlation id (the request id) is set by with_request_correlation_id: no JMESPath per request.
@logger.inject_lambda_context(clear_state=True, log_event=False)
@with_request_correlation_id
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
