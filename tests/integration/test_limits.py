"""Real DynamoDB limits that moto does not enforce: the guard in conftest must catch them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.aws import CallLog, DynamoDBLimitExceeded
from tests.support.env import TABLE


def test_batch_write_of_more_than_25_items_is_caught(ddb: Any, calls: CallLog) -> None:
    requests = [{"PutRequest": {"Item": {"PK": {"S": f"X#{i}"}, "SK": {"S": "Y"}}}} for i in range(26)]
    with pytest.raises(DynamoDBLimitExceeded):
        ddb.batch_write_item(RequestItems={TABLE: requests})
    ddb.batch_write_item(RequestItems={TABLE: requests[:25]})


def test_transaction_of_more_than_100_items_or_the_same_item_twice_is_caught(
    ddb: Any, calls: CallLog
) -> None:
    put = [
        {"Put": {"TableName": TABLE, "Item": {"PK": {"S": f"X#{i}"}, "SK": {"S": "Y"}}}} for i in range(101)
    ]
    with pytest.raises(DynamoDBLimitExceeded):
        ddb.transact_write_items(TransactItems=put)
    with pytest.raises(DynamoDBLimitExceeded):
        ddb.transact_write_items(TransactItems=[put[0], put[0]])
