"""Stopping the local runtime is bounded whatever the signals' order and whatever is in flight.

Regression: ``make run`` hung for good after SIGTERM then SIGINT (the signal handler called ``threading.Event.set()``,
whose lock the main thread could be holding in ``Event.wait()``), and kept-alive connections restarted the functions'
processes while they were being stopped. A hang here is a process that does not exit within ``EXIT_DEADLINE_SECONDS``
(a generous bound, far above the couple of seconds a stop takes).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from aurora_local.cli import READY_LINE
from aurora_local.runtime import FunctionSpec, RuntimeStopping, WorkerFunction

from tests.support.env import ROOT
from tests.support.local_runtime import Runtime, clean_env, free_port, port_is_free, start_runtime

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")]

EXIT_DEADLINE_SECONDS = 30.0


def processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process (``Z``: exited, not reaped yet)."""
    found: dict[int, tuple[int, str]] = {}
    if Path("/proc").is_dir():
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                found[int(entry)] = (int(fields[1]), fields[0])
        return found
    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=,ppid=,stat="], capture_output=True, text=True, check=True
    )
    for line in listing.stdout.splitlines():
        pid, ppid, state = line.split(None, 2)
        found[int(pid)] = (int(ppid), state[:1])
    return found


def descendants(pid: int) -> set[int]:
    table = processes()
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, _) in table.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def still_running(pids: set[int]) -> set[int]:
    table = processes()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


def wait_gone(pids: set[int], seconds: float = 10.0) -> set[int]:
    """The processes still running after up to ``seconds`` (children the runtime stopped are reaped by then)."""
    deadline = time.monotonic() + seconds
    while (left := still_running(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def assert_stopped(process: subprocess.Popen[Any], children: set[int], ports: list[int], output: str) -> None:
    """It exits (code 0) without starting anything more, every process it started is gone, both ports are free."""
    started_meanwhile: set[int] = set()
    deadline = time.monotonic() + EXIT_DEADLINE_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        started_meanwhile |= descendants(process.pid) - children
        time.sleep(0.05)
    if process.poll() is None:
        process.kill()
        process.wait(5)
        pytest.fail(f"the runtime did not exit within {EXIT_DEADLINE_SECONDS:.0f} s (a hang):\n{output}")
    assert process.returncode == 0, output
    assert not started_meanwhile, (
        f"processes started while stopping (function cold starts): {started_meanwhile}"
    )
    assert not wait_gone(children), f"left running: {still_running(children)}\n{output}"
    assert all(port_is_free(port) for port in ports), output


def test_sigterm_then_sigint_at_once_stop_every_child_and_free_both_ports() -> None:
    runtime = start_runtime()
    children = descendants(runtime.process.pid)
    assert len(children) >= 2  # the embedded DynamoDB and the functions' processes
    runtime.process.send_signal(signal.SIGTERM)
    runtime.process.send_signal(signal.SIGINT)  # the second signal lands while the first is being handled
    assert_stopped(runtime.process, children, [runtime.port, runtime.dynamodb_port], runtime.output)


class Traffic:
    """Clients on kept-alive connections, initializing, listing and deleting chats until told to stop."""

    def __init__(self, runtime: Runtime, clients: int) -> None:
        self.url = runtime.url
        self.done = threading.Event()
        self.answered = 0
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]
        self.half_sent = socket.create_connection(("127.0.0.1", runtime.port))
        self.half_sent.sendall(b"GET /chats HTTP/1.1\r\nHost: x\r\n")  # a request still arriving
        for thread in self.threads:
            thread.start()

    def _client(self) -> None:
        token = jwt.encode({"sub": f"user-{uuid.uuid4().hex[:12]}"}, "local-dev-secret", algorithm="HS256")
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        while not self.done.is_set():
            try:
                created = session.post(f"{self.url}/characters/330905/chats", timeout=10)
                if created.status_code == 201:
                    session.delete(f"{self.url}/chats/{created.json()['chatId']}", timeout=10)
                session.get(f"{self.url}/chats", timeout=10)
                self.answered += 1
            except requests.RequestException:
                time.sleep(0.05)  # the runtime is gone: the connection was refused or closed

    def stop(self) -> None:
        self.done.set()
        self.half_sent.close()
        for thread in self.threads:
            thread.join(15)


def test_signals_during_requests_in_flight_stop_everything_and_start_nothing() -> None:
    runtime = start_runtime()
    traffic = Traffic(runtime, clients=6)
    try:
        deadline = time.monotonic() + 20
        while traffic.answered < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert traffic.answered >= 6, runtime.output  # requests (and the stream's purges) are in flight now
        children = descendants(runtime.process.pid)
        runtime.process.send_signal(signal.SIGTERM)
        runtime.process.send_signal(signal.SIGINT)
        assert_stopped(runtime.process, children, [runtime.port, runtime.dynamodb_port], runtime.output)
    finally:
        traffic.stop()
        runtime.stop(signal.SIGKILL)


def test_make_run_stops_on_kill_term_of_make_then_ctrl_c() -> None:
    """``kill -TERM <make>`` (make forwards it to uv, uv to the runtime) and a Ctrl-C for the terminal's group."""
    port, dynamodb_port = free_port(), free_port()
    make = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}", f"DYNAMODB_PORT={dynamodb_port}"],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert make.stdout is not None
        for line in make.stdout:
            lines.append(line.rstrip("\n"))
            if READY_LINE in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(60), "\n".join(lines[-40:])
        children = descendants(make.pid)
        make.send_signal(signal.SIGTERM)
        os.killpg(make.pid, signal.SIGINT)
        try:
            make.wait(EXIT_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail("make run did not exit (a hang):\n" + "\n".join(lines[-40:]))
        assert not wait_gone(children), "\n".join(lines[-40:])
        assert port_is_free(port) and port_is_free(dynamodb_port)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(5)


@pytest.fixture
def echo_function(tmp_path: Path) -> Iterator[WorkerFunction]:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {'ok': True}\n")
    spec = FunctionSpec(
        logical_id="EchoFunction",
        code_dir=tmp_path,
        handler="app.handler",
        layer_dirs=(),
        environment={},
        timeout_seconds=3,
        memory_mb=128,
        events={},
    )
    function = WorkerFunction(spec)
    yield function
    function.stop()


def test_a_closed_function_answers_stopping_and_starts_no_environment(echo_function: WorkerFunction) -> None:
    assert echo_function.invoke({}) == {"ok": True}
    (environment,) = echo_function.processes()
    echo_function.close(deadline=time.monotonic() + 2)
    environment.join(5)
    assert environment.exitcode == 0  # asked to exit, it did
    with pytest.raises(RuntimeStopping):
        echo_function.invoke({})  # no cold start of a new environment while the runtime stops
    assert echo_function.processes() == []


def test_a_port_taken_between_its_pick_and_its_bind_is_retried_on_new_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a busy machine another process can bind a port free_port picked before the runtime binds it: the start
    then fails with "already in use", and start_runtime picks new ports (it still fails for ports it was given)."""
    from tests.support import local_runtime

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        picks = iter([taken])
        monkeypatch.setattr(local_runtime, "free_port", lambda: next(picks, None) or free_port())
        runtime = local_runtime.start_runtime()
        try:
            assert runtime.port != taken
            assert (
                requests.get(f"{runtime.url}/chats", timeout=10).status_code == 401
            )  # serving, on its new port
        finally:
            runtime.stop()
        with pytest.raises(local_runtime.PortTaken, match="already in use"):
            local_runtime.start_runtime(PORT=str(taken))
