"""The API contract: the committed ``openapi.json`` is the code's, valid, lint-clean, honoured by the handlers and
usable from TypeScript.

- drift: the committed file equals a fresh ``make openapi``;
- validation: openapi-spec-validator (OpenAPI 3.1) and Spectral's ``spectral:oas`` ruleset with zero errors;
- the SDK requirements of issue 5 asserted on the document (names, pagination, retries, ids, problems, ...);
- schemathesis (all checks, positive and negative data, then the stateful phase over the OpenAPI links) against
  the real handlers through :class:`aurora_local.wsgi.HttpApiWsgiApp`, on a moto table built from template.yaml
  (the same run over real HTTP against the local runtime: ``tests/e2e/test_contract_http.py``; shared set-up in
  ``tests/support/contract.py``);
- TypeScript: openapi-typescript types + ``tsc`` on ``contract/client.ts`` (the SDK docs' three calls).

Node tools come from ``contract/package-lock.json`` (``npm ci``); those tests skip, saying so, only without node.
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aurora_local.openapi import build_document, render
from aurora_local.template import create_table
from aurora_local.wsgi import HttpApiWsgiApp
from hypothesis import HealthCheck, settings
from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.support.aws import reset_caches
from tests.support.contract import (
    MAX_ID,
    OPENAPI,
    assert_scenarios_chained,
    contract_config,
    issue_generated_cursor,
    start_scenarios_with_create,
    stateful_settings,
)
from tests.support.env import ROOT, TABLE

CONTRACT = ROOT / "contract"
TOKEN = "contract-test-token"
USER_CLAIMS = {"sub": "contract-tester", "name": "Casey"}
# Generated cases per operation (fuzzing + coverage + examples); stateful steps are bounded separately.
MAX_EXAMPLES = 100
STATEFUL_RUNS = 15
STATEFUL_STEPS = 8


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(OPENAPI.read_text(encoding="utf-8"))
    return loaded


def operation(operation_id: str) -> dict[str, Any]:
    for item in document()["paths"].values():
        for candidate in item.values():
            if isinstance(candidate, dict) and candidate.get("operationId") == operation_id:
                found: dict[str, Any] = candidate
                return found
    raise AssertionError(f"no operation {operation_id}")


def parameter(operation_id: str, name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        p for p in operation(operation_id).get("parameters", []) if p["name"] == name
    ]
    assert len(found) == 1, (operation_id, name)
    return found[0]


# ---------------------------------------------------------------- drift, validation, lint


def test_committed_openapi_matches_a_fresh_generation() -> None:
    fresh = render(build_document())
    assert OPENAPI.read_text(encoding="utf-8") == fresh, (
        "openapi.json is stale: run `make openapi` and commit it"
    )


def test_openapi_is_valid_openapi_3_1() -> None:
    spec = document()
    assert spec["openapi"].startswith("3.1.")
    errors = [str(error.message) for error in OpenAPIV31SpecValidator(spec).iter_errors()]
    assert errors == []


# ---------------------------------------------------------------- what the SDK needs from the document


@pytest.mark.parametrize(
    ("operation_id", "method_name", "method", "path"),
    [
        ("getChatsForUser", "listForUser", "get", "/chats"),
        ("getChatPagesForUser", "listPages", "get", "/chats/pages"),
        ("initializeChat", "initialize", "post", "/characters/{characterId}/chats"),
        ("deleteChat", "delete", "delete", "/chats/{chatId}"),
    ],
)
def test_each_operation_regenerates_the_documented_sdk_method(
    operation_id: str, method_name: str, method: str, path: str
) -> None:
    op = document()["paths"][path][method]
    assert op["operationId"] == operation_id
    assert op["x-speakeasy-name-override"] == method_name
    assert op["x-speakeasy-group"] == "chats"
    assert op["tags"] == ["chats"]
    assert op["summary"] and op["description"]


def test_only_list_pages_paginates_by_cursor_with_no_results_stop() -> None:
    """listForUser keeps the seed's return type (no PageIterator); listPages pages until nextCursor is null: with
    no `results` the SDK never stops at an empty array (Speakeasy's pagination page, issue 12 item 5)."""
    assert "x-speakeasy-pagination" not in operation("getChatsForUser")
    assert operation("getChatPagesForUser")["x-speakeasy-pagination"] == {
        "type": "cursor",
        "inputs": [{"name": "cursor", "in": "parameters", "type": "cursor"}],
        "outputs": {"nextCursor": "$.nextCursor"},
    }
    for operation_id in ("initializeChat", "deleteChat"):
        assert "x-speakeasy-pagination" not in operation(operation_id)


def test_reads_and_the_retry_safe_delete_retry_connection_errors() -> None:
    for operation_id, statuses in (
        ("getChatsForUser", ["429", "503"]),
        ("getChatPagesForUser", ["429", "503"]),
        ("deleteChat", ["429", "503", "504"]),  # a repeat of a delete that happened answers the same 200
    ):
        retries = operation(operation_id)["x-speakeasy-retries"]
        assert retries["strategy"] == "backoff"
        assert retries["statusCodes"] == statuses
        assert retries["retryConnectionErrors"] is True
        backoff = retries["backoff"]
        assert 0 < backoff["initialInterval"] <= backoff["maxInterval"] <= backoff["maxElapsedTime"]
        assert backoff["exponent"] > 1


def test_initialize_retries_only_when_nothing_was_written_and_asks_for_an_idempotency_key() -> None:
    op = operation("initializeChat")
    assert op["x-speakeasy-retries"]["statusCodes"] == ["429", "503"]
    assert op["x-speakeasy-retries"]["retryConnectionErrors"] is False
    assert "Idempotency-Key" in op["description"]
    key = parameter("initializeChat", "Idempotency-Key")
    assert key["in"] == "header" and key["required"] is False
    assert "fetchOptions" in key["description"]  # how SDK callers send it
    assert key["schema"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[\\x21-\\x7e]+$",
    }


def test_the_seed_operations_hide_their_optional_inputs_from_the_sdk_signatures() -> None:
    """`listForUser(options?)`, `initialize(characterId, options?)`, `delete(chatId, options?)` (SDK-CHATS.md):
    every other parameter of theirs is optional and carries x-speakeasy-ignore; listPages shows limit and cursor."""
    visible = {
        operation_id: [
            p["name"]
            for p in operation(operation_id).get("parameters", [])
            if not p.get("x-speakeasy-ignore")
        ]
        for operation_id in ("getChatsForUser", "initializeChat", "deleteChat", "getChatPagesForUser")
    }
    assert visible == {
        "getChatsForUser": [],
        "initializeChat": ["characterId"],
        "deleteChat": ["chatId"],
        "getChatPagesForUser": ["limit", "cursor"],
    }
    for operation_id in ("getChatsForUser", "initializeChat"):
        for hidden in operation(operation_id)["parameters"]:
            if hidden.get("x-speakeasy-ignore"):
                assert hidden["x-speakeasy-ignore"] is True and hidden["required"] is False


def test_seed_success_bodies_are_inline_so_the_sdk_returns_the_operations_types() -> None:
    """Flat responses: a `$ref` body would come back as `components.X`; inline (named by its title) as the seed's
    `operations.GetChatsForUserResponse` / `InitializeChatResponse` / `DeleteChatResponse`."""
    schemas = document()["components"]["schemas"]
    for operation_id, statuses in (
        ("getChatsForUser", ("200",)),
        ("initializeChat", ("200", "201")),
        ("deleteChat", ("200",)),
    ):
        name = operation_id[0].upper() + operation_id[1:] + "Response"
        assert name not in schemas
        for status in statuses:
            body = operation(operation_id)["responses"][status]["content"]["application/json"]["schema"]
            assert "$ref" not in body and body["title"] == name and body["type"] == "object"
    pages = operation("getChatPagesForUser")["responses"]["200"]["content"]["application/json"]["schema"]
    assert pages == {"$ref": "#/components/schemas/ChatListPage"}


def test_the_speakeasy_config_pins_a_regeneration_of_the_seed_sdk() -> None:
    """`.speakeasy/workflow.yaml` (root) + `sdk/.speakeasy/gen.yaml` (the target's folder, where Speakeasy reads it)."""
    import yaml

    workflow = yaml.safe_load((ROOT / ".speakeasy" / "workflow.yaml").read_text(encoding="utf-8"))
    assert re.fullmatch(r"\d+\.\d+\.\d+", workflow["speakeasyVersion"])  # pinned, never `latest`
    (source,) = workflow["sources"].values()
    assert [i["location"] for i in source["inputs"]] == ["./openapi.json"]
    (target,) = workflow["targets"].values()
    assert (target["target"], target["output"]) == ("typescript", "./sdk")
    assert not (ROOT / ".speakeasy" / "gen.yaml").exists()
    gen = yaml.safe_load((ROOT / "sdk" / ".speakeasy" / "gen.yaml").read_text(encoding="utf-8"))
    ts = gen["typescript"]
    assert gen["generation"]["sdkClassName"] == "AuroraChatbotSdk"  # -> class AuroraChatbotSDK (the seed's)
    assert ts["packageName"] == "@aurora-interactive/chatbot-api-sdk"
    # Every HTTP error class extends the base: `instanceof errors.SDKError` for each 4xx-5xx.
    assert ts["baseErrorName"] == "SDKError" and ts["defaultErrorName"] not in ("SDKError", None)
    assert ts["clientServerStatusCodesAsErrors"] is True
    assert ts["imports"]["paths"]["errors"] == "models/errors"
    assert ts["imports"]["paths"]["operations"] == "models/operations"
    assert ts["maxMethodParams"] >= 1  # 0 would make initialize({ characterId }) and delete({ chatId })
    assert ts["responseFormat"] == "flat"  # the body itself, as the seed returns it


def _schemas_in(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "properties" in node:
            yield node
        for value in node.values():
            yield from _schemas_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas_in(value)


def test_every_id_is_a_json_safe_positive_integer() -> None:
    bounds = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    for operation_id, name in (("initializeChat", "characterId"), ("deleteChat", "chatId")):
        schema = parameter(operation_id, name)["schema"]
        assert {key: schema[key] for key in bounds} == bounds
    seen = 0
    for model in _schemas_in(document()):
        for name, prop in model.get("properties", {}).items():
            if name in {"chatId", "characterId"}:
                assert {key: prop[key] for key in bounds} == bounds, name
                seen += 1
            if name == "chatIds":
                assert {key: prop["items"][key] for key in bounds} == bounds
                seen += 1
    assert seen == 9  # ChatSummary 2, ChatListPage 1, the inline bodies: list 1, initialize 2 x 2, delete 1


def test_no_schema_keeps_pydantic_bound_keywords() -> None:
    # Pydantic spells a bound it cannot translate as `ge`/`le`, which JSON Schema (and every SDK) ignores.
    def schemas(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if isinstance(node.get("type"), str):
                yield node
            for value in node.values():
                yield from schemas(value)
        elif isinstance(node, list):
            for value in node:
                yield from schemas(value)

    leftovers = [schema for schema in schemas(document()) if {"ge", "le", "gt", "lt"} & schema.keys()]
    assert leftovers == []


@pytest.mark.parametrize("operation_id", ["getChatsForUser", "getChatPagesForUser"])
def test_limit_and_cursor_are_bounded(operation_id: str) -> None:
    assert parameter(operation_id, "limit")["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 20,
    }
    cursor = parameter(operation_id, "cursor")["schema"]
    assert cursor["type"] == "string" and cursor["maxLength"] == 64


def test_responses_use_real_status_codes_and_one_problem_schema() -> None:
    every = {"400", "401", "413", "429", "431", "500", "503"}
    expected = {
        "getChatsForUser": {"200", *every},
        "getChatPagesForUser": {"200", *every},
        "initializeChat": {"200", "201", "403", "404", "409", "504", *every},
        "deleteChat": {"200", "403", "404", "504", *every},
    }
    for operation_id, statuses in expected.items():
        responses = operation(operation_id)["responses"]
        assert set(responses) == statuses, operation_id
        for status, response in responses.items():
            if status in {"429", "503", "504"}:
                assert "Retry-After" in response["headers"], (operation_id, status)
            if status >= "400" and status != "429":
                assert list(response["content"]) == ["application/problem+json"]
                assert response["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }
    # Each problem type the routes can answer is documented as an example of its status.
    conflicts = operation("initializeChat")["responses"]["409"]["content"]["application/problem+json"][
        "examples"
    ]
    assert {e["value"]["type"].rsplit("/", 1)[1] for e in conflicts.values()} == {
        "idempotency-key-conflict",
        "chat-limit-reached",
    }
    for operation_id in ("initializeChat", "deleteChat"):
        deleted = operation(operation_id)["responses"]["403"]["content"]["application/problem+json"][
            "examples"
        ]
        assert [e["value"]["type"].rsplit("/", 1)[1] for e in deleted.values()] == ["account-deleted"]
    problem = document()["components"]["schemas"]["Problem"]
    assert set(problem["properties"]) == {"type", "title", "status", "detail", "instance", "errors"}
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    created = operation("initializeChat")["responses"]
    for status in ("200", "201"):
        assert created[status]["headers"]["Location"]["required"] is True
        assert created[status]["content"]["application/json"]["schema"]["title"] == "InitializeChatResponse"


def test_bearer_jwt_applies_everywhere_and_servers_name_local_and_deployed() -> None:
    spec = document()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert spec["security"] == [{"bearerAuth": []}]
    # servers[0] is the generated SDK's default (`new AuroraChatbotSDK()`): the deployed API, never localhost.
    deployed, local = spec["servers"]
    assert (
        deployed["url"] == "https://{apiId}.execute-api.{region}.amazonaws.com"
    )  # `$default` stage: no stage
    assert set(deployed["variables"]) == {"apiId", "region"}
    assert all(v["default"] and v["description"] for v in deployed["variables"].values())
    assert local["url"] == "http://127.0.0.1:3000"
    assert not any("x-speakeasy-server-id" in server for server in spec["servers"])  # keeps `serverIdx`


def test_examples_use_the_sdk_values() -> None:
    assert parameter("initializeChat", "characterId")["examples"]["sdk"]["value"] == 330905
    assert parameter("deleteChat", "chatId")["examples"]["sdk"]["value"] == 8
    created = operation("initializeChat")["responses"]["201"]["content"]["application/json"]["examples"]
    assert created["sdk"]["value"]["characterId"] == 330905
    listed = operation("getChatsForUser")["responses"]["200"]["content"]["application/json"]["examples"]
    assert listed["sdk"]["value"]["chatIds"] == [8]


def test_links_chain_create_list_delete() -> None:
    links = operation("initializeChat")["responses"]["201"]["links"]
    assert links["DeleteChat"] == {
        "operationId": "deleteChat",
        "parameters": {"chatId": "$response.body#/chatId"},
    }
    assert links["ListChats"]["operationId"] == "getChatsForUser"
    listed = operation("getChatsForUser")["responses"]["200"]["links"]
    assert listed["DeleteFirstChat"]["parameters"] == {"chatId": "$response.body#/chatIds/0"}


# ---------------------------------------------------------------- node tools (Spectral, openapi-typescript, tsc)


@pytest.fixture(scope="module")
def npm() -> Path:
    """``contract/node_modules`` from the committed lock file (installed once; reused while up to date)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed: the Spectral lint and TypeScript checks need Node.js 20+")
    lock = CONTRACT / "package-lock.json"
    stamp = CONTRACT / "node_modules" / ".package-lock.json"
    # One installer at a time (pytest-xdist workers share the folder).
    with (CONTRACT / ".npm-install.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
            subprocess.run(
                ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                cwd=CONTRACT,
                check=True,
                timeout=300,
            )
    return CONTRACT / "node_modules" / ".bin"


def run_node_tool(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]], cwd=CONTRACT, capture_output=True, text=True, timeout=180
    )


def test_spectral_oas_ruleset_reports_no_errors_or_warnings(npm: Path) -> None:
    result = run_node_tool(
        npm, "spectral", "lint", "--ruleset", ".spectral.yaml", "--format", "json", "--quiet", str(OPENAPI)
    )
    findings = json.loads(result.stdout or "[]")
    problems = [f"{f['code']} {'.'.join(map(str, f['path']))}: {f['message']}" for f in findings]
    assert problems == [], result.stderr


def test_the_typescript_clients_server_list_is_the_documents() -> None:
    block = re.search(
        r"export const ServerList = \[(.*?)\] as const;", (CONTRACT / "client.ts").read_text(), re.S
    )
    assert block is not None
    assert re.findall(r'"([^"]+)"', block.group(1)) == [server["url"] for server in document()["servers"]]


def test_typescript_client_makes_the_sdk_calls_with_the_documented_types(npm: Path) -> None:
    generated = run_node_tool(npm, "openapi-typescript", str(OPENAPI), "--output", "generated/schema.d.ts")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    checked = run_node_tool(npm, "tsc", "--project", "tsconfig.json")
    assert checked.returncode == 0, checked.stdout + checked.stderr


# ---------------------------------------------------------------- schemathesis against the handlers


def fresh_table() -> None:
    """The test table (from template.yaml) with the demo characters, in the current moto account."""
    from aurora_chats.dal.client import get_client
    from aurora_ops.admin import import_characters

    reset_caches()
    create_table(get_client(), TABLE)
    assert import_characters([str(ROOT / "characters")], TABLE, region="us-east-1") == 0


def claims_for(token: str) -> dict[str, Any] | None:
    """The JWT authorizer's stand-in: one valid token, everything else is rejected (no claims)."""
    return dict(USER_CLAIMS) if token == TOKEN else None


CONFIG = contract_config(token=TOKEN, max_examples=MAX_EXAMPLES, stateful_steps=STATEFUL_STEPS)
schema = schemathesis.openapi.from_path(OPENAPI, config=CONFIG)
schema.app = HttpApiWsgiApp(claims_for)
CASES: Counter[str] = Counter()


def wsgi_call(
    method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[str, dict[str, str], Any]:
    from werkzeug.test import Client

    response = Client(HttpApiWsgiApp(claims_for)).open(path, method=method, headers=headers or {})
    return response.status, dict(response.headers), response.get_json(force=True, silent=True)


def test_adapter_answers_unrouted_requests_like_api_gateway() -> None:
    for method, path in (("PATCH", "/chats"), ("GET", "/chats/8"), ("GET", "/nope")):
        status, headers, body = wsgi_call(method, path, {"Authorization": f"Bearer {TOKEN}"})
        assert (status, headers["Content-Type"], body) == (
            "404 Not Found",
            "application/json",
            {"message": "Not Found"},
        )


def test_adapter_passes_claims_only_for_the_valid_token(ddb: Any, characters: None) -> None:
    assert wsgi_call("GET", "/chats", {"Authorization": f"Bearer {TOKEN}"})[0] == "200 OK"
    for headers in ({}, {"Authorization": "Bearer forged"}, {"Authorization": f"Basic {TOKEN}"}):
        status, response_headers, body = wsgi_call("GET", "/chats", headers)
        assert status == "401 Unauthorized" and response_headers["Content-Type"] == "application/problem+json"
        assert body["status"] == 401


def test_adapter_routes_percent_encoded_path_parameters_decoded(ddb: Any, characters: None) -> None:
    status, headers, body = wsgi_call(
        "POST", "/characters/330905/chats", {"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == "201 Created" and headers["Location"] == f"/chats/{body['chatId']}"
    status, _, body = wsgi_call(
        "DELETE",
        f"/chats/%3{str(body['chatId'])[0]}{str(body['chatId'])[1:]}",
        {"Authorization": f"Bearer {TOKEN}"},
    )
    assert status == "200 OK" and body["deleted"] is True


def test_location_of_a_new_chat_resolves_on_a_deployed_stage(ddb: Any, characters: None) -> None:
    """On `https://{apiId}.execute-api.../dev` every path starts with the stage; so must the Location."""
    from aurora_local.events import http_api_event

    from tests.support.context import FakeContext
    from tests.support.loader import load_function

    event = http_api_event(
        "POST",
        "/dev/characters/330905/chats",
        route_key="POST /characters/{characterId}/chats",
        path_parameters={"characterId": "330905"},
        claims=dict(USER_CLAIMS),
    )
    event["requestContext"]["stage"] = "dev"
    result = load_function("initialize_chat").handler(event, FakeContext())
    chat_id = json.loads(result["body"])["chatId"]
    assert (result["statusCode"], result["headers"]["Location"]) == (201, f"/dev/chats/{chat_id}")
    pattern = operation("initializeChat")["responses"]["201"]["headers"]["Location"]["schema"]["pattern"]
    assert re.fullmatch(pattern, result["headers"]["Location"])


@pytest.fixture(scope="module", autouse=True)
def _report_case_counts() -> Iterator[None]:
    yield
    if CASES:
        print("\nschemathesis cases per operation:", dict(sorted(CASES.items())))


def issue_cursor(case: schemathesis.Case[Any]) -> None:
    """Positive cases page with a cursor the handlers (the test settings' secret) issued to the test user."""
    from aurora_chats.settings import get_settings

    issue_generated_cursor(case, secret=get_settings().cursor_secret, user=USER_CLAIMS["sub"])


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_handlers_honour_the_contract(case: schemathesis.Case[Any], ddb: Any, characters: None) -> None:
    mode = case.meta.generation.mode.value if case.meta is not None else "?"
    CASES[f"{case.operation.label} {mode}"] += 1
    issue_cursor(case)
    case.call_and_validate()


def test_stateful_create_list_delete_follows_the_links(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws

    start_scenarios_with_create(monkeypatch)

    class ChatsWorkflow(schema.as_state_machine()):  # type: ignore[misc]
        """Each scenario gets a fresh table: generation must not depend on what an earlier scenario left."""

        def setup(self) -> None:
            self.aws = mock_aws()
            self.aws.start()
            fresh_table()

        def teardown(self) -> None:
            reset_caches()
            self.aws.stop()
            super().teardown()

        def before_call(self, case: schemathesis.Case[Any]) -> None:
            CASES[f"stateful {case.operation.label}"] += 1
            issue_cursor(case)

        def after_call(self, response: schemathesis.Response, case: schemathesis.Case[Any]) -> None:
            super().after_call(response, case)
            outcomes[f"{case.operation.label} {response.status_code}"] += 1

    outcomes: Counter[str] = Counter()
    ChatsWorkflow.run(settings=stateful_settings(STATEFUL_RUNS, STATEFUL_STEPS))
    assert_scenarios_chained(outcomes)
