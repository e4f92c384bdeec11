"""One dashboard per enterprise (企业监测): every sensor of every site with its set-points.

A row per site, a time-series panel per sensor with its threshold rules' set-points as dashed
lines in level colours, alarm transitions as annotations, and the enterprise's active alarms
on top. The ``site`` variable narrows the alarm table and the annotations; the sensor panels
are fixed by the registry, each with its own lines, so they stay in their site's row.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import dashboard

from dashboards import queries
from dashboards.annotations import alarm_annotation
from dashboards.centre import active_alarm_table
from dashboards.naming import dashboard_uid
from dashboards.panels import enterprise_constant, series_panel, site_variable, target
from dashboards.setpoints import value_lines
from earlywarn.model import Enterprise, Sensor
from rules.setpoints import Direction
from rules.threshold import ThresholdRule

__all__ = ["aggregate_for", "enterprise_dashboard", "sensor_panel"]


def aggregate_for(sensor: Sensor) -> str:
    """How a panel reduces an interval's readings: ``sum`` for rain (mm per interval), ``max``
    when every threshold alarms high, ``min`` when every one alarms low, else ``mean``."""
    if sensor.kind == "rainfall":
        return "sum"
    directions = {r.direction for r in sensor.rules if isinstance(r, ThresholdRule)}
    if directions == {Direction.HIGH}:
        return "max"
    if directions == {Direction.LOW}:
        return "min"
    return "mean"


def sensor_panel(
    ds: dashboard.DataSourceRef, sensor: Sensor, site_name: str, *, width: int = 12
) -> timeseries.Panel:
    """One sensor's values with its set-points."""
    aggregate = aggregate_for(sensor)
    lines = value_lines(sensor)
    drawn = "、".join(f"{ln.level.zh} {ln.value:g}{ln.label and ' ' + ln.label}" for ln in lines)
    description = (
        f"{site_name} {sensor.name} ({sensor.id}, {sensor.kind}, {sensor.unit}); "
        f"{aggregate} of each interval. Dashed lines are its alarm set-points"
        f"{': ' + drawn if drawn else ' (none: it alarms only on data quality)'}. "
        "A curve past a line of its colour is an alarm at that level."
    )
    return series_panel(
        ds,
        f"{sensor.name} {sensor.id}",
        description,
        [
            target(
                ds,
                queries.reading(sensor.enterprise, sensor.site, sensor.id, aggregate),
                alias=sensor.id,
            )
        ],
        unit=sensor.unit,
        lines=lines,
        width=width,
    )


def enterprise_dashboard(
    ds: dashboard.DataSourceRef, enterprise: Enterprise
) -> dashboard_builders.Dashboard:
    """The enterprise's own dashboard."""
    board = (
        dashboard_builders.Dashboard(f"{enterprise.name} 企业监测")
        .uid(dashboard_uid("site", enterprise.id))
        .description(f"Every sensor of {enterprise.name} ({enterprise.id}) with its set-points.")
        .tags(["earlywarn", "enterprise", enterprise.id])
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("1m")
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .with_variable(enterprise_constant(enterprise.id))
        .with_variable(site_variable(ds))
        .annotation(alarm_annotation(ds, enterprise.id))
        .with_panel(active_alarm_table(ds, enterprise.id).span(24).height(8))
    )
    for site in enterprise.sites:
        board.with_row(dashboard_builders.Row(f"{site.name} {site.id}"))
        for sensor in site.sensors:
            board.with_panel(sensor_panel(ds, sensor, site.name))
    return board
