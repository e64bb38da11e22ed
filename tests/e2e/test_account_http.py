"""Account deletion is final and the per-user chat limit, over real HTTP through the local runtime (``make run``'s
entry point); ``UserDeleted`` is delivered with ``make invoke``'s entry point, as EventBridge is not emulated."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from aurora_chats.dal import keys

from tests.support.env import ROOT
from tests.support.local_runtime import (
    LOCAL_TABLE,
    PURGE_DEADLINE_SECONDS,
    Runtime,
    assert_problem,
    chat_items,
    clean_env,
    start_runtime,
    token,
)

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")]

PROBLEMS = "https://docs.aurora-interactive.dev/problems/"
LIMIT = 2


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def session(user: str) -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token(user)}"
    return http


def initialize(runtime: Runtime, http: requests.Session, key: str | None = None) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return http.post(f"{runtime.url}/characters/330905/chats", headers=headers, timeout=30)


def user_partition(runtime: Runtime, user: str) -> list[str]:
    page = runtime.dynamodb().query(
        TableName=LOCAL_TABLE,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.user_pk(user)}},
        ConsistentRead=True,
    )
    return [item["SK"]["S"] for item in page["Items"]]


def invoke_user_deleted(runtime: Runtime, user: str, tmp_path: Path) -> dict[str, object]:
    event = json.loads((ROOT / "events" / "cleanup_user_deleted.json").read_text())
    event["detail"]["userId"] = user
    path = tmp_path / "user_deleted.json"
    path.write_text(json.dumps(event))
    done = subprocess.run(
        [sys.executable, "-m", "aurora_local", "invoke", "ChatCleanupFunction", str(path)],
        cwd=ROOT,
        env=clean_env(DYNAMODB_PORT=str(runtime.dynamodb_port)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_after_user_deleted_the_users_token_gets_403_and_nothing_is_stored(
    runtime: Runtime, tmp_path: Path
) -> None:
    user, other = new_user(), new_user()
    http = session(user)
    chats = [initialize(runtime, http, key=f"k-{n}").json()["chatId"] for n in range(2)]
    others = initialize(runtime, session(other)).json()["chatId"]

    assert invoke_user_deleted(runtime, user, tmp_path)["complete"] is True
    assert user_partition(runtime, user) == [keys.USER_STATE_SK]  # only the marker

    # The token is still valid: every write is a 403 problem of its own type, and nothing is written.
    for response in (
        initialize(runtime, http),
        initialize(runtime, http, key="k-0"),
        http.delete(f"{runtime.url}/chats/{chats[0]}", timeout=30),
    ):
        assert assert_problem(response, 403)["type"] == PROBLEMS + "account-deleted"
    assert user_partition(runtime, user) == [keys.USER_STATE_SK]
    listing = http.get(f"{runtime.url}/chats", timeout=30)
    assert listing.status_code == 200 and listing.json()["chatIds"] == []
    # The stream pump purges the deleted chats' messages; the other user keeps everything.
    deadline = time.monotonic() + PURGE_DEADLINE_SECONDS
    while any(chat_items(runtime, chat) for chat in chats):
        assert time.monotonic() < deadline, "the deleted account's chats were not purged"
        time.sleep(0.2)
    assert session(other).get(f"{runtime.url}/chats", timeout=30).json()["chatIds"] == [others]


@pytest.fixture(scope="module")
def limited() -> Iterator[Runtime]:
    """A second local stack, deployed with ``MaxChatsPerUser=2`` (``PARAMETER_OVERRIDES``, as sam deploy's)."""
    started = start_runtime(PARAMETER_OVERRIDES=f"MaxChatsPerUser={LIMIT}")
    yield started
    started.stop()


def test_past_the_chat_limit_initialize_is_a_409_of_its_own_type_and_a_delete_frees_a_slot(
    limited: Runtime,
) -> None:
    http = session(new_user())
    made = [initialize(limited, http).json()["chatId"] for _ in range(LIMIT)]
    refused = initialize(limited, http, key="over")
    assert assert_problem(refused, 409)["type"] == PROBLEMS + "chat-limit-reached"
    assert initialize(limited, http, key="over").status_code == 409  # its key was not stored either
    assert sorted(http.get(f"{limited.url}/chats", timeout=30).json()["chatIds"]) == sorted(made)

    assert http.delete(f"{limited.url}/chats/{made[0]}", timeout=30).status_code == 200
    assert initialize(limited, http).status_code == 201
    assert initialize(limited, http).status_code == 409


def test_parallel_initializes_at_the_limit_never_leave_more_than_the_limit(limited: Runtime) -> None:
    http = session(new_user())
    assert initialize(limited, http).status_code == 201
    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(lambda _: initialize(limited, session_of(http)).status_code, range(6)))
    assert statuses == [201] * (LIMIT - 1) + [409] * (7 - LIMIT)
    assert len(http.get(f"{limited.url}/chats", timeout=30).json()["chatIds"]) == LIMIT


def session_of(http: requests.Session) -> requests.Session:
    """A new connection with the same token (each thread its own session)."""
    copy = requests.Session()
    copy.headers["Authorization"] = http.headers["Authorization"]
    return copy
