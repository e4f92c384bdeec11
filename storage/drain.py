"""The drainer: moves lines from the spool to InfluxDB, in order, until the spool is empty.

One :meth:`Drainer.step` sends one batch from the head of the spool and says how long to wait
before the next: 0 while more is waiting, ``idle_s`` when the spool is empty, a backoff
(doubling from ``min_backoff_s`` to ``max_backoff_s``, reset on success) or the server's
``Retry-After`` after a failure. :meth:`Drainer.run` loops ``step`` in a thread and waits with
``stop.wait(delay)``, so it stops at once and tests drive ``step`` with no sleeping at all.

Lines leave the spool only after the server accepted them. A crash between the server's
answer and the removal sends that batch again on restart: the same points (same series, same
timestamp, same values) a second time, which InfluxDB treats as an overwrite with identical
values, so nothing changes. That is the one duplicate the design allows, and it is harmless.

A batch the server rejects as bad (400/413/422) is bisected: each half is sent alone, and a
rejected half is split again until single lines remain; those are moved to the spool's
``rejected`` table with the server's reason and logged. Every good line still goes through. If
the server accepted part of a rejected batch (InfluxDB's partial writes), re-sending those
points during the bisection is again the harmless overwrite.

Logging says what changed (down, up again, backlog drained, misconfigured), with a reminder
every ``remind_s`` while it lasts; the individual retries are DEBUG.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from storage.spool import Spool
from storage.writer import LineSink, Outcome, WriteResult

__all__ = ["DrainStats", "Drainer", "SinkState", "StopSignal"]

log = logging.getLogger(__name__)

_OK = WriteResult(Outcome.OK)
_SHOWN = 200


class StopSignal(Protocol):
    """A ``threading.Event`` or a ``multiprocessing`` one: all :meth:`Drainer.run` needs."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class SinkState(enum.StrEnum):
    """How the server looks from here."""

    UP = "up"
    DOWN = "down"
    MISCONFIGURED = "misconfigured"


@dataclass(frozen=True, slots=True)
class DrainStats:
    """Counters of one drainer, for the runner's status line."""

    written: int
    retries: int
    rejected: int
    requests: int
    backlog: int
    state: SinkState
    last_error: str


class Drainer:
    """Sends the spool's lines through a :class:`~storage.writer.LineSink`, oldest first."""

    def __init__(
        self,
        spool: Spool,
        sink: LineSink,
        *,
        batch_lines: int = 5000,
        now: Callable[[], float] = time.monotonic,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        idle_s: float = 1.0,
        max_retry_after_s: float = 3600.0,
        remind_s: float = 600.0,
        target: str | None = None,
    ) -> None:
        if batch_lines < 1 or min_backoff_s <= 0 or max_backoff_s < min_backoff_s:
            msg = "batch_lines must be ≥ 1 and 0 < min_backoff_s ≤ max_backoff_s"
            raise ValueError(msg)
        self.spool = spool
        self.sink = sink
        self.batch_lines = batch_lines
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.idle_s = idle_s
        self.max_retry_after_s = max_retry_after_s
        self.remind_s = remind_s
        self.target = target or str(sink)
        self._now = now
        self._backoff = min_backoff_s
        self._state = SinkState.UP
        self._since = now()
        self._reminded = self._since
        self._draining_backlog = False
        self._written = self._retries = self._rejected = self._requests = 0
        self._backlog = 0
        self._last_error = ""
        self._settled = 0

    @property
    def stats(self) -> DrainStats:
        """Counters since start; ``backlog`` is the spool's depth after the last step."""
        return DrainStats(
            written=self._written,
            retries=self._retries,
            rejected=self._rejected,
            requests=self._requests,
            backlog=self._backlog,
            state=self._state,
            last_error=self._last_error,
        )

    def run(self, stop: StopSignal, report: Callable[[DrainStats], None] | None = None) -> None:
        """Drain until ``stop`` is set; survives any error of a step (logged, retried).

        ``report`` is given the counters after every step that changed them (the drain
        process sends them to the runner).
        """
        last: DrainStats | None = None
        while not stop.is_set():
            try:
                delay = self.step()
            except Exception as exc:
                # The spool's disk or file failing is not a reason to stop draining for ever.
                self._last_error = f"{type(exc).__name__}: {exc}"
                delay = self._next_backoff()
                log.exception("Draining the spool failed; trying again in %.0f s", delay)
            if report is not None and (stats := self.stats) != last:
                report(stats)
                last = stats
            if delay > 0 and stop.wait(delay):
                break

    def step(self) -> float:
        """Send one batch; return the seconds to wait before the next step."""
        batch = self.spool.peek(self.batch_lines)
        if not batch:
            self._backlog = 0
            if self._draining_backlog:
                self._draining_backlog = False
                log.info("Spool drained: every point is in %s", self.target)
            return self.idle_s
        self._settled = 0
        result = self._send(batch.lines)
        if result.outcome is Outcome.REJECTED:
            result = self._bisect(batch.ids, batch.lines, result)
        if not result.ok:
            if self._settled:
                self.spool.remove_through(self._settled)
            self._backlog = self.spool.depth()
            return self._failed(result)
        self.spool.remove(batch)
        # Here, not in the appender's commits: this thread can afford the copy and its fsync.
        self.spool.checkpoint()
        self._backlog = self.spool.depth()
        self._recovered()
        if self._backlog == 0:
            if self._draining_backlog:
                self._draining_backlog = False
                log.info("Spool drained: every point is in %s", self.target)
            return self.idle_s
        if len(batch) == self.batch_lines:
            self._draining_backlog = True
        return 0.0

    # --- sending and isolating bad lines -------------------------------------------------

    def _send(self, lines: Sequence[str]) -> WriteResult:
        self._requests += 1
        result = self.sink.write(lines)
        if result.ok:
            self._written += len(lines)
        return result

    def _bisect(self, ids: Sequence[int], lines: Sequence[str], result: WriteResult) -> WriteResult:
        """Settle ``lines`` the server rejected together: send halves, reject single lines.

        Returns ``ok`` when every line was written or rejected; otherwise the failure that
        interrupted it, with ``self._settled`` the last id of the settled prefix (halves are
        settled left to right, so what is settled is always a prefix).
        """
        if len(lines) == 1:
            self._reject(ids[0], lines[0], result)
            self._settled = ids[0]
            return _OK
        mid = len(lines) // 2
        for part in (slice(0, mid), slice(mid, None)):
            answer = self._send(lines[part])
            if answer.outcome is Outcome.REJECTED:
                answer = self._bisect(ids[part], lines[part], answer)
            if not answer.ok:
                return answer
            self._settled = ids[part][-1]
        return _OK

    def _reject(self, line_id: int, line: str, result: WriteResult) -> None:
        reason = f"HTTP {result.status}: {result.reason}" if result.status else result.reason
        self.spool.reject([(line_id, reason)])
        self._rejected += 1
        shown = line if len(line) <= _SHOWN else line[:_SHOWN] + "…"
        log.warning(
            "%s refused a line for good (%s); it is kept in the spool's rejected table: %s",
            self.target,
            reason,
            shown,
        )

    # --- state changes and waiting -------------------------------------------------------

    def _next_backoff(self) -> float:
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self.max_backoff_s)
        return delay

    def _failed(self, result: WriteResult) -> float:
        self._retries += 1
        reason = f"HTTP {result.status}: {result.reason}" if result.status else result.reason
        self._last_error = reason
        if result.outcome is Outcome.MISCONFIGURED:
            delay = self.max_backoff_s
            state = SinkState.MISCONFIGURED
        else:
            delay = self._next_backoff()
            state = SinkState.DOWN
        if result.after_s is not None:
            delay = min(max(result.after_s, self.min_backoff_s), self.max_retry_after_s)
        now = self._now()
        waiting = f"{self._backlog:,}"
        if state is not self._state:
            self._state, self._since, self._reminded = state, now, now
            self._log_failure(state, reason, waiting, delay, 0.0)
        elif now - self._reminded >= self.remind_s:
            self._reminded = now
            self._log_failure(state, reason, waiting, delay, now - self._since)
        else:
            log.debug("%s: retry failed (%s); retrying in %.0f s", self.target, reason, delay)
        return delay

    def _log_failure(
        self,
        state: SinkState,
        reason: str,
        waiting: str,
        delay: float,
        for_s: float,
    ) -> None:
        lasting = f" for {for_s:.0f} s" if for_s else ""
        if state is SinkState.MISCONFIGURED:
            log.error(
                "%s refuses our writes%s (%s): check the token (it needs write permission), the"
                " org and the bucket names, and that the URL is InfluxDB's. %s points are kept"
                " in the spool; trying again every %.0f s",
                self.target,
                lasting,
                reason,
                waiting,
                delay,
            )
        elif reason.startswith("HTTP"):
            log.warning(
                "%s is not taking writes%s (%s); %s points waiting in the spool; retrying in"
                " %.0f s",
                self.target,
                lasting,
                reason,
                waiting,
                delay,
            )
        else:
            log.warning(
                "%s unreachable%s (%s); %s points waiting in the spool; retrying in %.0f s",
                self.target,
                lasting,
                reason,
                waiting,
                delay,
            )

    def _recovered(self) -> None:
        self._backoff = self.min_backoff_s
        if self._state is SinkState.UP:
            return
        now = self._now()
        log.info(
            "%s is taking writes again after %.0f s; %s points to send",
            self.target,
            now - self._since,
            f"{self._backlog:,}",
        )
        self._state, self._since = SinkState.UP, now
        self._draining_backlog = self._backlog > 0
