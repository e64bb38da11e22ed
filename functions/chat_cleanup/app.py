"""ChatCleanupFunction: purges removed chats (table stream) and deletes user accounts (EventBridge). Entry point only.

Stream batches report failed or out-of-time records in ``batchItemFailures``; user deletions re-publish unfinished
work; anything else raises (async retries, then the DLQ). Why one function: :mod:`aurora_chats.cleanup`.
"""

from __future__ import annotations

from typing import Any

from aurora_chats.cleanup import (
    OutOfTime,
    PurgeScope,
    TimeBudget,
    UserDeletedEvent,
    delete_user_account,
    follow_user_state_change,
    purge_removed_chat,
)
from aurora_chats.dal.cleanup import (
    DynamoDBCleanupStore,
    EventBridgeContinuation,
    is_chat_removal,
    removed_chat,
    user_state_change,
)
from aurora_chats.observability import lambda_handler, logger
from aurora_chats.settings import get_settings
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


def record_handler(record: DynamoDBRecord, lambda_context: LambdaContext) -> int:
    settings = get_settings()
    if not is_chat_removal(record.raw_event):
        change = user_state_change(record.raw_event)
        if change is not None:  # a deletion marker written, replicated or lost (global table)
            follow_user_state_change(EventBridgeContinuation(), change, settings.id_region)
            return 0
        # the event source's filters drop anything else; a wider one must not fail
        logger.debug("ignored stream record", extra={"eventName": record.get("eventName")})
        return 0
    budget = TimeBudget(lambda_context.get_remaining_time_in_millis)
    scope = PurgeScope(settings.id_region, settings.purge_own_region_only)
    result = purge_removed_chat(DynamoDBCleanupStore(), removed_chat(record.raw_event), budget, scope)
    if not result.complete:
        raise OutOfTime(f"chat {result.chat_id}: time budget reached, continues in the next invocation")
    return result.items_deleted


@lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return dict(process_partial_response(event, record_handler, processor, context))
    if "detail-type" not in event:
        raise ValueError(
            "unsupported event: expected a DynamoDB stream batch or a UserDeleted EventBridge event"
        )
    budget = TimeBudget(context.get_remaining_time_in_millis)
    user_event = UserDeletedEvent.model_validate(event)
    return delete_user_account(
        DynamoDBCleanupStore(), EventBridgeContinuation(), user_event, budget
    ).summary()
