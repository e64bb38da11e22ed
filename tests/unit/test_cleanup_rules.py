"""The cleanup's rules without DynamoDB: the template's stream filter, and the use cases on the in-memory store."""

from __future__ import annotations

import pytest
from aurora_chats.cleanup import MAX_USER_DELETION_ROUNDS
from aurora_chats.dal.keys import (
    CHAT_META_SK,
    CHAT_PREFIX,
    chat_id_from_entry_sk,
    chat_id_from_pk,
    chat_pk,
    deleted_chat_sk,
    idempotency_sk,
    is_user_chat_entry_sk,
    message_sk,
    user_chat_sk,
    user_pk,
)
from aurora_local.filters import matches, matches_criteria

from tests.support.events import Item, stream_filter, user_deleted
from tests.support.fakes import InMemoryCleanupStore

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
ALICE = user_pk("alice")

# ---------------------------------------------------------------- the filter helper


def test_filter_pattern_supports_exact_prefix_exists_and_alternatives() -> None:
    pattern = {
        "eventName": ["REMOVE", "MODIFY"],
        "dynamodb": {"Keys": {"PK": {"S": [{"prefix": CHAT_PREFIX}]}}},
    }
    remove = {"eventName": "REMOVE", "dynamodb": {"Keys": {"PK": {"S": chat_pk(1)}}}}
    assert matches(pattern, remove)
    assert matches(pattern, {**remove, "eventName": "MODIFY"})
    assert not matches(pattern, {**remove, "eventName": "INSERT"})
    assert not matches(pattern, {"eventName": "REMOVE", "dynamodb": {"Keys": {"PK": {"S": user_pk("a")}}}})
    assert not matches(pattern, {"eventName": "REMOVE"})
    assert matches({"userIdentity": [{"exists": False}]}, remove)
    assert not matches({"userIdentity": [{"exists": True}]}, remove)
    assert matches({"userIdentity": {"type": [{"exists": True}]}}, {"userIdentity": TTL_IDENTITY})
    assert matches({"n": [3]}, {"n": 3}) and not matches({"n": [3]}, {"n": "3"})
    assert matches({"tags": ["b"]}, {"tags": ["a", "b"]})
    with pytest.raises(ValueError, match="unsupported"):
        matches({"n": [{"numeric": [">", 1]}]}, {"n": 3})


def test_template_filter_passes_only_removals_of_chat_records() -> None:
    def record(event: str, pk: str, sk: str) -> Item:
        return {"eventName": event, "dynamodb": {"Keys": {"PK": {"S": pk}, "SK": {"S": sk}}}}

    message = message_sk("01JDQ8Z6R8W4X2V1T0S9R8Q7P6")
    assert matches_criteria(stream_filter(), record("REMOVE", chat_pk(42), CHAT_META_SK))
    assert not matches_criteria(stream_filter(), record("INSERT", chat_pk(42), CHAT_META_SK))
    assert not matches_criteria(stream_filter(), record("MODIFY", chat_pk(42), CHAT_META_SK))
    assert not matches_criteria(stream_filter(), record("REMOVE", chat_pk(42), message))
    assert not matches_criteria(stream_filter(), record("REMOVE", ALICE, user_chat_sk(42)))
    # A delete's tombstone: written with the delete, later removed by TTL; neither is a chat removal.
    assert not matches_criteria(stream_filter(), record("INSERT", ALICE, deleted_chat_sk(42)))
    assert not matches_criteria(stream_filter(), record("REMOVE", ALICE, deleted_chat_sk(42)))
    assert not matches_criteria(stream_filter(), record("INSERT", chat_pk(42), message))


# ---------------------------------------------------------------- use cases on an in-memory store


def test_an_interrupted_user_deletion_never_leaves_a_chat_record_that_nothing_lists() -> None:
    from aurora_chats.cleanup import TimeBudget, delete_user_data

    chats = range(1, 41)
    item_keys = {(chat_pk(c), CHAT_META_SK) for c in chats} | {(ALICE, user_chat_sk(c)) for c in chats}
    store = InMemoryCleanupStore(item_keys | {(ALICE, idempotency_sk("k"))})
    store.fail_on = lambda batch: batch[0][0] == ALICE  # chat records go, the list entries fail

    with pytest.raises(RuntimeError):
        delete_user_data(store, "alice", TimeBudget(lambda: 10**9))
    listed = {chat_id_from_entry_sk(sk) for pk, sk in store.keys if pk == ALICE and is_user_chat_entry_sk(sk)}
    records = {chat_id_from_pk(pk) for pk, sk in store.keys if sk == CHAT_META_SK}
    assert records <= listed and len(records) < len(chats)

    store.fail_on = lambda batch: False
    assert delete_user_data(store, "alice", TimeBudget(lambda: 10**9)).complete
    assert store.keys == set()


def test_a_user_deletion_that_never_finishes_ends_in_the_dlq_instead_of_looping() -> None:
    from aurora_chats.cleanup import TimeBudget, UserDeletedEvent, UserDeletionStalled, delete_user_account

    class Queue:
        def __init__(self) -> None:
            self.rounds: list[int] = []

        def continue_user_deletion(self, user_id: str, round_: int) -> None:
            self.rounds.append(round_)

    event = user_deleted("alice")
    store = InMemoryCleanupStore({(ALICE, idempotency_sk("k"))})
    out_of_time = TimeBudget(lambda: 0)
    queue = Queue()
    event["detail"]["continuation"] = MAX_USER_DELETION_ROUNDS - 1
    result = delete_user_account(store, queue, UserDeletedEvent.model_validate(event), out_of_time)
    assert not result.complete and queue.rounds == [MAX_USER_DELETION_ROUNDS]
    event["detail"]["continuation"] = MAX_USER_DELETION_ROUNDS
    with pytest.raises(UserDeletionStalled):
        delete_user_account(store, queue, UserDeletedEvent.model_validate(event), out_of_time)
    assert queue.rounds == [MAX_USER_DELETION_ROUNDS]
