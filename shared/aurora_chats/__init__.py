"""Aurora Chats: the shared Lambda layer (models, use cases, the single-table data layer).

Layering, bottom up: ``settings`` and ``observability`` are the ground floor; ``ids``, ``errors``, ``models``,
``cursor`` and ``greeting`` are pure; ``ports`` declares what the use cases need from storage; ``usecases`` holds the
business rules (never boto3); ``dynamodb`` is the only module that knows keys, item shapes and DynamoDB error codes;
``http`` builds the Powertools resolver shared by the API entry points. Nothing here may import ``functions/``.
"""
