"""``observability.LazyTracer``: the X-Ray SDK is loaded only for invocations X-Ray samples, and those are traced.

Each test runs ListChatsFunction in a fresh interpreter (the import state is the point) against the moto server of
this test process, as Lambda runs it: ``LAMBDA_TASK_ROOT`` set, the per-invocation ``_X_AMZN_TRACE_ID`` header, and
a UDP socket of this test as the X-Ray daemon (``AWS_XRAY_DAEMON_ADDRESS``) that receives what the SDK emits.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.aws import MotoServer
from tests.support.env import ROOT, TABLE
from tests.support.xray import xray_documents


def trace(invocation: int, sampled: bool) -> str:
    """The header Lambda sets for one invocation: every invocation is a trace of its own (a Root of its own)."""
    return f"Root={root(invocation)};Parent=53995c3f42cd8ad8;Sampled={int(sampled)}"


def root(invocation: int) -> str:
    return f"1-67891233-abcdef0123456789123456{invocation:02d}"


# One process = one Lambda execution environment: import the function once, then one invocation per trace header.
INVOKE = r"""
import json, os, sys
function_dir, shared_dir, event_file, *traces = sys.argv[1:]
sys.path[:0] = [function_dir, shared_dir]

class Context:
    function_name = "ListChatsFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ListChatsFunction"
    aws_request_id = "tracing-request"
    def get_remaining_time_in_millis(self):
        return 60_000

with open(event_file) as handle:
    event = json.load(handle)
import app
for trace in traces:
    os.environ["_X_AMZN_TRACE_ID"] = trace  # as the runtime sets it before each invocation
    status = app.handler(event, Context())["statusCode"]
    print("RESULT " + json.dumps({"status": status, "xray_sdk_loaded": "aws_xray_sdk" in sys.modules}), flush=True)
"""


def invoke(moto_server: MotoServer, daemon: socket.socket, *traces: str) -> list[dict[str, Any]]:
    function_dir = ROOT / "functions" / "list_chats"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_TRACE", "AWS_XRAY", "_X_AMZN"))
    }
    env |= {
        "TABLE_NAME": TABLE,
        "AWS_ENDPOINT_URL_DYNAMODB": moto_server.endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": "ListChatsFunction",
        "LAMBDA_TASK_ROOT": str(function_dir),
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "POWERTOOLS_SERVICE_NAME": "aurora-chats",
    }
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            INVOKE,
            str(function_dir),
            str(ROOT / "shared"),
            str(ROOT / "events" / "list_chats.json"),
            *traces,
        ],
        env=env,
        cwd=Path(function_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = [json.loads(line[7:]) for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert [r["status"] for r in results] == [200] * len(traces), run.stdout[-3000:]
    return results


def handler_subsegments(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in documents if d.get("name") == "## handler"]


def dynamodb_subsegments(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in documents if d.get("namespace") == "aws" and d.get("name") == "dynamodb"]


def test_an_unsampled_invocation_never_loads_the_xray_sdk_nor_emits_anything(
    moto_server: MotoServer, server_ddb: Any, xray_daemon: socket.socket
) -> None:
    results = invoke(moto_server, xray_daemon, trace(1, False), trace(2, False))
    assert [r["xray_sdk_loaded"] for r in results] == [False, False]
    assert xray_documents(xray_daemon) == []


def test_a_sampled_invocation_emits_the_handler_and_its_dynamodb_calls(
    moto_server: MotoServer, server_ddb: Any, xray_daemon: socket.socket
) -> None:
    results = invoke(moto_server, xray_daemon, trace(1, True))
    assert results[0]["xray_sdk_loaded"] is True
    documents = xray_documents(xray_daemon)
    handlers = handler_subsegments(documents)
    assert len(handlers) == 1, [d.get("name") for d in documents]
    assert handlers[0]["trace_id"] == root(1)
    assert handlers[0]["annotations"]["ColdStart"] is True
    assert handlers[0]["annotations"]["Service"] == "aurora-chats"
    queries = dynamodb_subsegments(documents)
    assert [q["aws"]["operation"] for q in queries] == ["Query"], queries
    assert queries[0]["aws"]["table_name"] == TABLE
    assert queries[0]["trace_id"] == root(1)
    assert queries[0]["parent_id"] == handlers[0]["id"]


def test_sampling_is_decided_per_invocation_and_the_cold_start_is_the_first_invocation_only(
    moto_server: MotoServer, server_ddb: Any, xray_daemon: socket.socket
) -> None:
    sampled = [False, True, False, True]
    results = invoke(moto_server, xray_daemon, *(trace(i, s) for i, s in enumerate(sampled)))
    assert [r["xray_sdk_loaded"] for r in results] == [False, True, True, True]
    documents = xray_documents(xray_daemon)
    handlers = handler_subsegments(documents)
    # Only the sampled invocations are traced, the unsampled one after the SDK was loaded included.
    assert sorted(h["trace_id"] for h in handlers) == [root(1), root(3)], [d.get("name") for d in documents]
    assert sorted(q["trace_id"] for q in dynamodb_subsegments(documents)) == [root(1), root(3)]
    # The environment's cold start was the first (unsampled) invocation: no sampled one may claim it.
    assert [h["annotations"]["ColdStart"] for h in handlers] == [False, False]
