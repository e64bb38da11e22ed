"""The local runtime (``make run``'s entry point) as a subprocess on free ports, and what its HTTP tests share:
tokens, the table's items of a chat, problem checks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
import requests
from aurora_chats.dal import keys
from aurora_local.cli import READY_LINE

from tests.support.env import ROOT

STARTUP_DEADLINE_SECONDS = 60.0
LOCAL_TABLE = "aurora-chats-local"
SECRET = "local-dev-secret"  # the documented local secret
PURGE_DEADLINE_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def clean_env(**extra: str) -> dict[str, str]:
    """A developer's shell: none of the unit tests' settings (table name, cursor secret...) leak in."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


@dataclass
class Runtime:
    process: subprocess.Popen[str]
    port: int
    dynamodb_port: int
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def dynamodb(self) -> Any:
        import boto3

        return boto3.client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{self.dynamodb_port}",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if READY_LINE in line:
                self.ready.set()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


PORT_ATTEMPTS = 3


def start_runtime(*, startup_seconds: float = STARTUP_DEADLINE_SECONDS, **env: str) -> Runtime:
    """``python -m aurora_local run`` on free ports, ready. A free port is picked, then bound by the child: another
    process on a busy machine can take it in between, and the runtime then refuses to start ("already in use").
    With ports of its own choosing (no ``PORT``/``DYNAMODB_PORT`` given) that start is retried on new ones."""
    retries = 0 if "PORT" in env or "DYNAMODB_PORT" in env else PORT_ATTEMPTS - 1
    for _ in range(retries):
        try:
            return _start_runtime(startup_seconds, env)
        except PortTaken:
            continue
    return _start_runtime(startup_seconds, env)


class PortTaken(pytest.fail.Exception):  # type: ignore[misc,name-defined]  # pytest.fail.Exception is Failed
    """The runtime refused to start: a port picked for it was taken before it could bind it."""


def _start_runtime(startup_seconds: float, env: dict[str, str]) -> Runtime:
    port, dynamodb_port = free_port(), free_port()
    variables = {"PORT": str(port), "DYNAMODB_PORT": str(dynamodb_port), **env}
    process = subprocess.Popen(
        [sys.executable, "-m", "aurora_local", "run"],
        cwd=ROOT,
        env=clean_env(**variables),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    runtime = Runtime(process, int(variables["PORT"]), int(variables["DYNAMODB_PORT"]))
    reader = threading.Thread(target=runtime._read, daemon=True)
    reader.start()
    deadline = time.monotonic() + startup_seconds
    while not runtime.ready.wait(0.1):
        if process.poll() is not None or time.monotonic() > deadline:
            runtime.stop(signal.SIGKILL)
            reader.join(5)  # every line it printed, its reason included
            if "is already in use" in runtime.output:
                raise PortTaken(f"the local runtime did not start:\n{runtime.output}")
            pytest.fail(f"the local runtime did not start:\n{runtime.output}")
    return runtime


def token(user: str, name: str | None = None, secret: str = SECRET, **claims: Any) -> str:
    payload: dict[str, Any] = {"sub": user, "iat": int(time.time()), **claims}
    if name:
        payload["name"] = name
    return jwt.encode(payload, secret, algorithm="HS256")


def chat_items(runtime: Runtime, chat_id: int) -> list[dict[str, Any]]:
    page = runtime.dynamodb().query(
        TableName=LOCAL_TABLE,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.chat_pk(chat_id)}},
        ConsistentRead=True,
    )
    items: list[dict[str, Any]] = page["Items"]
    return items


def assert_problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]
    return body
