"""Aurora Chats: the shared Lambda layer - only what a function runs (operator tools live in ``aurora_ops``).

Floors, bottom up (held by the import-linter contracts in ``pyproject.toml``, run by ``make test``):

=====================  =====================================================================================
floor                  modules
=====================  =====================================================================================
ground floor           ``settings`` (one typed settings object), ``observability`` (Logger/Tracer/Metrics and
                       the one handler stack, ``lambda_handler``)
domain                 ``ids``, ``errors``, ``models`` (API shapes, entities, the character card)
domain helpers         ``ports`` (what the use cases need from storage), ``cursor``, ``greeting``
data layer             ``dal``: ``keys``, ``client``, ``errors``, ``items``, ``chats``, ``cleanup`` - the only
                       code that knows PK/SK, item shapes and DynamoDB error codes (access patterns in its
                       docstring)
use cases              ``usecases`` (list, initialize, delete), ``cleanup`` (purge, user deletion): storage is
                       passed in, never boto3
HTTP edge              ``http`` (resolver, problems, caller, ``api_handler``), ``api_docs`` (each operation's
                       OpenAPI documentation)
=====================  =====================================================================================

Nothing here imports ``functions/``, ``aurora_local``, ``aurora_ops``, ``bench`` or ``tests``.

Importing the package first pauses the garbage collector inside Lambda until the first invocation is over
(:mod:`aurora_chats.init_gc`), then installs :mod:`aurora_chats.lazy_imports` (before any of its modules imports
Powertools): Powertools' ``event_handler`` and ``utilities.data_classes`` then load only the resolver and the event
classes a function uses.
"""

from aurora_chats import init_gc

init_gc.pause()

from aurora_chats import lazy_imports  # noqa: E402 - after the collector is paused

lazy_imports.install()
