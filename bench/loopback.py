"""Section 6: GET /chats requests/s over loopback through ``make run``."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.common import CHARACTER_ID, ROOT, USER, free_port, log


def loopback(seconds: float) -> dict[str, Any]:
    """GET /chats through ``make run`` (the local runtime: HTTP server + the real handlers + embedded moto)."""
    port, dynamodb_port = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "DYNAMODB_PORT": str(dynamodb_port)}
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "TABLE_NAME", "POWERTOOLS_LOG_LEVEL"):
        env.pop(name, None)
    with tempfile.TemporaryFile() as output:
        return _measure_loopback(output, env, port, seconds)


def _measure_loopback(output: Any, env: dict[str, str], port: int, seconds: float) -> dict[str, Any]:
    import http.client

    server = subprocess.Popen(
        ["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            output.seek(0)
            if b"Aurora Chats API ready" in output.read():
                break
            if server.poll() is not None or time.monotonic() > deadline:
                output.seek(0)
                raise SystemExit(f"make run did not start:\n{output.read().decode()[-2000:]}")
            time.sleep(0.2)
        token = subprocess.run(
            [sys.executable, "-m", "aurora_local", "token", "--user", USER], cwd=ROOT, env=env,
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        headers = {"Authorization": f"Bearer {token}"}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def request(method: str, path: str, keep_alive: bool = True) -> int:
            nonlocal connection
            if not keep_alive:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
            return response.status

        for _ in range(3):
            request("POST", f"/characters/{CHARACTER_ID}/chats")
        for _ in range(50):  # every function module is loaded at startup; this warms caches and connections
            request("GET", "/chats")
        figures: dict[str, Any] = {}
        for mode, keep_alive in (("keep_alive", True), ("new_connection", False)):
            count, statuses = 0, set()
            started = time.perf_counter()
            while time.perf_counter() - started < seconds:
                statuses.add(request("GET", "/chats", keep_alive))
                count += 1
            elapsed = time.perf_counter() - started
            if statuses != {200}:
                raise SystemExit(f"GET /chats over loopback answered {statuses}")
            figures[mode] = {"requests": count, "seconds": elapsed, "requests_per_second": count / elapsed}
        connection.close()
        return figures
    finally:
        stop_group(server)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop ``make run`` and everything it started (its own session), by that session's id only."""
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        log("make run did not stop within 15 s of SIGTERM: killing its process group")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
