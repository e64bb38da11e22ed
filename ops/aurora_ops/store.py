"""The operator-only reads of the single table: the functions never Scan, so these live outside the layer.

=====================  ==========================================================================================
operation              DynamoDB calls
=====================  ==========================================================================================
orphan scan            keys-only strongly consistent ``Scan`` pages (``PAGE_SIZE`` items, filtered to chat
                       partitions) + 1 consistent keys-only ``GetItem`` of the chat record per candidate
=====================  ==========================================================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aurora_chats.dal import keys
from aurora_chats.dal.cleanup import DynamoDBCleanupStore


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
