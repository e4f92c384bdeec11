"""Grafana provisioning files: the InfluxDB data source and a file provider for the JSON.

Grafana reads ``provisioning/datasources/*.yaml`` and ``provisioning/dashboards/*.yaml`` at
start. The data source is InfluxDB in InfluxQL mode with a fixed uid, which every panel
names, so the dashboards work in any Grafana provisioned this way. For InfluxDB 2.x the same
InfluxQL runs through a DBRP mapping of the bucket to ``database``; Grafana then sends the
token in an ``Authorization: Token …`` header, taken from an environment variable that
Grafana expands when it reads the file (the token never lands in the file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dashboards.build import DASHBOARDS_DIR

__all__ = [
    "DASHBOARD_PROVIDER_FILE",
    "DATASOURCE_FILE",
    "DatasourceSettings",
    "dashboard_provider",
    "datasource_config",
    "write_provisioning",
]

DATASOURCE_FILE = Path("provisioning/datasources/earlywarn.yaml")
DASHBOARD_PROVIDER_FILE = Path("provisioning/dashboards/earlywarn.yaml")


@dataclass(frozen=True, slots=True)
class DatasourceSettings:
    """How Grafana reaches InfluxDB.

    ``token_env`` (InfluxDB 2.x with a DBRP mapping) names the environment variable holding an
    API token; ``user`` with ``password_env`` is InfluxDB 1.x authentication.
    """

    uid: str
    url: str = "http://influxdb:8086"
    database: str = "earlywarn"
    name: str = "earlywarn InfluxDB"
    token_env: str | None = None
    user: str | None = None
    password_env: str | None = None


def datasource_config(settings: DatasourceSettings) -> dict[str, Any]:
    """The data-source provisioning document."""
    source: dict[str, Any] = {
        "name": settings.name,
        "uid": settings.uid,
        "type": "influxdb",
        "access": "proxy",
        "url": settings.url,
        "isDefault": False,
        "editable": False,
        "jsonData": {"version": "InfluxQL", "dbName": settings.database, "httpMode": "GET"},
    }
    secure: dict[str, str] = {}
    if settings.token_env:
        source["jsonData"]["httpHeaderName1"] = "Authorization"
        secure["httpHeaderValue1"] = f"Token ${{{settings.token_env}}}"
    if settings.user:
        source["user"] = settings.user
    if settings.password_env:
        secure["password"] = f"${{{settings.password_env}}}"
    if secure:
        source["secureJsonData"] = secure
    return {
        "apiVersion": 1,
        "deleteDatasources": [],
        "datasources": [source],
    }


def dashboard_provider(dashboards_path: str) -> dict[str, Any]:
    """The file provider: every JSON under ``dashboards_path`` (as Grafana sees it), one
    folder per subdirectory. Dashboards are regenerated, not edited in Grafana, so UI edits
    are off and a removed file removes its dashboard."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "earlywarn",
                "orgId": 1,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": dashboards_path, "foldersFromFilesStructure": True},
            }
        ],
    }


def write_provisioning(
    out: Path, settings: DatasourceSettings, dashboards_path: str | None = None
) -> list[Path]:
    """Write both files under ``out/provisioning``. ``dashboards_path`` is where Grafana finds
    the JSON (a mount point in a container); by default the absolute path written here."""
    path_for_grafana = dashboards_path or str((out / DASHBOARDS_DIR).resolve())
    documents = {
        DATASOURCE_FILE: datasource_config(settings),
        DASHBOARD_PROVIDER_FILE: dashboard_provider(path_for_grafana),
    }
    written: list[Path] = []
    for relative, document in documents.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        written.append(path)
    return written
