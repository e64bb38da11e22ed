"""A WSGI app that serves the API's Lambda handlers in-process, the way API Gateway's HTTP API invokes them.

For contract tests (schemathesis drives it through its WSGI transport) and other in-process HTTP clients. Routes come
from ``template.yaml`` (each function's ``HttpApi`` events), each request becomes an HTTP API payload v2 event via
:func:`aurora_local.events.http_api_event` and the matching function's ``app.handler`` answers it.

The JWT authorizer is stood in for by ``claims_for``: it maps the bearer token to the claims the real authorizer
would pass on (``None`` for an unknown token). A request without usable credentials reaches the function without
claims, so the function's own 401 problem is what is tested. An unmatched route answers like API Gateway does
(404 ``{"message": "Not Found"}``). Development tooling only: never deployed, never verifies signatures itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from aurora_local.events import http_api_event
from aurora_local.routing import Route, build_routes, gateway_message, match, to_http_response
from aurora_local.runtime import function_specs, local_functions
from aurora_local.template import TEMPLATE

ClaimsFor = Callable[[str], dict[str, Any] | None]
StartResponse = Callable[..., Any]


def template_routes(template: Path = TEMPLATE) -> list[Route]:
    """The template's ``HttpApi`` routes, matched and invoked exactly as ``make run`` does (in this process)."""
    return build_routes(local_functions(function_specs(template)), template)


def _raw_path(environ: dict[str, Any]) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw).split("?", 1)[0]
    # PEP 3333: PATH_INFO holds the decoded bytes as latin-1 text.
    path_info = str(environ.get("PATH_INFO", "/")).encode("latin-1").decode("utf-8", "replace")
    return quote(path_info, safe="/:@!$&'()*+,;=-._~")


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = (
                str(value).encode("latin-1").decode("utf-8", "replace")
            )
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return headers


class HttpApiWsgiApp:
    """``HttpApiWsgiApp(claims_for)`` is a WSGI application serving the template's HTTP API routes."""

    def __init__(self, claims_for: ClaimsFor, *, routes: list[Route] | None = None) -> None:
        self.claims_for = claims_for
        self.routes = routes if routes is not None else template_routes()

    def _claims(self, headers: dict[str, str]) -> dict[str, Any] | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.claims_for(token.strip())

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        raw_path = _raw_path(environ)
        matched = match(self.routes, method, raw_path)
        if matched is None:
            return self._respond(*gateway_message(404, "Not Found"), start_response)
        route, path_parameters = matched
        headers = _headers(environ)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body_bytes = environ["wsgi.input"].read(length) if length > 0 else None
        event = http_api_event(
            method,
            unquote(raw_path),  # HTTP APIs deliver rawPath (and path parameters) percent-decoded
            route_key=route.route_key,
            path_parameters=path_parameters,
            raw_query=str(environ.get("QUERY_STRING", "")),
            headers=headers,
            claims=self._claims(headers),
            body=body_bytes,
        )
        return self._respond(*to_http_response(route.function.invoke(event)), start_response)

    @staticmethod
    def _respond(
        status: int, headers: list[tuple[str, str]], payload: bytes, start_response: StartResponse
    ) -> Iterator[bytes]:
        if not any(name.lower() == "content-length" for name, _ in headers):
            headers = [*headers, ("Content-Length", str(len(payload)))]
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        start_response(f"{status} {phrase}", headers)
        yield payload
