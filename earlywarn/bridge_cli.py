"""``earlywarn bridge``: the MQTT→Kafka bridge of the distributed runner.

Reads its settings from flags, then ``EARLYWARN_MQTT``, ``EARLYWARN_KAFKA``,
``EARLYWARN_SHARE_GROUP`` and ``EARLYWARN_CLIENT_ID``; runs until SIGINT or SIGTERM and prints
its counters. Register with ``bridge_cli.add_parser(sub)`` in ``earlywarn.cli``.

Exit codes: 0 stopped cleanly; 2 bad settings.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys

from ingest.kafka_bridge import BridgeSettings, KafkaBridge
from ingest.mqtt import parse_mqtt_url
from ingest.shared_subscription import shared_filters

EXIT_OK, EXIT_USAGE = 0, 2

log = logging.getLogger("earlywarn.bridge")


def default_bridge_id() -> str:
    """Stable per host, so a restarted bridge gets its own session (and its messages) back."""
    return f"earlywarn-bridge-{socket.gethostname()}"[:64]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bridge`` to the CLI's subcommands."""
    bridge = sub.add_parser(
        "bridge",
        help="forward MQTT readings to Kafka (ew.readings), acknowledging only what Kafka has",
        description="Subscribe to readings and device status with an MQTT 5 shared "
        "subscription and produce them to Kafka keyed by site; run several with the same "
        "--share-group to split the load. See docs/distributed.md.",
    )
    bridge.add_argument(
        "--mqtt",
        help="broker URL mqtt://[user:pass@]host:port "
        "(default $EARLYWARN_MQTT or mqtt://127.0.0.1:1883)",
    )
    bridge.add_argument(
        "--kafka",
        metavar="HOST:PORT[,HOST:PORT]",
        help="Kafka bootstrap servers (default $EARLYWARN_KAFKA or 127.0.0.1:9092)",
    )
    bridge.add_argument(
        "--share-group",
        metavar="NAME",
        help="MQTT share group of the bridges (default $EARLYWARN_SHARE_GROUP or earlywarn-bridge)",
    )
    bridge.add_argument(
        "--client-id",
        metavar="ID",
        help="MQTT client id of this bridge's persistent session, unique per bridge "
        "(default $EARLYWARN_CLIENT_ID or earlywarn-bridge-HOSTNAME)",
    )
    bridge.add_argument(
        "--kafka-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long Kafka may take to acknowledge a batch before it is retried (default 30)",
    )
    bridge.set_defaults(func=cmd_bridge)


def cmd_bridge(args: argparse.Namespace) -> int:
    """Run the bridge until SIGINT or SIGTERM; print the counters."""
    url = args.mqtt or os.environ.get("EARLYWARN_MQTT") or "mqtt://127.0.0.1:1883"
    group = args.share_group or os.environ.get("EARLYWARN_SHARE_GROUP") or "earlywarn-bridge"
    try:
        endpoint = parse_mqtt_url(url)
        shared_filters(group)
    except ValueError as exc:
        sys.stderr.write(f"earlywarn bridge: {exc}\n")
        return EXIT_USAGE
    if not args.kafka_timeout > 0:
        sys.stderr.write("earlywarn bridge: --kafka-timeout must be positive\n")
        return EXIT_USAGE
    settings = BridgeSettings(
        mqtt=endpoint,
        kafka=args.kafka or os.environ.get("EARLYWARN_KAFKA") or "127.0.0.1:9092",
        client_id=args.client_id or os.environ.get("EARLYWARN_CLIENT_ID") or default_bridge_id(),
        share_group=group,
        kafka_timeout_s=args.kafka_timeout,
    )
    if args.verbose == 0:
        logging.getLogger().setLevel(logging.INFO)
    if args.verbose < 2:
        # aiokafka logs every failed connection attempt as an error, ten a second while Kafka
        # is away; the bridge says the same once per retry in plain words. -vv shows them.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    bridge = KafkaBridge(settings)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await bridge.run(stop)

    asyncio.run(serve())
    sys.stdout.write("earlywarn bridge stopped\n" + bridge.counters.format() + "\n")
    sys.stdout.flush()
    return EXIT_OK
