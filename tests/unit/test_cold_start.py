"""What a cold start does not do (``make bench`` measures what it costs; these tests only check the mechanism):
evaluate model annotations from strings, or run the garbage collector while a Lambda function initialises and
answers its first request (``aurora_chats.init_gc``). Checked in fresh interpreters where it depends on the
environment the process started with."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from typing import Any

import pydantic
import pytest
from aurora_chats import models

from tests.support.env import ROOT

LAMBDA_ENV = {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.13"}


def _run(code: str, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a fresh interpreter (the tests' environment plus ``env``); it prints one JSON value."""
    environment = {k: v for k, v in os.environ.items() if k != "AWS_EXECUTION_ENV"} | (env or {})
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT, env=environment
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_model_annotations_are_evaluated_where_they_are_written() -> None:
    """No postponed annotations in ``aurora_chats.models``: pydantic gets objects, not strings to compile."""
    classes = [
        value
        for value in vars(models).values()
        if isinstance(value, type)
        and issubclass(value, pydantic.BaseModel)
        and value.__module__ == models.__name__
    ]
    assert len(classes) >= 10
    for model in classes:
        annotations = inspect.get_annotations(model)
        strings = [name for name, annotation in annotations.items() if isinstance(annotation, str)]
        assert not strings, (model.__name__, strings)


# A function's cold start in a fresh interpreter: collections counted from the layer's first import (the first thing
# a function module imports) to after the first request, and the collector's state at each step. The list function
# on an in-memory store, as Lambda runs it.
_COLD_START = """
import gc, json, sys
sys.path[:0] = ["functions/list_chats", "shared", "."]
def collections():
    return sum(generation["collections"] for generation in gc.get_stats())
import aurora_chats
before = collections()
import app
from aurora_chats.dal.chats import use_chat_repository
from tests.support.fakes import InMemoryChats
from tests.support.context import FakeContext
from aurora_local.events import http_api_event
after_import = {"enabled": gc.isenabled(), "collections": collections() - before}
use_chat_repository(InMemoryChats())
event = http_api_event("GET", "/chats", claims={"sub": "alice"})
status = app.handler(event, FakeContext())["statusCode"]
after_first = {"enabled": gc.isenabled(), "collections": collections() - before, "frozen": gc.get_freeze_count()}
status2 = app.handler(event, FakeContext())["statusCode"]
print(json.dumps({"import": after_import, "first": after_first, "status": [status, status2],
                  "enabled_later": gc.isenabled()}))
"""


def test_inside_lambda_no_collection_runs_until_the_first_request_is_answered() -> None:
    result = _run(_COLD_START, LAMBDA_ENV)
    assert result["status"] == [200, 200]
    assert result["import"] == {"enabled": False, "collections": 0}
    assert result["first"]["enabled"] is True
    assert result["first"]["collections"] == 0
    assert result["first"]["frozen"] > 10_000  # what initialisation built, never scanned again
    assert result["enabled_later"] is True


def test_outside_lambda_the_collector_is_left_alone() -> None:
    result = _run(_COLD_START)
    assert result["status"] == [200, 200]
    assert result["import"]["enabled"] is True
    assert result["first"]["enabled"] is True
    assert result["first"]["frozen"] == 0


def test_other_handlers_resume_it_before_their_first_invocation() -> None:
    """The cleanup's first invocation can be long (a purge): the collector is on again when it starts."""
    result = _run(
        """
import gc, json, sys
sys.path[:0] = ["shared", "."]
from aurora_chats.observability import lambda_handler
from tests.support.context import FakeContext
paused = not gc.isenabled()
handler = lambda_handler(lambda event, context: gc.isenabled())
print(json.dumps({"paused": paused, "during_first": handler({}, FakeContext()), "during_second": handler({}, FakeContext()),
                  "frozen": gc.get_freeze_count() > 0}))
""",
        LAMBDA_ENV,
    )
    assert result == {"paused": True, "during_first": True, "during_second": True, "frozen": True}


def test_an_api_function_resumes_it_even_when_the_first_request_fails() -> None:
    result = _run(
        """
import gc, json, sys
sys.path[:0] = ["shared", "."]
from aurora_chats.http import api_handler, create_app
from tests.support.context import FakeContext
from aurora_local.events import http_api_event
app = create_app()
during = []
@app.get("/boom")
def boom() -> dict[str, str]:
    during.append(gc.isenabled())
    raise RuntimeError("boom")
handler = api_handler(app)
status = handler(http_api_event("GET", "/boom", claims={"sub": "alice"}), FakeContext())["statusCode"]
print(json.dumps({"status": status, "during": during, "after": gc.isenabled()}))
""",
        LAMBDA_ENV,
    )
    assert result == {"status": 500, "during": [False], "after": True}


@pytest.mark.parametrize(
    "name", sorted(path.name for path in (ROOT / "functions").iterdir() if (path / "app.py").exists())
)
def test_every_function_turns_it_back_on_with_its_first_invocation(name: str) -> None:
    """Each function's ``app.handler`` wears the handler stack that resumes the collector: paused after the import
    inside Lambda, on again once the first invocation is over - whatever that invocation answered."""
    result = _run(
        f"""
import gc, json, sys
sys.path[:0] = ["functions/{name}", "shared", "."]
import app
from tests.support.context import FakeContext
paused = not gc.isenabled()
try:
    app.handler({{}}, FakeContext())
except Exception:
    pass
print(json.dumps({{"paused": paused, "after": gc.isenabled()}}))
""",
        LAMBDA_ENV,
    )
    assert result == {"paused": True, "after": True}
