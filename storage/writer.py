"""Sending lines to InfluxDB, and what the answer means for the lines.

The writer makes one attempt and says what happened; it never retries on its own (the
client's retries are off). The spool is the retry buffer: a line stays there, on disk, until
a write of it succeeds, and the drainer (:mod:`storage.drain`) decides when to try again. A
retry loop inside the client would hold lines in memory, where a crash loses them, and would
hide an outage from our logs and counters.

Outcomes (:class:`Outcome`), decided once here from the HTTP status:

- ``ok``: 2xx, InfluxDB has the points.
- ``retry``: the server could not take them now (connection refused, reset or timed out, 5xx,
  408, 429). ``after_s`` is the server's ``Retry-After`` (seconds or an HTTP date) when given.
- ``rejected``: 400, 413, 422: something in the batch is bad or too big. The drainer bisects
  the batch to find the bad lines and sends the rest.
- ``misconfigured``: 401, 403, 404 and other 4xx: wrong token, org, bucket or URL. Retrying
  soon will not help, dropping would lose data: keep the lines, retry slowly, log an ERROR
  saying what to check.
"""

from __future__ import annotations

import enum
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, cast

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

__all__ = ["InfluxWriter", "LineSink", "Outcome", "WriteResult", "classify_status"]

log = logging.getLogger(__name__)

_REJECTED = frozenset({400, 413, 422})
_RETRY_4XX = frozenset({408, 429})
_MAX_REASON = 500


class Outcome(enum.StrEnum):
    """What a write came to, and so what to do with its lines."""

    OK = "ok"
    RETRY = "retry"
    REJECTED = "rejected"
    MISCONFIGURED = "misconfigured"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of one write, with the server's words for anything but ``ok``."""

    outcome: Outcome
    reason: str = ""
    status: int | None = None
    after_s: float | None = None
    """The server's ``Retry-After`` in seconds from now, when it sent one."""

    @property
    def ok(self) -> bool:
        """The server has the points."""
        return self.outcome is Outcome.OK


OK = WriteResult(Outcome.OK)


class LineSink(Protocol):
    """Where the drainer sends lines: InfluxDB, or a test's recording sink at our own seam."""

    def write(self, lines: Sequence[str], /) -> WriteResult:
        """Send ``lines`` once; never raise for a failure of the server or the network."""
        ...


def retry_after_s(value: str | None, now_s: float) -> float | None:
    """``Retry-After`` as seconds from ``now_s`` (epoch seconds); ``None`` if absent or bad.

    RFC 9110 allows delay-seconds or an HTTP date; a date in the past means "now" (0).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_s)


def _reason(body: Any, fallback: str) -> str:
    """The message of an InfluxDB error body (JSON ``{"code", "message"}``), else the text."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = str(body or "").strip()
    if text.startswith("{"):
        try:
            message = json.loads(text).get("message")
        except (ValueError, AttributeError):
            message = None
        if message:
            text = str(message)
    return (text or fallback)[:_MAX_REASON]


def classify_status(
    status: int, headers: Mapping[str, str] | None, body: Any, *, now_s: float
) -> WriteResult:
    """The outcome of an HTTP answer to a write (one helper for every status code)."""
    if 200 <= status < 300:
        return OK
    reason = _reason(body, f"HTTP {status}")
    after = None
    if headers is not None:
        after = retry_after_s(_header(headers, "Retry-After"), now_s)
    if status >= 500 or status in _RETRY_4XX:
        return WriteResult(Outcome.RETRY, reason, status, after)
    if status in _REJECTED:
        return WriteResult(Outcome.REJECTED, reason, status)
    return WriteResult(Outcome.MISCONFIGURED, reason, status, after)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


class InfluxWriter:
    """Writes line-protocol lines to InfluxDB 2.x's ``/api/v2/write`` (or anything that speaks
    it, such as VictoriaMetrics) with millisecond precision, one attempt per call.

    ``gzip`` compresses the body (line protocol shrinks about tenfold), worth it for a
    backlog sent over a county's network; on loopback it costs CPU for nothing.
    """

    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        bucket: str,
        *,
        timeout_s: float = 10.0,
        gzip: bool = True,
        now_s: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.org = org
        self.bucket = bucket
        self._now_s = now_s
        # retries=False: no urllib3 retry strategy, so a failure comes back at once as the
        # underlying exception and the lines stay in the spool.
        self._client = InfluxDBClient(
            url=url,
            token=token,
            org=org,
            timeout=int(timeout_s * 1000),
            enable_gzip=gzip,
            retries=False,
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def __str__(self) -> str:
        return f"InfluxDB at {self.url} (org {self.org}, bucket {self.bucket})"

    def write(self, lines: Sequence[str], /) -> WriteResult:
        """Send ``lines`` in one request and classify the answer; never raises for I/O."""
        if not lines:
            return OK
        body = "\n".join(lines)
        try:
            self._api.write(
                bucket=self.bucket,
                org=self.org,
                record=body,
                # the client declares the constant as str, the parameter as WritePrecision
                write_precision=cast(WritePrecision, WritePrecision.MS),
            )
        except ApiException as exc:
            if not exc.status:  # the client's own wrapping of an SSL or protocol failure
                return WriteResult(Outcome.RETRY, _reason(exc.reason, "no response"))
            return classify_status(
                int(exc.status), exc.headers, exc.body or exc.reason, now_s=self._now_s()
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return WriteResult(Outcome.RETRY, _connection_reason(exc))
        return OK

    def close(self) -> None:
        """Release the connection pool."""
        self._api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> InfluxWriter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _connection_reason(exc: BaseException) -> str:
    """Plain words for a network failure ("connection refused", "timed out")."""
    chain: list[BaseException] = []
    inner: BaseException | None = exc
    while inner is not None and len(chain) < 10:
        chain.append(inner)
        inner = inner.__cause__ or inner.__context__
    text = str(exc)
    # Refused first: urllib3's NewConnectionError is (for history) a ConnectTimeoutError too.
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text:
        return "connection refused"
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return "connection reset"
    if any(isinstance(e, TimeoutError | urllib3.exceptions.TimeoutError) for e in chain):
        return "timed out"
    return f"{type(exc).__name__}: {text}"[:_MAX_REASON]
