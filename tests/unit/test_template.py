"""The SAM template: valid, linted, buildable, and shaped as DESIGN.md says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aurora_local.template import load_template, resources

from tests.support.env import ROOT

# `uv run` tells its children where it is (UV); a `uv` found on PATH may be a shim that fails.
UV = os.environ.get("UV") or str(ROOT / ".tools" / "bin" / "uv")


def test_functions_run_python313_on_arm64_with_tracing() -> None:
    globals_ = load_template()["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Tracing"] == "Active"
    env = globals_["Environment"]["Variables"]
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= set(env)


def test_every_api_function_has_its_route_and_no_wildcard_permissions() -> None:
    functions = resources("AWS::Serverless::Function")
    routes = {
        (e["Properties"]["Method"], e["Properties"]["Path"]): name
        for name, fn in functions.items()
        for e in fn["Properties"].get("Events", {}).values()
        if e["Type"] == "HttpApi"
    }
    assert routes == {
        ("GET", "/chats"): "ListChatsFunction",
        ("GET", "/chats/pages"): "ListChatsFunction",
        ("POST", "/characters/{characterId}/chats"): "InitializeChatFunction",
        ("DELETE", "/chats/{chatId}"): "DeleteChatFunction",
    }
    for fn in functions.values():
        for policy in fn["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []):
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                assert all("*" not in a and a != "dynamodb:Scan" for a in actions)


def test_list_function_can_only_read() -> None:
    policies = resources()["ListChatsFunction"]["Properties"]["Policies"]
    actions = {
        a
        for p in policies
        for s in p["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {"dynamodb:Query"}


def test_layer_requirements_are_exported_from_the_lock() -> None:
    exported = subprocess.run(
        [UV, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--format", "requirements-txt"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    committed = (ROOT / "shared" / "requirements.txt").read_text()

    def strip(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("#")]

    assert strip(exported) == strip(committed), "run `make lock` and commit shared/requirements.txt"


def _sam(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    python313 = Path(sys.executable).resolve()
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": f"{python313.parent}:{os.environ['PATH']}"}
    base = os.environ.get("PYTHON313") or next(
        iter(sorted(Path("/root/.pyenv/versions").glob("3.13*/bin/python3.13"))), None
    )
    cmd = [UV, "tool", "run", "--python", str(base or "3.13"), "--from", "aws-sam-cli==1.170.0", "sam", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_sam_validate_lint_passes() -> None:
    result = _sam("validate", "--lint", "--region", "us-east-1")
    assert result.returncode == 0, result.stdout + result.stderr


# `sam build` (arm64 and x86_64) and the built artifact are tested in tests/integration/test_smoke_build.py.
