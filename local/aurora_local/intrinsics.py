"""``template.yaml``'s values as the local stack sees them: CloudFormation intrinsics (``!Ref``, ``!GetAtt``, ``!Sub``,
pseudo parameters) resolved for a local table and region, and the stand-ins for values that only exist in AWS.

Pure reading of the template: what runs the functions is :mod:`aurora_local.runtime`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aurora_local.template import TEMPLATE, table_resource

LOCAL_TABLE_NAME = "aurora-chats-local"
ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class Unresolvable(Exception):
    """A template value that only exists in AWS (dynamic references, attributes of resources we do not run)."""


def local_table_name() -> str:
    return os.environ.get("LOCAL_TABLE_NAME") or LOCAL_TABLE_NAME


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


@dataclass
class Resolver:
    """Resolves CloudFormation intrinsics for the local stack."""

    template: dict[str, Any]
    table_name: str
    path: Path = TEMPLATE
    overrides: dict[str, str] = field(default_factory=dict)  # parameter values, as `--parameter-overrides`

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": region(),
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": "aurora-chats-local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": "",
        }
        if name in pseudo:
            return pseudo[name]
        parameters = self.template.get("Parameters") or {}
        if name in self.overrides and name in parameters:
            return self.overrides[name]
        if name in parameters:
            default = parameters[name].get("Default")
            if default is None:
                raise Unresolvable(f"parameter {name} has no Default")
            return ",".join(map(str, default)) if isinstance(default, list) else str(default)
        table_logical_id, _ = table_resource(self.path)
        if name == table_logical_id:
            return self.table_name
        raise Unresolvable(f"!Ref {name}")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        table_logical_id, _ = table_resource(self.path)
        if logical_id == table_logical_id and attribute == "Arn":
            return f"arn:aws:dynamodb:{region()}:{ACCOUNT_ID}:table/{self.table_name}"
        raise Unresolvable(f"!GetAtt {logical_id}.{attribute}")

    def condition(self, name: str) -> bool:
        """The value of one of the template's ``Conditions`` with the current parameters."""
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise Unresolvable(f"condition {name}")
        return self._evaluate(conditions[name])

    def holds(self, expression: Any) -> bool:
        """A condition expression (``Fn::Equals`` / ``Not`` / ``And`` / ``Or`` / ``Condition``), as in ``Conditions``
        and in ``Rules`` assertions, with the current parameters."""
        return self._evaluate(expression)

    def _evaluate(self, expression: Any) -> bool:
        if isinstance(expression, dict) and len(expression) == 1:
            ((kind, arg),) = expression.items()
            if kind == "Fn::Equals":
                left, right = arg
                return self.resolve(left) == self.resolve(right)
            if kind == "Fn::Not":
                return not self._evaluate(arg[0])
            if kind == "Fn::And":
                return all(self._evaluate(item) for item in arg)
            if kind == "Fn::Or":
                return any(self._evaluate(item) for item in arg)
            if kind == "Condition":
                return self.condition(str(arg))
        raise Unresolvable(f"condition expression {expression!r}")

    def _if(self, arg: Any) -> Any:
        name, when_true, when_false = arg
        return when_true if self.condition(str(name)) else when_false

    def decide(self, value: Any) -> Any:
        """``value`` with its ``Fn::If`` (and any nested in the chosen branch) decided; anything else as it is."""
        while isinstance(value, dict) and len(value) == 1 and "Fn::If" in value:
            value = self._if(value["Fn::If"])
        return value

    def resolve_tree(self, value: Any) -> Any:
        """A property value with every ``Fn::If`` decided and ``!Ref AWS::NoValue`` dropped (from lists and maps),
        every other intrinsic resolved to its string; literals and the structure (lists, maps) are kept."""
        if isinstance(value, dict) and len(value) == 1 and "Fn::If" in value:
            return self.resolve_tree(self._if(value["Fn::If"]))
        if isinstance(value, dict) and not _is_intrinsic(value):
            return {k: self.resolve_tree(v) for k, v in value.items() if not _is_no_value(v, self)}
        if isinstance(value, list):
            return [self.resolve_tree(v) for v in value if not _is_no_value(v, self)]
        if isinstance(value, bool | int | float | str):
            return value  # literals keep their YAML type (PointInTimeRecoveryEnabled: true stays a bool)
        return self.resolve(value)

    def resolve(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            text = str(value)
            if "{{resolve:" in text:
                raise Unresolvable(text)
            return text
        if isinstance(value, dict) and len(value) == 1:
            ((kind, arg),) = value.items()
            if kind == "Ref":
                return self._ref(str(arg))
            if kind == "Fn::If":
                return self.resolve(self._if(arg))
            if kind == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self._get_att(str(parts[0]), str(parts[1]))
            if kind == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

                def substitute(match: re.Match[str]) -> str:
                    name = match.group(1)
                    if name in variables:
                        return self.resolve(variables[name])
                    if "." in name:
                        logical_id, attribute = name.split(".", 1)
                        return self._get_att(logical_id, attribute)
                    return self._ref(name)

                return self.resolve(_SUB_VARIABLE.sub(substitute, str(text)))
            if kind == "Fn::Join":
                separator, items = arg
                return str(separator).join(self.resolve(item) for item in items)
        raise Unresolvable(repr(value))


def _is_intrinsic(value: dict[str, Any]) -> bool:
    if len(value) != 1:
        return False
    key = next(iter(value))
    return key in {"Ref", "Condition"} or key.startswith("Fn::")


def _is_no_value(value: Any, resolver: Resolver) -> bool:
    """``!Ref AWS::NoValue``, directly or as the chosen branch of an ``Fn::If``."""
    while isinstance(value, dict) and len(value) == 1 and "Fn::If" in value:
        value = resolver._if(value["Fn::If"])
    return bool(value == {"Ref": "AWS::NoValue"})


def parameter_overrides() -> dict[str, str]:
    """``PARAMETER_OVERRIDES="MaxChatsPerUser=3 LogLevel=DEBUG"``: template parameters for the local stack, the way
    ``sam deploy --parameter-overrides`` sets them (an unknown name is an error, not a silent no-op)."""
    overrides: dict[str, str] = {}
    for pair in os.environ.get("PARAMETER_OVERRIDES", "").split():
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"PARAMETER_OVERRIDES: expected Name=Value, got {pair!r}")
        overrides[name] = value
    return overrides


def local_value(name: str) -> str:
    """The local stand-in for an environment value that only exists in AWS."""
    return os.environ.get(name) or "local-dev-" + name.lower().replace("_", "-")
