"""Sections 1 + 2: cold start and peak RSS of each API function versus the floor."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from aurora_chats.dal import keys

from bench.children import lambda_env, run_child
from bench.common import (
    CHARACTER_ID,
    DELETE_CHAT_ID,
    EVENTS,
    ROOT,
    TABLE,
    TRACE_SAMPLED,
    TRACE_UNSAMPLED,
    log,
    median,
)
from bench.layer import build_layer, source_only_shared
from bench.table import seed_chat


def cold_starts(endpoint: str, layer: Path, python: str, rounds: int) -> dict[str, Any]:
    """Interleaved fresh processes: floor, list, initialize, delete, list (X-Ray sampled), ..., floor, ..."""
    workdir = Path(tempfile.mkdtemp(prefix="aurora-bench-events-"))
    floor_event = workdir / "floor.json"
    floor_event.write_text(json.dumps({"table": TABLE, "key": keys.character_key(CHARACTER_ID)}))
    source_layer, source_shared = build_layer(python, compiled=False), source_only_shared()
    shared = str(ROOT / "shared")
    list_event = str(ROOT / "events" / "list_chats.json")
    # name: (function dir, kind, event, expected status, trace header, layer, shared, interpreter flags)
    Contender = tuple[str, str, str, int, str, str, str, tuple[str, ...]]
    contenders: dict[str, Contender] = {
        "floor": ("list_chats", "floor", str(floor_event), 200, TRACE_UNSAMPLED, str(layer), shared, ())
    }
    for function, (event_file, status) in EVENTS.items():
        event = str(ROOT / "events" / event_file)
        contenders[function] = (function, function, event, status, TRACE_UNSAMPLED, str(layer), shared, ())
    contenders["list_chats (X-Ray sampled)"] = (
        "list_chats", "list_chats", list_event, 200, TRACE_SAMPLED, str(layer), shared, ()
    )  # fmt: skip
    # The layer as the python3.13 builder would ship it: sources only, never compiled to disk (-B: /opt is read-only on Lambda).
    source = (str(source_layer), str(source_shared), ("-B",))
    contenders["floor, layer without .pyc"] = (
        "list_chats",
        "floor",
        str(floor_event),
        200,
        TRACE_UNSAMPLED,
        *source,
    )
    contenders["list_chats, layer without .pyc"] = (
        "list_chats",
        "list_chats",
        list_event,
        200,
        TRACE_UNSAMPLED,
        *source,
    )
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    for round_ in range(rounds + 1):  # round 0 warms the page cache and writes shared/'s .pyc; not counted
        for name, (function, kind, event, status, trace, layer_dir, shared_dir, flags) in contenders.items():
            if kind == "delete_chat":
                seed_chat(endpoint, TABLE, DELETE_CHAT_ID)
            env = lambda_env(endpoint, TABLE, function, trace)
            paths = [str(ROOT / "functions" / function), shared_dir, layer_dir]
            result = run_child("cold.py", [kind, event, "{result}", *paths], env, python, flags)
            if result["status"] != status:
                raise SystemExit(f"cold start of {name}: status {result['status']}, expected {status}")
            if round_:
                samples[name].append(result)
        if round_:
            log(f"  cold round {round_}/{rounds}")
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(source_shared, ignore_errors=True)
    figures: dict[str, Any] = {}
    for name, runs in samples.items():
        figures[name] = {
            "wall_ms": median([r["wall_ms"] for r in runs]),
            "cpu_ms": median([r["cpu_ms"] for r in runs]),
            "maxrss_mb": median([r["maxrss_kb"] / 1024 for r in runs]),
            "runs": len(runs),
            "wall_ms_all": [round(r["wall_ms"], 1) for r in runs],
            "cpu_ms_all": [round(r["cpu_ms"], 1) for r in runs],
        }
    return figures
