"""Schemathesis against the local runtime (``python -m aurora_local run``) over real HTTP on 127.0.0.1.

The same run as ``tests/integration/test_contract.py`` (every check, positive and negative data, then the stateful phase over the
OpenAPI links; see :mod:`tests.support.contract`), but through everything between a client and the handlers locally:
the HTTP server, the API Gateway emulation (routing, the HS256 JWT authorizer and its own 401s, event building),
the functions' execution environments and the embedded DynamoDB. Each run has its own user with a valid local token.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from jwt.warnings import InsecureKeyLengthWarning
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.support.contract import (
    OPENAPI,
    assert_scenarios_chained,
    contract_config,
    issue_generated_cursor,
    start_scenarios_with_create,
    stateful_settings,
)
from tests.support.local_runtime import PURGE_DEADLINE_SECONDS, Runtime, assert_problem, chat_items, token

pytestmark = [
    pytest.mark.e2e,
    # The documented local secret is short.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

# Generated cases per operation (examples + coverage + fuzzing, positive and negative); stateful runs are bounded
# separately. Over HTTP every case is a real round trip through the runtime, so fewer than in-process.
MAX_EXAMPLES = 40
STATEFUL_RUNS = 10
STATEFUL_STEPS = 8
# The runtime's cursor secret: it starts from a clean environment, where CURSOR_SECRET gets its local stand-in
# (`aurora_local.runtime.local_value`). Positive cases with a cursor not signed by it would be 400s.
LOCAL_CURSOR_SECRET = b"local-dev-cursor-secret"
FUZZ_USER = f"contract-http-{uuid.uuid4().hex[:8]}"
STATEFUL_USER = f"contract-http-stateful-{uuid.uuid4().hex[:8]}"


def bearer(user: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return token(user, "Casey")


def http_schema(bearer_token: str) -> OpenApiSchema:
    config = contract_config(token=bearer_token, max_examples=MAX_EXAMPLES, stateful_steps=STATEFUL_STEPS)
    return schemathesis.openapi.from_path(OPENAPI, config=config)


schema = http_schema(bearer(FUZZ_USER))
STATEFUL_TOKEN = bearer(STATEFUL_USER)  # replaced by each scenario's own user's token
stateful_schema = http_schema(STATEFUL_TOKEN)
CASES: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_case_counts() -> Iterator[None]:
    yield
    if CASES:
        print("\nschemathesis cases per operation (HTTP):", dict(sorted(CASES.items())))


def test_the_runtime_serves_the_committed_document(runtime: Runtime) -> None:
    """The runtime serves the document being tested, and its authorizer accepts the test token."""
    served = requests.get(f"{runtime.url}/openapi.json", timeout=30)
    assert served.content == OPENAPI.read_bytes()
    listed = requests.get(
        f"{runtime.url}/chats", headers={"Authorization": f"Bearer {bearer(FUZZ_USER)}"}, timeout=30
    )
    assert listed.status_code == 200, listed.text


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND"])
def test_a_method_no_route_serves_is_the_gateways_404_not_a_501_page(runtime: Runtime, method: str) -> None:
    # Found by schemathesis: http.server answered methods without a do_<METHOD> with its 501 HTML page.
    response = requests.request(method, f"{runtime.url}/chats", timeout=30)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"message": "Not Found"}


@pytest.mark.parametrize(
    "headers",
    [{"X-Padding": "a" * 70_000}, {f"X-Header-{i}": "1" for i in range(120)}],
    ids=["a 70 KB header line", "120 headers"],
)
def test_headers_too_large_to_read_are_the_documented_431_problem(
    runtime: Runtime, headers: dict[str, str]
) -> None:
    # http.server rejects these before any route matches; it answered with a text/html page the document does not
    # allow (every 431 is application/problem+json, as the functions' own 431 for headers over 10 KB).
    authorization = {"Authorization": f"Bearer {bearer(FUZZ_USER)}"}
    response = requests.get(f"{runtime.url}/chats", headers={**authorization, **headers}, timeout=30)
    body = assert_problem(response, 431)
    assert body["type"].endswith("/request-header-fields-too-large")
    assert requests.get(f"{runtime.url}/chats", headers=authorization, timeout=30).status_code == 200


def test_a_cancelled_transaction_does_not_stop_the_stream_purge(runtime: Runtime) -> None:
    # Found by schemathesis' traffic: after any 404 delete (a TransactWriteItems whose condition fails), the embedded
    # DynamoDB swapped the table's stream shard and the stream pump never saw another record: no purge ever again.
    client = requests.Session()
    client.headers["Authorization"] = f"Bearer {bearer(f'purge-{uuid.uuid4().hex[:8]}')}"
    assert_problem(client.delete(f"{runtime.url}/chats/1", timeout=30), 404)
    created = client.post(f"{runtime.url}/characters/330905/chats", timeout=30)
    assert created.status_code == 201, created.text
    chat_id = created.json()["chatId"]
    assert chat_items(runtime, chat_id)
    assert client.delete(f"{runtime.url}/chats/{chat_id}", timeout=30).status_code == 200
    deadline = time.monotonic() + PURGE_DEADLINE_SECONDS
    while chat_items(runtime, chat_id) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert chat_items(runtime, chat_id) == [], f"messages left behind:\n{runtime.output}"


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_the_local_runtime_honours_the_contract(case: schemathesis.Case[Any], runtime: Runtime) -> None:
    mode = case.meta.generation.mode.value if case.meta is not None else "?"
    CASES[f"{case.operation.label} {mode}"] += 1
    issue_generated_cursor(case, secret=LOCAL_CURSOR_SECRET, user=FUZZ_USER)
    # Never the document's first server (`make run`'s default port): the runtime this session started.
    case.call_and_validate(base_url=runtime.url, timeout=30)


def test_stateful_create_list_delete_follows_the_links_over_http(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_scenarios_with_create(monkeypatch)
    stateful_schema.config.update(base_url=runtime.url)

    class ChatsWorkflow(stateful_schema.as_state_machine()):  # type: ignore[misc]
        """Each scenario is a new user: what it generates (links into listed chats) must not depend on what an
        earlier scenario left, or Hypothesis sees flaky data generation (the in-process run uses a fresh table)."""

        def setup(self) -> None:
            super().setup()
            self.user = f"{STATEFUL_USER}-{uuid.uuid4().hex[:8]}"
            self.authorization = f"Bearer {bearer(self.user)}"

        def before_call(self, case: schemathesis.Case[Any]) -> None:
            CASES[f"stateful {case.operation.label}"] += 1
            # The configured token (the security scheme's) becomes this scenario's; a negative case's mangled or
            # missing Authorization stays as generated.
            if case.headers is not None and case.headers.get("Authorization") == f"Bearer {STATEFUL_TOKEN}":
                case.headers["Authorization"] = self.authorization
            issue_generated_cursor(case, secret=LOCAL_CURSOR_SECRET, user=self.user)

        def after_call(self, response: schemathesis.Response, case: schemathesis.Case[Any]) -> None:
            super().after_call(response, case)
            assert str(response.request.url).startswith(runtime.url + "/"), response.request.url
            outcomes[f"{case.operation.label} {response.status_code}"] += 1
            if response.status_code < 400:
                users.add(self.user)

    outcomes: Counter[str] = Counter()
    users: set[str] = set()
    ChatsWorkflow.run(settings=stateful_settings(STATEFUL_RUNS, STATEFUL_STEPS))
    assert_scenarios_chained(outcomes)
    assert len(users) > 1, users  # and each scenario was served as its own user
