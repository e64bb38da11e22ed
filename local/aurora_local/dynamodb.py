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


def item_level_transaction_rollback() -> None:
    """Make moto's ``TransactWriteItems`` snapshot what a transaction touches, not the tables it touches.

    To roll a cancelled transaction back, moto deep-copies every table the transaction names - all its items and
    all its stream's records, once per entry of the transaction - and swaps the copy back in on failure. That is
    O(table) for every transaction: ``make run`` slowed down as its table grew (measured over the local runtime,
    4 clients: initialize p50 54 ms -> 525 ms after a few hundred chats, list 237 -> 79 requests/s), and one long
    copy made the other calls, queued behind it, miss the functions' 1 s read timeout (``make load``'s 503/504s).

    Here moto's own code still runs the transaction (conditions, cancellation reasons, validation); only the
    snapshot changes: the touched items (deep copies of those few) and each touched table's stream length, taken
    before; on any failure every touched item is put back as it was (or removed, if it did not exist) and the
    stream records the transaction appended are dropped - the state moto's swap would restore. Installed once,
    by :func:`dynamodb_endpoint` (requests run one at a time there, so the module-level switch is never shared).
    """
    import copy
    import types

    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend.transact_write_items, "item_level_rollback", False):
        return
    moto_transact = DynamoDBBackend.transact_write_items
    real_deepcopy = copy.deepcopy
    in_transaction = [False]

    def deepcopy(value: Any, memo: Any = None) -> Any:
        if in_transaction[0] and isinstance(value, Table):
            return value  # moto's table snapshot: the rollback below restores what the transaction touched
        return real_deepcopy(value, memo)

    setattr(models, "copy", types.SimpleNamespace(deepcopy=deepcopy))  # noqa: B010 - moto's module-level import

    def touched(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any]]:
        found: list[tuple[Any, Any, Any, Any]] = []
        for entry in transact_items:
            if not isinstance(entry, dict) or len(entry) != 1:
                continue  # moto refuses it before writing anything
            ((kind, op),) = entry.items()
            table = backend.tables.get((op or {}).get("TableName"))
            key = (op or {}).get("Item" if kind == "Put" else "Key") or {}
            if table is None or table.hash_key_attr not in key:
                continue  # moto refuses it; a transaction that names a missing table writes nothing
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = None
            if table.range_key_attr is not None:
                if table.range_key_attr not in key:
                    continue
                range_value = DynamoType(key[table.range_key_attr])
            current = table.get_item(hash_value, range_value)
            found.append((table, hash_value, range_value, real_deepcopy(current)))
        return found

    def restore(table: Any, hash_value: Any, range_value: Any, item: Any) -> None:
        if range_value is None:
            if item is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = item
        elif item is None:
            table.items[hash_value].pop(range_value, None)
            if not table.items[hash_value]:
                del table.items[hash_value]
        else:
            table.items[hash_value][range_value] = item

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        snapshot = touched(self, transact_items)
        streams = {
            id(table): (table.stream_shard, len(table.stream_shard.items))
            for table, *_ in snapshot
            if table.stream_shard is not None
        }
        in_transaction[0] = True
        try:
            moto_transact(self, transact_items)
        except BaseException:
            for table, hash_value, range_value, item in reversed(snapshot):
                restore(table, hash_value, range_value, item)
            for shard, length in streams.values():
                del shard.items[length:]
            raise
        finally:
            in_transaction[0] = False

    transact_write_items.item_level_rollback = True  # type: ignore[attr-defined]
    transact_write_items.moto_transact_write_items = moto_transact  # type: ignore[attr-defined]  # for the tests
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def dynamodb_endpoint() -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    """moto's server app with two DynamoDB guarantees it lacks, which the service relies on (the local runtime's
    embedded DynamoDB and the tests' moto server both use it):

    * Requests are read by a thread each but executed one at a time: moto's backend is not thread-safe (a
      ``TransactWriteItems`` deep-copies the table for its rollback while another thread writes, fails, and its
      rollback erases the other thread's write). One at a time gives atomic, serializable transactions.
    * ``TransactWriteItems`` honours ``ClientRequestToken`` for 10 minutes: the SDK's retry of a transaction whose
      answer was lost (a read timeout) gets the first answer again instead of running twice; the same token with
      other parameters is ``IdempotentParameterMismatchException``.

    And one speed-up that keeps moto's answers: :func:`item_level_transaction_rollback`.
    """
    import io

    item_level_transaction_rollback()

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
