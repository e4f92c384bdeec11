"""Rain and water (雨水情), one dashboard per enterprise with rain or water-level gauges.

Rolling rainfall over 1, 3, 6 and 24 hours (and every other window the gauges' rules judge,
such as the CMA blue signal's 12 h) with the set-points of that window as lines; each water
gauge's level with its 设防/警戒/保证 lines and its rise rate with the rate rule's lines.

Why rolling sums and not ``$__interval`` buckets: a rainstorm signal is "50 mm in the last
3 hours" at every moment, which a sum per display bucket cannot show (a 3 h storm split over
two 2 h buckets never reaches the line). The query sums 5-minute buckets, the rules' own
bucket, and slides a window of ``hours × 12`` buckets over them (see
:func:`dashboards.queries.rolling_rain`), so each point is the very sum a rule compared.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import dashboard

from dashboards import queries
from dashboards.annotations import alarm_annotation
from dashboards.naming import dashboard_uid
from dashboards.panels import enterprise_constant, series_panel, site_variable, target
from dashboards.setpoints import Line, rain_lines, rain_windows_h, rate_lines, value_lines
from earlywarn.model import Enterprise, Sensor
from rules.accumulation import AccumulationRule, Mode

__all__ = ["RAIN_KIND", "WATER_KIND", "has_water", "rain_panels", "water_dashboard"]

log = logging.getLogger(__name__)

RAIN_KIND = "rainfall"
WATER_KIND = "water_level"


def _sensors(enterprise: Enterprise, kind: str) -> list[tuple[str, Sensor]]:
    return [(site.name, s) for site in enterprise.sites for s in site.sensors if s.kind == kind]


def _cumulative(gauge: Sensor) -> bool:
    return any(isinstance(r, AccumulationRule) and r.mode is Mode.CUMULATIVE for r in gauge.rules)


def has_water(enterprise: Enterprise) -> bool:
    """Whether the enterprise has a rain or water-level gauge (and so this dashboard)."""
    return bool(_sensors(enterprise, RAIN_KIND) or _sensors(enterprise, WATER_KIND))


def _describe(lines: list[Line]) -> str:
    return "、".join(f"{ln.level.zh} {ln.value:g}{ln.label and ' ' + ln.label}" for ln in lines)


def rain_panels(ds: dashboard.DataSourceRef, enterprise: Enterprise) -> list[timeseries.Panel]:
    """One panel per window and set of lines, holding every gauge that shares those lines."""
    gauges = []
    for _name, gauge in _sensors(enterprise, RAIN_KIND):
        if _cumulative(gauge):
            # Summing a counter's values would be wrong, and its increments need a subquery
            # the rolling sum cannot yet take: leave it out rather than show false sums.
            log.warning("rolling rainfall of cumulative gauge %s is not drawn", gauge.uid)
            continue
        gauges.append(gauge)
    windows = sorted({h for g in gauges for h in rain_windows_h(g)})
    panels: list[timeseries.Panel] = []
    for hours in windows:
        groups: dict[tuple[Line, ...], list[Sensor]] = defaultdict(list)
        for gauge in gauges:
            groups[tuple(rain_lines(gauge, hours))].append(gauge)
        for lines, members in sorted(groups.items(), key=lambda kv: kv[1][0].uid):
            names = "、".join(m.id for m in members)
            drawn = _describe(list(lines))
            panels.append(
                series_panel(
                    ds,
                    f"{hours} 小时滑动雨量 {hours} h rolling rainfall",
                    f"Rain in the last {hours} h at every moment, per gauge ({names}), summed "
                    "over 5-minute buckets as the rainstorm and flash-flood rules sum it. "
                    f"Lines: {drawn or 'none for this window'}. A curve reaching a line "
                    "raises that warning.",
                    [
                        target(
                            ds,
                            queries.rolling_rain(
                                enterprise.id, [(m.site, m.id) for m in members], hours
                            ),
                            alias="$tag_sensor",
                        )
                    ],
                    unit="mm",
                    lines=lines,
                    width=12,
                )
            )
    return panels


def _level_panel(ds: dashboard.DataSourceRef, site_name: str, gauge: Sensor) -> timeseries.Panel:
    lines = value_lines(gauge)
    return series_panel(
        ds,
        f"{site_name} 水位 {gauge.id}",
        f"{gauge.name}: water level, mean of each interval. Lines: "
        f"{_describe(lines) or 'none'} (设防 fortification, 警戒 warning, 保证 guaranteed).",
        [
            target(
                ds,
                queries.reading(gauge.enterprise, gauge.site, gauge.id, "mean"),
                alias=gauge.id,
            )
        ],
        unit=gauge.unit,
        lines=lines,
    )


def _rise_panel(ds: dashboard.DataSourceRef, site_name: str, gauge: Sensor) -> timeseries.Panel:
    lines = rate_lines(gauge)
    return series_panel(
        ds,
        f"{site_name} 涨率 {gauge.id}",
        f"{gauge.name}: how fast the water rises, {gauge.unit} per hour, from the change "
        "between interval means (at least 5 minutes apart). The rule judges a 1 h "
        f"least-squares slope, which is smoother. Lines: {_describe(lines) or 'none'}.",
        [target(ds, queries.rise_rate(gauge.enterprise, gauge.site, gauge.id), alias=gauge.id)],
        unit=f"{gauge.unit}/h",
        lines=lines,
    ).interval("5m")


def water_dashboard(
    ds: dashboard.DataSourceRef, enterprise: Enterprise
) -> dashboard_builders.Dashboard:
    """The enterprise's rain-and-water dashboard."""
    board = (
        dashboard_builders.Dashboard(f"{enterprise.name} 雨水情")
        .uid(dashboard_uid("water", enterprise.id))
        .description(f"Rolling rainfall and water levels of {enterprise.name}.")
        .tags(["earlywarn", "water", enterprise.id])
        .timezone("browser")
        .time("now-24h", "now")
        .refresh("1m")
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .with_variable(enterprise_constant(enterprise.id))
        .with_variable(site_variable(ds))
        .annotation(alarm_annotation(ds, enterprise.id))
    )
    if _sensors(enterprise, RAIN_KIND):
        board.with_row(dashboard_builders.Row("雨量 Rainfall"))
        for panel in rain_panels(ds, enterprise):
            board.with_panel(panel)
    water = _sensors(enterprise, WATER_KIND)
    if water:
        board.with_row(dashboard_builders.Row("水位 Water level"))
        for site_name, gauge in water:
            board.with_panel(_level_panel(ds, site_name, gauge))
            board.with_panel(_rise_panel(ds, site_name, gauge))
    return board
