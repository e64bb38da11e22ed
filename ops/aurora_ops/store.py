"""The operator-only reads of the single table: the functions never Scan, so these live outside the layer.

=====================  ==========================================================================================
operation              DynamoDB calls
=====================  ==========================================================================================
orphan scan            keys-only strongly consistent ``Scan`` pages (``PAGE_SIZE`` items, filtered to chat
                       partitions) + 1 consistent keys-only ``GetItem`` of the chat record per candidate
recount                1 consistent ``GetItem`` of the user state, consistent ``Select=COUNT`` ``Query`` pages of
                       the user's list entries, 1 ``UpdateItem`` conditioned on the count read first (retried
                       when an initialize, delete or purge moved it meanwhile) and on no deletion marker
=====================  ==========================================================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aurora_chats.dal import errors, keys
from aurora_chats.dal.cleanup import DynamoDBCleanupStore
from aurora_chats.dal.items import CHAT_COUNT, DELETED_AT

RECOUNT_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Recount:
    user_id: str
    counted: int | None  # the chat count the user-state item held (None: no item, or the account is deleted)
    listed: int  # the user's list entries: what the count should be
    written: bool  # whether the count was corrected
    deleted: bool = (
        False  # the account is deleted: its count is frozen with the marker and nothing is written
    )


class AccountDeleted(Exception):
    """The user's state item carries a deletion marker: its count is frozen; nothing may be written."""


class OperatorStore(DynamoDBCleanupStore):
    """The cleanup's store plus what ``chats-admin purge-orphans`` / ``purge-chat`` need to find their work."""

    def chat_record_exists(self, chat_id: int) -> bool:
        """1 strongly consistent ``GetItem`` of the chat record (keys only)."""
        response = self.client.get_item(
            TableName=self.table_name,
            Key=keys.chat_record_key(chat_id),
            ProjectionExpression="PK",
            ConsistentRead=True,
        )
        return "Item" in response

    def orphaned_chat_candidates(self) -> Iterator[int]:
        """Chat partitions that have items but no chat record, by a paginated keys-only strongly consistent
        ``Scan`` (``PAGE_SIZE`` items a page, filtered to chat partitions; read-only, so safe while the API and
        the cleanup function run). Only candidates: a caller must re-check :meth:`chat_record_exists` before it
        deletes anything. Each chat id is yielded at most once; non-numeric chat partition keys are skipped.

        A Scan returns each partition's items together, so only the current partition is held in memory."""
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "ProjectionExpression": "PK, SK",
            "FilterExpression": "begins_with(PK, :chat)",
            "ExpressionAttributeValues": {":chat": {"S": keys.CHAT_PREFIX}},
            "ConsistentRead": True,
            "Limit": self.page_size,
        }
        yielded: set[int] = set()
        current: str | None = None
        current_has_record = False
        while True:
            response = self.client.scan(**params)
            for item in response.get("Items", []):
                pk, sk = item["PK"]["S"], item["SK"]["S"]
                if pk != current:
                    if current is not None and not current_has_record:
                        chat_id = keys.chat_id_from_pk(current)
                        if chat_id is not None and chat_id not in yielded:
                            yielded.add(chat_id)
                            yield chat_id
                    current, current_has_record = pk, False
                current_has_record = current_has_record or sk == keys.CHAT_META_SK
            start = response.get("LastEvaluatedKey")
            if start is None:
                break
            params["ExclusiveStartKey"] = start
        if current is not None and not current_has_record:
            chat_id = keys.chat_id_from_pk(current)
            if chat_id is not None and chat_id not in yielded:
                yield chat_id

    def recount_chats(self, user_id: str) -> Recount:
        """Set the user's chat count to the number of their list entries (what initialize, delete and the purge
        keep it equal to; a global table's last-writer-wins can make it drift). Conditioned on the count it read
        before counting, so a concurrent initialize, delete or purge makes it count again instead of writing a
        stale number; never writes to a deleted account (its marker's count is frozen)."""
        for _ in range(RECOUNT_ATTEMPTS):
            state = self.client.get_item(
                TableName=self.table_name, Key=keys.user_state_key(user_id), ConsistentRead=True
            ).get("Item")
            if state is not None and DELETED_AT in state:
                return Recount(user_id, counted=None, listed=0, written=False, deleted=True)
            counted = int(state[CHAT_COUNT]["N"]) if state is not None and CHAT_COUNT in state else None
            listed = self._count_list_entries(user_id)
            if counted == listed or (counted is None and listed == 0):
                return Recount(user_id, counted, listed, written=False)
            condition = "attribute_not_exists(#deleted) AND "
            values: dict[str, Any] = {":listed": {"N": str(listed)}}
            if counted is None:
                condition += "attribute_not_exists(#count)"
            else:
                condition += "#count = :counted"
                values[":counted"] = {"N": str(counted)}
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=keys.user_state_key(user_id),
                    UpdateExpression="SET #count = :listed",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#count": CHAT_COUNT, "#deleted": DELETED_AT},
                    ExpressionAttributeValues=values,
                )
            except errors.TRANSPORT_ERRORS as exc:
                if errors.code(exc) == "ConditionalCheckFailedException":
                    continue  # the count moved (or the account was deleted) since it was read: again
                raise
            return Recount(user_id, counted, listed, written=True)
        raise RuntimeError(f"the chat count of {user_id!r} kept changing during {RECOUNT_ATTEMPTS} recounts")

    def _count_list_entries(self, user_id: str) -> int:
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :entry)",
            "ExpressionAttributeValues": {
                ":pk": {"S": keys.user_pk(user_id)},
                ":entry": {"S": keys.CHAT_ENTRY_PREFIX},
            },
            "Select": "COUNT",
            "ConsistentRead": True,
        }
        total = 0
        while True:
            response = self.client.query(**params)
            total += int(response.get("Count", 0))
            start = response.get("LastEvaluatedKey")
            if start is None:
                return total
            params["ExclusiveStartKey"] = start
