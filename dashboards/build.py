"""Assemble every dashboard of a registry, turn each into Grafana's JSON, write the files.

Output layout (``--out DIR``)::

    DIR/dashboards/应急监测中心/ew-centre.json
    DIR/dashboards/<enterprise name>/ew-site-<enterprise>.json
    DIR/dashboards/<enterprise name>/ew-gas-<enterprise>.json      (gas detectors)
    DIR/dashboards/<enterprise name>/ew-water-<enterprise>.json    (rain or water gauges)
    DIR/provisioning/...                                            (see provisioning.py)

One directory per folder, because Grafana's file provider turns subdirectories into folders
(``foldersFromFilesStructure``). Files are written with sorted keys and a final newline, so
an unchanged registry gives byte-identical files and a diff shows only what changed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard

from dashboards.centre import centre
from dashboards.gas import gas_dashboard, has_gas
from dashboards.naming import CENTRE_FOLDER, Folder, enterprise_folder, folder_uid_for_title
from dashboards.panels import datasource_ref
from dashboards.site import enterprise_dashboard
from dashboards.water import has_water, water_dashboard
from earlywarn.model import Enterprise
from earlywarn.registry import Registry

__all__ = [
    "DEFAULT_DATASOURCE_UID",
    "BuiltDashboard",
    "build_dashboards",
    "dashboard_json",
    "read_dashboards",
    "write_dashboards",
]

log = logging.getLogger(__name__)

DEFAULT_DATASOURCE_UID = "earlywarn-influxdb"
"""The uid of the InfluxDB data source the provisioning file creates and every panel names."""

DASHBOARDS_DIR = "dashboards"


@dataclass(frozen=True, slots=True)
class BuiltDashboard:
    """One dashboard as Grafana's JSON, with the folder it belongs in."""

    uid: str
    title: str
    folder: Folder
    model: dict[str, Any]

    @property
    def relative_path(self) -> Path:
        """Where it is written under the output directory."""
        return Path(DASHBOARDS_DIR) / self.folder.title / f"{self.uid}.json"


def dashboard_json(model: dashboard.Dashboard) -> dict[str, Any]:
    """The SDK model as plain JSON data (what Grafana stores and the API takes)."""
    data: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    return data


def _built(board: dashboard_builders.Dashboard, folder: Folder) -> BuiltDashboard:
    built = board.build()
    # Panel ids in layout order: stable across builds, unique as Grafana requires.
    for number, panel in enumerate(built.panels or [], start=1):
        panel.id_val = number
    model = dashboard_json(built)
    return BuiltDashboard(uid=model["uid"], title=model["title"], folder=folder, model=model)


_PER_ENTERPRISE: tuple[
    tuple[
        Callable[[Enterprise], bool],
        Callable[[dashboard.DataSourceRef, Enterprise], dashboard_builders.Dashboard],
    ],
    ...,
] = (
    (lambda _e: True, enterprise_dashboard),
    (has_gas, gas_dashboard),
    (has_water, water_dashboard),
)


def build_dashboards(
    registry: Registry, datasource_uid: str = DEFAULT_DATASOURCE_UID
) -> list[BuiltDashboard]:
    """Every dashboard of the registry: the monitoring centre, then per enterprise (in id
    order) its own dashboard and, where it has such sensors, gas and rain-and-water."""
    ds = datasource_ref(datasource_uid)
    built = [_built(centre(ds), CENTRE_FOLDER)]
    for enterprise_id in sorted(registry.enterprises):
        enterprise = registry.enterprises[enterprise_id]
        folder = enterprise_folder(enterprise.id, enterprise.name)
        built.extend(
            _built(make(ds, enterprise), folder)
            for wanted, make in _PER_ENTERPRISE
            if wanted(enterprise)
        )
    return built


def write_dashboards(built: list[BuiltDashboard], out: Path) -> list[Path]:
    """Write each dashboard's JSON under ``out``; return the paths written."""
    written: list[Path] = []
    for board in built:
        path = out / board.relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(board.model, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        log.info("wrote dashboard %s (%s) to %s", board.uid, board.title, path)
        written.append(path)
    return written


def read_dashboards(directory: Path) -> list[BuiltDashboard]:
    """Dashboards written by :func:`write_dashboards`, read back for a push.

    The folder comes from the directory (its title) and the uid from a folder index written
    beside them (``folders.index``), or is derived from the title when that is missing.
    """
    index_path = directory / FOLDER_INDEX
    index: dict[str, str] = {}
    if index_path.exists():
        index = json.loads(index_path.read_text(encoding="utf-8"))
    boards: list[BuiltDashboard] = []
    for path in sorted(directory.glob("*/*.json")):
        model = json.loads(path.read_text(encoding="utf-8"))
        title = path.parent.name
        folder = Folder(uid=index.get(title) or folder_uid_for_title(title), title=title)
        boards.append(
            BuiltDashboard(uid=model["uid"], title=model["title"], folder=folder, model=model)
        )
    return boards


FOLDER_INDEX = "folders.index"
"""Beside the folder directories: folder title → folder uid (JSON), so a push from files
creates the same folders as a push from the registry. Not named ``*.json``: Grafana's file
provider would try to load it as a dashboard and log an error at every scan."""


def write_folder_index(built: list[BuiltDashboard], out: Path) -> Path:
    """Write ``dashboards/folders.index`` (title → uid) under ``out``."""
    path = out / DASHBOARDS_DIR / FOLDER_INDEX
    path.parent.mkdir(parents=True, exist_ok=True)
    index = {b.folder.title: b.folder.uid for b in built}
    path.write_text(
        json.dumps(index, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return path
