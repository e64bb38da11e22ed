"""One translation of DynamoDB failures into domain errors, for every store (chats and cleanup alike).

After botocore's retries (``standard`` mode, bounded attempts, connect/read timeouts):

=========================================  =====================  ==========================================
what the last attempt got                  read (GetItem, Query)  write (TransactWriteItems)
=========================================  =====================  ==========================================
throttling / 5xx / connection refused      ServiceUnavailable     ServiceUnavailable (nothing was written), or
                                                                  OutcomeUnknown if an earlier attempt's
                                                                  answer was lost
answer lost (read timeout, reset)          ServiceUnavailable     OutcomeUnknown (it may have been written)
``TransactionInProgressException``         -                      OutcomeUnknown (an earlier attempt runs)
cancelled: ``TransactionConflict``         -                      WriteConflict (the use case retries)
=========================================  =====================  ==========================================
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from aurora_chats.errors import OutcomeUnknown, ServiceUnavailable, WriteConflict

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)
# What a call can raise that this module knows how to read: ``except TRANSPORT_ERRORS`` then translate.
TRANSPORT_ERRORS = (ClientError, EndpointUnreachable, HTTPClientError)
# Errors after which repeating an idempotent request is safe (nothing, or the very same change, happened).
CONNECTION_ERRORS = (EndpointUnreachable, HTTPClientError)


def code(exc: Exception) -> str:
    """The error code DynamoDB answered, ``""`` for anything that is not a ``ClientError``."""
    if not isinstance(exc, ClientError):
        return ""
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_throttling(exc: Exception) -> bool:
    return isinstance(exc, ClientError) and code(exc) in THROTTLING_CODES


def cancellation_reasons(exc: Exception) -> list[dict[str, Any]] | None:
    """The per-item reasons of a cancelled transaction, or None when ``exc`` is not a cancellation."""
    if not isinstance(exc, ClientError) or code(exc) != "TransactionCanceledException":
        return None
    return list(exc.response.get("CancellationReasons", []) or [])  # type: ignore[arg-type]


def cancellation_or_raise(exc: Exception) -> list[dict[str, Any]]:
    """Inside ``except TRANSPORT_ERRORS`` around a transaction: the per-item reasons when it was cancelled; any
    other failure is raised at once as :func:`write_failed` translates it (or as it is)."""
    reasons = cancellation_reasons(exc)
    if reasons is None:
        raise (write_failed(exc) or exc) from exc
    return reasons


def reason_codes(reasons: list[dict[str, Any]]) -> list[str]:
    return [str(r.get("Code", "None")) for r in reasons]


# True once an attempt of the current call was sent but its answer was lost (read timeout, connection reset): from
# then on, a later attempt's throttling answer no longer proves that nothing was written.
_answer_lost: ContextVar[bool] = ContextVar("aurora_chats_ddb_answer_lost", default=False)


def start_call(**_: Any) -> None:
    """botocore ``before-call`` hook (registered by :mod:`aurora_chats.dal.client`)."""
    _answer_lost.set(False)


def after_attempt(caught_exception: Exception | None = None, **_: Any) -> None:
    """botocore ``needs-retry`` hook: remembers that an attempt's answer was lost."""
    if isinstance(caught_exception, HTTPClientError):
        _answer_lost.set(True)


def unavailable(exc: Exception) -> ServiceUnavailable | None:
    """A failed read (or a write DynamoDB refused): the domain error, or None to re-raise ``exc`` as it is."""
    if isinstance(exc, ClientError):
        return ServiceUnavailable() if is_throttling(exc) else None
    if isinstance(exc, CONNECTION_ERRORS):
        return ServiceUnavailable()
    return None


def write_failed(exc: Exception) -> ServiceUnavailable | OutcomeUnknown | None:
    """A failed write: honest about whether it may have happened."""
    if isinstance(exc, HTTPClientError):
        return OutcomeUnknown()
    if isinstance(exc, ClientError) and code(exc) == "TransactionInProgressException":
        return OutcomeUnknown()
    failure = unavailable(exc)
    if failure is not None and _answer_lost.get():
        return OutcomeUnknown()
    return failure


def cancelled(codes: list[str]) -> WriteConflict | ServiceUnavailable | OutcomeUnknown | None:
    """A cancelled transaction whose own conditions held: the domain error, or None to re-raise."""
    if "TransactionConflict" in codes:
        return WriteConflict()
    if any(c in {"ThrottlingError", "ProvisionedThroughputExceeded"} for c in codes):
        return OutcomeUnknown() if _answer_lost.get() else ServiceUnavailable()
    return None
