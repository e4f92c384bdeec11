"""The InfluxDB schema: which measurements, tags and fields earlywarn writes, one line each.

Dashboards query with InfluxQL (InfluxDB 1.8+, 2.x through a DBRP mapping, 3.x), so the
schema follows what InfluxQL handles well:

- **Tags** are what a panel filters or groups by (``WHERE "site" = 'tank-farm'``,
  ``GROUP BY "sensor"``) and what Grafana template variables list with ``SHOW TAG VALUES``.
  They are short registry identifiers with bounded cardinality.
- **Fields** are what a panel plots or shows in a table: numbers to aggregate, and strings
  (alarm state, message) to show as they were.
- A field keeps one type for ever in a shard (InfluxDB refuses a point whose field changes
  type), so every field here is converted to its declared type before encoding: a reading's
  ``value`` is always a float even when a device sent ``12``.
- Drill data carries the tag ``drill=true`` and nothing else does, so a production panel
  filters it out with ``WHERE "drill" != 'true'`` (absent tags compare as empty) and a drill
  review selects exactly it.

Timestamps are epoch milliseconds, the precision the writer uses.
"""

from __future__ import annotations

import math
from functools import lru_cache

from earlywarn.model import Level, Reading, Sensor
from storage.lineproto import FieldValue, check_timestamp, encode, field_value, series_key

__all__ = [
    "ALARM",
    "ALARM_STATES",
    "NOTIFICATION",
    "NOTIFICATION_OUTCOMES",
    "READING",
    "SITE",
    "alarm_line",
    "notification_line",
    "reading_line",
    "site_line",
]

READING = "reading"
ALARM = "alarm"
NOTIFICATION = "notification"
SITE = "site"

ALARM_STATES = ("active-unacked", "active-acked", "cleared-unacked", "cleared")
"""ISA-18.2 states, as the ``state`` field of ``alarm`` points."""

NOTIFICATION_OUTCOMES = ("sent", "retry", "permanent")
"""What one delivery attempt came to, as the ``outcome`` field of ``notification`` points."""


def _drill(tags: dict[str, str], drill: bool) -> dict[str, str]:
    if drill:
        tags["drill"] = "true"
    return tags


@lru_cache(maxsize=65_536)
def _reading_key(enterprise: str, site: str, sensor: str, kind: str, drill: bool) -> str:
    # Escaping the four tags of every reading was most of the cost of a line; a sensor's tags
    # never change, so each series is escaped once (bounded: 65,536 series kept).
    tags = {"enterprise": enterprise, "site": site, "sensor": sensor, "kind": kind}
    return series_key(READING, _drill(tags, drill))


def reading_line(sensor: Sensor, reading: Reading, *, drill: bool = False) -> str:
    """A ``reading`` point: the measured value and its quality code.

    Tags ``enterprise``, ``site``, ``sensor`` (the sensor's short id, unique within its site)
    and ``kind`` (so one panel can show every gas detector of a county); fields ``value``
    (float) and ``quality`` (int, 0 good). The Grafana time-series panels plot
    ``mean("value")`` grouped by ``sensor``. ``ValueError`` for a non-finite value.
    """
    key = _reading_key(sensor.enterprise, sensor.site, sensor.id, sensor.kind, drill)
    check_timestamp(reading.ts_ms)
    value = field_value("value", float(reading.value))
    quality = field_value("quality", int(reading.quality))
    return f"{key} value={value},quality={quality} {reading.ts_ms}"


def alarm_line(
    *,
    enterprise: str,
    site: str,
    sensor: str,
    kind: str,
    rule: str,
    rule_kind: str,
    level: Level | None,
    state: str,
    severity: int,
    value: float,
    message: str,
    alarm_id: str,
    ts_ms: int,
    acked_by: str | None = None,
    drill: bool = False,
) -> str:
    """An ``alarm`` point: one transition of one alarm (raised, level change, ack, clear).

    Tags ``enterprise``, ``site``, ``sensor``, ``kind``, ``rule`` and ``level`` (``blue`` …
    ``red``, or ``none`` once cleared) let the duty-room dashboard filter and colour by level.
    Fields: ``state`` (ISA-18.2 state), ``severity`` (0 when not active, else the level 1–4,
    so a state-timeline panel can plot ``last("severity")`` per sensor), ``value`` (the value
    that caused the transition; left out when NaN, e.g. an offline alarm has no value),
    ``message`` (the text people received), ``alarm_id`` (to join with ``notification``
    points; a field, not a tag, because every occurrence has a new id and tags must stay
    bounded), ``rule_kind`` and, for acknowledgements, ``acked_by``.
    """
    if state not in ALARM_STATES:
        msg = f"alarm state {state!r} is not one of {', '.join(ALARM_STATES)}"
        raise ValueError(msg)
    if not 0 <= severity <= 4:
        msg = f"alarm severity must be 0–4, got {severity}"
        raise ValueError(msg)
    tags = {
        "enterprise": enterprise,
        "site": site,
        "sensor": sensor,
        "kind": kind,
        "rule": rule,
        "level": level.label if level is not None else "none",
    }
    fields: dict[str, FieldValue] = {"state": state, "severity": int(severity)}
    if not math.isnan(value):
        fields["value"] = float(value)
    fields["message"] = message
    fields["alarm_id"] = alarm_id
    fields["rule_kind"] = rule_kind
    if acked_by is not None:
        fields["acked_by"] = acked_by
    return encode(ALARM, _drill(tags, drill), fields, ts_ms)


def notification_line(
    *,
    alarm_id: str,
    enterprise: str,
    site: str,
    person: str,
    channel: str,
    outcome: str,
    attempt: int,
    ts_ms: int,
    drill: bool = False,
) -> str:
    """A ``notification`` point: one attempt to reach one person on one channel.

    Tags ``alarm_id`` (the duty room opens one alarm and sees who was called, in order),
    ``enterprise``, ``site`` (to count unanswered calls per site), ``person`` and ``channel``;
    fields ``outcome`` (``sent``, ``retry`` or ``permanent``) and ``attempt`` (1, 2, …).
    """
    if outcome not in NOTIFICATION_OUTCOMES:
        msg = f"notification outcome {outcome!r} is not one of {', '.join(NOTIFICATION_OUTCOMES)}"
        raise ValueError(msg)
    tags = {
        "alarm_id": alarm_id,
        "enterprise": enterprise,
        "site": site,
        "person": person,
        "channel": channel,
    }
    fields: dict[str, FieldValue] = {"outcome": outcome, "attempt": int(attempt)}
    return encode(NOTIFICATION, _drill(tags, drill), fields, ts_ms)


def site_line(
    *,
    enterprise: str,
    site: str,
    name: str,
    lat: float,
    lon: float,
    status: int,
    active: int,
    offline: int,
    sensors: int,
    ts_ms: int,
) -> str:
    """A ``site`` point: a periodic snapshot of one site for the Grafana geomap.

    The geomap panel takes ``last()`` of each field per ``site`` and places a marker at
    ``lat``/``lon`` (fields, since InfluxQL cannot select tags as values), coloured by
    ``status``: -1 every sensor offline, 0 no active alarm, 1–4 the highest active alarm
    level. ``active`` (active alarms), ``offline`` (sensors offline), ``sensors`` (sensors in
    total) and ``name`` (free text, so a field) fill the marker's tooltip.
    """
    if not -1 <= status <= 4:
        msg = f"site status must be -1–4, got {status}"
        raise ValueError(msg)
    tags = {"enterprise": enterprise, "site": site}
    fields: dict[str, FieldValue] = {
        "name": name,
        "lat": float(lat),
        "lon": float(lon),
        "status": int(status),
        "active": int(active),
        "offline": int(offline),
        "sensors": int(sensors),
    }
    return encode(SITE, tags, fields, ts_ms)
