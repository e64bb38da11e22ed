"""``make invoke FUNCTION=ListChatsFunction EVENT=events/list_chats.json``: one function, one event, in-process.

Like ``sam local invoke`` without Docker: the function is imported from its ``CodeUri`` with the template's layers and
environment, runs against the embedded table - the running ``make run``'s on ``127.0.0.1:$DYNAMODB_PORT``, else a
fresh one started for this call (table created, characters imported) - or ``AWS_ENDPOINT_URL_DYNAMODB``. Logs go to
stderr; stdout is the result JSON only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from aurora_local.dynamodb import (
    HOST,
    StartupError,
    ensure_table,
    import_characters,
    listening,
    port_from_env,
    start_embedded_dynamodb,
    stop_child,
    wait_until_listening,
)
from aurora_local.intrinsics import local_table_name, region
from aurora_local.runtime import (
    LocalFunction,
    function_specs,
    ignore_expected_warnings,
    prepare_process,
)


def invoke(function_name: str, event_path: Path) -> Any:
    specs = function_specs()
    if function_name not in specs:
        raise StartupError(
            f"no function {function_name!r} in template.yaml; there are: {', '.join(sorted(specs))}"
        )
    try:
        raw = sys.stdin.read() if str(event_path) == "-" else event_path.read_text(encoding="utf-8")
        event = json.loads(raw)
    except (OSError, json.JSONDecodeError) as exc:
        raise StartupError(f"cannot read the event {event_path}: {exc}") from exc
    prepare_process({function_name: specs[function_name]})
    ignore_expected_warnings()
    child: subprocess.Popen[bytes] | None = None
    try:
        with redirect_stdout(sys.stderr):
            endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
            if not endpoint:
                port = port_from_env("DYNAMODB_PORT", 8000)
                if not listening(port):
                    child = start_embedded_dynamodb(port)
                    wait_until_listening(child, port)
                endpoint = f"http://{HOST}:{port}"
                os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
            import boto3

            table_name = local_table_name()
            if ensure_table(boto3.client("dynamodb", endpoint_url=endpoint), table_name):
                import_characters(table_name, endpoint, region())
            return LocalFunction(specs[function_name]).invoke(event)
    finally:
        stop_child(child)
