"""``python -m aurora_local``: the local runtime (``make run``), ``make token`` and ``make invoke``.

``run`` starts moto's server as the embedded DynamoDB on ``127.0.0.1:$DYNAMODB_PORT`` (default 8000) in a child
process - unless ``AWS_ENDPOINT_URL_DYNAMODB`` names an endpoint to use instead -, creates the table of
``template.yaml`` (``aurora-chats-local``, or ``LOCAL_TABLE_NAME``), imports ``characters/`` with ``chats-admin``,
starts each function's execution environment (a process each), the stream pump, and serves the API on
``127.0.0.1:$PORT`` (default 3000) until SIGINT or SIGTERM, which stop every process it started and free both ports.
A busy port is a one-line error and exit code 1.

Stopping is bounded and safe to signal again: the handlers only record the signal (see :class:`Signals`), the main
thread then stops the HTTP server (in-flight requests finish, kept-alive connections get a 503 and close), gives the
functions' invocations in flight ``SHUTDOWN_GRACE_SECONDS`` before their processes are killed, stops the stream pump
and the embedded DynamoDB (killed if it lingers). Should anything still hang, ``faulthandler`` prints every thread's
stack and exits after ``SHUTDOWN_LIMIT_SECONDS``. Under ``make run`` (make -> uv -> python) the runtime also stops when
``uv`` or ``make`` goes away without signalling it (``kill -9``): Ctrl-C reaches the whole terminal process group;
``kill -TERM <make>`` is forwarded by make to uv and by uv to the runtime.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import faulthandler
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from aurora_local.dynamodb import (
    HOST,
    StartupError,
    ensure_table,
    import_characters,
    port_from_env,
    serve_dynamodb_endpoint,
    start_embedded_dynamodb,
    stop_child,
    wait_until_listening,
)

if TYPE_CHECKING:
    from aurora_local.runtime import LocalFunction
    from aurora_local.server import LocalApiServer
    from aurora_local.stream import StreamPump

READY_LINE = "Aurora Chats API ready"
SHUTDOWN_GRACE_SECONDS = 2.0  # for invocations in flight, then for the embedded DynamoDB, before a kill
# The backstop: a stack dump and exit 1 should stopping (or the interpreter's exit after it) ever hang.
SHUTDOWN_LIMIT_SECONDS = 20.0


class Signals:
    """SIGINT, SIGTERM and SIGHUP, recorded by a handler that takes no lock, for the main thread to poll.

    A Python signal handler runs in the main thread between two bytecodes of whatever it is doing, so it must not take
    a lock that code may hold: ``threading.Event.set()`` takes the Event's lock, and a signal landing while the main
    thread is inside ``Event.wait()`` (holding that lock) deadlocked it in a futex wait forever. Printing or logging
    from the handler has the same flaw (stdout's lock). Appending to a list is atomic and lock-free, so a second
    signal, even one interrupting the handler, is harmless; the handlers stay installed while stopping, so a Ctrl-C
    cannot raise ``KeyboardInterrupt`` halfway through the clean-up.
    """

    def __init__(self) -> None:
        self.received: list[int] = []

    def install(self) -> None:
        hangup = (signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()  # the terminal closed: stop as well
        for sig in (signal.SIGINT, signal.SIGTERM, *hangup):
            signal.signal(sig, self._record)

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking within 0.1 s of a signal; True once one was received."""
        end = time.monotonic() + seconds
        while not self.received and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))
        return bool(self.received)


def _parent_of(pid: int) -> int | None:
    """The parent of ``pid`` from /proc (Linux); None when gone or unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _name_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def launchers() -> list[tuple[int, int]]:
    """(pid, parent) pairs whose change means the runtime was orphaned: ``make run`` is make -> uv -> python, and a
    ``kill -9`` of make or uv leaves this process (and its ports) behind. Only launchers are watched (a runtime started
    in the background by a shell script that then exits keeps running)."""
    chain: list[tuple[int, int]] = []
    parent = os.getppid()
    if _name_of(parent) in ("uv", "make"):
        chain.append((os.getpid(), parent))
        grandparent = _parent_of(parent)
        if _name_of(parent) == "uv" and grandparent is not None and _name_of(grandparent) == "make":
            chain.append((parent, grandparent))
    return chain


def orphaned(chain: list[tuple[int, int]]) -> bool:
    return any((os.getppid() if pid == os.getpid() else _parent_of(pid)) != parent for pid, parent in chain)


def _dynamodb_child(port: int, parent: int) -> int:
    """The embedded DynamoDB: moto's server (with DynamoDB's atomicity and ``ClientRequestToken``, see
    :func:`dynamodb_endpoint`) until SIGTERM/SIGINT or until the parent process is gone."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    signals = Signals()
    signals.install()
    server = serve_dynamodb_endpoint(HOST, port)
    while not signals.wait(0.2) and os.getppid() == parent:
        pass
    faulthandler.dump_traceback_later(SHUTDOWN_LIMIT_SECONDS, exit=True)  # the backstop (see the module doc)
    server.shutdown()
    server.server_close()
    sys.stderr.flush()
    os._exit(
        0
    )  # the tables live in memory and go anyway: skip the interpreter's teardown of moto (about a second)


def _say(line: str) -> None:
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP, a closed pipe)
        print(line, flush=True)


def _curl_example(port: int, token: str) -> str:
    base = f"http://{HOST}:{port}"
    return (
        f"  TOKEN={token}\n"
        f'  curl -s -X POST -H "Authorization: Bearer $TOKEN" {base}/characters/330905/chats\n'
        f'  curl -s -H "Authorization: Bearer $TOKEN" {base}/chats\n'
        f'  curl -s -X DELETE -H "Authorization: Bearer $TOKEN" {base}/chats/<chatId>'
    )


def run() -> int:
    started = time.monotonic()
    signals = Signals()
    signals.install()
    watched = launchers()
    from aurora_local.intrinsics import local_table_name, region
    from aurora_local.runtime import (
        FunctionError,
        function_specs,
        prepare_process,
        worker_functions,
    )

    port = port_from_env("PORT", 3000)
    dynamodb_port = port_from_env("DYNAMODB_PORT", 8000)
    specs = function_specs()
    prepare_process(specs, function_environment=False)  # each function's worker sets its own
    functions = worker_functions(specs)
    table_name = local_table_name()

    from aurora_local.server import LocalApiServer

    try:
        server = LocalApiServer((HOST, port), functions)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} (PORT) is already in use: stop what holds it or pick another PORT"
            ) from exc
        raise
    child: subprocess.Popen[bytes] | None = None
    pump: StreamPump | None = None
    serving: threading.Thread | None = None
    try:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
        if not endpoint:
            child = start_embedded_dynamodb(dynamodb_port)
            endpoint = os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = f"http://{HOST}:{dynamodb_port}"
        for function in functions.values():  # cold starts, each in its own process, while moto starts
            function.start()
        for function in functions.values():
            try:
                function.wait_ready()
            except FunctionError as exc:
                raise StartupError(str(exc)) from exc
        if child is not None:
            wait_until_listening(child, dynamodb_port)
        if signals.received:  # stopped while starting
            return 0
        import boto3

        client = boto3.client("dynamodb", endpoint_url=endpoint)
        ensure_table(client, table_name)
        import_characters(table_name, endpoint, region())

        from aurora_local.stream import StreamPump

        pump = StreamPump(functions, table_name, dynamodb=client)
        pump.start()
        serving = threading.Thread(target=server.serve, name="http", daemon=True)
        serving.start()

        from aurora_local.auth import issue_token

        routes = "\n".join(f"  {route.route_key:<42} -> {route.function.name}" for route in server.routes)
        subscribed = ", ".join(f"{m.function.name} ({m.event_name})" for m in pump.mappings) or "none"
        print(
            f"\nAurora Chats API   http://{HOST}:{port}\n"
            f"OpenAPI / docs     http://{HOST}:{port}/openapi.json   http://{HOST}:{port}/docs\n"
            f"DynamoDB           {endpoint}   table {table_name}\n"
            f"Stream pump        {subscribed}\n"
            f"Routes\n{routes}\n"
            f"Try it (token for alice; `make token USER=bob` makes others)\n"
            f"{_curl_example(port, issue_token('alice', 'Alice'))}\n"
            f"{READY_LINE} in {time.monotonic() - started:.1f} s - Ctrl-C stops it",
            flush=True,
        )
        while not signals.wait(0.5):
            if child is not None and child.poll() is not None:
                raise StartupError(f"the embedded DynamoDB (moto) exited with code {child.returncode}")
            if orphaned(watched):
                _say("stopping: make/uv is gone")
                return 0
        _say("stopping")
        return 0
    finally:
        shut_down(server, serving, pump, functions, child)


def shut_down(
    server: LocalApiServer,
    serving: threading.Thread | None,
    pump: StreamPump | None,
    functions: dict[str, LocalFunction],
    child: subprocess.Popen[bytes] | None,
) -> None:
    """Stop everything :func:`run` started, in a bounded time (see the module doc); signals meanwhile are recorded."""
    from aurora_local.runtime import stop_functions

    faulthandler.dump_traceback_later(
        SHUTDOWN_LIMIT_SECONDS, exit=True
    )  # stays armed through the interpreter's exit
    server.stop(serving)  # PORT is free
    if pump is not None:
        pump.stop(timeout=0)  # no new batch
    stop_functions(functions.values(), grace=SHUTDOWN_GRACE_SECONDS)
    if pump is not None:
        pump.stop(timeout=1.0)
    stop_child(child, grace=SHUTDOWN_GRACE_SECONDS)  # DYNAMODB_PORT is free


def token(user: str, name: str | None, lifetime: int) -> int:
    from aurora_local.auth import issue_token

    print(issue_token(user, name, lifetime_seconds=lifetime))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aurora_local", description="Aurora Chats local runtime.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="Serve the API on 127.0.0.1:$PORT with an embedded DynamoDB.")
    token_parser = commands.add_parser("token", help="Print a local JWT (HS256, LOCAL_JWT_SECRET).")
    token_parser.add_argument("--user", default="alice", help="the sub claim (default alice)")
    token_parser.add_argument("--name", default=None, help="the name claim (greetings use it)")
    token_parser.add_argument(
        "--lifetime", type=int, default=12 * 3600, help="seconds until exp (default 12 h)"
    )
    invoke_parser = commands.add_parser(
        "invoke", help="Run one function on one event, like sam local invoke."
    )
    invoke_parser.add_argument("function", help="logical id in template.yaml, e.g. ListChatsFunction")
    invoke_parser.add_argument(
        "event", type=Path, help="event JSON file, e.g. events/list_chats.json ('-': stdin)"
    )
    child_parser = commands.add_parser("dynamodb", help=argparse.SUPPRESS)
    child_parser.add_argument("--port", type=int, required=True)
    child_parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return run()
        if args.command == "token":
            return token(args.user, args.name, args.lifetime)
        if args.command == "invoke":
            from aurora_local.invoke import invoke

            print(json.dumps(invoke(args.function, args.event), indent=2))
            return 0
        return _dynamodb_child(args.port, args.parent)
    except StartupError as exc:
        print(f"aurora-local: {exc}", file=sys.stderr)
        return 1
