"""DynamoDB's share of botocore's ``endpoints.json``, for the DynamoDB-only session of :mod:`aurora_chats.dal.client`.

Creating any client makes botocore parse ``endpoints.json``: every partition's regions and the endpoints of all
~300 services it knows, 1.25 MB of JSON into ``OrderedDict``\\s - ~18 ms of CPU on every cold start (``make bench``),
though our client only ever asks about DynamoDB. :data:`DATA_FILE` holds the same document with each partition's
``services`` cut down to ``dynamodb`` (everything else - partitions, regions, defaults, DNS suffixes - as it is),
written from the pinned botocore by ``python -m aurora_chats.dal.endpoints``; ``tests/unit/test_endpoints.py`` fails
when it no longer equals that cut of the installed botocore's file. At run time it is only used with the botocore
version it was cut from (:func:`load`), and only where botocore would load its own built-in file.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

SERVICE = "dynamodb"
DATA_FILE = Path(__file__).with_name("dynamodb_endpoints.json")


def dynamodb_only(endpoints: dict[str, Any]) -> dict[str, Any]:
    """``endpoints`` (botocore's ``endpoints.json`` document) with every partition's services but DynamoDB left out."""
    partitions = [
        {
            key: (
                {name: data for name, data in value.items() if name == SERVICE}
                if key == "services"
                else value
            )
            for key, value in partition.items()
        }
        for partition in endpoints["partitions"]
    ]
    return {key: (partitions if key == "partitions" else value) for key, value in endpoints.items()}


def load(botocore_version: str) -> dict[str, Any] | None:
    """The cut document as botocore's loader would return it (``OrderedDict``\\s), if it was cut from
    ``botocore_version``; else None (then botocore's own file is loaded)."""
    try:
        stored = json.loads(DATA_FILE.read_bytes(), object_pairs_hook=OrderedDict)
    except OSError:
        return None
    if stored.get("botocore") != botocore_version:
        return None
    endpoints: dict[str, Any] = stored["endpoints"]
    return endpoints


def write() -> Path:
    """Cut the installed botocore's ``endpoints.json`` into :data:`DATA_FILE`."""
    import botocore
    from botocore.loaders import JSONFileLoader, Loader

    endpoints = JSONFileLoader().load_file(str(Path(Loader.BUILTIN_DATA_PATH) / "endpoints"))
    document = {"botocore": botocore.__version__, "endpoints": dynamodb_only(endpoints)}
    DATA_FILE.write_text(json.dumps(document, indent=1) + "\n")
    return DATA_FILE


if __name__ == "__main__":
    print(f"wrote {write()}")
