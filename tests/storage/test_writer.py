"""The writer against a real HTTP server of our own: what crosses the wire, and how every
answer is classified (ok, retry with Retry-After, rejected, misconfigured)."""

from __future__ import annotations

import email.utils

import pytest

from storage.writer import InfluxWriter, Outcome, classify_status, retry_after_s
from tests.services.mosquitto import free_port
from tests.storage.fake_influx import Answer, FakeInflux

NOW = 1_800_000_000.0


def writer(url: str, **kw: object) -> InfluxWriter:
    return InfluxWriter(url, "s3cret", "county", "earlywarn", now_s=lambda: NOW, **kw)  # type: ignore[arg-type]


def test_lines_go_to_api_v2_write_gzipped_with_ms_precision() -> None:
    lines = ["reading,sensor=a value=1.5,quality=0i 1700000000000", 'alarm message="液位" 1']
    with FakeInflux() as server, writer(server.url) as w:
        assert w.write(lines).ok
        (request,) = server.requests
    assert request.lines == lines
    assert request.query == {"org": "county", "bucket": "earlywarn", "precision": "ms"}
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["authorization"] == "Token s3cret"


def test_without_gzip_the_body_is_plain() -> None:
    with FakeInflux() as server, writer(server.url, gzip=False) as w:
        assert w.write(["m v=1 1"]).ok
        assert "content-encoding" not in server.requests[0].headers


def test_nothing_to_write_sends_nothing() -> None:
    with FakeInflux() as server, writer(server.url) as w:
        assert w.write([]).ok
        assert server.requests == []


@pytest.mark.parametrize(
    ("answer", "outcome", "after_s"),
    [
        (Answer(429, "too many requests", {"Retry-After": "7"}), Outcome.RETRY, 7.0),
        (
            Answer(503, "busy", {"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}),
            Outcome.RETRY,
            30.0,
        ),
        (Answer(500, "internal error"), Outcome.RETRY, None),
        (Answer(400, "unable to parse 'x': bad"), Outcome.REJECTED, None),
        (Answer(413, "request too large"), Outcome.REJECTED, None),
        (Answer(422, "field type conflict"), Outcome.REJECTED, None),
        (Answer(401, "unauthorized access"), Outcome.MISCONFIGURED, None),
        (Answer(403, "insufficient permissions"), Outcome.MISCONFIGURED, None),
        (Answer(404, 'bucket "earlywarn" not found'), Outcome.MISCONFIGURED, None),
    ],
)
def test_answers_are_classified(answer: Answer, outcome: Outcome, after_s: float | None) -> None:
    with FakeInflux() as server, writer(server.url) as w:
        server.script(answer)
        result = w.write(["m v=1 1"])
    assert result.outcome is outcome
    assert result.status == answer.status
    assert result.reason == answer.message  # the server's message, from its JSON body
    assert result.after_s == after_s
    assert len(server.requests) == 1  # one attempt: the client never retries on its own


def test_connection_refused_is_a_retry() -> None:
    with writer(f"http://127.0.0.1:{free_port()}") as w:
        result = w.write(["m v=1 1"])
    assert result.outcome is Outcome.RETRY
    assert result.reason == "connection refused"
    assert result.status is None


def test_a_slow_server_times_out_as_a_retry() -> None:
    with FakeInflux() as server, writer(server.url, timeout_s=0.3) as w:
        server.script(Answer(204, delay_s=5))
        result = w.write(["m v=1 1"])
    assert result.outcome is Outcome.RETRY
    assert result.reason == "timed out"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("120", 120.0),
        (" 5 ", 5.0),
        (email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
        (email.utils.formatdate(NOW - 90, usegmt=True), 0.0),
        ("soon", None),
        ("-3", None),
    ],
)
def test_retry_after_seconds_or_http_date(header: str | None, expected: float | None) -> None:
    assert retry_after_s(header, NOW) == expected


def test_classify_status_reads_headers_in_any_case_and_plain_bodies() -> None:
    result = classify_status(429, {"retry-after": "3"}, b"slow down", now_s=NOW)
    assert (result.outcome, result.after_s, result.reason) == (Outcome.RETRY, 3.0, "slow down")
    assert classify_status(204, None, b"", now_s=NOW).ok
    assert classify_status(405, None, b"", now_s=NOW).outcome is Outcome.MISCONFIGURED
    assert classify_status(408, None, b"", now_s=NOW).reason == "HTTP 408"
