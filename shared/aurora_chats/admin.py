"""``chats-admin``: operator commands. ``import-characters`` upserts Character Card V2/V3 files into the table.

Every file is validated before anything is written: one bad card means nothing at all is imported, with a clear
message per rejected file, so a run never leaves the table half-updated.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aurora_chats.models import CharacterCard


def load_card(path: Path) -> tuple[CharacterCard, dict[str, Any]]:
    """The validated card and its raw JSON, or ``ValueError`` with a message naming the file and the problem."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read card: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a character card must be a JSON object")
    try:
        card = CharacterCard.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'card'}: {err['msg']}" for err in exc.errors()
        )
        if any(tuple(err["loc"])[:1] == ("data",) and "extensions" in err["loc"] for err in exc.errors()):
            problems += " (the numeric id belongs in data.extensions.aurora.characterId)"
        raise ValueError(f"{path}: rejected: {problems}") from exc
    return card, raw


def _expand(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    return files


def import_characters(
    paths: Sequence[str], table_name: str, endpoint_url: str | None = None, region: str | None = None
) -> int:
    files = _expand(paths)
    if not files:
        print("import-characters: no card files found", file=sys.stderr)
        return 2
    from aurora_chats.dynamodb import MAX_ITEM_BYTES, MAX_MESSAGE_CONTENT_BYTES, character_item, item_bytes
    from aurora_chats.greeting import MAX_DISPLAY_NAME, render_greeting

    cards: list[tuple[CharacterCard, dict[str, Any]]] = []
    errors: list[str] = []
    seen: dict[int, Path] = {}
    for path in files:
        try:
            card, raw = load_card(path)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        try:
            size = item_bytes(character_item(card.to_character(), raw))
        except UnicodeEncodeError as exc:
            errors.append(
                f"{path}: rejected: text that has no UTF-8 encoding (a lone surrogate): {exc.reason}"
            )
            continue
        if size > MAX_ITEM_BYTES:
            errors.append(
                f"{path}: rejected: the card takes {size:,} bytes as a table item; DynamoDB stores at most "
                f"{MAX_ITEM_BYTES // 1024} KB per item (shrink its lorebook, greetings or embedded assets)"
            )
            continue
        # The first message is the greeting with {{user}} replaced by the caller's name: it must fit for any name.
        greeting_bytes = len(render_greeting(card.to_character(), "\U0010ffff" * MAX_DISPLAY_NAME).encode())
        if greeting_bytes > MAX_MESSAGE_CONTENT_BYTES:
            errors.append(
                f"{path}: rejected: with a {MAX_DISPLAY_NAME}-character display name for {{{{user}}}} its greeting "
                f"takes {greeting_bytes:,} bytes, more than a stored message holds ({MAX_MESSAGE_CONTENT_BYTES:,})"
            )
            continue
        if card.character_id in seen:
            errors.append(
                f"{path}: rejected: characterId {card.character_id} is also used by {seen[card.character_id]}"
            )
            continue
        seen[card.character_id] = path
        cards.append((card, raw))
    if errors:
        for message in errors:
            print(message, file=sys.stderr)
        print(f"import-characters: {len(errors)} card(s) rejected; nothing was imported", file=sys.stderr)
        return 1

    import boto3

    from aurora_chats.dynamodb import DynamoDBChatRepository

    client = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=region)
    repository = DynamoDBChatRepository(table_name, client=client)
    for card, raw in cards:
        repository.put_character(card.to_character(), raw)
        print(f"imported {card.character_id} {card.name}")
    print(f"import-characters: {len(cards)} card(s) imported into {table_name}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chats-admin", description="Aurora Chats operator commands.")
    commands = parser.add_subparsers(dest="command", required=True)
    importer = commands.add_parser("import-characters", help="Upsert Character Card V2/V3 JSON files.")
    importer.add_argument("paths", nargs="+", metavar="PATH", help="Card files or folders of *.json cards.")
    importer.add_argument("--table-name", required=True)
    importer.add_argument(
        "--endpoint-url", default=None, help="e.g. http://127.0.0.1:8000 for the local runtime"
    )
    importer.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    return import_characters(args.paths, args.table_name, args.endpoint_url, args.region)


if __name__ == "__main__":
    raise SystemExit(main())
