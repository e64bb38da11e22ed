"""Operator tools (``chats-admin``): run with operator credentials, never shipped in the Lambda layer.

``admin`` is the command line; ``store`` adds the operator-only reads (a keys-only Scan) to the cleanup's store.
May import the layer (``aurora_chats``); nothing in the layer imports this package.
"""
