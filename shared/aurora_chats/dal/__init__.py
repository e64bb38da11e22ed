"""The data layer: the only code that knows the single table's keys, item shapes and DynamoDB error codes.

=============  ===============================================================================================
module         job
=============  ===============================================================================================
``keys``       prefixes, key builders and parsers: the one place a key string is spelled
``client``     the DynamoDB, EventBridge and Scheduler clients (lazy, cached, one retry/timeout configuration)
``endpoints``  DynamoDB's share of botocore's ``endpoints.json``, for the DynamoDB client's data loader
``errors``     one translation of transport errors, error codes and transaction cancellations into domain errors
``items``      item shapes, item sizes, domain objects read back from items
``chats``      :class:`~aurora_chats.ports.ChatRepository` for the API functions, and its cached factory
``cleanup``    :class:`~aurora_chats.cleanup.CleanupStore` for the cleanup function, stream records, EventBridge
=============  ===============================================================================================

Access patterns (table ``PK``/``SK`` strings, TTL on ``expiresAt``, stream NEW_AND_OLD_IMAGES):

=========================  ===========================  ==============================  ==============================
item                       PK                           SK                              holds
=========================  ===========================  ==============================  ==============================
character                  ``CHARACTER#<characterId>``  ``PROFILE``                     name, firstMes, alternateGreetings
chat (canonical record)    ``CHAT#<chatId>``            ``META``                        userId, characterId, createdAt,
                                                                                        expiresAt?, idempotencyKey?
user's chat entry          ``USER#<userId>``            ``CHAT#<chatId, 16 digits>``    chatId, characterId, createdAt,
                                                                                        listedUntil? (not the TTL
                                                                                        attribute: only the purge
                                                                                        deletes an entry)
message                    ``CHAT#<chatId>``            ``MSG#<ULID>``                  role, content, createdAt,
                                                                                        expiresAt?
idempotency record         ``USER#<userId>``            ``IDEMPOTENCY#<key>``           chatId, characterId, createdAt,
                                                                                        message, expiresAt (24 h)
user state                 ``USER#<userId>``            ``STATE``                       chatCount; the deletion marker:
                                                                                        deletedAt, expiresAt (now +
                                                                                        the deleted-account window)
deleted-chat tombstone     ``USER#<userId>``            ``DELETED#<chatId, 16 digits>`` chatId, expiresAt (24 h)
=========================  ===========================  ==============================  ==============================

=====================  ==========================================================================================
operation              DynamoDB calls
=====================  ==========================================================================================
list                   1 strongly consistent ``Query`` on ``USER#<userId>``, ``begins_with(SK, "CHAT#")``,
                       descending (chat ids are time-ordered, so newest first), ``Limit`` = page size + 1, entries
                       past ``listedUntil`` filtered out (the user-state item and tombstones are not under
                       ``CHAT#``: never read); only when it found nothing live and more remain, further Queries
                       without ``Limit`` (up to 1 MB each) until a live entry or the end
initialize             ``GetItem`` of the character (skipped while cached), then 1 ``TransactWriteItems``: chat
                       (``attribute_not_exists``), user entry, first message, user state (``ADD chatCount 1`` if
                       ``attribute_not_exists(deletedAt) AND chatCount < :max``, ``ALL_OLD`` on failure: a
                       deletedAt is the 403, else the 409), idempotency record (if a key was sent)
initialize replay      the same ``TransactWriteItems`` is cancelled by the idempotency record's condition, which
                       returns the stored record; 1 consistent ``GetItem`` confirms the chat still exists
delete                 1 ``TransactWriteItems``: chat record (condition: owned by the caller and not expired), the
                       user entry (``attribute_exists``), the user state (``ADD chatCount -1`` if
                       ``attribute_not_exists(deletedAt)``) and a Put of the caller's tombstone (expiresAt = now +
                       24 h); a cancelled state condition is the 403
delete repeat          the cancelled ``TransactWriteItems`` + 1 consistent ``GetItem`` of the caller's tombstone:
                       found and unexpired -> the same 200; else "not found" (someone else's tombstone is in their
                       partition, never read)
chat partition page    (cleanup) 1 strongly consistent keys-only ``Query`` of ``CHAT#<chatId>`` (``PAGE_SIZE`` keys);
                       after a TTL removal filtered to ``attribute_not_exists(expiresAt) OR expiresAt > :chat's``
user page              (cleanup) 1 strongly consistent keys-only ``Query`` of ``USER#<userId>`` (``PAGE_SIZE``
                       keys); a list entry's SK names its chat record (``CHAT#<chatId>`` / ``META``); the
                       user-state item is skipped (the marker stays)
deletion marker        (cleanup) 1 ``UpdateItem`` of the user state, first in every UserDeleted round:
                       ``deletedAt = if_not_exists(deletedAt, :now)``, ``expiresAt = :now + window``,
                       ``deletedInRegion = <IdRegion>`` (a global table's other region starts its own round)
list entry             (cleanup) 1 ``TransactWriteItems``: the entry (``attribute_exists``) and ``ADD chatCount -1``;
                       cancelled when the entry is already gone (API delete, user deletion, replay): counts nothing
delete items           (cleanup) 1 ``BatchWriteItem`` of at most 25 deletes, plus one per retry of
                       ``UnprocessedItems`` (exponential backoff with full jitter; throttling retried the same way)
idempotency record     (cleanup) 1 ``DeleteItem`` with condition ``chatId = :chatId`` (a failed condition means it
                       is gone or already serves a newer chat under the same key: both fine)
=====================  ==========================================================================================

A 2,000-message purge therefore costs 1 ``TransactWriteItems`` (the list entry), 1 ``DeleteItem`` (only when the
chat was started with an ``Idempotency-Key``), 3 ``Query`` pages and 80 ``BatchWriteItem`` calls: 85 (counted in
the cleanup's integration tests; 84 on moto, which omits the empty page DynamoDB answers after a full one).

The functions never Scan: the operator's orphan scan (keys-only ``Scan`` pages + 1 consistent ``GetItem`` per
candidate) lives in ``aurora_ops``, outside the layer. Failures: see :mod:`aurora_chats.dal.errors`.

This package imports the ground floor (settings, observability, errors, models, ports) and the cleanup's domain
types, never the use cases' rules, the HTTP edge, ``functions/``, ``local``, ``bench`` or ``tests``. Its
``__init__`` imports nothing, so a function loads only the modules it uses.
"""
