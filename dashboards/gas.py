"""Gas detectors (燃气/可燃气体), one dashboard per enterprise with gas detectors.

Each detector's reading (the highest of each interval, so a short leak is never averaged
away) with its own set-points (GB/T 50493: 25 %LEL orange, 50 %LEL red unless the registry
sets others); which detectors are offline now; when each last reported.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.models import dashboard

from dashboards import queries
from dashboards.annotations import alarm_annotation
from dashboards.centre import ALARM_COLUMNS
from dashboards.naming import dashboard_uid
from dashboards.panels import (
    enterprise_constant,
    organize,
    severity_mappings,
    site_variable,
    table_panel,
    target,
)
from dashboards.site import sensor_panel
from earlywarn.model import Enterprise

__all__ = ["GAS_KINDS", "gas_dashboard", "has_gas"]

GAS_KINDS = ("combustible_gas", "toxic_gas", "oxygen")


def has_gas(enterprise: Enterprise) -> bool:
    """Whether the enterprise has a gas detector (and so this dashboard)."""
    return any(s.kind in GAS_KINDS for site in enterprise.sites for s in site.sensors)


def _offline(ds: dashboard.DataSourceRef, enterprise: Enterprise) -> table.Panel:
    panel = table_panel(
        ds,
        "离线探测器 Offline detectors",
        "Detectors whose offline alarm has not cleared: no data has arrived for several "
        "reporting intervals. An offline detector cannot warn of a leak: send someone.",
        [target(ds, queries.offline_alarms(enterprise.id, GAS_KINDS), table_format=True)],
        width=12,
        height=8,
    )
    panel.override_by_name(
        "severity", [dashboard.DynamicConfigValue("mappings", severity_mappings())]
    )
    panel.with_transformation(organize(ALARM_COLUMNS, exclude=["enterprise", "rule_kind", "value"]))
    return panel


def _last_reports(ds: dashboard.DataSourceRef, enterprise: Enterprise) -> table.Panel:
    panel = table_panel(
        ds,
        "最近上报 Last reports",
        "When each detector last reported in the time range and its value. A time far behind "
        "the others is a detector falling silent; one missing entirely reported nothing.",
        [target(ds, queries.last_reports(enterprise.id, GAS_KINDS), table_format=True)],
        width=12,
        height=8,
    )
    panel.with_transformation(
        organize(
            {"Time": "最近上报 last report", "site": "站点", "sensor": "探测器", "value": "数值"}
        )
    )
    return panel


def gas_dashboard(
    ds: dashboard.DataSourceRef, enterprise: Enterprise
) -> dashboard_builders.Dashboard:
    """The enterprise's gas dashboard."""
    board = (
        dashboard_builders.Dashboard(f"{enterprise.name} 燃气监测")
        .uid(dashboard_uid("gas", enterprise.id))
        .description(f"Gas detectors of {enterprise.name}: readings, set-points, offline.")
        .tags(["earlywarn", "gas", enterprise.id])
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("30s")
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .with_variable(enterprise_constant(enterprise.id))
        .with_variable(site_variable(ds))
        .annotation(alarm_annotation(ds, enterprise.id))
        .with_panel(_offline(ds, enterprise))
        .with_panel(_last_reports(ds, enterprise))
    )
    for site in enterprise.sites:
        detectors = [s for s in site.sensors if s.kind in GAS_KINDS]
        if not detectors:
            continue
        board.with_row(dashboard_builders.Row(f"{site.name} {site.id}"))
        for sensor in detectors:
            board.with_panel(sensor_panel(ds, sensor, site.name, width=8))
    return board
