"""The HTTP API JWT authorizer, emulated locally with HS256 tokens signed by ``LOCAL_JWT_SECRET``.

As API Gateway does: the token comes from the authorizer's identity source (``Authorization``; a ``Bearer `` prefix
is optional), its signature, ``exp`` and ``nbf`` are checked, and a rejected request is answered 401 before any
function runs. Claims reach the function in ``requestContext.authorizer.jwt.claims`` with every value a string (numbers
as decimals, lists as ``[a b]``), scopes from the ``scope``/``scp`` claim. Locally the issuer is this module, so
``iss`` and ``aud`` are not checked (AWS checks them against ``JwtIssuer``/``JwtAudience``).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from typing import Any

import jwt
from jwt.warnings import InsecureKeyLengthWarning

DEFAULT_SECRET = "local-dev-secret"
ALGORITHM = "HS256"
ISSUER = "aurora-local"
TOKEN_LIFETIME_SECONDS = 12 * 3600

# The documented local default secret is short on purpose (it only signs local test tokens).
warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)


class Unauthorized(Exception):
    """The request carries no valid token (the message is safe to show to the client)."""


def secret() -> str:
    return os.environ.get("LOCAL_JWT_SECRET") or DEFAULT_SECRET


def issue_token(
    user: str, name: str | None = None, lifetime_seconds: int = TOKEN_LIFETIME_SECONDS, **claims: Any
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": user,
        "iss": ISSUER,
        "iat": now,
        "exp": now + lifetime_seconds,
        **claims,
    }
    if name:
        payload["name"] = name
    return jwt.encode(payload, secret(), algorithm=ALGORITHM)


def _claim_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_claim_string(item) for item in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def authorize(identity: str | None) -> tuple[dict[str, str], list[str] | None]:
    """The claims and scopes of a valid token, as API Gateway hands them to the function; else :class:`Unauthorized`."""
    if identity is None or not identity.strip():
        raise Unauthorized("The request has no Authorization header.")
    token = identity.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret(),
            algorithms=[ALGORITHM],
            options={"verify_aud": False, "verify_iss": False, "require": []},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The token has expired.") from exc
    except jwt.ImmatureSignatureError as exc:
        raise Unauthorized("The token is not valid yet.") from exc
    except jwt.InvalidSignatureError as exc:
        raise Unauthorized("The token's signature is not valid.") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("The token is malformed.") from exc
    scopes: list[str] | None = None
    if isinstance(claims.get("scope"), str):
        scopes = claims["scope"].split()
    elif isinstance(claims.get("scp"), list):
        scopes = [str(scope) for scope in claims["scp"]]
    return {name: _claim_string(value) for name, value in claims.items()}, scopes


def problem_body(status: int, slug: str, detail: str) -> bytes:
    """An RFC 9457 problem shaped like the functions' own (``aurora_chats.http.problem``)."""
    from http import HTTPStatus

    from aurora_chats.http import PROBLEM_BASE

    body = {
        "type": PROBLEM_BASE + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    return json.dumps(body, separators=(",", ":")).encode()
