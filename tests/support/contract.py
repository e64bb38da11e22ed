"""What both schemathesis runs share: the in-process one (``tests/integration/test_contract.py``, handlers through the WSGI
adapter) and the HTTP one (``tests/e2e/test_contract_http.py``, the local runtime on 127.0.0.1).

- :func:`contract_config`: every check, positive + negative data, the stateful phase, seeded, bearer auth;
- :func:`issue_generated_cursor`: positive cases get a cursor the server could have issued (cursors are HMAC-signed,
  so an invented one is forged by design);
- :func:`start_scenarios_with_create`: lets stateful scenarios begin with the create the links start from;
- :func:`stateful_settings` / :func:`assert_scenarios_chained`: how the stateful phase runs and what it must show.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from tests.support.env import ROOT

OPENAPI = ROOT / "openapi.json"
MAX_ID = 2**53 - 1
SEED = 5
CHARACTER_IDS = sorted(
    json.loads(card.read_text(encoding="utf-8"))["data"]["extensions"]["aurora"]["characterId"]
    for card in (ROOT / "characters").glob("*.json")
)


def contract_config(*, token: str, max_examples: int, stateful_steps: int) -> SchemathesisConfig:
    """All checks, all generation modes, the stateful phase; requests carry ``Authorization: Bearer <token>``."""
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "checks": {
                "enabled": True,
                # API Gateway's HTTP API (not our code) answers a method it has no route for with 404
                # {"message": ...}, never 405 + Allow; both the adapter and the local runtime reproduce that, so this
                # check would only test AWS.
                "unsupported_method": {"enabled": False},
            },
            "generation": {"mode": "all", "max-examples": max_examples, "database": "none"},
            "phases": {"stateful": {"enabled": True, "max-steps": stateful_steps}},
            # Declared as the document's security scheme, so schemathesis also checks that requests without it or
            # with a wrong one are rejected (`ignored_auth`).
            "auth": {"openapi": {"bearerAuth": {"bearer": token}}},
            # Characters are imported, never created through this API: half of the generated character ids are the
            # demo cards' (so chats get created and the links get followed), the other half stay random (-> 404).
            "dictionaries": {"characters": {"values": CHARACTER_IDS}},
            "parameters": {"path.characterId": {"dictionary": "characters", "probability": 0.5}},
        }
    )


def issue_generated_cursor(case: schemathesis.Case[Any], *, secret: bytes, user: str) -> None:
    """Give a positive case a cursor the server (signing with ``secret``) could have issued to ``user``.

    Cursors are HMAC-signed by the server, so any cursor a generator invents is forged and a 400 by contract (a
    schema cannot express a signature). Negative cases keep their garbage; positive ones exercise paging instead.
    The chat id in the cursor is derived from the generated text, so the case stays reproducible.
    """
    meta = case.meta
    if meta is None or meta.generation.mode is not GenerationMode.POSITIVE:
        return
    if isinstance(case.query, dict) and isinstance(case.query.get("cursor"), str):
        from aurora_chats.cursor import encode_cursor

        digest = hashlib.sha256(case.query["cursor"].encode()).digest()
        last_chat_id = int.from_bytes(digest[:6]) % MAX_ID + 1
        case.query["cursor"] = encode_cursor(secret, user, last_chat_id)


def start_scenarios_with_create(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let stateful scenarios start with ``initializeChat``.

    Schemathesis starts scenarios only at operations it expects to succeed on random input, and rules out a POST
    whose path names a resource no operation produces (characters are imported, not created here). With the
    character dictionary of :func:`contract_config` that POST does succeed, so it is a root too.
    """
    from schemathesis.specs.openapi import stateful

    likely_root = stateful.is_likely_root_transition
    monkeypatch.setattr(
        stateful,
        "is_likely_root_transition",
        lambda operation, node, produced: (
            operation.method == "post" or likely_root(operation, node, produced)
        ),
    )


def stateful_settings(runs: int, steps: int) -> settings:
    """Hypothesis settings for the stateful phase: bounded, derandomized, no example database."""
    return settings(
        max_examples=runs,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )


def assert_scenarios_chained(outcomes: Counter[str]) -> None:
    """The scenarios really chained: chats were created, listed and deleted through the links."""
    assert outcomes["POST /characters/{characterId}/chats 201"] > 0, outcomes
    assert outcomes["GET /chats 200"] > 0, outcomes
    assert outcomes["DELETE /chats/{chatId} 200"] > 0, outcomes
