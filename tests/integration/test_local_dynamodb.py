"""The embedded DynamoDB's item-level transaction rollback (aurora_local.dynamodb.item_level_transaction_rollback)
gives exactly moto's answers and state: the same transactions, run on moto's own table-copying rollback and on the
item-level one, leave the same items, the same stream records and raise the same errors."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from aurora_local.dynamodb import item_level_transaction_rollback
from botocore.exceptions import ClientError
from moto import mock_aws

TABLE = "rollback"


@contextmanager
def moto_rollback(item_level: bool) -> Iterator[None]:
    """Run with the item-level rollback installed, or with moto's own (the original method)."""
    from moto.dynamodb.models import DynamoDBBackend

    item_level_transaction_rollback()
    installed = DynamoDBBackend.transact_write_items
    if not item_level:
        DynamoDBBackend.transact_write_items = installed.moto_transact_write_items  # type: ignore[attr-defined,method-assign]
    try:
        yield
    finally:
        DynamoDBBackend.transact_write_items = installed  # type: ignore[method-assign]


def _table(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for pk, sk, n in (("U#a", "STATE", "1"), ("U#a", "CHAT#1", "0"), ("C#1", "META", "0")):
        client.put_item(TableName=TABLE, Item={"PK": {"S": pk}, "SK": {"S": sk}, "n": {"N": n}})


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def _put(pk: str, sk: str, **extra: Any) -> dict[str, Any]:
    return {"Put": {"TableName": TABLE, "Item": {**_key(pk, sk), "n": {"N": "7"}}, **extra}}


def _update(pk: str, sk: str, condition: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "TableName": TABLE,
        "Key": _key(pk, sk),
        "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    if condition:
        op["ConditionExpression"] = condition
    return {"Update": op}


def _delete(pk: str, sk: str, condition: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": TABLE, "Key": _key(pk, sk)}
    if condition:
        op["ConditionExpression"] = condition
    return {"Delete": op}


def _check(pk: str, sk: str, condition: str) -> dict[str, Any]:
    return {"ConditionCheck": {"TableName": TABLE, "Key": _key(pk, sk), "ConditionExpression": condition}}


# Each a transaction as the service sends them: committed, cancelled by a late condition after earlier entries
# wrote (put, update, delete - each must be undone), cancelled with ALL_OLD, refused for naming one item twice.
TRANSACTIONS: list[list[dict[str, Any]]] = [
    [_put("U#a", "CHAT#2"), _update("U#a", "STATE"), _put("C#2", "META")],
    [
        _put("U#a", "CHAT#3"),
        _update("U#a", "STATE"),
        _delete("C#1", "META"),
        _check("U#a", "NOPE", "attribute_exists(PK)"),
    ],
    [
        _put(
            "U#a",
            "CHAT#1",
            ConditionExpression="attribute_not_exists(PK)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        _update("U#a", "STATE"),
    ],
    [_update("U#a", "STATE"), _put("U#a", "CHAT#9"), _update("U#a", "CHAT#9")],
    [_delete("U#a", "CHAT#1"), _update("U#a", "STATE", "n < :one")],
    [_delete("U#a", "CHAT#2", "attribute_exists(PK)"), _update("U#a", "STATE"), _delete("C#2", "META")],
]


def _run(item_level: bool) -> list[Any]:
    """Every transaction's outcome, then the table's items and its stream's records, on a fresh moto."""
    outcomes: list[Any] = []
    with mock_aws(), moto_rollback(item_level):
        client: Any = boto3.client("dynamodb", region_name="us-east-1")
        _table(client)
        for transaction in TRANSACTIONS:
            try:
                client.transact_write_items(TransactItems=copy.deepcopy(transaction))
                outcomes.append("committed")
            except ClientError as exc:
                outcomes.append((exc.response["Error"]["Code"], exc.response.get("CancellationReasons")))
            outcomes.append(sorted(map(str, client.scan(TableName=TABLE, ConsistentRead=True)["Items"])))
        streams = boto3.client(
            "dynamodbstreams",
            region_name="us-east-1",
            endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com",  # moto's streams endpoint
        )
        arn = client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
        outcomes.append(
            [
                (r["eventName"], str(r["dynamodb"].get("Keys")), str(r["dynamodb"].get("NewImage")))
                for r in records
            ]
        )
    return outcomes


def test_the_item_level_rollback_gives_moto_s_answers_items_and_stream_records() -> None:
    theirs, ours = _run(item_level=False), _run(item_level=True)
    assert ours == theirs
    # and the scenarios do what they are for: some commit, some are cancelled, one is refused outright
    codes = [o if o == "committed" else o[0] for o in ours[: 2 * len(TRANSACTIONS) : 2]]
    assert codes.count("committed") == 2 and codes.count("TransactionCanceledException") == 3
    assert "ValidationException" in codes


def test_a_transaction_copies_the_items_it_touches_not_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.table import Table

    copied: list[type] = []
    real = copy.deepcopy

    def counting(value: Any, memo: Any = None) -> Any:
        copied.append(type(value))
        return real(value, memo)

    with mock_aws(), moto_rollback(item_level=True):
        client: Any = boto3.client("dynamodb", region_name="us-east-1")
        _table(client)
        monkeypatch.setattr(copy, "deepcopy", counting)
        with pytest.raises(ClientError):
            client.transact_write_items(TransactItems=TRANSACTIONS[1])
        client.transact_write_items(TransactItems=[_put("U#b", "CHAT#1"), _update("U#b", "STATE")])
    assert copied and Table not in copied
