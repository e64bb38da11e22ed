"""The embedded DynamoDB of the local runtime: moto's server app with DynamoDB's atomicity and
``ClientRequestToken`` (:func:`dynamodb_endpoint`, which the tests' moto server uses too), its child process, the
template's table and the demo characters in it. Nothing here runs the API or the functions.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from aurora_local.template import ROOT, create_table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from werkzeug.serving import BaseWSGIServer

HOST = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 30.0


class StartupError(Exception):
    """A one-line reason the runtime cannot start."""


def port_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise StartupError(f"{name}={raw} is not a port number")
    return int(raw)


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def listening(port: int, host: str = HOST) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
    except OSError:
        return False
    return True


def start_embedded_dynamodb(port: int) -> subprocess.Popen[bytes]:
    """moto's server in a child process (it exits by itself should this process die)."""
    if port_in_use(port):
        raise StartupError(
            f"port {port} (DYNAMODB_PORT) is already in use: stop what holds it, pick another DYNAMODB_PORT, "
            "or set AWS_ENDPOINT_URL_DYNAMODB to use that endpoint"
        )
    command = [
        sys.executable,
        "-m",
        "aurora_local",
        "dynamodb",
        "--port",
        str(port),
        "--parent",
        str(os.getpid()),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)


def wait_until_listening(child: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not listening(port):
        if child.poll() is not None:
            raise StartupError(f"the embedded DynamoDB (moto) exited with code {child.returncode}")
        if time.monotonic() > deadline:
            raise StartupError(
                f"the embedded DynamoDB did not listen on port {port} within {STARTUP_TIMEOUT_SECONDS:.0f} s"
            )
        time.sleep(0.05)


def stop_child(child: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; reaped either way."""
    if child is None or child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(grace)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(5)


def ensure_table(client: DynamoDBClient, table_name: str) -> bool:
    """Create the template's table unless it exists; True when created."""
    try:
        client.describe_table(TableName=table_name)
    except client.exceptions.ResourceNotFoundException:
        create_table(client, table_name)
        return True
    return False


def import_characters(table_name: str, endpoint: str | None, region: str) -> None:
    from aurora_ops.admin import main as chats_admin

    args = ["import-characters", str(ROOT / "characters"), "--table-name", table_name, "--region", region]
    if endpoint:
        args += ["--endpoint-url", endpoint]
    if chats_admin(args) != 0:
        raise StartupError("chats-admin import-characters failed (see above)")


IDEMPOTENCY_WINDOW_SECONDS = 600


def dynamodb_endpoint() -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    """moto's server app with two DynamoDB guarantees it lacks, which the service relies on (the local runtime's
    embedded DynamoDB and the tests' moto server both use it):

    * Requests are read by a thread each but executed one at a time: moto's backend is not thread-safe (a
      ``TransactWriteItems`` deep-copies the table for its rollback while another thread writes, fails, and its
      rollback erases the other thread's write). One at a time gives atomic, serializable transactions.
    * ``TransactWriteItems`` honours ``ClientRequestToken`` for 10 minutes: the SDK's retry of a transaction whose
      answer was lost (a read timeout) gets the first answer again instead of running twice; the same token with
      other parameters is ``IdempotentParameterMismatchException``.
    """
    import io

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    backend = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()
    answered: dict[str, tuple[float, bytes, str, list[tuple[str, str]], list[bytes]]] = {}

    def serialized(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        token, raw = None, b""
        if environ.get("HTTP_X_AMZ_TARGET", "").endswith(".TransactWriteItems"):
            raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(raw)
            try:
                token = json.loads(raw).get("ClientRequestToken")
            except ValueError:
                token = None
        with one_at_a_time:
            now = time.monotonic()
            for old in [t for t, entry in answered.items() if now - entry[0] > IDEMPOTENCY_WINDOW_SECONDS]:
                del answered[old]
            if token and token in answered:
                _, request, status, headers, body = answered[token]
                if request != raw:
                    mismatch = {
                        "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                        "message": "The ClientRequestToken was used with other parameters.",
                    }
                    start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0")])
                    return [json.dumps(mismatch).encode()]
                start_response(status, headers)
                return body
            captured: list[Any] = []

            def capture(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
                captured[:] = [status, headers]
                return start_response(status, headers, *rest)

            body = list(backend(environ, capture))
            if token and captured and str(captured[0]).startswith("200"):
                answered[token] = (now, raw, captured[0], captured[1], body)
            return body

    return serialized


def serve_dynamodb_endpoint(host: str, port: int) -> BaseWSGIServer:
    """:func:`dynamodb_endpoint` served on ``host:port`` (port 0: a free one, no race for a number) by a daemon thread.

    The one server of the embedded DynamoDB: ``make run``'s child, the SAM CLI check's and the tests' moto server.
    ``shutdown()`` stops it (within 0.1 s), ``server_close()`` frees the port.
    """
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    server = make_server(host, port, dynamodb_endpoint(), threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, args=(0.1,), name="moto", daemon=True).start()
    return server
