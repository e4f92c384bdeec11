"""``earlywarn worker``: a rules worker of the distributed runner (Faust on Kafka).

Reads its settings from flags, then ``EARLYWARN_KAFKA`` and ``EARLYWARN_REGISTRY``; runs until
SIGINT or SIGTERM and prints its counters. Register with ``worker_cli.add_parser(sub)`` in
``earlywarn.cli``.

Exit codes: 0 stopped cleanly; 2 bad settings (an unreadable registry, say).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from earlywarn.cli_common import load_registry_or_report
from earlywarn.clock import SystemClock
from earlywarn.worker_app import Worker, WorkerSettings, run_worker

EXIT_OK, EXIT_USAGE = 0, 2

log = logging.getLogger("earlywarn.worker")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``worker`` to the CLI's subcommands."""
    worker = sub.add_parser(
        "worker",
        help="evaluate the rules for a share of ew.readings (Faust on Kafka), alarms to ew.alarms",
        description="Join the workers' consumer group on ew.readings, evaluate the rules of "
        "the sensors of the partitions this worker is given, keep their state in "
        "changelog-backed tables and send alarm events to ew.alarms. Start several on "
        "several machines to share the load. See docs/distributed.md.",
    )
    worker.add_argument(
        "--kafka",
        metavar="HOST:PORT[,HOST:PORT]",
        help="Kafka bootstrap servers (default $EARLYWARN_KAFKA or 127.0.0.1:9092)",
    )
    worker.add_argument(
        "--registry", help="registry directory (default $EARLYWARN_REGISTRY or ./registry)"
    )
    worker.add_argument(
        "--app-id",
        default="earlywarn",
        help="the workers' consumer group and the prefix of their changelog topics "
        "(default earlywarn; the same for every worker of one installation)",
    )
    worker.add_argument(
        "--partitions",
        type=int,
        default=8,
        help="partitions of ew.readings and of the state changelogs (default 8): at most "
        "this many workers share the load; the same for every worker and bridge topic",
    )
    worker.add_argument(
        "--data-dir",
        default="earlywarn-worker-data",
        help="Faust's local directory (default ./earlywarn-worker-data)",
    )
    worker.add_argument(
        "--batch", type=int, default=2000, help="most readings evaluated at once (default 2000)"
    )
    worker.add_argument(
        "--tick", type=float, default=1.0, help="seconds between offline checks (default 1)"
    )
    worker.add_argument(
        "--reload-every",
        type=float,
        default=10.0,
        help="seconds between looks at the registry directory for changes (default 10)",
    )
    worker.add_argument(
        "--session-timeout",
        type=float,
        default=30.0,
        help="seconds a silent worker keeps its partitions before the others take them "
        "(default 30)",
    )
    worker.add_argument(
        "--standby-replicas",
        type=int,
        default=0,
        help="other workers applying each partition's state as it changes (default 0: with "
        "the in-memory tables a failover reads the changelog whole anyway, so a standby "
        "only costs CPU)",
    )
    worker.add_argument(
        "--fetch-wait-ms",
        type=int,
        default=100,
        help="longest a fetch waits for new records (default 100; only matters when idle)",
    )
    worker.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of messages")
    worker.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run one worker until SIGINT or SIGTERM."""
    registry_dir = Path(args.registry or os.environ.get("EARLYWARN_REGISTRY", "registry"))
    if (
        args.partitions < 1
        or args.batch < 1
        or args.tick <= 0
        or args.session_timeout <= 0
        or args.fetch_wait_ms < 1
    ):
        sys.stderr.write(
            "earlywarn worker: --partitions, --batch and --fetch-wait-ms must be at least 1, "
            "--tick and --session-timeout above 0\n"
        )
        return EXIT_USAGE
    registry = load_registry_or_report(registry_dir, "worker")
    if registry is None:
        return EXIT_USAGE
    settings = WorkerSettings(
        kafka=args.kafka or os.environ.get("EARLYWARN_KAFKA", "127.0.0.1:9092"),
        registry=registry_dir,
        app_id=args.app_id,
        partitions=args.partitions,
        data_dir=Path(args.data_dir),
        batch=args.batch,
        tick_s=args.tick,
        reload_s=args.reload_every,
        session_timeout_s=args.session_timeout,
        standby_replicas=args.standby_replicas,
        language=args.lang,
        fetch_wait_ms=args.fetch_wait_ms,
    )
    worker = Worker(settings, registry, SystemClock())
    log.info(
        "worker %s on %s: %d sensors registered, %d partitions",
        settings.app_id,
        settings.kafka,
        len(registry.sensors),
        settings.partitions,
    )
    verbosity = logging.getLogger().getEffectiveLevel()
    loglevel = "info" if verbosity <= logging.INFO else "warning"

    def report(counters: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(counters, sort_keys=True, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    run_worker(worker, loglevel, report)
    if worker.fatal is not None:
        sys.stderr.write(f"earlywarn worker: {worker.fatal}\n")
        return EXIT_USAGE
    return EXIT_OK
