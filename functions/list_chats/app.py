"""ListChatsFunction: ``GET /chats`` (SDK ``chats.listForUser()``). Entry point only: parse, one use case, answer."""

from __future__ import annotations

from aurora_chats import api_docs
from aurora_chats.dal.chats import chat_repository
from aurora_chats.http import api_handler, create_app, current_caller
from aurora_chats.models import GetChatsForUserResponse
from aurora_chats.settings import get_settings
from aurora_chats.usecases import list_chats

app = create_app()


@app.get(**api_docs.operation("getChatsForUser"))
def get_chats_for_user(
    limit: api_docs.ListLimit = 20, cursor: api_docs.ListCursor = None
) -> GetChatsForUserResponse:
    caller = current_caller(app)
    return list_chats(chat_repository(), get_settings(), caller.user_id, limit, cursor)


handler = api_handler(app)
