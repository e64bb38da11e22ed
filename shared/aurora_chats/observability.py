"""The one Logger / Tracer / Metrics setup shared by every function.

Service name, namespace and log level come from the standard Powertools environment variables set in
``template.yaml`` Globals, so nothing here is per-function.

``tracer`` is a :class:`LazyTracer`: the Powertools ``Tracer`` (and with it the X-Ray SDK and its botocore patching)
is built on the first invocation that X-Ray samples, never at import. Importing the X-Ray SDK and patching a dozen
libraries costs ~20 ms of CPU on every cold start in Lambda (`make bench`; outside Lambda the SDK even builds a
botocore X-Ray client at import, aws-xray-sdk-python#273), while an invocation whose trace header says
``Sampled=0`` records nothing at all. Sampled or not is Lambda's per-invocation decision (``_X_AMZN_TRACE_ID``).
Sampled invocations are traced exactly as with ``Tracer``: the ``## handler`` subsegment with its ``ColdStart`` and
``Service`` annotations, response/error metadata, and every DynamoDB call as a subsegment.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics

from aurora_chats import init_gc

if TYPE_CHECKING:
    from numbers import Number

    from aws_lambda_powertools import Tracer

F = TypeVar("F", bound=Callable[..., Any])

_TRUTHY = frozenset({"1", "true", "yes", "on", "y", "t"})


def _sampled() -> bool:
    """Whether X-Ray samples the current invocation (Lambda sets ``_X_AMZN_TRACE_ID`` per invocation)."""
    if "Sampled=1" not in os.environ.get(
        "_X_AMZN_TRACE_ID", ""
    ):  # most invocations: decided with one look-up
        return False
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() not in _TRUTHY


def with_request_correlation_id[H: Callable[..., Any]](handler: H) -> H:
    """The logger's ``correlation_id`` is the HTTP API request id (``requestContext.requestId``).

    What ``logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)`` does, without
    evaluating a JMESPath expression on every request (~11 µs of the per-request budget, ``make bench``). Apply it
    inside ``inject_lambda_context(clear_state=True)``, which clears the previous request's keys first.
    """

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        request_context = event.get("requestContext") if isinstance(event, dict) else None
        request_id = request_context.get("requestId") if isinstance(request_context, dict) else None
        logger.set_correlation_id(request_id)
        return handler(event, context)

    return wrapper  # type: ignore[return-value]


class LazyTracer:
    """``aws_lambda_powertools.Tracer``, created on the first sampled invocation (see the module docstring)."""

    def __init__(self) -> None:
        self._tracer: Tracer | None = None
        self._invoked = False

    @property
    def tracer(self) -> Tracer:
        """The Powertools Tracer, created now if needed (explicit use always gets a real one)."""
        if self._tracer is None:
            from aws_lambda_powertools import Tracer
            from aws_lambda_powertools.tracing import tracer as tracer_module

            if self._invoked:
                # Earlier, unsampled invocations already were this container's cold start.
                tracer_module.is_cold_start = False
            self._tracer = Tracer()
        return self._tracer

    def capture_lambda_handler(self, handler: F) -> F:
        traced: Callable[..., Any] | None = None

        @functools.wraps(handler)
        def wrapper(event: Any, context: Any) -> Any:
            nonlocal traced
            if not _sampled():
                self._invoked = True
                return handler(event, context)
            if traced is None:
                traced = self.tracer.capture_lambda_handler(handler)
            self._invoked = True
            return traced(event, context)

        return wrapper  # type: ignore[return-value]

    def capture_method(self, method: F) -> F:
        traced: Callable[..., Any] | None = None

        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            nonlocal traced
            if not _sampled():
                return method(*args, **kwargs)
            if traced is None:
                traced = self.tracer.capture_method(method)
            return traced(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def put_annotation(self, key: str, value: str | Number | bool) -> None:
        if _sampled():
            self.tracer.put_annotation(key=key, value=value)

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        if _sampled():
            self.tracer.put_metadata(key=key, value=value, namespace=namespace)


logger = Logger()
tracer = LazyTracer()
metrics = Metrics()


@functools.lru_cache(maxsize=256)
def user_hash(user_id: str) -> str:
    """A stable, non-reversible user id for logs (user ids are personal data): every log line carries this, never
    the id itself. Remembered for the last 256 callers: a warm container mostly serves the same few users again
    (a pure function; ~1.5 µs of a request, ``make bench``)."""
    import hashlib

    return hashlib.sha256(b"aurora-chats-log:" + user_id.encode()).hexdigest()[:16]


def lambda_handler[H: Callable[..., Any]](
    handler: H, *, request_correlation_id: bool = False, gc_after_first_invocation: bool = False
) -> H:
    """The one handler stack every function wears, in this order: logger context, (for the API functions) the
    request's correlation id, metrics, tracer. The API functions get it through :func:`aurora_chats.http.api_handler`.

    ``log_event=False`` explicitly: ``POWERTOOLS_LOGGER_LOG_EVENT`` must not be able to log the Authorization
    header. The correlation id is set by :func:`with_request_correlation_id`: no JMESPath per request.

    The garbage collector, paused inside Lambda while the function initialises (:mod:`aurora_chats.init_gc`), is
    resumed when the first invocation starts, or - ``gc_after_first_invocation``, for the API functions, whose one
    request is small and bounded - when it is over, so a cold start's first request runs without it too.
    """
    wrapped: Callable[..., Any] = metrics.log_metrics(tracer.capture_lambda_handler(handler))
    if request_correlation_id:
        wrapped = with_request_correlation_id(wrapped)
    stack = logger.inject_lambda_context(clear_state=True, log_event=False)(wrapped)
    return cast(H, _resume_gc(stack, after_first_invocation=gc_after_first_invocation))


def _resume_gc[H: Callable[..., Any]](handler: H, *, after_first_invocation: bool) -> H:
    """``handler``, resuming the paused collector (:func:`aurora_chats.init_gc.resume`) before or after its first
    invocation; later invocations go straight to ``handler``."""
    first = True

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        nonlocal first
        if not first:
            return handler(event, context)
        first = False
        if not after_first_invocation:
            init_gc.resume()
            return handler(event, context)
        try:
            return handler(event, context)
        finally:
            init_gc.resume()

    return wrapper  # type: ignore[return-value]
