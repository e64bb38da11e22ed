"""``chats-admin``: operator commands. ``import-characters`` upserts Character Card V2/V3 files into the table.

``purge-orphans`` finds chat partitions that still hold items but no chat record — a
purge that failed past the stream mapping's retries; ``ChatCleanupStreamDLQ`` then holds only shard and sequence
numbers — and purges each with the cleanup function's own use case (``--dry-run`` only lists them). ``purge-chat``
does the same for one chat id and refuses while the chat still exists. Both use a keys-only Scan with the
operator's credentials; the Lambda functions never Scan.

Every file is validated before anything is written: one bad card means nothing at all is imported, with a clear
message per rejected file, so a run never leaves the table half-updated.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aurora_chats.dal.keys import CHAT_META_SK
from aurora_chats.models import CharacterCard
from pydantic import ValidationError

if TYPE_CHECKING:
    from aurora_chats.cleanup import PurgeResult
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from aurora_ops.store import OperatorStore


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
    from aurora_chats.dal.items import MAX_ITEM_BYTES, MAX_MESSAGE_CONTENT_BYTES, character_item, item_bytes
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

    client = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=region)
    for card, raw in cards:
        client.put_item(TableName=table_name, Item=character_item(card.to_character(), raw))
        print(f"imported {card.character_id} {card.name}")
    print(f"import-characters: {len(cards)} card(s) imported into {table_name}")
    return 0


PURGE_BUDGET_SECONDS = 3600  # per chat: generous; an operator run has no Lambda timeout


def _cleanup_store(
    table_name: str, endpoint_url: str | None, region: str | None, client: DynamoDBClient | None
) -> OperatorStore:
    from aurora_ops.store import OperatorStore

    if client is None:
        import boto3

        client = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=region)
    return OperatorStore(table_name, client=client)


def _purge_orphan(store: OperatorStore, chat_id: int) -> PurgeResult:
    """Purge an orphaned chat partition with the cleanup function's own use case.

    The user id and idempotency key came from the stream's old image, which is gone: the purge runs with
    ``user_id=None``, so it skips the list entry and the idempotency record and deletes every item of the
    chat's partition (the store's ``remove_list_entry`` logs that it left the list entry). That entry is already
    gone when the API deleted the chat (the DELETE transaction removes both) or when a user deletion did. When TTL
    removed the chat record, the entry may still exist (and keep its slot in the user's chat count), but its
    ``listedUntil`` is past: it is hidden from every list. A leftover idempotency record is harmless (it ages out and names a chat that is gone).
    """
    from aurora_chats.cleanup import TimeBudget, purge_chat
    from aurora_chats.observability import metrics
    from aurora_chats.ports import RemovedChat

    deadline = time.monotonic() + PURGE_BUDGET_SECONDS
    budget = TimeBudget(lambda: int((deadline - time.monotonic()) * 1000), reserve_ms=0)
    chat = RemovedChat(chat_id=chat_id, user_id=None, idempotency_key=None, expired=False)
    try:
        return purge_chat(store, chat, budget)
    finally:
        # No Lambda flushes these here: drop them, or Powertools would print EMF blobs every 100 metrics.
        metrics.clear_metrics()


def _report(result: PurgeResult) -> bool:
    state = "purged" if result.complete else "INCOMPLETE (run again)"
    print(f"chat {result.chat_id}: {state}, {result.items_deleted} item(s) deleted")
    return result.complete


def purge_orphans(
    table_name: str,
    endpoint_url: str | None = None,
    region: str | None = None,
    *,
    dry_run: bool = False,
    client: DynamoDBClient | None = None,
) -> int:
    """Find chat partitions with items but no chat record (a purge that exhausted the stream's retries: the DLQ
    holds only shard/sequence numbers) and purge each. Every candidate is re-checked with a consistent read just
    before its purge, so a chat that exists is never touched; safe to re-run and to run while the service runs."""
    store = _cleanup_store(table_name, endpoint_url, region, client)
    found = purged = items = 0
    incomplete = 0
    for chat_id in store.orphaned_chat_candidates():
        if store.chat_record_exists(chat_id):
            continue  # created, or still being written, since the scan saw it
        found += 1
        if dry_run:
            print(f"chat {chat_id}: orphaned (dry run, nothing deleted)")
            continue
        result = _purge_orphan(store, chat_id)
        items += result.items_deleted
        if _report(result):
            purged += 1
        else:
            incomplete += 1
    if dry_run:
        print(f"purge-orphans: {found} orphaned chat(s) found in {table_name}; dry run, nothing deleted")
        return 0
    print(
        f"purge-orphans: {found} orphaned chat(s) found in {table_name}, {purged} purged, "
        f"{incomplete} incomplete, {items} item(s) deleted"
    )
    return 1 if incomplete else 0


def purge_one_chat(
    chat_id: int,
    table_name: str,
    endpoint_url: str | None = None,
    region: str | None = None,
    *,
    client: DynamoDBClient | None = None,
) -> int:
    """Purge one chat's partition, only if its chat record is gone (deleting live chats is the API's job)."""
    store = _cleanup_store(table_name, endpoint_url, region, client)
    if store.chat_record_exists(chat_id):
        print(
            f"purge-chat: chat {chat_id} still exists (its {CHAT_META_SK} record is present); refusing to purge it. "
            "Delete it through the API (DELETE /chats/{id}); its purge then follows automatically.",
            file=sys.stderr,
        )
        return 1
    ok = _report(_purge_orphan(store, chat_id))
    return 0 if ok else 1


def recount_chats(
    user_ids: Sequence[str],
    table_name: str,
    endpoint_url: str | None = None,
    region: str | None = None,
    *,
    client: DynamoDBClient | None = None,
) -> int:
    """Correct each user's chat count (``MaxChatsPerUser``) to the number of chats they have listed."""
    store = _cleanup_store(table_name, endpoint_url, region, client)
    for user_id in user_ids:
        result = store.recount_chats(user_id)
        if result.deleted:
            print(f"user {user_id!r}: account deleted, its count is frozen with the marker; nothing written")
        elif result.written:
            print(f"user {user_id!r}: chat count {result.counted} -> {result.listed} (corrected)")
        else:
            print(f"user {user_id!r}: chat count {result.listed}, matches the listed chats")
    return 0


def _add_table_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table-name", required=True)
    parser.add_argument(
        "--endpoint-url", default=None, help="e.g. http://127.0.0.1:8000 for the local runtime"
    )
    parser.add_argument("--region", default=None)


def _chat_id_arg(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"not a chat id: {value!r}")
    return int(value)


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
    orphans = commands.add_parser(
        "purge-orphans",
        help="Purge chat partitions whose chat record is gone (run on a ChatCleanupStreamDLQ alarm).",
    )
    _add_table_options(orphans)
    orphans.add_argument("--dry-run", action="store_true", help="Only list the orphaned chats.")
    one = commands.add_parser(
        "purge-chat", help="Purge one chat whose chat record is gone; refuses a live chat."
    )
    one.add_argument("chat_id", type=_chat_id_arg, metavar="CHAT_ID")
    _add_table_options(one)
    recount = commands.add_parser(
        "recount-chats",
        help="Set users' chat counts (MaxChatsPerUser) to their listed chats (after a global table's drift).",
    )
    recount.add_argument("user_ids", nargs="+", metavar="USER_ID", help="The token's sub of each user.")
    _add_table_options(recount)
    args = parser.parse_args(argv)
    if args.command == "recount-chats":
        return recount_chats(args.user_ids, args.table_name, args.endpoint_url, args.region)
    if args.command == "purge-orphans":
        return purge_orphans(args.table_name, args.endpoint_url, args.region, dry_run=args.dry_run)
    if args.command == "purge-chat":
        return purge_one_chat(args.chat_id, args.table_name, args.endpoint_url, args.region)
    return import_characters(args.paths, args.table_name, args.endpoint_url, args.region)


if __name__ == "__main__":
    raise SystemExit(main())
