"""The drainer on a real spool: batches in order, backoff and Retry-After on an injected clock,
bisection of rejected batches (through the real writer and HTTP), and what it logs."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from storage.drain import Drainer, SinkState
from storage.spool import Klass, Spool
from storage.writer import InfluxWriter, Outcome, WriteResult
from tests.storage.fake_influx import Answer, FakeInflux

OK = WriteResult(Outcome.OK)
DOWN = WriteResult(Outcome.RETRY, "connection refused")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class RecordingSink:
    """Answers from a script (then ok) and records every write: a seam we own."""

    def __init__(self, *answers: WriteResult) -> None:
        self.answers = deque(answers)
        self.writes: list[list[str]] = []

    def write(self, lines: Sequence[str], /) -> WriteResult:
        self.writes.append(list(lines))
        return self.answers.popleft() if self.answers else OK

    def __str__(self) -> str:
        return "InfluxDB at test"


def lines(n: int, start: int = 0) -> list[str]:
    return [
        f"reading,sensor=s value={i}.0 {1_700_000_000_000 + i}" for i in range(start, start + n)
    ]


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool.db", max_bytes=10**9) as s:
        yield s


def drain_all(drainer: Drainer, max_steps: int = 10_000) -> None:
    for _ in range(max_steps):
        if drainer.spool.depth() == 0:
            return
        drainer.step()
    raise AssertionError("the spool did not drain")


def test_batches_in_order_then_idle(spool: Spool) -> None:
    spool.append(lines(25), klass=Klass.READING)
    sink = RecordingSink()
    drainer = Drainer(spool, sink, batch_lines=10, idle_s=0.5)
    assert [drainer.step() for _ in range(4)] == [0.0, 0.0, 0.5, 0.5]
    assert [len(w) for w in sink.writes] == [10, 10, 5]
    assert [line for w in sink.writes for line in w] == lines(25)
    stats = drainer.stats
    assert (stats.written, stats.requests, stats.backlog, stats.state) == (25, 3, 0, SinkState.UP)


def test_backoff_doubles_to_the_cap_and_resets_on_success(spool: Spool) -> None:
    spool.append(lines(3), klass=Klass.READING)
    sink = RecordingSink(*[DOWN] * 8)
    drainer = Drainer(spool, sink, min_backoff_s=1, max_backoff_s=30, now=Clock())
    assert [drainer.step() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert spool.depth() == 3  # nothing lost while down
    assert drainer.stats.state is SinkState.DOWN
    assert drainer.stats.retries == 8
    assert drainer.stats.last_error == "connection refused"
    assert drainer.step() == 1.0  # sent; spool empty → idle
    assert spool.depth() == 0
    sink.answers.extend([DOWN])
    spool.append(lines(1), klass=Klass.READING)
    assert drainer.step() == 1  # the backoff starts again from the minimum


def test_retry_after_is_honoured(spool: Spool) -> None:
    spool.append(lines(1), klass=Klass.READING)
    busy = WriteResult(Outcome.RETRY, "too many requests", 429, after_s=17.0)
    huge = WriteResult(Outcome.RETRY, "busy", 503, after_s=10**6)
    now = WriteResult(Outcome.RETRY, "busy", 503, after_s=0.0)
    drainer = Drainer(spool, RecordingSink(busy, huge, now), max_retry_after_s=3600)
    assert drainer.step() == 17.0
    assert drainer.step() == 3600.0  # a silly header does not stall the spool for days
    assert drainer.step() == 1.0  # "retry now" still waits the minimum backoff


def test_misconfigured_retries_slowly_keeps_data_and_says_what_to_check(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="storage.drain")
    spool.append(lines(2), klass=Klass.READING)
    clock = Clock()
    denied = WriteResult(Outcome.MISCONFIGURED, "unauthorized access", 401)
    drainer = Drainer(
        spool, RecordingSink(*[denied] * 5), max_backoff_s=60, now=clock, remind_s=600
    )
    for _ in range(4):
        assert drainer.step() == 60
        clock.t += 60
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "check the token" in errors[0].getMessage()
    assert "HTTP 401: unauthorized access" in errors[0].getMessage()
    clock.t += 600
    drainer.step()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2  # a reminder after remind_s
    assert "for 840 s" in errors[1].getMessage()
    assert drainer.stats.state is SinkState.MISCONFIGURED
    assert spool.depth() == 2


def test_logs_state_changes_not_every_retry(spool: Spool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="storage.drain")
    spool.append(lines(12_345), klass=Klass.READING)
    clock = Clock()
    drainer = Drainer(spool, RecordingSink(*[DOWN] * 5), batch_lines=5000, now=clock)
    for _ in range(5):
        clock.t += drainer.step()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "InfluxDB at test unreachable (connection refused); 12,345 points waiting in the spool;"
        " retrying in 1 s"
    ]
    drain_all(drainer)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == [
        "InfluxDB at test is taking writes again after 31 s; 7,345 points to send",
        "Spool drained: every point is in InfluxDB at test",
    ]


def test_run_steps_until_stopped(spool: Spool) -> None:
    spool.append(lines(30), klass=Klass.READING)
    stop = threading.Event()

    class StopWhenEmpty(RecordingSink):
        def write(self, batch: Sequence[str], /) -> WriteResult:
            result = super().write(batch)
            if sum(map(len, self.writes)) >= 30:
                stop.set()
            return result

    sink = StopWhenEmpty()
    Drainer(spool, sink, batch_lines=7).run(stop)  # returns: no wait left once stopped
    assert [line for w in sink.writes for line in w] == lines(30)


def test_run_survives_a_failing_step(spool: Spool, caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    drainer = Drainer(spool, RecordingSink(), min_backoff_s=0.001)
    calls = []

    def broken() -> float:
        calls.append(1)
        if len(calls) == 2:
            stop.set()
        raise OSError("disk I/O error")

    drainer.step = broken  # type: ignore[method-assign]
    drainer.run(stop)  # the first failure backs off; the second sets stop
    assert len(calls) == 2
    assert "Draining the spool failed" in caplog.text
    assert drainer.stats.last_error == "OSError: disk I/O error"


# --- bisection, through the real writer and HTTP ----------------------------------------------


def test_a_rejected_batch_is_bisected_to_the_bad_lines(spool: Spool) -> None:
    good = lines(1000)
    bad = {
        17: "reading,sensor=s value=BAD 1",
        500: "reading,sensor=s value=BAD 2",
        501: "reading,sensor=s value=BAD 3",
    }
    everything = list(good)
    for index, line in sorted(bad.items()):
        everything.insert(index, line)
    spool.append(everything, klass=Klass.READING)
    with FakeInflux() as server, InfluxWriter(server.url, "t", "o", "b") as writer:
        server.refuse_marker = "BAD"
        drainer = Drainer(spool, writer, batch_lines=5000)
        assert drainer.step() == 1.0
        assert server.accepted == good  # every good line once, in order
        requests = len(server.requests)
    assert spool.depth() == 0
    rejected = spool.rejected()
    assert sorted(r.text for r in rejected) == sorted(bad.values())
    assert all(
        r.reason.startswith("HTTP 400: unable to parse 'reading,sensor=s value=BAD")
        for r in rejected
    )
    assert drainer.stats.rejected == 3
    assert drainer.stats.written == 1000
    assert requests < 80  # bisection, not one request per line


def test_an_outage_during_bisection_keeps_the_unsettled_rest(spool: Spool) -> None:
    spool.append(lines(8), klass=Klass.READING)
    rejected = WriteResult(Outcome.REJECTED, "bad", 400)
    # whole batch rejected; left half [0:4] rejected; [0:2] ok; [2:4] server down
    sink = RecordingSink(rejected, rejected, OK, DOWN)
    drainer = Drainer(spool, sink, now=Clock())
    assert drainer.step() == 1.0  # backoff
    assert list(spool.peek(100).lines) == lines(6, start=2)  # settled prefix removed
    sink.answers.extend([rejected, rejected, rejected])  # [2:8] rejected, [2:5], [2:3]=line 2
    drain_all(drainer)
    assert [r.text for r in spool.rejected()] == [lines(3)[2]]
    # the lines written before the outage were not sent again
    after_outage = [line for write in sink.writes[4:] for line in write]
    assert not set(lines(2)) & set(after_outage)
    assert spool.depth() == 0


def test_429_with_retry_after_through_the_real_writer(spool: Spool) -> None:
    spool.append(lines(10), klass=Klass.READING)
    with FakeInflux() as server, InfluxWriter(server.url, "t", "o", "b") as writer:
        server.script(Answer(429, "too many requests", {"Retry-After": "12"}))
        drainer = Drainer(spool, writer, now=Clock())
        assert drainer.step() == 12.0
        assert spool.depth() == 10
        assert drainer.stats.last_error == "HTTP 429: too many requests"
        assert drainer.step() == 1.0  # accepted now; spool empty
        assert server.accepted == lines(10)
        assert [r.status for r in server.requests] == [429, 204]


def test_a_runner_appending_while_the_drainer_drains_loses_and_repeats_nothing(
    spool: Spool,
) -> None:
    """The runner's thread appends while the drainer's thread sends, on one Spool object."""
    stop = threading.Event()
    sink = RecordingSink()
    drainer = Drainer(spool, sink, batch_lines=250, idle_s=0.0005)
    thread = threading.Thread(target=drainer.run, args=(stop,))
    thread.start()
    try:
        for k in range(100):
            spool.append(lines(100, start=k * 100), klass=Klass.READING)
        for _ in range(20_000):
            if sum(map(len, sink.writes)) >= 10_000:
                break
            stop.wait(0.001)
    finally:
        stop.set()
        thread.join(10)
    assert [line for w in sink.writes for line in w] == lines(10_000)
    assert (spool.depth(), spool.size_bytes()) == (0, 0)
    assert spool.stats.appended == spool.stats.removed == 10_000
