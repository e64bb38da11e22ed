"""The built artifact: what ``sam build`` puts in the deployment package is enough to run every function.

``make smoke-build`` builds the template as it is (arm64) and an x86_64 twin (this machine is x86_64). Each function
of the x86_64 build is then imported and invoked on its ``events/`` in a clean interpreter (``-I -S``: no
site-packages, no PYTHONPATH) whose ``sys.path`` is the built function directory and the built layer, as Lambda's is -
so a dependency missing from the layer fails here, not in production. DynamoDB (and EventBridge) is the moto server of
this test process, reached through ``AWS_ENDPOINT_URL``; moto itself is not importable in the subprocess (checked).
The invocations are X-Ray sampled with a UDP "daemon" in this test: DynamoDB calls must arrive as subsegments.
The arm64 layer must hold the same distributions, with aarch64 native code.

Runs in ``make test`` (marked ``slow``; it builds when ``make smoke`` has not already: ~30 s, cached by SAM).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aurora_local.template import load_template

from tests.support.aws import MotoServer
from tests.support.env import ROOT, TABLE
from tests.support.xray import xray_documents

pytestmark = pytest.mark.slow

SMOKE = ROOT / ".aws-sam" / "smoke"
ELF_MACHINE = {"x86_64": 62, "arm64": 183}
TRACE_HEADER = "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1"

INVOKE = r"""
import json, sys
function_dir, layer_dir, *events = sys.argv[1:]
sys.path[:0] = [function_dir, layer_dir]
assert not any("site-packages" in p for p in sys.path), sys.path
try:
    import moto  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("not isolated: moto is importable")
import app

class Context:
    function_name = "smoke"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:smoke"
    aws_request_id = "smoke-request"
    def get_remaining_time_in_millis(self):
        return 60_000

for path in events:
    with open(path) as handle:
        event = json.load(handle)
    result = app.handler(event, Context())
    print("RESULT " + json.dumps({"event": path, "result": result}), flush=True)
"""


@pytest.fixture(scope="module")
def built() -> Path:
    if os.environ.get("SMOKE_BUILT") != "1":
        subprocess.run(["make", "-s", "smoke-build"], cwd=ROOT, check=True, timeout=600)
    for arch in ELF_MACHINE:
        assert (SMOKE / arch / "template.yaml").is_file(), f"no {arch} build in {SMOKE}"
    return SMOKE


def functions_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def events_for(resource: dict[str, Any]) -> list[Path]:
    """The events/ files this function is triggered with, matched on the template's event sources."""
    sources = resource["Properties"].get("Events", {}).values()
    routes = {
        f"{s['Properties']['Method']} {s['Properties']['Path']}" for s in sources if s["Type"] == "HttpApi"
    }
    stream = any(s["Type"] == "DynamoDB" for s in sources)
    rules = any(s["Type"] == "EventBridgeRule" for s in sources)
    matched = []
    for path in sorted((ROOT / "events").glob("*.json")):
        event = json.loads(path.read_text())
        if (
            event.get("routeKey") in routes
            or (stream and "Records" in event)
            or (rules and "detail-type" in event)
        ):
            matched.append(path)
    return matched


def lambda_environment(moto_server: MotoServer, daemon: socket.socket, function: str) -> dict[str, str]:
    """Only what Lambda would set: the template's Globals (intrinsics resolved by hand) and the runtime's own."""
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    env = {k: str(v) for k, v in variables.items() if isinstance(v, str)}
    env.update(
        {
            "TABLE_NAME": TABLE,
            "CHAT_RETENTION_DAYS": "0",
            "CURSOR_SECRET": "smoke-cursor-secret",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_ENDPOINT_URL": moto_server.endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": function,
            "LAMBDA_TASK_ROOT": str(SMOKE / "x86_64" / function),
            "_X_AMZN_TRACE_ID": TRACE_HEADER,
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(SMOKE),
        }
    )
    return env


FUNCTIONS = sorted(functions_of(load_template()))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_built_function_runs_on_its_events_with_only_the_layer_and_its_own_code(
    built: Path, moto_server: MotoServer, server_ddb: Any, xray_daemon: socket.socket, function: str
) -> None:
    template = load_template(built / "x86_64" / "template.yaml")
    resource = functions_of(template)[function]
    function_dir = built / "x86_64" / resource["Properties"]["CodeUri"]
    layer_dir = built / "x86_64" / template["Resources"]["SharedLayer"]["Properties"]["ContentUri"] / "python"
    events = events_for(resource)
    assert events, f"no events/ file triggers {function}"
    layer_before = _files(layer_dir)
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-c", INVOKE, str(function_dir), str(layer_dir), *map(str, events)],
        env=lambda_environment(moto_server, xray_daemon, function),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # /opt is read-only on Lambda: the import must use the shipped bytecode as it is, never compile or rewrite it
    # (the child may write bytecode: a missing, stale or mismatched .pyc would show up as a new or changed file).
    assert _files(layer_dir) == layer_before, "importing the built layer wrote bytecode into it"
    results = [json.loads(line[7:]) for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert [Path(r["event"]).name for r in results] == [e.name for e in events]
    for outcome in results:
        result = outcome["result"]
        if "statusCode" in result:  # an API function
            assert result["statusCode"] < 500, outcome
            expected = {"list_chats.json": 200, "initialize_chat.json": 201}.get(Path(outcome["event"]).name)
            assert expected is None or result["statusCode"] == expected, outcome
        elif "batchItemFailures" in result:  # a stream batch
            assert result["batchItemFailures"] == [], outcome
        else:  # an EventBridge event
            assert result.get("complete") is True, outcome
    metrics = {
        name
        for line in run.stdout.splitlines()
        if line.startswith("{") and '"_aws"' in line
        for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]
        for name in (metric["Name"] for metric in directive["Metrics"])
    }
    if function == "InitializeChatFunction":
        assert "ChatsCreated" in metrics, run.stdout[-2000:]  # EMF from the built artifact, namespace and all
    subsegments = [d for d in xray_documents(xray_daemon) if d.get("type") == "subsegment"]
    dynamodb = [s for s in subsegments if s.get("namespace") == "aws" and s.get("name") == "dynamodb"]
    assert dynamodb, f"no DynamoDB subsegment reached X-Ray: {[s.get('name') for s in subsegments]}"
    assert all(s["aws"]["operation"] and s["aws"].get("table_name", TABLE) == TABLE for s in dynamodb), (
        dynamodb
    )
    assert any(s.get("name") == "## handler" for s in subsegments)
    traced = json.dumps(subsegments)
    for outcome in results:
        message = json.loads(outcome["result"].get("body") or "{}").get("message", {}).get("content")
        assert not message or message not in traced, "a response body reached X-Ray metadata"


def _files(directory: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


def test_the_layer_ships_unchecked_hash_bytecode_for_every_module(built: Path) -> None:
    """shared/Makefile compiles the layer (``compileall --invalidation-mode unchecked-hash``): every module has its
    CPython 3.13 ``.pyc`` that the interpreter loads without checking the source (flags 0b01 of PEP 552)."""
    for arch in ELF_MACHINE:
        layer = built / arch / "SharedLayer" / "python"
        sources = list(layer.rglob("*.py"))
        for package in ("aurora_chats", "pydantic", "aws_lambda_powertools", "botocore"):
            assert any(p.is_relative_to(layer / package) for p in sources), (
                f"{arch}: no {package} in the layer"
            )
        for source in sources:
            compiled = Path(importlib.util.cache_from_source(str(source)))
            assert compiled.is_file(), f"{arch}: no bytecode for {source.relative_to(layer)}"
            header = compiled.read_bytes()[:8]
            assert header[:4] == importlib.util.MAGIC_NUMBER, f"{arch}: {compiled.name} is not CPython 3.13's"
            assert int.from_bytes(header[4:8], "little") == 0b01, (
                f"{arch}: {compiled.name} is not unchecked-hash"
            )


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return int.from_bytes(header[18:20], "little")


def test_both_architectures_ship_the_same_distributions_with_native_code_for_their_cpu(built: Path) -> None:
    contents = {}
    for arch, machine in ELF_MACHINE.items():
        layer = built / arch / "SharedLayer" / "python"
        contents[arch] = sorted(p.name for p in layer.iterdir() if p.name.endswith(".dist-info"))
        native = list(layer.rglob("*.so"))
        assert native, f"{arch}: no native extension at all (pydantic-core has one)"
        assert {_elf_machine(p) for p in native} == {machine}, arch
    assert contents["arm64"] == contents["x86_64"]
    locked = {
        line.split("==")[0].strip().lower().replace("-", "_")
        for line in (ROOT / "shared" / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    shipped = {name.split("-")[0].lower() for name in contents["arm64"]}
    assert locked <= shipped, f"locked but not in the layer: {locked - shipped}"
    assert (built / "arm64" / "SharedLayer" / "python" / "aurora_chats" / "http.py").is_file()
