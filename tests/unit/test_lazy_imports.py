"""The lazy stand-ins for Powertools' ``event_handler`` and ``utilities.data_classes`` (``aurora_chats.lazy_imports``).

The tables must mirror the real ``__init__``\\s of the pinned Powertools: these tests read the installed package's
source and compare the objects each name resolves to with and without the shim, so a Powertools upgrade fails here
until the tables are checked again (and :data:`~aurora_chats.lazy_imports.VERIFIED_VERSION` bumped). Behaviour
and import footprint are checked in fresh interpreters, where nothing else imported Powertools first.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

import pytest
from aurora_chats import lazy_imports

from tests.support.env import ROOT


def _run(code: str) -> Any:
    """Run ``code`` in a fresh interpreter; it prints one JSON value."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _real_init(package: str) -> ast.Module:
    parent_name, _, _ = package.rpartition(".")
    parent = __import__(parent_name, fromlist=["__path__"])
    spec = PathFinder.find_spec(package, list(parent.__path__))
    assert spec is not None and spec.origin is not None
    return ast.parse(Path(spec.origin).read_text())


def test_the_pinned_powertools_is_the_verified_one() -> None:
    from aws_lambda_powertools.shared.version import VERSION

    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = next(pin for pin in pins if pin.startswith("aws-lambda-powertools"))
    assert pinned.endswith(f"=={VERSION}")
    assert lazy_imports.VERIFIED_VERSION == VERSION, (
        "Powertools was upgraded: compare lazy_imports.EXPORTS with its event_handler and data_classes __init__, "
        "then bump VERIFIED_VERSION"
    )


@pytest.mark.parametrize("package", sorted(lazy_imports.EXPORTS))
def test_the_tables_mirror_the_real_init(package: str) -> None:
    """Every name the real ``__init__`` imports, from the same submodule, in ``__all__`` order, and nothing else
    in it (a statement with side effects would be skipped by the shim)."""
    tree = _real_init(package)
    imported: dict[str, str] = {}
    exported: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            source = f"{package}.{module}" if node.level == 1 else module
            assert node.level in (0, 1), ast.dump(node)
            for alias in node.names:
                imported[alias.asname or alias.name] = source
        elif isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == [
            "__all__"
        ]:
            exported = list(ast.literal_eval(node.value))
        else:
            assert isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant), (
                f"{package}/__init__.py does more than import and export: {ast.dump(node)[:200]}"
            )
    ours = {
        name: f"{package}.{submodule}"
        for submodule, names in lazy_imports.EXPORTS[package].items()
        for name in names
    }
    assert ours == imported
    assert sorted(ours) == sorted(exported)


_RESOLVE = """
import json, sys
{setup}
import importlib
out = {{}}
for package in {packages!r}:
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        out[package + ":" + name] = [getattr(value, "__module__", None), getattr(value, "__qualname__", None)]
    out[package + ":__all__"] = sorted(module.__all__)  # the same names (the shim lists them by submodule)
    out[package + ":lazy"] = type(module).__name__
print(json.dumps(out))
"""


def test_every_name_is_the_same_object_as_with_the_real_package() -> None:
    packages = sorted(lazy_imports.EXPORTS)
    real = _run(_RESOLVE.format(setup="", packages=packages))
    lazy = _run(_RESOLVE.format(setup="import aurora_chats", packages=packages))
    for package in packages:
        assert real.pop(f"{package}:lazy") == "module"
        assert lazy.pop(f"{package}:lazy") == "LazyPackage"
    assert lazy == real


def test_importing_the_http_edge_loads_one_resolver_and_its_event_classes() -> None:
    loaded = _run("import json, sys\nimport aurora_chats.http\nprint(json.dumps(sorted(sys.modules)))\n")
    assert "aws_lambda_powertools.event_handler.api_gateway" in loaded
    for unused in (
        "aws_lambda_powertools.event_handler.appsync",
        "aws_lambda_powertools.event_handler.events_appsync.appsync_events",
        "aws_lambda_powertools.event_handler.bedrock_agent_function",
        "aws_lambda_powertools.event_handler.http_resolver",
        "aws_lambda_powertools.event_handler.vpc_lattice",
        "aws_lambda_powertools.utilities.data_classes.sqs_event",
        "aws_lambda_powertools.utilities.data_classes.code_pipeline_job_event",
        "aws_lambda_powertools.utilities.data_classes.kafka_event",
        "asyncio",
    ):
        assert unused not in loaded, unused


def test_a_route_with_validation_works_through_the_shim() -> None:
    """Powertools' routing, query validation and response validation, end to end on the lazy packages."""
    result = _run(
        """
import json, sys
from typing import Annotated
import aurora_chats.http as http
from aurora_chats import lazy_imports
from aws_lambda_powertools.event_handler.openapi.params import Query
from aurora_local.events import http_api_event
from pydantic import BaseModel
from tests.support.context import FakeContext

class Reply(BaseModel):
    doubled: int

app = http.create_app()

@app.get("/double")
def double(n: Annotated[int, Query(ge=1)] = 1) -> Reply:
    return Reply(doubled=2 * n)

handler = http.api_handler(app)
claims = {"sub": "alice"}
ok = handler(http_api_event("GET", "/double", raw_query="n=21", claims=claims), FakeContext())
bad = handler(http_api_event("GET", "/double", raw_query="n=0", claims=claims), FakeContext())
lost = handler(http_api_event("GET", "/nowhere", claims=claims), FakeContext())
print(json.dumps({
    "lazy": [isinstance(sys.modules[name], lazy_imports.LazyPackage) for name in lazy_imports.EXPORTS],
    "ok": [ok["statusCode"], json.loads(ok["body"])],
    "bad": [bad["statusCode"], json.loads(bad["body"])["errors"][0]["field"]],
    "lost": lost["statusCode"],
}))
"""
    )
    assert result == {
        "lazy": [True, True],
        "ok": [200, {"doubled": 42}],
        "bad": [400, "query.n"],
        "lost": 404,
    }


def test_the_package_behaves_like_the_real_one() -> None:
    result = _run(
        """
import json
import aurora_chats
import aws_lambda_powertools.event_handler as eh
import aws_lambda_powertools.utilities.data_classes as dc
from aws_lambda_powertools.utilities.data_classes.event_source import event_source as decorator
from aws_lambda_powertools.event_handler import content_types
try:
    eh.NoSuchThing
    missing = False
except AttributeError:
    missing = True
namespace = {}
exec("from aws_lambda_powertools.event_handler import *", namespace)
print(json.dumps({
    "event_source is the decorator": dc.event_source is decorator,
    "a submodule as an attribute": eh.openapi.__name__,
    "content_types": content_types.APPLICATION_JSON,
    "missing": missing,
    "dir": sorted(set(eh.__all__) - set(dir(eh))),
    "star": sorted(set(eh.__all__) - set(namespace)),
    "parent binds it": __import__("aws_lambda_powertools").event_handler is eh,
}))
"""
    )
    assert result == {
        "event_source is the decorator": True,
        "a submodule as an attribute": "aws_lambda_powertools.event_handler.openapi",
        "content_types": "application/json",
        "missing": True,
        "dir": [],
        "star": [],
        "parent binds it": True,
    }


def test_nothing_is_replaced_when_powertools_came_first_or_is_another_version() -> None:
    result = _run(
        """
import json, sys
import aws_lambda_powertools.event_handler
import aurora_chats
from aurora_chats import lazy_imports
first = [type(sys.modules[name]).__name__ for name in lazy_imports.EXPORTS]
for name in list(sys.modules):
    if name.startswith(tuple(lazy_imports.EXPORTS)):
        del sys.modules[name]
import aws_lambda_powertools.shared.version as version
version.VERSION = "0.0.0"
print(json.dumps({"first": first, "other version": lazy_imports.install(),
                  "left alone": [name in sys.modules for name in lazy_imports.EXPORTS]}))
"""
    )
    assert result == {"first": ["module", "module"], "other version": False, "left alone": [False, False]}


# ---------------------------------------------------------------- aurora_chats.http.remember_parameter_kinds


def test_request_validation_remembers_powertools_own_parameter_kinds() -> None:
    """Every parameter of every route gets the kind Powertools' ``is_scalar_field`` gives it, asked again or not."""
    from aurora_chats.http import remember_parameter_kinds
    from aws_lambda_powertools.event_handler.middlewares import openapi_validation
    from aws_lambda_powertools.event_handler.openapi.compat import is_scalar_field

    from tests.support.loader import load_function

    assert remember_parameter_kinds()
    remembered = openapi_validation.is_scalar_field  # type: ignore[attr-defined]
    assert remembered.__wrapped__ is is_scalar_field  # type: ignore[attr-defined]
    assert remember_parameter_kinds()
    assert openapi_validation.is_scalar_field is remembered  # type: ignore[attr-defined]  # never wrapped twice
    checked = 0
    for name in ("list_chats", "initialize_chat", "delete_chat"):
        app = load_function(name).app
        for route in app._static_routes + app._dynamic_routes:
            dependant = route.dependant
            for field in (
                dependant.path_params
                + dependant.query_params
                + dependant.header_params
                + dependant.cookie_params
            ):
                assert remembered(field) is is_scalar_field(field)
                assert remembered(field) is is_scalar_field(field)
                checked += 1
    assert checked >= 4  # limit, cursor, characterId, Idempotency-Key, chatId


def test_query_and_header_values_are_normalised_as_without_it() -> None:
    """The remembered kind only skips re-deriving it: each request's values are normalised by Powertools as before
    (single values, comma-joined and repeated values, missing ones), with and without it in the same requests."""
    script = """
import json
from typing import Annotated
import aurora_chats.http as http
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aurora_local.events import http_api_event
from tests.support.context import FakeContext

if {disabled}:
    http.remember_parameter_kinds = lambda: False
app = http.create_app()

@app.get("/echo")
def echo(
    word: Annotated[str, Query()] = "-",
    words: Annotated[list[str] | None, Query()] = None,
    tag: Annotated[str | None, Header(alias="x-tag")] = None,
) -> dict[str, object]:
    return {{"word": word, "words": words, "tag": tag}}

handler = http.api_handler(app)
answers = []
for query, multi in (("word=a", None), ("word=a,b", None), ("word=a&word=b", {{"word": ["a", "b"]}}),
                     ("", None), ("words=x&words=y", {{"words": ["x", "y"]}}), ("word=c", None)):
    event = http_api_event("GET", "/echo", raw_query=query, claims={{"sub": "alice"}}, headers={{"x-tag": "t1"}})
    if multi:
        event["queryStringParameters"] = {{name: ",".join(values) for name, values in multi.items()}}
    answer = handler(event, FakeContext())
    answers.append([answer["statusCode"], json.loads(answer["body"])])
from aws_lambda_powertools.event_handler.middlewares import openapi_validation
print(json.dumps([hasattr(openapi_validation.is_scalar_field, "__wrapped__"), answers]))
"""
    remembered, answers = _run(script.format(disabled=False))
    plain, expected = _run(script.format(disabled=True))
    assert (remembered, plain) == (True, False)
    assert answers == expected
    assert answers[0] == [200, {"word": "a", "words": None, "tag": "t1"}]
    assert answers[4] == [200, {"word": "-", "words": ["x", "y"], "tag": "t1"}]
