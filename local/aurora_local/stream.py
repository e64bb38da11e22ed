"""The table's DynamoDB stream pumped into the functions that ``template.yaml`` subscribes to it, as Lambda does.

For every function event of ``Type: DynamoDB`` whose ``Stream`` is the table's ``StreamArn``: poll the stream
(``dynamodbstreams`` API, four times a second per shard), shape records as the event source mapping sends them
(``eventSourceARN``, ``ApproximateCreationDateTime`` in epoch seconds, binary attributes base64), drop records that
match none of ``FilterCriteria``'s patterns, and invoke the function with up to ``BatchSize`` records
(``{"Records": [...]}``) once ``MaximumBatchingWindowInSeconds`` has passed or the batch is full, in order, one batch
at a time per shard; records older than ``MaximumRecordAgeInSeconds`` are dropped. A batch that raises is retried
whole (halved first with ``BisectBatchOnFunctionError``); with
``FunctionResponseTypes: [ReportBatchItemFailures]`` a ``batchItemFailures`` answer retries from the first failed
record (an identifier that is not in the batch fails the whole batch). Retries back off up to 5 s and stop after
``MaximumRetryAttempts`` (-1 or absent: forever, as for a stream in AWS); a discarded batch is logged (AWS would send
it to ``DestinationConfig.OnFailure``).
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from aurora_local.intrinsics import Resolver
from aurora_local.runtime import LocalFunction
from aurora_local.template import load_template, table_resource

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodbstreams.client import DynamoDBStreamsClient

POLL_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 5.0

log = Logger(service="aurora-local")

Matcher = Callable[[dict[str, Any], dict[str, Any]], bool]


def _matcher() -> Matcher | None:
    """``aurora_local.filters.matches`` (Lambda's event filtering rules), when that module is present."""
    try:
        module = importlib.import_module("aurora_local.filters")
    except ModuleNotFoundError:
        return None
    matches: Matcher = module.matches
    return matches


def lambda_shaped(value: Any) -> Any:
    """A boto3-parsed stream record as Lambda delivers it (JSON: epoch seconds, base64 binaries)."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: lambda_shaped(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [lambda_shaped(v) for v in value]
    return value


def first_failure(result: Any, batch: list[dict[str, Any]]) -> int | None:
    """Index of the record to retry from (0 = the whole batch), or ``None`` when the batch succeeded."""
    if not isinstance(result, dict) or not result.get("batchItemFailures"):
        return None
    positions = {record["dynamodb"]["SequenceNumber"]: i for i, record in enumerate(batch)}
    indexes: list[int] = []
    for failure in result["batchItemFailures"]:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if identifier not in positions:
            return 0
        indexes.append(positions[identifier])
    return min(indexes)


@dataclass
class Mapping:
    """One event source mapping: a function subscribed to the table's stream."""

    function: LocalFunction
    event_name: str
    batch_size: int
    batching_window: float
    starting_position: str
    patterns: list[dict[str, Any]]
    report_item_failures: bool
    bisect_on_error: bool
    max_retries: int
    max_record_age: int
    matcher: Matcher | None
    pending: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    read_up_to: dict[str, str | None] = field(default_factory=dict)  # shard -> last sequence number read
    waiting_since: dict[str, float] = field(default_factory=dict)
    attempts: int = 0
    batch_limit: int = 0

    @classmethod
    def from_event(cls, function: LocalFunction, name: str, props: dict[str, Any]) -> Mapping:
        patterns = []
        for entry in (props.get("FilterCriteria") or {}).get("Filters") or []:
            pattern = entry.get("Pattern")
            patterns.append(json.loads(pattern) if isinstance(pattern, str) else dict(pattern))
        matcher = _matcher()
        if patterns and matcher is None:
            log.warning("aurora_local.filters is missing: FilterCriteria not applied", function=function.name)
        batch_size = int(props.get("BatchSize", 100))
        return cls(
            function=function,
            event_name=name,
            batch_size=batch_size,
            batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            starting_position=str(props.get("StartingPosition", "TRIM_HORIZON")),
            patterns=patterns,
            report_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
            bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
            max_retries=int(props.get("MaximumRetryAttempts", -1)),
            max_record_age=int(props.get("MaximumRecordAgeInSeconds", -1)),
            matcher=matcher,
            batch_limit=batch_size,
        )

    def wanted(self, record: dict[str, Any]) -> bool:
        if not self.patterns or self.matcher is None:
            return True
        return any(self.matcher(pattern, record) for pattern in self.patterns)

    def add(self, shard: str, records: list[dict[str, Any]]) -> None:
        queue = self.pending.setdefault(shard, [])
        wanted = [record for record in records if self.wanted(record)]
        if wanted and not queue:
            self.waiting_since[shard] = time.monotonic()
        queue.extend(wanted)

    def _drop_old(self, queue: list[dict[str, Any]]) -> None:
        if self.max_record_age < 0:
            return
        oldest_allowed = time.time() - self.max_record_age
        old = 0
        while (
            old < len(queue) and queue[old]["dynamodb"].get("ApproximateCreationDateTime", 0) < oldest_allowed
        ):
            old += 1
        if old:
            log.error("stream records older than MaximumRecordAgeInSeconds discarded", records=old)
            del queue[:old]

    def process(self, shard: str, stop: threading.Event) -> None:
        """Invoke the function on the shard's pending records, batch by batch (backing off between retries)."""
        queue = self.pending.get(shard, [])
        if (
            queue
            and self.attempts == 0
            and len(queue) < self.batch_size
            and time.monotonic() - self.waiting_since.get(shard, 0.0) < self.batching_window
        ):
            return  # MaximumBatchingWindowInSeconds: wait for a fuller batch
        while queue and not stop.is_set():
            self._drop_old(queue)
            batch = queue[: self.batch_limit]
            if not batch:
                break
            try:
                result = self.function.invoke({"Records": batch})
                retry_from = first_failure(result, batch) if self.report_item_failures else None
            except Exception as exc:
                if stop.is_set():
                    return  # the runtime is stopping (the function refuses); the batch stays pending
                log.error(
                    "stream batch failed", function=self.function.name, records=len(batch), error=str(exc)
                )
                retry_from = 0
                if self.bisect_on_error and len(batch) > 1:
                    self.batch_limit = (len(batch) + 1) // 2
            if retry_from is None:
                del queue[: len(batch)]
                self.attempts = 0
                self.batch_limit = self.batch_size
                continue
            del queue[:retry_from]
            self.attempts += 1
            if 0 <= self.max_retries < self.attempts:
                log.error(
                    "stream batch discarded after retries (AWS: sent to the OnFailure destination)",
                    function=self.function.name,
                    records=len(batch) - retry_from,
                    firstSequenceNumber=queue[0]["dynamodb"]["SequenceNumber"],
                )
                del queue[: len(batch) - retry_from]
                self.attempts = 0
                self.batch_limit = self.batch_size
                continue
            log.warning("stream batch will be retried", function=self.function.name, attempt=self.attempts)
            stop.wait(min(MAX_BACKOFF_SECONDS, 0.2 * 2 ** (self.attempts - 1)))
        if not queue:
            self.waiting_since.pop(shard, None)


class StreamPump:
    """Polls the table's stream and feeds the subscribed functions; :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        functions: dict[str, LocalFunction],
        table_name: str,
        dynamodb: DynamoDBClient | None = None,
        streams: DynamoDBStreamsClient | None = None,
    ) -> None:
        import boto3

        self.table_name = table_name
        self.dynamodb = dynamodb or boto3.client("dynamodb")
        endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODBSTREAMS") or os.environ.get(
            "AWS_ENDPOINT_URL_DYNAMODB"
        )
        self.streams = streams or boto3.client("dynamodbstreams", endpoint_url=endpoint)
        table_logical_id, _ = table_resource()
        # `Stream: !If [UseExistingTable, ..., !GetAtt ChatsTable.StreamArn]`: decided with the local parameters.
        decide = Resolver(load_template(), table_name).decide
        self.mappings: list[Mapping] = []
        for function in functions.values():
            for name, props in function.spec.events_of_type("DynamoDB").items():
                stream = decide(props.get("Stream"))
                if stream != {"Fn::GetAtt": [table_logical_id, "StreamArn"]}:
                    log.warning(
                        "stream not emulated (only the table's own)", function=function.name, event=name
                    )
                    continue
                if props.get("Enabled", True) is False:
                    continue
                self.mappings.append(Mapping.from_event(function, name, props))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for mapping in self.mappings:
            thread = threading.Thread(
                target=self._run, args=(mapping,), name=f"stream-{mapping.function.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling and invoking; wait up to ``timeout`` seconds in all (0: only ask) for the threads to end."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self, mapping: Mapping) -> None:
        while not self._stop.is_set():
            try:
                self._pump(mapping)
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("stream pump error; restarting in 1 s", function=mapping.function.name)
                self._stop.wait(1.0)

    def _pump(self, mapping: Mapping) -> None:
        """Poll the stream until stopped; after an error it resumes after the last record read (no replay)."""
        stream_arn = self.dynamodb.describe_table(TableName=self.table_name)["Table"]["LatestStreamArn"]
        iterators: dict[str, str] = {}
        while not self._stop.is_set():
            if not iterators:
                description = self.streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]
                first_discovery = not mapping.read_up_to
                for shard in description.get("Shards", []):
                    shard_id = shard["ShardId"]
                    if shard_id in mapping.read_up_to and mapping.read_up_to[shard_id] is None:
                        continue  # a closed shard, read to its end
                    after = mapping.read_up_to.get(shard_id)
                    if after:
                        request: dict[str, Any] = {
                            "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                            "SequenceNumber": after,
                        }
                    elif first_discovery and mapping.starting_position == "LATEST":
                        request = {"ShardIteratorType": "LATEST"}
                    else:
                        request = {"ShardIteratorType": "TRIM_HORIZON"}
                    iterators[shard_id] = self.streams.get_shard_iterator(
                        StreamArn=stream_arn, ShardId=shard_id, **request
                    )["ShardIterator"]
                    mapping.read_up_to.setdefault(shard_id, "")
            for shard_id, iterator in list(iterators.items()):
                page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                records = [
                    {**lambda_shaped(record), "eventSourceARN": stream_arn}
                    for record in page.get("Records", [])
                ]
                if records:
                    mapping.read_up_to[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
                mapping.add(shard_id, records)
                mapping.process(shard_id, self._stop)
                next_iterator = page.get("NextShardIterator")
                if next_iterator and not records:
                    next_iterator = self._reopen(stream_arn, shard_id, mapping) or next_iterator
                if next_iterator:
                    iterators[shard_id] = next_iterator
                else:
                    del iterators[shard_id]
                    mapping.read_up_to[shard_id] = None
            self._stop.wait(POLL_SECONDS)

    def _reopen(self, stream_arn: str, shard_id: str, mapping: Mapping) -> str | None:
        """A fresh iterator for an idle shard, right after the last record read (or at its trim horizon).

        moto (the embedded DynamoDB) rolls back a cancelled ``TransactWriteItems`` - e.g. a delete whose
        ``ConditionExpression`` fails, a 404 - by swapping the table for a copy made before it, stream shard included:
        an iterator taken before keeps reading the orphaned shard and never sees another record, so every later purge
        silently stopped. In AWS a new iterator after the same sequence number reads exactly what the old one would.
        """
        after = mapping.read_up_to.get(shard_id)
        if after:
            request: dict[str, Any] = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
        elif mapping.starting_position == "TRIM_HORIZON":
            request = {"ShardIteratorType": "TRIM_HORIZON"}
        else:
            # LATEST and nothing read yet: keep the iterator (a new one would skip what came since).
            return None
        iterator: str = self.streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id, **request)[
            "ShardIterator"
        ]
        return iterator
