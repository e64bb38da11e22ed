"""The cleanup's rules without DynamoDB: the template's stream filter, and the use cases on the in-memory store."""

from __future__ import annotations

import pytest
from aurora_chats.cleanup import MAX_USER_DELETION_ROUNDS, deletion_round_needed, follow_user_state_change
from aurora_chats.dal.keys import (
    CHAT_META_SK,
    CHAT_PREFIX,
    USER_STATE_SK,
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
from aurora_chats.ports import UserStateChange
from aurora_local.filters import matches, matches_criteria

from tests.support.events import Item, stream_filter, user_deleted
from tests.support.fakes import InMemoryCleanupStore, RecordingContinuation

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


def test_template_filter_passes_only_removals_of_chat_records_and_deletion_marker_writes() -> None:
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

    def state(event: str, old: Item | None, new: Item | None) -> Item:
        body = record(event, ALICE, USER_STATE_SK)
        body["dynamodb"] |= {k: v for k, v in (("OldImage", old), ("NewImage", new)) if v is not None}
        return body

    counted = {"chatCount": {"N": "2"}}
    marked = {"chatCount": {"N": "2"}, "deletedAt": {"N": "1"}, "deletedInRegion": {"N": "1"}}
    # The chat count moving (every initialize and delete) never invokes the cleanup.
    assert not matches_criteria(stream_filter(), state("INSERT", None, counted))
    assert not matches_criteria(stream_filter(), state("MODIFY", counted, counted))
    # A marker written, refreshed, replicated in, or lost to another region's write does.
    assert matches_criteria(stream_filter(), state("INSERT", None, marked))
    assert matches_criteria(stream_filter(), state("MODIFY", counted, marked))
    assert matches_criteria(stream_filter(), state("MODIFY", marked, marked))
    assert matches_criteria(stream_filter(), state("MODIFY", marked, counted))
    # Its expiry (TTL) does not: nothing to do.
    assert not matches_criteria(stream_filter(), state("REMOVE", marked, None))


@pytest.mark.parametrize(
    ("before", "after", "region", "needed"),
    [
        (False, True, 1, "marker-replicated"),  # another region's marker arrived
        (False, True, None, "marker-replicated"),  # a marker that names no region: one more round, harmless
        (False, True, 0, None),  # this region's own first round
        (True, True, 0, None),  # a refresh, here
        (True, True, 1, None),  # a refresh, replicated: its first arrival already started a round
        (True, False, None, "marker-lost"),  # last-writer-wins replaced the marked item
        (False, False, None, None),
    ],
)
def test_a_region_runs_a_deletion_round_when_a_marker_arrives_from_elsewhere_or_is_lost(
    before: bool, after: bool, region: int | None, needed: str | None
) -> None:
    change = UserStateChange("alice", marked_before=before, marked_after=after, marked_in_region=region)
    assert deletion_round_needed(change, id_region=0) == needed
    continuation = RecordingContinuation()
    assert follow_user_state_change(continuation, change, id_region=0) == needed
    assert continuation.published == ([(0, 0, None)] if needed else [])


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

    event = user_deleted("alice")
    store = InMemoryCleanupStore({(ALICE, idempotency_sk("k"))})
    out_of_time = TimeBudget(lambda: 0)
    queue = RecordingContinuation()
    event["detail"]["continuation"] = MAX_USER_DELETION_ROUNDS - 1
    result = delete_user_account(store, queue, UserDeletedEvent.model_validate(event), out_of_time)
    assert not result.complete and queue.published == [(MAX_USER_DELETION_ROUNDS, 0, None)]
    event["detail"]["continuation"] = MAX_USER_DELETION_ROUNDS
    with pytest.raises(UserDeletionStalled):
        delete_user_account(store, queue, UserDeletedEvent.model_validate(event), out_of_time)
    assert queue.published == [(MAX_USER_DELETION_ROUNDS, 0, None)]


# ---------------------------------------------------------------- account deletion is final


def test_every_round_of_a_user_deletion_marks_the_account_deleted_first_and_keeps_the_marker() -> None:
    from aurora_chats.cleanup import TimeBudget, UserDeletedEvent, delete_user_account

    chats = range(1, 31)
    store = InMemoryCleanupStore(
        {(chat_pk(c), CHAT_META_SK) for c in chats} | {(ALICE, user_chat_sk(c)) for c in chats}
    )
    queue = RecordingContinuation()
    event = UserDeletedEvent.model_validate(user_deleted("alice"))
    first = delete_user_account(store, queue, event, TimeBudget(lambda: 10**9, reserve_ms=0))
    assert first.complete and store.deleted_users == ["alice"]
    # Only the marker is left of alice, and a continuation round (a replay) leaves it too.
    assert store.keys == {(ALICE, USER_STATE_SK)}
    replay = user_deleted("alice")
    replay["detail"]["continuation"] = 3
    assert delete_user_account(
        store, queue, UserDeletedEvent.model_validate(replay), TimeBudget(lambda: 10**9)
    ).complete
    assert store.keys == {(ALICE, USER_STATE_SK)} and store.deleted_users == ["alice", "alice"]


def test_a_purge_counts_a_chat_down_once_however_often_its_record_is_replayed() -> None:
    from aurora_chats.cleanup import TimeBudget, purge_chat
    from aurora_chats.ports import RemovedChat

    store = InMemoryCleanupStore(
        {(ALICE, user_chat_sk(7)), (chat_pk(7), message_sk("m1")), (ALICE, user_chat_sk(8))},
        counts={"alice": 2},
    )
    expired = RemovedChat(chat_id=7, user_id="alice", idempotency_key=None, expired=True)
    for _ in range(3):  # the stream delivers at least once
        assert purge_chat(store, expired, TimeBudget(lambda: 10**9)).complete
    assert store.counts == {"alice": 1}
    assert store.keys == {(ALICE, user_chat_sk(8))}


# ---------------------------------------------------------------- sustained throttling continues later


def test_a_throttled_user_deletion_continues_later_with_growing_delays_then_fails_into_the_dlq() -> None:
    from aurora_chats.cleanup import (
        MAX_THROTTLED_ROUNDS,
        TimeBudget,
        UserDeletedEvent,
        UserDeletionStalled,
        delete_user_account,
    )

    store = InMemoryCleanupStore({(ALICE, user_chat_sk(1)), (chat_pk(1), CHAT_META_SK)})
    store.throttled = True
    queue = RecordingContinuation()
    event = user_deleted("alice")
    for throttled in range(MAX_THROTTLED_ROUNDS):
        event["detail"]["throttled"] = throttled
        event["detail"]["continuation"] = throttled
        result = delete_user_account(
            store, queue, UserDeletedEvent.model_validate(event), TimeBudget(lambda: 10**9)
        )
        assert not result.complete and result.continued_in_round == throttled + 1
    delays = [delay for _, _, delay in queue.published]
    assert delays == [60, 120, 240, 480, 900, 900, 900, 900]
    assert [t for _, t, _ in queue.published] == list(range(1, MAX_THROTTLED_ROUNDS + 1))
    event["detail"]["throttled"] = MAX_THROTTLED_ROUNDS
    with pytest.raises(UserDeletionStalled):
        delete_user_account(store, queue, UserDeletedEvent.model_validate(event), TimeBudget(lambda: 10**9))
    assert len(queue.published) == MAX_THROTTLED_ROUNDS

    # Once DynamoDB answers again, the delayed continuation finishes the job, keeping its throttled count.
    store.throttled = False
    event["detail"]["throttled"] = 3
    result = delete_user_account(
        store, queue, UserDeletedEvent.model_validate(event), TimeBudget(lambda: 10**9)
    )
    assert result.complete and store.keys == {(ALICE, USER_STATE_SK)}


# ---------------------------------------------------------------- global table: who purges a replicated removal


def test_with_a_replica_a_region_purges_the_chats_it_minted_and_skips_the_others_as_successes() -> None:
    from aurora_chats.cleanup import PurgeScope, TimeBudget, purge_removed_chat
    from aurora_chats.ids import chat_id_region, new_chat_id
    from aurora_chats.ports import RemovedChat

    now = 1_800_000_000_000
    ours, theirs = new_chat_id(now, region=3), new_chat_id(now, region=4)
    assert (chat_id_region(ours), chat_id_region(theirs)) == (3, 4)
    items = {(chat_pk(c), message_sk(f"m{n}")) for c in (ours, theirs) for n in range(30)}
    store = InMemoryCleanupStore(items | {(ALICE, user_chat_sk(ours)), (ALICE, user_chat_sk(theirs))})
    budget = TimeBudget(lambda: 10**9)
    removed = {
        c: RemovedChat(chat_id=c, user_id="alice", idempotency_key=None, expired=False)
        for c in (ours, theirs)
    }

    region_3 = PurgeScope(id_region=3, own_region_only=True)
    mine, skipped = (
        purge_removed_chat(store, removed[ours], budget, region_3),
        purge_removed_chat(store, removed[theirs], budget, region_3),
    )
    assert (mine.complete, mine.skipped, mine.items_deleted) == (True, False, 30)
    assert (skipped.complete, skipped.skipped, skipped.items_deleted) == (True, True, 0)
    assert {pk for pk, _ in store.keys} == {
        chat_pk(theirs),
        ALICE,
    }  # region 4's chat, untouched, list entry too

    region_4 = PurgeScope(id_region=4, own_region_only=True)
    assert purge_removed_chat(store, removed[theirs], budget, region_4).items_deleted == 30
    assert store.keys == set()


def test_without_a_replica_every_removal_is_purged_whatever_region_minted_it() -> None:
    from aurora_chats.cleanup import PurgeScope
    from aurora_chats.ids import MAX_REGION, new_chat_id

    single = PurgeScope(id_region=0, own_region_only=False)
    replicated = PurgeScope(id_region=0, own_region_only=True)
    ids = [new_chat_id(1_800_000_000_000, region=r) for r in range(MAX_REGION + 1)]
    assert all(single.purges(chat_id) for chat_id in ids)
    assert [replicated.purges(chat_id) for chat_id in ids] == [True] + [False] * MAX_REGION


def test_purge_own_region_only_is_true_false_or_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    from aurora_chats.settings import get_settings, reset_settings

    for raw, expected in (("", False), ("false", False), ("true", True), ("TRUE", True)):
        monkeypatch.setenv("PURGE_OWN_REGION_ONLY", raw)
        reset_settings()
        assert get_settings().purge_own_region_only is expected
    monkeypatch.setenv("PURGE_OWN_REGION_ONLY", "yes")
    reset_settings()
    with pytest.raises(ValueError, match="PURGE_OWN_REGION_ONLY"):
        get_settings()
    monkeypatch.delenv("PURGE_OWN_REGION_ONLY")
    reset_settings()


def test_after_a_ttl_removal_the_purge_leaves_to_ttl_what_ttl_deletes_and_deletes_the_rest() -> None:
    from aurora_chats.cleanup import TimeBudget, purge_chat
    from aurora_chats.ports import RemovedChat

    chat = chat_pk(42)
    timed = {(chat, message_sk(f"01JDQ8Z6R8W4X2V1T0S9R8Q7P{n}")) for n in range(5)}
    untimed, later = (
        (chat, message_sk("01JDQ8Z6R8W4X2V1T0S9R8Q7PU")),
        (chat, message_sk("01JDQ8Z6R8W4X2V1T0S9R8Q7PL")),
    )
    entry = (ALICE, user_chat_sk(42))
    for expired in (True, False):
        store = InMemoryCleanupStore(timed | {untimed, later, entry}, counts={"alice": 1})
        store.expires_at = dict.fromkeys(timed, 1_000) | {later: 2_000}
        removed = RemovedChat(42, "alice", None, expired=expired, expires_at=1_000)
        result = purge_chat(store, removed, TimeBudget(lambda: 10**9))
        assert result.complete
        if expired:  # TTL deletes the five itself, for free: the purge deletes the other two and the entry
            assert store.keys == timed and result.items_deleted == 2
        else:  # an API delete: nothing of the chat is TTL's to delete now, the purge deletes everything
            assert store.keys == set() and result.items_deleted == 7
