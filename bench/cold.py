"""One cold start, run by ``bench/run.py`` in a fresh ``python3.13 -I -S`` (stdlib only until the layer is added).

Usage: ``cold.py KIND EVENT_FILE RESULT_FILE LAYER_DIR...`` where KIND is ``floor`` or a function directory name.

Everything before ``t0`` is identical for every contender (loading the event, adding the layer to ``sys.path``).
Measured from ``t0``: the module import and the first call, as on Lambda's init + first invoke:

* ``floor``: ``import boto3; boto3.client("dynamodb")`` plus one ``GetItem`` (the functions also make their DynamoDB
  call in this window, so the floor pays one round trip to moto too);
* a function: ``import app`` (its directory first on ``sys.path``, as Lambda's ``app.handler``) and
  ``app.handler(event, context)``.

Writes ``{"wall_ms", "cpu_ms", "maxrss_kb", "status"}`` to RESULT_FILE; stdout carries the function's own logs.
Peak RSS is the kernel's high-water mark of this process image (``VmHWM``): on Linux ``ru_maxrss`` survives
``execve`` and would report the (much larger) bench parent that forked us; it is the fallback elsewhere.
"""

import json
import resource
import sys
import time


class Context:
    function_name = "bench-function"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-function"
    aws_request_id = "bench-request-id"
    log_group_name = "/aws/lambda/bench-function"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def peak_rss_kb() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    kind, event_file, result_file, *paths = sys.argv[1:]
    with open(event_file) as handle:
        event = json.load(handle)
    sys.path[:0] = paths
    status = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if kind == "floor":
        import boto3

        client = boto3.client("dynamodb")
        client.get_item(TableName=event["table"], Key=event["key"])
        status = 200
    else:
        import app  # type: ignore[import-not-found]

        status = app.handler(event, Context())["statusCode"]
    wall1, cpu1 = time.perf_counter(), time.process_time()
    result = {
        "wall_ms": (wall1 - wall0) * 1000,
        "cpu_ms": (cpu1 - cpu0) * 1000,
        "maxrss_kb": peak_rss_kb(),
        "status": status,
    }
    with open(result_file, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
