"""Sliding sample windows shared by the kinds that judge recent readings, not just the last.

A window is a tuple of ``(ts_ms, value)`` samples, oldest first, with strictly increasing
timestamps (rules drop stale readings before they get here). :func:`admit` adds a reading and
forgets what fell out of the window; :func:`fit` gives the least-squares trend line. The
helpers are pure and keep nothing of their own, so a rule's state stays one frozen value.

A window covers ``[ts - window_ms, ts]`` of its newest reading: both ends included, so readings
every 5 minutes put 13 samples in a 1 h window and the fit spans the full hour.

Memory is bounded: a window keeps at most ``max_samples`` (default :data:`MAX_SAMPLES`). When
readings come faster than ``window_ms / (max_samples - 2)`` apart, the newest sample is
provisional: a reading that follows it within that spacing replaces it, so the kept samples are
evenly spread over the window (one every spacing, plus the newest) instead of crowding its
newest end. Slower sensors keep every reading.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rules.latch import LatchState

MAX_SAMPLES = 512
"""Default cap on the samples one window keeps (about 15 KB of JSON at most)."""

HOUR_MS = 3_600_000
"""Milliseconds in an hour: trends are given per hour."""

Sample = tuple[int, float]
"""One reading: timestamp (ms since the epoch, UTC) and value."""

Samples = tuple[Sample, ...]
"""A window's samples, oldest first, timestamps strictly increasing."""


def admit(
    samples: Samples, ts_ms: int, value: float, window_ms: int, max_samples: int = MAX_SAMPLES
) -> Samples:
    """Add a reading newer than every sample; drop samples older than ``ts_ms - window_ms``.

    At most ``max_samples`` are kept (see the module notes on thinning).
    """
    if max_samples < 3:  # the oldest, one spaced sample, the newest
        msg = "a window must keep at least 3 samples"
        raise ValueError(msg)
    first = bisect.bisect_left(samples, ts_ms - window_ms, key=lambda s: s[0])
    kept = list(samples[first:])
    spacing = -(-window_ms // (max_samples - 2))  # ceiling
    if len(kept) >= 2 and kept[-1][0] - kept[-2][0] < spacing:
        kept[-1] = (ts_ms, value)
    else:
        kept.append((ts_ms, value))
    return tuple(kept[-max_samples:])


@dataclass(frozen=True, slots=True)
class Fit:
    """A least-squares trend line through a window's samples."""

    slope_per_hour: float
    """Change of the value per hour."""
    latest: float
    """The line's value at the newest sample's time (the smoothed current value)."""
    points: int
    """How many samples the line was fitted to."""


def fit(samples: Sequence[Sample]) -> Fit | None:
    """Fit ``value = a + b·t`` by least squares; ``None`` with fewer than two samples.

    Timestamps are taken relative to the newest sample and centred on an integer next to
    their mean, so every time quantity is an exact integer; values are taken relative to the
    newest value. So the slope keeps its precision at epoch timestamps and large offsets (a
    water level of 1 203.47 m moving by centimetres): the spread of the times is exact, and
    the float terms summed are small. With ``e`` the centred times (summing to ``E``, less
    than ``n``) and ``dv`` the value deviations (summing to ``D``), the exact identities
    ``Σ(t - t̄)² = Σe² - E²/n`` and ``Σ(t - t̄)(v - v̄) = Σe·dv - E·D/n`` give the sums.

    The arithmetic is spelled out on purpose: besides the exact integers, the float sums are
    plain ones in sample order, oldest first, starting from ``0.0`` — about
    ``len(samples)·2⁻⁵³`` relative precision for a steady trend, well inside the 12 digits
    :func:`significant` keeps. A fixed order of IEEE operations is what lets the columnar lanes
    (:mod:`rules.lanes.trend`) reproduce this fit bit for bit over thousands of windows at once;
    ``math.fsum`` (or ``sum``, compensated since Python 3.12) could not be vectorised exactly.
    """
    n = len(samples)
    if n < 2:
        return None
    newest, last = samples[-1]
    total = 0
    for ts, _ in samples:
        total += ts
    total -= n * newest  # the sum of the times relative to the newest
    centre = total // n
    spread = total - n * centre
    squares = 0
    sed = 0.0
    sdv = 0.0
    for ts, v in samples:
        e = ts - newest - centre
        dv = v - last
        squares += e * e
        sed += e * dv
        sdv += dv
    sxx = squares - spread * spread / n
    if sxx <= 0:
        return None
    sxy = sed - spread * sdv / n
    t_mean = total / n
    v_mean = last + sdv / n
    slope_per_ms = sxy / sxx
    return Fit(
        slope_per_hour=sxy * HOUR_MS / sxx,
        latest=v_mean + slope_per_ms * (0 - t_mean),
        points=n,
    )


def significant(value: float, digits: int = 12) -> float:
    """``value`` rounded to ``digits`` significant digits (infinities unchanged).

    Signals computed from readings (a slope, minutes to a target) are rounded so an exactly
    linear series meets a set-point equal to its slope despite binary rounding.
    """
    if not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def samples_to_list(samples: Iterable[Sample]) -> list[list[Any]]:
    """Plain JSON-able ``[[ts_ms, value], …]``."""
    return [[ts, v] for ts, v in samples]


def samples_from_list(data: Iterable[Sequence[Any]]) -> Samples:
    """Inverse of :func:`samples_to_list`."""
    return tuple((int(ts), float(v)) for ts, v in data)


@dataclass(frozen=True, slots=True)
class TrendState:
    """The state of a trend rule (rate, projection): the latch and the window's samples."""

    latch: LatchState = field(default_factory=LatchState)
    samples: Samples = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: ``{"latch": {…}, "samples": [[ts_ms, value], …]}``."""
        return {"latch": self.latch.to_dict(), "samples": samples_to_list(self.samples)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrendState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            latch=LatchState.from_dict(data["latch"]),
            samples=samples_from_list(data.get("samples", ())),
        )


class Trend:
    """What trend rules share: their window, and when there is enough data to judge it.

    A mixin for frozen dataclasses that declare ``rule_id``, ``window_ms``, ``min_points`` and
    ``min_span_ms``.
    """

    __slots__ = ()
    rule_id: str
    window_ms: int
    min_points: int
    min_span_ms: int

    def check_window(self, what: str) -> None:
        """Refuse an empty window, too few or too many points, or a span beyond the window."""
        if self.window_ms <= 0:
            msg = f"rule {self.rule_id!r}: the window must be longer than zero"
            raise ValueError(msg)
        if not 2 <= self.min_points <= MAX_SAMPLES:
            msg = (
                f"rule {self.rule_id!r}: min_points must be between 2 and "
                f"{MAX_SAMPLES} (a {what} needs at least two readings)"
            )
            raise ValueError(msg)
        if not 0 <= self.min_span_ms <= self.window_ms:
            msg = (
                f"rule {self.rule_id!r}: min_span must be between 0 and the window "
                f"({self.window_ms / 60_000:g} min)"
            )
            raise ValueError(msg)

    def enough(self, samples: Sequence[Sample]) -> bool:
        """At least ``min_points`` samples covering at least ``min_span_ms``."""
        return (
            len(samples) >= self.min_points and samples[-1][0] - samples[0][0] >= self.min_span_ms
        )
