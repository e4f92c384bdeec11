"""The Faust workers against a real Kafka-protocol broker (tansu): alarms, state, failover."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.distributed.bridge_harness import read_all, wait_until
from tests.distributed.worker_harness import (
    WorkerProcess,
    alarm_events,
    all_committed,
    committed,
    create_topics,
    distinct,
    produce,
    reading,
    write_registry,
)
from tests.services.tansu import Tansu

pytestmark = pytest.mark.timeout(300)

PARTITIONS = 4


StartWorkers = Callable[..., list[WorkerProcess]]


@pytest.fixture
def start_workers(tmp_path: Path, tansu: Tansu) -> Iterator[StartWorkers]:
    """``start(registry, count=1, extra=(), partitions=PARTITIONS)``: start ``count`` workers
    (w1, w2, …) on the test's tansu; any still running are killed after the test."""
    made: list[WorkerProcess] = []

    def start(
        registry: Path, count: int = 1, extra: Sequence[str] = (), partitions: int = PARTITIONS
    ) -> list[WorkerProcess]:
        new = [
            WorkerProcess(
                tmp_path, f"w{len(made) + i + 1}", tansu.bootstrap, registry, partitions, *extra
            )
            for i in range(count)
        ]
        made.extend(new)
        for w in new:
            w.start()
        return new

    yield start
    for w in made:
        w.close()


def test_one_worker_raises_and_clears_alarms_from_kafka_readings(
    tmp_path: Path, tansu: Tansu, start_workers: StartWorkers
) -> None:
    registry = write_registry(tmp_path / "registry", sites=4, detectors=2)
    create_topics(tansu.bootstrap, PARTITIONS)
    [worker] = start_workers(registry)
    worker.wait_owns_all(PARTITIONS)

    # Each site's GD-00: normal, orange, red, normal; a bad payload and an unknown sensor.
    messages = []
    for seq, value in enumerate([3.0, 30.0, 60.0, 2.0]):
        messages += [reading(s, 0, seq, value) for s in range(4)]
    messages += [
        ("ew/v1/acme/site-01/GD-00/up", b"{not json"),
        ("ew/v1/acme/site-01/GD-99/up", b'{"ts": 1795284000000, "v": 1}'),
    ]
    produce(tansu.bootstrap, messages)

    wait_until(lambda: len(alarm_events(tansu.bootstrap)) >= 12, 60, "12 alarm events")
    events = alarm_events(tansu.bootstrap)
    by_sensor: dict[str, list[str]] = {}
    for e in sorted(events, key=lambda e: e.ts_ms):
        by_sensor.setdefault(e.sensor, []).append(
            f"{e.change.value}:{e.level.label if e.level else '-'}"
        )
    assert by_sensor == {
        f"acme/site-{s:02d}/GD-00": ["raised:orange", "level_changed:red", "cleared:-"]
        for s in range(4)
    }
    assert len(distinct(events)) == len(events) == 12
    wait_until(lambda: len(read_all(tansu.bootstrap, "ew.deadletter")) >= 2, 30, "dead letters")
    reasons = sorted(r.value.decode() for r in read_all(tansu.bootstrap, "ew.deadletter"))
    assert any('"bad_json"' in r for r in reasons), reasons
    assert any('"unknown_sensor"' in r for r in reasons), reasons
    counters = worker.stop()
    assert counters["alarm events sent"] == 12
    assert counters["dead letters sent"] == 2


def _script(seq: int) -> float:
    """Every detector's value at reading ``seq``: orange from 7, red from 14, normal from 20.

    Readings 8–13 repeat orange: a worker that lost the state would raise orange again (a new
    alarm id), so the alarm count tells lost state apart from recovered state.
    """
    if seq < 7:
        return 3.0
    if seq < 14:
        return 30.0
    if seq < 20:
        return 60.0
    return 2.0


@pytest.mark.parametrize(
    ("standbys", "when"),
    [(1, "committed"), (0, "committed"), (1, "in-flight")],
    ids=["standby-after-commit", "no-standby-after-commit", "standby-mid-stream"],
)
def test_a_killed_workers_partitions_move_with_their_state(
    tmp_path: Path, tansu: Tansu, start_workers: StartWorkers, standbys: int, when: str
) -> None:
    """The survivor reads the victim's changelog partitions when it takes them over (with
    Faust's in-memory tables it reads them whole even when it was their standby, so the
    standby variants check that a standby changes nothing). Killed after its commit,
    only the changelog knows what the victim saw; killed while readings stream in, the
    survivor also evaluates again what the victim took but did not commit."""
    # Several detectors per site: each batch writes many states to each changelog partition
    # in one produce request, so recovery must read a partition's last batch whole.
    sites, detectors = 8, 6
    registry = write_registry(tmp_path / "registry", sites=sites, detectors=detectors)
    create_topics(tansu.bootstrap, PARTITIONS)
    w1, w2 = start_workers(registry, 2, extra=("--standby-replicas", str(standbys)))

    def shared() -> bool:
        a, b = w1.owned(), w2.owned()
        return bool(a) and bool(b) and a | b == set(range(PARTITIONS)) and not a & b

    wait_until(shared, 90, "the two workers to share the partitions")
    victim = w1 if 0 in (w1.owned() or set()) else w2
    survivor = w2 if victim is w1 else w1

    def batch(seqs: range) -> list[tuple[str, bytes]]:
        return [
            reading(s, d, seq, _script(seq))
            for seq in seqs
            for s in range(sites)
            for d in range(detectors)
        ]

    sensors = sites * detectors
    # Normal readings first, then the one that turns every detector orange on its own: the
    # victim's last changelog write per partition is one batch of many sensors' states,
    # which a successor must read whole (a broker's end offset decides where it stops).
    produce(tansu.bootstrap, batch(range(7)))
    wait_until(
        lambda: all_committed(tansu.bootstrap, "earlywarn", set(range(PARTITIONS))),
        30,
        "the normal readings committed",
    )
    produce(tansu.bootstrap, batch(range(7, 8)))
    # Every detector orange, and the north zone of site-00 (two detectors orange) red.
    try:
        wait_until(
            lambda: len(distinct(alarm_events(tansu.bootstrap))) >= sensors + 1,
            60,
            "the orange alarms and the zone's red one",
        )
    except AssertionError as exc:  # say which sensors and what was committed, for a rerun
        raised = {e.sensor for e in alarm_events(tansu.bootstrap)}
        missing = sorted(
            f"acme/site-{s:02d}/GD-{d:02d}" for s in range(sites) for d in range(detectors)
        )
        missing = [m for m in missing if m not in raised]
        committed_now = committed(tansu.bootstrap, "earlywarn")
        raise AssertionError(f"{exc}; no alarm for {missing}; committed {committed_now}") from exc
    # The victim's readings so far are committed: its successor starts after them, so only
    # the changelog can tell it that the detectors are orange already.
    if when == "committed":
        lost = victim.owned() or set()
        wait_until(
            lambda: all_committed(tansu.bootstrap, "earlywarn", lost), 30, "the victim's commit"
        )
        victim.kill()
        produce(tansu.bootstrap, batch(range(8, 24)))
    else:
        feeding = threading.Thread(target=produce, args=(tansu.bootstrap, batch(range(8, 24))))
        feeding.start()
        time.sleep(0.3)
        victim.kill()
        feeding.join()
    survivor.wait_owns_all(PARTITIONS, 90)
    expected = sensors * 3 + 2  # orange, red, clear per detector; the zone raised and cleared
    wait_until(
        lambda: len(distinct(alarm_events(tansu.bootstrap))) >= expected,
        90,
        "every alarm event after the failover",
    )
    events = alarm_events(tansu.bootstrap)
    got = distinct(events)
    per_sensor: dict[str, list[str]] = {}
    for alarm_id, change, _ts, level in sorted(got, key=lambda t: t[2]):
        sensor = next(e.sensor for e in events if e.alarm_id == alarm_id)
        per_sensor.setdefault(sensor, []).append(f"{change}:{level}")
    want = {
        f"acme/site-{s:02d}/GD-{d:02d}": ["raised:orange", "level_changed:red", "cleared:-"]
        for s in range(sites)
        for d in range(detectors)
    }
    want["acme/site-00/north"] = ["raised:red", "cleared:-"]
    assert per_sensor == want  # nothing lost, nothing raised twice (state was recovered)
    assert len(got) == expected
    counters = survivor.stop()
    print(f"alarm events in ew.alarms: {len(events)}, distinct: {len(got)}; survivor: {counters}")


def test_offline_detectors_are_called_out_once_by_the_worker_that_owns_them(
    tmp_path: Path, tansu: Tansu, start_workers: StartWorkers
) -> None:
    """Site-00..05 report once and fall silent; site-06 and -07 never report. Each worker
    ticks only the sensors of its own partitions: every detector is offline exactly once."""
    sites, detectors = 8, 2
    registry = write_registry(
        tmp_path / "registry", sites=sites, detectors=detectors, offline=True, interval="1s"
    )
    create_topics(tansu.bootstrap, PARTITIONS)
    w1, w2 = start_workers(registry, 2)
    wait_until(
        lambda: bool(w1.owned()) and bool(w2.owned()), 90, "the two workers to share the load"
    )
    produce(tansu.bootstrap, [reading(s, d, 0, 3.0) for s in range(6) for d in range(detectors)])
    wait_until(
        lambda: len(alarm_events(tansu.bootstrap)) >= sites * detectors,
        60,
        "an offline alarm for every detector",
    )
    time.sleep(2.0)  # ten more ticks: a second worker ticking the same sensor would show now
    events = alarm_events(tansu.bootstrap)
    offline = [e for e in events if e.rule_kind == "offline"]
    assert len(offline) == len(events) == sites * detectors
    assert {e.sensor for e in offline} == {
        f"acme/site-{s:02d}/GD-{d:02d}" for s in range(sites) for d in range(detectors)
    }
    assert {e.level.label if e.level else "-" for e in offline} == {"yellow"}
    for w in (w1, w2):
        w.stop()


def test_a_changed_registry_reaches_the_worker_without_a_restart(
    tmp_path: Path, tansu: Tansu, start_workers: StartWorkers
) -> None:
    registry = write_registry(tmp_path / "registry", sites=2, detectors=2)
    create_topics(tansu.bootstrap, PARTITIONS)
    [worker] = start_workers(registry)
    worker.wait_owns_all(PARTITIONS)
    produce(tansu.bootstrap, [reading(0, 0, 0, 30.0), reading(2, 0, 0, 30.0)])  # site-02: unknown
    wait_until(lambda: len(alarm_events(tansu.bootstrap)) >= 1, 30, "site-00's orange alarm")
    wait_until(lambda: len(read_all(tansu.bootstrap, "ew.deadletter")) >= 1, 30, "a dead letter")
    assert b"unknown_sensor" in read_all(tansu.bootstrap, "ew.deadletter")[0].value

    # A broken file is refused in plain words; the worker goes on with the registry it has.
    (registry / "acme.yaml").write_text("enterprise: [", encoding="utf-8")
    wait_until(lambda: "cannot be used" in worker.log(), 30, "the broken registry refused")
    produce(tansu.bootstrap, [reading(0, 0, 1, 60.0)])
    wait_until(lambda: len(alarm_events(tansu.bootstrap)) >= 2, 30, "site-00 red")

    write_registry(registry, sites=3, detectors=2)  # site-02 onboarded
    wait_until(lambda: "registry reloaded" in worker.log(), 30, "the registry reloaded")
    produce(tansu.bootstrap, [reading(2, 0, 1, 30.0), reading(0, 0, 2, 61.0)])
    wait_until(lambda: len(alarm_events(tansu.bootstrap)) >= 3, 30, "site-02's alarm")
    time.sleep(1.0)  # room for a wrong extra event (site-00 raised again from lost state)
    got = sorted(
        (e.sensor, e.change.value, e.level.label if e.level else "-")
        for e in alarm_events(tansu.bootstrap)
    )
    assert got == [
        ("acme/site-00/GD-00", "level_changed", "red"),
        ("acme/site-00/GD-00", "raised", "orange"),
        ("acme/site-02/GD-00", "raised", "orange"),
    ]
    worker.stop()


def test_a_worker_refuses_a_partition_count_that_is_not_the_topics(
    tmp_path: Path, tansu: Tansu, start_workers: StartWorkers
) -> None:
    """With the wrong --partitions a worker would look for each site's state in the wrong
    changelog partition: it says so and exits 2 without evaluating anything."""
    registry = write_registry(tmp_path / "registry", sites=2, detectors=2)
    create_topics(tansu.bootstrap, PARTITIONS)
    produce(tansu.bootstrap, [reading(0, 0, 0, 30.0)])
    [worker] = start_workers(registry, partitions=PARTITIONS + 2)
    assert worker.proc is not None
    code = worker.proc.wait(60)
    assert code == 2
    assert f"ew.readings has {PARTITIONS} partitions" in worker.log()
    assert f"--partitions {PARTITIONS}." in worker.log()
    assert alarm_events(tansu.bootstrap) == []
