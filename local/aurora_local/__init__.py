"""Developer tooling (never shipped in the Lambda layer): template reader, local runtime, test helpers."""
