"""A drainer process for the crash test: drains a spool into a server, then exits 0.

``python -m tests.storage.drain_child SPOOL URL [--hang-after N]``. With ``--hang-after N``
the N-th successful write is followed by ``hanging`` on stdout and a sleep *before* the
drainer can remove the batch from the spool: the test kills the process exactly in the window
where a batch is in the server but still in the spool.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from storage.drain import Drainer
from storage.spool import Spool
from storage.writer import InfluxWriter, WriteResult


class HangAfter:
    """Passes writes through; after the N-th success, says so and waits to be killed."""

    def __init__(self, inner: InfluxWriter, after: int) -> None:
        self.inner = inner
        self.after = after
        self.successes = 0

    def write(self, lines: Sequence[str], /) -> WriteResult:
        result = self.inner.write(lines)
        if result.ok:
            self.successes += 1
            if self.successes == self.after:
                print("hanging", flush=True)
                time.sleep(3600)
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("spool")
    parser.add_argument("url")
    parser.add_argument("--hang-after", type=int, default=0)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    writer = InfluxWriter(args.url, "token", "county", "earlywarn", timeout_s=5)
    sink = HangAfter(writer, args.hang_after) if args.hang_after else writer
    with Spool(args.spool, max_bytes=10**10) as spool:
        drainer = Drainer(spool, sink, batch_lines=args.batch, idle_s=0.0)
        print("started", flush=True)
        while spool.depth() > 0:
            time.sleep(drainer.step())
    print("drained", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
