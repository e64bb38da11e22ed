"""End to end over real HTTP on 127.0.0.1: the local runtime of ``make run`` (template routes, JWT authorizer
emulation, the real handlers, the embedded DynamoDB and its stream pumped into the cleanup function)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests
from aurora_chats.dal import keys

from tests.support.env import ROOT
from tests.support.local_runtime import (
    LOCAL_TABLE,
    PURGE_DEADLINE_SECONDS,
    SECRET,
    Runtime,
    assert_problem,
    chat_items,
    clean_env,
    free_port,
    port_is_free,
    start_runtime,
    token,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings(
        "ignore::jwt.warnings.InsecureKeyLengthWarning"
    ),  # the documented local secret
]

CHARACTER = 330905


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


class Client:
    def __init__(self, runtime: Runtime, user: str, name: str | None = None) -> None:
        self.url = runtime.url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token(user, name)}"

    def initialize(self, character: int | str = CHARACTER) -> requests.Response:
        return self.session.post(f"{self.url}/characters/{character}/chats", timeout=30)

    def list(self, query: str = "") -> requests.Response:
        return self.session.get(f"{self.url}/chats{query}", timeout=30)

    def delete(self, chat_id: int | str) -> requests.Response:
        return self.session.delete(f"{self.url}/chats/{chat_id}", timeout=30)


# ---------------------------------------------------------------- the JWT authorizer


def _bad_authorization(case: str, user: str) -> str:
    now = int(time.time())
    return {
        "missing": "",
        "bad signature": "Bearer " + token(user, secret="not-the-local-secret"),
        "expired": "Bearer " + token(user, exp=now - 60),
        "not yet valid": "Bearer " + token(user, nbf=now + 3600),
        "malformed": "Bearer not.a.jwt",
        "not a token at all": "Basic YWxpY2U6c2VjcmV0",
        "wrong algorithm": "Bearer " + jwt.encode({"sub": user}, "", algorithm="none"),
    }[case]


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "bad signature",
        "expired",
        "not yet valid",
        "malformed",
        "not a token at all",
        "wrong algorithm",
    ],
)
def test_a_request_without_a_valid_token_is_401_before_any_function_runs(runtime: Runtime, case: str) -> None:
    user = new_user()
    header = _bad_authorization(case, user)
    headers = {"Authorization": header} if header else {}
    response = requests.post(f"{runtime.url}/characters/{CHARACTER}/chats", headers=headers, timeout=30)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    listing = Client(runtime, user).list()
    assert listing.status_code == 200 and listing.json()["chatIds"] == []  # nothing was created


def test_claims_reach_the_function_as_the_authorizer_passes_them(runtime: Runtime) -> None:
    user = new_user()
    response = requests.post(
        f"{runtime.url}/characters/{CHARACTER}/chats",
        headers={
            "Authorization": token(user, "Zoë", exp=int(time.time()) + 600)
        },  # no "Bearer " prefix: accepted
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert "Zoë" in response.json()["message"]["content"]


# ---------------------------------------------------------------- the walkthrough


def test_initialize_list_delete_then_the_stream_purges_the_messages(runtime: Runtime) -> None:
    alice = Client(runtime, new_user(), "Alice")
    created = alice.initialize()
    assert created.status_code == 201, created.text
    chat_id = created.json()["chatId"]
    assert created.headers["Location"] == f"/chats/{chat_id}"
    assert created.json()["message"]["content"].startswith("Hi Alice")
    assert any(keys.is_message_sk(item["SK"]["S"]) for item in chat_items(runtime, chat_id))

    listed = alice.list()
    assert listed.status_code == 200
    assert listed.json()["chatIds"] == [chat_id]

    deleted = alice.delete(chat_id)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"chatId": chat_id, "deleted": True}
    assert alice.list().json()["chatIds"] == []

    deadline = time.monotonic() + PURGE_DEADLINE_SECONDS
    while chat_items(runtime, chat_id) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert chat_items(runtime, chat_id) == [], f"messages left behind:\n{runtime.output}"


def test_parallel_initializes_are_all_distinct_and_all_listed(runtime: Runtime) -> None:
    bob = new_user()
    with ThreadPoolExecutor(
        max_workers=12
    ) as pool:  # one session per thread: requests.Session is not thread-safe
        responses = list(pool.map(lambda _: Client(runtime, bob).initialize(), range(12)))
    assert [r.status_code for r in responses] == [201] * 12, [r.text for r in responses]
    ids = [r.json()["chatId"] for r in responses]
    assert len(set(ids)) == 12
    listed = Client(runtime, bob).list("?limit=100").json()["chatIds"]
    assert sorted(listed, reverse=True) == listed
    assert set(listed) == set(ids)


def test_parallel_deletes_of_one_chat_all_answer_200_and_delete_it_once(runtime: Runtime) -> None:
    """Retry-safe delete: the losers of the race find the winner's tombstone and answer the same 200."""
    carol = new_user()
    chat_id = Client(runtime, carol).initialize().json()["chatId"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(lambda _: Client(runtime, carol).delete(chat_id).status_code, range(8)))
    assert statuses == [200] * 8
    tombstones = runtime.dynamodb().query(
        TableName=LOCAL_TABLE,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :deleted)",
        ExpressionAttributeValues={":pk": {"S": keys.user_pk(carol)}, ":deleted": {"S": keys.DELETED_PREFIX}},
        ConsistentRead=True,
    )["Items"]
    assert len(tombstones) == 1


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/chats/abc"),
        ("DELETE", "/chats/0"),
        ("DELETE", "/chats/-5"),
        ("DELETE", "/chats/9007199254740992"),
        ("GET", "/chats?limit=0"),
        ("GET", "/chats?limit=101"),
        ("GET", "/chats?limit=ten"),
        ("GET", "/chats?cursor=garbage"),
        ("POST", "/characters/abc/chats"),
        ("POST", "/characters/0/chats"),
        ("POST", "/characters/1.5/chats"),
    ],
)
def test_bad_ids_and_queries_are_400_problems(runtime: Runtime, method: str, path: str) -> None:
    client = Client(runtime, new_user())
    assert_problem(client.session.request(method, runtime.url + path, timeout=30), 400)


def test_unknown_character_and_someone_elses_chat_are_404_problems(runtime: Runtime) -> None:
    owner, other = Client(runtime, new_user()), Client(runtime, new_user())
    assert_problem(owner.initialize(999_999_999), 404)
    chat_id = owner.initialize().json()["chatId"]
    assert_problem(other.delete(chat_id), 404)
    assert owner.list().json()["chatIds"] == [chat_id]


def test_a_path_no_route_serves_is_the_gateways_404(runtime: Runtime) -> None:
    response = requests.get(f"{runtime.url}/chats/1/messages", timeout=30)
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}
    assert requests.put(f"{runtime.url}/chats", timeout=30).status_code == 404


# ---------------------------------------------------------------- contract, docs, invoke, token


def test_openapi_document_and_offline_swagger_ui(runtime: Runtime) -> None:
    document = requests.get(f"{runtime.url}/openapi.json", timeout=30).json()
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert {"getChatsForUser", "initializeChat", "deleteChat"} <= operations
    page = requests.get(f"{runtime.url}/docs", timeout=30)
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assert "/docs/swagger-ui-bundle.min.js" in page.text and "cdn" not in page.text.lower()
    for asset in ("swagger-ui-bundle.min.js", "swagger-ui.min.css"):
        assert requests.get(f"{runtime.url}/docs/{asset}", timeout=30).status_code == 200


def test_invoke_runs_one_function_on_one_event_against_the_embedded_table(runtime: Runtime) -> None:
    alice = Client(runtime, "alice", "Alice")  # the user of events/list_chats.json
    chat_id = alice.initialize().json()["chatId"]
    done = subprocess.run(
        [sys.executable, "-m", "aurora_local", "invoke", "ListChatsFunction", "events/list_chats.json"],
        cwd=ROOT,
        env=clean_env(DYNAMODB_PORT=str(runtime.dynamodb_port)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout is the result only; logs went to stderr
    assert result["statusCode"] == 200
    assert chat_id in json.loads(result["body"])["chatIds"]


def test_invoke_with_an_unknown_function_names_the_template_functions() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aurora_local", "invoke", "NoSuchFunction", "events/list_chats.json"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "ListChatsFunction" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "user"), [(["USER=bob", "NAME=Bob"], "bob"), ([], "alice")])
def test_make_token_prints_a_token_for_the_user_on_its_last_line(args: list[str], user: str) -> None:
    done = subprocess.run(
        ["make", "-s", "token", *args],
        cwd=ROOT,
        env=clean_env(USER="root"),  # the shell's USER is the login name, not the token's user
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    claims = jwt.decode(done.stdout.strip().splitlines()[-1], SECRET, algorithms=["HS256"])
    assert claims["sub"] == user
    assert claims["exp"] > time.time()


# ---------------------------------------------------------------- process robustness


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_every_child_and_frees_both_ports(sig: signal.Signals) -> None:
    runtime = start_runtime()
    assert not port_is_free(runtime.port) and not port_is_free(runtime.dynamodb_port)
    assert runtime.stop(sig) == 0, runtime.output
    assert port_is_free(runtime.port), runtime.output
    deadline = time.monotonic() + 10
    while not port_is_free(runtime.dynamodb_port) and time.monotonic() < deadline:
        time.sleep(0.1)  # the embedded DynamoDB is a child process: it is gone, its socket closes with it
    assert port_is_free(runtime.dynamodb_port), runtime.output


def test_an_existing_endpoint_is_used_instead_of_starting_moto(runtime: Runtime) -> None:
    endpoint = f"http://127.0.0.1:{runtime.dynamodb_port}"
    second = start_runtime(AWS_ENDPOINT_URL_DYNAMODB=endpoint, LOCAL_TABLE_NAME="aurora-chats-second")
    try:
        assert port_is_free(second.dynamodb_port)  # no embedded DynamoDB of its own
        client = Client(second, new_user())
        chat_id = client.initialize().json()["chatId"]
        item = runtime.dynamodb().get_item(TableName="aurora-chats-second", Key=keys.chat_record_key(chat_id))
        assert "Item" in item
    finally:
        assert second.stop() == 0, second.output
    assert not port_is_free(runtime.dynamodb_port)  # it left the endpoint it did not start alone
    assert Client(runtime, new_user()).list().status_code == 200


@pytest.mark.parametrize("busy", ["PORT", "DYNAMODB_PORT"])
def test_a_busy_port_is_a_one_line_error(busy: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        ports = {"PORT": str(free_port()), "DYNAMODB_PORT": str(free_port())}
        ports[busy] = str(holder.getsockname()[1])
        done = subprocess.run(
            [sys.executable, "-m", "aurora_local", "run"],
            cwd=ROOT,
            env=clean_env(**ports),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "already in use" in done.stderr and ports[busy] in done.stderr
    assert port_is_free(int(ports["PORT"])) and port_is_free(int(ports["DYNAMODB_PORT"]))


def test_the_embedded_dynamodb_honours_client_request_tokens(runtime: Runtime) -> None:
    """A retried transaction (same ClientRequestToken) is answered once, as DynamoDB does: moto alone runs it twice."""
    from botocore.exceptions import ClientError

    client = runtime.dynamodb()
    key = {"PK": {"S": f"TEST#{uuid.uuid4().hex}"}, "SK": {"S": "ONCE"}}
    write = {
        "Put": {"TableName": LOCAL_TABLE, "Item": key, "ConditionExpression": "attribute_not_exists(PK)"}
    }
    token = uuid.uuid4().hex
    client.transact_write_items(TransactItems=[write], ClientRequestToken=token)
    client.transact_write_items(
        TransactItems=[write], ClientRequestToken=token
    )  # the retry: no condition failure
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=[write], ClientRequestToken=uuid.uuid4().hex)
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    other = {"Put": {**write["Put"], "Item": {**key, "SK": {"S": "OTHER"}}}}
    with pytest.raises(ClientError) as mismatch:
        client.transact_write_items(TransactItems=[other], ClientRequestToken=token)
    assert mismatch.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"


# ---------------------------------------------------------------- issue 12: retry-safe delete, paging past TTL debris


def test_a_repeated_delete_over_http_is_the_same_200_and_someone_elses_stays_404(runtime: Runtime) -> None:
    owner, other = Client(runtime, new_user()), Client(runtime, new_user())
    chat_id = owner.initialize().json()["chatId"]
    first = owner.delete(chat_id)
    assert (first.status_code, first.json()) == (200, {"chatId": chat_id, "deleted": True})
    again = owner.delete(chat_id)  # an SDK retry after a lost answer
    assert (again.status_code, again.json()) == (200, first.json())
    assert_problem(other.delete(chat_id), 404)
    assert_problem(owner.delete(1), 404)


@pytest.mark.parametrize("path", ["/chats", "/chats/pages"])
def test_next_cursor_reaches_every_live_chat_past_long_runs_of_expired_entries(
    runtime: Runtime, path: str
) -> None:
    """30 TTL-pending entries between live chats: more than the old 4 reads of limit + 1 could cross. No page may be
    empty while it carries a cursor (an SDK stops there), and following nextCursor to null lists every live chat."""
    user = new_user()
    client = Client(runtime, user)
    live = [client.initialize().json()["chatId"] for _ in range(3)]
    expired_at = str(int(time.time()) - 60)
    ddb = runtime.dynamodb()
    for chat_id in live:
        for step in range(1, 31):  # newer ids than each live chat
            if chat_id + step in live:
                continue
            ddb.put_item(
                TableName=LOCAL_TABLE,
                Item={
                    **keys.user_entry_key(user, chat_id + step),
                    "chatId": {"N": str(chat_id + step)},
                    "characterId": {"N": str(CHARACTER)},
                    "createdAt": {"S": "2026-01-01T00:00:00.000Z"},
                    # A list entry's end of retention is listedUntil (README "The table"), not the TTL attribute.
                    "listedUntil": {"N": expired_at},
                },
            )
    seen: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        query = "?limit=1" + (f"&cursor={cursor}" if cursor else "")
        response = client.session.get(f"{runtime.url}{path}{query}", timeout=30)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["chatIds"] or page["nextCursor"] is None, "an empty page with a cursor"
        seen += page["chatIds"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == sorted(live, reverse=True)
