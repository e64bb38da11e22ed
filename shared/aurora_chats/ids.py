"""Identifiers: 53-bit chat ids (JSON-safe for the SDK) and time-sortable message ids.

Chat ids are ``milliseconds since 2024-01-01 << 12 | 12 random bits``: time-ordered (newest chats sort last, so a
descending query is newest first), below 2**53 until the year 2093, and never zero. Uniqueness is not assumed from
the random bits: the data layer writes the chat with ``attribute_not_exists`` and the use case retries on collision.
Randomness comes from ``secrets`` (the OS CSPRNG), which stays unpredictable after a Lambda SnapStart restore.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

MAX_ID = 2**53 - 1
EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
RANDOM_BITS = 12

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


def new_chat_id(now_ms: int | None = None) -> int:
    ms = (now_ms if now_ms is not None else time.time_ns() // 1_000_000) - EPOCH_MS
    chat_id = (max(ms, 0) << RANDOM_BITS) | secrets.randbits(RANDOM_BITS)
    return chat_id if chat_id >= 1 else 1 + secrets.randbits(RANDOM_BITS)


def chat_id_time_ms(chat_id: int) -> int:
    return (chat_id >> RANDOM_BITS) + EPOCH_MS


def new_message_id(now_ms: int | None = None) -> str:
    """A ULID: 48-bit millisecond time + 80 random bits, Crockford base32, 26 chars, sorts by time."""
    ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    value = (ms << 80) | secrets.randbits(80)
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])
