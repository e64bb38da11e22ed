"""InitializeChatFunction: ``POST /characters/{characterId}/chats`` (SDK ``chats.initialize(characterId)``).

Entry point only: parse, one use case, answer (201 created, 200 idempotent replay).
"""

from __future__ import annotations

from typing import Annotated, Any

from aurora_chats.dynamodb import DynamoDBChatRepository
from aurora_chats.http import create_app, current_caller
from aurora_chats.ids import MAX_ID, DecimalInt
from aurora_chats.models import InitializeChatResponse
from aurora_chats.observability import logger, metrics, tracer
from aurora_chats.settings import get_settings
from aurora_chats.usecases import initialize_chat
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Header, Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

app = create_app()


@app.post(
    "/characters/<characterId>/chats",
    operation_id="initializeChat",
    summary="Initialize chat with AI character",
    description="Start a chat with an AI character; the character's greeting is stored as the chat's first message.",
    tags=["chats"],
    status_code=201,
    openapi_extensions={"x-speakeasy-group": "chats", "x-speakeasy-name-override": "initialize"},
)
def initialize_chat_route(
    characterId: Annotated[DecimalInt, Path(ge=1, le=MAX_ID, description="The AI character to chat with.")],
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Repeat a request safely: the same key returns the same chat.",
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
        headers={"Location": f"/chats/{result.chat_id}"},
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
