"""The one stand-in for Lambda's context object (tests and bench)."""

from __future__ import annotations


class FakeContext:
    """What the handlers read of Lambda's context. ``step_ms``: the remaining time drops by that much every time
    it is asked (a function that runs out of time after a few budget checks)."""

    memory_limit_in_mb = 512
    DEFAULT_REQUEST_ID = "test-request-id"

    def __init__(
        self,
        remaining_ms: int = 10_000,
        *,
        step_ms: int = 0,
        function_name: str = "test-function",
        request_id: str = DEFAULT_REQUEST_ID,
    ) -> None:
        self._remaining = remaining_ms
        self.step = step_ms
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        remaining = self._remaining
        self._remaining -= self.step
        return remaining
