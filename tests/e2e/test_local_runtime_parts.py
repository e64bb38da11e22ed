"""The local runtime's gateway and event-source-mapping rules, checked without starting processes."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aurora_chats.dal import keys
from aurora_local import stream
from aurora_local.routing import build_routes, match, to_http_response
from aurora_local.runtime import FunctionError, FunctionSpec, WorkerFunction, function_specs, local_functions
from aurora_local.stream import Mapping

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the local secret

# ---------------------------------------------------------------- template -> functions, environment, routes


def test_environment_comes_from_the_template_with_local_stand_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CURSOR_SECRET", raising=False)
    env = function_specs(table_name="aurora-chats-local")["ListChatsFunction"].environment
    assert env["TABLE_NAME"] == "aurora-chats-local"  # !Ref of the table
    assert env["CHAT_RETENTION_DAYS"] == "0"  # !Ref of a parameter: its Default
    assert env["POWERTOOLS_SERVICE_NAME"] == "aurora-chats"
    assert env["CURSOR_SECRET"] == "local-dev-cursor-secret"  # a Secrets Manager reference has no local value


def test_routes_come_from_the_http_api_events() -> None:
    routes = build_routes(local_functions(function_specs()))
    found = match(routes, "DELETE", "/chats/%38")
    assert found is not None
    route, parameters = found
    assert route.function.name == "DeleteChatFunction" and parameters == {"chatId": "8"}
    assert route.route_key == "DELETE /chats/{chatId}" and route.authorizer is not None
    listed = match(routes, "GET", "/chats")
    assert listed is not None and listed[0].function.name == "ListChatsFunction"
    assert match(routes, "GET", "/chats/8") is None
    assert match(routes, "POST", "/chats") is None
    assert match(routes, "GET", "/chats/") is None


# ---------------------------------------------------------------- Lambda result -> HTTP response


def test_a_result_with_cookies_multi_value_headers_and_base64_body() -> None:
    status, headers, body = to_http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "image/png"},
            "multiValueHeaders": {"X-Tag": ["a", "b"]},
            "cookies": ["s=1; HttpOnly", "t=2"],
            "body": base64.b64encode(b"\x89PNG").decode(),
            "isBase64Encoded": True,
        }
    )
    assert status == 201 and body == b"\x89PNG"
    assert headers == [
        ("Content-Type", "image/png"),
        ("X-Tag", "a"),
        ("X-Tag", "b"),
        ("Set-Cookie", "s=1; HttpOnly"),
        ("Set-Cookie", "t=2"),
    ]


def test_a_bare_json_result_is_a_200_json_response() -> None:
    assert to_http_response({"hello": "world"}) == (
        200,
        [("Content-Type", "application/json")],
        b'{"hello": "world"}',
    )


def test_an_invalid_status_code_is_refused() -> None:
    with pytest.raises(ValueError, match="statusCode"):
        to_http_response({"statusCode": 42})


# ---------------------------------------------------------------- stream batches


def record(n: int, event: str = "REMOVE", sk: str = keys.CHAT_META_SK) -> dict[str, Any]:
    return {
        "eventID": str(n),
        "eventName": event,
        "dynamodb": {
            "Keys": {"PK": {"S": keys.chat_pk(n)}, "SK": {"S": sk}},
            "SequenceNumber": f"{n:05d}",
            "ApproximateCreationDateTime": 9_999_999_999,
        },
    }


@dataclass
class FakeFunction:
    """Answers each invocation with the next scripted reply (an exception is raised)."""

    replies: list[Any]
    name: str = "Fake"
    batches: list[list[int]] = field(default_factory=list)

    def invoke(self, event: dict[str, Any]) -> Any:
        self.batches.append([int(r["eventID"]) for r in event["Records"]])
        reply = self.replies.pop(0) if self.replies else {"batchItemFailures": []}
        if isinstance(reply, Exception):
            raise reply
        return reply


def mapping(function: FakeFunction, **overrides: Any) -> Mapping:
    settings: dict[str, Any] = {
        "function": function,
        "event_name": "Test",
        "batch_size": 10,
        "batching_window": 0.0,
        "starting_position": "TRIM_HORIZON",
        "patterns": [],
        "report_item_failures": True,
        "bisect_on_error": False,
        "max_retries": -1,
        "max_record_age": -1,
        "matcher": None,
        "batch_limit": 10,
    }
    settings.update(overrides)
    return Mapping(**settings)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "MAX_BACKOFF_SECONDS", 0.0)


def pump(m: Mapping, records: list[dict[str, Any]]) -> None:
    m.add("shard", records)
    m.process("shard", threading.Event())


def test_batch_item_failures_retry_from_the_first_failed_record() -> None:
    function = FakeFunction(
        [{"batchItemFailures": [{"itemIdentifier": "00004"}, {"itemIdentifier": "00003"}]}]
    )
    pump(mapping(function), [record(n) for n in range(1, 6)])
    assert function.batches == [[1, 2, 3, 4, 5], [3, 4, 5]]


def test_an_unknown_item_identifier_fails_the_whole_batch() -> None:
    function = FakeFunction([{"batchItemFailures": [{"itemIdentifier": "nope"}]}])
    pump(mapping(function), [record(1), record(2)])
    assert function.batches == [[1, 2], [1, 2]]


def test_without_report_batch_item_failures_the_answer_is_ignored() -> None:
    function = FakeFunction([{"batchItemFailures": [{"itemIdentifier": "00001"}]}])
    pump(mapping(function, report_item_failures=False), [record(1), record(2)])
    assert function.batches == [[1, 2]]


def test_an_error_retries_the_batch_halved_when_bisecting() -> None:
    function = FakeFunction([RuntimeError("boom")])
    pump(mapping(function, bisect_on_error=True), [record(n) for n in range(1, 5)])
    assert function.batches == [[1, 2, 3, 4], [1, 2], [3, 4]]


def test_a_batch_is_discarded_after_maximum_retry_attempts_and_the_rest_goes_on() -> None:
    function = FakeFunction([RuntimeError("1"), RuntimeError("2"), RuntimeError("3")])
    pump(mapping(function, batch_size=2, batch_limit=2, max_retries=2), [record(n) for n in range(1, 5)])
    assert function.batches == [[1, 2], [1, 2], [1, 2], [3, 4]]


def test_batches_respect_batch_size_and_order() -> None:
    function = FakeFunction([])
    pump(mapping(function, batch_size=2, batch_limit=2), [record(n) for n in range(1, 6)])
    assert function.batches == [[1, 2], [3, 4], [5]]


def test_the_templates_filter_criteria_only_let_chat_removals_through() -> None:
    functions = local_functions(function_specs())
    [(name, props)] = functions["ChatCleanupFunction"].spec.events_of_type("DynamoDB").items()
    real = Mapping.from_event(functions["ChatCleanupFunction"], name, props)
    function = FakeFunction([])
    filtered = mapping(function, patterns=real.patterns, matcher=real.matcher)
    pump(
        filtered,
        [
            record(1),
            record(2, event="INSERT"),
            record(3, sk=keys.message_sk("01")),
            record(4, event="MODIFY"),
            record(5),
        ],
    )
    assert function.batches == [[1, 5]]
    assert json.dumps(real.patterns)  # the template's patterns were parsed


# ---------------------------------------------------------------- concurrency


def test_a_slow_function_does_not_hold_up_another_function() -> None:
    """ListChats blocks until DeleteChat has answered: with a global lock this would never finish."""
    import requests
    from aurora_local.auth import issue_token
    from aurora_local.server import LocalApiServer

    functions = local_functions(function_specs())
    released = threading.Event()

    def slow_list(event: dict[str, Any]) -> dict[str, Any]:
        return {"statusCode": 200, "body": json.dumps({"released": released.wait(20)})}

    def quick_delete(event: dict[str, Any]) -> dict[str, Any]:
        released.set()
        return {"statusCode": 200, "body": json.dumps(event["pathParameters"])}

    functions["ListChatsFunction"].invoke = slow_list  # type: ignore[method-assign]
    functions["DeleteChatFunction"].invoke = quick_delete  # type: ignore[method-assign]
    server = LocalApiServer(("127.0.0.1", 0), functions)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    headers = {"Authorization": f"Bearer {issue_token('alice')}"}
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            slow = pool.submit(requests.get, f"{url}/chats", headers=headers, timeout=30)
            quick = requests.delete(f"{url}/chats/7", headers=headers, timeout=30)
            assert quick.json() == {"chatId": "7"}
            assert slow.result().json() == {"released": True}
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- execution environments (make run)

WORKER_APP = """
import os, time

invocations = 0


def handler(event, context):
    global invocations
    invocations += 1
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("crash"):
        os._exit(3)
    if event.get("raise"):
        raise ValueError("bad event")
    return {"pid": os.getpid(), "invocations": invocations, "greeting": os.environ.get("GREETING"),
            "function": context.function_name}
"""


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerFunction]:
    (tmp_path / "app.py").write_text(WORKER_APP)
    spec = FunctionSpec(
        logical_id="EchoFunction",
        code_dir=tmp_path,
        handler="app.handler",
        layer_dirs=(),
        environment={"GREETING": "hello from the template"},
        timeout_seconds=1,
        memory_mb=128,
        events={},
    )
    function = WorkerFunction(spec)
    yield function
    function.stop()


def test_a_function_runs_in_its_own_process_with_its_own_environment(worker: WorkerFunction) -> None:
    first, second = worker.invoke({}), worker.invoke({})
    assert first["pid"] == second["pid"] != os.getpid()
    assert (first["invocations"], second["invocations"]) == (1, 2)  # one warm environment
    assert first["greeting"] == "hello from the template" and "GREETING" not in os.environ
    assert first["function"] == "EchoFunction"


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"sleep": 5}, "Task timed out after 1 seconds"),
        ({"crash": True}, "exited"),
        ({"raise": True}, "bad event"),
    ],
)
def test_a_timeout_crash_or_error_is_a_function_error(
    worker: WorkerFunction, event: dict[str, Any], error: str
) -> None:
    before = worker.invoke({})
    with pytest.raises(FunctionError, match=error):
        worker.invoke(event)
    after = worker.invoke({})
    if "raise" in event:
        assert (
            after["pid"] == before["pid"] and after["invocations"] == 3
        )  # the environment survives an error
    else:
        assert after["pid"] != before["pid"] and after["invocations"] == 1  # a new environment: cold start


class FlakyStreams:
    """A dynamodbstreams client whose second ``GetRecords`` fails (e.g. the endpoint restarted)."""

    def __init__(self) -> None:
        self.iterator_requests: list[dict[str, Any]] = []
        self.pages: list[Any] = [
            [record(1), record(2)],
            ConnectionError("endpoint went away"),
            [record(3)],
        ]

    def describe_table(self, TableName: str) -> dict[str, Any]:
        return {"Table": {"LatestStreamArn": "arn:stream"}}

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, **request: Any) -> dict[str, Any]:
        self.iterator_requests.append(request)
        return {"ShardIterator": "iterator"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        page = self.pages.pop(0) if self.pages else []
        if isinstance(page, Exception):
            raise page
        return {"Records": page, "NextShardIterator": "iterator"}


def test_the_pump_resumes_after_the_last_record_read_when_the_stream_fails() -> None:
    streams = FlakyStreams()
    pump = stream.StreamPump({}, "table", dynamodb=streams, streams=streams)  # type: ignore[arg-type]
    function = FakeFunction([])
    pump.mappings.append(mapping(function))
    pump.start()
    try:
        deadline = time.monotonic() + 20
        while len(function.batches) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pump.stop()
    assert function.batches == [[1, 2], [3]]  # nothing replayed, nothing lost
    assert streams.iterator_requests[0]["ShardIteratorType"] == "TRIM_HORIZON"
    assert streams.iterator_requests[1]["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER"
    assert streams.iterator_requests[1]["SequenceNumber"] == "00002"
