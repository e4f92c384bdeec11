"""The monitoring centre (监测中心): the county duty room's one screen.

A map of every site coloured by its worst active alarm (grey when all its sensors are
offline), the alarms not yet cleared with their acknowledgement, who was called about them,
and how many alarms each level raised over time.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import geomap, table, timeseries
from grafana_foundation_sdk.models import common, dashboard
from grafana_foundation_sdk.models import geomap as geomap_models

from dashboards import queries
from dashboards.naming import dashboard_uid
from dashboards.panels import (
    GREEN,
    GREY,
    LEVEL_COLOURS,
    colour_cells,
    enterprise_variable,
    organize,
    severity_mappings,
    site_variable,
    state_mappings,
    table_panel,
    target,
)
from earlywarn.model import Level

__all__ = ["ALARM_COLUMNS", "active_alarm_table", "centre", "status_thresholds"]

ALARM_COLUMNS = {
    "Time": "最近变化 since",
    "enterprise": "企业",
    "site": "站点",
    "sensor": "测点",
    "kind": "类型",
    "rule": "规则",
    "severity": "级别",
    "state": "状态",
    "acked_by": "确认人",
    "value": "数值",
    "message": "报警内容",
    "rule_kind": "规则类别",
    "alarm_id": "报警编号",
}

STATUS_TEXT = {-1: "全部离线", 0: "正常"} | {int(lv): f"{lv.zh}报警" for lv in Level}


def status_thresholds() -> dashboard_builders.ThresholdsConfig:
    """Site status colours: grey −1 (all offline), green 0, blue 1 … red 4."""
    steps = [dashboard.Threshold(value=None, color=GREY), dashboard.Threshold(0, GREEN)]
    steps += [dashboard.Threshold(float(int(lv)), LEVEL_COLOURS[lv]) for lv in Level]
    return (
        dashboard_builders.ThresholdsConfig().mode(dashboard.ThresholdsMode.ABSOLUTE).steps(steps)
    )


def _site_map(ds: dashboard.DataSourceRef) -> geomap.Panel:
    markers = (
        common_builders.MapLayerOptions()
        .type("markers")
        .name("站点 sites")
        .location(
            common_builders.FrameGeometrySource()
            .mode(common.FrameGeometrySourceMode.COORDS)
            .latitude("lat")
            .longitude("lon")
        )
        .tooltip(True)
        .config(
            {
                "showLegend": True,
                "style": {
                    "color": {"field": "status", "fixed": GREY},
                    "size": {"fixed": 12},
                    "opacity": 0.9,
                    "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
                    "text": {"mode": "field", "field": "name", "fixed": ""},
                    "textConfig": {"fontSize": 12, "offsetY": -16, "textAlign": "center"},
                },
            }
        )
    )
    status_map = [
        dashboard.ValueMap(
            options={
                str(code): dashboard.ValueMappingResult(text=text, index=i)
                for i, (code, text) in enumerate(STATUS_TEXT.items())
            }
        )
    ]
    return (
        geomap.Panel()
        .title("站点状态地图 Site map")
        .description(
            "Every site at its position, coloured by its worst active alarm: green normal, "
            "blue/yellow/orange/red the highest active level, grey when every sensor of the "
            "site is offline. Hover a marker for the active alarms and offline sensors."
        )
        .datasource(ds)
        .with_target(target(ds, queries.site_status(), table_format=True))
        .view(geomap.MapViewConfig().id("fit").all_layers(True).padding(10).max_zoom(15))
        .basemap(common_builders.MapLayerOptions().type("osm-standard").name("地图"))
        .layers([markers])
        .tooltip(geomap.TooltipOptions().mode(geomap_models.TooltipMode.DETAILS))
        .thresholds(status_thresholds())
        .color_scheme(dashboard_builders.FieldColor().mode(dashboard.FieldColorModeId.THRESHOLDS))
        .override_by_name(
            "status", [dashboard.DynamicConfigValue(id_val="mappings", value=status_map)]
        )
        .span(12)
        .height(14)
    )


def active_alarm_table(ds: dashboard.DataSourceRef, enterprise: str | None = None) -> table.Panel:
    """Alarms not yet cleared (of one enterprise, or of the selected ones), joined with who
    acknowledged them."""
    panel = table_panel(
        ds,
        "当前报警 Active alarms",
        "Alarms not yet cleared, newest change first: 报警中·未确认 means nobody has answered "
        "yet — call the enterprise; 确认人 is who acknowledged this occurrence. Drills are "
        "left out. An alarm stays here until it clears, whatever the time range.",
        [
            target(ds, queries.active_alarms(enterprise), ref_id="A", table_format=True),
            target(ds, queries.acks(enterprise), ref_id="B", table_format=True),
        ],
        width=12,
        height=14,
    )
    panel.with_transformation(
        dashboard.DataTransformerConfig(
            id_val="joinByField", options={"byField": "alarm_id", "mode": "outer"}
        )
    )
    # The outer join also yields acknowledgements of alarms that have cleared since: rows
    # without a state come only from the acknowledgement query and are dropped.
    panel.with_transformation(
        dashboard.DataTransformerConfig(
            id_val="filterByValue",
            options={
                "type": "exclude",
                "match": "any",
                "filters": [{"fieldName": "state", "config": {"id": "isNull", "options": {}}}],
            },
        )
    )
    panel.with_transformation(organize(ALARM_COLUMNS, exclude=["Time 2", "Time B"]))
    panel.sort_by(
        [common_builders.TableSortByFieldState().display_name(ALARM_COLUMNS["Time"]).desc(True)]
    )
    panel.override_by_name(
        "severity", [dashboard.DynamicConfigValue("mappings", severity_mappings()), *colour_cells()]
    )
    panel.override_by_name(
        "state",
        [dashboard.DynamicConfigValue("mappings", state_mappings()), *colour_cells("color-text")],
    )
    return panel


def _notifications(ds: dashboard.DataSourceRef) -> table.Panel:
    panel = table_panel(
        ds,
        "通知记录 Who was notified",
        "Every person and channel called about each alarm in the time range: the last outcome "
        "(sent, retry, permanent failure) and how many attempts. Match 报警编号 with the "
        "active-alarm table. A permanent failure means that person was not reached: call them.",
        [target(ds, queries.notifications(), table_format=True)],
        width=12,
        height=14,
    )
    outcome = [
        dashboard.ValueMap(
            options={
                "sent": dashboard.ValueMappingResult(text="已送达", color=GREEN, index=0),
                "retry": dashboard.ValueMappingResult(text="重试中", color="yellow", index=1),
                "permanent": dashboard.ValueMappingResult(text="失败", color="red", index=2),
            }
        )
    ]
    panel.override_by_name(
        "outcome", [dashboard.DynamicConfigValue("mappings", outcome), *colour_cells("color-text")]
    )
    panel.with_transformation(
        organize(
            {
                "alarm_id": "报警编号",
                "enterprise": "企业",
                "site": "站点",
                "person": "人员",
                "channel": "渠道",
                "outcome": "最后结果",
                "attempts": "尝试次数",
                "last_attempt": "最大尝试序号",
            },
            exclude=["Time"],
        )
    )
    return panel


def _alarms_per_level(ds: dashboard.DataSourceRef) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title("各级报警数量 Alarms per level")
        .description(
            "How many alarms were raised or changed level (awaiting acknowledgement) in each "
            "interval, stacked by level. A growing red or orange band means the county is "
            "getting busier; compare with the map."
        )
        .datasource(ds)
        .with_target(target(ds, queries.alarms_per_level(), alias="$tag_level"))
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(80)
        .stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL).group("A"))
        .unit("short")
        .decimals(0)
        .span(12)
        .height(14)
    )
    for level in Level:
        panel.override_by_name(
            level.label,
            [
                dashboard.DynamicConfigValue(
                    "color", {"mode": "fixed", "fixedColor": LEVEL_COLOURS[level]}
                ),
                dashboard.DynamicConfigValue("displayName", f"{level.zh} {level.label}"),
            ],
        )
    return panel


def centre(ds: dashboard.DataSourceRef) -> dashboard_builders.Dashboard:
    """The monitoring-centre dashboard over every enterprise."""
    return (
        dashboard_builders.Dashboard("应急监测中心 Monitoring centre")
        .uid(dashboard_uid("centre"))
        .description("County duty room: every site, every active alarm, who was called.")
        .tags(["earlywarn", "centre"])
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("30s")
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .with_variable(enterprise_variable(ds))
        .with_variable(site_variable(ds))
        .with_panel(_site_map(ds))
        .with_panel(active_alarm_table(ds))
        .with_panel(_notifications(ds))
        .with_panel(_alarms_per_level(ds))
    )
