"""The data layer's pure parts, without DynamoDB: keys, item shapes and sizes, and the translation of failures."""

from __future__ import annotations

from typing import Any

import pytest
from aurora_chats.dal import errors, keys
from aurora_chats.dal.items import (
    MAX_ITEM_BYTES,
    MAX_MESSAGE_CONTENT_BYTES,
    character_from,
    character_item,
    chat_from,
    chat_item,
    idempotency_from,
    idempotency_item,
    item_bytes,
    message_item,
    user_entry_item,
)
from aurora_chats.errors import OutcomeUnknown, ServiceUnavailable, WriteConflict
from aurora_chats.models import Character, Chat, IdempotencyRecord, Message
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as EndpointUnreachable

CREATED = "2026-11-26T10:00:00.000Z"
CHAT = Chat(
    chat_id=8, user_id="alice", character_id=330905, created_at=CREATED, expires_at=99, idempotency_key="k"
)
MESSAGE = Message(
    message_id="01JDQ8Z6R8W4X2V1T0S9R8Q7P6", role="character", content="Hi!", created_at=CREATED
)


def client_error(code: str, **response: Any) -> ClientError:
    parsed: Any = {"Error": {"Code": code, "Message": code}, **response}
    return ClientError(parsed, "TransactWriteItems")


# ---------------------------------------------------------------- keys


def test_a_users_list_entries_sort_like_their_chat_ids() -> None:
    ids = [9, 10, 375619772979436, 1]
    assert sorted(ids) == [keys.chat_id_from_entry_sk(sk) for sk in sorted(keys.user_chat_sk(i) for i in ids)]
    assert len(keys.user_chat_sk(1).removeprefix(keys.CHAT_ENTRY_PREFIX)) == keys.CHAT_ID_DIGITS


def test_keys_round_trip_through_their_parsers() -> None:
    assert keys.chat_id_from_pk(keys.chat_pk(42)) == 42
    assert keys.user_id_from_pk(keys.user_pk("alice#1")) == "alice#1"
    assert keys.idempotency_key_from_sk(keys.idempotency_sk("k-1")) == "k-1"
    assert keys.chat_record_key(42) == keys.key(keys.chat_pk(42), keys.CHAT_META_SK)


def test_only_numeric_chat_partitions_name_a_chat() -> None:
    assert keys.chat_id_from_pk(keys.chat_pk(7)) == 7
    assert keys.chat_id_from_pk(keys.CHAT_PREFIX + "x1") is None
    assert keys.chat_id_from_pk(keys.user_pk("7")) is None


def test_each_item_kind_is_told_apart_by_its_keys() -> None:
    record, entry = chat_item(CHAT), user_entry_item(CHAT)
    message = message_item(CHAT, MESSAGE)
    assert keys.is_chat_record(record["PK"]["S"], record["SK"]["S"])
    assert not keys.is_chat_record(message["PK"]["S"], message["SK"]["S"])
    assert keys.is_message_sk(message["SK"]["S"]) and keys.is_chat_pk(message["PK"]["S"])
    assert keys.is_user_pk(entry["PK"]["S"]) and keys.is_user_chat_entry_sk(entry["SK"]["S"])
    assert keys.is_character_pk(
        character_item(Character(character_id=1, name="A", first_mes="hi"))["PK"]["S"]
    )


# ---------------------------------------------------------------- items


def test_items_read_back_as_what_was_written() -> None:
    assert chat_from(chat_item(CHAT)) == CHAT
    character = Character(character_id=1, name="A", first_mes="", alternate_greetings=("hello",))
    assert character_from(character_item(character)) == character
    record = IdempotencyRecord(
        user_id="alice",
        key="k",
        chat_id=8,
        character_id=330905,
        created_at=CREATED,
        message=MESSAGE,
        expires_at=9,
    )
    assert idempotency_from(idempotency_item(record)) == record


def test_retention_reaches_every_item_of_a_chat() -> None:
    for item in (chat_item(CHAT), message_item(CHAT, MESSAGE)):
        assert item["expiresAt"] == {"N": "99"}
    # The list entry ends with the chat too, but not by TTL: only the purge removes it, counting the chat down.
    entry = user_entry_item(CHAT)
    assert entry["listedUntil"] == {"N": "99"} and "expiresAt" not in entry
    forever = Chat(chat_id=8, user_id="alice", character_id=1, created_at=CREATED)
    assert "expiresAt" not in chat_item(forever) and "idempotencyKey" not in chat_item(forever)


def test_item_sizes_count_utf8_and_refuse_a_lone_surrogate() -> None:
    assert item_bytes({"a": {"S": "é"}}) == 1 + 2
    assert MAX_MESSAGE_CONTENT_BYTES < MAX_ITEM_BYTES
    with pytest.raises(UnicodeEncodeError):
        item_bytes({"a": {"S": "\ud800"}})


# ---------------------------------------------------------------- failures


def test_throttling_and_unreachable_endpoints_are_unavailable_for_reads() -> None:
    assert isinstance(errors.unavailable(client_error("ThrottlingException")), ServiceUnavailable)
    assert isinstance(errors.unavailable(EndpointUnreachable(error=OSError("refused"))), ServiceUnavailable)
    assert errors.unavailable(client_error("ValidationException")) is None


def test_a_write_whose_answer_was_lost_has_an_unknown_outcome() -> None:
    assert isinstance(errors.write_failed(ReadTimeoutError(endpoint_url="http://x")), OutcomeUnknown)
    assert isinstance(errors.write_failed(client_error("TransactionInProgressException")), OutcomeUnknown)
    assert isinstance(errors.write_failed(client_error("ThrottlingException")), ServiceUnavailable)


def test_cancellations_are_read_per_item() -> None:
    cancelled = client_error(
        "TransactionCanceledException",
        CancellationReasons=[{"Code": "None"}, {"Code": "TransactionConflict"}],
    )
    reasons = errors.cancellation_reasons(cancelled)
    assert reasons is not None and errors.reason_codes(reasons) == ["None", "TransactionConflict"]
    assert isinstance(errors.cancelled(errors.reason_codes(reasons)), WriteConflict)
    assert isinstance(errors.cancelled(["None", "ThrottlingError"]), ServiceUnavailable)
    assert errors.cancellation_reasons(client_error("ThrottlingException")) is None
    assert errors.code(ValueError("not a ClientError")) == ""


def test_user_state_change_reads_the_marker_side_of_a_user_state_write() -> None:
    from aurora_chats.dal.cleanup import user_state_change
    from aurora_chats.ports import UserStateChange

    def record(event: str, old: dict[str, Any] | None, new: dict[str, Any] | None, sk: str = "STATE") -> Any:
        body: dict[str, Any] = {"Keys": {"PK": {"S": "USER#a#b"}, "SK": {"S": sk}}}
        if old is not None:
            body["OldImage"] = old
        if new is not None:
            body["NewImage"] = new
        return {"eventName": event, "dynamodb": body}

    marked = {"deletedAt": {"N": "5"}, "deletedInRegion": {"N": "3"}}
    assert user_state_change(record("MODIFY", {}, marked)) == UserStateChange("a#b", False, True, 3)
    assert user_state_change(record("INSERT", None, {"deletedAt": {"N": "5"}})) == UserStateChange(
        "a#b", False, True, None
    )
    assert user_state_change(record("MODIFY", marked, {"chatCount": {"N": "1"}})) == UserStateChange(
        "a#b", True, False, None
    )
    assert user_state_change(record("MODIFY", {}, {"chatCount": {"N": "1"}})) is None  # no marker either side
    assert user_state_change(record("REMOVE", marked, None)) is None  # expiry
    assert user_state_change(record("MODIFY", {}, marked, sk="CHAT#0000000000000042")) is None
