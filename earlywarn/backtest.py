"""``earlywarn backtest``: run recorded readings through the rules as fast as possible.

Engineers tune set-points on history: which alarms would these rules have raised, how often,
and which of them chatter? The readings go through the same :class:`Pipeline` the service
uses, on a simulated clock that also ticks between readings, so offline detection is part of
the result. Bad input lines are reported with their line numbers and skipped.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from alerting.codec import event_to_dict
from alerting.console import format_event
from earlywarn.clock import ManualClock
from earlywarn.messages import Language
from earlywarn.model import AlarmEvent, Change, Reading
from earlywarn.pipeline import Pipeline
from earlywarn.registry import Registry
from ingest.payloads.json_v1 import parse_timestamp
from ingest.reasons import PayloadError

TEN_MINUTES_MS = 600_000
CHATTER_WINDOW_MS = 60_000
CHATTER_COUNT = 3
"""ISA-18.2: an alarm that comes back 3 or more times within a minute is chattering."""


@dataclass(frozen=True, slots=True)
class BadLine:
    """An input line that could not be used, and why."""

    line: int
    reason: str


@dataclass
class Recorder:
    """Collects events for the figures (a sink)."""

    events: list[AlarmEvent] = field(default_factory=list)

    def emit(self, event: AlarmEvent) -> None:
        self.events.append(event)


def _resolve_sensor(registry: Registry, name: str, by_id: dict[str, list[str]]) -> str | None:
    if name in registry.sensors:
        return name
    matches = by_id.get(name, [])
    return matches[0] if len(matches) == 1 else None


def read_readings(path: Path, registry: Registry, bad: list[BadLine]) -> list[tuple[int, Reading]]:
    """Readings from CSV (``sensor,ts,value`` header) or JSON lines, with their line numbers.

    ``sensor`` is the uid ``enterprise/site/sensor`` or a sensor id that is unique in the
    registry; ``ts`` is epoch milliseconds or ISO-8601 with an offset.
    """
    by_id: dict[str, list[str]] = {}
    for uid, sensor in registry.sensors.items():
        by_id.setdefault(sensor.id, []).append(uid)
    with path.open(encoding="utf-8", newline="") as f:
        first = f.readline()
        f.seek(0)
        rows = _json_rows(f) if first.lstrip().startswith("{") else _csv_rows(f, bad)
        out: list[tuple[int, Reading]] = []
        for line, row in rows:
            reading = _to_reading(row, line, registry, by_id, bad)
            if reading is not None:
                out.append((line, reading))
    return out


def _csv_rows(f: TextIO, bad: list[BadLine]) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(f)
    missing = {"sensor", "ts", "value"} - set(reader.fieldnames or [])
    if missing:
        bad.append(
            BadLine(
                1,
                f"the CSV header must name sensor, ts, value (missing: "
                f"{', '.join(sorted(missing))})",
            )
        )
        return
    for row in reader:
        yield reader.line_num, row


def _json_rows(f: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, text in enumerate(f, start=1):
        if not text.strip():
            continue
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, {"_error": f"not JSON: {exc.msg}"}
            continue
        yield number, doc if isinstance(doc, dict) else {"_error": "not a JSON object"}


def _to_reading(
    row: dict[str, Any],
    line: int,
    registry: Registry,
    by_id: dict[str, list[str]],
    bad: list[BadLine],
) -> Reading | None:
    if "_error" in row:
        bad.append(BadLine(line, str(row["_error"])))
        return None
    name = str(row.get("sensor") or "").strip()
    uid = _resolve_sensor(registry, name, by_id)
    if uid is None:
        many = len(by_id.get(name, [])) > 1
        why = "ambiguous: give enterprise/site/sensor" if many else "not in the registry"
        bad.append(BadLine(line, f"sensor {name!r} is {why}"))
        return None
    raw_ts = row.get("ts")
    try:
        ts = parse_timestamp(_number_or_text(raw_ts))
    except PayloadError as exc:
        bad.append(BadLine(line, exc.detail))
        return None
    try:
        value = float(row.get("value"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        bad.append(BadLine(line, f"value {row.get('value')!r} is not a number"))
        return None
    if not math.isfinite(value):
        bad.append(BadLine(line, f"value {row.get('value')!r} is not a finite number"))
        return None
    return Reading(uid, ts, value, 0)


def _number_or_text(raw: Any) -> Any:
    """CSV gives text: ``1795284000000`` is epoch ms, anything else is tried as ISO-8601."""
    if isinstance(raw, str):
        text = raw.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        return text
    return raw


@dataclass
class Figures:
    """Alarm-rate figures of a run (the alarm-management view of the result)."""

    readings: int
    bad_lines: int
    events: int
    by_level: dict[str, int]
    by_sensor: list[tuple[str, int]]
    raised_per_10min_mean: float
    raised_per_10min_peak: int
    chattering: list[tuple[str, int]]
    span_ms: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--format jsonl``."""
        return {
            "readings": self.readings,
            "bad_lines": self.bad_lines,
            "events": self.events,
            "by_level": self.by_level,
            "by_sensor": dict(self.by_sensor),
            "raised_per_10min": {
                "mean": self.raised_per_10min_mean,
                "peak": self.raised_per_10min_peak,
            },
            "chattering": dict(self.chattering),
            "span_ms": self.span_ms,
        }


def figures(events: list[AlarmEvent], readings: int, bad: int, span_ms: int) -> Figures:
    """Events per level and sensor, alarms per 10 minutes, chattering alarms."""
    by_level = Counter(e.level.label if e.level else "cleared" for e in events)
    by_sensor = Counter(e.sensor for e in events)
    raised = [e for e in events if e.change is Change.RAISED]
    buckets = Counter(e.ts_ms // TEN_MINUTES_MS for e in raised)
    periods = max(1, math.ceil(span_ms / TEN_MINUTES_MS))
    chatter: Counter[str] = Counter()
    recent: dict[str, list[int]] = {}
    for e in raised:
        key = f"{e.sensor}/{e.rule}"
        times = [t for t in recent.get(key, []) if e.ts_ms - t < CHATTER_WINDOW_MS] + [e.ts_ms]
        recent[key] = times
        if len(times) >= CHATTER_COUNT:
            chatter[key] += 1
    return Figures(
        readings=readings,
        bad_lines=bad,
        events=len(events),
        by_level=dict(by_level),
        by_sensor=by_sensor.most_common(10),
        raised_per_10min_mean=len(raised) / periods,
        raised_per_10min_peak=max(buckets.values(), default=0),
        chattering=chatter.most_common(),
        span_ms=span_ms,
    )


def run_backtest(
    registry: Registry,
    path: Path,
    out: TextIO,
    err: TextIO,
    *,
    fmt: str = "table",
    tick_ms: int = 10_000,
    language: Language = "zh",
) -> Figures:
    """Evaluate the file's readings in time order on a simulated clock; print events and
    figures; return the figures."""
    bad: list[BadLine] = []
    rows = read_readings(path, registry, bad)
    for b in bad:
        err.write(f"{path}:{b.line}: {b.reason} (skipped)\n")
    rows.sort(key=lambda r: (r[1].ts_ms, r[0]))
    recorder = Recorder()
    start = rows[0][1].ts_ms if rows else 0
    clock = ManualClock(start)
    pipeline = Pipeline(registry, clock, [recorder], None, language=language)
    pipeline.watch_only({reading.sensor for _line, reading in rows})
    progress = _Progress(err, len(rows))
    next_tick = start
    printed = 0
    times = [reading.ts_ms for _line, reading in rows]
    i = 0
    while i < len(rows):
        while next_tick <= times[i]:
            clock.set(next_tick)
            pipeline.tick(next_tick)
            next_tick += tick_ms
        # Everything up to the next tick is one batch, as a runner would get it; each
        # reading arrives at its own time.
        j = bisect.bisect_left(times, next_tick, lo=i)
        clock.set(times[j - 1])
        pipeline.evaluate_many([reading for _line, reading in rows[i:j]], times[i:j])
        printed = _print_events(recorder.events, printed, out, fmt)
        progress.update(j)
        i = j
    if rows:
        pipeline.tick(rows[-1][1].ts_ms)
        printed = _print_events(recorder.events, printed, out, fmt)
    progress.done()
    span = rows[-1][1].ts_ms - start if rows else 0
    result = figures(recorder.events, len(rows), len(bad), span)
    if fmt == "jsonl":
        err.write(json.dumps({"summary": result.to_dict()}, ensure_ascii=False) + "\n")
    else:
        out.write(_format_figures(result))
    return result


def _print_events(events: list[AlarmEvent], printed: int, out: TextIO, fmt: str) -> int:
    for event in events[printed:]:
        if fmt == "jsonl":
            out.write(json.dumps(event_to_dict(event), ensure_ascii=False) + "\n")
        else:
            out.write(format_event(event) + "\n")
    return len(events)


def _format_figures(f: Figures) -> str:
    lines = [
        "",
        "backtest figures",
        f"  readings evaluated   {f.readings} over {f.span_ms / 3_600_000:.1f} h "
        f"({f.bad_lines} bad lines skipped)",
        f"  alarm events         {f.events} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(f.by_level.items())) or 'none'})",
        f"  alarms per 10 min    mean {f.raised_per_10min_mean:.2f}, peak "
        f"{f.raised_per_10min_peak}  (ISA-18.2: ≤ 1 is acceptable, > 10 is a flood)",
        "  busiest sensors      " + (", ".join(f"{s} {n}" for s, n in f.by_sensor[:5]) or "none"),
        f"  chattering alarms    {len(f.chattering)} (raised {CHATTER_COUNT}+ times within "
        f"{CHATTER_WINDOW_MS // 1000} s)",
    ]
    lines += [f"    {key}: {count} times" for key, count in f.chattering[:10]]
    return "\n".join(lines) + "\n"


class _Progress:
    """A one-line progress bar on stderr, only when it is a terminal and the input is long."""

    def __init__(self, err: TextIO, total: int) -> None:
        self.err = err
        self.total = total
        self.enabled = total >= 50_000 and _isatty(err)
        self.shown = -1

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        percent = done * 100 // self.total
        if percent != self.shown:
            self.shown = percent
            bar = "#" * (percent // 4)
            self.err.write(f"\r[{bar:<25}] {percent:3d}%  {done}/{self.total} readings")
            self.err.flush()

    def done(self) -> None:
        if self.enabled:
            self.err.write("\n")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return False


__all__ = ["Figures", "figures", "read_readings", "run_backtest"]
