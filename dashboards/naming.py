"""Stable uids and folders, derived from registry ids alone.

Grafana identifies a dashboard and a folder by uid (at most 40 characters of letters, digits,
``-`` and ``_``). Deriving them from ids, never from names or build order, is what makes a
second build identical and a second push an overwrite. An id too long for the limit keeps a
readable prefix and gains a short hash of the whole, so two long ids never collide.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = [
    "CENTRE_FOLDER",
    "MAX_UID",
    "Folder",
    "dashboard_uid",
    "enterprise_folder",
    "folder_uid_for_title",
]

MAX_UID = 40
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class Folder:
    """A Grafana folder: ``uid`` for the API, ``title`` shown to people and used as the
    directory name for file provisioning (``foldersFromFilesStructure``)."""

    uid: str
    title: str


CENTRE_FOLDER = Folder(uid="ew-centre", title="应急监测中心")
"""The county-wide dashboards (monitoring centre)."""


def _uid(*parts: str) -> str:
    raw = "-".join(parts)
    safe = _UNSAFE.sub("_", raw)
    if safe == raw and len(safe) <= MAX_UID:
        return safe
    digest = hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{safe[: MAX_UID - 9]}-{digest}"


def dashboard_uid(kind: str, enterprise: str | None = None) -> str:
    """``ew-centre``, ``ew-site-huaxin-chem``, ``ew-water-qingjiang-water``…"""
    return _uid("ew", kind) if enterprise is None else _uid("ew", kind, enterprise)


def enterprise_folder(enterprise: str, name: str) -> Folder:
    """One folder per enterprise, titled with its name (slashes would split the directory)."""
    return Folder(uid=_uid("ewf", enterprise), title=name.replace("/", "／").strip() or enterprise)


def folder_uid_for_title(title: str) -> str:
    """A folder uid for a directory of dashboards with no folder index beside it."""
    return CENTRE_FOLDER.uid if title == CENTRE_FOLDER.title else _uid("ewf", title)
