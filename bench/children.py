"""Fresh ``python3.13 -I -S`` children with the deployed environment."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.common import BENCH, REGION, ROOT, TRACE_UNSAMPLED


def template_env() -> dict[str, str]:
    """The literal environment variables of template.yaml's Globals (what every deployed function gets)."""
    from aurora_local.template import load_template

    variables = (
        load_template().get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    return {name: str(value) for name, value in variables.items() if isinstance(value, str | int | float)}


def lambda_env(endpoint: str, table: str, function: str, trace: str = TRACE_UNSAMPLED) -> dict[str, str]:
    """The environment of a deployed function inside Lambda (template.yaml Globals), DynamoDB pointed at moto."""
    return template_env() | {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
        "_X_AMZN_TRACE_ID": trace,
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",  # UDP, fire and forget: nothing listens
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "TABLE_NAME": table,
        "CHAT_RETENTION_DAYS": "0",
        "CURSOR_SECRET": "bench-cursor-secret",
        "POWERTOOLS_SERVICE_NAME": "aurora-chats",
        "POWERTOOLS_METRICS_NAMESPACE": "AuroraChats",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_DEV": "false",
    }


def run_child(
    script: str, args: list[str], env: dict[str, str], python: str, flags: tuple[str, ...] = ()
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_file = handle.name
    try:
        command = [python, "-I", "-S", *flags, str(BENCH / script), *insert_result(args, result_file)]
        done = subprocess.run(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"{script} {args[0]} failed:\n{done.stderr.decode()[-3000:]}")
        result: dict[str, Any] = json.loads(Path(result_file).read_text())
        return result
    finally:
        Path(result_file).unlink(missing_ok=True)


def insert_result(args: list[str], result_file: str) -> list[str]:
    """Arguments with ``{result}`` replaced by the child's result file."""
    return [result_file if arg == "{result}" else arg for arg in args]
