"""The dead-letter message: the original payload (or a safe excerpt) and why it was rejected.

Operators read these to find devices that send bad data, so the payload is kept as text when
it is short UTF-8 and as a base64 excerpt otherwise; it is never silently dropped.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from ingest.decode import Rejection

EXCERPT_BYTES = 2048


def deadletter_payload(
    topic: str, payload: bytes, rejections: list[Rejection], received_ms: int
) -> bytes:
    """JSON for ``ew/v1/deadletter`` describing every rejection of one message."""
    first = rejections[0]
    doc: dict[str, Any] = {
        "topic": topic,
        "reason": first.reason.value,
        "detail": first.detail,
        "where": first.where,
        "received_ms": received_ms,
        "payload_bytes": len(payload),
    }
    if len(rejections) > 1:
        doc["rejections"] = [
            {"reason": r.reason.value, "detail": r.detail, "where": r.where} for r in rejections
        ]
    excerpt = payload[:EXCERPT_BYTES]
    doc["truncated"] = len(payload) > EXCERPT_BYTES
    try:
        doc["payload"] = excerpt.decode("utf-8")
    except UnicodeDecodeError:
        # An excerpt may cut a multi-byte character; base64 keeps the bytes exact either way.
        doc["payload_b64"] = base64.b64encode(excerpt).decode("ascii")
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")
