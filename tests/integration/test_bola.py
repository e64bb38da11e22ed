"""BOLA (OWASP API1): user B holding user A's chat id, cursor or idempotency key gets nothing of A's and changes
nothing of A's. Every test asserts on the table itself, not only on status codes."""

from __future__ import annotations

from typing import Any

import pytest
from aurora_chats.dal import keys

from tests.support.api import Api, Response
from tests.support.aws import table_items

ALICE, BOB = "alice", "bob"


def items_of(ddb: Any, user: str) -> list[dict[str, Any]]:
    """Everything that belongs to ``user``: their partition, and their chats' records and messages."""
    items = table_items(ddb)
    chat_pks = {
        keys.chat_pk(int(i["chatId"]["N"]))
        for i in items
        if i["PK"]["S"] == keys.user_pk(user) and keys.is_user_chat_entry_sk(i["SK"]["S"])
    }
    owned = [i for i in items if i["PK"]["S"] == keys.user_pk(user) or i["PK"]["S"] in chat_pks]
    return sorted(owned, key=lambda i: (i["PK"]["S"], i["SK"]["S"]))


def assert_problem(response: Response, status: int) -> None:
    assert response.status == status, response
    assert response.content_type == "application/problem+json"


@pytest.fixture
def alices(api: Api) -> dict[str, Any]:
    """Alice: three chats (one under an idempotency key), and a cursor to her second page."""
    keyed = api.initialize(330905, user=ALICE, key="alice-key")
    chats = [keyed.json["chatId"]] + [api.initialize(1001, user=ALICE).json["chatId"] for _ in range(2)]
    cursor = api.list(user=ALICE, query="limit=1").json["nextCursor"]
    assert cursor
    return {"chats": chats, "keyed": keyed.json, "cursor": cursor}


def test_bob_lists_none_of_alices_chats(api: Api, ddb: Any, alices: dict[str, Any]) -> None:
    before = items_of(ddb, ALICE)
    page = api.list(user=BOB)
    assert page.status == 200
    assert page.json["chatIds"] == [] and page.json["chats"] == [] and page.json["nextCursor"] is None
    assert items_of(ddb, ALICE) == before


def test_bobs_use_of_alices_cursor_is_400_and_reads_nothing_of_hers(
    api: Api, ddb: Any, alices: dict[str, Any]
) -> None:
    queries: list[dict[str, Any]] = []
    ddb.meta.events.register("before-call.dynamodb.Query", lambda params, **_: queries.append(params))
    response = api.list(user=BOB, query=f"limit=1&cursor={alices['cursor']}")
    assert_problem(response, 400)
    assert queries == []  # rejected before any read: not even Bob's own partition with Alice's position
    assert not any(str(chat_id) in response.raw["body"] for chat_id in alices["chats"])


def test_bob_deleting_alices_chat_is_the_same_404_as_a_missing_chat_and_changes_nothing(
    api: Api, ddb: Any, alices: dict[str, Any]
) -> None:
    before = items_of(ddb, ALICE)
    for chat_id in alices["chats"]:
        response = api.delete(chat_id, user=BOB)
        assert_problem(response, 404)
        missing = api.delete(chat_id + 1, user=BOB)
        assert {k: v for k, v in response.json.items() if k != "detail"} == {
            k: v for k, v in missing.json.items() if k != "detail"
        }
    assert items_of(ddb, ALICE) == before
    assert api.list(user=ALICE).json["chatIds"] == sorted(alices["chats"], reverse=True)


def test_bob_reusing_alices_idempotency_key_gets_his_own_new_chat_and_hers_is_untouched(
    api: Api, ddb: Any, alices: dict[str, Any]
) -> None:
    before = items_of(ddb, ALICE)
    same_character = api.initialize(330905, user=BOB, key="alice-key")
    assert same_character.status == 201  # not 200 with Alice's chat
    assert same_character.json["chatId"] not in alices["chats"]
    assert same_character.json["message"] != alices["keyed"]["message"]
    # Another character under Alice's key: a 409 would reveal that Alice used this key for 330905.
    other_character = api.initialize(1001, user=BOB, key="alice-key-2")
    assert other_character.status == 201
    assert items_of(ddb, ALICE) == before
    bobs = api.list(user=BOB).json["chatIds"]
    assert sorted(bobs) == sorted([same_character.json["chatId"], other_character.json["chatId"]])


def test_bob_replaying_his_key_never_returns_alices_chat_even_after_she_deletes_hers(
    api: Api, ddb: Any, alices: dict[str, Any]
) -> None:
    bobs = api.initialize(330905, user=BOB, key="alice-key").json["chatId"]
    assert api.delete(alices["keyed"]["chatId"], user=ALICE).status == 200
    again = api.initialize(330905, user=BOB, key="alice-key")
    assert again.status == 200
    assert again.json["chatId"] == bobs
    alice_again = api.initialize(330905, user=ALICE, key="alice-key")
    assert alice_again.status == 201  # her chat under the key is gone: a new one, never Bob's
    assert alice_again.json["chatId"] not in (bobs, alices["keyed"]["chatId"])


def test_bob_deleting_his_own_chat_leaves_alices_intact(api: Api, ddb: Any, alices: dict[str, Any]) -> None:
    before = items_of(ddb, ALICE)
    bobs = api.initialize(330905, user=BOB).json["chatId"]
    assert api.delete(bobs, user=BOB).status == 200
    assert items_of(ddb, ALICE) == before


@pytest.mark.parametrize("sub", [keys.user_pk("alice"), "alice#", "ALICE", "alice\u200b", "*", "alice,bob"])
def test_look_alike_identities_are_other_users_or_401(
    api: Api, ddb: Any, alices: dict[str, Any], sub: str
) -> None:
    before = items_of(ddb, ALICE)
    page = api.list(user=sub)
    if page.status == 200:
        assert page.json["chatIds"] == []
    else:
        assert_problem(page, 401)
    for chat_id in alices["chats"]:
        assert api.delete(chat_id, user=sub).status in (401, 404)
    replay = api.initialize(330905, user=sub, key="alice-key")
    assert replay.status in (201, 401)
    if replay.status == 201:
        assert replay.json["chatId"] not in alices["chats"]
    assert items_of(ddb, ALICE) == before
