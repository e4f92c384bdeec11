"""A Faust app consuming one topic through :class:`earlywarn.worker_consumer.BulkApp`, for
``test_worker_consumer.py``: it logs every record it is handed and holds the batch while a
file exists, so the test can watch what Faust commits meanwhile; while a third file exists it
refuses every batch (:class:`BatchNotTakenError`) after logging it and a line ``R``.

Run as ``python -m tests.distributed.bulk_app KAFKA TOPIC PARTITIONS LOG HOLD REFUSE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faust

from earlywarn.worker_consumer import BatchNotTakenError, BulkApp

GROUP = "bulk-test"


def main(argv: Sequence[str]) -> None:
    kafka, topic_name, partitions, log_path, hold_path, refuse_path = argv
    log, hold, refuse = Path(log_path), Path(hold_path), Path(refuse_path)
    app = BulkApp(
        GROUP,
        broker=f"kafka://{kafka}",
        store="memory://",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=0.2,
        broker_session_timeout=6.0,
        broker_heartbeat_interval=0.6,
        broker_max_poll_records=50,
        topic_replication_factor=1,
    )
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
    topic = app.topic(topic_name, partitions=int(partitions), **raw)

    async def handle(records: Sequence[Any]) -> None:
        with log.open("a") as out:
            out.writelines(f"{r.partition} {r.offset}\n" for r in records)
        while hold.exists():
            await asyncio.sleep(0.05)
        if refuse.exists():
            with log.open("a") as out:
                out.write("R\n")
            raise BatchNotTakenError("the test refuses it")

    app.bulk_topic(topic, handle)
    worker = faust.Worker(app, loglevel="info", quiet=True)
    with contextlib.suppress(SystemExit):
        worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
