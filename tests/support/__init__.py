"""Test support shared by the unit, integration and end-to-end tests (and the bench): imported as a library,
unlike ``conftest.py``, which only holds fixtures.

=================  =============================================================================================
module             what
=================  =============================================================================================
``env``            the repository root, the test table's name, the environment every test process runs with
``context``        the one stand-in for Lambda's context object
``loader``         ``functions/<name>/app.py`` as a module (one loader, cached)
``api``            the API client that calls the three handlers with HTTP API v2 events; its ``Response``
``aws``            moto/DynamoDB: real-limit guards, call log, cache reset, table scan, moto HTTP server, stream
``xray``           a stand-in X-Ray daemon's documents
``fakes``          in-memory fakes of the data layer: ``InMemoryChats``, ``InMemoryCleanupStore``
``contract``       schemathesis settings shared by the in-process and HTTP contract tests
``local_runtime``  the local runtime (``make run``) as a subprocess, and an HTTP client's helpers
=================  =============================================================================================
"""
