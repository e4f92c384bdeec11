"""Offline (deadman) rule: no data for ``factor`` × the sensor's reporting interval.

Silence is found on the clock, not in the data: :meth:`OfflineRule.tick` raises the alarm
when ``now − last reading ≥ factor × interval``. A sensor that was never heard from is still
watched — the first tick starts the watch (``watch_since_ms``) and silence counts from there —
and a feed that has gone quiet altogether still raises on time, since ticks need no reading.
A reading clears the alarm (:meth:`OfflineRule.evaluate`); readings alone never raise it.

Reading time and tick time are kept apart: ``latch.last_ts_ms`` is always the time of the last
*reading* (so the engine's stale check, and this rule's, compare readings with readings only),
and ``last_tick_ms`` is the time of the last tick. A tick never makes the next reading look
stale, however far ahead of the device clock it runs. Ticks not later than the previous tick
change nothing.

Any reading is a sign of life: NaN, infinity and fault quality codes clear the alarm as well
(whether the data is *valid* is :mod:`rules.out_of_range`'s question).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rules import quality
from rules.events import RuleEvent
from rules.latch import Delays, LatchState, Transition, cached_delays
from rules.levels import Level

KIND = "offline"


@dataclass(frozen=True, slots=True)
class OfflineRule:
    """Raise when a sensor has been silent for ``factor`` × ``interval_ms``.

    ``off_delay_ms`` keeps the alarm until the sensor has been back for that long (a device
    that reports once and drops again does not clear and re-raise). The limit is
    ``factor × interval_ms`` rounded to the millisecond; silence exactly at the limit alarms.
    """

    rule_id: str
    interval_ms: int
    factor: float = 3.0
    level: Level = Level.YELLOW
    off_delay_ms: int = 0

    def __post_init__(self) -> None:
        if self.interval_ms <= 0:
            msg = (
                f"rule {self.rule_id!r}: the reporting interval must be a positive number of "
                f"milliseconds, got {self.interval_ms}"
            )
            raise ValueError(msg)
        quality.check_finite(self.rule_id, "factor", self.factor)
        if self.factor < 1:
            msg = (
                f"rule {self.rule_id!r}: factor {self.factor:g} is below 1; a sensor cannot be "
                "late before one reporting interval has passed"
            )
            raise ValueError(msg)
        quality.check_delays(self.rule_id, 0, self.off_delay_ms)
        object.__setattr__(self, "level", quality.as_level(self.rule_id, self.level))

    @property
    def delays(self) -> Delays:
        """Only an off-delay: the factor already is the on-delay."""
        return cached_delays(0, self.off_delay_ms)

    @property
    def limit_ms(self) -> int:
        """The silence that raises the alarm: ``factor × interval_ms``, to the millisecond."""
        return round(self.factor * self.interval_ms)

    @property
    def kind(self) -> str:
        """``offline``."""
        return KIND

    def initial(self) -> OfflineState:
        """No alarm, nothing heard, not yet watching (the first tick starts the watch)."""
        return OfflineState()

    def evaluate(
        self, state: OfflineState, ts_ms: int, value: float, quality: int = 0
    ) -> tuple[OfflineState, RuleEvent | None]:
        """See :func:`evaluate` (value and quality do not matter: any reading is alive)."""
        return evaluate(self, state, ts_ms)

    def tick(self, state: OfflineState, now_ms: int) -> tuple[OfflineState, RuleEvent | None]:
        """See :func:`tick`."""
        return tick(self, state, now_ms)

    def state_from_dict(self, data: dict[str, Any]) -> OfflineState:
        """Read back :meth:`OfflineState.to_dict`."""
        return OfflineState.from_dict(data)


@dataclass(frozen=True, slots=True)
class OfflineState:
    """The latch (whose ``last_ts_ms`` is the last *reading*), when the watch began, last tick."""

    latch: LatchState = field(default_factory=LatchState)
    watch_since_ms: int | None = None
    last_tick_ms: int | None = None

    @property
    def last_reading_ms(self) -> int | None:
        """When the sensor was last heard from (``None``: never)."""
        return self.latch.last_ts_ms

    def silent_since(self) -> int | None:
        """Where silence counts from: the last reading, else the start of the watch."""
        return self.last_reading_ms if self.last_reading_ms is not None else self.watch_since_ms

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return {
            "latch": self.latch.to_dict(),
            "watch_since_ms": self.watch_since_ms,
            "last_tick_ms": self.last_tick_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OfflineState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            latch=LatchState.from_dict(data["latch"]),
            watch_since_ms=quality.opt_int(data.get("watch_since_ms")),
            last_tick_ms=quality.opt_int(data.get("last_tick_ms")),
        )


def evaluate(
    rule: OfflineRule, state: OfflineState, ts_ms: int
) -> tuple[OfflineState, RuleEvent | None]:
    """A reading: the sensor is alive. Clears the alarm (after the off-delay); never raises.

    Readings not newer than the last *reading* change nothing; ticks do not count. The latch
    runs on ``max(ts_ms, last tick)`` so a clear is never dated before the tick that raised
    the alarm when the device clock lags the service clock; ``latch.last_ts_ms`` is still the
    reading's own time. A clear's value is the length of the silence the reading ended.
    """
    if state.latch.is_stale(ts_ms):
        return state, None
    since = state.silent_since()
    at = ts_ms if state.last_tick_ms is None else max(ts_ms, state.last_tick_ms)
    stepped, moved = quality.step_one(rule.delays, rule.level, False, state.latch, at)
    new_state = OfflineState(stepped.at(ts_ms), state.watch_since_ms, state.last_tick_ms)
    if moved is None:
        return new_state, None
    silence_ms = 0 if since is None else max(ts_ms - since, 0)
    return new_state, _event(rule, moved, silence_ms, at)


def tick(
    rule: OfflineRule, state: OfflineState, now_ms: int
) -> tuple[OfflineState, RuleEvent | None]:
    """Let time pass: raise once ``now − last reading (or watch start) ≥ factor × interval``.

    The first tick starts the watch of a sensor never heard from. A tick not later than the
    previous one changes nothing. The latch's ``last_ts_ms`` stays the last reading's time.
    """
    if state.last_tick_ms is not None and now_ms <= state.last_tick_ms:
        return state, None
    watch_since = state.watch_since_ms if state.watch_since_ms is not None else now_ms
    since = state.last_reading_ms if state.last_reading_ms is not None else watch_since
    silence_ms = now_ms - since
    silent = silence_ms >= rule.limit_ms
    stepped, moved = quality.step_one(rule.delays, rule.level, silent, state.latch, now_ms)
    new_state = OfflineState(
        latch=stepped.at(state.latch.last_ts_ms),
        watch_since_ms=watch_since,
        last_tick_ms=now_ms,
    )
    if moved is None:
        return new_state, None
    return new_state, _event(rule, moved, max(silence_ms, 0), now_ms)


def _event(rule: OfflineRule, moved: Transition, silence_ms: int, ts_ms: int) -> RuleEvent:
    return quality.make_event(
        rule.rule_id,
        KIND,
        moved,
        direction="high",
        value=silence_ms / 1000,
        setpoint=rule.limit_ms / 1000,
        label=f"{rule.factor:g} × 上报周期",
        ts_ms=ts_ms,
        window_ms=rule.limit_ms,
    )
