"""Every query of every dashboard runs on a real InfluxDB 1.x and returns what it should.

Grafana is not here, so the tests expand its macros as its InfluxDB data source does and
compare the answers with the sample data written through :mod:`storage.schema`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from dashboards.build import BuiltDashboard
from earlywarn.registry import Registry
from tests.dashboards.conftest import DATABASE
from tests.dashboards.macros import expand, queries_of, regex_value
from tests.dashboards.sample import BUCKET_MS, HOUR_MS, Sample
from tests.services.influxdb1 import InfluxDB1

pytestmark = pytest.mark.integration


def _variables(
    board: BuiltDashboard, registry: Registry, sites: list[str] | None = None
) -> dict[str, str]:
    """``$enterprise`` and ``$site`` with everything selected (or the given sites)."""
    constant = next(
        (v["query"] for v in board.model["templating"]["list"] if v["type"] == "constant"), None
    )
    if constant is not None:
        enterprise = regex_value([constant], multi=False)
        all_sites = [s.id for s in registry.enterprises[constant].sites]
    else:
        enterprise = regex_value(sorted(registry.enterprises))
        all_sites = sorted({s.id for e in registry.enterprises.values() for s in e.sites})
    return {"enterprise": enterprise, "site": regex_value(sites or all_sites)}


def _run(
    db: InfluxDB1, sample: Sample, text: str, variables: dict[str, str]
) -> list[dict[str, Any]]:
    return db.query(
        DATABASE, expand(text, start_ms=sample.start_ms, end_ms=sample.end_ms, variables=variables)
    )


def _board(built: list[BuiltDashboard], uid: str) -> BuiltDashboard:
    return next(b for b in built if b.uid == uid)


def _target(board: BuiltDashboard, contains: str) -> str:
    found = [q.text for q in queries_of(board.model) if contains in q.text]
    assert len(found) == 1, f"{len(found)} queries of {board.uid} contain {contains!r}"
    return found[0]


def _rows(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each value row as a dict with the series' tags."""
    rows = []
    for s in series:
        for values in s["values"]:
            rows.append({**s.get("tags", {}), **dict(zip(s["columns"], values, strict=True))})
    return rows


def test_every_query_of_every_dashboard_returns_data(
    built: list[BuiltDashboard], loaded: InfluxDB1, sample: Sample, registry: Registry
) -> None:
    count = 0
    for board in built:
        variables = _variables(board, registry)
        for query in queries_of(board.model):
            series = _run(loaded, sample, query.text, variables)
            assert series, f"{board.uid} {query.where} returned nothing: {query.text}"
            count += 1
    assert count > 70  # 78 today: panels, annotations and variables of seven dashboards


def test_site_map_shows_every_site_with_its_last_status(
    built: list[BuiltDashboard], loaded: InfluxDB1, sample: Sample, registry: Registry
) -> None:
    centre = _board(built, "ew-centre")
    rows = _rows(
        _run(loaded, sample, _target(centre, 'last("status")'), _variables(centre, registry))
    )
    got = {(r["enterprise"], r["site"]): r["status"] for r in rows}
    assert got == sample.site_status
    positions = {(r["enterprise"], r["site"]): (r["lat"], r["lon"]) for r in rows}
    for enterprise in registry.enterprises.values():
        for site in enterprise.sites:
            assert positions[(enterprise.id, site.id)] == site.location
    assert got[("laojie-restaurants", "r-04")] == -1


def _active(
    db: InfluxDB1, sample: Sample, board: BuiltDashboard, variables: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """The active-alarm table as Grafana shows it: query A outer-joined with the acks of
    query B on ``alarm_id``, rows without a state dropped."""
    texts = [
        q.text
        for q in queries_of(board.model)
        if 'last("state")' in q.text and "offline" not in q.text
    ]
    (alarms_q,) = texts
    acks_q = _target(board, "\"acked_by\" != ''")
    alarms = {r["alarm_id"]: r for r in _rows(_run(db, sample, alarms_q, variables))}
    for ack in _rows(_run(db, sample, acks_q, variables)):
        if ack["alarm_id"] in alarms:
            alarms[ack["alarm_id"]]["acked_by"] = ack["acked_by"]
    return alarms


def test_active_alarms_are_exactly_those_not_cleared_with_who_acknowledged(
    built: list[BuiltDashboard], loaded: InfluxDB1, sample: Sample, registry: Registry
) -> None:
    centre = _board(built, "ew-centre")
    got = _active(loaded, sample, centre, _variables(centre, registry))
    assert set(got) == {a.alarm_id for a in sample.active}
    for expected in sample.active:
        row = got[expected.alarm_id]
        assert (row["enterprise"], row["site"], row["sensor"], row["rule"]) == (
            expected.enterprise,
            expected.site,
            expected.sensor,
            expected.rule,
        )
        assert row["state"] == expected.state
        assert row["severity"] == expected.severity
        assert row.get("acked_by") == expected.acked_by


def test_active_alarms_follow_the_site_variable_and_the_enterprise_dashboard(
    built: list[BuiltDashboard], loaded: InfluxDB1, sample: Sample, registry: Registry
) -> None:
    centre = _board(built, "ew-centre")
    only_r04 = _active(loaded, sample, centre, _variables(centre, registry, ["r-04"]))
    assert set(only_r04) == {"a5"}
    water = _board(built, "ew-site-qingjiang-water")
    assert set(_active(loaded, sample, water, _variables(water, registry))) == {"a6", "a7"}


def test_notifications_give_last_outcome_and_attempts_per_person_and_channel(
    built: list[BuiltDashboard], loaded: InfluxDB1, sample: Sample, registry: Registry
) -> None:
    centre = _board(built, "ew-centre")
    rows = _rows(
        _run(loaded, sample, _target(centre, 'FROM "notification"'), _variables(centre, registry))
    )
    got = {(r["alarm_id"], r["person"], r["channel"]): (r["outcome"], r["attempts"]) for r in rows}
    assert got == sample.notifications


def test_alarms_per_level_count_the_raises(
    built: list[BuiltDashboard], loaded: InfluxDB1, sample: Sample, registry: Registry
) -> None:
    centre = _board(built, "ew-centre")
    series = _run(
        loaded, sample, _target(centre, 'count("severity")'), _variables(centre, registry)
    )
    got = {s["tags"]["level"]: sum(v[1] for v in s["values"]) for s in series}
    assert {k: v for k, v in got.items() if v} == dict(sample.raises_per_level)


def test_rolling_rainfall_equals_the_sums_of_the_same_readings(
    built: list[BuiltDashboard], loaded: InfluxDB1, sample: Sample, registry: Registry
) -> None:
    water = _board(built, "ew-water-qingjiang-water")
    rain_queries = [q.text for q in queries_of(water.model) if "moving_average" in q.text]
    assert len(rain_queries) == 5  # 1, 3, 6, 12 and 24 h; the four gauges share their lines
    variables = _variables(water, registry)
    for text in rain_queries:
        hours = int(text.split('AS "rain_')[1].split("h")[0])
        series = _run(loaded, sample, text, variables)
        assert {s["tags"]["sensor"] for s in series} == {"RG-P1", "RG-P2", "RG-P3", "RG-P4"}
        for s in series:
            uid = f"qingjiang-water/{s['tags']['site']}/{s['tags']['sensor']}"
            buckets: dict[int, float] = defaultdict(float)
            for ts, value in sample.readings[uid]:
                buckets[ts // BUCKET_MS * BUCKET_MS] += value
            on_screen = [(t, v) for t, v in s["values"] if t >= sample.start_ms]
            assert on_screen[0][0] == sample.start_ms
            assert on_screen[-1][0] == sample.end_ms
            for t, v in on_screen:
                window = range(t - (hours * 12 - 1) * BUCKET_MS, t + 1, BUCKET_MS)
                expected = sum(buckets.get(b, 0.0) for b in window)
                assert v == pytest.approx(expected, abs=1e-9), (uid, hours, t)


def test_rise_rate_is_the_change_per_hour(
    built: list[BuiltDashboard], loaded: InfluxDB1, sample: Sample, registry: Registry
) -> None:
    water = _board(built, "ew-water-qingjiang-water")
    text = next(
        q.text for q in queries_of(water.model) if "derivative" in q.text and "WL-H1" in q.text
    )
    (series,) = _run(loaded, sample, text, _variables(water, registry))
    readings = dict(sample.readings["qingjiang-water/h1/WL-H1"])
    for t, rate in series["values"]:
        expected = (readings[t] - readings[t - BUCKET_MS]) * HOUR_MS / BUCKET_MS
        assert rate == pytest.approx(expected, abs=1e-9)
    assert len(series["values"]) == 6 * 12


def test_gas_panel_shows_the_highest_reading_of_each_interval_and_no_drill(
    built: list[BuiltDashboard], loaded: InfluxDB1, sample: Sample, registry: Registry
) -> None:
    gas = _board(built, "ew-gas-huaxin-chem")
    text = next(
        q.text for q in queries_of(gas.model) if 'max("value")' in q.text and "'GD-01'" in q.text
    )
    (series,) = _run(loaded, sample, text, _variables(gas, registry))
    per_bucket: dict[int, float] = defaultdict(lambda: float("-inf"))
    for ts, value in sample.readings["huaxin-chem/tank-farm-1/GD-01"]:
        if sample.start_ms <= ts <= sample.end_ms:
            per_bucket[ts // BUCKET_MS * BUCKET_MS] = max(
                per_bucket[ts // BUCKET_MS * BUCKET_MS], value
            )
    assert dict(series["values"]) == dict(per_bucket)
    assert 99.0 not in dict(series["values"]).values()


def test_offline_detectors_and_last_reports(
    built: list[BuiltDashboard], loaded: InfluxDB1, sample: Sample, registry: Registry
) -> None:
    gas = _board(built, "ew-gas-laojie-restaurants")
    variables = _variables(gas, registry)
    offline = _rows(_run(loaded, sample, _target(gas, "'offline'"), variables))
    assert [(r["site"], r["sensor"], r["state"]) for r in offline] == [
        ("r-04", "G1", "active-acked")
    ]
    reports = {
        (r["site"], r["sensor"]): r["time"]
        for r in _rows(_run(loaded, sample, _target(gas, 'last("value")'), variables))
    }
    assert len(reports) == 7
    assert reports[("r-04", "G1")] < sample.end_ms - 2 * HOUR_MS
    assert all(t >= sample.end_ms - 5 * 60_000 for k, t in reports.items() if k != ("r-04", "G1"))


def test_alarm_annotations_are_the_transitions_of_the_range(
    built: list[BuiltDashboard], loaded: InfluxDB1, sample: Sample, registry: Registry
) -> None:
    site = _board(built, "ew-site-huaxin-chem")
    (annotation,) = site.model["annotations"]["list"]
    target = annotation["target"]
    assert (target["textColumn"], target["tagsColumn"]) == ("message", "sensor,level,state")
    rows = _rows(_run(loaded, sample, target["query"], _variables(site, registry)))
    # a0 ×3, a1 ×3, a2 ×2, a3 — not the drill.
    assert len(rows) == 9
    assert {r["sensor"] for r in rows} == {"GD-01", "GD-11", "GD-12"}
