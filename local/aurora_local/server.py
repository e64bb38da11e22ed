"""The HTTP API of ``template.yaml`` served locally: real HTTP in, API Gateway HTTP API (payload 2.0) events out.

Routes come from the functions' ``HttpApi`` events (method, path, ``{param}`` / ``{proxy+}``, ``$default``) and the
API's authorizer (``DefaultAuthorizer`` or the route's ``Auth``). Per request, as API Gateway does it: match the route
(none: 404 ``{"message":"Not Found"}``), run the JWT authorizer (reject: 401 before any function runs), build the v2
event (headers lower-cased, repeated ones comma-joined, cookies, query, path parameters, base64 for binary bodies,
requestContext with requestId/time/http/authorizer), invoke the function, and turn its result into the response
(``statusCode``/``headers``/``multiValueHeaders``/``cookies``/``isBase64Encoded``/``body``, or any other JSON value as
a 200 ``application/json``). A function that raises is a 500 ``{"message":"Internal Server Error"}``.

Requests are served by a thread each; different functions run concurrently, each in its own execution environment
(see :mod:`aurora_local.runtime`); there is no lock across functions.
Local extras, on paths the template does not route: ``GET /openapi.json`` and ``GET /docs`` (Swagger UI, offline).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

from aurora_local.auth import Unauthorized, authorize, problem_body
from aurora_local.events import http_api_event
from aurora_local.routing import Route, build_routes, gateway_message, match, to_http_response
from aurora_local.runtime import FunctionError, LocalFunction, RuntimeStopping
from aurora_local.template import ROOT

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
OPENAPI_FILE = ROOT / "openapi.json"
# Headers the gateway sets itself: a function's own value is dropped.
_HOP_BY_HOP = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "apigw-requestid"}
)

log = Logger(service="aurora-local")


# ---------------------------------------------------------------- local extras: the contract and Swagger UI


def _swagger_dir() -> Path:
    import aws_lambda_powertools.event_handler.openapi.swagger_ui as swagger_ui

    return Path(swagger_ui.__file__).parent


class LocalApiServer(ThreadingHTTPServer):
    """The API on one port; :meth:`serve` in a thread until :meth:`stop` (bounded: it never waits on a request)."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    poll_seconds = 0.1

    def __init__(self, address: tuple[str, int], functions: dict[str, LocalFunction]) -> None:
        self.functions = functions
        self.routes = build_routes(functions)
        self._openapi: bytes | None = None
        self.closing = False  # set by stop(): kept-alive connections get a 503 and are closed, not served
        super().__init__(address, RequestHandler)

    def serve(self) -> None:
        """Accept connections until :meth:`stop` (``serve_forever`` without its unbounded ``shutdown()`` wait)."""
        self.timeout = self.poll_seconds
        while not self.closing:
            try:
                self.handle_request()
            except (OSError, ValueError):  # the socket was closed under select(): stop() gave up waiting
                if not self.closing:
                    raise

    def stop(self, serving: threading.Thread | None, timeout: float = 1.0) -> None:
        """No more requests (those in flight finish, answering ``Connection: close``); the port is free after it."""
        self.closing = True
        if serving is not None:
            serving.join(timeout)
        self.server_close()

    def openapi(self) -> bytes:
        if OPENAPI_FILE.is_file():
            return OPENAPI_FILE.read_bytes()
        if self._openapi is None:  # no committed document: the one builder's, as `make openapi` writes it
            from aurora_local.openapi import build_document, render

            self._openapi = render(build_document()).encode()
        return self._openapi

    def docs_page(self) -> bytes:
        from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

        spec: dict[str, Any] = json.loads(self.openapi())
        spec["servers"] = [{"url": "/", "description": "this local runtime"}]
        components = spec.setdefault("components", {})
        if not components.get("securitySchemes"):
            components["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
            spec["security"] = [{"bearer": []}]
        html = generate_swagger_html(
            json.dumps(spec),
            "/docs/swagger-ui-bundle.min.js",
            "/docs/swagger-ui.min.css",
            "/docs",
            None,
            True,
        )
        return html.encode()

    def local_extra(
        self, method: str, raw_path: str, raw_query: str
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        if method not in ("GET", "HEAD"):
            return None
        if raw_path == "/openapi.json" or (raw_path == "/docs" and "format=json" in raw_query):
            return 200, [("Content-Type", "application/json")], self.openapi()
        if raw_path in ("/docs", "/docs/"):
            return 200, [("Content-Type", "text/html; charset=utf-8")], self.docs_page()
        assets = {
            "/docs/swagger-ui-bundle.min.js": "text/javascript; charset=utf-8",
            "/docs/swagger-ui.min.css": "text/css; charset=utf-8",
        }
        if raw_path in assets:
            body = (_swagger_dir() / raw_path.removeprefix("/docs/")).read_bytes()
            return 200, [("Content-Type", assets[raw_path]), ("Cache-Control", "max-age=3600")], body
        return None


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall between them
    server: LocalApiServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, CONNECT, PROPFIND...) is routed too: no route serves it, so the client gets the
        gateway's 404 ``{"message":"Not Found"}``, never ``http.server``'s 501 HTML page."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What ``http.server`` rejects before any route is matched (a header line over 64 KiB, over 100 headers, an
        over-long or malformed request line) is answered as JSON like every other local answer, never its HTML page:
        a 431 is the API's documented ``request-header-fields-too-large`` problem, anything else the gateway's
        ``{"message": ...}``."""
        phrase = self.responses.get(code, ("Error", ""))[0]
        log.warning("request rejected", status=code, reason=message or phrase)
        if code == 431:
            content_type = "application/problem+json"
            detail = f"The request headers are too large ({message or phrase})."
            payload = problem_body(431, "request-header-fields-too-large", detail)
        else:
            content_type = "application/json"
            payload = json.dumps({"message": phrase}).encode()
        self.close_connection = True
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format % args)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_REQUEST_BYTES:
                    raise OverflowError
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            raise OverflowError
        return self.rfile.read(length) if length else b""

    def _headers(self) -> dict[str, str]:
        joined: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            if key in joined:
                joined[key] += ("; " if key == "cookie" else ",") + value
            else:
                joined[key] = value
        client_ip = self.client_address[0]
        joined["x-forwarded-for"] = (
            f"{joined['x-forwarded-for']}, {client_ip}" if "x-forwarded-for" in joined else client_ip
        )
        joined["x-forwarded-port"] = str(self.server.server_address[1])
        joined["x-forwarded-proto"] = "http"
        return joined

    def _serve(self) -> None:
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        method = self.command.upper()
        raw_path, _, raw_query = self.path.partition("?")
        route_key = "-"
        if self.server.closing:  # a kept-alive connection after the runtime began to stop: nothing more runs
            self.close_connection = True
            status, headers, payload = gateway_message(503, "Service Unavailable")
        else:
            status, headers, payload, route_key = self._answer(method, raw_path, raw_query, request_id)
        if self.server.closing:  # in flight when the runtime began to stop: answered, then closed
            self.close_connection = True
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Apigw-Requestid", request_id)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)
        log.info(
            "request",
            requestId=request_id,
            routeKey=route_key,
            method=method,
            path=raw_path,
            status=status,
            latencyMs=round((time.perf_counter() - started) * 1000, 1),
        )

    def _answer(
        self, method: str, raw_path: str, raw_query: str, request_id: str
    ) -> tuple[int, list[tuple[str, str]], bytes, str]:
        route_key = "-"
        try:
            body = self._read_body()
        except OverflowError:
            self.close_connection = True
            status, headers, payload = gateway_message(413, "Request Entity Too Large")
        except ValueError:  # an unreadable Content-Length or chunk size
            self.close_connection = True
            status, headers, payload = gateway_message(400, "Bad Request")
        else:
            found = match(self.server.routes, method, raw_path)
            extra = None if found else self.server.local_extra(method, raw_path, raw_query)
            if extra is not None:
                status, headers, payload = extra
            elif found is None:
                status, headers, payload = gateway_message(404, "Not Found")
            else:
                route, parameters = found
                route_key = route.route_key
                status, headers, payload = self._invoke(
                    route, parameters, method, raw_path, raw_query, body, request_id
                )
        return status, headers, payload, route_key

    def _invoke(
        self,
        route: Route,
        parameters: dict[str, str],
        method: str,
        raw_path: str,
        raw_query: str,
        body: bytes | None,
        request_id: str,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = self._headers()
        claims: dict[str, Any] | None = None
        scopes: list[str] | None = None
        if route.authorizer is not None:
            try:
                claims, scopes = authorize(headers.get(route.authorizer.identity_header))
            except Unauthorized as exc:
                problem = [("Content-Type", "application/problem+json"), ("WWW-Authenticate", "Bearer")]
                return 401, problem, problem_body(401, "unauthenticated", str(exc))
            if route.scopes and not set(route.scopes) & set(scopes or ()):
                detail = "The token lacks the scope this route requires."
                return (
                    403,
                    [("Content-Type", "application/problem+json")],
                    problem_body(403, "forbidden", detail),
                )
        event = http_api_event(
            method,
            raw_path,
            route_key=route.route_key,
            path_parameters=parameters or None,
            raw_query=raw_query,
            headers=headers,
            claims=claims,
            body=body or None,
            source_ip=self.client_address[0],
            request_id=request_id,
        )
        if claims is not None:
            event["requestContext"]["authorizer"]["jwt"]["scopes"] = scopes
        try:
            return to_http_response(route.function.invoke(event))
        except RuntimeStopping:
            return gateway_message(503, "Service Unavailable")
        except FunctionError as exc:  # the function's own process logged its stack trace
            log.error("function failed", function=route.function.name, requestId=request_id, error=str(exc))
        except Exception:
            log.exception("function failed", function=route.function.name, requestId=request_id)
        return gateway_message(500, "Internal Server Error")
