"""ChatCleanupFunction: purges removed chats (table stream) and deletes user accounts (EventBridge). Entry point only.

One ``handler`` serves both triggers and dispatches on the event's shape: a stream batch has ``Records``, an
EventBridge event has ``detail-type``. One function keeps one IAM role, one set of alarms and one deployment for
what is one job (delete a chat's data), and the UserDeleted path deliberately feeds the stream path.

* Stream batch → Powertools ``BatchProcessor`` + ``process_partial_response``: a record that fails, or that the
  time budget stopped (``OutOfTime``), is reported in ``batchItemFailures``; Lambda resumes from it. A batch whose
  records all failed is reported the same way, not raised: continuing a long purge is routine and must not count
  as a function error (the ``Errors`` alarm is for real crashes; records that exhaust their retries reach the DLQ).
* ``UserDeleted`` / ``UserDeletionContinued`` → validated with a pydantic ``EventBridgeModel``; unfinished work is
  re-published (see :mod:`aurora_chats.cleanup`). Anything else raises: Lambda's async retries, then the DLQ.
"""

from __future__ import annotations

from typing import Any

from aurora_chats.cleanup import (
    OutOfTime,
    TimeBudget,
    UserDeletedEvent,
    delete_user_account,
    purge_chat,
)
from aurora_chats.dal.cleanup import (
    DynamoDBCleanupStore,
    EventBridgeContinuation,
    is_chat_removal,
    removed_chat,
)
from aurora_chats.observability import logger, metrics, tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


def record_handler(record: DynamoDBRecord, lambda_context: LambdaContext) -> int:
    if not is_chat_removal(record.raw_event):
        # The event source's filter already drops these; a widened filter must not make them fail.
        logger.debug("ignored stream record", extra={"eventName": record.get("eventName")})
        return 0
    budget = TimeBudget(lambda_context.get_remaining_time_in_millis)
    result = purge_chat(DynamoDBCleanupStore(), removed_chat(record.raw_event), budget)
    if not result.complete:
        raise OutOfTime(f"chat {result.chat_id}: time budget reached, continues in the next invocation")
    return result.items_deleted


@logger.inject_lambda_context(clear_state=True, log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return dict(process_partial_response(event, record_handler, processor, context))
    if "detail-type" in event:
        budget = TimeBudget(context.get_remaining_time_in_millis)
        user_event = UserDeletedEvent.model_validate(event)
        result = delete_user_account(DynamoDBCleanupStore(), EventBridgeContinuation(), user_event, budget)
        return {
            "userId": result.user_id,
            "complete": result.complete,
            "chatsDeleted": result.chats_deleted,
            "continuation": result.continued_in_round,
        }
    raise ValueError("unsupported event: expected a DynamoDB stream batch or a UserDeleted EventBridge event")
