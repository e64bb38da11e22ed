"""DeleteChatFunction: ``DELETE /chats/{chatId}`` (SDK ``chats.delete(chatId)``). Entry point only.

The chat leaves every list at once; its messages are purged asynchronously by the cleanup function.
"""

from __future__ import annotations

from typing import Annotated, Any

from aurora_chats.dynamodb import DynamoDBChatRepository
from aurora_chats.http import create_app, current_caller
from aurora_chats.ids import MAX_ID, DecimalInt
from aurora_chats.models import DeleteChatResponse
from aurora_chats.observability import logger, metrics, tracer
from aurora_chats.usecases import delete_chat
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

app = create_app()


@app.delete(
    "/chats/<chatId>",
    operation_id="deleteChat",
    summary="Delete a chat",
    description="Delete one of the caller's chats and all of its stored message history.",
    tags=["chats"],
    openapi_extensions={"x-speakeasy-group": "chats", "x-speakeasy-name-override": "delete"},
)
def delete_chat_route(
    chatId: Annotated[DecimalInt, Path(ge=1, le=MAX_ID, description="The chat to delete.")],
) -> DeleteChatResponse:
    caller = current_caller(app)
    result = delete_chat(DynamoDBChatRepository(), caller.user_id, chatId)
    metrics.add_metric(name="ChatsDeleted", unit=MetricUnit.Count, value=1)
    return result


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
