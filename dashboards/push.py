"""Upload the dashboards to a running Grafana through its HTTP API (grafana-client).

Idempotent: each folder is looked up by uid and created only when missing, and each dashboard
is posted with ``overwrite: true`` under its stable uid, so pushing again replaces what the
previous push left and adds nothing. Errors come back as :class:`PushError` with a sentence a
person can act on (wrong token, missing permission, Grafana not reachable), never a traceback.

grafana-client is an optional dependency (``earlywarn[grafana]``): it brings niquests and
urllib3-future, whose wheel replaces urllib3 in site-packages; :data:`INSTALL_HINT` says how
to install it without that.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from dashboards.build import BuiltDashboard
from dashboards.naming import Folder

__all__ = [
    "INSTALL_HINT",
    "GrafanaClientMissingError",
    "PushError",
    "PushReport",
    "connect",
    "push",
]

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "grafana-client is not installed. Install the optional Grafana extra with:\n"
    "  URLLIB3_NO_OVERRIDE=1 pip install --no-binary urllib3-future 'earlywarn[grafana]'\n"
    "(URLLIB3_NO_OVERRIDE and --no-binary keep urllib3-future from replacing urllib3, which "
    "requests and influxdb-client need.)"
)


class GrafanaClientMissingError(RuntimeError):
    """grafana-client cannot be imported."""


class PushError(RuntimeError):
    """A push failed; the message says why in plain words."""


@dataclass
class PushReport:
    """What a push did."""

    folders_created: list[str] = field(default_factory=list)
    folders_found: list[str] = field(default_factory=list)
    dashboards: list[str] = field(default_factory=list)


def connect(url: str, token: str, timeout_s: float = 10.0) -> Any:
    """A ``GrafanaApi`` for ``url`` authenticated with a service-account token."""
    try:
        from grafana_client.api import GrafanaApi  # noqa: PLC0415 (optional dependency)
        from grafana_client.client import TokenAuth  # noqa: PLC0415
    except ImportError:
        raise GrafanaClientMissingError(INSTALL_HINT) from None
    auth = TokenAuth(token)  # type: ignore[no-untyped-call]
    return GrafanaApi.from_url(url, credential=auth, timeout=timeout_s)


def _explain(error: Exception, url: str, doing: str) -> PushError:
    """Translate grafana-client's and the transport's errors once, at the boundary."""
    status = getattr(error, "status_code", None)
    if status == 401:
        text = (
            f"Grafana at {url} refused the token while {doing} (401 Unauthorized): check "
            "--token (a service-account token of this Grafana, not expired)."
        )
    elif status == 403:
        text = (
            f"Grafana at {url} denied {doing} (403 Forbidden): the token's service account "
            "needs the Editor role (or folder and dashboard write permissions)."
        )
    elif isinstance(error, OSError) or status == 0:
        text = f"Cannot reach Grafana at {url} while {doing}: {error}. Is it running?"
    else:
        text = f"Grafana at {url} failed while {doing}: {error}"
    return PushError(text)


def _client_errors() -> tuple[type[Exception], ...]:
    from grafana_client.client import GrafanaException  # noqa: PLC0415

    return (GrafanaException, OSError)


def _ensure_folder(api: Any, folder: Folder, report: PushReport, url: str) -> None:
    errors = _client_errors()
    try:
        api.folder.get_folder(folder.uid)
    except errors as error:
        if getattr(error, "status_code", None) != 404:
            raise _explain(error, url, f"looking up folder {folder.title}") from None
    else:
        report.folders_found.append(folder.uid)
        return
    try:
        api.folder.create_folder(folder.title, uid=folder.uid)
    except errors as error:
        raise _explain(error, url, f"creating folder {folder.title}") from None
    log.info("created folder %s (%s)", folder.title, folder.uid)
    report.folders_created.append(folder.uid)


def push(api: Any, boards: list[BuiltDashboard], url: str) -> PushReport:
    """Create missing folders, then post every dashboard into its folder, overwriting."""
    errors = _client_errors()
    report = PushReport()
    try:
        api.client.GET("/health")
    except errors as error:
        raise _explain(error, url, "checking /api/health") from None
    folders = {b.folder.uid: b.folder for b in boards}
    for uid in sorted(folders):
        _ensure_folder(api, folders[uid], report, url)
    for board in boards:
        payload = {
            "dashboard": {**board.model, "id": None},
            "folderUid": board.folder.uid,
            "overwrite": True,
            "message": "earlywarn dashboards push",
        }
        try:
            api.dashboard.update_dashboard(payload)
        except errors as error:
            raise _explain(error, url, f"saving dashboard {board.title}") from None
        log.info("pushed dashboard %s (%s)", board.uid, board.title)
        report.dashboards.append(board.uid)
    return report
