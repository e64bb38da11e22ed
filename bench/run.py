"""``make bench``: cold start, memory, warm overhead and DynamoDB cost of the API, measured side by side in one run.

Sections (figures go to ``bench/results.json``; the table printed at the end gives each budget line):

1. cold start of each API function versus the floor ``import boto3; boto3.client("dynamodb")`` + one ``GetItem``
   (the functions make their DynamoDB call inside the measured window too), as wall-time and CPU-time ratios; the
   verdict takes the stricter one. Also: a cold start whose invocation X-Ray samples, and floor and function with
   the layer as ``sam build``'s python3.13 builder would ship it (sources only, nothing compiled to disk: ``-B``, as on read-only ``/opt``);
2. peak RSS (``VmHWM``) of the same processes;
3. warm overhead per request on a stub data layer (``bench/warm.py``), CPU µs, with the framework alone for scale;
4. DynamoDB calls and capacity units per operation (the real handlers against moto; units computed from item sizes);
5. purge cost and wall time for chats of 100, 1,000 and 10,000 messages, and DELETE latency against a control;
6. GET /chats requests/s over loopback through ``make run``.

The layer is the one ``sam build`` ships (``shared/Makefile``: unchecked-hash bytecode) when ``make smoke-build`` or
``make build`` made one for this CPU holding exactly the pinned distributions; else it is mimicked:
``shared/requirements.txt`` (exported from ``uv.lock``) installed with ``uv pip install --target`` into a cache
directory under ``$TMPDIR`` (bytecode precompiled, timestamp-checked: the same load cost). Either way ``shared/``
itself comes first on the path, so the code measured is the working tree's; each child is a fresh ``python3.13 -I -S`` whose ``sys.path`` holds only the standard library, the function
directory and that layer - never the dev virtualenv - with the deployed environment (``template.yaml`` Globals,
``LAMBDA_TASK_ROOT``, an X-Ray trace header). Contenders are interleaved (floor, list, initialize, delete, ...,
floor, ...) so machine drift hits all alike, and every figure is the median over fresh processes (9 by default).
One moto server (``ThreadedMotoServer``) serves the whole run. Tests never assert timings; not part of ``make test``.

One module per section, run as ``python -m bench.run`` from the repository root (``make bench``): ``common``
(constants, helpers), ``layer``, ``table`` (moto, seeding through the data layer), ``children`` (the child
processes' environment), ``cold_start`` (1 + 2), ``warm_overhead`` (3, children run ``warm.py``; ``cold.py`` is the
cold-start child), ``dynamodb_cost`` (4), ``purge`` (5), ``loopback`` (6), ``report``. In-process sections use the
tests' support code (``tests.support.context``) and the local runtime's loader; keys come from
``aurora_chats.dal.keys``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from typing import Any

from bench.cold_start import cold_starts
from bench.common import REGION, RESULTS, ROOT, TABLE, log, python313
from bench.dynamodb_cost import dynamodb_cost
from bench.layer import build_layer, sam_built_layer
from bench.loopback import loopback
from bench.purge import purge_cost
from bench.report import print_table, report
from bench.table import create_table, moto_server
from bench.warm_overhead import warm_overhead


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--rounds", type=int, default=9, help="fresh processes per cold-start contender (>= 7)"
    )
    parser.add_argument("--warm-processes", type=int, default=7)
    parser.add_argument("--warm-requests", type=int, default=2000)
    parser.add_argument("--purge-sizes", default="100,1000,10000")
    parser.add_argument("--delete-samples", type=int, default=5, help="DELETE latency samples per chat size")
    parser.add_argument("--loopback-seconds", type=float, default=5.0)
    parser.add_argument(
        "--only", default="cold,warm,dynamodb,purge,loopback", help="comma-separated sections to run"
    )
    args = parser.parse_args(argv)
    sections = set(args.only.split(","))
    python = python313()
    built = sam_built_layer()
    layer = built or build_layer(python)
    # moto accepts any credentials; never let the bench find (or use) real ones.
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        os.environ.pop(name, None)
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench",
         "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
    )  # fmt: skip
    # Before the first import of the service's observability module (Metrics reads its namespace once).
    os.environ.update(
        {"POWERTOOLS_SERVICE_NAME": "aurora-chats", "POWERTOOLS_METRICS_NAMESPACE": "AuroraChats"}
    )
    started = time.monotonic()
    results: dict[str, Any] = {
        "python": subprocess.run([python, "-VV"], capture_output=True, text=True, check=True).stdout.strip(),
        "layer": (
            f"{layer} (sam build: shared/Makefile, unchecked-hash .pyc) + shared/"
            if built
            else f"{layer} (uv pip install --target --compile-bytecode of shared/requirements.txt) + shared/"
        ),
        "cpus": os.cpu_count(),
    }
    with moto_server() as endpoint:
        create_table(endpoint, TABLE)
        if "cold" in sections:
            log(f"cold starts ({args.rounds} interleaved rounds) ...")
            results["cold_start"] = cold_starts(endpoint, layer, python, args.rounds)
        if "warm" in sections:
            log("warm overhead ...")
            results["warm_overhead"] = warm_overhead(layer, python, args.warm_processes, args.warm_requests)
        if "dynamodb" in sections:
            log("DynamoDB calls and capacity ...")
            results["dynamodb"] = dynamodb_cost(endpoint)
        if "purge" in sections:
            log("purge cost ...")
            sizes = [int(n) for n in args.purge_sizes.split(",")]
            results["purge"] = purge_cost(endpoint, sizes, args.delete_samples)
    if "loopback" in sections:
        log("GET /chats over loopback through make run ...")
        results["loopback"] = loopback(args.loopback_seconds)
    rows = report(results)
    results["table"] = [list(row) for row in rows]
    results["seconds"] = round(time.monotonic() - started, 1)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(rows)
    print(f"\n{len(rows)} figures in {results['seconds']} s; written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
