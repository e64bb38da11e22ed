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
