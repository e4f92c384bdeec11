"""Where the alert store lives: one rule shared by the service and the command line.

The service writes alarms to the store and the duty room reads and acknowledges them with
``earlywarn alarms …``; if the two resolved the path differently, an acknowledgement typed
at the console would land in a file nobody escalates from. Hence one function, used by both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DEFAULT_STORE", "STORE_ENV", "store_path"]

STORE_ENV = "EARLYWARN_STORE"
"""The environment variable naming the store file when ``--store`` is not given."""

DEFAULT_STORE = "earlywarn-alerts.db"
"""The store file, in the current directory, when neither ``--store`` nor the variable is set."""


def store_path(arg: str | None, *, environ: Mapping[str, str] | None = None) -> Path:
    """The alert store file: ``arg`` (``--store``), else ``$EARLYWARN_STORE``, else
    ``earlywarn-alerts.db`` in the current directory.

    An empty value counts as not given (``EARLYWARN_STORE=`` in a unit file must not mean
    "the current directory"); ``~`` is expanded. ``environ`` defaults to ``os.environ``.
    """
    env = os.environ if environ is None else environ
    for candidate in (arg, env.get(STORE_ENV)):
        if candidate is not None and candidate.strip():
            return Path(candidate.strip()).expanduser()
    return Path(DEFAULT_STORE)
