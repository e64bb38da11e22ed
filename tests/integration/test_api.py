"""The three API functions end to end on moto, with the table built from template.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aurora_chats.dal import keys

from tests.support.api import Api
from tests.support.aws import CallLog, table_items
from tests.support.env import TABLE

MAX_ID = 2**53 - 1


def assert_problem(response: Any, status: int) -> None:
    assert response.status == status, response
    assert response.content_type == "application/problem+json"
    assert {"type", "title", "status", "detail"} <= set(response.json)
    assert response.json["status"] == status


def test_initialize_creates_a_chat_with_the_characters_greeting(api: Api) -> None:
    response = api.initialize(330905, name="Alice")
    assert response.status == 201
    body = response.json
    assert body["characterId"] == 330905
    assert 1 <= body["chatId"] <= MAX_ID
    assert body["message"]["role"] == "character"
    assert body["message"]["content"].startswith("Hi Alice, I'm Aurora")
    assert body["createdAt"].endswith("Z")
    assert response.headers["location"] == f"/chats/{body['chatId']}"


def test_greeting_uses_preferred_username_then_user(api: Api) -> None:
    from aurora_local.events import http_api_event

    from tests.support.context import FakeContext
    from tests.support.loader import load_function

    event = http_api_event(
        "POST", "/characters/1001/chats", path_parameters={"characterId": "1001"},
        claims={"sub": "carol", "preferred_username": "caz"},
    )  # fmt: skip
    result = load_function("initialize_chat").handler(event, FakeContext())
    assert "caz" in result["body"]
    anonymous = api.initialize(1003, user="dave")
    assert anonymous.json["message"]["content"].startswith("Good morning, User!")


def test_name_claim_with_a_lone_surrogate_still_starts_the_chat(api: Api) -> None:
    # An IdP that cut a display name in the middle of an emoji signs "\ud83d" into the token; the claim is the
    # user's own data, so it must not turn into a 500 (botocore cannot encode a lone surrogate as UTF-8).
    response = api.initialize(330905, name="Alice \ud83d")
    assert response.status == 201, response
    assert response.json["message"]["content"].startswith("Hi Alice \ufffd, I'm Aurora")
    assert api.list().json["chatIds"] == [response.json["chatId"]]


def test_new_chat_is_in_the_very_next_list(api: Api) -> None:
    created = api.initialize(330905).json["chatId"]
    listed = api.list()
    assert listed.status == 200
    assert listed.json["chatIds"][0] == created
    assert listed.json["chats"][0] == {
        "chatId": created,
        "characterId": 330905,
        "createdAt": listed.json["chats"][0]["createdAt"],
    }


def test_paging_with_limit_3_returns_every_chat_exactly_once_newest_first(api: Api) -> None:
    made = [api.initialize(330905).json["chatId"] for _ in range(8)]
    seen: list[int] = []
    query = "limit=3"
    pages = 0
    while True:
        page = api.list(query=query)
        assert page.status == 200
        assert len(page.json["chatIds"]) <= 3
        seen.extend(page.json["chatIds"])
        pages += 1
        if page.json["nextCursor"] is None:
            break
        query = f"limit=3&cursor={page.json['nextCursor']}"
    assert seen == sorted(made, reverse=True)
    assert pages == 3


def test_list_defaults_to_20(api: Api) -> None:
    for _ in range(21):
        api.initialize(1004)
    page = api.list()
    assert len(page.json["chatIds"]) == 20
    assert page.json["nextCursor"] is not None


def test_users_only_see_their_own_chats(api: Api) -> None:
    mine = api.initialize(330905, user="alice").json["chatId"]
    theirs = api.initialize(330905, user="bob").json["chatId"]
    assert api.list(user="alice").json["chatIds"] == [mine]
    assert api.list(user="bob").json["chatIds"] == [theirs]


def test_another_users_cursor_is_400_and_reveals_nothing(api: Api) -> None:
    for _ in range(3):
        api.initialize(330905, user="alice")
    cursor = api.list(user="alice", query="limit=1").json["nextCursor"]
    response = api.list(user="bob", query=f"cursor={cursor}")
    assert_problem(response, 400)
    assert response.json["errors"][0]["field"] == "query.cursor"


@pytest.mark.parametrize("cursor", ["abc", "A" * 34, "A" * 200, "%00", "null"])
def test_garbled_cursor_is_400(api: Api, cursor: str) -> None:
    assert_problem(api.list(query=f"cursor={cursor}"), 400)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1e1", "2.5", ""])
def test_out_of_range_limit_is_400(api: Api, limit: str) -> None:
    response = api.list(query=f"limit={limit}")
    assert_problem(response, 400)
    assert response.json["errors"][0]["field"] == "query.limit"


def test_delete_removes_the_chat_from_the_list_at_once(api: Api) -> None:
    chat_id = api.initialize(330905).json["chatId"]
    response = api.delete(chat_id)
    assert response.status == 200
    assert response.json == {"chatId": chat_id, "deleted": True}
    assert chat_id not in api.list().json["chatIds"]


def test_a_repeated_delete_answers_the_same_200_and_purges_nothing_twice(
    api: Api, ddb: Any, calls: CallLog
) -> None:
    """Retry-safe delete: an SDK retry after a lost 200 must not read "not found"."""
    import time

    chat_id = api.initialize(330905).json["chatId"]
    first = api.delete(chat_id)
    after_first = table_items(ddb)
    calls.clear()
    again = api.delete(chat_id)
    assert (
        (again.status, again.json)
        == (first.status, first.json)
        == (200, {"chatId": chat_id, "deleted": True})
    )
    assert calls.calls == ["TransactWriteItems", "GetItem"]  # the cancelled transaction + the tombstone
    assert table_items(ddb) == after_first  # nothing written (or deleted) by the repeat
    (tombstone,) = [i for i in after_first if keys.is_deleted_chat_sk(i["SK"]["S"])]
    assert tombstone["PK"]["S"] == keys.user_pk("alice")
    assert tombstone["SK"]["S"] == keys.deleted_chat_sk(chat_id)
    assert set(tombstone) == {"PK", "SK", "type", "chatId", "expiresAt"}  # small: no chat content
    assert abs(int(tombstone["expiresAt"]["N"]) - (time.time() + 86_400)) < 60


def test_a_tombstone_is_the_callers_own_someone_elses_delete_stays_404(api: Api) -> None:
    chat_id = api.initialize(330905, user="alice").json["chatId"]
    assert api.delete(chat_id, user="alice").status == 200
    foreign = api.delete(chat_id, user="bob")
    never = api.delete(99, user="bob")
    assert_problem(foreign, 404)
    assert foreign.json == never.json | {"detail": foreign.json["detail"]}  # indistinguishable from none


def test_an_expired_tombstone_no_longer_answers_200(api: Api, ddb: Any) -> None:
    chat_id = api.initialize(330905).json["chatId"]
    assert api.delete(chat_id).status == 200
    ddb.update_item(  # moto never deletes expired items: TTL is lazy on DynamoDB too
        TableName=TABLE,
        Key=keys.deleted_chat_key("alice", chat_id),
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    assert_problem(api.delete(chat_id), 404)


def test_delete_of_someone_elses_chat_is_404_and_changes_nothing(api: Api, ddb: Any) -> None:
    chat_id = api.initialize(330905, user="alice").json["chatId"]
    before = table_items(ddb)
    response = api.delete(chat_id, user="bob")
    assert_problem(response, 404)
    assert response.json == api.delete(99, user="bob").json | {"detail": response.json["detail"]}
    assert table_items(ddb) == before
    assert api.list(user="alice").json["chatIds"] == [chat_id]


def test_unknown_character_is_404_and_writes_nothing(api: Api, ddb: Any) -> None:
    before = len(table_items(ddb))
    assert_problem(api.initialize(777), 404)
    assert len(table_items(ddb)) == before


@pytest.mark.parametrize("bad", ["0", "-1", str(2**53), "1e3", "abc", "1.5", "+1", "%20", "01", "9" * 40])
def test_bad_ids_are_400_on_every_route(api: Api, ddb: Any, bad: str) -> None:
    before = len(table_items(ddb))
    init = api.initialize(bad)
    assert_problem(init, 400)
    assert init.json["errors"][0]["field"] == "path.characterId"
    delete = api.delete(bad)
    assert_problem(delete, 400)
    assert delete.json["errors"][0]["field"] == "path.chatId"
    assert len(table_items(ddb)) == before


def test_largest_safe_id_is_accepted(api: Api) -> None:
    assert_problem(api.delete(MAX_ID), 404)
    assert_problem(api.initialize(MAX_ID), 404)


@pytest.mark.parametrize("call", ["list", "initialize", "delete"])
def test_missing_identity_is_401(api: Api, call: str) -> None:
    if call == "list":
        response = api.list(user=None)
    elif call == "initialize":
        response = api.initialize(330905, user=None)
    else:
        response = api.delete(1, user=None)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def test_idempotent_replay_returns_the_same_chat_with_200(api: Api, ddb: Any) -> None:
    first = api.initialize(330905, key="order-42")
    assert first.status == 201
    count = len(table_items(ddb))
    again = api.initialize(330905, key="order-42")
    assert again.status == 200
    assert again.json == first.json
    assert again.headers["location"] == first.headers["location"]
    assert len(table_items(ddb)) == count
    assert api.list().json["chatIds"] == [first.json["chatId"]]


def test_same_key_with_another_character_is_409(api: Api, ddb: Any) -> None:
    api.initialize(330905, key="order-42")
    count = len(table_items(ddb))
    assert_problem(api.initialize(1001, key="order-42"), 409)
    assert len(table_items(ddb)) == count


def test_same_key_for_different_users_are_different_chats(api: Api) -> None:
    a = api.initialize(330905, user="alice", key="k")
    b = api.initialize(330905, user="bob", key="k")
    assert a.status == b.status == 201
    assert a.json["chatId"] != b.json["chatId"]


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\tkey", "é"])
def test_bad_idempotency_key_is_400(api: Api, ddb: Any, key: str) -> None:
    before = len(table_items(ddb))
    response = api.initialize(330905, key=key)
    assert_problem(response, 400)
    assert len(table_items(ddb)) == before


def test_idempotency_record_expires_after_24_hours(api: Api, ddb: Any) -> None:
    import time

    api.initialize(330905, key="k")
    record = next(i for i in table_items(ddb) if keys.is_idempotency_sk(i["SK"]["S"]))
    assert abs(int(record["expiresAt"]["N"]) - (time.time() + 86_400)) < 60


def test_initialize_writes_chat_entry_and_message_in_one_transaction(
    api: Api, ddb: Any, calls: CallLog
) -> None:
    api.initialize(330905, key="k1")
    assert calls.calls == ["GetItem", "TransactWriteItems"]
    calls.clear()
    body = api.initialize(330905).json
    assert calls.calls == ["TransactWriteItems"]  # the character is cached
    items = {(i["PK"]["S"], i["SK"]["S"]) for i in table_items(ddb) if not keys.is_character_pk(i["PK"]["S"])}
    chat, alice = keys.chat_pk(body["chatId"]), keys.user_pk("alice")
    assert (chat, keys.CHAT_META_SK) in items
    assert any(pk == chat and keys.is_message_sk(sk) for pk, sk in items)
    assert any(pk == alice and keys.is_user_chat_entry_sk(sk) for pk, sk in items)
    assert any(pk == alice and keys.is_idempotency_sk(sk) for pk, sk in items)


def test_list_is_one_query_and_delete_is_one_transaction(api: Api, calls: CallLog) -> None:
    chat_id = api.initialize(330905).json["chatId"]
    calls.clear()
    api.list()
    assert calls.calls == ["Query"]
    calls.clear()
    api.delete(chat_id)
    assert calls.calls == ["TransactWriteItems"]  # the tombstone is one more Put in it, not another call


def test_replay_costs_one_transaction_and_one_read(api: Api, calls: CallLog) -> None:
    api.initialize(330905, key="k1")
    calls.clear()
    api.initialize(330905, key="k1")
    assert calls.calls == ["TransactWriteItems", "GetItem"]


def test_list_pages_is_the_same_list_as_get_chats(api: Api, calls: CallLog) -> None:
    """`GET /chats/pages` (the SDK's `chats.listPages`) serves the same pages, cursors and errors as `GET /chats`."""
    made = [api.initialize(330905).json["chatId"] for _ in range(3)]
    first = api.list(query="limit=2").json
    assert api.list_pages(query="limit=2").json == first
    cursor = first["nextCursor"]
    calls.clear()
    rest = api.list_pages(query=f"limit=2&cursor={cursor}")
    assert rest.json == api.list(query=f"limit=2&cursor={cursor}").json
    assert calls.calls == ["Query", "Query"]
    assert first["chatIds"] + rest.json["chatIds"] == sorted(made, reverse=True)
    assert_problem(api.list_pages(query="cursor=garbled"), 400)
    assert_problem(api.list_pages(user=None), 401)


def test_table_is_built_from_the_template(ddb: Any) -> None:
    description = ddb.describe_table(TableName=TABLE)["Table"]
    assert description["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert description["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    ttl = ddb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expiresAt"


def test_a_plain_table_template_builds_the_same_table(ddb: Any, tmp_path: Path) -> None:
    """``create_table`` still reads the ``AWS::DynamoDB::Table`` shape (the template before the global table)."""
    import yaml
    from aurora_local.template import create_table, load_template

    table = load_template()["Resources"]["ChatsTable"]
    props = {k: v for k, v in table["Properties"].items() if k != "Replicas"}
    path = tmp_path / "plain.yaml"
    path.write_text(
        yaml.safe_dump({"Resources": {"Plain": {"Type": "AWS::DynamoDB::Table", "Properties": props}}}),
        encoding="utf-8",
    )
    create_table(ddb, "plain", path)
    plain = ddb.describe_table(TableName="plain")["Table"]
    ours = ddb.describe_table(TableName=TABLE)["Table"]
    for key in ("KeySchema", "AttributeDefinitions", "StreamSpecification", "BillingModeSummary"):
        assert plain.get(key) == ours.get(key), key
    assert (
        ddb.describe_time_to_live(TableName="plain")["TimeToLiveDescription"]["AttributeName"] == "expiresAt"
    )


def _expired_entries(ddb: Any, user: str, chat_ids: list[int]) -> None:
    """List entries whose TTL has passed but that DynamoDB has not deleted yet (TTL deletes lazily)."""
    import time

    expired_at = str(int(time.time()) - 60)
    for chat_id in chat_ids:
        ddb.put_item(
            TableName=TABLE,
            Item={
                **keys.user_entry_key(user, chat_id),
                "chatId": {"N": str(chat_id)},
                "characterId": {"N": "330905"},
                "createdAt": {"S": "2026-01-01T00:00:00.000Z"},
                "listedUntil": {"N": expired_at},
            },
        )


def test_a_run_of_expired_entries_does_not_make_an_empty_page_before_older_live_chats(
    api: Api, ddb: Any, calls: CallLog
) -> None:
    """TTL deletes lazily: expired list entries newer than a live chat must not produce an empty page + cursor."""
    live = api.initialize(330905).json["chatId"]
    _expired_entries(ddb, "alice", [live + offset * 4096 for offset in range(1, 8)])
    calls.clear()
    page = api.list(query="limit=2")
    assert page.json["chatIds"] == [live]
    assert page.json["nextCursor"] is None
    assert calls.calls == [
        "Query",
        "Query",
    ]  # limit + 1 expired entries, then one read without the small Limit
    calls.clear()
    api.list()  # a page with live chats on it is still one Query
    assert calls.calls == ["Query"]


def test_following_next_cursor_reaches_every_live_chat_past_long_expired_runs(
    api: Api, ddb: Any, calls: CallLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs of 40 expired entries between live chats, read 3 at a time after the first Query (moto has no 1 MB
    page, so a small follow-up Limit stands in for it): far deeper than any fixed number of reads, and still no
    page is empty while a cursor is given, and nextCursor leads to every live chat."""
    from aurora_chats.dal import chats as dal_chats

    monkeypatch.setattr(dal_chats, "FOLLOW_UP_QUERY_LIMIT", 3)
    live = [api.initialize(330905).json["chatId"] for _ in range(3)]  # ascending ids
    expired: list[int] = []
    for newer in range(3):  # 40 expired entries just above each live chat (ids keep the region bits apart)
        base = live[newer]
        expired += [base + step for step in range(1, 41) if base + step not in live]
    _expired_entries(ddb, "alice", expired)
    seen: list[int] = []
    cursor: str | None = None
    calls.clear()
    for _ in range(20):
        page = api.list(query="limit=1" + (f"&cursor={cursor}" if cursor else "")).json
        cursor = page["nextCursor"]
        assert page["chatIds"] or cursor is None, "an empty page with a cursor"
        seen += page["chatIds"]
        if cursor is None:
            break
    assert seen == sorted(live, reverse=True)
    assert calls.count("Query") > 4 * len(live)  # deeper than the old bound of 4 Queries per page
