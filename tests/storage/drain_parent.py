"""A stand-in runner for the orphan test: starts the drain process, prints its pid, waits.

``python -m tests.storage.drain_parent SPOOL URL``; the test kills this process with SIGKILL
(so it cannot stop its child) and checks that the child ends by itself.
"""

from __future__ import annotations

import sys
import time

from earlywarn.settings import StorageSettings
from earlywarn.storage_drain import DrainProcess
from storage.spool import ReadingsAtLimit


def main() -> int:
    spool, url = sys.argv[1], sys.argv[2]
    drain = DrainProcess(StorageSettings(influx_url=url, spool_path=spool), ReadingsAtLimit.KEEP)
    drain.start()
    print(drain.pid, flush=True)
    time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
