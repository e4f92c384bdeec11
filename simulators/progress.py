"""A progress line on stderr that shows simulated time, so whoever runs a four-hour
scenario at speed 60 sees where it is: a line rewritten in place on a terminal, a line per
tenth of the run otherwise (a log file should not fill with carriage returns)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import TextIO

REFRESH_S = 0.25


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return False


def _span(ms: int) -> str:
    minutes = ms // 60_000
    return f"{minutes // 60}h{minutes % 60:02d}m"


class Progress:
    """Shows simulated time between ``start_ms`` and ``end_ms`` as messages go out."""

    def __init__(
        self,
        err: TextIO,
        start_ms: int,
        end_ms: int,
        utc_offset_s: int,
        *,
        now: Callable[[], float] = time.monotonic,
        tty: bool | None = None,
    ) -> None:
        self.err = err
        self.start_ms, self.end_ms = start_ms, end_ms
        self.zone = timezone(timedelta(seconds=utc_offset_s))
        self.now = now
        self.tty = _isatty(err) if tty is None else tty
        self.began = now()
        self._shown_at = -REFRESH_S
        self._tenth = -1

    def line(self, t_ms: int, count: int) -> str:
        """The text shown for simulated time ``t_ms`` after ``count`` messages."""
        span = max(self.end_ms - self.start_ms, 1)
        done = min(max(t_ms - self.start_ms, 0), span)
        local = datetime.fromtimestamp(t_ms / 1000, UTC).astimezone(self.zone)
        elapsed = self.now() - self.began
        rate = f"  {done / 3_600_000 / elapsed:.1f} simulated h/s" if elapsed > 0.5 else ""
        bar = "#" * (done * 20 // span)
        return (
            f"[{bar:<20}] {done * 100 // span:3d}%  simulated {local:%Y-%m-%d %H:%M:%S} "
            f"(+{_span(done)} of {_span(span)})  {count} messages{rate}"
        )

    def update(self, t_ms: int, count: int) -> None:
        """Called for every message; writes only now and then."""
        if self.tty:
            real = self.now()
            if real - self._shown_at >= REFRESH_S:
                self._shown_at = real
                self.err.write("\r" + self.line(t_ms, count) + "\x1b[K")
                self.err.flush()
            return
        tenth = (t_ms - self.start_ms) * 10 // max(self.end_ms - self.start_ms, 1)
        if tenth > self._tenth:
            self._tenth = tenth
            self.err.write(self.line(t_ms, count) + "\n")
            self.err.flush()

    def done(self, t_ms: int, count: int) -> None:
        """The final line."""
        self.err.write(("\r" if self.tty else "") + self.line(t_ms, count) + "\n")
        self.err.flush()
