"""What several ``earlywarn`` commands share: loading the registry, the API and storage flags
and the objects they configure. Problems are printed to stderr in plain words; the callers
turn a ``None`` (or ``False``) into their usage exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from alerting.store import AlertStore
from earlywarn.api.tokens import TokensError
from earlywarn.api_wiring import ApiSettings
from earlywarn.clock import SystemClock
from earlywarn.registry import Registry, RegistryError, load_registry
from earlywarn.settings import StorageSettings
from earlywarn.storage_wiring import StorageRuntime
from earlywarn.yamlsource import Problem


def load_registry_or_report(path: Path, command: str | None = None) -> Registry | None:
    """The registry at ``path``, or ``None`` after printing its problems (see
    :func:`report_registry_problems`)."""
    try:
        return load_registry(path)
    except RegistryError as exc:
        report_registry_problems(path, exc.problems, command)
        return None


def report_registry_problems(
    path: Path, problems: Sequence[Problem], command: str | None = None
) -> None:
    """Every problem, one a line, then how many: ``registry PATH: N problems``, or with
    ``command`` ``earlywarn COMMAND: cannot use registry PATH: N problems``."""
    for problem in problems:
        _say(problem)
    count = len(problems)
    counted = f"{count} problem{'s' if count != 1 else ''}"
    if command is None:
        _say(f"registry {path}: {counted}")
    else:
        _say(f"earlywarn {command}: cannot use registry {path}: {counted}")


def add_api_flags(parser: argparse.ArgumentParser) -> None:
    """``--api`` and ``--api-tokens`` (read by :func:`api_settings`)."""
    parser.add_argument(
        "--api",
        metavar="HOST:PORT",
        help="serve the HTTP API here, e.g. 127.0.0.1:8781 (default $EARLYWARN_API_LISTEN; "
        "none: off); see docs/api.md",
    )
    parser.add_argument(
        "--api-tokens",
        metavar="FILE",
        help="the API's tokens file (default $EARLYWARN_API_TOKENS); "
        "make one with `earlywarn api-token add`",
    )


def api_settings(
    args: argparse.Namespace, registry: Registry
) -> ApiSettings | Literal[False] | None:
    """The API's settings (``None``: off); ``False`` after printing why they cannot work."""
    try:
        return ApiSettings.from_flags(args.api, args.api_tokens, registry)
    except TokensError as exc:
        for problem in exc.problems:
            _say(problem)
    except ValueError as exc:
        _say(f"earlywarn {args.command}: {exc}")
    return False


def add_storage_flags(parser: argparse.ArgumentParser) -> None:
    """``--influx`` and ``--spool`` (read by :func:`open_storage`)."""
    parser.add_argument(
        "--influx",
        metavar="URL",
        help="InfluxDB to store readings and alarm history in, e.g. http://127.0.0.1:8086 "
        "(default $EARLYWARN_INFLUX_URL; none: nothing is stored); token, org and bucket "
        "from $EARLYWARN_INFLUX_TOKEN, _ORG, _BUCKET",
    )
    parser.add_argument(
        "--spool",
        metavar="FILE",
        help="the local spool points wait in for InfluxDB "
        "(default $EARLYWARN_SPOOL or ./earlywarn-spool.db)",
    )


def open_storage(
    args: argparse.Namespace, registry: Registry, store: AlertStore
) -> StorageRuntime | None:
    """The storage runtime when an InfluxDB is configured, else ``None``."""
    settings = StorageSettings.from_env(influx_url=args.influx, spool_path=args.spool)
    if settings.influx_url is None:
        return None
    return StorageRuntime(settings, registry, SystemClock(), store)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM: what a service waits on (call on its loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _say(line: object) -> None:
    """One line to stderr."""
    sys.stderr.write(f"{line}\n")
