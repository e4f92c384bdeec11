"""``earlywarn onboard FILE`` and ``earlywarn offboard ENTERPRISE``.

``onboard`` prints every problem as ``file:line: message`` and exits 2, or onboards and
prints each account's secret once: a table for the person at the terminal and, with
``--csv FILE``, a CSV for the installer (written with mode 0600). ``--check`` only checks.
Register with ``onboard_cli.add_parser(sub)`` in :mod:`earlywarn.cli`.

Exit codes: 0 done; 1 done but the broker could not be reloaded (the files are written:
reload it by hand); 2 the file or the command cannot be used as given.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path
from typing import TextIO

from earlywarn.clock import SystemClock
from earlywarn.mosquitto_auth import AuthDir, BrokerReloader, write_private
from earlywarn.mqtt_accounts import Mode
from earlywarn.onboard import BrokerOutcome, Onboarder, OnboardingError, OnboardResult, Status

__all__ = ["add_parser", "cmd_offboard", "cmd_onboard", "credentials_csv"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
REGISTRY_ENV = "EARLYWARN_REGISTRY"
MQTT_DIR_ENV = "EARLYWARN_MQTT_AUTH_DIR"
PID_ENV = "EARLYWARN_MQTT_PID_FILE"
RELOAD_ENV = "EARLYWARN_MQTT_RELOAD"
GROUP_ENV = "EARLYWARN_MQTT_GROUP"
CSV_FIELDS = (
    "enterprise",
    "site",
    "devices",
    "username",
    "password",
    "publish",
    "subscribe",
    "status",
)


def _onboarder(args: argparse.Namespace, err: TextIO) -> Onboarder | None:
    registry = args.registry or os.environ.get(REGISTRY_ENV)
    mqtt_dir = args.mqtt_dir or os.environ.get(MQTT_DIR_ENV)
    if not registry or not mqtt_dir:
        err.write(
            f"give --registry (or ${REGISTRY_ENV}) and --mqtt-dir (or ${MQTT_DIR_ENV}): where "
            "the enterprise file goes and where the broker's password and ACL files are\n"
        )
        return None
    if not Path(registry).is_dir():
        err.write(f"registry directory {registry} not found\n")
        return None
    pid = args.broker_pid_file or os.environ.get(PID_ENV)
    command = args.reload_command or os.environ.get(RELOAD_ENV)
    group = args.broker_group or os.environ.get(GROUP_ENV) or None
    return Onboarder(
        Path(registry),
        AuthDir(Path(mqtt_dir), group),
        BrokerReloader(Path(pid) if pid else None, command or None),
        SystemClock(),
        dashboards_out=Path(args.dashboards) if getattr(args, "dashboards", None) else None,
    )


def credentials_csv(result: OnboardResult) -> str:
    """The accounts with a secret issued now, one CSV row each (the installer's sheet)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for c in result.issued:
        assert c.account is not None  # noqa: S101 - issued credentials have accounts
        writer.writerow(
            (
                result.enterprise.id,
                c.site,
                " ".join(c.devices),
                c.user,
                c.password,
                " ".join(c.account.write),
                " ".join(c.account.read),
                c.status.value,
            )
        )
    return buffer.getvalue()


def _print_broker(broker: BrokerOutcome, out: TextIO, err: TextIO) -> int:
    if broker.error is not None:
        err.write(
            f"the broker's files are written but it was NOT reloaded: {broker.error}\n"
            "reload it yourself (kill -HUP <mosquitto pid>) for the change to take effect\n"
        )
        return EXIT_FAILED
    out.write(f"broker: {broker.done}\n")
    return EXIT_OK


def cmd_onboard(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Check an enterprise file and, unless ``--check``, onboard it."""
    out, err = out or sys.stdout, err or sys.stderr
    onboarder = _onboarder(args, err)
    if onboarder is None:
        return EXIT_USAGE
    source = Path(args.file)
    if not source.is_file():
        err.write(f"{source}: no such file\n")
        return EXIT_USAGE
    if args.check:
        checked = onboarder.check(source, update=args.update)
        for problem in checked.problems:
            err.write(f"{problem}\n")
        if not checked.ok:
            err.write(f"{source}: {len(checked.problems)} problem(s)\n")
            return EXIT_USAGE
        out.write(f"{source}: OK, would be {checked.target}\n")
        return EXIT_OK
    try:
        result = onboarder.onboard(
            source,
            rotate=args.rotate,
            mode=Mode(args.mode) if args.mode else None,
            update=args.update,
        )
    except OnboardingError as exc:
        for problem in exc.problems:
            err.write(f"{problem}\n")
        err.write(f"{source}: {len(exc.problems)} problem(s); nothing was changed\n")
        return EXIT_USAGE
    ent = result.enterprise
    state = "written" if result.registry_changed else "unchanged"
    out.write(f"enterprise {ent.id} ({ent.name}): registry file {result.target} {state}\n")
    out.write(f"MQTT accounts ({result.mode.value} mode):\n")
    width = max((len(c.user) for c in result.credentials), default=10)
    for c in result.credentials:
        secret = c.password if c.password is not None else "-"
        out.write(f"  {c.status.value:<8} {c.user:<{width}}  {secret}\n")
    if result.issued:
        out.write(
            "the secrets above are shown ONCE and stored only as hashes: hand them to the "
            "installer now\n"
        )
    if args.csv and result.issued:
        write_private(Path(args.csv), credentials_csv(result))
        out.write(f"credentials CSV written to {args.csv} (mode 0600; delete it once used)\n")
    kept = sum(1 for c in result.credentials if c.status is Status.KEPT)
    if kept and not result.issued:
        out.write("no secret changed (--rotate issues new ones)\n")
    for path in result.dashboards:
        out.write(f"dashboard: {path}\n")
    if result.registry_changed:
        out.write("restart `earlywarn run` for it to watch the changed registry\n")
    return _print_broker(result.broker, out, err)


def cmd_offboard(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Revoke an enterprise's accounts and take its file out of the registry."""
    out, err = out or sys.stdout, err or sys.stderr
    onboarder = _onboarder(args, err)
    if onboarder is None:
        return EXIT_USAGE
    try:
        result = onboarder.offboard(args.enterprise, keep_registry=args.keep_registry)
    except LookupError as exc:
        err.write(f"{exc.args[0]}\n")
        return EXIT_USAGE
    except OnboardingError as exc:
        for problem in exc.problems:
            err.write(f"{problem}\n")
        err.write(
            f"the registry would not load without {args.enterprise}: fix the files above "
            "first; nothing was changed\n"
        )
        return EXIT_USAGE
    out.write(f"enterprise {result.enterprise}: {len(result.revoked)} MQTT account(s) revoked\n")
    for user in result.revoked:
        out.write(f"  revoked  {user}\n")
    if result.moved_to is not None:
        out.write(
            f"registry file moved to {result.moved_to}; readings, alarms and the audit log "
            "stay; restart `earlywarn run`\n"
        )
    return _print_broker(result.broker, out, err)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", help=f"registry directory (default ${REGISTRY_ENV})")
    parser.add_argument(
        "--mqtt-dir",
        help=f"the broker's authentication directory (default ${MQTT_DIR_ENV}); "
        "see docs/onboarding.md",
    )
    parser.add_argument(
        "--broker-group",
        help="the group the broker runs as (mosquitto): the assembled password and ACL "
        f"files are made readable to it, mode 0640 (default ${GROUP_ENV}; none: 0600)",
    )
    parser.add_argument(
        "--broker-pid-file",
        help=f"reload the broker by SIGHUP to the pid in this file (default ${PID_ENV})",
    )
    parser.add_argument(
        "--reload-command",
        help=f"or run this command to reload it, e.g. 'systemctl reload mosquitto' "
        f"(default ${RELOAD_ENV})",
    )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``onboard`` and ``offboard`` to the CLI's subcommands."""
    onboard = subparsers.add_parser(
        "onboard",
        help="check an enterprise file, put it in the registry, issue MQTT credentials",
    )
    onboard.add_argument("file", help="the enterprise file (一企一档), registry format")
    _common(onboard)
    onboard.add_argument("--check", action="store_true", help="only check; change nothing")
    onboard.add_argument(
        "--update",
        action="store_true",
        help="the enterprise is in the registry already: replace its file with this one",
    )
    onboard.add_argument(
        "--rotate", action="store_true", help="issue new secrets for every account"
    )
    onboard.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        help="one account per device (default) or per site for a gateway; "
        "kept from the last run when not given",
    )
    onboard.add_argument("--csv", help="also write the new credentials as CSV to this file")
    onboard.add_argument(
        "--dashboards", help="write the enterprise's Grafana dashboards under this directory"
    )
    onboard.set_defaults(func=cmd_onboard)

    offboard = subparsers.add_parser(
        "offboard", help="revoke an enterprise's MQTT credentials and ACL; its data stays"
    )
    offboard.add_argument("enterprise", help="enterprise id")
    _common(offboard)
    offboard.add_argument(
        "--keep-registry",
        action="store_true",
        help="leave its file in the registry (its sensors are still watched and go offline)",
    )
    offboard.set_defaults(func=cmd_offboard)
