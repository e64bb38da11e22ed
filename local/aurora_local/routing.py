"""The routes of ``template.yaml``'s HTTP API and API Gateway's side of a payload-2.0 invocation: which function
(and authorizer) a request goes to, and how the function's result becomes the HTTP response. One module for both
fronts, the local server (:mod:`aurora_local.server`, ``make run``) and the in-process WSGI app
(:mod:`aurora_local.wsgi`, the contract tests)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aurora_local.runtime import LocalFunction
from aurora_local.template import TEMPLATE, load_template


@dataclass(frozen=True)
class Authorizer:
    name: str
    identity_header: str


@dataclass(frozen=True)
class Route:
    method: str  # an HTTP method, or ANY
    path: str  # /chats/{chatId}, or $default
    function: LocalFunction
    authorizer: Authorizer | None
    scopes: tuple[str, ...]
    pattern: re.Pattern[str]
    parameters: tuple[str, ...]

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    @property
    def specificity(self) -> tuple[int, int, int]:
        """API Gateway's precedence: literal segments first, then fewer greedy variables, then a method over ANY."""
        segments = [s for s in self.path.split("/") if s]
        literal = sum(1 for s in segments if not s.startswith("{"))
        greedy = sum(1 for s in segments if s.endswith("+}"))
        return (literal if self.path != "$default" else -1, -greedy, 0 if self.method == "ANY" else 1)


def _compile(path: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    if path == "$default":
        return re.compile(r"/.*"), ()
    names: list[str] = []
    parts: list[str] = []
    for segment in path.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            names.append(segment[1:-2])
            parts.append("(.+)")
        elif segment.startswith("{") and segment.endswith("}"):
            names.append(segment[1:-1])
            parts.append("([^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("/" + "/".join(parts)), tuple(names)


def _authorizers(api: dict[str, Any]) -> tuple[dict[str, Authorizer], str | None]:
    auth = (api.get("Properties") or {}).get("Auth") or {}
    found: dict[str, Authorizer] = {}
    for name, config in (auth.get("Authorizers") or {}).items():
        if "JwtConfiguration" not in config:
            raise ValueError(f"authorizer {name}: only JWT authorizers are emulated locally")
        source = str(config.get("IdentitySource", "$request.header.Authorization"))
        if not source.startswith("$request.header."):
            raise ValueError(f"authorizer {name}: only a header identity source is emulated, got {source}")
        found[name] = Authorizer(name, source.removeprefix("$request.header.").lower())
    default = auth.get("DefaultAuthorizer")
    return found, str(default) if default else None


def build_routes(functions: dict[str, LocalFunction], template_path: Path = TEMPLATE) -> list[Route]:
    resources: dict[str, dict[str, Any]] = load_template(template_path)["Resources"]
    routes: list[Route] = []
    for function in functions.values():
        for event_name, props in function.spec.events_of_type("HttpApi").items():
            api_ref = props.get("ApiId")
            api = resources.get(api_ref["Ref"], {}) if isinstance(api_ref, dict) and "Ref" in api_ref else {}
            authorizers, default = _authorizers(api)
            route_auth = props.get("Auth") or {}
            chosen = route_auth.get("Authorizer", default)
            if chosen in (None, "NONE"):
                authorizer = None
            elif chosen in authorizers:
                authorizer = authorizers[chosen]
            else:
                raise ValueError(f"{function.name}.{event_name}: unknown authorizer {chosen}")
            path = str(props.get("Path", "$default"))
            method = str(props.get("Method", "ANY")).upper()
            pattern, parameters = _compile(path)
            routes.append(
                Route(
                    method="ANY" if method in ("ANY", "*", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method,
                    path=path,
                    function=function,
                    authorizer=authorizer,
                    scopes=tuple(route_auth.get("AuthorizationScopes") or ()),
                    pattern=pattern,
                    parameters=parameters,
                )
            )
    keys = [route.route_key for route in routes]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"routes declared twice in the template: {', '.join(duplicates)}")
    return sorted(routes, key=lambda route: route.specificity, reverse=True)


def match(routes: list[Route], method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes:
        if route.method not in ("ANY", method):
            continue
        found = route.pattern.fullmatch(raw_path)
        if found:
            return route, {
                name: unquote(value) for name, value in zip(route.parameters, found.groups(), strict=True)
            }
    return None


def to_http_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """A payload-2.0 Lambda result as API Gateway turns it into an HTTP response."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return 200, [("Content-Type", "application/json")], json.dumps(result).encode()
    status = int(result["statusCode"])
    if not 100 <= status <= 599:
        raise ValueError(f"statusCode {status}")
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(value)) for value in values)
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
    raw = result.get("body")
    if raw is None:
        body = b""
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(str(raw))
    else:
        body = str(raw).encode()
    return status, headers, body


def gateway_message(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps({"message": message}).encode()
