"""The API client of the integration tests: calls the three handlers with real HTTP API v2 events.

``Api.call`` looks the handler up through this module's ``load_function`` at each call, so a test may replace it
(``monkeypatch.setattr(tests.support.api, "load_function", ...)``) to wrap one function's module."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aurora_local.events import http_api_event

from tests.support import loader
from tests.support.context import FakeContext


@dataclass
class Api:
    """Calls the API handlers with real HTTP API v2 events, as API Gateway would."""

    def call(
        self,
        method: str,
        path: str,
        *,
        user: str | None = "alice",
        name: str | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> Response:
        claims: dict[str, Any] | None = None
        if user is not None:
            claims = {"sub": user}
            if name is not None:
                claims["name"] = name
        segments = path.strip("/").split("/")
        params: dict[str, str]
        if method == "GET" and segments == ["chats"]:
            function, route, params = "list_chats", "GET /chats", {}
        elif method == "GET" and segments == ["chats", "pages"]:
            function, route, params = "list_chats", "GET /chats/pages", {}
        elif (
            method == "POST" and len(segments) == 3 and segments[0] == "characters" and segments[2] == "chats"
        ):
            function, route = "initialize_chat", "POST /characters/{characterId}/chats"
            params = {"characterId": segments[1]}
        elif method == "DELETE" and len(segments) == 2 and segments[0] == "chats":
            function, route, params = "delete_chat", "DELETE /chats/{chatId}", {"chatId": segments[1]}
        else:
            raise AssertionError(f"no route for {method} {path}")
        event = http_api_event(
            method, path, route_key=route, path_parameters=params, raw_query=query, headers=headers,
            claims=claims, body=body,
        )  # fmt: skip
        result = load_function(function).handler(event, FakeContext())
        return Response(result)

    def list(self, user: str | None = "alice", query: str = "") -> Response:
        return self.call("GET", "/chats", user=user, query=query)

    def list_pages(self, user: str | None = "alice", query: str = "") -> Response:
        return self.call("GET", "/chats/pages", user=user, query=query)

    def initialize(
        self, character_id: int | str = 330905, user: str | None = "alice", key: str | None = None, **kw: Any
    ) -> Response:
        headers = {"Idempotency-Key": key} if key is not None else None
        return self.call("POST", f"/characters/{character_id}/chats", user=user, headers=headers, **kw)

    def delete(self, chat_id: int | str, user: str | None = "alice") -> Response:
        return self.call("DELETE", f"/chats/{chat_id}", user=user)


class Response:
    def __init__(self, result: dict[str, Any]) -> None:
        self.raw = result
        self.status: int = result["statusCode"]
        self.headers: dict[str, str] = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        body = result.get("body") or ""
        self.json: Any = json.loads(body) if body else None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.json}>"


def load_function(name: str) -> Any:
    """The function's module (see :func:`tests.support.loader.load_function`); replaceable by a test."""
    return loader.load_function(name)
