"""Opaque, user-bound page cursors.

Layout (before base64url, no padding): ``version (1 byte) | last chat id (8 bytes, big-endian) | MAC (16 bytes)``
where the MAC is HMAC-SHA256 over ``version | user id | chat id`` under the cursor secret. Decoding is strict: exact
length, known version, the MAC must match *the caller's* user id, the chat id must be a valid id. Anything else is
:class:`InvalidCursor` (a 400). Even a cursor that passed these checks only ever becomes the start key of a query on
the caller's own partition: the data layer builds that key itself from the caller's user id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

from aurora_chats.errors import InvalidCursor
from aurora_chats.ids import MAX_ID

VERSION = 1
MAX_CURSOR_LENGTH = 64
_MAC_BYTES = 16
_RAW_LENGTH = 1 + 8 + _MAC_BYTES
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _mac(secret: bytes, user_id: str, chat_id: int) -> bytes:
    message = bytes([VERSION]) + user_id.encode() + b"\x00" + struct.pack(">Q", chat_id)
    return hmac.new(secret, message, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_cursor(secret: bytes, user_id: str, last_chat_id: int) -> str:
    raw = bytes([VERSION]) + struct.pack(">Q", last_chat_id) + _mac(secret, user_id, last_chat_id)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(secret: bytes, user_id: str, cursor: str) -> int:
    """The last chat id of the previous page, or :class:`InvalidCursor`."""
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH or not set(cursor) <= _ALPHABET:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor() from exc
    if len(raw) != _RAW_LENGTH or raw[0] != VERSION:
        raise InvalidCursor()
    (chat_id,) = struct.unpack(">Q", raw[1:9])
    if not 1 <= chat_id <= MAX_ID:
        raise InvalidCursor()
    if not hmac.compare_digest(raw[9:], _mac(secret, user_id, chat_id)):
        raise InvalidCursor()
    # Re-encoding must give back the same text: rejects non-canonical base64 spellings of the same bytes.
    if encode_cursor(secret, user_id, chat_id) != cursor:
        raise InvalidCursor()
    return int(chat_id)
