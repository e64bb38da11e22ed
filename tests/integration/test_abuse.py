"""Hostile input (OWASP API4/API8), property-based: every path, query, header and body input of the three routes.

Whatever a client sends, the answer is a 4xx ``application/problem+json`` (or the documented success for a valid
request), never a 5xx, and never a write. Cursors: no cursor string makes a list read outside the caller's partition
(the Query parameters are captured at botocore's ``before-parameter-build`` and checked).

Example counts are fixed and derandomized (the same examples on every run, CI included): see ``EXAMPLES``.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from aurora_chats.dal import keys
from aurora_local.events import http_api_event
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.support.api import Response
from tests.support.aws import table_items
from tests.support.context import FakeContext
from tests.support.loader import load_function

EXAMPLES = 200
ABUSE = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
CHARACTERS = {330905, 1001, 1002, 1003, 1004}
ROUTES = {
    "list": ("list_chats", "GET", "GET /chats"),
    "initialize": ("initialize_chat", "POST", "POST /characters/{characterId}/chats"),
    "delete": ("delete_chat", "DELETE", "DELETE /chats/{chatId}"),
}


class Recorder:
    """Every DynamoDB call the handlers make, with its parameters."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, params))

    def writes(self) -> list[str]:
        return [name for name, _ in self.calls if name in WRITES]

    def queries(self) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == "Query"]


@pytest.fixture
def world(api: Any, ddb: Any) -> Iterator[dict[str, Any]]:
    """Alice and Bob with chats (Bob's: enough for a second page, so Bob has real cursors).

    After all of a property's examples, the table is exactly as before unless the property sent valid requests
    that write (``world["writes"] = True``; those examples are checked one by one instead).
    """
    alice = [api.initialize(330905, user="alice").json["chatId"] for _ in range(2)]
    bob = [api.initialize(1001, user="bob").json["chatId"] for _ in range(3)]
    state: dict[str, Any] = {
        "alice": alice,
        "bob": bob,
        "bob_cursor": api.list(user="bob", query="limit=1").json["nextCursor"],
        "alice_cursor": api.list(user="alice", query="limit=1").json["nextCursor"],
        "recorder": Recorder(),
        "writes": False,
    }
    before = table_items(ddb)
    ddb.meta.events.register("before-parameter-build.dynamodb", state["recorder"])
    yield state
    ddb.meta.events.unregister("before-parameter-build.dynamodb", state["recorder"])
    if not state["writes"]:
        assert table_items(ddb) == before


def invoke(
    route: str,
    value: str | None = None,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    claims: dict[str, Any] | None = None,
) -> Response:
    function, method, route_key = ROUTES[route]
    if route == "list":
        path, params = "/chats", None
    elif route == "initialize":
        path, params = f"/characters/{value}/chats", {"characterId": value or ""}
    else:
        path, params = f"/chats/{value}", {"chatId": value or ""}
    event = http_api_event(
        method, path, route_key=route_key, path_parameters=params, raw_query=query, headers=headers,
        claims={"sub": "alice"} if claims is None else claims, body=body,
    )  # fmt: skip
    return Response(load_function(function).handler(event, FakeContext()))


def assert_4xx_problem(response: Response) -> None:
    assert 400 <= response.status < 500, response
    assert response.content_type == "application/problem+json", response.raw
    assert response.json["status"] == response.status
    assert {"type", "title", "status", "detail"} <= set(response.json)


def canonical(value: str) -> int | None:
    """The id a string names if it is exactly what a client may send (plain decimal, no leading zero)."""
    if value.isascii() and value.isdigit() and value[0] != "0" and len(value) <= 16:
        return int(value)
    return None


# ---------------------------------------------------------------- hostile ids

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats().map(str),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.integers(min_value=2**53, max_value=2**200).map(str),
    st.from_regex(r"\A[+-]?[0-9]{1,4}(\.[0-9]{0,3})?[eE][+-]?[0-9]{1,3}\Z"),
    st.from_regex(r"\A(0x[0-9a-f]{1,8}|0o[0-7]{1,8}|0b[01]{1,16}|[0-9]{1,3}_[0-9]{1,3}|0+[0-9]{1,5})\Z"),
    st.sampled_from(
        ["-0", "+0", "0", "-1", "+1", "00", " 1", "1 ", "1\n", "\t1", "1\x00", "\x001", "NaN", "inf"]
    ),
)
unicode_digits = st.text(
    st.characters(categories=["Nd"], exclude_characters="0123456789"), min_size=1, max_size=16
)
junk = st.one_of(
    st.text(max_size=50),
    st.text(min_size=2_000, max_size=6_000),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=30),
    st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
)
hostile_ids = st.one_of(numbers, unicode_digits, junk)


@ABUSE
@given(value=hostile_ids)
def test_any_hostile_id_is_a_4xx_problem_and_writes_nothing(world: dict[str, Any], value: str) -> None:
    from aurora_chats.ids import MAX_ID

    known = canonical(value)
    assume(known not in CHARACTERS and known not in world["alice"])  # those are valid requests, not hostile
    recorder = world["recorder"]
    init = invoke("initialize", value)
    delete = invoke("delete", value)
    assert_4xx_problem(init)
    assert_4xx_problem(delete)
    if known is not None and 1 <= known <= MAX_ID:
        assert (
            init.status == delete.status == 404
        )  # well-formed, just nobody's: the table is checked at the end
    else:
        # 400, or 404 "no such resource" when the value cannot even be a path segment (e.g. contains "/").
        assert init.status in (400, 404) and delete.status in (400, 404)
        assert recorder.calls == []  # rejected before any DynamoDB call
    recorder.calls.clear()


# ---------------------------------------------------------------- the query string (API Gateway joins repeats)

query_values = st.one_of(
    st.text(max_size=80), numbers, unicode_digits, st.sampled_from(["", "20", "1", "100"])
)
query_pairs = st.lists(
    st.tuples(
        st.sampled_from(["limit", "cursor", "Limit", "limit[]", "x", "cursor "]) | st.text(max_size=10),
        query_values,
    ),
    max_size=6,
)


def expected_list_status(pairs: list[tuple[str, str]], world: dict[str, Any]) -> int:
    joined: dict[str, str] = {}
    for name, value in pairs:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    limit = joined.get("limit")
    if limit is not None and (canonical(limit) is None or not 1 <= int(limit) <= 100):
        return 400
    cursor = joined.get("cursor")
    if cursor is not None and cursor != world["alice_cursor"]:
        return 400
    return 200


@ABUSE
@given(pairs=query_pairs)
def test_any_query_string_is_200_or_a_4xx_problem_and_only_reads_the_callers_list(
    world: dict[str, Any], pairs: list[tuple[str, str]]
) -> None:
    response = invoke("list", query=urlencode(pairs))
    expected = expected_list_status(pairs, world)
    if expected == 200:
        assert response.status == 200, response
        assert set(response.json["chatIds"]) <= set(world["alice"])
    else:
        assert_4xx_problem(response)
    assert_only_alices_partition(world)


def assert_only_alices_partition(world: dict[str, Any]) -> None:
    recorder = world["recorder"]
    assert recorder.writes() == []
    for query in recorder.queries():
        assert query["ExpressionAttributeValues"][":pk"] == {"S": keys.user_pk("alice")}
        assert "PK = :pk" in query["KeyConditionExpression"]
        start = query.get("ExclusiveStartKey")
        if start is not None:
            assert start["PK"] == {"S": keys.user_pk("alice")}
            assert keys.is_user_chat_entry_sk(start["SK"]["S"])
    recorder.calls.clear()


# ---------------------------------------------------------------- cursors: forged, foreign, garbled


def forged(version: int, chat_id: int, mac: bytes) -> str:
    raw = bytes([version % 256]) + struct.pack(">Q", chat_id % 2**64) + mac
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def flip(cursor: str, position: int, char: str) -> str:
    position %= len(cursor)
    return cursor[:position] + char + cursor[position + 1 :]


@st.composite
def cursors(draw: st.DrawFn, world: dict[str, Any]) -> str:
    kind = draw(
        st.sampled_from(["bob", "bob-mutated", "alice-mutated", "forged", "random-b64", "text", "padded"])
    )
    if kind == "bob":
        return str(world["bob_cursor"])
    if kind in ("bob-mutated", "alice-mutated"):
        base = world["bob_cursor"] if kind == "bob-mutated" else world["alice_cursor"]
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/. %"
        return flip(base, draw(st.integers(0, 1000)), draw(st.sampled_from(alphabet)))
    if kind == "forged":
        chat_id = draw(st.sampled_from([*world["bob"], 0, 1, 2**53 - 1, 2**53, 2**64 - 1]))
        return forged(draw(st.integers(0, 3)), chat_id, draw(st.binary(min_size=0, max_size=20)))
    if kind == "random-b64":
        return base64.urlsafe_b64encode(draw(st.binary(max_size=60))).decode().rstrip("=")
    if kind == "padded":
        return str(world["alice_cursor"]) + draw(st.sampled_from(["=", "==", "A", "%3D", " ", "\x00"]))
    return draw(st.text(max_size=120))


@ABUSE
@given(data=st.data())
def test_no_cursor_string_makes_a_list_read_outside_the_callers_partition(
    world: dict[str, Any], data: st.DataObject
) -> None:
    cursor = data.draw(cursors(world))
    response = invoke("list", query=urlencode({"cursor": cursor, "limit": "1"}))
    if cursor == world["alice_cursor"]:
        assert response.status == 200
    else:
        assert_4xx_problem(response)
        assert response.status == 400
    if response.status == 200:
        assert set(response.json["chatIds"]) <= set(world["alice"])
    assert_only_alices_partition(world)


# ---------------------------------------------------------------- headers


header_values = st.one_of(
    st.text(max_size=300),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=200, max_size=300),
    st.sampled_from(["", " ", "a b", "k\x00", "\u00e9", "key,other", "x" * 255, "x" * 256]),
)


def valid_key(key: str) -> bool:
    return 1 <= len(key) <= 255 and all(0x21 <= ord(c) <= 0x7E for c in key)


@ABUSE
@given(
    keys=st.lists(header_values, min_size=1, max_size=2),
    extra=st.dictionaries(st.from_regex(r"\Ax-[a-z]{1,10}\Z"), st.text(max_size=100), max_size=3),
)
def test_any_idempotency_key_is_400_and_writes_nothing_unless_it_is_valid(
    world: dict[str, Any], ddb: Any, keys: list[str], extra: dict[str, str]
) -> None:
    joined = ",".join(keys)  # API Gateway joins a repeated header with commas
    headers = dict(extra)
    function, method, route_key = ROUTES["initialize"]
    event = http_api_event(
        method, "/characters/1002/chats", route_key=route_key, path_parameters={"characterId": "1002"},
        headers=headers, claims={"sub": "alice"},
    )  # fmt: skip
    event["headers"]["idempotency-key"] = joined
    response = Response(load_function(function).handler(event, FakeContext()))
    recorder = world["recorder"]
    if valid_key(joined):
        world["writes"] = True
        assert response.status in (200, 201), response
        assert recorder.writes() == ["TransactWriteItems"]
    else:
        assert_4xx_problem(response)
        assert recorder.writes() == []
    recorder.calls.clear()


@ABUSE
@given(size=st.integers(min_value=0, max_value=30_000), route=st.sampled_from(sorted(ROUTES)))
def test_headers_over_the_size_limit_are_431_and_touch_nothing(
    world: dict[str, Any], size: int, route: str
) -> None:
    from aurora_chats.http import MAX_HEADER_BYTES

    response = invoke(route, "7", headers={"x-padding": "p" * size})
    if size > MAX_HEADER_BYTES:
        assert_4xx_problem(response)
        assert response.status == 431
        assert world["recorder"].calls == []
    else:
        assert response.status < 500
    world["recorder"].calls.clear()


# ---------------------------------------------------------------- bodies (the routes take none)

bodies = st.one_of(
    st.binary(min_size=1, max_size=3_000),  # invalid UTF-8 arrives base64-encoded
    st.text(min_size=1, max_size=3_000),
    st.sampled_from(["{}", "null", '{"characterId": 1}', "\x00", " "]),
)


@ABUSE
@given(body=bodies, route=st.sampled_from(sorted(ROUTES)))
def test_any_request_body_is_400_or_413_and_writes_nothing(
    world: dict[str, Any], body: bytes | str, route: str
) -> None:
    from aurora_chats.http import MAX_BODY_BYTES

    value = "1002" if route == "initialize" else str(world["alice"][0])
    response = invoke(route, value, body=body)
    assert_4xx_problem(response)
    size = len(body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass"))
    assert response.status == (413 if size > MAX_BODY_BYTES + 2 else 400) or (
        abs(size - MAX_BODY_BYTES) <= 2 and response.status in (400, 413)
    )
    assert world["recorder"].calls == []


# ---------------------------------------------------------------- identities


@ABUSE
@given(
    claims=st.one_of(
        st.none(),
        st.dictionaries(st.sampled_from(["sub", "name", "preferred_username"]), st.text(max_size=300)),
        st.fixed_dictionaries({"sub": st.one_of(st.integers(), st.lists(st.text()), st.none(), st.text())}),
    ),
    route=st.sampled_from(sorted(ROUTES)),
)
def test_any_identity_claims_are_answered_without_a_5xx(
    world: dict[str, Any], claims: dict[str, Any] | None, route: str
) -> None:
    response = invoke(route, "7", claims=claims or {})  # no character 7, no chat 7: valid callers get 404
    sub = (claims or {}).get("sub")
    if isinstance(sub, str) and valid_key(sub) and len(sub) <= 255:
        assert response.status == (200 if route == "list" else 404), response
    else:
        assert_4xx_problem(response)
        assert response.status == 401
        assert world["recorder"].calls == []
    world["recorder"].calls.clear()


# ---------------------------------------------------------------- the same limits over real HTTP (local runtime)


@pytest.fixture(scope="module")
def runtime() -> Iterator[Any]:
    from tests.support.local_runtime import start_runtime

    started = start_runtime()
    yield started
    started.stop()


def _bearer(user: str) -> str:
    import time

    import jwt

    return "Bearer " + jwt.encode(
        {"sub": user, "iat": int(time.time())}, "local-dev-secret", algorithm="HS256"
    )


@pytest.mark.e2e
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_hostile_http_requests_through_the_local_runtime_are_4xx_problems(runtime: Any) -> None:
    import requests
    from aurora_chats.http import MAX_BODY_BYTES, MAX_HEADER_BYTES

    session = requests.Session()
    secret_token = _bearer("mallory")
    session.headers["Authorization"] = secret_token
    url = runtime.url
    cases = {
        "big body": session.post(
            f"{url}/characters/330905/chats", data=b"x" * (MAX_BODY_BYTES + 1), timeout=30
        ),
        "small body": session.post(f"{url}/characters/330905/chats", data=b"{}", timeout=30),
        "invalid utf-8 body": session.delete(f"{url}/chats/7", data=b"\xff\xfe\x00", timeout=30),
        "big headers": session.get(f"{url}/chats", headers={"x-pad": "p" * MAX_HEADER_BYTES}, timeout=30),
        "NUL in the path": session.delete(f"{url}/chats/1%00", timeout=30),
        "newline in the path": session.delete(f"{url}/chats/1%0A", timeout=30),
        "duplicate limit": session.get(f"{url}/chats?limit=1&limit=2", timeout=30),
        "duplicate cursor": session.get(f"{url}/chats?cursor=a&cursor=b", timeout=30),
        "unicode digits": session.delete(f"{url}/chats/%D9%A1", timeout=30),
    }
    for case, response in cases.items():
        assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
        assert response.headers["Content-Type"].startswith("application/problem+json"), case
    assert cases["big body"].status_code == 413
    assert cases["big headers"].status_code == 431
    assert session.get(f"{url}/chats", timeout=30).json()["chatIds"] == []  # nothing was written for mallory
    assert secret_token.split()[1] not in "\n".join(runtime.lines)  # nor logged by the runtime
