"""A stand-in X-Ray daemon (UDP) and what the X-Ray SDK sent to it."""

from __future__ import annotations

import json
import socket
from typing import Any


def xray_documents(daemon: socket.socket) -> list[dict[str, Any]]:
    """Every (sub)segment document the X-Ray SDK sent to ``daemon``, nested subsegments flattened."""
    documents: list[dict[str, Any]] = []
    while True:
        try:
            packet, _ = daemon.recvfrom(65_535)
        except TimeoutError:
            break
        header, _, body = packet.decode().partition("\n")
        assert json.loads(header)["format"] == "json"
        documents.append(json.loads(body))
    flat: list[dict[str, Any]] = []
    while documents:
        document = documents.pop()
        flat.append(document)
        documents.extend(document.get("subsegments", []))
    return flat
