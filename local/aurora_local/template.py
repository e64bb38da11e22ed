"""Reads ``template.yaml`` so tests and the local runtime build exactly what CloudFormation would.

CloudFormation short-form tags (``!Ref``, ``!GetAtt``, ``!Sub``...) become ``{"Ref": ...}`` / ``{"Fn::X": ...}``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    pass


def _construct(tag: str) -> Any:
    # `!Ref` and `!Condition` are the two short forms without the `Fn::` prefix in their long form.
    name = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return construct


for _tag in (
    "Ref", "GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or",
    "FindInMap", "ImportValue", "Base64", "Cidr", "GetAZs", "Condition",
):  # fmt: skip
    _CfnLoader.add_constructor(f"!{_tag}", _construct(_tag))


@lru_cache(maxsize=4)
def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return data


def resources(of_type: str | None = None, path: Path = TEMPLATE) -> dict[str, dict[str, Any]]:
    all_resources: dict[str, dict[str, Any]] = load_template(path)["Resources"]
    return {k: v for k, v in all_resources.items() if of_type is None or v["Type"] == of_type}


# A plain table, or a global table (its replicas are per-region settings: one local table stands for this region's).
TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")


def table_resource(path: Path = TEMPLATE) -> tuple[str, dict[str, Any]]:
    """The template's one table, ``AWS::DynamoDB::Table`` or ``AWS::DynamoDB::GlobalTable``: (logical id, properties).

    Both shapes share what a local table is built from (keys, billing, stream, TTL, indexes); a global table's
    ``Replicas`` (regions, point-in-time recovery, tags) have no local meaning and are read by the tests only."""
    tables = {name: r for name, r in resources(path=path).items() if r["Type"] in TABLE_TYPES}
    if len(tables) != 1:
        raise ValueError(f"expected exactly one DynamoDB table in {path}, found {len(tables)}")
    ((name, resource),) = tables.items()
    return name, resource["Properties"]


def create_table(client: DynamoDBClient, table_name: str, path: Path = TEMPLATE) -> None:
    """Create ``table_name`` with the key schema, billing, stream and TTL of the template's table (either shape)."""
    _, props = table_resource(path)
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if "StreamSpecification" in props:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if index_kind in props:
            kwargs[index_kind] = props[index_kind]
    client.create_table(**kwargs)
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )
