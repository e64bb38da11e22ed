"""ListChatsFunction: ``GET /chats`` (SDK ``chats.listForUser()``). Entry point only: parse, one use case, answer."""

from __future__ import annotations

from typing import Annotated, Any

from aurora_chats.cursor import MAX_CURSOR_LENGTH
from aurora_chats.dynamodb import DynamoDBChatRepository
from aurora_chats.http import create_app, current_caller
from aurora_chats.ids import DecimalInt
from aurora_chats.models import GetChatsForUserResponse
from aurora_chats.observability import logger, metrics, tracer
from aurora_chats.settings import get_settings
from aurora_chats.usecases import list_chats
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

app = create_app()


@app.get(
    "/chats",
    operation_id="getChatsForUser",
    summary="Get all chats assigned to user",
    description="The chat ids assigned to the calling user, newest first, a page at a time.",
    tags=["chats"],
    openapi_extensions={"x-speakeasy-group": "chats", "x-speakeasy-name-override": "listForUser"},
)
def get_chats_for_user(
    limit: Annotated[DecimalInt, Query(ge=1, le=100, description="Page size, 1..100.")] = 20,
    cursor: Annotated[
        str | None,
        Query(min_length=1, max_length=MAX_CURSOR_LENGTH, description="The previous page's `nextCursor`."),
    ] = None,
) -> GetChatsForUserResponse:
    caller = current_caller(app)
    return list_chats(DynamoDBChatRepository(), get_settings(), caller.user_id, limit, cursor)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
