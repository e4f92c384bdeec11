"""MQTT messages as simulated, recorded and replayed, and the JSON-lines file that holds them.

One format serves ``simulate --out``, ``record`` and ``replay``: a header line, then one line
per message in the order it was published (or arrived)::

    {"format": "earlywarn.mqtt-log", "version": 1, "origin": "simulate", "name": "…"}
    {"t": 1795284000000, "topic": "ew/v1/…/up", "payload": "{\\"ts\\": …}", "qos": 1,
     "retain": false}

``t`` is epoch milliseconds: when the device published it (simulate) or when it arrived
(record). A payload that is not UTF-8 is kept as ``payload_b64``. ``client`` names the
publishing device's client id when known; ``will`` marks a status the broker publishes as a
device's last will (simulate only: replay publishes it as an ordinary retained message).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

FORMAT = "earlywarn.mqtt-log"
VERSION = 1


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publication at ``t_ms``."""

    t_ms: int
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1
    client: str | None = None
    will: bool = False


class LogError(ValueError):
    """A line of a message log is not usable; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}")


def header(origin: str, **extra: Any) -> str:
    """The first line of a log."""
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "origin": origin}
    doc.update(extra)
    return json.dumps(doc, ensure_ascii=False) + "\n"


def to_line(message: Message) -> str:
    """One message as a line of JSON (with its newline)."""
    doc: dict[str, Any] = {"t": message.t_ms, "topic": message.topic}
    try:
        doc["payload"] = message.payload.decode("utf-8")
    except UnicodeDecodeError:
        doc["payload_b64"] = base64.b64encode(message.payload).decode("ascii")
    doc["qos"] = message.qos
    doc["retain"] = message.retain
    if message.client is not None:
        doc["client"] = message.client
    if message.will:
        doc["will"] = True
    return json.dumps(doc, ensure_ascii=False) + "\n"


def from_line(text: str, line: int) -> Message | None:
    """The message of one line; ``None`` for the header or a blank line."""
    if not text.strip():
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LogError(line, f"not JSON ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise LogError(line, "not a JSON object")
    if "format" in doc:
        if doc["format"] != FORMAT or doc.get("version") != VERSION:
            raise LogError(
                line, f"not an earlywarn message log of version {VERSION}: {doc.get('format')!r}"
            )
        return None
    t, topic = doc.get("t"), doc.get("topic")
    if not isinstance(t, int) or isinstance(t, bool):
        raise LogError(line, "'t' must be epoch milliseconds (a whole number)")
    if not isinstance(topic, str) or not topic or any(c in topic for c in "+#\x00"):
        raise LogError(line, "'topic' must be a topic name (no wildcards)")
    if isinstance(doc.get("payload"), str):
        payload = doc["payload"].encode("utf-8")
    elif isinstance(doc.get("payload_b64"), str):
        try:
            payload = base64.b64decode(doc["payload_b64"], validate=True)
        except binascii.Error:
            raise LogError(line, "'payload_b64' is not base64") from None
    else:
        raise LogError(line, "a message needs 'payload' (text) or 'payload_b64'")
    qos = doc.get("qos", 1)
    if qos not in (0, 1, 2) or isinstance(qos, bool):
        raise LogError(line, "'qos' must be 0, 1 or 2")
    retain = doc.get("retain", False)
    if not isinstance(retain, bool):
        raise LogError(line, "'retain' must be true or false")
    client = doc.get("client")
    if client is not None and not isinstance(client, str):
        raise LogError(line, "'client' must be text")
    return Message(t, topic, payload, retain, qos, client, doc.get("will") is True)


def read_log(path: Path) -> Iterator[Message]:
    """Messages of a log file, in file order; :class:`LogError` at the first bad line."""
    with path.open(encoding="utf-8") as f:
        for number, text in enumerate(f, start=1):
            message = from_line(text, number)
            if message is not None:
                yield message


class LogWriter:
    """Appends messages to an open text stream, a line each. ``record`` flushes every line
    (a crash loses at most the line being written); a simulation, which can be run again,
    leaves buffering to the stream."""

    def __init__(
        self, stream: TextIO, origin: str, *, flush_each: bool = True, **extra: Any
    ) -> None:
        self.stream = stream
        self.flush_each = flush_each
        self.count = 0
        stream.write(header(origin, **extra))

    def __call__(self, message: Message) -> None:
        self.stream.write(to_line(message))
        if self.flush_each:
            self.stream.flush()
        self.count += 1
