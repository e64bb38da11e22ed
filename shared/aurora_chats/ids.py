"""Identifiers: 53-bit chat ids (JSON-safe for the SDK) and time-sortable message ids.

Chat ids are 53 bits (JSON-safe for the SDK), ``ms << 12 | region << 9 | random``::

    52 ........................................ 12 | 11 .. 9 | 8 ........ 0
    milliseconds since 2024-01-01 (41 bits)        | region   | random (9 bits)
                                                   | (IdRegion, 0-7)

* time-ordered: newest chats sort last, so a descending query is newest first; below 2**53 until the year 2093;
  never zero;
* unique within a region: the data layer writes the chat with ``attribute_not_exists`` and the use case retries on
  collision (512 ids per millisecond and region: at 5 creates per ms in one region, ~1% of creates retry once);
* unique across regions without coordination: up to 8 regions (``IdRegion`` 0-7, one per replica of a global
  table) never mint the same id, because the conditional write is only checked in the region that writes - two
  regions writing the same id in the same millisecond would silently overwrite each other (last writer wins).

Randomness comes from ``secrets`` (the OS CSPRNG), which stays unpredictable after a Lambda SnapStart restore.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

MAX_ID = 2**53 - 1
EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
REGION_BITS = 3
RANDOM_BITS = 9
LOW_BITS = REGION_BITS + RANDOM_BITS  # below the milliseconds
MAX_REGION = (1 << REGION_BITS) - 1

ChatId = Annotated[int, Field(ge=1, le=MAX_ID, description="Chat id, an integer in 1..2^53-1.")]
CharacterId = Annotated[int, Field(ge=1, le=MAX_ID, description="AI character id, an integer in 1..2^53-1.")]


def decimal_digits(value: Any) -> Any:
    """Path and query integers must be plain decimal digits: no sign, spaces, ``_``, exponent or fraction."""
    if isinstance(value, str) and not (
        0 < len(value) <= 16 and value.isascii() and value.isdigit() and (value == "0" or value[0] != "0")
    ):
        raise ValueError("must be a decimal integer without sign, spaces or leading zeros")
    return value


# For path/query parameters (strings on the wire); bounds come from the Path/Query annotation.
DecimalInt = Annotated[int, BeforeValidator(decimal_digits)]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two Crockford digits per 10 bits: 13 look-ups for a ULID's 26 characters instead of 26 shifts (~2x faster).
_PAIRS = tuple(high + low for high in _CROCKFORD for low in _CROCKFORD)
_PAIR_SHIFTS = tuple(range(120, -1, -10))


def new_chat_id(now_ms: int | None = None, region: int = 0) -> int:
    if not 0 <= region <= MAX_REGION:
        raise ValueError(f"region must be 0..{MAX_REGION}, got {region}")
    ms = (now_ms if now_ms is not None else time.time_ns() // 1_000_000) - EPOCH_MS
    random = secrets.randbits(RANDOM_BITS)
    if ms <= 0 and region == 0:
        random = random or 1  # never zero
    return (max(ms, 0) << LOW_BITS) | (region << RANDOM_BITS) | random


def chat_id_time_ms(chat_id: int) -> int:
    return (chat_id >> LOW_BITS) + EPOCH_MS


def chat_id_region(chat_id: int) -> int:
    return (chat_id >> RANDOM_BITS) & MAX_REGION


def new_message_id(now_ms: int | None = None) -> str:
    """A ULID: 48-bit millisecond time + 80 random bits, Crockford base32, 26 chars, sorts by time."""
    ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    value = (ms << 80) | secrets.randbits(80)
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])
