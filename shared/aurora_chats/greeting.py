"""The character's first message: its greeting with the SillyTavern-style placeholders filled in."""

from __future__ import annotations

import re

from aurora_chats.models import Character

_PLACEHOLDER = re.compile(r"\{\{\s*(char|user)\s*\}\}|<(bot|user)>", re.IGNORECASE)
# A lone surrogate (a JSON "\ud83d" from an IdP that cut a name inside an emoji) is not encodable as UTF-8:
# stored as is, botocore would fail to send the chat. It becomes U+FFFD, the replacement character.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
DEFAULT_DISPLAY_NAME = "User"
MAX_DISPLAY_NAME = 100  # characters of the caller's name claim put into a greeting


def display_name(claims: dict[str, object]) -> str:
    """Claim ``name``, else ``preferred_username``, else ``User``."""
    for claim in ("name", "preferred_username"):
        value = claims.get(claim)
        if isinstance(value, str) and value.strip():
            return _LONE_SURROGATE.sub("\ufffd", value.strip()[:MAX_DISPLAY_NAME])
    return DEFAULT_DISPLAY_NAME


def render_greeting(character: Character, user_name: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        token = (match.group(1) or match.group(2)).lower()
        return user_name if token == "user" else character.name

    return _PLACEHOLDER.sub(substitute, character.greeting)
