"""The SAM template: valid, linted, buildable, and shaped as DESIGN.md says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aurora_local.intrinsics import Resolver, region
from aurora_local.template import load_template, resources, table_resource

from tests.support.env import ROOT

# `uv run` tells its children where it is (UV); a `uv` found on PATH may be a shim that fails.
UV = os.environ.get("UV") or str(ROOT / ".tools" / "bin" / "uv")


def test_functions_run_python313_on_arm64_with_tracing() -> None:
    globals_ = load_template()["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Tracing"] == "Active"
    env = globals_["Environment"]["Variables"]
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= set(env)


def test_every_api_function_has_its_route_and_no_wildcard_permissions() -> None:
    functions = resources("AWS::Serverless::Function")
    routes = {
        (e["Properties"]["Method"], e["Properties"]["Path"]): name
        for name, fn in functions.items()
        for e in fn["Properties"].get("Events", {}).values()
        if e["Type"] == "HttpApi"
    }
    assert routes == {
        ("GET", "/chats"): "ListChatsFunction",
        ("GET", "/chats/pages"): "ListChatsFunction",
        ("POST", "/characters/{characterId}/chats"): "InitializeChatFunction",
        ("DELETE", "/chats/{chatId}"): "DeleteChatFunction",
    }
    for fn in functions.values():
        for policy in fn["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []):
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                assert all("*" not in a and a != "dynamodb:Scan" for a in actions)


def test_list_function_can_only_read() -> None:
    policies = resources()["ListChatsFunction"]["Properties"]["Policies"]
    actions = {
        a
        for p in policies
        for s in p["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {"dynamodb:Query"}


def test_layer_requirements_are_exported_from_the_lock() -> None:
    exported = subprocess.run(
        [UV, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--format", "requirements-txt"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    committed = (ROOT / "shared" / "requirements.txt").read_text()

    def strip(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("#")]

    assert strip(exported) == strip(committed), "run `make lock` and commit shared/requirements.txt"


def _sam(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    python313 = Path(sys.executable).resolve()
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": f"{python313.parent}:{os.environ['PATH']}"}
    base = os.environ.get("PYTHON313") or next(
        iter(sorted(Path("/root/.pyenv/versions").glob("3.13*/bin/python3.13"))), None
    )
    cmd = [UV, "tool", "run", "--python", str(base or "3.13"), "--from", "aws-sam-cli==1.170.0", "sam", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_sam_validate_lint_passes() -> None:
    result = _sam("validate", "--lint", "--region", "us-east-1")
    assert result.returncode == 0, result.stdout + result.stderr


# `sam build` (arm64 and x86_64) and the built artifact are tested in tests/integration/test_smoke_build.py.


# ---------------------------------------------------------------- the table: one region or a global table


def _table(replica_region: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The table's properties with ``ReplicaRegion`` set as a deploy would, and its replicas with the ``!If``
    decided (``!Ref AWS::NoValue`` dropped) - what CloudFormation would create."""
    _, props = table_resource()
    resolver = Resolver(load_template(), "t", overrides={"ReplicaRegion": replica_region})
    replicas: list[dict[str, Any]] = resolver.resolve_tree(props["Replicas"])
    return props, replicas


def test_the_table_is_a_global_table_of_one_replica_without_replica_region_and_two_with_it() -> None:
    assert resources()["ChatsTable"]["Type"] == "AWS::DynamoDB::GlobalTable"
    _, one = _table("")
    assert [r["Region"] for r in one] == [region()]
    _, two = _table("eu-west-1")
    assert [r["Region"] for r in two] == [region(), "eu-west-1"]
    for replicas in (one, two):
        assert all(
            r["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True} for r in replicas
        )


def test_the_global_table_keeps_stream_ttl_encryption_billing_and_retention() -> None:
    props, _ = _table("eu-west-1")
    table = resources()["ChatsTable"]
    assert props["StreamSpecification"] == {
        "StreamViewType": "NEW_AND_OLD_IMAGES"
    }  # replicas require a stream
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_replica_region_accepts_region_names_or_nothing() -> None:
    pattern = re.compile(load_template()["Parameters"]["ReplicaRegion"]["AllowedPattern"])
    for good in ("", "eu-west-1", "us-east-2", "ap-southeast-2", "us-gov-west-1", "cn-northwest-1"):
        assert pattern.fullmatch(good), good
    for bad in ("EU-WEST-1", "eu-west", "eu-west-1 ", "eu-west-1,us-east-1", "europe"):
        assert not pattern.fullmatch(bad), bad


def test_table_resource_reads_the_plain_table_shape_too(tmp_path: Path) -> None:
    template = load_template()
    plain = {**template["Resources"]["ChatsTable"], "Type": "AWS::DynamoDB::Table"}
    plain["Properties"] = {k: v for k, v in plain["Properties"].items() if k != "Replicas"}
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump({"Resources": {"Table": plain}}), encoding="utf-8")
    name, props = table_resource(path)
    assert (
        name == "Table"
        and props["KeySchema"] == template["Resources"]["ChatsTable"]["Properties"]["KeySchema"]
    )
    two = tmp_path / "two-tables.yaml"  # another path: templates are cached by path
    two.write_text(yaml.safe_dump({"Resources": {"A": plain, "B": plain}}), encoding="utf-8")
    with pytest.raises(ValueError, match="exactly one DynamoDB table"):
        table_resource(two)


# ---------------------------------------------------------------- a second region's stack on the same global table

SECOND_REGION = {
    "IdRegion": "1",
    "ExistingTableName": "aurora-chats-prod-ChatsTable-1A2B3C",
    "ExistingTableStreamArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/aurora-chats-prod-ChatsTable-1A2B3C"
    "/stream/2026-12-01T00:00:00.000",
    "ExistingCursorSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:CursorSecret-AbCdEf",
}


def _stack(overrides: dict[str, str]) -> tuple[Resolver, dict[str, dict[str, Any]]]:
    """The resources CloudFormation would create with these parameters (resource ``Condition`` decided)."""
    resolver = Resolver(load_template(), "t", overrides=overrides)
    created = {
        name: r
        for name, r in load_template()["Resources"].items()
        if "Condition" not in r or resolver.condition(r["Condition"])
    }
    return resolver, created


def _references(value: Any, resolver: Resolver) -> set[str]:
    """Logical ids a value refers to (``Ref``, ``GetAtt``, ``Sub``), with every ``Fn::If`` decided as deployed."""
    value = resolver.decide(value)
    if isinstance(value, list):
        return set().union(*(_references(v, resolver) for v in value)) if value else set()
    if not isinstance(value, dict):
        return set()
    found: set[str] = set()
    for kind, arg in value.items():
        if kind == "Ref":
            found.add(str(arg))
        elif kind == "Fn::GetAtt":
            found.add(str(arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]))
        elif kind == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            found |= {m.split(".", 1)[0] for m in re.findall(r"\$\{([^}!]+)\}", str(text))} - set(variables)
            found |= _references(variables, resolver)
        else:
            found |= _references(arg, resolver)
    return found


@pytest.mark.parametrize("overrides", [{}, {"ReplicaRegion": "eu-west-1"}, SECOND_REGION])
def test_every_reference_names_a_resource_the_stack_creates_or_a_parameter(overrides: dict[str, str]) -> None:
    resolver, created = _stack(overrides)
    template = load_template()
    known = set(created) | set(template["Parameters"]) | {f"AWS::{p}" for p in (
        "Region", "AccountId", "Partition", "URLSuffix", "StackName", "NoValue", "StackId"
    )}  # fmt: skip
    # What SAM generates from a function: its role, and one resource per event (the EventBridge rules...).
    for name, resource in created.items():
        if resource["Type"] == "AWS::Serverless::Function":
            known |= {f"{name}Role"} | {
                f"{name}{event}" for event in resource["Properties"].get("Events", {})
            }
    for name, resource in created.items():
        missing = _references(resource.get("Properties", {}), resolver) - known
        assert not missing, f"{name} refers to {missing}, which this stack does not create"
    for name, output in template["Outputs"].items():
        missing = _references(output["Value"], resolver) - known - {"ChatsApi"}
        assert not missing, f"output {name} refers to {missing}"


def test_a_second_region_stack_runs_the_functions_on_the_existing_replica() -> None:
    resolver, created = _stack(SECOND_REGION)
    assert "ChatsTable" not in created and "CursorSecret" not in created
    env = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert resolver.resolve(env["TABLE_NAME"]) == SECOND_REGION["ExistingTableName"]
    assert resolver.decide(env["CURSOR_SECRET"]) == {
        "Fn::Sub": "{{resolve:secretsmanager:${ExistingCursorSecretArn}:SecretString}}"
    }
    cleanup = created["ChatCleanupFunction"]["Properties"]
    stream = cleanup["Events"]["ChatRemoved"]["Properties"]["Stream"]
    assert resolver.resolve(stream) == SECOND_REGION["ExistingTableStreamArn"]
    assert resolver.resolve(cleanup["Environment"]["Variables"]["PURGE_OWN_REGION_ONLY"]) == "true"
    outputs = load_template()["Outputs"]
    assert resolver.resolve(outputs["ChatsTableName"]["Value"]) == SECOND_REGION["ExistingTableName"]
    assert (
        resolver.resolve(outputs["ChatsTableStreamArn"]["Value"]) == SECOND_REGION["ExistingTableStreamArn"]
    )


@pytest.mark.parametrize(
    ("overrides", "purge_own_region_only", "secret_replicas"),
    [({}, "false", None), ({"ReplicaRegion": "eu-west-1"}, "true", [{"Region": "eu-west-1"}])],
    ids=["one-region", "primary-with-replica"],
)
def test_the_primary_stack_owns_the_table_and_replicates_the_cursor_secret(
    overrides: dict[str, str], purge_own_region_only: str, secret_replicas: Any
) -> None:
    resolver, created = _stack(overrides)
    assert {"ChatsTable", "CursorSecret"} <= set(created)
    secret = resolver.resolve_tree(created["CursorSecret"]["Properties"])
    assert secret.get("ReplicaRegions") == secret_replicas
    cleanup = created["ChatCleanupFunction"]["Properties"]
    assert (
        resolver.resolve(cleanup["Environment"]["Variables"]["PURGE_OWN_REGION_ONLY"])
        == purge_own_region_only
    )


def _rules_hold(overrides: dict[str, str]) -> bool:
    resolver = Resolver(load_template(), "t", overrides=overrides)
    for rule in load_template()["Rules"].values():
        if "RuleCondition" in rule and not resolver.holds(rule["RuleCondition"]):
            continue
        if not all(resolver.holds(a["Assert"]) for a in rule["Assertions"]):
            return False
    return True


def test_the_rules_accept_a_primary_or_a_complete_second_region_stack_and_nothing_in_between() -> None:
    assert _rules_hold({})
    assert _rules_hold({"ReplicaRegion": "eu-west-1"})
    assert _rules_hold(SECOND_REGION)
    for missing in ("ExistingTableStreamArn", "ExistingCursorSecretArn"):
        assert not _rules_hold({**SECOND_REGION, missing: ""}), missing
    assert not _rules_hold({"ExistingTableStreamArn": SECOND_REGION["ExistingTableStreamArn"]})
    assert not _rules_hold({**SECOND_REGION, "ReplicaRegion": "us-east-1"})  # a replica of a replica


def test_the_second_region_parameters_accept_real_arns_and_refuse_others() -> None:
    parameters = load_template()["Parameters"]
    for name, good, bad in (
        ("ExistingTableName", SECOND_REGION["ExistingTableName"], "a b"),
        (
            "ExistingTableStreamArn",
            SECOND_REGION["ExistingTableStreamArn"],
            "arn:aws:dynamodb:eu-west-1:1:table/x",
        ),
        ("ExistingCursorSecretArn", SECOND_REGION["ExistingCursorSecretArn"], "CursorSecret"),
    ):
        pattern = re.compile(parameters[name]["AllowedPattern"])
        assert pattern.fullmatch("") and pattern.fullmatch(good), name
        assert not pattern.fullmatch(bad), (name, bad)


def _with_defaults(path: Path, values: dict[str, str]) -> Path:
    """A copy of template.yaml whose parameters default to ``values``: what cfn-lint and SAM's translator see of
    a stack deployed with them (neither takes parameter values)."""
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    for name, value in values.items():
        pattern = re.compile(rf"(\n  {name}:\n    Type: \w+\n    Default: )[^\n]*")
        text, count = pattern.subn(rf'\g<1>"{value}"', text)  # the values hold no backslash
        assert count == 1, name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "values", [{"ReplicaRegion": "eu-west-1"}, SECOND_REGION], ids=["primary-with-replica", "second-region"]
)
def test_sam_validates_and_lints_the_global_table_stacks(tmp_path: Path, values: dict[str, str]) -> None:
    template = _with_defaults(tmp_path / "template.yaml", values)
    assert Resolver(load_template(template), "t").condition("UseExistingTable") is (
        "ExistingTableName" in values
    )
    for args in (("validate", "--lint"), ("validate",)):  # cfn-lint, then SAM's own translation
        result = _sam(*args, "--template-file", str(template), "--region", "eu-west-1")
        assert result.returncode == 0, result.stdout + result.stderr
