"""Where the repository is, the test table's name, and the environment the tests run with.

``TEST_ENVIRONMENT`` is applied once per test process by ``tests/conftest.py``'s ``pytest_configure`` (before any
test module is imported), never at import time of a module.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = "aurora-chats-test"
REGION = "us-east-1"

TEST_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "TABLE_NAME": TABLE,
    "POWERTOOLS_SERVICE_NAME": "aurora-chats",
    "POWERTOOLS_METRICS_NAMESPACE": "AuroraChatsTest",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "CURSOR_SECRET": "test-cursor-secret",
    "DDB_MAX_ATTEMPTS": "2",
}
# Never the developer's endpoint: the tests talk to moto in-process, or to a server they start themselves.
REMOVED_VARIABLES = ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL")
