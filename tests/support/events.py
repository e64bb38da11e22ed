"""The template's cleanup wiring and the events it is fed: what unit and integration tests of the cleanup share."""

from __future__ import annotations

import json
from typing import Any

from aurora_local.template import resources

from tests.support.env import ROOT

Item = dict[str, Any]


def cleanup_props() -> dict[str, Any]:
    props: dict[str, Any] = resources()["ChatCleanupFunction"]["Properties"]
    return props


def stream_filter() -> dict[str, Any]:
    """The ``FilterCriteria`` of the cleanup function's stream event source, as the template writes it."""
    criteria: dict[str, Any] = cleanup_props()["Events"]["ChatRemoved"]["Properties"]["FilterCriteria"]
    return criteria


def user_deleted(user: str) -> Item:
    event: Item = json.loads((ROOT / "events" / "cleanup_user_deleted.json").read_text())
    event["detail"]["userId"] = user
    return event
