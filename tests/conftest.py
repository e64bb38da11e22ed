"""Fixtures only (helpers live in ``tests/support``): the test environment, a moto DynamoDB table built from
template.yaml, the demo characters, the API client, moto as an HTTP server, a stand-in X-Ray daemon."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.aws import CallLog, MotoServer, instrument, moto_http_server, reset_caches
from tests.support.env import REMOVED_VARIABLES, ROOT, TABLE, TEST_ENVIRONMENT


def pytest_configure(config: pytest.Config) -> None:
    """The whole test process runs with the test environment (before any test module is imported, so that the
    service's module-level Logger/Metrics see it), never with a developer's AWS endpoint or credentials."""
    os.environ.update(TEST_ENVIRONMENT)
    for name in REMOVED_VARIABLES:
        os.environ.pop(name, None)


@pytest.fixture
def ddb() -> Iterator[Any]:
    """A fresh moto account with the table of template.yaml; the service's own client, instrumented."""
    from aurora_chats.dal.client import get_client
    from aurora_local.template import create_table
    from moto import mock_aws

    with mock_aws():
        reset_caches()
        client = get_client()
        create_table(client, TABLE)
        yield client
        reset_caches()


@pytest.fixture
def calls(ddb: Any) -> CallLog:
    log = CallLog(calls=[])
    instrument(ddb, log)
    return log


@pytest.fixture
def characters(ddb: Any) -> None:
    from aurora_ops.admin import import_characters

    assert import_characters([str(ROOT / "characters")], TABLE, region="us-east-1") == 0


@pytest.fixture
def api(ddb: Any, characters: None) -> Api:
    return Api()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's DynamoDB as a real HTTP endpoint for the session (faults, races, smoke): see
    :func:`tests.support.aws.moto_http_server`."""
    with moto_http_server() as server:
        yield server


@pytest.fixture
def server_ddb(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh table (from template.yaml) with the demo characters on the moto server; the service's own client."""
    import urllib.request

    from aurora_chats.dal.client import get_client
    from aurora_local.template import create_table
    from aurora_ops.admin import import_characters

    urllib.request.urlopen(
        urllib.request.Request(f"{moto_server.endpoint}/moto-api/reset", method="POST"), timeout=10
    ).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_server.endpoint)
    reset_caches()
    client = get_client()
    create_table(client, TABLE)
    assert import_characters([str(ROOT / "characters")], TABLE, endpoint_url=moto_server.endpoint) == 0
    yield client
    reset_caches()


@pytest.fixture
def xray_daemon() -> Iterator[socket.socket]:
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(0.5)
    try:
        yield daemon
    finally:
        daemon.close()
