"""Expand Grafana's macros in InfluxQL the way Grafana's InfluxDB data source does, and walk
a dashboard's JSON for every query it runs."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

GRAFANA_MACROS = {"timeFilter", "__interval", "__interval_ms", "__from", "__to"}
ALIAS_MACROS = {"tag_level", "tag_sensor", "tag_site", "__all"}


@dataclass(frozen=True, slots=True)
class Query:
    """One query of a dashboard and where it is."""

    dashboard: str
    where: str
    text: str


def regex_value(values: Sequence[str], *, multi: bool = True) -> str:
    """A variable's value in an ``=~ /^…$/`` context: ``(a|b)`` for a multi-value or All
    selection, the escaped value for a single one; a constant goes in as it is."""
    if not multi:
        return values[0]
    escaped = [re.escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def expand(
    text: str,
    *,
    start_ms: int,
    end_ms: int,
    interval: str = "5m",
    interval_ms: int = 300_000,
    variables: dict[str, str],
) -> str:
    """The statement Grafana would send for this range, interval and variable values."""
    out = text.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
    out = out.replace("${__from}", str(start_ms)).replace("${__to}", str(end_ms))
    out = out.replace("$__interval_ms", str(interval_ms)).replace("$__interval", interval)
    for name, value in variables.items():
        out = out.replace(f"${{{name}}}", value).replace(f"${name}", value)
    leftover = re.findall(r"\$\{?(\w+)", out)
    assert not leftover, f"unexpanded {leftover} in {out}"
    return out


def queries_of(model: dict[str, Any]) -> Iterator[Query]:
    """Every panel target, annotation and query variable of a dashboard."""
    uid = model["uid"]
    for panel in model.get("panels", []):
        for target in panel.get("targets", []):
            yield Query(uid, f"panel {panel['title']} {target['refId']}", target["query"])
    for annotation in model.get("annotations", {}).get("list", []):
        yield Query(uid, f"annotation {annotation['name']}", annotation["target"]["query"])
    for variable in model.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            yield Query(uid, f"variable {variable['name']}", variable["query"])
