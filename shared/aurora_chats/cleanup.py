"""Cleanup use cases: purge a removed chat, delete a user's account data. Storage is passed in; never boto3 here.

What triggers them (see ``functions/chat_cleanup/app.py`` and ``template.yaml``). One function serves both
triggers: one IAM role, one set of alarms and one deployment for what is one job (delete a chat's data), and the
user deletion deliberately feeds the stream path.

* **purge** — the table stream's ``REMOVE`` of a chat record, whether the API deleted it
  or DynamoDB's TTL expired it. Deletes the owner's list entry, the chat's idempotency record (only while it still
  names this chat) and every item of the chat's partition (messages), ``BatchWriteItem`` 25 keys at a time. After a
  TTL removal, the items that carry the chat's ``expiresAt`` (or an earlier one) are left to TTL, which deletes them
  at no cost: the purge deletes only the others (written without it, or with a later one).
* **user deletion** — EventBridge ``UserDeleted`` (``source: aurora.users``). Deletes every item in the
  user's partition (list entries, idempotency records, anything else) but the deletion marker and, always *before* the list entry that
  names it, the chat record of each listed chat (so an interruption never orphans a chat record). Each deleted
  chat record then arrives on the stream as a ``REMOVE`` and is purged as above, so there is one purge path.
  One gap, by design: TTL may remove an expired chat's list entry before its chat record; such a chat is already
  expired (hidden, refused) and its own TTL removal purges it.

With a replica region (a global table, ``PURGE_OWN_REGION_ONLY``), every region's stream sees every chat
removal, its own and the replicated ones: :func:`purge_removed_chat` purges a chat only in the region whose
``IdRegion`` minted its id (:func:`aurora_chats.ids.chat_id_region`) and skips it elsewhere as a success (logged,
``PurgesSkippedOtherRegion``); the owning region's deletes replicate to the others. A single-region stack purges
every removal, whatever region bits the id carries (ids minted before an ``IdRegion`` change included).

With a replica region the *user deletion* reaches both regions through the table itself, whichever region's bus the
``UserDeleted`` event arrived on: the marker (the user-state item, which names the ``IdRegion`` that wrote it)
replicates, and each region's stream sees the user-state writes. :func:`follow_user_state_change` starts a deletion
round in this region (a ``UserDeletionContinued`` event on its own bus, the same path as a continuation) when

* a marker *arrives* that another region wrote: an initialize that committed here just before the marker replicated
  is then found by this region's own strongly consistent queries and deleted, and this region's marker is written;
* a marker is *lost*: the item had a marker and no longer has one. Nothing in one region ever removes a marker
  (every write of the item is conditioned on ``attribute_not_exists(deletedAt)``; expiry is a ``REMOVE``), so this is
  last-writer-wins between regions: a write here that committed before the other region's marker arrived, with a
  later timestamp, replaced the marked item. The round writes the marker again, now the latest write everywhere.

Neither fires on a marker this region wrote or refreshed (every round rewrites it: the item was marked before), so
the rounds end; a single-region stack never sees either.

Both are idempotent: they re-read what is left and delete it, so a replayed record, a chat already purged and a
run that stopped halfway all end in the same state.

Time budget and continuation — never a silent timeout that leaves items behind:

* Before every ``Query`` page and every ``BatchWriteItem`` (user deletion: every group of 25) the use case asks the :class:`TimeBudget` whether the
  Lambda still has more than ``reserve_ms`` left. When it does not, it stops cleanly and returns
  ``complete=False``. Nothing is lost: all that was done is done, the rest is re-queried next time.
* Stream purge: the entry point reports that record (and every record after it in the batch, which it no longer
  starts) in ``batchItemFailures``. Lambda checkpoints before the lowest reported sequence number and invokes again
  from there, so the next invocation continues the same chat. Each such round counts against the event source
  mapping's ``MaximumRetryAttempts``; with a 5-minute timeout one round deletes far more than 100,000 messages, so
  the template's bound (20 rounds) is only reached by a record that really keeps failing — which then goes to the
  stream DLQ (alarmed).
* User deletion: the entry point re-publishes the work as a ``UserDeletionContinued`` event (our own source
  ``aurora.chats``, so other consumers of ``UserDeleted`` never see duplicates) with a round counter; the rule for
  it invokes the function again, which continues. This does not depend on Lambda's asynchronous retries (at most 2,
  and meant for errors, not for progress), survives any number of chats, and is bounded by
  :data:`MAX_USER_DELETION_ROUNDS`: past it the invocation fails, Lambda retries twice and then the event lands in
  the UserDeleted DLQ (alarmed). Raising instead of re-publishing would only ever get 3 invocations.
* User deletion under sustained throttling (DynamoDB still refusing after the store's own retries): instead of
  failing into the DLQ, the round ends and the work continues *later* - a one-shot EventBridge Scheduler schedule
  puts the same ``UserDeletionContinued`` event on the bus after an exponentially growing delay
  (:data:`THROTTLED_DELAY_BASE_SECONDS` doubling up to :data:`THROTTLED_DELAY_CAP_SECONDS`). The event counts its
  throttled rounds; past :data:`MAX_THROTTLED_ROUNDS` (or the round bound) the invocation fails into the DLQ.

The deletion is final: every round first writes the user's deletion marker (the user-state item, which every
initialize's transaction checks), and only then reads what to delete with strongly consistent queries. A chat whose
initialize committed before the marker is found and deleted; one after it is refused (403). The marker is never
deleted here: it expires by TTL after the deleted-account window (at least the longest token lifetime).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

from aurora_chats.errors import OutcomeUnknown, ServiceUnavailable
from aurora_chats.ids import chat_id_region
from aurora_chats.observability import logger, metrics, user_hash
from aurora_chats.ports import CleanupStore, ContinuationQueue, ItemKey, RemovedChat, UserStateChange

MAX_USER_DELETION_ROUNDS = 50
# Throttled rounds continue after 60 s, 2 min, 4 min, 8 min, then every 15 min: 8 rounds wait ~1.9 h in all.
MAX_THROTTLED_ROUNDS = 8
THROTTLED_DELAY_BASE_SECONDS = 60
THROTTLED_DELAY_CAP_SECONDS = 900
# Stop this long before the Lambda timeout. Between two checks runs one Query page or one BatchWriteItem with its
# retries (backoff ≤ ~7 s in all), so this leaves room to spare. Should DynamoDB hang beyond it, the invocation
# times out: a function error that Lambda retries (the work is idempotent) and the Errors alarm reports.
DEFAULT_RESERVE_MS = 15_000


# ---------------------------------------------------------------- inputs


class UserDeletedDetail(BaseModel):
    """``detail`` of ``UserDeleted`` (and of our own ``UserDeletionContinued``, which adds the round)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    user_id: str = Field(alias="userId", pattern=r"^[\x21-\x7e]{1,255}$")
    continuation: int = Field(default=0, ge=0)
    throttled: int = Field(default=0, ge=0)  # rounds so far that ended because DynamoDB kept throttling


class UserDeletedEvent(EventBridgeModel):
    source: Literal["aurora.users", "aurora.chats"]
    detail_type: Literal["UserDeleted", "UserDeletionContinued"] = Field(alias="detail-type")
    detail: UserDeletedDetail


@dataclass(frozen=True, slots=True)
class TimeBudget:
    """How long the invocation may keep working: stop while more than ``reserve_ms`` are left."""

    remaining_ms: Callable[[], int]
    reserve_ms: int = DEFAULT_RESERVE_MS

    def running_low(self) -> bool:
        return self.remaining_ms() < self.reserve_ms


class OutOfTime(Exception):
    """The work stopped early on purpose; running it again continues where it stopped."""


# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class PurgeResult:
    chat_id: int
    complete: bool
    items_deleted: int
    skipped: bool = False  # another region minted the chat and purges it (global table)


@dataclass(frozen=True, slots=True)
class UserDeletionResult:
    user_id: str
    complete: bool
    chats_deleted: int
    items_deleted: int
    continued_in_round: int | None = None
    delayed_seconds: int | None = None  # the continuation waits this long (throttling)

    def summary(self) -> dict[str, Any]:
        """What the cleanup function returns for a user deletion (Lambda records it; nothing reads it back)."""
        return {
            "userId": self.user_id,
            "complete": self.complete,
            "chatsDeleted": self.chats_deleted,
            "continuation": self.continued_in_round,
            "delayedSeconds": self.delayed_seconds,
        }


# ---------------------------------------------------------------- use cases


def _chunks[T](values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def purge_chat(store: CleanupStore, chat: RemovedChat, budget: TimeBudget) -> PurgeResult:
    """Delete everything a removed chat left behind; ``complete=False`` when the time budget ran out first."""
    started = time.monotonic()
    deleted = 0
    complete = False
    try:
        if budget.running_low():
            return PurgeResult(chat.chat_id, complete=False, items_deleted=0)
        store.remove_list_entry(chat)
        if chat.user_id is not None and chat.idempotency_key is not None:
            store.delete_idempotency_record(chat.user_id, chat.idempotency_key, chat.chat_id)
        # TTL removed the chat record: every item written with the chat carries the same expiresAt and is TTL's to
        # delete, for free. The purge deletes only what TTL would not (no expiresAt, or a later one).
        left_to_ttl_by = chat.expires_at if chat.expired else None
        start: ItemKey | None = None
        while True:
            if budget.running_low():
                return PurgeResult(chat.chat_id, complete=False, items_deleted=deleted)
            page = store.chat_items_page(chat.chat_id, start, left_to_ttl_by=left_to_ttl_by)
            for chunk in _chunks(page.keys, store.max_batch):
                if budget.running_low():
                    return PurgeResult(chat.chat_id, complete=False, items_deleted=deleted)
                store.delete_items(chunk)
                deleted += len(chunk)
            if page.next_start is None:
                complete = True
                return PurgeResult(chat.chat_id, complete=True, items_deleted=deleted)
            start = page.next_start
    finally:
        metrics.add_metric(name="MessagesPurged", unit=MetricUnit.Count, value=deleted)
        metrics.add_metric(
            name="PurgeDuration", unit=MetricUnit.Milliseconds, value=(time.monotonic() - started) * 1000
        )
        if complete:
            metrics.add_metric(name="ChatsPurged", unit=MetricUnit.Count, value=1)
        logger.info(
            "chat purge",
            extra={
                "chatId": chat.chat_id,
                "expired": chat.expired,
                "itemsDeleted": deleted,
                "complete": complete,
            },
        )


@dataclass(frozen=True, slots=True)
class PurgeScope:
    """Which removed chats this region's stream purge purges: all of them, or (with a replica region) only those
    whose id carries this region's ``IdRegion``."""

    id_region: int
    own_region_only: bool

    def purges(self, chat_id: int) -> bool:
        return not self.own_region_only or chat_id_region(chat_id) == self.id_region


def purge_removed_chat(
    store: CleanupStore, chat: RemovedChat, budget: TimeBudget, scope: PurgeScope
) -> PurgeResult:
    """The stream's purge: :func:`purge_chat` if this region owns the chat, else a skip (another region purges it,
    and its deletes replicate here). Operator purges (``chats-admin``) call :func:`purge_chat` directly."""
    if scope.purges(chat.chat_id):
        return purge_chat(store, chat, budget)
    metrics.add_metric(name="PurgesSkippedOtherRegion", unit=MetricUnit.Count, value=1)
    logger.info(
        "chat purge skipped: minted in another region, which purges it",
        extra={
            "chatId": chat.chat_id,
            "chatRegion": chat_id_region(chat.chat_id),
            "idRegion": scope.id_region,
        },
    )
    return PurgeResult(chat.chat_id, complete=True, items_deleted=0, skipped=True)


def deletion_round_needed(change: UserStateChange, id_region: int) -> str | None:
    """Why this region must run a user-deletion round after this user-state write (``None``: it need not)."""
    if change.marked_after and not change.marked_before and change.marked_in_region != id_region:
        return "marker-replicated"  # another region's marker arrived (or one that names no region)
    if change.marked_before and not change.marked_after:
        return "marker-lost"  # a replicated write without the marker won last-writer-wins
    return None


def follow_user_state_change(
    continuation: ContinuationQueue, change: UserStateChange, id_region: int
) -> str | None:
    """The stream's side of a user deletion in a global table: start a deletion round here when
    :func:`deletion_round_needed` says so (a ``UserDeletionContinued`` event on this region's bus). Returns why."""
    reason = deletion_round_needed(change, id_region)
    if reason is None:
        return None
    metrics.add_metric(name="UserDeletionsFromReplica", unit=MetricUnit.Count, value=1)
    logger.warning(
        "user deletion round started by the table's stream",
        extra={
            "user": user_hash(change.user_id),
            "reason": reason,
            "markedInRegion": change.marked_in_region,
        },
    )
    continuation.continue_user_deletion(change.user_id, 0)
    return reason


def delete_user_data(store: CleanupStore, user_id: str, budget: TimeBudget) -> UserDeletionResult:
    """Delete every chat record of the user and every item under the user; stops when time runs low.

    The user's items go in groups of ``max_batch``: first the chat records the group's list entries name, then
    (only once those all succeeded) the group's own items. An interruption (time, throttling, a crash) can leave
    list entries whose chat is already gone — the next round deletes them — but never a chat record nobody lists;
    and every finished group is progress the next round does not repeat.
    """
    chats = items = 0
    start: ItemKey | None = None
    while True:
        if budget.running_low():
            return UserDeletionResult(user_id, complete=False, chats_deleted=chats, items_deleted=items)
        page = store.user_items_page(user_id, start)
        for group in _chunks(page.items, store.max_batch):
            if budget.running_low():
                return UserDeletionResult(user_id, complete=False, chats_deleted=chats, items_deleted=items)
            chat_records = [item.chat_record_key for item in group if item.chat_record_key is not None]
            if chat_records:
                store.delete_items(chat_records)
                chats += len(chat_records)
            store.delete_items([item.key for item in group])
            items += len(group) + len(chat_records)
        if page.next_start is None:
            return UserDeletionResult(user_id, complete=True, chats_deleted=chats, items_deleted=items)
        start = page.next_start


class UserDeletionStalled(Exception):
    """Too many continuation rounds: fail so the event ends in the DLQ instead of looping forever."""


def throttled_delay_seconds(throttled: int) -> int:
    """How long the ``throttled``-th throttled round's continuation waits (1-based)."""
    return int(min(THROTTLED_DELAY_BASE_SECONDS * 2 ** (throttled - 1), THROTTLED_DELAY_CAP_SECONDS))


def delete_user_account(
    store: CleanupStore,
    continuation: ContinuationQueue,
    event: UserDeletedEvent,
    budget: TimeBudget,
) -> UserDeletionResult:
    """Handle ``UserDeleted`` / ``UserDeletionContinued``: mark the account deleted, delete what fits in this
    invocation, hand on the rest (at once when out of time, later when DynamoDB keeps throttling)."""
    detail = event.detail
    next_round = detail.continuation + 1
    try:
        store.mark_user_deleted(detail.user_id)
        result = delete_user_data(store, detail.user_id, budget)
    except (ServiceUnavailable, OutcomeUnknown) as exc:
        throttled = detail.throttled + 1
        metrics.add_metric(name="UserDeletionThrottled", unit=MetricUnit.Count, value=1)
        if throttled > MAX_THROTTLED_ROUNDS or next_round > MAX_USER_DELETION_ROUNDS:
            raise UserDeletionStalled(
                f"deleting user {detail.user_id!r}: DynamoDB still throttling after {detail.throttled} delayed rounds"
            ) from exc
        delay = throttled_delay_seconds(throttled)
        logger.warning(
            "user deletion throttled: continues later",
            extra={
                "user": user_hash(detail.user_id),
                "round": next_round,
                "throttled": throttled,
                "delay": delay,
            },
        )
        continuation.continue_user_deletion_later(detail.user_id, next_round, throttled, delay)
        return UserDeletionResult(
            detail.user_id, complete=False, chats_deleted=0, items_deleted=0, continued_in_round=next_round,
            delayed_seconds=delay,
        )  # fmt: skip
    metrics.add_metric(name="UserChatsDeleted", unit=MetricUnit.Count, value=result.chats_deleted)
    logger.info(
        "user deletion",
        extra={
            "user": user_hash(detail.user_id),
            "round": detail.continuation,
            "chatsDeleted": result.chats_deleted,
            "itemsDeleted": result.items_deleted,
            "complete": result.complete,
        },
    )
    if result.complete:
        return result
    if next_round > MAX_USER_DELETION_ROUNDS:
        raise UserDeletionStalled(
            f"deleting user {detail.user_id!r} did not finish in {MAX_USER_DELETION_ROUNDS} rounds"
        )
    continuation.continue_user_deletion(detail.user_id, next_round, detail.throttled)
    return UserDeletionResult(
        user_id=result.user_id,
        complete=False,
        chats_deleted=result.chats_deleted,
        items_deleted=result.items_deleted,
        continued_in_round=next_round,
    )
