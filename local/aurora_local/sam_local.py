"""Helpers for running the real SAM CLI (``sam local invoke`` / ``start-api``) against this project.

* ``derive``: from a ``sam build`` output template, the template ``make sam-start-api`` serves. SAM CLI drops JWT
  authorizers, so each API function's handler becomes ``aurora_sam_auth.handler`` (``local/sam_auth_layer``, a layer
  only this derived template has), which checks ``make token``'s tokens and passes the claims on as API Gateway would.
  Nothing else changes; ``template.yaml`` and the deployed stack never see it (tests/unit/test_sam_local.py).
* ``dynamodb``: the project's embedded DynamoDB (moto with DynamoDB's semantics, the table from ``template.yaml``,
  ``characters/`` imported) on a chosen address, for SAM's containers to reach (``make run`` binds 127.0.0.1 only).

``python -m aurora_local.sam_local derive BUILT_TEMPLATE OUT`` / ``python -m aurora_local.sam_local dynamodb --host H
--port P``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from aurora_local.template import ROOT, load_template

AUTH_LAYER_ID = "SamLocalAuthLayer"
AUTH_LAYER_DIR = ROOT / "local" / "sam_auth_layer"
AUTH_HANDLER = "aurora_sam_auth.handler"
ENV_FILE = ROOT / "local" / "sam-env.json"


def _is_api_function(resource: dict[str, Any]) -> bool:
    events = (resource.get("Properties") or {}).get("Events") or {}
    return resource.get("Type") == "AWS::Serverless::Function" and any(
        event.get("Type") == "HttpApi" for event in events.values()
    )


def derive(built: dict[str, Any]) -> dict[str, Any]:
    """The built template with the local token check in front of every API function (a new dict)."""
    derived: dict[str, Any] = yaml.safe_load(yaml.safe_dump(built))  # a deep copy of plain data
    resources: dict[str, Any] = derived["Resources"]
    if AUTH_LAYER_ID in resources:
        raise ValueError(f"{AUTH_LAYER_ID} already in the template: derive from `sam build` output only")
    for resource in resources.values():
        if not _is_api_function(resource):
            continue
        props = resource["Properties"]
        original = props.get("Handler")
        if not isinstance(original, str) or original == AUTH_HANDLER:
            raise ValueError(f"unexpected handler {original!r}")
        props["Handler"] = AUTH_HANDLER
        variables = props.setdefault("Environment", {}).setdefault("Variables", {})
        variables["AURORA_SAM_HANDLER"] = original
        variables["LOCAL_JWT_SECRET"] = "local-dev-secret"  # `--env-vars` may override it (declared now)
        layers = list(
            props.get("Layers") or ((derived.get("Globals") or {}).get("Function") or {}).get("Layers") or []
        )
        props["Layers"] = [*layers, {"Ref": AUTH_LAYER_ID}]
    resources[AUTH_LAYER_ID] = {
        "Type": "AWS::Serverless::LayerVersion",
        "Properties": {
            "Description": "sam local only: the JWT check SAM CLI does not emulate (local/sam_auth_layer).",
            "ContentUri": str(AUTH_LAYER_DIR),
            "CompatibleRuntimes": ["python3.13"],
        },
    }
    return derived


def write_derived(built_template: Path, out: Path) -> None:
    load_template.cache_clear()
    derived = derive(load_template(built_template))
    # Relative CodeUri/ContentUri of the built template stay relative to its folder.
    base = built_template.resolve().parent
    for resource in derived["Resources"].values():
        props = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            value = props.get(key)
            if isinstance(value, str) and not os.path.isabs(value):
                props[key] = str(base / value)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(derived, sort_keys=False), encoding="utf-8")


def serve_dynamodb(host: str, port: int) -> None:
    """The embedded DynamoDB on ``host:port`` with the local table and characters, until SIGTERM/SIGINT."""
    import boto3

    from aurora_local.dynamodb import ensure_table, import_characters, serve_dynamodb_endpoint
    from aurora_local.intrinsics import local_table_name, region

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = serve_dynamodb_endpoint(host, port)
    endpoint = f"http://127.0.0.1:{server.server_port}"
    ensure_table(boto3.client("dynamodb", endpoint_url=endpoint, region_name=region()), local_table_name())
    import_characters(local_table_name(), endpoint, region())
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"dynamodb ready on {host}:{server.server_port}", flush=True)
    stop.wait()
    server.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aurora_local.sam_local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    derive_cmd = commands.add_parser("derive", help="write the start-api template derived from a built one")
    derive_cmd.add_argument("built_template", type=Path)
    derive_cmd.add_argument("out", type=Path)
    dynamodb_cmd = commands.add_parser("dynamodb", help="serve the embedded DynamoDB on HOST:PORT")
    dynamodb_cmd.add_argument("--host", default="127.0.0.1")
    dynamodb_cmd.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.command == "derive":
        write_derived(args.built_template, args.out)
    else:
        serve_dynamodb(args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
