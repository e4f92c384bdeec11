"""Alarm transitions drawn on every time-series panel of an enterprise's dashboards."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import dashboard

from dashboards import queries
from dashboards.influxql import AnnotationTargetBuilder, InfluxAnnotationTarget

__all__ = ["alarm_annotation"]


def alarm_annotation(
    ds: dashboard.DataSourceRef, enterprise: str
) -> dashboard_builders.AnnotationQuery:
    """Every alarm raise, level change, acknowledgement and clear of the selected sites: the
    message as the annotation's text, sensor, level and state as its tags."""
    return (
        dashboard_builders.AnnotationQuery()
        .name("报警 Alarms")
        .datasource(ds)
        .enable(True)
        .icon_color("red")
        .target(
            AnnotationTargetBuilder(
                InfluxAnnotationTarget(
                    query=queries.alarm_annotations(enterprise),
                    text_column="message",
                    tags_column="sensor,level,state",
                )
            )
        )
    )
