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
import sys
from dataclasses import replace
from pathlib import Path

from earlywarn.alert_wiring import AlertingSetupError, open_alerting
from earlywarn.alerter import Alerter, AlerterSettings
from earlywarn.alerting_config import AlertingConfigError
from earlywarn.api_wiring import onboarder_from_env, start_api
from earlywarn.channels_file import ChannelsError, load_channels
from earlywarn.cli_common import (
    add_api_flags,
    add_storage_flags,
    api_settings,
    load_registry_or_report,
    open_storage,
    stop_on_signals,
)
from earlywarn.clock import SystemClock
from earlywarn.messages import LANGUAGES
from earlywarn.settings import RunSettings
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
    add_storage_flags(alerter)
    add_api_flags(alerter)
    alerter.set_defaults(func=cmd_alerter)


def _fail(message: str) -> int:
    sys.stderr.write(f"earlywarn alerter: {message}\n")
    return EXIT_USAGE


def cmd_alerter(args: argparse.Namespace) -> int:
    """Check every setting, then run the alerter until SIGINT or SIGTERM; print the counters."""
    registry = load_registry_or_report(Path(args.registry), "alerter")
    if registry is None:
        return EXIT_USAGE
    kafka = args.kafka or os.environ.get(KAFKA_ENV) or DEFAULT_KAFKA
    if not args.group.strip():
        return _fail("--group must not be empty")
    run_settings = replace(RunSettings.from_env(), language=args.lang)
    api = api_settings(args, registry)
    if api is False:
        return EXIT_USAGE
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
        storage = open_storage(args, registry, alerting.store)
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
        stop = stop_on_signals()
        log.info(
            "alert store %s; channels %s; acknowledgement server %s; storage %s",
            alerting.store.path,
            ", ".join(sorted(channels)),
            settings.ack_listen or "off",
            storage.settings.influx_url if storage is not None else "off",
        )
        server = None
        if api:
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
