"""chats-admin: import-characters (validated, idempotent, all-or-nothing); purge-orphans and purge-chat."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aurora_chats.dal import keys
from aurora_chats.dal.chats import DynamoDBChatRepository
from aurora_chats.dal.items import message_item
from aurora_chats.dal.keys import CHAT_META_SK, chat_pk, key, user_chat_sk, user_pk
from aurora_chats.ids import new_message_id
from aurora_chats.models import Message
from aurora_ops.admin import import_characters, main, purge_one_chat, purge_orphans, recount_chats

from tests.support.api import Api
from tests.support.aws import CallLog, chat_count, table_items, user_state
from tests.support.env import ROOT, TABLE


def characters_in(ddb: Any) -> list[dict[str, Any]]:
    return [i for i in table_items(ddb) if keys.is_character_pk(i["PK"]["S"])]


def test_demo_cards_import_and_include_the_sdk_example(ddb: Any) -> None:
    assert main(["import-characters", str(ROOT / "characters"), "--table-name", TABLE]) == 0
    ids = {i["characterId"]["N"] for i in characters_in(ddb)}
    assert "330905" in ids
    assert len(ids) >= 5


def test_import_is_an_idempotent_upsert(ddb: Any) -> None:
    for _ in range(2):
        assert import_characters([str(ROOT / "characters")], TABLE) == 0
    assert len(characters_in(ddb)) == len(list((ROOT / "characters").glob("*.json")))


def _card(tmp_path: Path, name: str, data: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"spec": "chara_card_v2", "spec_version": "2.0", "data": data}))
    return str(path)


def _good_card(tmp_path: Path, name: str) -> str:
    return _card(
        tmp_path, name, {"name": "Good", "first_mes": "hi", "extensions": {"aurora": {"characterId": 9}}}
    )


def assert_nothing_imported(
    ddb: Any, capsys: pytest.CaptureFixture[str], paths: list[str], rejected: str, reason: str
) -> None:
    """The import fails, names the rejected file and why, and writes no card at all (not even the good ones)."""
    assert import_characters(paths, TABLE) == 1
    err = capsys.readouterr().err
    assert rejected in err and reason in err
    assert "nothing was imported" in err
    assert characters_in(ddb) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "NoId", "first_mes": "hi"}, "characterId"),
        (
            {"name": "NoGreeting", "first_mes": "", "extensions": {"aurora": {"characterId": 5}}},
            "no greeting",
        ),
        ({"name": "BadId", "first_mes": "hi", "extensions": {"aurora": {"characterId": "5"}}}, "integer"),
        ({"name": "Zero", "first_mes": "hi", "extensions": {"aurora": {"characterId": 0}}}, "greater than"),
    ],
)
def test_bad_card_is_rejected_with_a_clear_message_and_nothing_is_written(
    ddb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict[str, Any], message: str
) -> None:
    good = _good_card(tmp_path, "good.json")
    bad = _card(tmp_path, "bad.json", data)
    assert_nothing_imported(ddb, capsys, [good, bad], "bad.json", message)


def test_not_json_is_rejected(ddb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    assert import_characters([str(path)], TABLE) == 1
    assert "broken.json" in capsys.readouterr().err


def test_card_too_large_for_one_item_is_rejected_before_anything_is_written(
    ddb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A real-world card with a big lorebook: valid JSON and greetings, but DynamoDB refuses items over 400 KB.
    # It must be rejected up front like any bad card, not crash halfway with earlier cards already written.
    good = _good_card(tmp_path, "a-good.json")
    lore = [{"keys": [f"k{i}"], "content": "x" * 1000} for i in range(450)]
    big = _card(
        tmp_path,
        "b-big.json",
        {
            "name": "Big",
            "first_mes": "hi",
            "character_book": {"entries": lore},
            "extensions": {"aurora": {"characterId": 10}},
        },
    )
    assert_nothing_imported(ddb, capsys, [good, big], "b-big.json", "400 KB")


def test_card_with_a_lone_surrogate_is_rejected_before_anything_is_written(
    ddb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Valid JSON ("\ud83d" escape, an emoji cut in half) that DynamoDB cannot store: UTF-8 has no encoding for it.
    good = _good_card(tmp_path, "a-good.json")
    broken = _card(
        tmp_path,
        "b-broken.json",
        {
            "name": "Broken",
            "first_mes": "hi",
            "description": "cut \ud83d",
            "extensions": {"aurora": {"characterId": 10}},
        },
    )
    assert_nothing_imported(ddb, capsys, [good, broken], "b-broken.json", "UTF-8")


def test_card_whose_greeting_cannot_be_stored_for_a_long_name_is_rejected(
    ddb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # {{user}} becomes the caller's display name (up to 100 characters of the caller's choosing): 2,000 of them
    # would make the first message ~800 KB for a name in 4-byte characters, which DynamoDB refuses - a 500 on
    # every initialize by such a user. Rejected at import instead.
    card = _card(
        tmp_path,
        "greedy.json",
        {"name": "Greedy", "first_mes": "{{user}}" * 2000, "extensions": {"aurora": {"characterId": 11}}},
    )
    assert import_characters([card], TABLE) == 1
    err = capsys.readouterr().err
    assert "greedy.json" in err and "display name" in err
    assert characters_in(ddb) == []


# ---------------------------------------------------------------- purge-orphans / purge-chat


def _start_chat(api: Api, user: str) -> int:
    response = api.initialize(330905, user=user)
    assert response.status == 201, response
    chat_id: int = response.json["chatId"]
    return chat_id


def _add_messages(ddb: Any, chat_id: int, count: int) -> None:
    chat = DynamoDBChatRepository(TABLE).get_chat(chat_id)
    assert chat is not None
    items = [
        message_item(
            chat,
            Message(message_id=new_message_id(), role="user", content=f"m{n}", created_at=chat.created_at),
        )
        for n in range(count)
    ]
    for start in range(0, len(items), 25):
        requests: Any = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        assert not ddb.batch_write_item(RequestItems={TABLE: requests}).get("UnprocessedItems")


def _orphan(ddb: Any, chat_id: int, user: str) -> None:
    """What a purge that exhausted the stream's retries leaves: the DELETE transaction removed the chat record
    and the list entry, the messages stayed."""
    for item_key in (key(chat_pk(chat_id), CHAT_META_SK), key(user_pk(user), user_chat_sk(chat_id))):
        ddb.delete_item(TableName=TABLE, Key=item_key)


def _keys(ddb: Any) -> set[tuple[str, str]]:
    return {(i["PK"]["S"], i["SK"]["S"]) for i in table_items(ddb)}


def _chat_keys(ddb: Any, chat_id: int) -> set[tuple[str, str]]:
    return {k for k in _keys(ddb) if k[0] == chat_pk(chat_id)}


@pytest.fixture
def orphan_and_live(ddb: Any, calls: CallLog, api: Api) -> tuple[int, int, int]:
    """Alice's orphaned chat (60 messages, no chat record), her live chat and Bob's live chat (with messages)."""
    orphan = _start_chat(api, "alice")
    live = _start_chat(api, "alice")
    bobs = _start_chat(api, "bob")
    _add_messages(ddb, orphan, 60)
    _add_messages(ddb, live, 30)
    _add_messages(ddb, bobs, 30)
    _orphan(ddb, orphan, "alice")
    assert len(_chat_keys(ddb, orphan)) >= 60
    calls.clear()
    return orphan, live, bobs


def test_purge_orphans_purges_every_item_of_an_orphaned_chat_and_nothing_else(
    ddb: Any, calls: CallLog, orphan_and_live: tuple[int, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    orphan, live, bobs = orphan_and_live
    others = _keys(ddb) - _chat_keys(ddb, orphan)
    assert purge_orphans(TABLE, client=ddb) == 0  # on the instrumented client: every BatchWriteItem <= 25
    assert _chat_keys(ddb, orphan) == set()
    assert _keys(ddb) == others  # both live chats, their messages and list entries, the characters
    assert calls.count("BatchWriteItem") >= 3  # 61+ items at 25 a batch
    out = capsys.readouterr().out
    assert f"chat {orphan}: purged" in out
    assert str(live) not in out and str(bobs) not in out
    assert "1 orphaned chat(s) found" in out and "1 purged" in out
    # Idempotent: a second run finds nothing and deletes nothing.
    calls.clear()
    assert purge_orphans(TABLE, client=ddb) == 0
    assert calls.count("BatchWriteItem") == 0
    assert "0 orphaned chat(s) found" in capsys.readouterr().out


def test_purge_orphans_dry_run_lists_and_writes_nothing(
    ddb: Any, calls: CallLog, orphan_and_live: tuple[int, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    orphan, _, _ = orphan_and_live
    before = _keys(ddb)
    assert purge_orphans(TABLE, client=ddb, dry_run=True) == 0
    assert _keys(ddb) == before
    assert not {"BatchWriteItem", "DeleteItem", "PutItem", "UpdateItem", "TransactWriteItems"} & set(
        calls.calls
    )
    out = capsys.readouterr().out
    assert f"chat {orphan}: orphaned" in out and "dry run" in out


def test_purge_orphans_command_line(
    ddb: Any, orphan_and_live: tuple[int, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    orphan, _, _ = orphan_and_live
    assert main(["purge-orphans", "--table-name", TABLE, "--region", "us-east-1", "--dry-run"]) == 0
    assert _chat_keys(ddb, orphan) != set()
    assert main(["purge-orphans", "--table-name", TABLE, "--region", "us-east-1"]) == 0
    assert _chat_keys(ddb, orphan) == set()
    assert f"chat {orphan}: purged" in capsys.readouterr().out


def test_purge_chat_refuses_a_live_chat_and_writes_nothing(
    ddb: Any, orphan_and_live: tuple[int, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    _, live, _ = orphan_and_live
    before = _keys(ddb)
    assert main(["purge-chat", str(live), "--table-name", TABLE, "--region", "us-east-1"]) == 1
    assert _keys(ddb) == before
    assert "still exists" in capsys.readouterr().err


def test_purge_chat_purges_one_orphaned_chat(
    ddb: Any, calls: CallLog, orphan_and_live: tuple[int, int, int]
) -> None:
    orphan, _, _ = orphan_and_live
    others = _keys(ddb) - _chat_keys(ddb, orphan)
    assert purge_one_chat(orphan, TABLE, client=ddb) == 0
    assert _keys(ddb) == others


# ---------------------------------------------------------------- recount-chats


def _set_count(ddb: Any, user: str, count: int) -> None:
    ddb.update_item(
        TableName=TABLE,
        Key=keys.user_state_key(user),
        UpdateExpression="SET chatCount = :c",
        ExpressionAttributeValues={":c": {"N": str(count)}},
    )


def test_recount_corrects_a_drifted_count_and_then_writes_nothing(
    ddb: Any, api: Api, calls: CallLog, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        _start_chat(api, "alice")
    _start_chat(api, "bob")
    _set_count(ddb, "alice", 7)  # four increments lost... or decrements: last-writer-wins between regions
    assert main(["recount-chats", "alice", "bob", "--table-name", TABLE, "--region", "us-east-1"]) == 0
    assert (chat_count(ddb, "alice"), chat_count(ddb, "bob")) == (3, 1)
    out = capsys.readouterr().out
    assert "user 'alice': chat count 7 -> 3 (corrected)" in out and "user 'bob': chat count 1, matches" in out
    calls.clear()
    assert recount_chats(["alice"], TABLE, client=ddb) == 0
    assert "UpdateItem" not in calls.calls  # already right: read-only
    # The corrected count is the one initialize enforces: a slot freed by the correction can be used.
    assert api.initialize(330905, user="alice").status == 201 and chat_count(ddb, "alice") == 4


def test_recount_writes_a_count_that_was_lost_whole(ddb: Any, api: Api) -> None:
    _start_chat(api, "alice")
    _start_chat(api, "alice")
    ddb.delete_item(TableName=TABLE, Key=keys.user_state_key("alice"))
    assert recount_chats(["alice"], TABLE, client=ddb) == 0
    assert chat_count(ddb, "alice") == 2
    assert recount_chats(["nobody"], TABLE, client=ddb) == 0  # no chats, no item: nothing to write
    assert user_state(ddb, "nobody") is None


def test_recount_never_writes_to_a_deleted_account(
    ddb: Any, api: Api, calls: CallLog, capsys: pytest.CaptureFixture[str]
) -> None:
    _start_chat(api, "alice")
    ddb.update_item(
        TableName=TABLE,
        Key=keys.user_state_key("alice"),
        UpdateExpression="SET deletedAt = :t, expiresAt = :t, chatCount = :c",
        ExpressionAttributeValues={":t": {"N": "1796100000"}, ":c": {"N": "9"}},
    )
    calls.clear()
    assert recount_chats(["alice"], TABLE, client=ddb) == 0
    assert "UpdateItem" not in calls.calls and chat_count(ddb, "alice") == 9
    assert "account deleted" in capsys.readouterr().out


def test_recount_counts_again_when_an_initialize_lands_between_its_count_and_its_write(
    ddb: Any, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aurora_ops.store import OperatorStore

    _start_chat(api, "alice")
    _set_count(ddb, "alice", 5)
    real = OperatorStore._count_list_entries
    raced: list[int] = []

    def count_then_race(self: OperatorStore, user_id: str) -> int:
        listed = real(self, user_id)
        if not raced:
            raced.append(_start_chat(api, "alice"))  # counted 1; the initialize makes it 2 entries, count 6
        return listed

    monkeypatch.setattr(OperatorStore, "_count_list_entries", count_then_race)
    store = OperatorStore(TABLE, client=ddb)
    result = store.recount_chats("alice")
    assert raced and result.written and (result.counted, result.listed) == (6, 2)  # the second attempt's view
    assert chat_count(ddb, "alice") == 2
