"""What a cold start does not do (``make bench`` measures what it costs; these tests only check the mechanism):
evaluate model annotations from strings."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from typing import Any

import pydantic
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
