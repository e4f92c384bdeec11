"""``earlywarn alerter``: the distributed runner's alert store, escalation and storage.

Reads ``ew.alarms`` (the workers' alarm events) into the alert store and escalates as
``earlywarn run`` does; with ``--influx`` also stores ``ew.readings`` through the spool.
Settings come from flags, then ``EARLYWARN_KAFKA`` and the variables of ``earlywarn run``
(``EARLYWARN_STORE``, ``EARLYWARN_ACK_LISTEN``, ``EARLYWARN_LINK_SECRET``,
``EARLYWARN_INFLUX_URL``, ``EARLYWARN_SPOOL``, ``EARLYWARN_API_LISTEN`` …). Runs until SIGINT
or SIGTERM and prints its counters. Register with ``alerter_cli.add_parser(sub)`` in
``earlywarn.cli``.

Exit codes: 0 stopped cleanly; 2 bad settings.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from alerting.store import AlertStore
from earlywarn.alert_wiring import AlertingSetupError, open_alerting
from earlywarn.alerter import Alerter, AlerterSettings
from earlywarn.alerting_config import AlertingConfigError
from earlywarn.api.tokens import TokensError
from earlywarn.api_wiring import ApiSettings, onboarder_from_env, start_api
from earlywarn.channels_file import ChannelsError, load_channels
from earlywarn.clock import SystemClock
from earlywarn.messages import LANGUAGES
from earlywarn.registry import Registry, RegistryError, load_registry
from earlywarn.settings import RunSettings, StorageSettings
from earlywarn.storage_wiring import StorageRuntime
from earlywarn.store_path import DEFAULT_STORE, STORE_ENV, store_path

EXIT_OK, EXIT_USAGE = 0, 2
KAFKA_ENV = "EARLYWARN_KAFKA"
DEFAULT_KAFKA = "127.0.0.1:9092"
DEFAULT_GROUP = "earlywarn-alerter"

log = logging.getLogger("earlywarn.alerter")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``alerter`` to the CLI's subcommands."""
    alerter = sub.add_parser(
        "alerter",
        help="record the workers' alarms (Kafka ew.alarms) and escalate them; store readings",
        description="Read alarm events from Kafka's ew.alarms into the alert store, escalate "
        "until acknowledged, serve the acknowledgement links and the HTTP API; with --influx "
        "also store ew.readings in InfluxDB through the spool. Offsets are committed only "
        "after the store (or the spool) has the records. See docs/distributed.md.",
    )
    alerter.add_argument(
        "--kafka",
        metavar="HOST:PORT[,HOST:PORT]",
        help=f"Kafka bootstrap servers (default ${KAFKA_ENV} or {DEFAULT_KAFKA})",
    )
    alerter.add_argument("--registry", required=True, help="registry directory")
    alerter.add_argument(
        "--group",
        default=DEFAULT_GROUP,
        metavar="NAME",
        help=f"Kafka consumer group (default {DEFAULT_GROUP}; storage uses NAME-storage)",
    )
    alerter.add_argument(
        "--store", help=f"alert store file (default ${STORE_ENV} or ./{DEFAULT_STORE})"
    )
    alerter.add_argument("--lang", choices=LANGUAGES, default="zh", help="language of messages")
    alerter.add_argument(
        "--influx",
        metavar="URL",
        help="InfluxDB to store readings and alarm history in, e.g. http://127.0.0.1:8086 "
        "(default $EARLYWARN_INFLUX_URL; none: nothing is stored); token, org and bucket "
        "from $EARLYWARN_INFLUX_TOKEN, _ORG, _BUCKET",
    )
    alerter.add_argument(
        "--spool",
        metavar="FILE",
        help="the local spool points wait in for InfluxDB "
        "(default $EARLYWARN_SPOOL or ./earlywarn-spool.db)",
    )
    alerter.add_argument(
        "--api",
        metavar="HOST:PORT",
        help="serve the HTTP API here, e.g. 127.0.0.1:8781 (default $EARLYWARN_API_LISTEN; "
        "none: off); see docs/api.md",
    )
    alerter.add_argument(
        "--api-tokens",
        metavar="FILE",
        help="the API's tokens file (default $EARLYWARN_API_TOKENS); "
        "make one with `earlywarn api-token add`",
    )
    alerter.set_defaults(func=cmd_alerter)


def _fail(message: str) -> int:
    sys.stderr.write(f"earlywarn alerter: {message}\n")
    return EXIT_USAGE


def _registry(path: Path) -> Registry | None:
    try:
        return load_registry(path)
    except RegistryError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"{problem}\n")
        count = len(exc.problems)
        _fail(f"cannot use registry {path}: {count} problem{'s' if count != 1 else ''}")
        return None


def cmd_alerter(args: argparse.Namespace) -> int:
    """Check every setting, then run the alerter until SIGINT or SIGTERM; print the counters."""
    registry = _registry(Path(args.registry))
    if registry is None:
        return EXIT_USAGE
    kafka = args.kafka or os.environ.get(KAFKA_ENV) or DEFAULT_KAFKA
    if not args.group.strip():
        return _fail("--group must not be empty")
    run_settings = replace(RunSettings.from_env(), language=args.lang)
    try:
        api = ApiSettings.from_flags(args.api, args.api_tokens, registry)
    except TokensError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"{problem}\n")
        return EXIT_USAGE
    except ValueError as exc:
        return _fail(str(exc))
    clock = SystemClock()
    try:
        channels = load_channels(registry.path)
        alerting = open_alerting(registry, run_settings, clock, store_path(args.store), channels)
    except (ChannelsError, AlertingConfigError) as exc:
        for problem in exc.problems:
            sys.stderr.write(f"{problem}\n")
        return EXIT_USAGE
    except (AlertingSetupError, OSError) as exc:
        return _fail(str(exc))
    try:
        storage = _open_storage(args, registry, alerting.store)
    except (ValueError, OSError) as exc:
        alerting.close()
        return _fail(str(exc))
    settings = AlerterSettings(
        kafka=kafka,
        group=args.group,
        ack_listen=run_settings.ack_listen,
        escalate_s=run_settings.escalate_s,
        limits=run_settings.limits,
    )
    if args.verbose == 0:
        logging.getLogger().setLevel(logging.INFO)
    if args.verbose < 2:
        # aiokafka logs every failed connection attempt as an error while Kafka is away; the
        # alerter says the same once per retry in plain words. -vv shows them.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    alerter = Alerter(
        registry,
        settings,
        alerting.service,
        clock,
        ack_server=alerting.ack_server,
        storage=storage,
    )

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info(
            "alert store %s; channels %s; acknowledgement server %s; storage %s",
            alerting.store.path,
            ", ".join(sorted(channels)),
            settings.ack_listen or "off",
            storage.settings.influx_url if storage is not None else "off",
        )
        server = None
        if api is not None:
            onboarder = onboarder_from_env(registry, clock)
            server = await start_api(api, registry, None, alerting.service, onboarder)
        try:
            await alerter.run(stop)
        finally:
            if server is not None:
                await server.stop()

    try:
        asyncio.run(serve())
    finally:
        alerting.close()
    sys.stdout.write("earlywarn alerter stopped\n" + alerter.counters.format() + "\n")
    sys.stdout.flush()
    return EXIT_OK


def _open_storage(
    args: argparse.Namespace, registry: Registry, store: AlertStore
) -> StorageRuntime | None:
    """The storage runtime when an InfluxDB is configured, else ``None``."""
    settings = StorageSettings.from_env(influx_url=args.influx, spool_path=args.spool)
    if settings.influx_url is None:
        return None
    return StorageRuntime(settings, registry, SystemClock(), store)
