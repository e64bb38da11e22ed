"""chats-admin import-characters: validated, idempotent, all-or-nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aurora_chats.admin import import_characters, main

from tests.conftest import ROOT, TABLE, table_items


def characters_in(ddb: Any) -> list[dict[str, Any]]:
    return [i for i in table_items(ddb) if i["PK"]["S"].startswith("CHARACTER#")]


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
    good = _card(
        tmp_path,
        "good.json",
        {"name": "Good", "first_mes": "hi", "extensions": {"aurora": {"characterId": 9}}},
    )
    bad = _card(tmp_path, "bad.json", data)
    assert import_characters([good, bad], TABLE) == 1
    err = capsys.readouterr().err
    assert "bad.json" in err and message in err
    assert "nothing was imported" in err
    assert characters_in(ddb) == []


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
    good = _card(
        tmp_path,
        "a-good.json",
        {"name": "Good", "first_mes": "hi", "extensions": {"aurora": {"characterId": 9}}},
    )
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
    assert import_characters([good, big], TABLE) == 1
    err = capsys.readouterr().err
    assert "b-big.json" in err and "400 KB" in err
    assert "nothing was imported" in err
    assert characters_in(ddb) == []


def test_card_with_a_lone_surrogate_is_rejected_before_anything_is_written(
    ddb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Valid JSON ("\ud83d" escape, an emoji cut in half) that DynamoDB cannot store: UTF-8 has no encoding for it.
    good = _card(
        tmp_path,
        "a-good.json",
        {"name": "Good", "first_mes": "hi", "extensions": {"aurora": {"characterId": 9}}},
    )
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
    assert import_characters([good, broken], TABLE) == 1
    err = capsys.readouterr().err
    assert "b-broken.json" in err and "UTF-8" in err
    assert "nothing was imported" in err
    assert characters_in(ddb) == []


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
