"""One typed settings object, read once from the environment.

Never read ``os.environ`` anywhere else in the layer: tests and the local runtime change settings by setting the
environment and calling :func:`reset_settings`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

MAX_SAFE_INTEGER = 2**53 - 1


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str
    chat_retention_days: int
    idempotency_ttl_seconds: int
    character_cache_seconds: float
    cursor_secret: bytes
    ddb_max_attempts: int
    ddb_connect_timeout: float
    ddb_read_timeout: float
    retry_after_seconds: int
    id_region: int = 0
    # With a replica region (global table): the stream purge only purges chats this region's IdRegion minted.
    purge_own_region_only: bool = False
    max_chats_per_user: int = 1000
    # At least the longest token lifetime: a deleted account's marker refuses writes for this long.
    deleted_account_window_seconds: int = 86_400
    # A user deletion that meets sustained throttling continues later through a one-shot EventBridge Scheduler
    # schedule (group, the role Scheduler assumes, the bus it puts the continuation on); empty outside AWS.
    continuation_schedule_group: str = ""
    continuation_role_arn: str = ""
    continuation_bus_arn: str = ""


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    value = int(raw)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    table_name = os.environ.get("TABLE_NAME", "aurora-chats")
    # The cursor secret only makes cursors tamper-evident; the data layer never lets a cursor name another
    # partition, so a missing secret degrades to "unsigned but still confined to the caller's own list".
    secret = os.environ.get("CURSOR_SECRET") or f"aurora-chats-cursor:{table_name}"
    return Settings(
        table_name=table_name,
        chat_retention_days=_int("CHAT_RETENTION_DAYS", 0),
        idempotency_ttl_seconds=_int("IDEMPOTENCY_TTL_SECONDS", 24 * 3600, minimum=1),
        character_cache_seconds=float(_int("CHARACTER_CACHE_SECONDS", 300)),
        cursor_secret=secret.encode(),
        ddb_max_attempts=_int("DDB_MAX_ATTEMPTS", 4, minimum=1),
        ddb_connect_timeout=float(os.environ.get("DDB_CONNECT_TIMEOUT", "1.0")),
        ddb_read_timeout=float(os.environ.get("DDB_READ_TIMEOUT", "2.0")),
        retry_after_seconds=_int("RETRY_AFTER_SECONDS", 1, minimum=1),
        id_region=_id_region(),
        purge_own_region_only=_flag("PURGE_OWN_REGION_ONLY"),
        max_chats_per_user=_int("MAX_CHATS_PER_USER", 1000, minimum=1),
        deleted_account_window_seconds=_int("DELETED_ACCOUNT_WINDOW_SECONDS", 86_400, minimum=1),
        continuation_schedule_group=os.environ.get("CONTINUATION_SCHEDULE_GROUP", ""),
        continuation_role_arn=os.environ.get("CONTINUATION_ROLE_ARN", ""),
        continuation_bus_arn=os.environ.get("CONTINUATION_BUS_ARN", ""),
    )


def _flag(name: str) -> bool:
    """A ``"true"``/``"false"`` variable (empty = false); anything else is a configuration error, not a guess."""
    raw = os.environ.get(name, "").strip().lower()
    if raw not in {"", "true", "false"}:
        raise ValueError(f"{name} must be true or false, got {raw!r}")
    return raw == "true"


def _id_region() -> int:
    """``ID_REGION`` (template parameter ``IdRegion``): this region's bits in every chat id, 0-7 (see ``ids``)."""
    value = _int("ID_REGION", 0)
    if value > 7:
        raise ValueError(f"ID_REGION must be 0..7, got {value}")
    return value


def reset_settings() -> None:
    """Forget the cached settings (tests and the local runtime change the environment)."""
    get_settings.cache_clear()
