"""DeleteChatFunction: ``DELETE /chats/{chatId}`` (SDK ``chats.delete(chatId)``). Entry point only.

The chat leaves every list at once; its messages are purged asynchronously by the cleanup function.
"""

from __future__ import annotations

from typing import Annotated, Any

from aurora_chats.dynamodb import DynamoDBChatRepository
from aurora_chats.http import (
    RETRY_ON_THROTTLING_AND_CONNECTION_ERRORS,
    create_app,
    current_caller,
    problem_responses,
)
from aurora_chats.ids import ChatId, decimal_digits
from aurora_chats.models import DELETE_EXAMPLE, DeleteChatResponse
from aurora_chats.observability import logger, metrics, tracer, with_request_correlation_id
from aurora_chats.usecases import delete_chat
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BeforeValidator

app = create_app()


@app.delete(
    "/chats/<chatId>",
    operation_id="deleteChat",
    summary="Delete a chat",
    description=(
        "Delete one of the caller's chats, given its chat id, together with all of its stored message history. "
        "The chat leaves every list at once; its messages are purged shortly after. Safe to retry: a repeat "
        "after a lost response answers 404."
    ),
    tags=["chats"],
    responses={
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
            {404: "No chat with this id belongs to the caller (someone else's chat is indistinguishable)."},
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
        "x-speakeasy-name-override": "delete",
        "x-speakeasy-retries": RETRY_ON_THROTTLING_AND_CONNECTION_ERRORS,
    },
)
def delete_chat_route(
    chatId: Annotated[
        ChatId,
        BeforeValidator(decimal_digits),
        Path(
            description="The chat to delete.",
            openapi_examples={"sdk": {"summary": "chats.delete(8)", "value": 8}},
        ),
    ],
) -> DeleteChatResponse:
    caller = current_caller(app)
    result = delete_chat(DynamoDBChatRepository(), caller.user_id, chatId)
    metrics.add_metric(name="ChatsDeleted", unit=MetricUnit.Count, value=1)
    return result


# log_event=False explicitly: POWERTOOLS_LOGGER_LOG_EVENT must not be able to log the Authorization header.
# The correlation id (the request id) is set by with_request_correlation_id: no JMESPath per request.
@logger.inject_lambda_context(clear_state=True, log_event=False)
@with_request_correlation_id
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
