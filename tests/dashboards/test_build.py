"""The dashboards as models and files: SDK round trip, stable uids, data-source refs, macros,
set-point lines, provisioning files."""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard

from dashboards.build import DEFAULT_DATASOURCE_UID, BuiltDashboard, build_dashboards
from dashboards.influxql import InfluxAnnotationTarget, InfluxQLQuery, register
from dashboards.naming import MAX_UID, dashboard_uid
from earlywarn import dashboards_cli
from earlywarn.registry import Registry
from tests.dashboards.conftest import EXAMPLE_REGISTRY_DIR
from tests.dashboards.macros import ALIAS_MACROS, GRAFANA_MACROS

TEMPLATE_VARIABLES = {"enterprise", "site"}


def _round_trip(model: dict[str, Any]) -> dict[str, Any]:
    register()
    typed = dashboard.Dashboard.from_json(model)
    data: dict[str, Any] = json.loads(json.dumps(typed, cls=JSONEncoder))
    return data


def test_every_dashboard_round_trips_through_the_sdk_models(built: list[BuiltDashboard]) -> None:
    for board in built:
        model = json.loads(json.dumps(board.model))
        again = _round_trip(model)
        # The SDK types an annotation target as Grafana's own filter (limit, matchAny, tags,
        # type) and drops the InfluxDB plug-in's keys; ours read them back on their own.
        for mine, theirs in zip(
            model["annotations"].get("list", []), again["annotations"].get("list", []), strict=True
        ):
            target = mine.pop("target")
            assert theirs.pop("target") == {
                k: target[k] for k in ("limit", "matchAny", "tags", "type")
            }
            assert InfluxAnnotationTarget.from_json(target).to_json() == target
        assert again == model, board.uid


def test_panel_targets_decode_as_typed_influxql(built: list[BuiltDashboard]) -> None:
    register()
    typed = dashboard.Dashboard.from_json(built[0].model)
    targets = [
        t for p in typed.panels or [] if isinstance(p, dashboard.Panel) for t in p.targets or []
    ]
    assert targets
    assert all(isinstance(t, InfluxQLQuery) and t.raw_query for t in targets)


def test_uids_are_stable_short_and_unique(registry: Registry, built: list[BuiltDashboard]) -> None:
    again = build_dashboards(registry)
    assert [b.model for b in again] == [b.model for b in built]
    uids = [b.uid for b in built]
    assert len(set(uids)) == len(uids)
    assert uids == [
        "ew-centre",
        "ew-site-huaxin-chem",
        "ew-gas-huaxin-chem",
        "ew-site-laojie-restaurants",
        "ew-gas-laojie-restaurants",
        "ew-site-qingjiang-water",
        "ew-water-qingjiang-water",
    ]
    long = dashboard_uid("water", "a-very-long-enterprise-identifier-from-the-registry")
    assert len(long) <= MAX_UID
    assert re.fullmatch(r"[A-Za-z0-9_-]+", long)
    assert long != dashboard_uid("water", "a-very-long-enterprise-identifier-from-the-registry2")


def test_every_panel_and_query_names_the_provisioned_datasource(
    built: list[BuiltDashboard],
) -> None:
    ref = {"type": "influxdb", "uid": DEFAULT_DATASOURCE_UID}
    for board in built:
        ids = [p["id"] for p in board.model["panels"]]
        assert len(set(ids)) == len(ids)
        for panel in board.model["panels"]:
            if panel["type"] == "row":
                assert panel.get("panels", []) == []
                continue
            assert panel["datasource"] == ref, (board.uid, panel["title"])
            assert panel["targets"], (board.uid, panel["title"])
            assert all(t["datasource"] == ref for t in panel["targets"])
            assert panel.get("description"), (board.uid, panel["title"])
        for annotation in board.model["annotations"].get("list", []):
            assert annotation["datasource"] == ref
        for variable in board.model["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"] == ref


def test_no_macro_but_grafanas_own_and_the_template_variables(built: list[BuiltDashboard]) -> None:
    allowed = GRAFANA_MACROS | ALIAS_MACROS | TEMPLATE_VARIABLES
    for board in built:
        names = set(re.findall(r"\$\{?(\w+)", json.dumps(board.model)))
        assert names <= allowed, (board.uid, names - allowed)


def test_set_points_are_threshold_lines_in_level_colours(built: list[BuiltDashboard]) -> None:
    site = next(b for b in built if b.uid == "ew-site-huaxin-chem")
    level = next(p for p in site.model["panels"] if p["title"].endswith("T101-LT"))
    defaults = level["fieldConfig"]["defaults"]
    assert defaults["custom"]["thresholdsStyle"] == {"mode": "dashed"}
    assert defaults["thresholds"]["steps"] == [
        {"value": None, "color": "transparent"},
        {"value": 1.0, "color": "red"},
        {"value": 1.5, "color": "orange"},
        {"value": 16.5, "color": "orange"},
        {"value": 17.5, "color": "red"},
    ]
    water = next(b for b in built if b.uid == "ew-water-qingjiang-water")
    by_title = {p["title"]: p for p in water.model["panels"]}
    three_h = by_title["3 小时滑动雨量 3 h rolling rainfall"]["fieldConfig"]["defaults"][
        "thresholds"
    ]
    # CMA orange 50 mm and red 100 mm in 3 h cover the flash-flood 3 h lines below red.
    assert [(s["value"], s["color"]) for s in three_h["steps"][1:]] == [
        (50.0, "orange"),
        (100.0, "red"),
    ]
    twelve_h = by_title["12 小时滑动雨量 12 h rolling rainfall"]["fieldConfig"]["defaults"][
        "thresholds"
    ]
    assert [(s["value"], s["color"]) for s in twelve_h["steps"][1:]] == [(50.0, "blue")]
    level_h1 = by_title["清江镇水文站 水位 WL-H1"]["fieldConfig"]["defaults"]["thresholds"]
    assert [s["value"] for s in level_h1["steps"][1:]] == [102.0, 103.5, 104.5, 105.8]
    rise_h1 = by_title["清江镇水文站 涨率 WL-H1"]
    assert rise_h1["interval"] == "5m"
    assert [s["value"] for s in rise_h1["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]] == [
        0.3,
        0.5,
    ]
    gas = next(b for b in built if b.uid == "ew-gas-laojie-restaurants")
    detector = next(p for p in gas.model["panels"] if "G1" in p["title"])
    assert [
        (s["value"], s["color"])
        for s in detector["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]
    ] == [
        (25.0, "orange"),
        (50.0, "red"),
    ]


def test_site_map_colours_status_in_warning_colours(built: list[BuiltDashboard]) -> None:
    geomap = next(p for p in built[0].model["panels"] if p["type"] == "geomap")
    steps = geomap["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["value"], s["color"]) for s in steps] == [
        (None, "#8e8e8e"),
        (0, "green"),
        (1.0, "blue"),
        (2.0, "yellow"),
        (3.0, "orange"),
        (4.0, "red"),
    ]
    (layer,) = geomap["options"]["layers"]
    assert layer["location"] == {"mode": "coords", "latitude": "lat", "longitude": "lon"}
    assert layer["config"]["style"]["color"]["field"] == "status"


def _cli(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    dashboards_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out = io.StringIO()
    code: int = args.func(args, out, io.StringIO())
    return code, out.getvalue()


def test_build_writes_dashboards_per_folder_and_provisioning(out_dir: Path) -> None:
    code, _out = _cli(
        "dashboards",
        "build",
        "--registry",
        str(EXAMPLE_REGISTRY_DIR),
        "--out",
        str(out_dir),
        "--datasource-url",
        "http://influx.example:8086",
        "--database",
        "ew",
        "--token-env",
        "INFLUX_TOKEN",
    )
    assert code == 0
    files = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.json"))
    assert "dashboards/应急监测中心/ew-centre.json" in files
    assert "dashboards/清江镇老街餐饮一条街/ew-gas-laojie-restaurants.json" in files
    assert len([f for f in files if f != "dashboards/folders.index"]) == 7
    first = (out_dir / "dashboards/应急监测中心/ew-centre.json").read_bytes()

    datasources = yaml.safe_load((out_dir / "provisioning/datasources/earlywarn.yaml").read_text())
    (source,) = datasources["datasources"]
    assert source["uid"] == DEFAULT_DATASOURCE_UID
    assert source["type"] == "influxdb"
    assert source["url"] == "http://influx.example:8086"
    assert source["jsonData"]["version"] == "InfluxQL"
    assert source["jsonData"]["dbName"] == "ew"
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    assert source["secureJsonData"]["httpHeaderValue1"] == "Token ${INFLUX_TOKEN}"

    providers = yaml.safe_load((out_dir / "provisioning/dashboards/earlywarn.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["foldersFromFilesStructure"] is True
    assert Path(provider["options"]["path"]) == (out_dir / "dashboards").resolve()

    # A second build writes the same bytes.
    assert (
        _cli("dashboards", "build", "--registry", str(EXAMPLE_REGISTRY_DIR), "--out", str(out_dir))[
            0
        ]
        == 0
    )
    assert (out_dir / "dashboards/应急监测中心/ew-centre.json").read_bytes() == first


def test_build_with_a_container_path_and_influx_1_credentials(out_dir: Path) -> None:
    code, _out = _cli(
        "dashboards",
        "build",
        "--registry",
        str(EXAMPLE_REGISTRY_DIR),
        "--out",
        str(out_dir),
        "--grafana-path",
        "/var/lib/grafana/dashboards/earlywarn",
        "--influx-user",
        "grafana",
        "--password-env",
        "INFLUX_PASSWORD",
    )
    assert code == 0
    providers = yaml.safe_load((out_dir / "provisioning/dashboards/earlywarn.yaml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/earlywarn"
    source = yaml.safe_load((out_dir / "provisioning/datasources/earlywarn.yaml").read_text())[
        "datasources"
    ][0]
    assert source["user"] == "grafana"
    assert source["secureJsonData"] == {"password": "${INFLUX_PASSWORD}"}


def test_build_refuses_a_registry_with_problems(tmp_path: Path, out_dir: Path) -> None:
    bad = tmp_path / "registry"
    bad.mkdir()
    (bad / "regions.yaml").write_text("regions: []\n")
    (bad / "broken.yaml").write_text("enterprise: {id: x}\n")
    code, _out = _cli("dashboards", "build", "--registry", str(bad), "--out", str(out_dir))
    assert code == 2
    assert not out_dir.exists()
