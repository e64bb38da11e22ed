"""InitializeChatFunction: ``POST /characters/{characterId}/chats`` (SDK ``chats.initialize(characterId)``).

Entry point only: parse, one use case, answer (201 created, 200 idempotent replay).
"""

from __future__ import annotations

from aurora_chats import api_docs
from aurora_chats.dal.chats import chat_repository
from aurora_chats.http import api_handler, base_path, create_app, current_caller
from aurora_chats.models import InitializeChatResponse
from aurora_chats.observability import metrics
from aurora_chats.settings import get_settings
from aurora_chats.usecases import initialize_chat
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.metrics import MetricUnit

app = create_app()


@app.post(**api_docs.operation("initializeChat"))
def initialize_chat_route(
    characterId: api_docs.InitializeCharacterId, idempotency_key: api_docs.IdempotencyKeyHeader = None
) -> Response[InitializeChatResponse]:
    caller = current_caller(app)
    result, created = initialize_chat(
        chat_repository(), get_settings(), caller.user_id, caller.display_name, characterId, idempotency_key
    )
    if created:
        metrics.add_metric(name="ChatsCreated", unit=MetricUnit.Count, value=1)
    return Response(
        status_code=201 if created else 200,
        content_type=content_types.APPLICATION_JSON,
        body=result,
        headers={"Location": f"{base_path(app)}/chats/{result.chat_id}"},
    )


handler = api_handler(app)
