"""The ``earlywarn`` command line: ``demo``, ``run``, ``check-registry``, ``backtest``, and the
duty room's ``alarms`` and ``maintenance`` commands over the alert store.

This module parses; the alarm and maintenance commands live in :mod:`earlywarn.alarms_cli`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path

from alerting.channels.config import ChannelSettings, env_references
from alerting.console import ConsoleSink
from alerting.policy import DEFAULT_POLICIES
from alerting.routing import Route
from earlywarn import (
    __version__,
    alarms_cli,
    alerter_cli,
    api_cli,
    bridge_cli,
    dashboards_cli,
    onboard_cli,
    simulate_cli,
    worker_cli,
)
from earlywarn.alert_wiring import AlertingSetupError, open_alerting
from earlywarn.alerting_config import (
    ESCALATION_FILE,
    ROUTING_FILE,
    AlertingConfig,
    AlertingConfigError,
    load_alerting_config,
)
from earlywarn.api_wiring import onboarder_from_env, start_api
from earlywarn.backtest import run_backtest
from earlywarn.channels_file import (
    CHANNELS_FILE,
    ChannelsError,
    load_channels,
    read_channel_settings,
)
from earlywarn.cli_common import (
    add_api_flags,
    add_storage_flags,
    api_settings,
    load_registry_or_report,
    open_storage,
    report_registry_problems,
    stop_on_signals,
)
from earlywarn.clock import SystemClock
from earlywarn.durations import parse_seconds
from earlywarn.messages import LANGUAGES
from earlywarn.model import DEFAULT_TIMEZONE
from earlywarn.registry import Registry, RegistryError, load_registry
from earlywarn.runner import EmbeddedRunner
from earlywarn.settings import RunSettings
from earlywarn.store_path import DEFAULT_STORE, STORE_ENV, store_path
from earlywarn.yamlsource import Problem
from ingest.mqtt import parse_mqtt_url

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

log = logging.getLogger("earlywarn")


@contextlib.contextmanager
def example_registry() -> Iterator[Path]:
    """The example registry shipped inside the package (works from a wheel too)."""
    with resources.as_file(resources.files("earlywarn.examples") / "registry") as path:
        yield path


def cmd_check_registry(args: argparse.Namespace) -> int:
    """Validate a registry with its alerting files (routing.yaml, escalation.yaml) and
    channels.yaml; print a summary, or every problem of every file and exit 2.

    channels.yaml is checked without resolving ``${VAR}`` secrets: they belong to the machine
    that runs the service, not to whoever checks a change; the summary names them instead.
    """
    path = Path(args.registry)
    problems: list[Problem] = []
    registry: Registry | None = None
    config: AlertingConfig | None = None
    try:
        registry = load_registry(path)
    except RegistryError as exc:
        problems.extend(exc.problems)
    if registry is not None:  # routing names people and enterprises: it needs the registry
        try:
            config = load_alerting_config(registry)
        except AlertingConfigError as exc:
            problems.extend(exc.problems)
    channels: list[ChannelSettings] = []
    if (path / CHANNELS_FILE).is_file():
        try:
            channels = read_channel_settings(path / CHANNELS_FILE)
        except ChannelsError as exc:
            problems.extend(exc.problems)
    if problems or registry is None or config is None:
        unchecked = [f for f in (ROUTING_FILE, ESCALATION_FILE) if (path / f).is_file()]
        if registry is None and unchecked:  # stdout: stderr holds only file:line problems
            print(f"{' and '.join(unchecked)} will be checked once the registry loads")
        report_registry_problems(path, problems)
        return EXIT_USAGE
    s = registry.summary()
    print(f"registry {args.registry}: OK")
    print(f"  {'enterprises':<18}{s.enterprises:>6}")
    print(f"  {'sites':<18}{s.sites:>6}")
    print(f"  {'sensors':<18}{s.sensors:>6}")
    for kind, count in s.sensors_by_kind.items():
        print(f"    {kind:<16}{count:>6}")
    print(f"  {'rules':<18}{s.rules:>6}")
    for kind, count in s.rules_by_kind.items():
        print(f"    {kind:<16}{count:>6}")
    print(f"  {'zones':<18}{s.zones:>6}")
    print(f"  {'people':<18}{s.people:>6}")
    print(f"  {'regions':<18}{s.regions:>6}")
    print()
    print(
        f"  {'enterprise':<22} {'kind':<20} {'region':<12} {'sites':>5} {'sensors':>7} "
        f"{'people':>6}  name"
    )
    for ent in registry.enterprises.values():
        sensors = sum(len(site.sensors) for site in ent.sites)
        print(
            f"  {ent.id:<22} {ent.kind:<20} {ent.region:<12} {len(ent.sites):>5} "
            f"{sensors:>7} {len(ent.people):>6}  {ent.name}"
        )
    print()
    _print_alerting(path, config)
    _print_channels(path, registry, channels)
    return EXIT_OK


def _route_names(routes: Sequence[Route]) -> list[str]:
    def count(route: Route) -> int:
        return 1 + sum(count(child) for child in route.routes)

    return [f"{r.name} (+{count(r) - 1} inside)" if r.routes else r.name for r in routes]


def _span(ms: int) -> str:
    """A duration as written in the YAML files: 2min, 1h, 90s."""
    for unit, size in (("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _print_alerting(path: Path, config: AlertingConfig) -> None:
    routing = config.routing
    print("  alerting")
    if (path / ROUTING_FILE).is_file():
        top = routing.root.routes
        names = ", ".join(_route_names(top)) or "none: the chain for every alarm"
        print(f"    {ROUTING_FILE:<18}{len(top)} top-level route(s): {names}")
    else:
        print(f"    {ROUTING_FILE:<18}none: every alarm goes to its enterprise's chain")
    drill = "a drill route" if routing.drill is not None else "drills routed like real alarms"
    flood = routing.flood
    print(
        f"    {'':<18}{drill}; flood control above {flood.alarms} alarms per site "
        f"within {_span(flood.within_ms)}"
    )
    from_file = [
        f"{name} ({len(policy.steps)} step{'s' if len(policy.steps) != 1 else ''})"
        for name, policy in config.policies.items()
        if DEFAULT_POLICIES.get(name) != policy
    ]
    built_in = [n for n, p in config.policies.items() if DEFAULT_POLICIES.get(n) == p]
    if (path / ESCALATION_FILE).is_file():
        noun = "policy" if len(from_file) == 1 else "policies"
        listed = f": {', '.join(from_file)}" if from_file else " beyond the built-in ones"
        print(f"    {ESCALATION_FILE:<18}{len(from_file)} {noun}{listed}")
    else:
        print(f"    {ESCALATION_FILE:<18}none: the built-in policies")
    if built_in:
        print(f"    {'':<18}built-in policies: {', '.join(built_in)}")


def _env_names(value: object) -> list[str]:
    """Every ``${VAR}`` referenced anywhere in a settings value (nested values included)."""
    if isinstance(value, str):
        return env_references(value)
    if isinstance(value, Mapping):
        return [n for item in value.values() for n in _env_names(item)]
    if isinstance(value, tuple | list):
        return [n for item in value for n in _env_names(item)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [n for f in dataclasses.fields(value) for n in _env_names(getattr(value, f.name))]
    return []


def _print_channels(path: Path, registry: Registry, channels: Sequence[ChannelSettings]) -> None:
    if not (path / CHANNELS_FILE).is_file():
        print(f"    {CHANNELS_FILE:<18}none: the console channel only")
    else:
        print(f"    {CHANNELS_FILE:<18}{len(channels)} channel(s)")
    needed: list[str] = []
    for item in channels:
        kind = type(item).__name__.removesuffix("Settings").lower()
        refs = list(dict.fromkeys(_env_names(item)))
        needed.extend(refs)
        uses = f"  uses {', '.join(f'${{{n}}}' for n in refs)}" if refs else ""
        print(f"      {item.name:<16}{kind:<10}{uses}")
    if needed:
        names = ", ".join(dict.fromkeys(needed))
        print(f"    {'':<18}environment variables needed at run time (not checked here): {names}")
    defined = {item.name for item in channels} | {"console"}
    named = {c for person in registry.people.values() for c, _ in person.contacts}
    missing = sorted(named - defined)
    if missing:
        print(
            f"    {'':<18}note: people's contacts name channels {CHANNELS_FILE} does not "
            f"define: {', '.join(missing)}"
        )


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the self-contained demo."""
    # amqtt (the embedded broker) is needed by the demo only; the service never loads it.
    from earlywarn.demo import run_demo  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        path = Path(args.registry) if args.registry else stack.enter_context(example_registry())
        registry = load_registry_or_report(path)
        if registry is None:
            return EXIT_USAGE
        api = api_settings(args, registry)
        if api is False:
            return EXIT_USAGE
        try:
            return asyncio.run(
                run_demo(
                    registry,
                    sys.stdout,
                    speed=args.speed,
                    forever=args.forever,
                    language=args.lang,
                    store=Path(args.store) if args.store else None,
                    api=api or None,
                )
            )
        except KeyboardInterrupt:
            print("\ndemo stopped", file=sys.stderr)
            return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run the long-running embedded service until SIGINT or SIGTERM."""
    registry = load_registry_or_report(Path(args.registry))
    if registry is None:
        return EXIT_USAGE
    settings = replace(
        RunSettings.from_env(
            mqtt_url=args.mqtt, client_id=args.client_id, queue_capacity=args.queue
        ),
        language=args.lang,
    )
    try:
        parse_mqtt_url(settings.mqtt_url)
    except ValueError as exc:
        print(f"earlywarn run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    api = api_settings(args, registry)
    if api is False:
        return EXIT_USAGE
    try:
        channels = load_channels(registry.path)
        alerting = open_alerting(
            registry, settings, SystemClock(), store_path(args.store), channels
        )
    except (ChannelsError, AlertingConfigError) as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    except AlertingSetupError as exc:
        print(f"earlywarn run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        storage = open_storage(args, registry, alerting.store)
    except (ValueError, OSError) as exc:
        alerting.close()
        print(f"earlywarn run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    runner = EmbeddedRunner(
        registry,
        settings,
        sinks=[ConsoleSink(sys.stdout)],
        alerts=alerting.service,
        ack_server=alerting.ack_server,
        storage=storage,
    )

    async def serve() -> None:
        stop = stop_on_signals()
        summary = registry.summary()
        log.info("watching %s sensors of %s enterprises", summary.sensors, summary.enterprises)
        log.info(
            "alert store %s; channels %s; acknowledgement server %s",
            alerting.store.path,
            ", ".join(sorted(channels)),
            settings.ack_listen or "off",
        )
        if storage is None:
            log.warning(
                "no InfluxDB configured (--influx or EARLYWARN_INFLUX_URL): readings and alarm "
                "history are not stored; alarms work as usual"
            )
        server = None
        if api:
            onboarder = onboarder_from_env(registry, SystemClock())
            server = await start_api(api, registry, runner, alerting.service, onboarder)
        try:
            counters = await runner.run(stop)
        finally:
            if server is not None:
                await server.stop()
        print("earlywarn stopped\n" + counters.format(), flush=True)

    try:
        asyncio.run(serve())
    finally:
        alerting.close()
    return EXIT_OK


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run recorded readings through the rules on a simulated clock."""
    registry = load_registry_or_report(Path(args.registry))
    if registry is None:
        return EXIT_USAGE
    path = Path(args.input)
    if not path.is_file():
        print(f"earlywarn backtest: input file {path} not found", file=sys.stderr)
        return EXIT_USAGE
    result = run_backtest(
        registry,
        path,
        sys.stdout,
        sys.stderr,
        fmt=args.format,
        tick_ms=round(args.tick * 1000),
        language=args.lang,
    )
    if result.readings == 0:
        print(f"earlywarn backtest: no usable reading in {path}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="earlywarn",
        description="IoT monitoring and early warning: MQTT readings to tiered alarms.",
    )
    parser.add_argument("--version", action="version", version=f"earlywarn {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run broker, simulated devices and runner in one process")
    demo.add_argument("--forever", action="store_true", help="loop the scenario until Ctrl-C")
    demo.add_argument(
        "--speed", type=_positive, default=1.0, help="scenario seconds per real second (default 1)"
    )
    demo.add_argument("--registry", help="registry directory (default: the bundled example)")
    demo.add_argument("--lang", choices=LANGUAGES, default="zh", help="language of messages")
    demo.add_argument(
        "--store", help="keep the demo's alert store in this file (default: a temporary one)"
    )
    add_api_flags(demo)
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="the long-running service: subscribe, evaluate, alarm")
    run.add_argument("--registry", required=True, help="registry directory")
    run.add_argument(
        "--mqtt",
        help="broker URL mqtt://[user:pass@]host:port "
        "(default $EARLYWARN_MQTT or mqtt://127.0.0.1:1883)",
    )
    run.add_argument(
        "--client-id", help="MQTT client id of the persistent session (default earlywarn-HOSTNAME)"
    )
    run.add_argument("--queue", type=_positive_int, help="hand-off queue capacity (default 10000)")
    run.add_argument("--lang", choices=LANGUAGES, default="zh", help="language of messages")
    run.add_argument(
        "--store", help=f"alert store file (default ${STORE_ENV} or ./{DEFAULT_STORE})"
    )
    add_storage_flags(run)
    add_api_flags(run)
    run.set_defaults(func=cmd_run)

    backtest = sub.add_parser("backtest", help="run recorded readings through the rules")
    backtest.add_argument("--registry", required=True, help="registry directory")
    backtest.add_argument(
        "--input",
        required=True,
        help="CSV with a sensor,ts,value header, or JSON lines with those keys",
    )
    backtest.add_argument(
        "--format",
        choices=("table", "jsonl"),
        default="table",
        help="events as console lines (default) or JSON lines",
    )
    backtest.add_argument(
        "--tick",
        type=_duration,
        default=10.0,
        help="simulated clock tick for offline rules (default 10s)",
    )
    backtest.add_argument("--lang", choices=LANGUAGES, default="zh", help="language of messages")
    backtest.set_defaults(func=cmd_backtest)

    check = sub.add_parser(
        "check-registry",
        help="validate a registry with routing.yaml, escalation.yaml and channels.yaml",
    )
    check.add_argument("registry", help="registry directory")
    check.set_defaults(func=cmd_check_registry)

    onboard_cli.add_parser(sub)
    api_cli.add_parser(sub)
    bridge_cli.add_parser(sub)
    alerter_cli.add_parser(sub)
    worker_cli.add_parser(sub)
    _add_alarm_commands(sub)
    return parser


def _alarms(command: alarms_cli.Command) -> Callable[[argparse.Namespace], int]:
    """A parser callback running an alarms_cli command on the standard streams of the moment
    (looked up at the call, so a test's captured streams are the ones written to)."""

    def call(args: argparse.Namespace) -> int:
        return alarms_cli.run(command, args, alarms_cli.Console(sys.stdout, sys.stderr))

    return call


def _add_alarm_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``alarms list|show|ack|shelve|unshelve|audit`` and ``maintenance add|end|list``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        metavar="PATH",
        help=f"alert store file (default ${STORE_ENV}, else ./{DEFAULT_STORE})",
    )
    common.add_argument(
        "--tz",
        metavar="ZONE",
        default=DEFAULT_TIMEZONE,
        help=f"time zone of times shown and typed (default {DEFAULT_TIMEZONE})",
    )
    who = argparse.ArgumentParser(add_help=False)
    who.add_argument(
        "--by", required=True, metavar="PERSON", help="who you are: a person id of the registry"
    )
    who.add_argument(
        "--registry",
        metavar="DIR",
        help="registry directory: check --by (and a window's target) against it",
    )
    alarm = argparse.ArgumentParser(add_help=False)
    alarm.add_argument("alarm", metavar="ID|REF", help="alarm id, or its number (12 or #12)")

    alarms = sub.add_parser("alarms", help="list, show, acknowledge, shelve alarms; the audit log")
    acts = alarms.add_subparsers(dest="action", required=True)

    lst = acts.add_parser(
        "list",
        parents=[common],
        help="alarms in the store, unacknowledged first",
        description="Alarms in the store. Default order: active unacknowledged, cleared "
        "unacknowledged, active acknowledged (each highest level first, then newest), then "
        "cleared ones, newest first.",
    )
    lst.add_argument(
        "--state",
        action="append",
        metavar="STATE",
        help=f"only these states (repeat or comma-separate): {', '.join(alarms_cli.STATE_CHOICES)}",
    )
    lst.add_argument("--enterprise", metavar="ID", help="only this enterprise id")
    lst.add_argument("--site", help="only this site (site id or enterprise/site)")
    lst.add_argument(
        "--level", metavar="LEVEL", help="minimum peak level (blue, yellow, orange, red)"
    )
    lst.add_argument(
        "--since",
        metavar="TIME",
        help="started since: a duration (24h) or a time (2026-11-22 08:00)",
    )
    lst.add_argument(
        "--drill",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="only drill alarms (--drill) or only real ones (--no-drill); default both",
    )
    lst.add_argument("--limit", type=_positive_int, default=50, help="at most N (default 50)")
    lst.add_argument(
        "--order",
        choices=("attention", "start"),
        default="attention",
        help="attention: unacknowledged first (default); start: newest first",
    )
    lst.add_argument("--format", choices=("table", "jsonl"), default="table")
    lst.set_defaults(func=_alarms(alarms_cli.cmd_list))

    show = acts.add_parser(
        "show",
        parents=[common, alarm],
        help="one alarm: transitions, who was called, acknowledgements, shelvings, steps",
    )
    show.set_defaults(func=_alarms(alarms_cli.cmd_show))

    ack = acts.add_parser(
        "ack", parents=[common, alarm, who], help="acknowledge an alarm; pending calls stop"
    )
    ack.add_argument("--comment", required=True, help="what was done or found")
    ack.set_defaults(func=_alarms(alarms_cli.cmd_ack))

    shelve = acts.add_parser(
        "shelve",
        parents=[common, alarm, who],
        help="hold an alarm's notifications (its sensor and rule) for at most 24 h",
    )
    shelve.add_argument(
        "--until",
        required=True,
        metavar="TIME",
        help="a duration up to 24h (8h), a clock time (08:00) or a time",
    )
    shelve.add_argument("--reason", required=True, help="why")
    shelve.set_defaults(func=_alarms(alarms_cli.cmd_shelve))

    unshelve = acts.add_parser(
        "unshelve", parents=[common, alarm, who], help="end an alarm's shelving now"
    )
    unshelve.set_defaults(func=_alarms(alarms_cli.cmd_unshelve))

    audit = acts.add_parser(
        "audit", parents=[common], help="print or verify the append-only audit log"
    )
    audit.add_argument("--alarm", metavar="ID|REF", help="only the rows of this alarm")
    audit.add_argument(
        "--after", type=_non_negative_int, default=0, help="only rows after this number"
    )
    audit.add_argument("--format", choices=("table", "jsonl"), default="table")
    audit.add_argument(
        "--verify",
        action="store_true",
        help="check the hash chain and the triggers; exit 1 listing the problems if any",
    )
    audit.add_argument(
        "--head", action="store_true", help="print the last row as SEQ:HASH, to keep elsewhere"
    )
    audit.add_argument(
        "--expect-head",
        metavar="SEQ:HASH",
        help="verify, and check that this row printed earlier by --head is still there unchanged",
    )
    audit.set_defaults(func=_alarms(alarms_cli.cmd_audit))

    dashboards_cli.add_parser(sub)
    simulate_cli.add_parser(sub)

    maint = sub.add_parser("maintenance", help="maintenance and drill windows")
    macts = maint.add_subparsers(dest="action", required=True)
    add = macts.add_parser(
        "add",
        parents=[common, who],
        help="hold notifications over a sensor, site or enterprise for a while (or a drill)",
    )
    add.add_argument("--scope", choices=("sensor", "site", "enterprise"), required=True)
    add.add_argument(
        "--target",
        required=True,
        help="enterprise, enterprise/site or enterprise/site/sensor, as --scope says",
    )
    add.add_argument(
        "--from",
        dest="start",
        metavar="TIME",
        help="start: a time, a clock time or a duration from now (default now)",
    )
    add.add_argument(
        "--until",
        required=True,
        metavar="TIME",
        help="end: a time, a clock time or a duration from the start",
    )
    add.add_argument("--reason", required=True, help="why (the works, the drill)")
    add.add_argument(
        "--drill",
        action="store_true",
        help="a drill window: alarms raised in it are drill alarms (site or enterprise only)",
    )
    add.add_argument(
        "--create", action="store_true", help="create the store if it does not exist yet"
    )
    add.set_defaults(func=_alarms(alarms_cli.cmd_maintenance_add))

    end = macts.add_parser("end", parents=[common, who], help="end a window now")
    end.add_argument("window", type=_positive_int, metavar="ID", help="the window's number")
    end.set_defaults(func=_alarms(alarms_cli.cmd_maintenance_end))

    mlist = macts.add_parser("list", parents=[common], help="windows in force or planned")
    mlist.add_argument("--all", action="store_true", help="every window, past ones too")
    mlist.set_defaults(func=_alarms(alarms_cli.cmd_maintenance_list))


def _duration(text: str) -> float:
    try:
        seconds = parse_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        msg = f"must be a positive duration, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return seconds


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a whole number of at least 1, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        msg = f"must be a whole number of at least 0, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        msg = f"must be a positive number, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    if args.command == "run" and args.verbose == 0:
        level = logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
