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

import base64
import importlib.util
import re
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote, unquote

from aurora_local.events import http_api_event
from aurora_local.template import ROOT, TEMPLATE, resources

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
ClaimsFor = Callable[[str], dict[str, Any] | None]
StartResponse = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # the template's path, e.g. /chats/{chatId}
    function: str  # the template's logical id
    app: Path  # functions/<name>/app.py
    pattern: re.Pattern[str]

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


def template_routes(template: Path = TEMPLATE) -> list[Route]:
    """Every ``HttpApi`` event of the template, in template order."""
    routes = []
    for name, resource in resources("AWS::Serverless::Function", template).items():
        props = resource.get("Properties", {})
        for event in props.get("Events", {}).values():
            if event.get("Type") != "HttpApi":
                continue
            path = event["Properties"]["Path"]
            # API Gateway matches a `{name}` variable against exactly one (still percent-encoded) path segment.
            regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
            routes.append(
                Route(
                    method=event["Properties"]["Method"].upper(),
                    path=path,
                    function=name,
                    app=ROOT / props["CodeUri"] / "app.py",
                    pattern=re.compile(f"^{regex}$"),
                )
            )
    return routes


def load_handler(app: Path) -> Handler:
    """``app.handler`` of a function; the module is named ``functions_<dir>_app`` as the tests' loader names it."""
    name = f"functions_{app.parent.name}_app"
    module: ModuleType | None = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, app)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {app}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    handler: Handler = module.handler
    return handler


class LambdaContext:
    """What the handlers read from a Lambda context object."""

    memory_limit_in_mb = 512

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


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

    def __init__(
        self,
        claims_for: ClaimsFor,
        *,
        routes: list[Route] | None = None,
        load: Callable[[Path], Handler] = load_handler,
    ) -> None:
        self.claims_for = claims_for
        self.routes = routes if routes is not None else template_routes()
        self._load = load

    def _match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            found = route.pattern.match(raw_path)
            if found and route.method == method:
                return route, {key: unquote(value) for key, value in found.groupdict().items()}
        return None

    def _claims(self, headers: dict[str, str]) -> dict[str, Any] | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.claims_for(token.strip())

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        raw_path = _raw_path(environ)
        matched = self._match(method, raw_path)
        if matched is None:
            body = b'{"message":"Not Found"}'
            start_response(
                "404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
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
        result = self._load(route.app)(event, LambdaContext(route.function))
        return self._respond(result, start_response)

    @staticmethod
    def _respond(result: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        status = int(result.get("statusCode", 200))
        body = result.get("body") or ""
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((str(name), str(value)) for value in values)
        headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
        if not any(name.lower() == "content-length" for name, _ in headers):
            headers.append(("Content-Length", str(len(payload))))
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        start_response(f"{status} {phrase}", headers)
        yield payload
