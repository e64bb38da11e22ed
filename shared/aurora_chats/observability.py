"""The one Logger / Tracer / Metrics setup shared by every function.

Service name, namespace and log level come from the standard Powertools environment variables set in
``template.yaml`` Globals, so nothing here is per-function.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
