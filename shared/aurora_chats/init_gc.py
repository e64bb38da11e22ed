"""No cyclic garbage collection while a Lambda function initialises and serves its first invocation.

A cold start allocates a few hundred thousand objects - modules, classes, functions, pydantic's and botocore's
tables, the DynamoDB client - that live as long as the container. CPython's collector, counting allocations, runs
~35 young and ~3 middle-generation collections over them during import and the first invocation (~15-17 ms of CPU,
``make bench``) and finds almost nothing to free (~850 objects of cyclic garbage). :func:`pause` (called first thing
by ``aurora_chats/__init__``) turns the collector off inside Lambda only; :func:`resume` (called by the handler
stack, :func:`aurora_chats.observability.lambda_handler`: when the first invocation starts, or for the API functions
when their first request is answered) moves everything alive at that point into the permanent generation
(``gc.freeze()``: never scanned again, so those ~850 objects are never freed) and turns the collector back on: every
later invocation collects as before, over its own objects only. Outside Lambda (tests, the local runtime, operator
tools) nothing changes.
"""

from __future__ import annotations

import gc
import os

_paused = False


def in_lambda() -> bool:
    """Whether this process is a Lambda runtime (``AWS_EXECUTION_ENV`` is ``AWS_Lambda_<runtime>`` there)."""
    return os.environ.get("AWS_EXECUTION_ENV", "").startswith("AWS_Lambda_")


def pause() -> bool:
    """Turn the collector off for the initialisation, inside Lambda and if it is on; returns whether it did."""
    global _paused
    if _paused or not in_lambda() or not gc.isenabled():
        return _paused
    gc.disable()
    _paused = True
    return True


def resume() -> None:
    """After the first invocation: freeze what initialisation built and turn the collector back on (once)."""
    global _paused
    if not _paused:
        return
    _paused = False
    gc.freeze()
    gc.enable()
