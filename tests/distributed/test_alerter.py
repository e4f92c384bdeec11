"""``earlywarn alerter`` against a real Kafka-protocol broker (tansu): alarm events in
``ew.alarms`` reach the alert store and go out once over a real channel (SMS and calls to a
local HTTP gateway), however often Kafka delivers them; readings in ``ew.readings`` reach a
real line-protocol server (VictoriaMetrics) once.

The alerter runs on its own loop in a thread with a :class:`ManualClock`: escalation runs on
the injected time, so what is sent is exactly the first step of each alarm's policy and never
a repeat that a slow machine let come due. Records are counted by reading them (tansu's end
offsets are not a count, see ``test_tansu.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from alerting.alarm_records import ALARMS_TOPIC, alarm_key, alarm_value
from alerting.store import AlertStore
from earlywarn.alert_wiring import AlertingRuntime, open_alerting
from earlywarn.alerter import Alerter, AlerterCounters, AlerterSettings
from earlywarn.clock import Clock, ManualClock, SystemClock
from earlywarn.model import AlarmEvent, Reading
from earlywarn.pipeline import Pipeline
from earlywarn.registry import Registry
from earlywarn.settings import RunSettings, StorageSettings
from earlywarn.storage_wiring import StorageRuntime
from ingest.kafka_records import record_for
from tests.alerting.night import channels_to, sent
from tests.conftest import EXAMPLE_REGISTRY, ROOT, _service_missing
from tests.services.http_recorder import HttpRecorder
from tests.services.tansu import Tansu
from tests.services.victoria import VictoriaMetrics, find_victoria

pytestmark = pytest.mark.integration

GAS = "huaxin-chem/tank-farm-1/GD-03"
T0 = 1_795_284_000_000
CALLS = 5
"""Calls the first step of a red gas alarm at the tank farm makes (the e2e runner test's)."""


# -- helpers ------------------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll every 20 ms; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout_s} s waiting for {what}"
            raise AssertionError(msg)
        time.sleep(0.02)


Record = tuple[str, bytes | None, bytes, Sequence[tuple[str, bytes]]]


def produce(bootstrap: str, records: Sequence[Record]) -> None:
    """Write ``(topic, key, value, headers)`` records, in order, acknowledged by the broker."""

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for topic, key, value, headers in records:
                await producer.send_and_wait(topic, value, key=key, headers=list(headers))
        finally:
            await producer.stop()

    asyncio.run(run())


def alarm_records(events: Sequence[AlarmEvent]) -> list[Record]:
    return [(ALARMS_TOPIC, alarm_key(e), alarm_value(e), ()) for e in events]


def gas_events(registry: Registry, values: Sequence[float], start_ms: int = T0) -> list[AlarmEvent]:
    """The events the rules raise for readings of the tank farm's gas detector, one a
    second: the very events a worker writes."""
    clock = ManualClock(start_ms)
    pipeline = Pipeline(registry, clock, [], None)
    events: list[AlarmEvent] = []
    for i, value in enumerate(values):
        clock.set(start_ms + i * 1000)
        events.extend(pipeline.evaluate_many([Reading(GAS, start_ms + i * 1000, value)]))
    return events


class AlerterThread:
    """The alerter on its own loop in a background thread; the alert store is opened there
    (it belongs to the thread that uses it)."""

    def __init__(
        self,
        registry: Registry,
        settings: AlerterSettings,
        clock: Clock,
        alerting: Callable[[], AlertingRuntime],
        storage: Callable[[AlertStore], StorageRuntime] | None = None,
        cls: type[Alerter] = Alerter,
    ) -> None:
        self.registry, self.settings, self.clock, self.cls = registry, settings, clock, cls
        self._alerting, self._storage = alerting, storage
        self.alerter: Alerter | None = None
        self.result: AlerterCounters | None = None
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="alerter", daemon=True)

    def _main(self) -> None:
        async def serve() -> None:
            self._stop = asyncio.Event()
            runtime = self._alerting()
            try:
                storage = self._storage(runtime.store) if self._storage else None
                self.alerter = self.cls(
                    self.registry,
                    self.settings,
                    runtime.service,
                    self.clock,
                    ack_server=runtime.ack_server,
                    storage=storage,
                )
                self._ready.set()
                self.result = await self.alerter.run(self._stop)
            finally:
                runtime.close()

        try:
            self._loop.run_until_complete(serve())
        except BaseException as exc:
            self.error = exc
        finally:
            self._ready.set()
            self._loop.close()

    @property
    def counters(self) -> AlerterCounters:
        assert self.alerter is not None
        return self.alerter.counters

    def start(self) -> AlerterThread:
        """Start; return once the alarm consumer is in its group."""
        self._thread.start()
        self._ready.wait(10)
        self.wait(lambda: self.alerter is not None and self.alerter.consuming.is_set(), "start")
        return self

    def wait(self, condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
        def check() -> bool:
            if self.error is not None:
                raise self.error
            return condition()

        wait_until(check, timeout_s, what)

    def stop(self, timeout_s: float = 30.0) -> AlerterCounters:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)
        if self.error is not None:
            raise self.error
        assert self.result is not None, "the alerter did not finish"
        return self.result


def settings_for(tansu: Tansu, group: str = "alerter") -> AlerterSettings:
    # A short group session: joining takes about half of it (tansu and Kafka alike).
    return AlerterSettings(
        kafka=tansu.bootstrap,
        group=group,
        escalate_s=0.05,
        store_every_s=0.2,
        poll_s=0.1,
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
        retry_min_s=0.1,
    )


@pytest.fixture
def start_alerter(
    tansu: Tansu, registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> Iterator[Callable[..., AlerterThread]]:
    """Start alerters over one alert store and one HTTP gateway; stopped after the test."""
    started: list[AlerterThread] = []
    clock = ManualClock(T0 + 60_000)

    def start(cls: type[Alerter] = Alerter, group: str = "alerter") -> AlerterThread:
        run = RunSettings(escalate_s=0.05)

        def alerting() -> AlertingRuntime:
            return open_alerting(
                registry, run, clock, tmp_path / "alerts.db", channels_to(http_recorder)
            )

        thread = AlerterThread(registry, settings_for(tansu, group), clock, alerting, cls=cls)
        started.append(thread)
        return thread.start()

    yield start
    for thread in started:
        if thread._thread.is_alive():
            thread.stop()


def stored_alarms(path: Path) -> dict[str, str]:
    """Alarm id → state of every alarm in the store."""
    with AlertStore(path) as store:
        return {r.alarm_id: r.state.value for r in store.list_alarms(limit=1000)}


def requests_seen(recorder: HttpRecorder) -> Counter[tuple[str, str]]:
    """How many times each (channel path, address) was sent to."""
    return Counter((r.path, str(r.json().get("to", ""))) for r in recorder.requests)


def settle(alerter: AlerterThread, recorder: HttpRecorder) -> None:
    """Wait until the gateway has seen no request for a while (several escalation rounds):
    the sends of this step are all out and nothing else comes."""
    last = -1
    while last != len(recorder.requests):
        last = len(recorder.requests)
        time.sleep(0.5)
        alerter.wait(lambda: True, "")


# -- ew.alarms ----------------------------------------------------------------------------


def test_an_alarm_event_reaches_the_store_and_is_called_out_once(
    tansu: Tansu,
    registry: Registry,
    http_recorder: HttpRecorder,
    start_alerter: Callable[..., AlerterThread],
    tmp_path: Path,
) -> None:
    events = gas_events(registry, [2.0, 63.0])
    assert [e.change.value for e in events] == ["raised"]
    produce(tansu.bootstrap, alarm_records(events))
    alerter = start_alerter()
    alerter.wait(lambda: len(sent(http_recorder, "/voice")) == CALLS, "the calls")
    settle(alerter, http_recorder)
    counters = alerter.stop()
    assert (counters.alarm_events, counters.applied, counters.duplicates) == (1, 1, 0)
    assert stored_alarms(tmp_path / "alerts.db") == {events[0].alarm_id: "active-unacked"}
    seen = requests_seen(http_recorder)
    assert max(seen.values()) == 1, seen
    assert len(sent(http_recorder, "/voice")) == CALLS


def test_the_same_events_delivered_twice_notify_once(
    tansu: Tansu,
    registry: Registry,
    http_recorder: HttpRecorder,
    start_alerter: Callable[..., AlerterThread],
    tmp_path: Path,
) -> None:
    """A worker that crashed after writing its events writes them again: the store ignores
    the second copy, so nobody is called twice — also when the copies come much later."""
    events = gas_events(registry, [2.0, 63.0, 2.0, 2.0, 2.0])
    changes = [e.change.value for e in events]
    assert changes[0] == "raised" and "cleared" in changes, changes
    raised = events[:1]
    produce(tansu.bootstrap, alarm_records(raised + raised))
    alerter = start_alerter()
    alerter.wait(lambda: alerter.counters.alarm_events == 2, "both copies")
    alerter.wait(lambda: len(sent(http_recorder, "/voice")) == CALLS, "the calls")
    settle(alerter, http_recorder)
    once = requests_seen(http_recorder)
    assert max(once.values()) == 1, once
    # Everything again, and the clear, twice.
    produce(tansu.bootstrap, alarm_records(events + events))
    total = 2 + 2 * len(events)
    alerter.wait(lambda: alerter.counters.alarm_events == total, "every copy")
    settle(alerter, http_recorder)
    counters = alerter.stop()
    assert counters.applied == len(events)
    assert counters.duplicates == total - len(events)
    assert counters.undecodable == 0
    after = requests_seen(http_recorder)
    # The clear adds its all-clear once per person reached, never a second call.
    assert len(sent(http_recorder, "/voice")) == CALLS
    assert max(after.values()) <= 2, after
    assert stored_alarms(tmp_path / "alerts.db") == {events[0].alarm_id: "cleared-unacked"}


class _CrashesBeforeCommitting(Alerter):
    """Applies every record but never commits an offset: what a process killed between its
    SQLite commit and its Kafka commit leaves behind."""

    async def _commit(self, consumer: object, offsets: object) -> None:
        return None


def test_a_restart_after_a_crash_before_the_commit_notifies_nobody_twice_and_loses_nothing(
    tansu: Tansu,
    registry: Registry,
    http_recorder: HttpRecorder,
    start_alerter: Callable[..., AlerterThread],
    tmp_path: Path,
) -> None:
    first = gas_events(registry, [2.0, 63.0])
    produce(tansu.bootstrap, alarm_records(first))
    crashed = start_alerter(_CrashesBeforeCommitting)
    crashed.wait(lambda: len(sent(http_recorder, "/voice")) == CALLS, "the calls")
    settle(crashed, http_recorder)
    assert crashed.stop().applied == 1
    before = requests_seen(http_recorder)
    # While it is away, a second sensor's alarm arrives (another occurrence, another id).
    second = [
        replace(e, alarm_id=e.alarm_id.replace("GD-03", "GD-01"), sensor=e.sensor[:-1] + "1")
        for e in first
    ]
    produce(tansu.bootstrap, alarm_records(second))
    again = start_alerter()
    again.wait(lambda: again.counters.alarm_events == 2, "the old record and the new one")
    again.wait(lambda: len(sent(http_recorder, "/voice")) == 2 * CALLS, "the new alarm's calls")
    settle(again, http_recorder)
    counters = again.stop()
    assert (counters.applied, counters.duplicates) == (1, 1)
    alarms = stored_alarms(tmp_path / "alerts.db")
    assert set(alarms) == {first[0].alarm_id, second[0].alarm_id}
    after = requests_seen(http_recorder)
    assert sum(after.values()) == 2 * sum(before.values())
    # And now it committed: a third start reads nothing again.
    third = start_alerter()
    time.sleep(1.0)
    assert third.stop().alarm_events == 0


def test_an_undecodable_record_is_skipped_and_counted_and_the_next_ones_are_applied(
    tansu: Tansu,
    registry: Registry,
    http_recorder: HttpRecorder,
    start_alerter: Callable[..., AlerterThread],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = gas_events(registry, [2.0, 63.0])
    key = alarm_key(events[0])  # one key: one partition, read in this order
    bad = json.loads(alarm_value(events[0]))
    del bad["start_ms"]
    produce(
        tansu.bootstrap,
        [
            (ALARMS_TOPIC, key, b"\xff not an event", ()),
            (ALARMS_TOPIC, key, json.dumps(bad).encode(), ()),
            *alarm_records(events),
        ],
    )
    caplog.set_level("WARNING", logger="earlywarn.alerter")
    alerter = start_alerter()
    alerter.wait(lambda: alerter.counters.alarm_events == 3, "three records")
    alerter.wait(lambda: len(sent(http_recorder, "/voice")) == CALLS, "the calls")
    counters = alerter.stop()
    assert (counters.undecodable, counters.applied) == (2, 1)
    assert stored_alarms(tmp_path / "alerts.db") == {events[0].alarm_id: "active-unacked"}
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2, skipped
    assert "ew.alarms partition" in skipped[0] and "offset 0" in skipped[0]
    assert "not UTF-8" in skipped[0]
    assert "has no 'start_ms'" in skipped[1] and "offset 1" in skipped[1]
    # Committed past them: a restart does not read them again.
    again = start_alerter()
    time.sleep(1.0)
    assert again.stop().alarm_events == 0


def test_a_store_that_cannot_write_holds_the_partition_and_is_tried_again(
    tansu: Tansu,
    registry: Registry,
    http_recorder: HttpRecorder,
    tmp_path: Path,
) -> None:
    """SQLite refuses the first write (locked, disk full): nothing is committed past it, the
    event is read again after a pause and applied, and the calls go out once."""
    events = gas_events(registry, [2.0, 63.0])
    produce(tansu.bootstrap, alarm_records(events))
    clock = ManualClock(T0 + 60_000)
    refused: list[str] = []

    def alerting() -> AlertingRuntime:
        runtime = open_alerting(
            registry,
            RunSettings(escalate_s=0.05),
            clock,
            tmp_path / "alerts.db",
            channels_to(http_recorder),
        )
        apply_event = runtime.store.apply_event

        def flaky(event: AlarmEvent, now_ms: int, *, drill: bool = False) -> object:
            if not refused:
                refused.append(event.alarm_id)
                msg = "database is locked"
                raise sqlite3.OperationalError(msg)
            return apply_event(event, now_ms, drill=drill)

        runtime.store.apply_event = flaky  # type: ignore[method-assign,assignment]
        return runtime

    alerter = AlerterThread(registry, settings_for(tansu), clock, alerting).start()
    try:
        alerter.wait(lambda: len(sent(http_recorder, "/voice")) == CALLS, "the calls")
        settle(alerter, http_recorder)
    finally:
        counters = alerter.stop()
    assert refused == [events[0].alarm_id]
    assert (counters.store_failures, counters.alarm_events, counters.applied) == (1, 1, 1)
    assert max(requests_seen(http_recorder).values()) == 1


def test_escalation_runs_on_the_injected_clock(
    tansu: Tansu,
    registry: Registry,
    http_recorder: HttpRecorder,
    tmp_path: Path,
) -> None:
    """Nobody acknowledges: moving the clock an hour on makes the next steps due at once."""
    events = gas_events(registry, [2.0, 63.0])
    produce(tansu.bootstrap, alarm_records(events))
    clock = ManualClock(T0 + 60_000)

    def alerting() -> AlertingRuntime:
        return open_alerting(
            registry,
            RunSettings(escalate_s=0.05),
            clock,
            tmp_path / "alerts.db",
            channels_to(http_recorder),
        )

    alerter = AlerterThread(registry, settings_for(tansu), clock, alerting).start()
    try:
        alerter.wait(lambda: len(sent(http_recorder, "/voice")) == CALLS, "the first calls")
        settle(alerter, http_recorder)
        first = len(http_recorder.requests)
        clock.advance(3_600_000)
        alerter.wait(lambda: len(http_recorder.requests) > first, "the next escalation steps")
    finally:
        alerter.stop()


# -- ew.readings --------------------------------------------------------------------------


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """VictoriaMetrics without deduplication: a reading stored twice would show twice."""
    if find_victoria() is None:
        _service_missing("victoria-metrics")
    server = VictoriaMetrics(tmp_path / "vm")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_readings_reach_the_line_protocol_server_once(
    tansu: Tansu,
    registry: Registry,
    http_recorder: HttpRecorder,
    victoria: VictoriaMetrics,
    tmp_path: Path,
) -> None:
    now = time.time_ns() // 1_000_000 - 100_000
    stamps = [now + i * 1000 for i in range(40)]
    up = "ew/v1/huaxin-chem/tank-farm-1/GD-03/up"
    messages = [
        (up, json.dumps({"ts": ts, "v": 2.0 + i % 3}).encode()) for i, ts in enumerate(stamps)
    ]
    messages.append(("ew/v1/huaxin-chem/tank-farm-1/GD-03/status", b"online"))
    messages.append((up, b'{"ts": 1, "v": 2}'))  # rejected (before 2000): counted, not stored
    records = [record_for(topic, payload, now) for topic, payload in messages]
    produce(tansu.bootstrap, [(r.topic, r.key, r.value, r.headers) for r in records])
    clock = SystemClock()

    def alerting() -> AlertingRuntime:
        return open_alerting(
            registry, RunSettings(), clock, tmp_path / "alerts.db", channels_to(http_recorder)
        )

    def storage(store: AlertStore) -> StorageRuntime:
        spool = StorageSettings(influx_url=victoria.url, spool_path=str(tmp_path / "spool.db"))
        return StorageRuntime(spool, registry, clock, store)

    def stored() -> list[tuple[str, str, int, float]]:
        return [p for p in victoria.points('{__name__="reading_value"}') if "GD-03" in p[1]]

    for run in range(2):  # the second run reads nothing again: the offsets were committed
        alerter = AlerterThread(registry, settings_for(tansu), clock, alerting, storage).start()
        try:
            if run == 0:
                alerter.wait(_records_read(alerter.counters, 42), "every record")
            # Newly registered series can take a moment to be searchable.
            alerter.wait(lambda: len(stored()) >= 40, "the readings in VictoriaMetrics")
            time.sleep(1.0)
        finally:
            counters = alerter.stop()
        if run == 0:
            assert counters.readings_stored == 40
            assert (counters.device_status, counters.readings_rejected) == (1, 1)
        else:
            assert counters.readings_records == 0
    points = stored()
    assert sorted(p[2] for p in points) == stamps  # once per (series, timestamp)


def _records_read(counters: AlerterCounters, n: int) -> Callable[[], bool]:
    return lambda: counters.readings_records == n


# -- the command --------------------------------------------------------------------------


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EARLYWARN_")}
    env["PYTHONPATH"] = str(ROOT)
    env["EARLYWARN_STORE"] = str(tmp_path / "cli-alerts.db")
    return env


def test_cli_refuses_an_unreadable_registry_with_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "registry"
    shutil.copytree(EXAMPLE_REGISTRY, broken)
    (broken / "regions.yaml").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "earlywarn.cli", "alerter", "--registry", str(broken)],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "the regions file is missing" in done.stderr
    assert f"earlywarn alerter: cannot use registry {broken}: 1 problem" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_stops_on_sigterm_with_exit_0_and_prints_its_counters(
    tansu: Tansu, registry: Registry, tmp_path: Path
) -> None:
    events = gas_events(registry, [2.0, 63.0])
    produce(tansu.bootstrap, alarm_records(events))
    env = _env(tmp_path)
    env["EARLYWARN_KAFKA"] = tansu.bootstrap
    out, err = tmp_path / "alerter.out", tmp_path / "alerter.err"
    argv = [sys.executable, "-m", "earlywarn.cli", "alerter", "--registry", str(EXAMPLE_REGISTRY)]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([*argv, "--group", "cli"], stdout=stdout, stderr=stderr, env=env)
    try:
        wait_until(
            lambda: (
                (tmp_path / "cli-alerts.db").exists()
                and events[0].alarm_id in stored_alarms(tmp_path / "cli-alerts.db")
            ),
            60,
            "the alarm in the command's store",
        )
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = err.read_text()
    assert code == 0, log
    printed = out.read_text().rsplit("earlywarn alerter stopped", 1)[1]
    counters = {
        name.strip(): int(value)
        for name, _, value in (line.strip().rpartition(" ") for line in printed.splitlines())
        if name
    }
    assert counters["alarm events received"] == 1, printed
    assert counters["applied to the alert store"] == 1
    assert counters["duplicates ignored"] == 0
    assert counters["undecodable, skipped"] == 0
    assert counters["readings stored"] == 0
    assert f"reading ew.alarms in group cli from {tansu.bootstrap}" in log
