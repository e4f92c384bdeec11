"""``earlywarn alarms …`` and ``earlywarn maintenance …``: the duty room's side of the alert
store (:class:`alerting.store.AlertStore`), from a terminal.

The parser lives in :mod:`earlywarn.cli`; the commands here take the parsed arguments and a
:class:`Console` (output streams and a clock), so tests run them in-process against a real
store file and the service's clock never leaks in.

Design choices, each for the person at the console at night:

- **A missing store is an error, never a new empty one.** ``alarms list`` on a mistyped path
  must not answer "no alarms" from a file it just created; ``ack`` must not succeed against
  a store the service does not escalate from. Only ``maintenance add --create`` creates one
  (a window planned before the service first ran).
- **Unacknowledged alarms first.** ``alarms list`` orders by what needs a person: active
  unacknowledged, then cleared unacknowledged, then acknowledged active ones, each highest
  level first and newest first within a level; cleared history comes last, newest first.
  ``--order start`` gives plain newest-first.
- **Local time with its offset everywhere** (Asia/Shanghai unless ``--tz``): an operator
  compares with a wall clock, and the offset keeps a pasted line unambiguous.
- **Exit codes**: 0 done (also "already acknowledged", with a note); 1 the alarm, window or
  audit log is not as asked (unknown alarm, tampered log); 2 the command cannot run as typed
  (missing store, bad time, unknown person, shelving over 24 h).
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import sqlite3
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, tzinfo
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerting.holds import Scope, Window, WindowKind
from alerting.lifecycle import AckMethod, AlarmRecord, State
from alerting.store import AlertStore, AuditEntry
from alerting.store_rows import AckStatus, StepStatus
from alerting.store_schema import SchemaError
from earlywarn.durations import parse_seconds
from earlywarn.model import DEFAULT_TIMEZONE, Level
from earlywarn.registry import Registry, RegistryError, load_registry
from earlywarn.store_path import STORE_ENV, store_path

__all__ = [
    "STATE_CHOICES",
    "Command",
    "CommandError",
    "Console",
    "cmd_ack",
    "cmd_audit",
    "cmd_list",
    "cmd_maintenance_add",
    "cmd_maintenance_end",
    "cmd_maintenance_list",
    "cmd_shelve",
    "cmd_show",
    "cmd_unshelve",
    "format_time",
    "parse_time",
    "run",
    "zone",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_GROUPS: dict[str, tuple[State, ...]] = {
    "open": (State.ACTIVE_UNACKED, State.CLEARED_UNACKED, State.ACTIVE_ACKED),
    "unacked": (State.ACTIVE_UNACKED, State.CLEARED_UNACKED),
    "active": (State.ACTIVE_UNACKED, State.ACTIVE_ACKED),
}
STATE_CHOICES = (*(s.value for s in State), *_GROUPS)
"""What ``--state`` accepts: the four ISA-18.2 states and the groups ``open`` (not cleared),
``unacked`` and ``active``."""

_ATTENTION = (State.ACTIVE_UNACKED, State.CLEARED_UNACKED, State.ACTIVE_ACKED, State.CLEARED)
"""The order ``alarms list`` shows states in by default: what needs a person first."""

_NO_LIMIT = -1  # SQLite: a negative LIMIT means none
_WHERE_WIDTH = 40
_MESSAGE_WIDTH = 48


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Console:
    """Where a command writes (``out`` results, ``err`` problems) and what time it is."""

    out: TextIO
    err: TextIO
    clock: Callable[[], int] = field(default=_wall_ms)

    def say(self, text: str = "") -> None:
        """One line of results."""
        self.out.write(text + "\n")

    def warn(self, text: str) -> None:
        """One line about a problem or a note."""
        self.err.write(text + "\n")


class CommandError(Exception):
    """A command cannot do what was asked; ``code`` is the exit code, the message says why."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


Command = Callable[[argparse.Namespace, Console], int]
"""What the parser dispatches to: parsed arguments and a console in, exit code out."""


def run(command: Command, args: argparse.Namespace, console: Console) -> int:
    """Run one command, turning :class:`CommandError` into its message on ``err`` and its code."""
    name = " ".join(
        str(getattr(args, key)) for key in ("command", "action") if getattr(args, key, None)
    )
    try:
        return command(args, console)
    except CommandError as exc:
        console.warn(f"earlywarn {name}: {exc}")
        return exc.code
    except sqlite3.Error as exc:  # locked past the busy timeout, disk full, a damaged file
        console.warn(f"earlywarn {name}: the alert store failed: {exc}; nothing was changed")
        return EXIT_FAILED


# --- time ------------------------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    """The time zone ``name`` (IANA, such as Asia/Shanghai); :class:`CommandError` if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown time zone {name!r}: use an IANA name such as {DEFAULT_TIMEZONE}"
        raise CommandError(EXIT_USAGE, msg) from None


def _offset(moment: datetime) -> str:
    delta = moment.utcoffset() or timedelta(0)
    minutes = round(delta.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def format_time(ms: int | None, tz: tzinfo) -> str:
    """``2026-11-22 02:00:05 +08:00``: local wall time with its offset; ``-`` for none."""
    if ms is None:
        return "-"
    moment = datetime.fromtimestamp(ms / 1000, tz)
    return f"{moment:%Y-%m-%d %H:%M:%S} {_offset(moment)}"


def _iso(ms: int | None, tz: tzinfo) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="milliseconds")


def parse_time(text: str, tz: tzinfo, base_ms: int, *, forward: bool) -> int:
    """Epoch ms from what an operator types.

    - a duration (``24h``, ``30min``, ``90s``): that long after ``base_ms`` when ``forward``
      (``--until 8h``), before it otherwise (``--since 24h``);
    - a clock time (``08:00``): the next such time after ``base_ms`` when ``forward``, the last
      one before it otherwise;
    - a date or date and time (``2026-11-22``, ``2026-11-22 08:00``, ISO-8601), in ``tz``
      unless it carries an offset.

    ``ValueError`` says what was expected.
    """
    value = text.strip()
    try:
        seconds = parse_seconds(value)
    except ValueError:
        pass
    else:
        delta = round(seconds * 1000)
        return base_ms + delta if forward else base_ms - delta
    base = datetime.fromtimestamp(base_ms / 1000, tz)
    clock = _clock_time(value)
    if clock is not None:
        moment = base.replace(hour=clock[0], minute=clock[1], second=clock[2], microsecond=0)
        # Aware arithmetic in one zone is wall-clock arithmetic: 08:00 stays 08:00.
        if forward and moment <= base:
            moment += timedelta(days=1)
        elif not forward and moment > base:
            moment -= timedelta(days=1)
        return round(moment.timestamp() * 1000)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        msg = (
            f"expected a duration (30min, 8h), a clock time (08:00) or a date and time "
            f"(2026-11-22 08:00), got {text!r}"
        )
        raise ValueError(msg) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return round(moment.timestamp() * 1000)


def _clock_time(text: str) -> tuple[int, int, int] | None:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() and len(p) <= 2 for p in parts):
        return None
    hour, minute, second = (int(p) for p in (*parts, "0")[:3])
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second


def _when(text: str, what: str, tz: tzinfo, base_ms: int, *, forward: bool) -> int:
    try:
        return parse_time(text, tz, base_ms, forward=forward)
    except ValueError as exc:
        raise CommandError(EXIT_USAGE, f"{what}: {exc}") from None


# --- tables ----------------------------------------------------------------------------------


def _width(text: str) -> int:
    """Columns a terminal gives ``text``: Chinese characters take two."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _fit(text: str, width: int) -> str:
    """``text`` on one line, cut with ``…`` to at most ``width`` columns."""
    text = " ".join(text.split())
    if _width(text) <= width:
        return text
    out, used = "", 0
    for c in text:
        w = _width(c)
        if used + w > width - 1:
            break
        out += c
        used += w
    return out + "…"


def _table(console: Console, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell (Chinese counted double); the last is not padded."""
    widths = [max(_width(r[i]) for r in (headers, *rows)) for i in range(len(headers))]
    for row in (headers, *rows):
        cells = [c + " " * (w - _width(c)) for c, w in zip(row[:-1], widths, strict=False)]
        console.say("  ".join([*cells, row[-1]]).rstrip())


# --- the store, the registry, alarms ---------------------------------------------------------


@contextmanager
def _store(args: argparse.Namespace, *, create: bool = False) -> Iterator[AlertStore]:
    """The store of ``--store`` / ``$EARLYWARN_STORE`` / the default; a missing file is
    :class:`CommandError` unless ``create``."""
    path = store_path(args.store)
    if not create and not path.exists():
        msg = (
            f"no alert store at {path}: give --store PATH or set {STORE_ENV} "
            "(the service creates the store when it first runs)"
        )
        raise CommandError(EXIT_USAGE, msg)
    try:
        store = AlertStore(path)
    except (sqlite3.Error, SchemaError, OSError) as exc:
        raise CommandError(EXIT_USAGE, f"cannot open the alert store {path}: {exc}") from None
    with store:
        yield store


def _registry(args: argparse.Namespace, console: Console) -> Registry | None:
    """The registry of ``--registry``, if given, to check people and targets against."""
    directory = getattr(args, "registry", None)
    if not directory:
        return None
    try:
        return load_registry(directory)
    except RegistryError as exc:
        for problem in exc.problems:
            console.warn(str(problem))
        raise CommandError(EXIT_USAGE, f"the registry {directory} has problems") from None


def _person(by: str, registry: Registry | None) -> str:
    """``--by``: not blank, and one of the registry's people when a registry was given (an
    acknowledgement by a misspelt id is one nobody can trace to a person)."""
    by = by.strip()
    if not by:
        raise CommandError(EXIT_USAGE, "--by: say who you are (a person id)")
    if registry is not None and by not in registry.people:
        close = difflib.get_close_matches(by, list(registry.people), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        msg = f"--by: {by!r} is not one of the people of the registry {registry.path}{hint}"
        raise CommandError(EXIT_USAGE, msg)
    return by


def _alarm(store: AlertStore, text: str) -> AlarmRecord:
    """An alarm by its id or its number (``12`` or ``#12``); :class:`CommandError` if unknown."""
    key = text.strip()
    number = key.removeprefix("#")
    record = store.get_by_ref(int(number)) if number.isdigit() else store.get(key)
    if record is None:
        msg = f"unknown alarm {text!r}: no alarm with that id or number in {store.path}"
        raise CommandError(EXIT_FAILED, msg)
    return record


def _ref(record: AlarmRecord) -> str:
    return f"#{record.ref}" if record.ref is not None else "#?"


def _level(level: Level | None) -> str:
    return level.name if level is not None else "-"


def _where(record: AlarmRecord) -> str:
    return f"{record.enterprise_name} / {record.site_name} / {record.sensor_name}"


def _flags(record: AlarmRecord, now_ms: int) -> list[str]:
    flags = []
    if record.drill:
        flags.append("drill")
    if record.shelved_until_ms is not None and now_ms < record.shelved_until_ms:
        flags.append("shelved")
    if record.suppressed_until_ms is not None and now_ms < record.suppressed_until_ms:
        flags.append("maintenance")
    if record.flapping:
        flags.append("flapping")
    return flags


def _figure(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:g} {unit}".strip()


# --- alarms list -----------------------------------------------------------------------------


def _states(values: Sequence[str] | None) -> tuple[State, ...] | None:
    if not values:
        return None
    chosen: list[State] = []
    for value in values:
        for name in (v.strip() for v in value.split(",")):
            if name in _GROUPS:
                chosen.extend(_GROUPS[name])
            elif name in {s.value for s in State}:
                chosen.append(State(name))
            elif name:
                msg = f"--state: unknown state {name!r}; use {', '.join(STATE_CHOICES)}"
                raise CommandError(EXIT_USAGE, msg)
    return tuple(dict.fromkeys(chosen))


def _attention_key(record: AlarmRecord) -> tuple[int, int, int]:
    level = record.level if record.level is not None else record.peak
    return (_ATTENTION.index(record.state), -int(level), -record.start_ms)


def cmd_list(args: argparse.Namespace, console: Console) -> int:
    """``alarms list``: the alarms matching the filters, what needs a person first."""
    tz = zone(args.tz)
    now = console.clock()
    states = _states(args.state)
    enterprise, site = args.enterprise, args.site
    if site is not None and "/" in site:
        site_enterprise, site = site.split("/", 1)
        if enterprise is not None and enterprise != site_enterprise:
            msg = f"--site {args.site} is not in --enterprise {enterprise}"
            raise CommandError(EXIT_USAGE, msg)
        enterprise = site_enterprise
    try:
        min_level = Level.parse(args.level) if args.level else None
    except ValueError as exc:
        raise CommandError(EXIT_USAGE, f"--level: {exc}") from None
    since = _when(args.since, "--since", tz, now, forward=False) if args.since else None
    with _store(args) as store:

        def query(among: Sequence[State] | None, limit: int) -> list[AlarmRecord]:
            return store.list_alarms(
                states=among,
                enterprise=enterprise,
                site=site,
                min_level=min_level,
                since_ms=since,
                drill=args.drill,
                limit=limit,
            )

        if args.order == "start":
            records = query(states, args.limit + 1)
        else:
            # Open alarms are few (one per sensor and rule at most) and are fetched whole to be
            # ordered by level; cleared history is long and comes newest first, limited.
            records = []
            for state in _ATTENTION:
                if states is not None and state not in states:
                    continue
                if len(records) > args.limit:
                    break
                if state is State.CLEARED:
                    records += query((state,), args.limit + 1 - len(records))
                else:
                    records += sorted(query((state,), _NO_LIMIT), key=_attention_key)
    more = len(records) > args.limit
    records = records[: args.limit]
    if args.format == "jsonl":
        for record in records:
            console.say(json.dumps(_record_dict(record, tz), ensure_ascii=False))
        return EXIT_OK
    if not records:
        console.say("no alarm matches")
        return EXIT_OK
    rows = [
        [
            _ref(r),
            _level(r.level),
            _level(r.peak),
            r.state.value,
            ",".join(_flags(r, now)),
            format_time(r.start_ms, tz),
            r.acked_by or "-",
            _fit(_where(r), _WHERE_WIDTH),
            _fit(r.message, _MESSAGE_WIDTH),
        ]
        for r in records
    ]
    headers = ["ref", "level", "peak", "state", "flags", "start", "acked by", "where", "message"]
    _table(console, headers, rows)
    shown = f"{len(records)} alarm{'s' if len(records) != 1 else ''}"
    tail = f"; more match (--limit {args.limit})" if more else ""
    console.say(f"{shown}, times in {tz}{tail}")
    return EXIT_OK


def _record_dict(record: AlarmRecord, tz: tzinfo) -> dict[str, Any]:
    """One alarm as a JSON object: every field of the record (``*_ms`` epoch ms, each with a
    local ISO time beside it), levels as labels, figures that are not finite as null."""
    out: dict[str, Any] = {"ref": record.ref}
    for f in fields(AlarmRecord):
        value = getattr(record, f.name)
        if f.name in ("ref", "seen"):
            continue
        if isinstance(value, Level):
            value = value.label
        elif isinstance(value, State):
            value = value.value
        elif isinstance(value, float) and not math.isfinite(value):
            value = None
        out[f.name] = value
        if f.name.endswith("_ms"):
            out[f.name.removesuffix("_ms")] = _iso(value, tz)
    return out


# --- alarms show -----------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    """``alarms show``: one alarm with everything that happened to it."""
    tz = zone(args.tz)
    now = console.clock()
    with _store(args) as store:
        record = _alarm(store, args.alarm)
        history = store.history(record.alarm_id)
        called = store.who_was_called(record.alarm_id)
        held = store.hold_reason(record.alarm_id, now)
    if history is None:  # pragma: no cover - deleted between two reads of one command
        raise CommandError(EXIT_FAILED, f"unknown alarm {args.alarm!r}")
    r = history.record

    def at(ms: int | None) -> str:
        return format_time(ms, tz)

    console.say(f"alarm {_ref(r)}  {r.alarm_id}")
    facts = [
        ("where", f"{_where(r)}  ({r.sensor})"),
        ("rule", f"{r.rule} ({r.rule_kind}), sensor kind {r.kind}"),
        ("state", r.state.value),
        ("level", f"{_level(r.level)} (peak {_level(r.peak)})"),
        (
            "value",
            f"{_figure(r.value, r.unit)}; {r.setpoint_label or 'set-point'} "
            f"{_figure(r.setpoint, r.unit)}",
        ),
        ("message", r.message),
        ("started", at(r.start_ms)),
        ("last event", at(r.last_ts_ms)),
        ("cleared", at(r.cleared_ms)),
        ("acknowledged", f"by {r.acked_by} at {at(r.acked_ms)}" if r.acked_by else "no"),
    ]
    if r.drill:
        facts.append(("drill", "yes: raised in a drill (【演练】)"))
    if r.flapping:
        facts.append(("flapping", "yes"))
    if r.suppressed_until_ms is not None:
        facts.append(
            ("maintenance", f"raised in a maintenance window until {at(r.suppressed_until_ms)}")
        )
    facts.append(("notifications", f"held: {held}" if held else "not held"))
    for name, value in facts:
        console.say(f"  {name:<14}{value}")

    console.say()
    console.say("transitions")
    _table(
        console,
        ["  time", "kind", "state", "level", "by", "detail"],
        [
            [
                "  " + at(t.ts_ms),
                t.kind.value,
                f"{t.from_state.value if t.from_state else '-'} → {t.to_state.value}",
                f"{_level(t.from_level)} → {_level(t.to_level)}",
                t.by or "",
                t.detail,
            ]
            for t in history.transitions
        ],
    )

    console.say()
    console.say("who was called")
    if called:
        _table(
            console,
            ["  person", "channel", "address", "tries", "first", "last", "last outcome"],
            [
                [
                    "  " + c.person,
                    c.channel,
                    c.address,
                    str(c.attempts),
                    at(c.first_ms),
                    at(c.last_ms),
                    c.last_outcome.value,
                ]
                for c in called
            ],
        )
        console.say("  attempts:")
        for a in history.attempts:
            console.say(
                f"    {at(a.ts_ms)}  {a.person} {a.channel} {a.address}  try {a.attempt}: "
                f"{a.outcome.value}{' — ' + a.detail if a.detail else ''}"
            )
    else:
        console.say("  nobody yet")

    console.say()
    console.say("acknowledgements")
    for ack in history.acks:
        via = f" (with the newer occurrence {ack.via})" if ack.via else ""
        comment = f": {ack.comment}" if ack.comment else ""
        console.say(f"  {at(ack.ts_ms)}  {ack.by} by {ack.how.value}{via}{comment}")
    if not history.acks:
        console.say("  none")

    console.say()
    console.say("shelvings of this sensor and rule")
    for shelf in history.shelves:
        ended = f"; ended {at(shelf.ended_ms)} by {shelf.ended_by}" if shelf.ended_ms else ""
        console.say(
            f"  {at(shelf.from_ms)} until {at(shelf.until_ms)} by {shelf.by}: {shelf.reason}{ended}"
        )
    if not history.shelves:
        console.say("  none")

    console.say()
    pending = [s for s in history.steps if s.status is StepStatus.PENDING]
    counts = Counter(s.status.value for s in history.steps)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
    console.say(f"notification steps: {summary}")
    for step in pending:
        console.say(
            f"  pending  due {at(step.due_ms)}  {step.target} {step.channel or 'their channels'}"
            f"  ({step.key})"
        )
    for step in history.steps:
        if step.status in (StepStatus.SENDING, StepStatus.UNKNOWN):
            console.say(f"  {step.status.value}  {at(step.due_ms)}  {step.target}  {step.detail}")
    return EXIT_OK


# --- alarms ack / shelve / unshelve ----------------------------------------------------------


def cmd_ack(args: argparse.Namespace, console: Console) -> int:
    """``alarms ack``: acknowledge an alarm (how = cli); its pending steps are cancelled."""
    tz = zone(args.tz)
    registry = _registry(args, console)
    by = _person(args.by, registry)
    with _store(args) as store:
        record = _alarm(store, args.alarm)
        result = store.ack(record.alarm_id, by, AckMethod.CLI, args.comment, console.clock())
    if result.status is AckStatus.UNKNOWN:  # pragma: no cover - found a moment ago
        raise CommandError(EXIT_FAILED, result.describe())
    if result.status is AckStatus.ALREADY_ACKED:
        console.say(f"note: {result.describe()} ({format_time(result.at_ms, tz)}); nothing changed")
        return EXIT_OK
    console.say(result.describe())
    state = result.record.state.value if result.record is not None else "?"
    console.say(f"  {_ref(record)} is now {state}; acknowledged at {format_time(result.at_ms, tz)}")
    for older in result.also_acked:
        console.say(f"  also acknowledged: {older}")
    return EXIT_OK


def cmd_shelve(args: argparse.Namespace, console: Console) -> int:
    """``alarms shelve``: hold the notifications of an alarm's sensor and rule for at most
    24 h (later occurrences too, while it lasts)."""
    tz = zone(args.tz)
    now = console.clock()
    registry = _registry(args, console)
    by = _person(args.by, registry)
    until = _when(args.until, "--until", tz, now, forward=True)
    with _store(args) as store:
        record = _alarm(store, args.alarm)
        try:
            shelf = store.shelve(record.alarm_id, by, until, args.reason, now)
        except ValueError as exc:
            raise CommandError(EXIT_USAGE, str(exc)) from None
    console.say(
        f"shelved {record.sensor} {record.rule} ({_ref(record)}) until "
        f"{format_time(shelf.until_ms, tz)} by {by}: {shelf.reason}"
    )
    console.say("  its notifications are held until then; alarms are still recorded")
    return EXIT_OK


def cmd_unshelve(args: argparse.Namespace, console: Console) -> int:
    """``alarms unshelve``: end now every shelving of an alarm's sensor and rule."""
    registry = _registry(args, console)
    by = _person(args.by, registry)
    with _store(args) as store:
        record = _alarm(store, args.alarm)
        count = store.unshelve(record.alarm_id, by, console.clock())
    if count == 0:
        console.say(f"note: {record.sensor} {record.rule} ({_ref(record)}) was not shelved")
    else:
        console.say(
            f"unshelved {record.sensor} {record.rule} ({_ref(record)}): "
            f"{count} shelving(s) ended by {by}; notifications resume"
        )
    return EXIT_OK


# --- alarms audit ----------------------------------------------------------------------------


def _parse_head(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        msg = f"--expect-head: expected SEQ:HASH as printed by --head, got {text!r}"
        raise CommandError(EXIT_USAGE, msg)
    return int(seq), digest.lower()


def cmd_audit(args: argparse.Namespace, console: Console) -> int:
    """``alarms audit``: print the audit log, its head, or verify its hash chain."""
    tz = zone(args.tz)
    expected = _parse_head(args.expect_head) if args.expect_head else None
    with _store(args) as store:
        if args.verify or expected is not None:
            problems = store.verify_audit(expected)
            seq, digest = store.audit_head()
            if problems:
                for problem in problems:
                    console.warn(f"audit: {problem}")
                count = len(problems)
                console.warn(
                    f"the audit log of {store.path} is NOT intact: "
                    f"{count} problem{'s' if count != 1 else ''}"
                )
                return EXIT_FAILED
            console.say(f"the audit log of {store.path} is intact: {seq} rows, head {seq}:{digest}")
            return EXIT_OK
        if args.head:
            seq, digest = store.audit_head()
            console.say(f"{seq}:{digest}")
            return EXIT_OK
        alarm_id = _alarm(store, args.alarm).alarm_id if args.alarm else None
        entries = store.audit(alarm_id=alarm_id, since_seq=args.after)
    for entry in entries:
        if args.format == "jsonl":
            console.say(json.dumps(_audit_dict(entry, tz), ensure_ascii=False))
        else:
            detail = json.dumps(entry.detail, ensure_ascii=False, separators=(",", ":"))
            console.say(
                f"{entry.seq:>6}  {format_time(entry.ts_ms, tz)}  {entry.kind:<16} "
                f"{entry.actor:<16} {entry.alarm_id or '-'}  {detail}"
            )
    if args.format != "jsonl" and not entries:
        console.say("no audit rows")
    return EXIT_OK


def _audit_dict(entry: AuditEntry, tz: tzinfo) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "ts_ms": entry.ts_ms,
        "ts": _iso(entry.ts_ms, tz),
        "kind": entry.kind,
        "alarm_id": entry.alarm_id,
        "actor": entry.actor,
        "detail": entry.detail,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


# --- maintenance -----------------------------------------------------------------------------


def _check_target(scope: Scope, target: str, registry: Registry | None) -> None:
    """With a registry, the window's target must exist: a window on a misspelt site holds
    nothing, and the alarms it was meant to hold would wake people during the works."""
    if registry is None:
        return
    pieces = target.split("/")
    known = {
        Scope.ENTERPRISE: lambda: target in registry.enterprises,
        Scope.SITE: lambda: len(pieces) == 2 and registry.site(*pieces) is not None,
        Scope.SENSOR: lambda: target in registry.sensors,
    }[scope]()
    if not known:
        msg = f"--target: no {scope.value} {target!r} in the registry {registry.path}"
        raise CommandError(EXIT_USAGE, msg)


def cmd_maintenance_add(args: argparse.Namespace, console: Console) -> int:
    """``maintenance add``: a maintenance window (notifications held, alarms recorded) or,
    with ``--drill``, a drill window (alarms raised in it are drills)."""
    tz = zone(args.tz)
    now = console.clock()
    registry = _registry(args, console)
    by = _person(args.by, registry)
    scope = Scope(args.scope)
    _check_target(scope, args.target, registry)
    start = _when(args.start, "--from", tz, now, forward=True) if args.start else now
    until = _when(args.until, "--until", tz, start, forward=True)
    if until <= now:
        msg = f"--until {format_time(until, tz)} is already past: the window would hold nothing"
        raise CommandError(EXIT_USAGE, msg)
    kind = WindowKind.DRILL if args.drill else WindowKind.MAINTENANCE
    try:
        window = Window(kind, scope, args.target, start, until, by, args.reason)
    except ValueError as exc:
        raise CommandError(EXIT_USAGE, str(exc)) from None
    with _store(args, create=args.create) as store:
        stored = store.add_window(window, now)
    console.say(
        f"{kind.value} window {stored.id} on {scope.value} {stored.target} from "
        f"{format_time(stored.from_ms, tz)} until {format_time(stored.until_ms, tz)} by {by}: "
        f"{stored.reason}"
    )
    if kind is WindowKind.DRILL:
        console.say("  alarms raised there meanwhile are drill alarms (【演练】)")
    else:
        console.say("  notifications of alarms there are held meanwhile; alarms are still recorded")
    return EXIT_OK


def cmd_maintenance_end(args: argparse.Namespace, console: Console) -> int:
    """``maintenance end``: end a window now."""
    tz = zone(args.tz)
    now = console.clock()
    registry = _registry(args, console)
    by = _person(args.by, registry)
    with _store(args) as store:
        window = next((w for w in store.windows() if w.id == args.window), None)
        if window is None:
            raise CommandError(EXIT_FAILED, f"unknown window {args.window}")
        if window.end_ms <= now:
            console.say(
                f"note: {window.kind.value} window {window.id} was already over at "
                f"{format_time(window.end_ms, tz)}; nothing changed"
            )
            return EXIT_OK
        store.end_window(args.window, by, now)
    console.say(f"{window.kind.value} window {window.id} on {window.target} ended by {by}")
    return EXIT_OK


def _window_status(window: Window, now: int, tz: tzinfo) -> str:
    if window.ended_ms is not None and window.ended_ms < window.until_ms:
        return f"ended {format_time(window.ended_ms, tz)} by {window.ended_by}"
    if now < window.from_ms:
        return "planned"
    return "in force" if now < window.end_ms else "over"


def cmd_maintenance_list(args: argparse.Namespace, console: Console) -> int:
    """``maintenance list``: windows in force or planned (``--all``: every one)."""
    tz = zone(args.tz)
    now = console.clock()
    with _store(args) as store:
        windows = store.windows()
    if not args.all:
        windows = [w for w in windows if w.end_ms > now]
    if not windows:
        console.say("no window in force or planned" if not args.all else "no window")
        return EXIT_OK
    _table(
        console,
        ["id", "kind", "scope", "target", "from", "until", "status", "by", "reason"],
        [
            [
                str(w.id),
                w.kind.value,
                w.scope.value,
                w.target,
                format_time(w.from_ms, tz),
                format_time(w.until_ms, tz),
                _window_status(w, now, tz),
                w.by,
                w.reason,
            ]
            for w in windows
        ],
    )
    return EXIT_OK
