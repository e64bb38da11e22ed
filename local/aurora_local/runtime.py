"""The functions of ``template.yaml`` as local, in-process Lambda execution environments.

Everything comes from the template: ``CodeUri`` + ``Handler`` say what to import, ``Layers`` what to put on
``sys.path``, ``Globals`` + the function's ``Environment`` what to put in the environment, ``Events`` which routes
and streams feed it. Intrinsics are resolved the way CloudFormation would for a local stack: ``!Ref`` of a parameter
is its ``Default``, ``!Ref`` of the table is the local table's name; a value that only exists in AWS (a Secrets
Manager dynamic reference, ...) becomes a local value: the shell's variable of that name, else
``local-dev-<name>`` (``CURSOR_SECRET`` -> ``local-dev-cursor-secret``).

Each function is ONE execution environment, as a Lambda function with reserved concurrency 1: its module is imported
once (cold start), its invocations run one at a time (the Powertools resolver keeps the current event on the module's
``app``), and different functions run concurrently. ``make run`` gives each its own process
(:class:`WorkerFunction`), so what Lambda isolates stays isolated: the shared layer's Powertools logger keys and
metrics, module caches, the environment. ``make invoke`` runs one function in-process (:class:`LocalFunction`).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import ModuleType
from typing import Any

from aurora_local.intrinsics import (
    ACCOUNT_ID,
    DEFAULT_REGION,
    Resolver,
    Unresolvable,
    local_table_name,
    local_value,
    parameter_overrides,
    region,
)
from aurora_local.loader import load_module
from aurora_local.template import TEMPLATE, load_template


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    events: dict[str, dict[str, Any]]

    def events_of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            name: event.get("Properties") or {}
            for name, event in self.events.items()
            if event["Type"] == kind
        }


def function_specs(template_path: Path = TEMPLATE, table_name: str | None = None) -> dict[str, FunctionSpec]:
    """Every ``AWS::Serverless::Function`` of the template, with ``Globals`` applied and intrinsics resolved."""
    template = load_template(template_path)
    overrides = parameter_overrides()
    unknown = sorted(set(overrides) - set(template.get("Parameters") or {}))
    if unknown:
        raise ValueError(
            f"PARAMETER_OVERRIDES names no parameter of {template_path.name}: {', '.join(unknown)}"
        )
    resolver = Resolver(template, table_name or local_table_name(), template_path, overrides)
    root = template_path.parent
    global_props: dict[str, Any] = (template.get("Globals") or {}).get("Function") or {}
    resources: dict[str, dict[str, Any]] = template["Resources"]
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = {**global_props, **(resource.get("Properties") or {})}
        variables: dict[str, Any] = {
            **((global_props.get("Environment") or {}).get("Variables") or {}),
            **(((resource.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}),
        }
        environment: dict[str, str] = {}
        for name, value in variables.items():
            try:
                environment[name] = resolver.resolve(value)
            except Unresolvable:
                environment[name] = local_value(name)
            if name.startswith("AWS_ENDPOINT_URL") and not environment[name]:
                # Declared empty for `sam local --env-vars` (botocore reads "" as no override): the local runtime
                # passes its own endpoint instead, as an env file would.
                del environment[name]
        layer_dirs: list[Path] = []
        for layer in props.get("Layers") or []:
            if isinstance(layer, dict) and "Ref" in layer and layer["Ref"] in resources:
                layer_props = resources[layer["Ref"]].get("Properties") or {}
                content = layer_props.get("ContentUri")
                if isinstance(content, str):
                    layer_dirs.append((root / content).resolve())
        code_uri = props.get("CodeUri")
        if not isinstance(code_uri, str):
            raise ValueError(f"{logical_id}: only a local CodeUri folder is supported, got {code_uri!r}")
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_dir=(root / code_uri).resolve(),
            handler=str(props["Handler"]),
            layer_dirs=tuple(layer_dirs),
            environment=environment,
            timeout_seconds=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            events=dict(props.get("Events") or {}),
        )
    return specs


def shared_environment(specs: dict[str, FunctionSpec]) -> dict[str, str]:
    """The union of the functions' environments (one process hosts them all, so they must agree)."""
    merged: dict[str, str] = {}
    for spec in specs.values():
        for name, value in spec.environment.items():
            if merged.get(name, value) != value:
                raise ValueError(f"functions disagree on {name}: they cannot share one process")
            merged[name] = value
    return merged


def prepare_process(specs: dict[str, FunctionSpec], *, function_environment: bool = True) -> None:
    """Environment and ``sys.path`` for hosting the functions, before any of them is imported.

    ``function_environment=False``: the functions run elsewhere (their workers set their own environment).
    """
    os.environ.setdefault("AWS_REGION", DEFAULT_REGION)
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ["AWS_REGION"])
    if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        os.environ["AWS_ACCESS_KEY_ID"] = "local"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "local"
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")  # no X-Ray daemon here
    if function_environment:
        os.environ.update(shared_environment(specs))
    for spec in specs.values():
        for layer in spec.layer_dirs:
            for folder in (layer / "python", layer):
                if folder.is_dir() and str(folder) not in sys.path:
                    sys.path.insert(0, str(folder))


class LambdaContext:
    """The context object Lambda passes to a handler (the fields Powertools and handlers read)."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.function_name = spec.logical_id
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region()}:{ACCOUNT_ID}:function:{spec.logical_id}"
        self.memory_limit_in_mb = spec.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.logical_id}"
        self.log_stream_name = "local"
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + spec.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionError(Exception):
    """The function raised, crashed or timed out (Lambda reports it as a function error)."""


class RuntimeStopping(FunctionError):
    """The runtime is stopping: the function was not invoked (the gateway answers 503)."""


@dataclass
class LocalFunction:
    """One execution environment of one function, in this process: imported once, one invocation at a time.

    ``make invoke`` and tests use it directly; ``make run`` uses :class:`WorkerFunction`.
    """

    spec: FunctionSpec
    _module: ModuleType | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.spec.logical_id

    @property
    def module(self) -> ModuleType | None:
        return self._module

    def load(self) -> Callable[[dict[str, Any], Any], Any]:
        module_path, _, attribute = self.spec.handler.rpartition(".")
        if self._module is None:
            path = self.spec.code_dir / (module_path.replace(".", "/") + ".py")
            module_name = f"aurora_local_fn_{self.spec.logical_id}"
            self._module = load_module(path, module_name)
        handler: Callable[[dict[str, Any], Any], Any] = getattr(self._module, attribute)
        return handler

    def start(self) -> None:
        """Begin the cold start (here: import the module now)."""
        self.load()

    def wait_ready(self) -> None:
        """Wait for the cold start begun by :meth:`start`."""

    def stop(self) -> None:
        """End the execution environment."""

    def close(self, deadline: float) -> None:
        """The runtime is stopping: no more invocations (see :func:`stop_functions`); in-process, nothing to end."""

    def processes(self) -> list[BaseProcess]:
        """The processes this function started and that may still run (in-process: none)."""
        return []

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            handler = self.load()
            return handler(event, LambdaContext(self.spec))


# Powertools warns on stderr, per invocation, when a handler emits no metric (a function may have none to emit).
EXPECTED_WARNINGS = ("No application metrics to publish",)


def ignore_expected_warnings() -> None:
    import warnings

    for message in EXPECTED_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(message), category=UserWarning)


def route_warnings() -> None:
    """Python warnings of a function's environment as JSON log lines (the expected ones dropped), not stderr text."""
    import warnings

    from aws_lambda_powertools import Logger

    ignore_expected_warnings()
    log = Logger(service="aurora-local")

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        log.warning(str(message), category=category.__name__, source=f"{filename}:{lineno}")

    warnings.showwarning = show


# What a terminal sends its whole foreground process group (Ctrl-C, hang-up): the runtime stops the workers itself.
TERMINAL_SIGNALS = {signal.SIGINT, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])}


@contextlib.contextmanager
def terminal_signals_blocked() -> Iterator[None]:
    """Child processes started in this block inherit SIGINT and SIGHUP blocked: a Ctrl-C for the whole terminal
    process group during their start-up (before they ignore it) cannot interrupt them with a ``KeyboardInterrupt``;
    the runtime stops them itself. Per thread, so any thread may start a child."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, TERMINAL_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _worker_main(spec: FunctionSpec, connection: Connection) -> None:
    """A function's execution environment: its own process, environment and module state, as in Lambda."""
    # Ctrl-C or a closed terminal reach the whole process group: the parent stops us.
    for sig in TERMINAL_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, TERMINAL_SIGNALS)  # blocked by the parent for our start-up
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    os.environ.update(spec.environment)
    prepare_process({spec.logical_id: spec})
    route_warnings()
    function = LocalFunction(spec)
    try:
        function.load()
    except BaseException as exc:
        traceback.print_exc()
        connection.send(("error", f"{spec.logical_id}: cold start failed: {type(exc).__name__}: {exc}"))
        return
    connection.send(("ready", None))
    while True:
        try:
            event = connection.recv()
        except (EOFError, OSError):
            return  # the runtime is gone
        if event is None:
            return
        try:
            result = function.invoke(event)
        except Exception as exc:
            traceback.print_exc()  # Lambda logs the error and its stack trace
            connection.send(("error", f"{type(exc).__name__}: {exc}"))
        else:
            connection.send(("ok", result))


@dataclass
class WorkerFunction(LocalFunction):
    """One execution environment of one function in a child process: what Lambda isolates, isolated.

    Module state, Powertools' logger keys and metrics, the environment and cold starts are the function's own;
    invocations run one at a time; an invocation past the function's ``Timeout`` ends the environment (the next one
    cold-starts), as does a crash. After :meth:`close` (the runtime is stopping) it invokes and starts nothing more.
    """

    _process: BaseProcess | None = None
    _connection: Connection | None = None
    _ready: bool = False
    _closed: bool = False
    _started: list[BaseProcess] = field(default_factory=list)  # every environment started, until reaped
    _start_lock: threading.Lock = field(
        default_factory=threading.Lock
    )  # held briefly: start / close / processes

    def start(self) -> None:
        with self._start_lock:
            if self._closed:
                raise RuntimeStopping(f"{self.name}: the runtime is stopping")
            if self._process is not None and self._process.is_alive():
                return
            context = multiprocessing.get_context("spawn")
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=_worker_main, args=(self.spec, child_end), name=f"lambda-{self.name}", daemon=True
            )
            with terminal_signals_blocked():
                process.start()
            child_end.close()
            self._started = [p for p in self._started if p.exitcode is None] + [process]
            self._process, self._connection, self._ready = process, parent_end, False

    def wait_ready(self) -> None:
        if self._ready:
            return
        if self._connection is None:
            self.start()
        assert self._connection is not None
        try:
            kind, payload = self._connection.recv()
        except (EOFError, OSError) as exc:
            self.stop()
            raise FunctionError(
                f"{self.name}: the execution environment exited during its cold start"
            ) from exc
        if kind != "ready":
            self.stop()
            raise FunctionError(str(payload))
        self._ready = True

    def stop(self, graceful: bool = True) -> None:
        process, connection = self._process, self._connection
        self._process, self._connection, self._ready = None, None, False
        if connection is not None:
            if graceful:
                with contextlib.suppress(OSError):
                    connection.send(None)
            connection.close()
        if process is not None:
            process.join(2 if graceful else 0)
            if process.is_alive():
                process.kill()
                process.join(2)

    def close(self, deadline: float) -> None:
        """The runtime is stopping: no more invocations nor environments. An invocation in flight may finish until
        ``deadline`` (``time.monotonic()``); then the environment is asked to exit, or killed if still busy.

        Never waits past ``deadline``; the connection is only used by whoever holds ``_lock`` (an invocation, or
        this), so it is never closed under a thread that reads it. :func:`stop_functions` reaps the processes.
        """
        with self._start_lock:
            self._closed = True
        if self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            try:
                connection, self._connection, self._process = self._connection, None, None
                if connection is not None:
                    with contextlib.suppress(OSError):
                        connection.send(None)  # idle: it reads this at once and exits
                    connection.close()
            finally:
                self._lock.release()
        else:  # still busy: the invocation's thread sees the environment exit and answers an error
            for process in self.processes():
                process.kill()

    def processes(self) -> list[BaseProcess]:
        with self._start_lock:
            return [process for process in self._started if process.exitcode is None]

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            if self._closed:
                raise RuntimeStopping(f"{self.name}: the runtime is stopping")
            if self._process is None or not self._process.is_alive():
                self.stop()
                self.start()
            self.wait_ready()
            assert self._connection is not None
            try:
                self._connection.send(event)
                if not self._connection.poll(self.spec.timeout_seconds + 1):
                    self.stop(graceful=False)
                    raise FunctionError(f"Task timed out after {self.spec.timeout_seconds} seconds")
                kind, payload = self._connection.recv()
            except (EOFError, OSError) as exc:
                self.stop()
                raise FunctionError(f"{self.name}: the execution environment exited") from exc
            if kind == "error":
                raise FunctionError(str(payload))
            return payload


def stop_functions(functions: Iterable[LocalFunction], grace: float, exit_seconds: float = 1.0) -> None:
    """End every function's environment, bounded: ``grace`` seconds for the invocations in flight to finish (shared by
    all functions), then up to ``exit_seconds`` for the environments to exit before they are killed."""
    functions = list(functions)
    deadline = time.monotonic() + grace
    for function in functions:
        function.close(deadline)
    processes = [process for function in functions for process in function.processes()]
    exit_deadline = time.monotonic() + exit_seconds
    while (running := [p for p in processes if p.exitcode is None]) and time.monotonic() < exit_deadline:
        multiprocessing.connection.wait(
            [p.sentinel for p in running], timeout=max(0.0, exit_deadline - time.monotonic())
        )
    for process in processes:
        if process.exitcode is None:
            process.kill()
        process.join(1.0)


def local_functions(specs: dict[str, FunctionSpec]) -> dict[str, LocalFunction]:
    """The functions in this process (``make invoke``, tests)."""
    return {name: LocalFunction(spec) for name, spec in specs.items()}


def worker_functions(specs: dict[str, FunctionSpec]) -> dict[str, LocalFunction]:
    """The functions each in its own process (``make run``)."""
    return {name: WorkerFunction(spec) for name, spec in specs.items()}
