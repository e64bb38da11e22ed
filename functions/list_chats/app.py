"""ListChatsFunction: ``GET /chats`` (SDK ``chats.listForUser()``) and ``GET /chats/pages`` (``chats.listPages()``).

Entry point only: parse, one use case, answer."""

from __future__ import annotations

from aurora_chats import api_docs
from aurora_chats.dal.chats import chat_repository
from aurora_chats.http import api_handler, create_app, current_caller
from aurora_chats.models import ChatListPage, GetChatsForUserResponse
from aurora_chats.settings import get_settings
from aurora_chats.usecases import list_chats

app = create_app()


@app.get(**api_docs.operation("getChatsForUser"))
def get_chats_for_user(
    limit: api_docs.ListLimit = 20, cursor: api_docs.ListCursor = None
) -> GetChatsForUserResponse:
    caller = current_caller(app)
    return list_chats(chat_repository(), get_settings(), caller.user_id, limit, cursor)


@app.get(**api_docs.operation("getChatPagesForUser"))
def get_chat_pages_for_user(
    limit: api_docs.ListLimit = 20, cursor: api_docs.ListCursor = None
) -> ChatListPage:
    """The same list for SDKs that page by themselves (`chats.listPages`)."""
    caller = current_caller(app)
    page = list_chats(chat_repository(), get_settings(), caller.user_id, limit, cursor)
    return ChatListPage.model_construct(**dict(page))  # already validated: only the documented type differs


handler = api_handler(app)
