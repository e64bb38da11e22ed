"""moto for the whole run, and the chats the sections seed through the service's own data layer."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from bench.common import CHARACTER_ID, REGION, ROOT, USER


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def side_client(endpoint: str) -> Any:
    """A client of the bench's own (never counted) for setup and for sizing items."""
    import boto3

    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)


def create_table(endpoint: str, table: str) -> None:
    from aurora_local.template import create_table as create_from_template
    from aurora_ops.admin import import_characters

    create_from_template(side_client(endpoint), table)
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        if import_characters([str(ROOT / "characters")], table, endpoint_url=endpoint, region=REGION) != 0:
            raise SystemExit("import-characters failed")


def restore_chat_record(side: Any, table: str, chat_record: dict[str, Any]) -> None:
    """Put back a deleted chat's record and list entry (its messages are still there: no purge ran yet)."""
    from aurora_chats.dal.keys import user_entry_key

    chat_id = int(chat_record["chatId"]["N"])
    entry = {
        **user_entry_key(chat_record["userId"]["S"], chat_id),
        "type": {"S": "userChat"},
        "chatId": chat_record["chatId"],
        "characterId": chat_record["characterId"],
        "createdAt": chat_record["createdAt"],
    }
    side.put_item(TableName=table, Item=chat_record)
    side.put_item(TableName=table, Item=entry)


def seed_chat(endpoint: str, table: str, chat_id: int, user_id: str = USER, messages: int = 0) -> None:
    """A chat (record, user entry, ``messages`` messages) written through the service's own data layer."""
    from aurora_chats.dal.chats import DynamoDBChatRepository
    from aurora_chats.dal.items import message_item
    from aurora_chats.dal.keys import chat_record_key
    from aurora_chats.ids import new_message_id
    from aurora_chats.models import Chat, Message

    client = side_client(endpoint)
    created = "2026-11-27T09:00:00.000Z"
    chat = Chat(chat_id=chat_id, user_id=user_id, character_id=CHARACTER_ID, created_at=created)
    first = Message(message_id=new_message_id(), role="character", content="Hello!", created_at=created)
    client.delete_item(TableName=table, Key=chat_record_key(chat_id))
    DynamoDBChatRepository(table, client=client).create_chat(chat, first, None)
    batch: list[dict[str, Any]] = []
    for index in range(max(messages - 1, 0)):
        message = Message(
            message_id=new_message_id(),
            role="user" if index % 2 else "character",
            content=f"message {index} " + "lorem ipsum dolor sit amet " * 4,
            created_at=created,
        )
        batch.append({"PutRequest": {"Item": message_item(chat, message)}})
        if len(batch) == 25:
            client.batch_write_item(RequestItems={table: batch})
            batch = []
    if batch:
        client.batch_write_item(RequestItems={table: batch})
