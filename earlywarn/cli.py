"""The ``earlywarn`` command line: ``demo``, ``run`` and ``check-registry``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path

from alerting.console import ConsoleSink
from earlywarn import __version__
from earlywarn.backtest import run_backtest
from earlywarn.durations import parse_seconds
from earlywarn.messages import LANGUAGES
from earlywarn.registry import Registry, RegistryError, load_registry
from earlywarn.runner import EmbeddedRunner
from earlywarn.settings import RunSettings
from ingest.mqtt import parse_mqtt_url

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

log = logging.getLogger("earlywarn")


@contextlib.contextmanager
def example_registry() -> Iterator[Path]:
    """The example registry shipped inside the package (works from a wheel too)."""
    with resources.as_file(resources.files("earlywarn.examples") / "registry") as path:
        yield path


def _load(path: Path) -> Registry | None:
    try:
        return load_registry(path)
    except RegistryError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"registry {path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return None


def cmd_check_registry(args: argparse.Namespace) -> int:
    """Validate a registry; print a summary table, or every problem and exit 2."""
    registry = _load(Path(args.registry))
    if registry is None:
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
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the self-contained demo."""
    # amqtt (the embedded broker) is needed by the demo only; the service never loads it.
    from earlywarn.demo import run_demo  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        path = Path(args.registry) if args.registry else stack.enter_context(example_registry())
        registry = _load(path)
        if registry is None:
            return EXIT_USAGE
        try:
            return asyncio.run(
                run_demo(
                    registry,
                    sys.stdout,
                    speed=args.speed,
                    forever=args.forever,
                    language=args.lang,
                )
            )
        except KeyboardInterrupt:
            print("\ndemo stopped", file=sys.stderr)
            return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run the long-running embedded service until SIGINT or SIGTERM."""
    registry = _load(Path(args.registry))
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
    runner = EmbeddedRunner(registry, settings, sinks=[ConsoleSink(sys.stdout)])

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        summary = registry.summary()
        log.info("watching %s sensors of %s enterprises", summary.sensors, summary.enterprises)
        counters = await runner.run(stop)
        print("earlywarn stopped\n" + counters.format(), flush=True)

    asyncio.run(serve())
    return EXIT_OK


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run recorded readings through the rules on a simulated clock."""
    registry = _load(Path(args.registry))
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

    check = sub.add_parser("check-registry", help="validate a registry and summarise it")
    check.add_argument("registry", help="registry directory")
    check.set_defaults(func=cmd_check_registry)
    return parser


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
