"""Building blocks shared by the dashboards: the data source, level colours, threshold lines,
a sensor's time-series panel, tables with Chinese headers, and the template variables.

Colours follow Chinese warnings: blue, yellow, orange, red for levels IV to I, green for
normal, grey for a site whose sensors are all offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models import common, dashboard

from dashboards import queries
from dashboards.influxql import DATASOURCE_TYPE, InfluxQL
from dashboards.setpoints import Line
from earlywarn.model import Level

__all__ = [
    "GREEN",
    "GREY",
    "LEVEL_COLOURS",
    "datasource_ref",
    "enterprise_constant",
    "enterprise_variable",
    "line_thresholds",
    "organize",
    "series_panel",
    "severity_mappings",
    "site_variable",
    "table_panel",
    "target",
]

LEVEL_COLOURS = {
    Level.BLUE: "blue",
    Level.YELLOW: "yellow",
    Level.ORANGE: "orange",
    Level.RED: "red",
}
GREEN = "green"
GREY = "#8e8e8e"


def datasource_ref(uid: str) -> dashboard.DataSourceRef:
    """The provisioned InfluxDB data source, by uid (the same in every Grafana we provision)."""
    return dashboard.DataSourceRef(type_val=DATASOURCE_TYPE, uid=uid)


def target(
    ds: dashboard.DataSourceRef,
    query: str,
    *,
    ref_id: str = "A",
    table_format: bool = False,
    alias: str | None = None,
) -> InfluxQL:
    """A raw InfluxQL target on the data source."""
    built = InfluxQL(query).ref_id(ref_id).datasource(ds)
    built.result_format("table" if table_format else "time_series")
    if alias is not None:
        built.alias(alias)
    return built


def line_thresholds(
    lines: Iterable[Line], base: str = "transparent"
) -> dashboard_builders.ThresholdsConfig:
    """Threshold steps at the lines, each in its level's colour; drawn as dashed lines."""
    steps = [dashboard.Threshold(value=None, color=base)]
    steps += [dashboard.Threshold(value=ln.value, color=LEVEL_COLOURS[ln.level]) for ln in lines]
    return (
        dashboard_builders.ThresholdsConfig().mode(dashboard.ThresholdsMode.ABSOLUTE).steps(steps)
    )


def series_panel(
    ds: dashboard.DataSourceRef,
    title: str,
    description: str,
    targets: list[InfluxQL],
    *,
    unit: str,
    lines: Iterable[Line] = (),
    width: int = 12,
    height: int = 8,
) -> timeseries.Panel:
    """A time-series panel whose set-points are dashed threshold lines in level colours."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(ds)
        .targets(list(targets))
        .unit(f"suffix: {unit}" if unit else "none")
        .span(width)
        .height(height)
        .line_width(2)
        .fill_opacity(5)
        .span_nulls(False)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    lines = list(lines)
    if lines:
        panel.thresholds(line_thresholds(lines)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.DASHED
            )
        )
    return panel


def severity_mappings() -> list[dashboard.ValueMapping]:
    """Severity 1–4 shown as 蓝色 … 红色 on the level's colour; 0 as 正常."""
    options = {
        str(int(level)): dashboard.ValueMappingResult(
            text=level.zh, color=LEVEL_COLOURS[level], index=int(level)
        )
        for level in Level
    }
    options["0"] = dashboard.ValueMappingResult(text="正常", color=GREEN, index=0)
    return [dashboard.ValueMap(options=options)]


def state_mappings() -> list[dashboard.ValueMapping]:
    """ISA-18.2 states in the duty room's words."""
    words = {
        "active-unacked": ("报警中·未确认", "red"),
        "active-acked": ("报警中·已确认", "orange"),
        "cleared-unacked": ("已恢复·未确认", "yellow"),
        "cleared": ("已恢复", GREEN),
    }
    return [
        dashboard.ValueMap(
            options={
                state: dashboard.ValueMappingResult(text=text, color=colour, index=i)
                for i, (state, (text, colour)) in enumerate(words.items())
            }
        )
    ]


def colour_cells(mode: str = "color-background") -> list[dashboard.DynamicConfigValue]:
    """Field override: colour the cell by its value mapping."""
    return [
        dashboard.DynamicConfigValue(id_val="custom.cellOptions", value={"type": mode}),
        dashboard.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "text"}),
    ]


def organize(
    rename: Mapping[str, str], exclude: Iterable[str] = ()
) -> dashboard.DataTransformerConfig:
    """Grafana's ``organize`` transformation: Chinese column headers, hidden helper columns."""
    return dashboard.DataTransformerConfig(
        id_val="organize",
        options={
            "renameByName": dict(rename),
            "excludeByName": dict.fromkeys(exclude, True),
            "indexByName": {name: i for i, name in enumerate(rename)},
        },
    )


def table_panel(
    ds: dashboard.DataSourceRef,
    title: str,
    description: str,
    targets: list[InfluxQL],
    *,
    width: int = 12,
    height: int = 10,
) -> table.Panel:
    """A table of InfluxQL results (targets in table format)."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(ds)
        .targets(list(targets))
        .span(width)
        .height(height)
        .show_header(True)
        .filterable(True)
    )


def enterprise_variable(ds: dashboard.DataSourceRef) -> dashboard_builders.QueryVariable:
    """``$enterprise``: the enterprises with site snapshots, several or all at once."""
    return (
        dashboard_builders.QueryVariable("enterprise")
        .label("企业 enterprise")
        .datasource(ds)
        .query(queries.enterprise_values())
        .multi(True)
        .include_all(True)
        .current(dashboard.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .refresh(dashboard.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
    )


def enterprise_constant(enterprise: str) -> dashboard_builders.ConstantVariable:
    """``$enterprise`` fixed to one enterprise (its own dashboards), hidden."""
    return dashboard_builders.ConstantVariable("enterprise").value(enterprise)


def site_variable(ds: dashboard.DataSourceRef) -> dashboard_builders.QueryVariable:
    """``$site``: the sites of the selected enterprises, several or all at once."""
    return (
        dashboard_builders.QueryVariable("site")
        .label("站点 site")
        .datasource(ds)
        .query(queries.site_values())
        .multi(True)
        .include_all(True)
        .current(dashboard.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .refresh(dashboard.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
    )
