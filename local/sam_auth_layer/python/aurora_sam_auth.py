"""``sam local start-api`` only: the HTTP API's JWT authorizer, which SAM CLI does not emulate, in front of a function.

SAM CLI emulates Lambda authorizers but skips JWT authorizers ("Authorizer 'JwtAuthorizer' ... was not found,
skipping"), so under ``start-api`` no request would carry an identity. ``make sam-start-api`` serves a derived template
(``aurora_local.sam_local``) in which each API function's handler is this module's :func:`handler`, from a layer that
only that derived template has: it checks the bearer token the way ``make run`` does (HS256, ``LOCAL_JWT_SECRET``,
``exp``/``nbf``; the tokens ``make token`` prints), puts the claims where API Gateway puts them
(``requestContext.authorizer.jwt.claims``, every value a string) and calls the function's own handler
(``AURORA_SAM_HANDLER``). A missing or bad token reaches the function with no authorizer context at all, and the
function answers its own 401 problem. ``template.yaml`` never references this module (tests/test_template.py).

Standard library only: it runs in SAM's Lambda container next to the function and its layer, nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

DEFAULT_SECRET = "local-dev-secret"
_handler: Callable[[dict[str, Any], Any], Any] | None = None


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verified_claims(
    authorization: str | None, secret: str, now: float | None = None
) -> dict[str, Any] | None:
    """The claims of a valid HS256 bearer token, else None (missing, malformed, bad signature, expired)."""
    if not authorization:
        return None
    token = authorization.removeprefix("Bearer ").removeprefix("bearer ").strip()
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_b64decode(header_b64))
        claims = json.loads(_b64decode(payload_b64))
        signature = _b64decode(signature_b64)
    except ValueError:
        return None
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        return None
    expected = hmac.new(secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        return None
    moment = time.time() if now is None else now
    for name, late in (("exp", True), ("nbf", False)):
        value = claims.get(name)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        if (late and moment >= value) or (not late and moment < value):
            return None
    return claims


def _claim_string(value: Any) -> str:
    """API Gateway passes every claim as a string (numbers as decimals, lists as ``[a b]``).

    The same rule as ``aurora_local.auth`` (``make run``'s authorizer), repeated because this module may import only
    the standard library; tests/integration/test_sam_local.py checks that both give the same claims for one token.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_claim_string(item) for item in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def with_identity(event: dict[str, Any], secret: str) -> dict[str, Any]:
    """The event as API Gateway's JWT authorizer would pass it on: claims from a valid token, else no authorizer."""
    headers = {str(name).lower(): value for name, value in (event.get("headers") or {}).items()}
    claims = verified_claims(headers.get("authorization"), secret)
    context = dict(event.get("requestContext") or {})
    context.pop("authorizer", None)
    if claims is not None:
        scopes: list[str] | None = None
        if isinstance(claims.get("scope"), str):
            scopes = claims["scope"].split()
        elif isinstance(claims.get("scp"), list):
            scopes = [str(scope) for scope in claims["scp"]]
        context["authorizer"] = {
            "jwt": {
                "claims": {name: _claim_string(value) for name, value in claims.items()},
                "scopes": scopes,
            }
        }
    return {**event, "requestContext": context}


def handler(event: dict[str, Any], context: Any) -> Any:
    global _handler
    if _handler is None:
        module_name, _, function_name = os.environ["AURORA_SAM_HANDLER"].rpartition(".")
        _handler = getattr(importlib.import_module(module_name), function_name)
    secret = os.environ.get("LOCAL_JWT_SECRET") or DEFAULT_SECRET
    return _handler(with_identity(event, secret), context)
