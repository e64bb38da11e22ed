"""Every API event in events/ is a valid HTTP API v2 event the functions answer as expected."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.context import FakeContext
from tests.support.env import ROOT
from tests.support.loader import load_function

FUNCTION_OF_ROUTE = {
    "GET /chats": "list_chats",
    "POST /characters/{characterId}/chats": "initialize_chat",
    "DELETE /chats/{chatId}": "delete_chat",
}
EXPECTED = {
    "list_chats": 200,
    "list_chats_with_cursor": 400,  # signed with the local runtime's cursor secret, not the tests'
    "initialize_chat": 201,
    "initialize_chat_idempotent": 201,
    "delete_chat": 404,
    "delete_chat_missing": 404,
    "delete_chat_bad_id": 400,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_event_file_gets_the_expected_status(api: Api, name: str) -> None:
    event: dict[str, Any] = json.loads((ROOT / "events" / f"{name}.json").read_text())
    assert event["version"] == "2.0"
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
    result = load_function(FUNCTION_OF_ROUTE[event["routeKey"]]).handler(event, FakeContext())
    assert result["statusCode"] == EXPECTED[name], result
