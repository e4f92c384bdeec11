"""``earlywarn dashboards build|push``: Grafana dashboards from the registry.

``build`` writes the dashboard JSON (one file per dashboard, one directory per folder) and
Grafana's provisioning files; ``push`` uploads to a running Grafana through its HTTP API,
either the files of a previous build (``--dir``) or straight from a registry
(``--registry``). Register with ``dashboards_cli.add_parser(sub)`` in ``earlywarn.cli``.

Exit codes: 0 done; 1 Grafana refused or could not be reached; 2 bad input (a registry with
problems, an empty directory) or grafana-client not installed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TextIO

from dashboards.build import (
    DASHBOARDS_DIR,
    DEFAULT_DATASOURCE_UID,
    BuiltDashboard,
    build_dashboards,
    read_dashboards,
    write_dashboards,
    write_folder_index,
)
from dashboards.provisioning import DatasourceSettings, write_provisioning
from dashboards.push import GrafanaClientMissingError, PushError, connect, push
from earlywarn.registry import RegistryError, load_registry

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "add_parser", "cmd_build", "cmd_push"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

TOKEN_ENV = "GRAFANA_TOKEN"  # noqa: S105 (the name of the variable, not a token)


def _load(registry: Path, datasource_uid: str, err: TextIO) -> list[BuiltDashboard] | None:
    try:
        return build_dashboards(load_registry(registry), datasource_uid)
    except RegistryError as error:
        err.write(f"{registry}: the registry has problems:\n{error}\n")
        return None


def cmd_build(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Write the dashboards and the provisioning files under ``--out``."""
    out, err = out or sys.stdout, err or sys.stderr
    boards = _load(args.registry, args.datasource_uid, err)
    if boards is None:
        return EXIT_USAGE
    target: Path = args.out
    written = write_dashboards(boards, target)
    written.append(write_folder_index(boards, target))
    settings = DatasourceSettings(
        uid=args.datasource_uid,
        url=args.datasource_url,
        database=args.database,
        token_env=args.token_env,
        user=args.influx_user,
        password_env=args.password_env,
    )
    written += write_provisioning(target, settings, args.grafana_path)
    for path in written:
        out.write(f"{path}\n")
    out.write(f"{len(boards)} dashboards, {len(written)} files under {target}\n")
    return EXIT_OK


def cmd_push(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Upload dashboards (from ``--dir`` or ``--registry``) to ``--grafana``."""
    out, err = out or sys.stdout, err or sys.stderr
    if not args.token:
        err.write(f"no Grafana token: give --token or set {TOKEN_ENV}\n")
        return EXIT_USAGE
    if args.registry is not None:
        boards = _load(args.registry, args.datasource_uid, err)
        if boards is None:
            return EXIT_USAGE
    else:
        directory: Path = args.dir
        if (directory / DASHBOARDS_DIR).is_dir():
            directory = directory / DASHBOARDS_DIR
        boards = read_dashboards(directory)
        if not boards:
            err.write(f"{args.dir}: no dashboards here (run 'earlywarn dashboards build')\n")
            return EXIT_USAGE
    try:
        api = connect(args.grafana, args.token)
        report = push(api, boards, args.grafana)
    except GrafanaClientMissingError as error:
        err.write(f"{error}\n")
        return EXIT_USAGE
    except PushError as error:
        err.write(f"{error}\n")
        return EXIT_FAILED
    out.write(
        f"pushed {len(report.dashboards)} dashboards to {args.grafana}; folders created: "
        f"{len(report.folders_created)}, already there: {len(report.folders_found)}\n"
    )
    return EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dashboards build`` and ``dashboards push`` to the CLI's subcommands."""
    dashboards = subparsers.add_parser("dashboards", help="Grafana dashboards from the registry")
    actions = dashboards.add_subparsers(dest="dashboards_command", required=True)

    build = actions.add_parser("build", help="write dashboard JSON and Grafana provisioning files")
    build.add_argument("--registry", type=Path, required=True, help="registry directory")
    build.add_argument("--out", type=Path, required=True, help="output directory")
    build.add_argument(
        "--datasource-url",
        default="http://influxdb:8086",
        help="InfluxDB URL as Grafana reaches it (default %(default)s)",
    )
    build.add_argument(
        "--database", default="earlywarn", help="InfluxQL database (2.x: the DBRP name)"
    )
    build.add_argument("--datasource-uid", default=DEFAULT_DATASOURCE_UID)
    build.add_argument(
        "--token-env",
        help="InfluxDB 2.x: environment variable (of Grafana) holding the API token",
    )
    build.add_argument("--influx-user", help="InfluxDB 1.x user")
    build.add_argument(
        "--password-env", help="InfluxDB 1.x: environment variable holding the password"
    )
    build.add_argument(
        "--grafana-path",
        help="where Grafana finds the dashboard JSON (default: the absolute path of "
        "OUT/dashboards; in a container, its mount point)",
    )
    build.set_defaults(func=cmd_build)

    push_cmd = actions.add_parser("push", help="upload dashboards to Grafana's HTTP API")
    push_cmd.add_argument("--grafana", required=True, help="Grafana URL, e.g. http://grafana:3000")
    push_cmd.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"service-account token (default: ${TOKEN_ENV})",
    )
    source = push_cmd.add_mutually_exclusive_group(required=True)
    source.add_argument("--dir", type=Path, help="output of 'dashboards build'")
    source.add_argument("--registry", type=Path, help="build from this registry and push")
    push_cmd.add_argument("--datasource-uid", default=DEFAULT_DATASOURCE_UID)
    push_cmd.set_defaults(func=cmd_push)
