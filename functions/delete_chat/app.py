"""DeleteChatFunction: ``DELETE /chats/{chatId}`` (SDK ``chats.delete(chatId)``). Entry point only.

The chat leaves every list at once; its messages are purged asynchronously by the cleanup function.
"""

from __future__ import annotations

from aurora_chats import api_docs
from aurora_chats.dal.chats import chat_repository
from aurora_chats.http import api_handler, create_app, current_caller
from aurora_chats.models import DeleteChatResponse
from aurora_chats.observability import metrics
from aurora_chats.usecases import delete_chat
from aws_lambda_powertools.metrics import MetricUnit

app = create_app()


@app.delete(**api_docs.operation("deleteChat"))
def delete_chat_route(chatId: api_docs.DeleteChatId) -> DeleteChatResponse:
    caller = current_caller(app)
    result, deleted_now = delete_chat(chat_repository(), caller.user_id, chatId)
    if deleted_now:  # a repeat of the caller's own delete answers alike but deleted nothing
        metrics.add_metric(name="ChatsDeleted", unit=MetricUnit.Count, value=1)
    return result


handler = api_handler(app)
