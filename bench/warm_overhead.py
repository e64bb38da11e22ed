"""Section 3: warm overhead per request on a stub data layer (``bench/warm.py`` in each child)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.children import lambda_env, run_child
from bench.common import ROOT, TABLE, log, median


def warm_overhead(layer: Path, python: str, processes: int, requests: int) -> dict[str, Any]:
    samples: dict[str, list[dict[str, float]]] = {}
    for index in range(processes):
        env = lambda_env("http://127.0.0.1:9", TABLE, "list_chats")  # the stub never calls DynamoDB
        paths = [str(ROOT / "shared"), str(layer)]
        result = run_child("warm.py", [str(ROOT), "{result}", str(requests), *paths], env, python)
        for route, figure in result.items():
            samples.setdefault(route, []).append(figure)
        log(f"  warm process {index + 1}/{processes}")
    return {
        route: {
            "us_per_request": median([v["cpu_us"] for v in values]),
            "wall_us_per_request": median([v["wall_us"] for v in values]),
            "processes": len(values),
        }
        for route, values in samples.items()
    }
