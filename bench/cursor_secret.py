"""What keeping CURSOR_SECRET out of the environment would cost each cold start (``make bench-secret``).

Side by side in one run, interleaved, medians over fresh ``python3.13 -I`` processes (the project's site-packages):

* ``environment``: what the functions do - a botocore session's DynamoDB client, the secret read from the
  environment (the template resolves it at deploy time);
* ``secrets-manager``: the same, plus a Secrets Manager client and one ``GetSecretValue`` at init (against moto's
  server over loopback, so the network round trip of a real call - a few ms inside a region - is not included).

Prints CPU and wall milliseconds of each and the difference. Not a test: timings belong to benchmarks.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, os, resource, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import botocore.session
session = botocore.session.get_session()
session.create_client("dynamodb")
if sys.argv[1] == "secrets-manager":
    secret = session.create_client("secretsmanager").get_secret_value(SecretId="cursor")["SecretString"]
else:
    secret = os.environ["CURSOR_SECRET"]
assert secret
print(json.dumps({"cpu_ms": (time.process_time() - c0) * 1e3, "wall_ms": (time.perf_counter() - t0) * 1e3}))
"""


def main(rounds: int = 9) -> int:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "CURSOR_SECRET": "x" * 48,
    }
    import boto3

    boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    ).create_secret(Name="cursor", SecretString="x" * 48)
    results: dict[str, list[dict[str, float]]] = {"environment": [], "secrets-manager": []}
    for _ in range(rounds):
        for kind in results:
            out = subprocess.run(
                [sys.executable, "-I", "-c", CHILD, kind], env=env, capture_output=True, text=True, check=True
            ).stdout
            results[kind].append(json.loads(out))
    server.stop()
    medians = {
        kind: {figure: statistics.median(run[figure] for run in runs) for figure in ("cpu_ms", "wall_ms")}
        for kind, runs in results.items()
    }
    for kind, figures in medians.items():
        print(
            f"{kind:16} {figures['cpu_ms']:7.1f} ms CPU  {figures['wall_ms']:7.1f} ms wall  (median of {rounds})"
        )
    extra_cpu = medians["secrets-manager"]["cpu_ms"] - medians["environment"]["cpu_ms"]
    extra_wall = medians["secrets-manager"]["wall_ms"] - medians["environment"]["wall_ms"]
    print(f"Secrets Manager at init costs {extra_cpu:+.1f} ms CPU, {extra_wall:+.1f} ms wall per cold start")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
