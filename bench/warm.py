"""Warm per-request overhead, run by ``bench/run.py`` in a fresh ``python3.13 -I -S`` with the layer on ``sys.path``.

Usage: ``warm.py ROOT RESULT_FILE REQUESTS LAYER_DIR...``

Each API function's ``handler`` (the whole decorator stack: logger context, metrics, tracer, resolver, validation,
serialisation) is called with its ``events/*.json`` event on a *stub* data layer that answers in constant time
(injected with ``aurora_chats.dal.chats.use_chat_repository``, the factory every API function asks), so the figure is
what the service adds per request on top of DynamoDB itself. ``reference`` is the framework alone (see
:func:`reference_handler`), for scale. Writes ``{route: {"cpu_us", "wall_us"}}`` (per
request) to RESULT_FILE; CPU time is the figure that counts (a shared machine's other processes inflate wall time,
while a function's CPU share on Lambda is fixed by its memory size).
"""

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

ROUTES = {
    "list_chats": ("list_chats.json", 200),
    "initialize_chat": ("initialize_chat.json", 201),
    "delete_chat": ("delete_chat.json", 200),
}


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


def stub_repository() -> Any:
    """A ChatRepository that answers from prebuilt objects: no I/O, no per-call model building."""
    from aurora_chats.models import Character, Chat, ChatSummary
    from aurora_chats.ports import ChatPage

    created = "2026-11-26T10:00:00.000Z"
    character = Character(character_id=330905, name="Aurora", first_mes="Hi {{user}}, I'm {{char}}!")
    summaries = [
        ChatSummary(chat_id=375619772979436 - i, character_id=330905, created_at=created) for i in range(20)
    ]
    chat = Chat(chat_id=375619772979436, user_id="alice", character_id=330905, created_at=created)

    class StubChats:
        def get_character(self, character_id: int) -> Character | None:
            return character

        def create_chat(self, *args: Any, **kwargs: Any) -> None:
            return None

        def get_chat(self, chat_id: int) -> Chat | None:
            return chat

        def list_chats(self, user_id: str, limit: int, after_chat_id: int | None, now_epoch: int) -> ChatPage:
            return ChatPage(chats=summaries[:limit], last_chat_id=None)

        def delete_chat(self, user_id: str, chat_id: int, now_epoch: int) -> bool:
            return True

    return StubChats()


def reference_handler() -> Any:
    """The framework alone: the same resolver (validation on), decorators and response model style around a route
    that only returns a constant model - what any Powertools API function pays per request before doing anything."""
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
    from aws_lambda_powertools.logging import correlation_paths
    from pydantic import BaseModel

    class Reply(BaseModel):
        ok: bool

    app = APIGatewayHttpResolver(enable_validation=True)

    @app.get("/chats")
    def route() -> Reply:
        return Reply(ok=True)

    logger, metrics = Logger(), Metrics()

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return handler


def load(root: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_{name}_app", root / "functions" / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    root, result_file, requests, *paths = sys.argv[1:]
    sys.path[:0] = paths
    from aurora_chats.dal.chats import use_chat_repository

    use_chat_repository(stub_repository())
    results: dict[str, dict[str, float]] = {}
    context = Context()
    handlers: dict[str, tuple[Any, str, int]] = {}
    for name, (event_file, expected) in ROUTES.items():
        module = load(Path(root), name)
        handlers[name] = (module.handler, event_file, expected)
    handlers["reference"] = (reference_handler(), "list_chats.json", 200)
    for name, (handler, event_file, expected) in handlers.items():
        event = json.loads((Path(root) / "events" / event_file).read_text())
        status = handler(event, context)["statusCode"]
        if status != expected:
            raise SystemExit(f"{name}: status {status}, expected {expected}")
        for _ in range(200):
            handler(event, context)
        count = int(requests)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            handler(event, context)
        results[name] = {
            "cpu_us": (time.process_time() - cpu) / count * 1e6,
            "wall_us": (time.perf_counter() - wall) / count * 1e6,
        }
    Path(result_file).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
