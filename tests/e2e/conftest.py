"""The local runtime (``make run``'s entry point) as a subprocess on free ports, once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.local_runtime import Runtime, start_runtime


@pytest.fixture(scope="session")
def runtime() -> Iterator[Runtime]:
    started = start_runtime()
    yield started
    started.stop()
