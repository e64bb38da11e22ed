"""Lambda event filtering (``FilterCriteria``) for the local runtime and the tests: which stream records reach a
function, decided exactly as the template's filter says.

Supported: the subset of the filter-pattern syntax this project uses — nested objects, lists of alternatives (OR),
exact values (strings, numbers, booleans, ``null``), ``{"prefix": "..."}`` and ``{"exists": true|false}``. Any other
operator raises ``ValueError`` rather than silently matching, so a template change cannot make tests lie.
Record values that are arrays match when any element matches (as in Lambda/EventBridge).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_MISSING = object()


def _value_matches(matcher: Any, value: Any) -> bool:
    if isinstance(matcher, Mapping):
        if set(matcher) == {"exists"}:
            return bool(matcher["exists"]) is (value is not _MISSING)
        if set(matcher) == {"prefix"}:
            return isinstance(value, str) and value.startswith(str(matcher["prefix"]))
        raise ValueError(f"unsupported filter operator: {sorted(matcher)}")
    if value is _MISSING:
        return False
    if isinstance(value, list):
        return any(_value_matches(matcher, element) for element in value)
    if isinstance(matcher, bool) or isinstance(value, bool):
        return matcher is value
    return bool(matcher == value)


def matches(filter_pattern: Mapping[str, Any], record: Mapping[str, Any] | Any) -> bool:
    """Whether ``record`` passes ``filter_pattern`` (every field of the pattern must match)."""
    for field, expected in filter_pattern.items():
        value = record.get(field, _MISSING) if isinstance(record, Mapping) else _MISSING
        if isinstance(expected, Mapping):
            if not matches(expected, value if isinstance(value, Mapping) else {}):
                return False
        elif isinstance(expected, list):
            if not any(_value_matches(matcher, value) for matcher in expected):
                return False
        else:
            raise ValueError(f"filter field {field!r} must be an object or a list, got {expected!r}")
    return True


def matches_criteria(filter_criteria: Mapping[str, Any] | None, record: Mapping[str, Any]) -> bool:
    """A template ``FilterCriteria`` (``{"Filters": [{"Pattern": "<json>"}]}``): any filter passing lets it through."""
    if not filter_criteria or not filter_criteria.get("Filters"):
        return True
    return any(matches(_pattern(f["Pattern"]), record) for f in filter_criteria["Filters"])


def _pattern(raw: str | Mapping[str, Any]) -> Mapping[str, Any]:
    pattern = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(pattern, Mapping):
        raise ValueError(f"a filter pattern must be a JSON object, got {raw!r}")
    return pattern
