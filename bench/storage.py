"""Storage benchmark: points/s into the spool and points/s drained into a real server.

A benchmark that prints figures; it asserts nothing about speed. Targets, printed next to the
figures: >= 100,000 points/s appended to the spool, >= 50,000 points/s drained.

1. **Encode.** ``schema.reading_line`` for every point (the caller's cost, not the spool's;
   shown so the total per point is visible).
2. **Spool.** The encoded lines appended in batches of ``--append-batch`` (1,000) reading
   lines, one transaction each, with the spool's real settings (WAL, ``synchronous=FULL``: an
   fsync per batch). The figure is points/s over the whole run, fsyncs included.
3. **Drain.** A real VictoriaMetrics (``tests/services/victoria.py``, its data in a temporary
   directory) is started, and a :class:`storage.drain.Drainer` sends the whole spool through
   the real :class:`storage.writer.InfluxWriter` (influxdb-client, HTTP on loopback) in
   batches of ``--drain-batch`` (5,000) lines until it is empty: points/s from the first peek
   to the last removal, then the server's count of received samples checks nothing was lost.
   ``--no-gzip`` sends plain bodies (on loopback gzip costs CPU and saves nothing).

Run: ``.venv/bin/python -m bench.storage [--points 200000] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from earlywarn.model import Reading, Sensor
from storage import schema
from storage.drain import Drainer
from storage.spool import Klass, Spool
from storage.writer import InfluxWriter
from tests.services.victoria import VictoriaMetrics

T0 = 1_700_000_000_000


def sensors(n: int) -> list[Sensor]:
    return [
        Sensor(
            uid=f"chem-{i % 20}/site-{i % 100}/PT-{i}",
            enterprise=f"chem-{i % 20}",
            site=f"site-{i % 100}",
            id=f"PT-{i}",
            kind="pressure",
            name=f"压力 {i}",
            unit="MPa",
            range=(0.0, 4.0),
            interval_s=1.0,
            device=f"PT-{i}",
            channel=None,
            rules=(),
        )
        for i in range(n)
    ]


def encode(points: int, fleet: list[Sensor]) -> tuple[list[str], float]:
    started = time.perf_counter()
    lines = [
        schema.reading_line(
            fleet[i % len(fleet)],
            Reading("", T0 + (i // len(fleet)) * 1000, round(1.0 + (i % 977) * 0.001, 3)),
        )
        for i in range(points)
    ]
    return lines, time.perf_counter() - started


def spool_in(spool: Spool, lines: list[str], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(lines), batch):
        spool.append(lines[start : start + batch], klass=Klass.READING)
    return time.perf_counter() - started


def drain(spool: Spool, url: str, batch: int, gzip: bool) -> tuple[float, int]:
    with InfluxWriter(url, "token", "county", "earlywarn", gzip=gzip) as writer:
        drainer = Drainer(spool, writer, batch_lines=batch)
        started = time.perf_counter()
        while spool.depth():
            delay = drainer.step()
            if delay and spool.depth():  # after the last batch it returns its idle wait
                time.sleep(delay)
        return time.perf_counter() - started, drainer.stats.requests


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f} points/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--sensors", type=int, default=2_000)
    parser.add_argument("--append-batch", type=int, default=1_000)
    parser.add_argument("--drain-batch", type=int, default=5_000)
    parser.add_argument("--no-gzip", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the append and drain")
    args = parser.parse_args()
    profiler = cProfile.Profile() if args.profile else None

    lines, encode_s = encode(args.points, sensors(args.sensors))
    size = sum(len(line) for line in lines)
    print(f"{args.points:,} reading points, {size / args.points:.0f} bytes per line")
    print(f"encode (schema.reading_line)  {rate(args.points, encode_s)}")

    with (
        tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp,
        Spool(Path(tmp) / "spool.db", max_bytes=10**11) as spool,
    ):
        if profiler:
            profiler.enable()
        append_s = spool_in(spool, lines, args.append_batch)
        if profiler:
            profiler.disable()
        print(
            f"spool append, batches of {args.append_batch:,}  {rate(args.points, append_s)}"
            f"   (target >= 100,000; {append_s / (args.points / args.append_batch) * 1e3:.2f}"
            " ms per batch, fsync included)"
        )
        server = VictoriaMetrics(Path(tmp) / "vm")
        server.start()
        try:
            if profiler:
                profiler.enable()
            drain_s, requests = drain(spool, server.url, args.drain_batch, not args.no_gzip)
            if profiler:
                profiler.disable()
            server.flush()
            received = server.metric('vm_rows_inserted_total{type="influx"}')
        finally:
            server.stop()
        print(
            f"drain to VictoriaMetrics, batches of {args.drain_batch:,}"
            f"{' (no gzip)' if args.no_gzip else ' (gzip)'}  {rate(args.points, drain_s)}"
            f"   (target >= 50,000; {requests} requests)"
        )
        print(
            f"server received {received:,.0f} samples"
            f" (2 fields x {args.points:,} points = {2 * args.points:,})"
        )
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
