"""DynamoDB faults, injected into the service's own client on moto's HTTP endpoint: the fault matrix.

Faults enter at botocore's ``before-send`` event, i.e. *inside* botocore's retry loop: a canned DynamoDB answer
replaces the HTTP request (which then never reaches moto, so nothing is written), or the request is really sent and
applied and its answer "lost" (``ReadTimeoutError``). moto alone does not implement ``ClientRequestToken``; the tests'
moto server adds it as DynamoDB documents it (:func:`aurora_local.dynamodb.dynamodb_endpoint`): a repeat of a committed
token gets the first answer and writes nothing.

Fault matrix (``DDB_MAX_ATTEMPTS=2`` in the tests; "always" = every attempt of every call):

=================================================  ==================  ===================  ==============
fault                                              list (Query)        initialize           delete
=================================================  ==================  ===================  ==============
throttling / 500 / 503, once                       200 (retried)       201 (retried)        200 (retried)
throttling / 500 / 503, always                     503 + Retry-After   503, nothing written 503, unchanged
TransactionConflict cancellation, once             -                   201 (use case retry) 200
TransactionConflict cancellation, always           -                   503, nothing written 503, unchanged
cancellation with ThrottlingError reasons          -                   503, nothing written 503, unchanged
connect timeout (request never sent), always       503                 503, nothing written 503, unchanged
answer lost once (applied, read timeout)           200                 201, exactly 1 chat  200
answer lost always                                 503 (a read)        504 outcome-unknown  504; repeat:404
answer lost, then throttled                        -                   504 (it WAS written) 504
TransactionInProgressException, always             -                   504                  504
unexpected ValidationException                     500, no internals   500, nothing written 500
=================================================  ==================  ===================  ==============
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aurora_chats.dal import keys
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from tests.support.api import Api, Response
from tests.support.aws import table_items

# ---------------------------------------------------------------- the injector


@dataclass(frozen=True)
class Fault:
    kind: str  # "status" | "lost" | "unsent"
    status: int = 0
    code: str = ""
    reasons: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.code or self.kind


def error(status: int, code: str, *reasons: str) -> Fault:
    return Fault("status", status, code, reasons)


THROTTLING = error(400, "ThrottlingException")
PROVISIONED = error(400, "ProvisionedThroughputExceededException")
INTERNAL = error(500, "InternalServerError")
UNAVAILABLE = error(503, "ServiceUnavailable")
CONFLICT = error(400, "TransactionCanceledException", "TransactionConflict", "None", "None", "None")
CANCELLED_THROTTLED = error(400, "TransactionCanceledException", "ThrottlingError", "None", "None", "None")
IN_PROGRESS = error(400, "TransactionInProgressException")
VALIDATION = error(400, "ValidationException")
LOST = Fault("lost")
UNSENT = Fault("unsent")


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _headers(**values: str) -> HTTPHeaders:
    headers = HTTPHeaders()
    for name, value in values.items():
        headers[name.replace("_", "-")] = value
    return headers


def _answer(url: str, status: int, body: dict[str, Any]) -> AWSResponse:
    headers = _headers(Content_Type="application/x-amz-json-1.0", x_amzn_RequestId="fault-injected")
    return AWSResponse(url, status, headers, _Raw(json.dumps(body).encode()))


@dataclass
class Faults:
    """Per-operation queues of faults for successive attempts; ``always`` faults repeat forever."""

    plan: dict[str, list[Fault]] = field(default_factory=dict)
    always: dict[str, Fault] = field(default_factory=dict)
    attempts: Counter[str] = field(default_factory=Counter)

    def install(self, client: Any) -> Faults:
        client.meta.events.register("before-send.dynamodb", self._before_send)
        return self

    def _before_send(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        self.attempts[operation] += 1
        queue = self.plan.get(operation, [])
        fault = queue.pop(0) if queue else self.always.get(operation)
        if fault is None:
            return None
        if fault.kind == "unsent":
            raise ConnectTimeoutError(endpoint_url=request.url)
        if fault.kind == "lost":
            _send(
                request
            )  # applied (a repeat of its ClientRequestToken is answered from the first, writes nothing)
            raise ReadTimeoutError(endpoint_url=request.url)
        body: dict[str, Any] = {
            "__type": f"com.amazonaws.dynamodb.v20120810#{fault.code}",
            "message": f"injected {fault.code}",
        }
        if fault.reasons:
            body["CancellationReasons"] = [{"Code": r, "Message": r} for r in fault.reasons]
        return _answer(request.url, fault.status, body)


def _send(request: AWSPreparedRequest) -> AWSResponse:
    from botocore.httpsession import URLLib3Session

    answer = URLLib3Session().send(request)
    answer.content  # noqa: B018 - read it now: the connection goes back to the pool
    return answer


@pytest.fixture
def faults(server_ddb: Any, monkeypatch: pytest.MonkeyPatch) -> Faults:
    from botocore.retries.standard import ExponentialBackoff

    # The faults and the number of attempts are real; only the waiting between attempts is skipped.
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    monkeypatch.setattr("aurora_chats.usecases.random.uniform", lambda a, b: 0)
    return Faults().install(server_ddb)


@pytest.fixture
def api() -> Api:
    return Api()


def assert_problem(response: Response, status: int, slug: str) -> None:
    assert response.status == status, response
    assert response.content_type == "application/problem+json"
    assert response.json["status"] == status
    assert response.json["type"].endswith("/" + slug)
    assert set(response.json) >= {"type", "title", "status", "detail"}


def chats_of(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items chats are made of (not characters, not the user-state item: see :func:`chat_count`)."""
    return [
        i for i in items if not keys.is_character_pk(i["PK"]["S"]) and not keys.is_user_state_sk(i["SK"]["S"])
    ]


def chat_count(items: list[dict[str, Any]], user: str = "alice") -> int:
    (state,) = [i for i in items if (i["PK"]["S"], i["SK"]["S"]) == (keys.user_pk(user), keys.USER_STATE_SK)]
    return int(state["chatCount"]["N"])


Operation = Callable[[Api], Response]
OPERATIONS: dict[str, tuple[str, Operation]] = {
    "list": ("Query", lambda api: api.list()),
    "initialize": ("TransactWriteItems", lambda api: api.initialize(330905, key="k-1")),
    "delete": ("TransactWriteItems", lambda api: api.delete(SEEDED["chat"])),
}
SEEDED: dict[str, int] = {}
SUCCESS = {"list": 200, "initialize": 201, "delete": 200}


@pytest.fixture
def seeded(api: Api, server_ddb: Any, faults: Faults) -> list[dict[str, Any]]:
    """One chat of alice's (the delete target); the table as it was before the fault."""
    SEEDED["chat"] = api.initialize(330905).json["chatId"]
    items = table_items(server_ddb)
    faults.attempts.clear()
    return items


# ---------------------------------------------------------------- retried, then fine


@pytest.mark.parametrize("fault", [THROTTLING, PROVISIONED, INTERNAL, UNAVAILABLE], ids=str)
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_transient_fault_is_retried_and_the_call_succeeds(
    api: Api, faults: Faults, seeded: Any, operation: str, fault: Fault
) -> None:
    dynamodb_operation, call = OPERATIONS[operation]
    faults.plan[dynamodb_operation] = [fault]
    response = call(api)
    assert response.status == SUCCESS[operation], response
    assert faults.attempts[dynamodb_operation] == 2


def test_a_throttled_character_read_is_retried(api: Api, faults: Faults) -> None:
    faults.plan["GetItem"] = [THROTTLING]
    assert api.initialize(1001).status == 201
    assert faults.attempts["GetItem"] == 2


# ---------------------------------------------------------------- still failing after retries: 503, nothing written


@pytest.mark.parametrize("fault", [THROTTLING, PROVISIONED, INTERNAL, UNAVAILABLE, UNSENT], ids=str)
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_fault_that_outlasts_the_retries_is_503_with_retry_after_and_nothing_written(
    api: Api, faults: Faults, server_ddb: Any, seeded: list[dict[str, Any]], operation: str, fault: Fault
) -> None:
    dynamodb_operation, call = OPERATIONS[operation]
    faults.always[dynamodb_operation] = fault
    response = call(api)
    assert_problem(response, 503, "service-unavailable")
    assert response.headers["retry-after"] == "1"
    assert faults.attempts[dynamodb_operation] == 2  # DDB_MAX_ATTEMPTS: bounded
    del faults.always[dynamodb_operation]
    assert table_items(server_ddb) == seeded


def test_a_character_read_that_stays_throttled_is_503(api: Api, faults: Faults, server_ddb: Any) -> None:
    before = table_items(server_ddb)
    faults.always["GetItem"] = THROTTLING
    assert_problem(api.initialize(1001), 503, "service-unavailable")
    del faults.always["GetItem"]
    assert table_items(server_ddb) == before


@pytest.mark.parametrize("operation", ["initialize", "delete"])
def test_a_transaction_cancelled_by_throttling_is_503_and_nothing_written(
    api: Api, faults: Faults, server_ddb: Any, seeded: list[dict[str, Any]], operation: str
) -> None:
    dynamodb_operation, call = OPERATIONS[operation]
    faults.always[dynamodb_operation] = CANCELLED_THROTTLED
    assert_problem(call(api), 503, "service-unavailable")
    del faults.always[dynamodb_operation]
    assert table_items(server_ddb) == seeded


# ---------------------------------------------------------------- transaction conflicts: the use cases retry


@pytest.mark.parametrize("operation", ["initialize", "delete"])
def test_a_transaction_conflict_is_retried_by_the_use_case(
    api: Api, faults: Faults, server_ddb: Any, seeded: list[dict[str, Any]], operation: str
) -> None:
    dynamodb_operation, call = OPERATIONS[operation]
    faults.plan[dynamodb_operation] = [CONFLICT, CONFLICT]
    response = call(api)
    assert response.status == SUCCESS[operation], response
    assert (
        faults.attempts[dynamodb_operation] == 3
    )  # botocore does not retry a cancellation; the use case does
    if operation == "initialize":
        assert len(chats_of(table_items(server_ddb))) == len(chats_of(seeded)) + 4  # one new chat, whole
        assert api.list().json["chatIds"][0] == response.json["chatId"]
    else:
        assert api.list().json["chatIds"] == []


@pytest.mark.parametrize("operation", ["initialize", "delete"])
def test_a_conflict_that_never_clears_is_503_and_nothing_written(
    api: Api, faults: Faults, server_ddb: Any, seeded: list[dict[str, Any]], operation: str
) -> None:
    from aurora_chats.usecases import MAX_CREATE_ATTEMPTS

    dynamodb_operation, call = OPERATIONS[operation]
    faults.always[dynamodb_operation] = CONFLICT
    assert_problem(call(api), 503, "service-unavailable")
    assert faults.attempts[dynamodb_operation] == MAX_CREATE_ATTEMPTS
    del faults.always[dynamodb_operation]
    assert table_items(server_ddb) == seeded


# ---------------------------------------------------------------- the answer is lost: honest about the outcome


def test_a_lost_answer_is_retried_with_the_same_token_and_creates_exactly_one_chat(
    api: Api, faults: Faults, server_ddb: Any
) -> None:
    faults.plan["TransactWriteItems"] = [LOST]
    response = api.initialize(330905)
    assert response.status == 201, response
    assert faults.attempts["TransactWriteItems"] == 2
    assert api.list().json["chatIds"] == [response.json["chatId"]]
    assert len(chats_of(table_items(server_ddb))) == 3  # chat record, user entry, first message
    assert (
        chat_count(table_items(server_ddb)) == 1
    )  # the retry (same ClientRequestToken) counted nothing twice


def test_a_lost_delete_answer_is_retried_and_answers_200(
    api: Api, faults: Faults, seeded: list[dict[str, Any]]
) -> None:
    faults.plan["TransactWriteItems"] = [LOST]
    assert api.delete(SEEDED["chat"]).status == 200
    assert api.list().json["chatIds"] == []


def test_a_list_whose_answers_are_all_lost_is_503(api: Api, faults: Faults) -> None:
    faults.always["Query"] = LOST
    assert_problem(api.list(), 503, "service-unavailable")


def test_an_initialize_whose_answers_are_all_lost_is_504_and_a_repeat_with_the_key_finds_the_chat(
    api: Api, faults: Faults, server_ddb: Any
) -> None:
    faults.always["TransactWriteItems"] = LOST
    response = api.initialize(330905, key="order-7")
    assert_problem(response, 504, "outcome-unknown")
    assert response.headers["retry-after"] == "1"
    del faults.always["TransactWriteItems"]
    # It was written (exactly once), so the honest answer was "unknown", not "nothing written".
    assert len(chats_of(table_items(server_ddb))) == 4
    again = api.initialize(330905, key="order-7")
    assert again.status == 200, again
    assert api.list().json["chatIds"] == [again.json["chatId"]]


def test_a_delete_whose_answers_are_all_lost_is_504_and_a_repeat_is_the_200_it_lost(
    api: Api, faults: Faults, seeded: list[dict[str, Any]]
) -> None:
    """Issue 12 item 3: the write committed but its answer was lost; the repeat (an SDK retry) must not say 404."""
    faults.always["TransactWriteItems"] = LOST
    assert_problem(api.delete(SEEDED["chat"]), 504, "outcome-unknown")
    del faults.always["TransactWriteItems"]
    again = api.delete(SEEDED["chat"])
    assert (again.status, again.json) == (200, {"chatId": SEEDED["chat"], "deleted": True})
    assert api.list().json["chatIds"] == []


@pytest.mark.parametrize("then", [THROTTLING, INTERNAL, UNSENT], ids=str)
def test_a_lost_answer_followed_by_a_refusal_is_504_not_503(
    api: Api, faults: Faults, server_ddb: Any, then: Fault
) -> None:
    faults.plan["TransactWriteItems"] = [LOST, then]
    assert_problem(api.initialize(330905), 504, "outcome-unknown")
    assert len(chats_of(table_items(server_ddb))) == 3  # the first attempt did write: 503 would have lied


@pytest.mark.parametrize("operation", ["initialize", "delete"])
def test_a_transaction_still_in_progress_after_retries_is_504(
    api: Api, faults: Faults, seeded: list[dict[str, Any]], operation: str
) -> None:
    dynamodb_operation, call = OPERATIONS[operation]
    faults.always[dynamodb_operation] = IN_PROGRESS
    assert_problem(call(api), 504, "outcome-unknown")


# ---------------------------------------------------------------- a bug, not load: 500 without internals


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_an_unexpected_dynamodb_error_is_a_500_without_internals_and_nothing_written(
    api: Api,
    faults: Faults,
    server_ddb: Any,
    seeded: list[dict[str, Any]],
    operation: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dynamodb_operation, call = OPERATIONS[operation]
    faults.always[dynamodb_operation] = VALIDATION
    response = call(api)
    assert_problem(response, 500, "internal-error")
    assert "ValidationException" not in json.dumps(response.json)
    assert faults.attempts[dynamodb_operation] == 1  # a client error is not retried
    del faults.always[dynamodb_operation]
    assert table_items(server_ddb) == seeded


# ---------------------------------------------------------------- the budget: a 503 can still be answered


def test_the_worst_case_retry_time_of_one_call_fits_in_the_function_timeout() -> None:
    """attempts x (connect + read timeout) + botocore's largest throttling backoffs < the function Timeout."""
    from aurora_chats.settings import get_settings, reset_settings
    from aurora_local.template import load_template

    template = load_template()
    function_globals = template["Globals"]["Function"]
    environment = {
        k: v for k, v in function_globals["Environment"]["Variables"].items() if k.startswith("DDB_")
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in ("DDB_MAX_ATTEMPTS", "DDB_CONNECT_TIMEOUT", "DDB_READ_TIMEOUT"):
            patch.delenv(name, raising=False)
        for name, value in environment.items():
            patch.setenv(name, str(value))
        reset_settings()
        settings = get_settings()
    reset_settings()
    attempts = settings.ddb_max_attempts
    backoff = sum(min(2**i, 20) for i in range(attempts - 1))  # throttling: rand(0,1) * 2**i seconds
    worst = attempts * (settings.ddb_connect_timeout + settings.ddb_read_timeout) + backoff
    assert worst < function_globals["Timeout"], (environment, worst)
