"""The clients the layer uses (DynamoDB, EventBridge, EventBridge Scheduler): created on first use, never at import, cached per
container, both with one retry/timeout configuration.

Endpoint and region come from the standard AWS settings (``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_REGION``...).
Retries: botocore's ``standard`` mode (throttling, 5xx and transaction conflicts are retried with backoff), bounded
attempts, and timeouts well below the function timeout so a 503 can still be answered.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aurora_chats.dal import errors
from aurora_chats.settings import get_settings

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events.client import EventBridgeClient

_client: DynamoDBClient | None = None
_events_client: EventBridgeClient | None = None


def client_config(**extra: Any) -> Config:
    """The retry policy and timeouts every client of ours uses (from :class:`aurora_chats.settings.Settings`)."""
    from botocore.config import Config

    settings = get_settings()
    return Config(
        retries={"mode": "standard", "total_max_attempts": settings.ddb_max_attempts},
        connect_timeout=settings.ddb_connect_timeout,
        read_timeout=settings.ddb_read_timeout,
        **extra,
    )


def get_client() -> DynamoDBClient:
    """The DynamoDB client, with the hooks :mod:`aurora_chats.dal.errors` reads to tell a lost answer."""
    global _client
    if _client is None:
        from botocore.session import get_session

        # botocore's session, not boto3's: the very same client without importing boto3 (~20 ms of cold start).
        session = get_session()
        session.register_component("data_loader", _dynamodb_loader(session.get_component("data_loader")))
        client: DynamoDBClient = session.create_client(  # type: ignore[assignment]
            "dynamodb", config=client_config(tcp_keepalive=True)
        )
        client.meta.events.register("before-call.dynamodb", errors.start_call)
        client.meta.events.register("needs-retry.dynamodb", errors.after_attempt)
        _client = client
    return _client


def _dynamodb_loader(standard: Any) -> Any:
    """botocore's data loader (same search paths, ``AWS_DATA_PATH`` included) for a session that only makes
    DynamoDB clients.

    To load a model, botocore first lists every service it could load - about 450 directories listed and their
    files stat-ed, ~11 ms of CPU on every cold start - only to raise ``UnknownServiceError`` for an unknown name.
    Here the known services are DynamoDB alone, checked in its own directory; and the endpoint data is DynamoDB's
    share of botocore's built-in ``endpoints.json`` (:mod:`aurora_chats.dal.endpoints`: ~18 ms less of every cold
    start). Everything else is botocore's.
    """
    import botocore
    from botocore.exceptions import DataNotFoundError
    from botocore.loaders import Loader, instance_cache

    from aurora_chats.dal import endpoints

    class DynamoDBLoader(Loader):
        def list_available_services(self, type_name: str) -> list[str]:
            try:
                self.list_api_versions("dynamodb", type_name)
            except DataNotFoundError:
                return []
            return ["dynamodb"]

        @instance_cache
        def load_data_with_path(self, name: str) -> tuple[Any, str]:
            if name == "endpoints":
                # Where botocore would find it (its search paths in order): only its own built-in file is replaced.
                path = next(
                    (
                        os.path.join(directory, name)
                        for directory in self.search_paths
                        if os.path.isdir(directory) and self.file_loader.exists(os.path.join(directory, name))
                    ),
                    None,
                )
                if path is not None and self.is_builtin_path(path):
                    dynamodb = endpoints.load(botocore.__version__)
                    if dynamodb is not None:
                        return dynamodb, path
            found: tuple[Any, str] = super().load_data_with_path(name)
            return found

    return DynamoDBLoader(extra_search_paths=list(standard.search_paths), include_default_search_paths=False)


def reset_client() -> None:
    global _client
    _client = None


def get_events_client() -> EventBridgeClient:
    """The EventBridge client (the cleanup's continuation), same retry policy as DynamoDB."""
    global _events_client
    if _events_client is None:
        import boto3

        _events_client = boto3.client("events", config=client_config())
    return _events_client


def reset_events_client() -> None:
    global _events_client
    _events_client = None


_scheduler_client: Any = None


def get_scheduler_client() -> Any:
    """The EventBridge Scheduler client (a throttled user deletion's delayed continuation), same retry policy."""
    global _scheduler_client
    if _scheduler_client is None:
        import boto3

        _scheduler_client = boto3.client("scheduler", config=client_config())
    return _scheduler_client


def reset_scheduler_client() -> None:
    global _scheduler_client
    _scheduler_client = None
