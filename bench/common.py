"""Constants and small helpers every section of the bench shares."""

from __future__ import annotations

import os
import socket
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results.json"
TABLE = "aurora-bench"
REGION = "us-east-1"
USER = "alice"
CHARACTER_ID = 330905
DELETE_CHAT_ID = 375619772979436  # the chat events/delete_chat.json deletes
FUNCTIONS = ("list_chats", "initialize_chat", "delete_chat")
EVENTS = {
    "list_chats": ("list_chats.json", 200),
    "initialize_chat": ("initialize_chat.json", 201),
    "delete_chat": ("delete_chat.json", 200),
}
# An unsampled X-Ray trace header, as the Lambda runtime sets it for most invocations with Tracing: Active.
TRACE_UNSAMPLED = "Root=1-6746f0a0-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0"
TRACE_SAMPLED = "Root=1-6746f0a0-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"

BUDGET_COLD_RATIO = 1.25
BUDGET_RSS_RATIO = 1.2
BUDGET_WARM_US = 60.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def python313() -> str:
    """The interpreter for the children: ``PYTHON313`` (the Makefile passes it), else this one (the dev venv's
    3.13; children run it with ``-I -S``, so none of the venv's packages are on their path)."""
    return os.environ.get("PYTHON313") or sys.executable


def median(values: list[float]) -> float:
    return statistics.median(values)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
