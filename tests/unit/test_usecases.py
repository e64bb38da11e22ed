"""Use cases on an in-memory repository: the business rules, no DynamoDB."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aurora_chats import usecases
from aurora_chats.cursor import decode_cursor, encode_cursor
from aurora_chats.errors import (
    AccountDeleted,
    CharacterNotFound,
    ChatLimitReached,
    ChatNotFound,
    IdempotencyKeyConflict,
    InvalidCursor,
)
from aurora_chats.greeting import display_name, render_greeting
from aurora_chats.ids import MAX_ID, chat_id_time_ms, new_chat_id, new_message_id
from aurora_chats.models import Character
from aurora_chats.settings import Settings

from tests.support.fakes import InMemoryChats

SETTINGS = Settings(
    table_name="t",
    chat_retention_days=0,
    idempotency_ttl_seconds=86_400,
    character_cache_seconds=300,
    cursor_secret=b"secret",
    ddb_max_attempts=3,
    ddb_connect_timeout=1,
    ddb_read_timeout=1,
    retry_after_seconds=1,
)
AURORA = Character(character_id=330905, name="Aurora", first_mes="Hi {{user}}, I'm {{char}}.")


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    usecases.clear_character_cache()
    yield
    usecases.clear_character_cache()


@pytest.fixture
def repo() -> InMemoryChats:
    return InMemoryChats(characters={330905: AURORA})


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=5)
        return self.now


def test_initialize_greets_the_user_by_name_and_stores_the_greeting(repo: InMemoryChats) -> None:
    response, created = usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 330905, None)
    assert created
    assert response.message.content == "Hi Alice, I'm Aurora."
    assert response.message.role == "character"
    assert repo.messages[response.chat_id] == [response.message]


def test_initialize_unknown_character_is_not_found(repo: InMemoryChats) -> None:
    with pytest.raises(CharacterNotFound):
        usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 42, None)
    assert repo.chats == {}


def test_character_is_read_once_per_container(repo: InMemoryChats) -> None:
    for _ in range(3):
        usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 330905, None)
    assert repo.character_reads == 1


def test_same_idempotency_key_returns_the_same_chat(repo: InMemoryChats) -> None:
    first, created = usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 330905, "key-1")
    again, created_again = usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 330905, "key-1")
    assert created and not created_again
    assert again == first
    assert len(repo.chats) == 1


def test_idempotency_keys_are_per_user(repo: InMemoryChats) -> None:
    a, _ = usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 330905, "key-1")
    b, created = usecases.initialize_chat(repo, SETTINGS, "bob", "Bob", 330905, "key-1")
    assert created and a.chat_id != b.chat_id


def test_same_key_other_character_is_a_conflict(repo: InMemoryChats) -> None:
    repo.characters[7] = Character(character_id=7, name="Seven", first_mes="Hello")
    usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 330905, "key-1")
    with pytest.raises(IdempotencyKeyConflict):
        usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 7, "key-1")
    assert len(repo.chats) == 1


def test_key_of_a_deleted_chat_starts_a_new_chat(repo: InMemoryChats) -> None:
    first, _ = usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 330905, "key-1")
    usecases.delete_chat(repo, "alice", first.chat_id)
    again, created = usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 330905, "key-1")
    assert created and again.chat_id != first.chat_id


def test_list_pages_newest_first_each_chat_once(repo: InMemoryChats) -> None:
    clock = Clock()
    made = [
        usecases.initialize_chat(repo, SETTINGS, "alice", "A", 330905, None, clock)[0].chat_id
        for _ in range(7)
    ]
    seen: list[int] = []
    cursor = None
    while True:
        page = usecases.list_chats(repo, SETTINGS, "alice", 3, cursor)
        seen.extend(page.chat_ids)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(made, reverse=True)


def test_another_users_cursor_is_rejected(repo: InMemoryChats) -> None:
    for _ in range(3):
        usecases.initialize_chat(repo, SETTINGS, "alice", "A", 330905, None)
    cursor = usecases.list_chats(repo, SETTINGS, "alice", 1, None).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidCursor):
        usecases.list_chats(repo, SETTINGS, "bob", 1, cursor)


def test_delete_of_someone_elses_chat_is_not_found(repo: InMemoryChats) -> None:
    chat, _ = usecases.initialize_chat(repo, SETTINGS, "alice", "A", 330905, None)
    with pytest.raises(ChatNotFound):
        usecases.delete_chat(repo, "bob", chat.chat_id)
    assert chat.chat_id in repo.chats


def test_a_repeated_delete_by_the_same_user_answers_alike_for_24_hours(repo: InMemoryChats) -> None:
    chat, _ = usecases.initialize_chat(repo, SETTINGS, "alice", "A", 330905, None)
    deleted_at = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    first, deleted_now = usecases.delete_chat(repo, "alice", chat.chat_id, lambda: deleted_at)
    assert deleted_now and chat.chat_id not in repo.chats
    later = deleted_at + timedelta(hours=23, minutes=59)
    assert usecases.delete_chat(repo, "alice", chat.chat_id, lambda: later) == (first, False)
    with pytest.raises(ChatNotFound):  # the tombstone is the deleter's own
        usecases.delete_chat(repo, "bob", chat.chat_id, lambda: later)
    with pytest.raises(ChatNotFound):  # and it expires
        usecases.delete_chat(repo, "alice", chat.chat_id, lambda: deleted_at + timedelta(hours=24))


def test_paging_through_long_expired_runs_reaches_every_live_chat(repo: InMemoryChats) -> None:
    clock = Clock()
    live: list[int] = []
    for n in range(60):  # 1 live chat, then 19 already expired but not yet deleted by TTL, three times over
        chat = usecases.initialize_chat(repo, SETTINGS, "alice", "A", 330905, None, clock)[0]
        if n % 20 == 0:
            live.append(chat.chat_id)
        else:
            repo.chats[chat.chat_id] = repo.chats[chat.chat_id].model_copy(update={"expires_at": 1})
    seen: list[int] = []
    cursor = None
    while True:
        page = usecases.list_chats(repo, SETTINGS, "alice", 1, cursor, clock)
        assert page.chat_ids or page.next_cursor is None, "an empty page with a cursor"
        seen.extend(page.chat_ids)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(live, reverse=True)


def test_expired_chat_is_hidden_and_not_deletable(repo: InMemoryChats) -> None:
    retention = dataclasses.replace(SETTINGS, chat_retention_days=1)
    past = datetime(2020, 1, 1, tzinfo=UTC)
    chat, _ = usecases.initialize_chat(repo, retention, "alice", "A", 330905, None, lambda: past)
    assert usecases.list_chats(repo, retention, "alice", 10, None).chat_ids == []
    with pytest.raises(ChatNotFound):
        usecases.delete_chat(repo, "alice", chat.chat_id)


# ---------------------------------------------------------------- account deletion and the per-user chat limit


def test_initialize_for_a_deleted_account_is_refused_and_writes_nothing(repo: InMemoryChats) -> None:
    repo.deleted_users.add("alice")
    with pytest.raises(AccountDeleted):
        usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 330905, None)
    with pytest.raises(AccountDeleted):  # a deleted account comes before the idempotency record
        usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 330905, "key-1")
    assert repo.chats == {} and repo.idempotency == {} and repo.chat_counts == {}


def test_delete_for_a_deleted_account_is_refused(repo: InMemoryChats) -> None:
    chat, _ = usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 330905, None)
    repo.deleted_users.add("alice")
    with pytest.raises(AccountDeleted):
        usecases.delete_chat(repo, "alice", chat.chat_id)


def test_initialize_past_the_chat_limit_is_refused_and_a_delete_frees_a_slot_at_once(
    repo: InMemoryChats,
) -> None:
    limited = dataclasses.replace(SETTINGS, max_chats_per_user=3)
    made = [usecases.initialize_chat(repo, limited, "alice", "A", 330905, None)[0].chat_id for _ in range(3)]
    with pytest.raises(ChatLimitReached) as refused:
        usecases.initialize_chat(repo, limited, "alice", "A", 330905, "key-over")
    assert refused.value.limit == 3
    assert sorted(repo.chats) == sorted(made) and repo.idempotency == {}
    # Other users are not affected, and one delete frees exactly one slot.
    usecases.initialize_chat(repo, limited, "bob", "B", 330905, None)
    usecases.delete_chat(repo, "alice", made[0])
    usecases.initialize_chat(repo, limited, "alice", "A", 330905, None)
    with pytest.raises(ChatLimitReached):
        usecases.initialize_chat(repo, limited, "alice", "A", 330905, None)
    assert repo.chat_counts == {"alice": 3, "bob": 1}


def test_an_idempotent_replay_at_the_limit_returns_its_chat_and_counts_nothing(repo: InMemoryChats) -> None:
    limited = dataclasses.replace(SETTINGS, max_chats_per_user=2)
    first, _ = usecases.initialize_chat(repo, limited, "alice", "A", 330905, "key-1")
    usecases.initialize_chat(repo, limited, "alice", "A", 330905, None)
    again, created = usecases.initialize_chat(repo, limited, "alice", "A", 330905, "key-1")
    assert not created and again == first
    assert repo.chat_counts == {"alice": 2}


def test_a_chat_removed_by_retention_frees_its_slot(repo: InMemoryChats) -> None:
    limited = dataclasses.replace(SETTINGS, max_chats_per_user=1)
    chat, _ = usecases.initialize_chat(repo, limited, "alice", "A", 330905, None)
    with pytest.raises(ChatLimitReached):
        usecases.initialize_chat(repo, limited, "alice", "A", 330905, None)
    repo.expire(chat.chat_id)
    assert usecases.initialize_chat(repo, limited, "alice", "A", 330905, None)[1]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hi {{user}}, I'm {{char}}", "Hi Alice, I'm Aurora"),
        ("Hi <USER>, I'm <BOT>", "Hi Alice, I'm Aurora"),
        ("Hi {{User}}, I'm {{CHAR}} and <bot>", "Hi Alice, I'm Aurora and Aurora"),
    ],
)
def test_greeting_placeholders_are_case_insensitive(template: str, expected: str) -> None:
    assert render_greeting(Character(character_id=1, name="Aurora", first_mes=template), "Alice") == expected


def test_empty_first_mes_falls_back_to_the_first_alternate_greeting() -> None:
    character = Character(
        character_id=1, name="Mira", first_mes="", alternate_greetings=("Hey {{user}}", "Yo")
    )
    assert render_greeting(character, "Bob") == "Hey Bob"


def test_display_name_prefers_name_then_preferred_username() -> None:
    assert display_name({"name": "Alice", "preferred_username": "al"}) == "Alice"
    assert display_name({"preferred_username": "al"}) == "al"
    assert display_name({}) == "User"


def test_chat_ids_are_time_ordered_and_json_safe() -> None:
    ids = [new_chat_id(ms) for ms in (1_800_000_000_000, 1_800_000_000_001, 3_900_000_000_000)]
    assert ids == sorted(ids)
    assert all(1 <= i <= MAX_ID for i in ids)
    assert chat_id_time_ms(ids[0]) == 1_800_000_000_000
    assert new_message_id(1) < new_message_id(2)


def test_cursor_round_trips_and_rejects_tampering() -> None:
    cursor = encode_cursor(b"k", "alice", 1234)
    assert decode_cursor(b"k", "alice", cursor) == 1234
    for bad in [cursor[:-1] + ("A" if cursor[-1] != "A" else "B"), "", "x" * 65, cursor + "==", "!!!"]:
        with pytest.raises(InvalidCursor):
            decode_cursor(b"k", "alice", bad)
    with pytest.raises(InvalidCursor):
        decode_cursor(b"other-secret", "alice", cursor)


def test_a_delete_that_meets_a_concurrent_write_is_retried(repo: InMemoryChats) -> None:
    from aurora_chats.errors import WriteConflict

    chat_id = usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 330905, None)[0].chat_id
    real, conflicts = repo.delete_chat, [WriteConflict()]

    def delete_once_conflicting(user_id: str, chat_id: int, now_epoch: int) -> bool:
        if conflicts:
            raise conflicts.pop()
        return real(user_id, chat_id, now_epoch)

    repo.delete_chat = delete_once_conflicting  # type: ignore[method-assign]
    response, deleted_now = usecases.delete_chat(repo, "alice", chat_id)
    assert response.deleted and deleted_now
    assert chat_id not in repo.chats and not conflicts


def test_a_chat_id_collision_is_retried_with_a_new_id(repo: InMemoryChats) -> None:
    from aurora_chats.errors import ChatIdCollision

    real, collisions = repo.create_chat, [ChatIdCollision()]

    def create_once_colliding(*args: Any, **kwargs: Any) -> None:
        if collisions:
            raise collisions.pop()
        real(*args, **kwargs)

    repo.create_chat = create_once_colliding  # type: ignore[method-assign]
    response, created = usecases.initialize_chat(repo, SETTINGS, "alice", "Alice", 330905, None)
    assert created and list(repo.chats) == [response.chat_id] and not collisions


def test_retention_days_set_when_a_chat_expires(repo: InMemoryChats) -> None:
    keep_a_week = dataclasses.replace(SETTINGS, chat_retention_days=7)
    response, _ = usecases.initialize_chat(repo, keep_a_week, "alice", "Alice", 330905, None)
    chat = repo.chats[response.chat_id]
    assert chat.expires_at is not None
    assert (
        chat.expires_at - int(datetime.fromisoformat(chat.created_at.replace("Z", "+00:00")).timestamp())
        == 7 * 86_400
    )
