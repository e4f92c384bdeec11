"""The drain to InfluxDB in a process of its own, beside the runner.

Sending the spool (peeking thousands of lines, the HTTP client, gzip, deleting what was sent,
checkpointing the SQLite log) is work for the CPU and the disk that has nothing to do with
alarms. In the runner's process it competed with the event loop for the interpreter: on a
2-core machine ``bench/e2e.py --storage`` measured the drain thread at 7 % of a core and
the runner, already near its limit at 5,000 readings/s, tipping over (see
``docs/storage.md``, "Cost"). Here it runs in a child process that opens the same spool file
(SQLite serialises the two processes; the runner appends, the child removes). A crash or hang
of the HTTP client stays in the child: the runner logs it and starts a new one.

The child sends its :class:`~storage.drain.DrainStats` back over a pipe after every step that
changed them; the runner reads them each second for its status and final summary.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess

from earlywarn.settings import StorageSettings
from storage.drain import Drainer, DrainStats
from storage.spool import ReadingsAtLimit, Spool
from storage.writer import InfluxWriter

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
"""The command line's format, so the child's lines read like the runner's."""

RESTART_AFTER_S = 5.0
"""A drain process that died is started again after this long (not in a tight loop)."""


def _main(
    settings: StorageSettings,
    policy: ReadingsAtLimit,
    out: Connection,
    log_level: int,
) -> None:
    """The child: drain until SIGTERM, reporting counters on ``out``.

    SIGTERM rather than a shared ``multiprocessing.Event``: setting such an event waits for
    every process that ever waited on it, so after a killed child it would hang the runner's
    stop for ever.
    """
    logging.basicConfig(level=log_level, format=LOG_FORMAT)
    stop = _OrphanAwareStop(os.getppid())
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    # Ctrl-C reaches the whole process group; the runner decides when the drain stops, after
    # its last readings are in the spool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spool = Spool(settings.spool_path, max_bytes=settings.spool_max_bytes, readings_at_limit=policy)
    sink = InfluxWriter(
        settings.influx_url or "",
        settings.influx_token,
        settings.influx_org,
        settings.influx_bucket,
    )
    try:
        Drainer(spool, sink).run(stop, out.send)
    finally:
        sink.close()
        spool.close()
        out.close()


class _OrphanAwareStop(threading.Event):
    """Set by SIGTERM, and also when the runner is gone (killed with SIGKILL, it could not
    stop its child; the child must not drain for ever on its own)."""

    def __init__(self, parent: int) -> None:
        super().__init__()
        self.parent = parent

    def is_set(self) -> bool:
        return super().is_set() or os.getppid() != self.parent

    def wait(self, timeout: float | None = None) -> bool:
        """Wait in slices of a second, so an orphan notices within one, even in a backoff."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if left <= 0:
                return False
            super().wait(left)
        return True


class DrainProcess:
    """Starts, watches and stops the drain child; holds its last counters."""

    def __init__(
        self,
        settings: StorageSettings,
        policy: ReadingsAtLimit,
        restart_after_s: float = RESTART_AFTER_S,
    ) -> None:
        if settings.influx_url is None:
            msg = "the drain needs an InfluxDB URL"
            raise ValueError(msg)
        self.settings = settings
        self.policy = policy
        self.stats: DrainStats | None = None
        self.restarts = 0
        self.restart_after_s = restart_after_s
        self._ctx = mp.get_context("spawn")  # never fork a process that has threads
        self._stopping = False
        self._proc: SpawnProcess | None = None
        self._conn: Connection | None = None
        self._died_at: float | None = None

    def start(self) -> None:
        """Start the child (spawned: a fresh interpreter, about half a second)."""
        receive, send = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=_main,
            args=(self.settings, self.policy, send, logging.getLogger().level),
            name="earlywarn-drain",
            daemon=True,
        )
        proc.start()
        send.close()  # the child holds the sending end; EOF here when it is gone
        if self._conn is not None:
            self._conn.close()  # a previous child's
        self._proc, self._conn = proc, receive

    def poll(self, now_s: float) -> None:
        """Read the counters sent since the last call; start a new child if this one died."""
        self._receive()
        proc = self._proc
        if proc is None or proc.is_alive() or self._stopping:
            return
        if self._died_at is None:
            self._died_at = now_s
            log.error(
                "the storage drain process ended unexpectedly (exit code %s); points stay in "
                "the spool, a new drain starts in %.0f s",
                proc.exitcode,
                self.restart_after_s,
            )
        elif now_s - self._died_at >= self.restart_after_s:
            self._died_at = None
            self.restarts += 1
            self.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Let the child finish its request and end; kill it if it does not."""
        self._stopping = True
        proc = self._proc
        if proc is None:
            return
        if proc.is_alive():
            proc.terminate()  # SIGTERM: the child ends after its current request
        proc.join(timeout_s)
        if proc.is_alive():
            log.warning("the storage drain did not stop within %.0f s; killing it", timeout_s)
            proc.kill()
            proc.join(5.0)
        self._receive()
        if self._conn is not None:
            self._conn.close()

    @property
    def pid(self) -> int | None:
        """The child's process id (tests kill it)."""
        return self._proc.pid if self._proc is not None else None

    def _receive(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            while conn.poll():
                self.stats = conn.recv()
        except (EOFError, OSError):
            pass  # the child is gone; poll() notices and restarts it
