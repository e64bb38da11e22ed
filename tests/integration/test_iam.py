"""Least privilege (OWASP API8): each function's IAM actions in template.yaml are exactly what its code calls.

"What the code calls" is not a hand-written list: every scenario of each function (happy paths, replays, conflicts,
404s, 400s, continuations) runs on moto with botocore's ``before-parameter-build`` hook recording each AWS call, and
the calls are translated to the IAM actions that authorize them (a ``TransactWriteItems`` needs the action of each of
its entries: ``Put`` -> ``dynamodb:PutItem``...). The template must grant exactly those, on exactly the resources the
calls name (the table's ARN), with no wildcard anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aurora_local.intrinsics import Resolver
from aurora_local.template import load_template

from tests.support.api import Api
from tests.support.context import FakeContext
from tests.support.env import TABLE

TABLE_ARN = {"Fn::GetAtt": ["ChatsTable", "Arn"]}
# A second region's stack (ExistingTableName...): the same grants on the replica the primary stack created.
SECOND_REGION = {
    "ExistingTableName": "aurora-chats-prod-ChatsTable-1A2B3C",
    "ExistingTableStreamArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/aurora-chats-prod-ChatsTable-1A2B3C"
    "/stream/2026-12-01T00:00:00.000",
    "ExistingCursorSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:CursorSecret-AbCdEf",
}
EXISTING_TABLE_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${ExistingTableName}"
}


def decided(value: Any, overrides: dict[str, str] | None = None) -> Any:
    """A template value with its ``!If`` decided for a primary stack (defaults) or a second region's."""
    return Resolver(load_template(), TABLE, overrides=overrides or {}).decide(value)


TRANSACT_ENTRY_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Delete": "dynamodb:DeleteItem",
    "Update": "dynamodb:UpdateItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


class Grants:
    """IAM (action, resource) pairs needed by the recorded calls; resource is the table's ARN or a name."""

    def __init__(self) -> None:
        self.needed: set[tuple[str, str]] = set()

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.signing_name or model.service_model.endpoint_prefix
        if service == "scheduler":
            # CreateSchedule names its group (the schedule's own name is generated), and hands Scheduler a role:
            # IAM authorizes that hand-over as iam:PassRole on the role.
            self.needed.add((f"scheduler:{model.name}", f"schedule/{params['GroupName']}/*"))
            self.needed.add(("iam:PassRole", str(params["Target"]["RoleArn"])))
            return
        if service != "dynamodb":
            self.needed.add(
                (f"{service}:{model.name}", str(params.get("Entries", [{}])[0].get("EventBusName", "*")))
            )
            return
        if model.name == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((kind, body),) = entry.items()
                self.needed.add((TRANSACT_ENTRY_ACTIONS[kind], body["TableName"]))
        elif model.name in ("BatchWriteItem", "BatchGetItem"):
            for table in params["RequestItems"]:
                self.needed.add((f"dynamodb:{model.name}", table))
        else:
            self.needed.add((f"dynamodb:{model.name}", params["TableName"]))


@pytest.fixture
def grants(ddb: Any, characters: None) -> Iterator[Grants]:
    recorder = Grants()
    ddb.meta.events.register("before-parameter-build", recorder)
    yield recorder
    ddb.meta.events.unregister("before-parameter-build", recorder)


def _statement_lists(function: str) -> list[list[dict[str, Any]]]:
    """A function's inline policy statements: its SAM ``Policies``, or its own role's ``code-calls`` policy."""
    resources_ = load_template()["Resources"]
    properties = resources_[function]["Properties"]
    if "Role" in properties:
        role = resources_[properties["Role"]["Fn::GetAtt"][0]]["Properties"]
        return [p["PolicyDocument"]["Statement"] for p in role["Policies"] if p["PolicyName"] == "code-calls"]
    lists = []
    for policy in properties.get("Policies", []):
        assert set(policy) == {"Statement"}, f"{function}: only inline statements, not {policy}"
        lists.append(policy["Statement"])
    return lists


def granted(function: str, overrides: dict[str, str] | None = None) -> set[tuple[str, Any]]:
    """(action, resource) pairs of a function's inline policy statements, the template's ``!If`` decided with
    ``overrides`` (a primary stack without); anything else fails the test."""
    pairs: set[tuple[str, Any]] = set()
    for statements in _statement_lists(function):
        for statement in statements:
            assert statement["Effect"] == "Allow"
            assert "NotAction" not in statement and "NotResource" not in statement
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resource_value = decided(statement["Resource"], overrides)
            resources = resource_value if isinstance(resource_value, list) else [resource_value]
            for action in actions:
                for resource in resources:
                    resource = decided(resource, overrides)
                    assert "*" not in action, f"{function}: wildcard action {action}"
                    key = _resource_key(resource)
                    # The one wildcard allowed: the generated schedule name, inside this stack's own group.
                    assert resource != "*" and ("*" not in str(resource) or key == SCHEDULES), resource
                    pairs.add((action, key))
    return pairs


SCHEDULE_GROUP = "aurora-chats-test-continuations"
SCHEDULER_ROLE_ARN = "arn:aws:iam::123456789012:role/aurora-chats-test-scheduler"
SCHEDULES = "schedule/<UserDeletionScheduleGroup>/*"
SCHEDULER_ROLE = "<UserDeletionSchedulerRole>"


def _resource_key(resource: Any) -> str:
    if resource in (TABLE_ARN, EXISTING_TABLE_ARN):
        return "table"
    if resource == {"Fn::GetAtt": ["UserDeletionSchedulerRole", "Arn"]}:
        return SCHEDULER_ROLE
    if resource == {
        "Fn::Sub": "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/"
        "${UserDeletionScheduleGroup}/*"
    }:
        return SCHEDULES
    arn = resource.get("Fn::Sub") if isinstance(resource, dict) else resource
    if isinstance(arn, str) and arn.startswith(
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:"
    ):
        return arn.rsplit(":", 1)[1]  # this account's and region's event bus: "event-bus/<name>"
    return repr(resource)


def needed_by(grants: Grants) -> set[tuple[str, str]]:
    def resource_key(action: str, resource: str) -> str:
        if resource == TABLE:
            return "table"
        if resource == f"schedule/{SCHEDULE_GROUP}/*":
            return SCHEDULES
        if resource == SCHEDULER_ROLE_ARN:
            return SCHEDULER_ROLE
        return f"event-bus/{resource}" if action.startswith("events:") else resource

    return {(action, resource_key(action, resource)) for action, resource in grants.needed}


# ---------------------------------------------------------------- what each API function's scenarios call

Scenario = Callable[[Api], None]


def list_scenarios(api: Api) -> None:
    for _ in range(3):
        api.initialize(1001, user="bob")
    api.list(user="alice")
    cursor = api.list(user="bob", query="limit=1").json["nextCursor"]
    api.list(user="bob", query=f"limit=1&cursor={cursor}")
    api.list(user="bob", query="cursor=garbled")


def initialize_scenarios(api: Api) -> None:
    api.initialize(330905)  # new; character read, then cached
    api.initialize(1001, key="k")  # new, under a key
    api.initialize(1001, key="k")  # replay
    api.initialize(330905, key="k")  # same key, other character: 409
    api.initialize(424242)  # unknown character: 404
    chat = api.initialize(1002, key="gone").json["chatId"]
    api.delete(chat)
    api.initialize(1002, key="gone")  # the key's chat was deleted: a new chat replaces the stale record


def delete_scenarios(api: Api) -> None:
    chat = api.initialize(330905).json["chatId"]
    api.delete(chat)
    api.delete(chat)  # a repeat: the same 200 (the tombstone is read)
    api.delete(chat, user="bob")  # someone else's: 404
    api.delete(99)  # never existed: 404


SCENARIOS: dict[str, tuple[str, Scenario]] = {
    "ListChatsFunction": ("list_chats", list_scenarios),
    "InitializeChatFunction": ("initialize_chat", initialize_scenarios),
    "DeleteChatFunction": ("delete_chat", delete_scenarios),
}


@pytest.mark.parametrize("function", sorted(SCENARIOS))
def test_each_api_function_is_granted_exactly_what_its_code_calls(
    api: Api, grants: Grants, monkeypatch: pytest.MonkeyPatch, function: str
) -> None:
    from tests.support import api as api_client

    module_name, scenarios = SCENARIOS[function]
    # Record only the calls of this function's handler: the others' calls just set the scene.
    real = api_client.load_function

    def recording_only_for(name: str) -> Any:
        module = real(name)
        if name == module_name:
            return module
        return _Unrecorded(module, grants)

    monkeypatch.setattr(api_client, "load_function", recording_only_for)
    scenarios(api)
    assert needed_by(grants), "the scenarios made no AWS call at all"
    assert granted(function) == needed_by(grants)
    # A second region's stack grants the same actions, on the replica it is given instead of a table of its own.
    assert granted(function, SECOND_REGION) == needed_by(grants)


class _Unrecorded:
    """A function module whose handler's AWS calls are not attributed to the function under test."""

    def __init__(self, module: Any, grants: Grants) -> None:
        self._module, self._grants = module, grants

    def handler(self, event: dict[str, Any], context: Any) -> Any:
        saved = set(self._grants.needed)
        try:
            return self._module.handler(event, context)
        finally:
            self._grants.needed = saved


def test_the_read_only_function_cannot_write() -> None:
    actions = {action for action, _ in granted("ListChatsFunction")}
    assert actions == {"dynamodb:Query"}


def test_no_function_uses_a_broad_sam_policy_template_or_a_managed_policy() -> None:
    resources = load_template()["Resources"]
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for policy in resource["Properties"].get("Policies", []):
            assert isinstance(policy, dict) and set(policy) == {"Statement"}, f"{name}: {policy}"
        role = resource["Properties"].get("Role")
        if role is not None:  # its own role, defined here, used by no other function
            assert role == {"Fn::GetAtt": [role["Fn::GetAtt"][0], "Arn"]}
            assert resources[role["Fn::GetAtt"][0]]["Type"] == "AWS::IAM::Role"
            assert "Policies" not in resource["Properties"], f"{name}: SAM ignores Policies beside a Role"
            users = [n for n, r in resources.items() if (r.get("Properties") or {}).get("Role") == role]
            assert users == [name], f"a shared role would merge the grants: {users}"
            assert "ManagedPolicyArns" not in resources[role["Fn::GetAtt"][0]]["Properties"]


def test_the_cursor_secret_is_resolved_at_deploy_time_so_no_function_may_read_secrets() -> None:
    for name in SCENARIOS:
        assert not any(action.startswith("secretsmanager:") for action, _ in granted(name))


# ---------------------------------------------------------------- the cleanup function


def countdown(steps: int) -> FakeContext:
    """A Lambda context with time for a few steps of work, then less than the cleanup's reserve."""
    from aurora_chats.cleanup import DEFAULT_RESERVE_MS

    return FakeContext(
        DEFAULT_RESERVE_MS + steps * 1_000,
        step_ms=1_000,
        function_name="cleanup",
        request_id="cleanup-request",
    )


def test_the_cleanup_function_is_granted_exactly_what_its_code_calls(
    api: Api, ddb: Any, grants: Grants, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from aurora_chats.dal.client import (
        get_events_client,
        get_scheduler_client,
        reset_events_client,
        reset_scheduler_client,
    )
    from aurora_chats.dal.keys import CHAT_META_SK, chat_pk
    from aurora_chats.settings import reset_settings

    from tests.support import api as api_client
    from tests.support.aws import fake_response, inject, removed_chat_record, table_items
    from tests.support.loader import load_function

    cleanup = load_function("chat_cleanup")
    # The scene (API calls) is not the cleanup's: record only while the cleanup handler runs.
    keyed = api.initialize(330905, key="purge-me").json["chatId"]
    for _ in range(30):
        api.initialize(1001, user="bob")
    record = next(
        i for i in table_items(ddb) if (i["PK"]["S"], i["SK"]["S"]) == (chat_pk(keyed), CHAT_META_SK)
    )
    api.delete(keyed)
    reset_events_client()
    get_events_client().meta.events.register("before-parameter-build", grants)
    grants.needed.clear()
    monkeypatch.setattr(api_client, "load_function", load_function)

    purge = cleanup.handler({"Records": [removed_chat_record(record)]}, FakeContext(remaining_ms=300_000))
    assert purge == {"batchItemFailures": []}
    user_deleted = {
        "version": "0", "id": "1", "detail-type": "UserDeleted", "source": "aurora.users",
        "account": "123456789012", "time": "2026-11-27T09:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {"userId": "bob"},
    }  # fmt: skip
    result = cleanup.handler(user_deleted, countdown(steps=1))  # time for one group of 25 chats
    assert result["complete"] is False and result["continuation"] == 1  # it had to continue: PutEvents ran

    # DynamoDB keeps throttling a later round: it continues later through a one-shot schedule.
    monkeypatch.setenv("CONTINUATION_SCHEDULE_GROUP", SCHEDULE_GROUP)
    monkeypatch.setenv("CONTINUATION_ROLE_ARN", SCHEDULER_ROLE_ARN)
    monkeypatch.setenv("CONTINUATION_BUS_ARN", "arn:aws:events:us-east-1:123456789012:event-bus/default")
    reset_settings()
    reset_scheduler_client()
    boto3.client("scheduler", region_name="us-east-1").create_schedule_group(Name=SCHEDULE_GROUP)
    get_scheduler_client().meta.events.register("before-parameter-build", grants)
    throttling = {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}
    with inject(ddb, "Query", lambda params: fake_response(400, {"Error": throttling})):
        later = cleanup.handler(
            {**user_deleted, "detail": {"userId": "bob", "continuation": 1}}, countdown(steps=5)
        )
    assert later["complete"] is False and later["delayedSeconds"] == 60
    reset_events_client()
    reset_scheduler_client()
    assert granted("ChatCleanupFunction") == needed_by(grants)
    assert granted("ChatCleanupFunction", SECOND_REGION) == needed_by(grants)


@pytest.mark.parametrize("overrides", [None, SECOND_REGION], ids=["primary", "second-region"])
def test_the_cleanup_role_lets_lambda_read_only_this_tables_stream(overrides: dict[str, str] | None) -> None:
    """No AWSLambdaDynamoDBExecutionRole (stream reads on "*"): the service's grants are scoped one by one."""
    resources_ = load_template()["Resources"]
    role = resources_["ChatCleanupRole"]["Properties"]
    assert {p["PolicyName"] for p in role["Policies"]} == {"code-calls", "lambda-service"}
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    (service,) = [
        p["PolicyDocument"]["Statement"] for p in role["Policies"] if p["PolicyName"] == "lambda-service"
    ]
    pairs = set()
    for statement in service:
        assert statement["Effect"] == "Allow" and set(statement) == {"Effect", "Action", "Resource"}
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        targets = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        pairs |= {(a, str(decided(r, overrides))) for a in actions for r in targets}
    if overrides:  # a second region's stack: the streams of the table it is given (its replica has one)
        stream = str({"Fn::Sub": EXISTING_TABLE_ARN["Fn::Sub"] + "/stream/*"})
        streams = stream
    else:
        stream = str({"Fn::GetAtt": ["ChatsTable", "StreamArn"]})
        streams = str({"Fn::Sub": "${ChatsTable.Arn}/stream/*"})
    assert pairs == {
        ("dynamodb:DescribeStream", stream),
        ("dynamodb:GetRecords", stream),
        ("dynamodb:GetShardIterator", stream),
        ("dynamodb:ListStreams", streams),
        ("logs:CreateLogStream", str({"Fn::GetAtt": ["ChatCleanupLogGroup", "Arn"]})),
        ("logs:PutLogEvents", str({"Fn::GetAtt": ["ChatCleanupLogGroup", "Arn"]})),
        ("xray:PutTraceSegments", "*"),  # X-Ray supports no resource-level permissions
        ("xray:PutTelemetryRecords", "*"),
        ("sqs:SendMessage", str({"Fn::GetAtt": ["ChatCleanupStreamDLQ", "Arn"]})),
        ("sqs:SendMessage", str({"Fn::GetAtt": ["UserDeletedDLQ", "Arn"]})),
    }
