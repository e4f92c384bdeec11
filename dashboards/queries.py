"""The InfluxQL text of every panel, variable and annotation, in one place.

Each function returns one statement over the schema of :mod:`storage.schema` with Grafana's
macros left in: ``$timeFilter`` (the dashboard's time range), ``${__from}``/``${__to}`` (its
ends in epoch milliseconds), ``$__interval`` (the bucket Grafana picks for the panel's width)
and the template variables ``$enterprise`` and ``$site``, which are matched as regular
expressions (``=~ /^$site$/``) because Grafana expands a multi-value or "All" selection of an
InfluxDB variable to ``(a|b|c)``.

Everything here runs on InfluxDB 1.6 and later and on 2.x through a DBRP mapping: no Flux, no
functions newer than 1.6. Drill data (tag ``drill=true``) is left out of every production
panel with ``"drill" != 'true'`` (an absent tag compares as the empty string).
"""

# Every value from the registry goes through literal() or regex_of(); building InfluxQL text
# is this module's purpose, so the string-built-query warning is off for the file.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ACTIVE_LOOKBACK",
    "RAIN_BUCKET",
    "acks",
    "active_alarms",
    "alarm_annotations",
    "alarms_per_level",
    "enterprise_values",
    "last_reports",
    "notifications",
    "offline_alarms",
    "reading",
    "rise_rate",
    "rolling_rain",
    "site_status",
    "site_values",
]

NOT_DRILL = "\"drill\" != 'true'"
ENTERPRISES = '"enterprise" =~ /^$enterprise$/'
SITES = '"site" =~ /^$site$/'

ACTIVE_LOOKBACK = "365d"
"""How far back the active-alarm tables look for an alarm's last transition. An alarm is
active until it clears, however old the range on screen, so the tables ignore the time
picker's start and look back this far from its end."""

RAIN_BUCKET = "5m"
"""Rolling rainfall sums are taken over 5-minute buckets aligned to the epoch, the buckets of
the accumulation rules (``rules/accumulation.py``), so the dashboard shows the very sums the
rules compared with their set-points."""

_ACTIVE_RANGE = f"time <= ${{__to}}ms AND time > ${{__to}}ms - {ACTIVE_LOOKBACK}"


def ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def regex_of(values: Iterable[str]) -> str:
    """``/^(a|b)$/`` matching exactly these values (registry ids: letters, digits, ``-_``)."""
    escaped = sorted(
        {"".join("\\" + c if not (c.isalnum() or c == "_") else c for c in v) for v in values}
    )
    return "/^(" + "|".join(escaped) + ")$/"


def _where(*conditions: str) -> str:
    return " AND ".join(c for c in conditions if c)


def _enterprise_filter(enterprise: str | None) -> str:
    """One enterprise's dashboards name it; the monitoring centre takes the variable."""
    return ENTERPRISES if enterprise is None else f'"enterprise" = {literal(enterprise)}'


def enterprise_values() -> str:
    """Template variable ``enterprise``: every enterprise with a site snapshot."""
    return 'SHOW TAG VALUES FROM "site" WITH KEY = "enterprise"'


def site_values() -> str:
    """Template variable ``site``: the sites of the selected enterprises."""
    return f'SHOW TAG VALUES FROM "site" WITH KEY = "site" WHERE {ENTERPRISES}'


def site_status() -> str:
    """Geomap: the last snapshot of every selected site (status, position, counts, name).

    The fields of one snapshot share a timestamp, so the ``last()`` of each comes from the
    same point.
    """
    return (
        'SELECT last("status") AS "status", last("lat") AS "lat", last("lon") AS "lon", '
        'last("name") AS "name", last("active") AS "active", last("offline") AS "offline", '
        'last("sensors") AS "sensors" '
        f'FROM "site" WHERE {_where("$timeFilter", ENTERPRISES, SITES)} '
        'GROUP BY "enterprise", "site"'
    )


def active_alarms(enterprise: str | None = None, *, extra: str = "") -> str:
    """Alarms not yet ``cleared``: the last transition of every (sensor, rule), kept when its
    state is ``active-unacked``, ``active-acked`` or ``cleared-unacked``.

    The inner query takes ``last("state")`` per series; the other fields, selected beside a
    single selector, come from that same point. ``extra`` narrows the alarms (the gas
    dashboard's offline detectors).
    """
    inner = (
        'SELECT last("state") AS "state", "severity", "value", "message", "alarm_id", '
        '"rule_kind" FROM "alarm" '
        f"WHERE {_where(_ACTIVE_RANGE, _enterprise_filter(enterprise), SITES, NOT_DRILL, extra)} "
        'GROUP BY "enterprise", "site", "sensor", "kind", "rule"'
    )
    return (
        'SELECT "severity", "state", "value", "message", "alarm_id", "rule_kind" '
        f"FROM ({inner}) WHERE \"state\" != 'cleared' "
        'GROUP BY "enterprise", "site", "sensor", "kind", "rule"'
    )


def offline_alarms(enterprise: str, kinds: Iterable[str]) -> str:
    """Offline alarms not yet cleared of the given sensor kinds (detectors that went silent)."""
    extra = _where("\"rule_kind\" = 'offline'", f'"kind" =~ {regex_of(kinds)}')
    return active_alarms(enterprise, extra=extra)


def acks(enterprise: str | None = None) -> str:
    """Who acknowledged which alarm occurrence: every acknowledgement point, by ``alarm_id``.

    Joined to :func:`active_alarms` on ``alarm_id`` in Grafana, so a name shows only beside the
    occurrence it acknowledged, even when the alarm changed level after the acknowledgement.
    """
    return (
        'SELECT "acked_by", "alarm_id" FROM "alarm" '
        f"WHERE {_where(_ACTIVE_RANGE, _enterprise_filter(enterprise), SITES, NOT_DRILL)} "
        "AND \"acked_by\" != ''"
    )


def notifications(enterprise: str | None = None) -> str:
    """Who was called about what: per alarm, person and channel the last outcome, the number
    of attempts and the highest attempt number, within the time range."""
    return (
        'SELECT last("outcome") AS "outcome", count("attempt") AS "attempts", '
        'max("attempt") AS "last_attempt" FROM "notification" '
        f"WHERE {_where('$timeFilter', _enterprise_filter(enterprise), SITES, NOT_DRILL)} "
        'GROUP BY "alarm_id", "enterprise", "site", "person", "channel"'
    )


def alarms_per_level(enterprise: str | None = None) -> str:
    """Alarm transitions awaiting acknowledgement per level and interval: raises and level
    changes (state ``active-unacked``), not acknowledgements or clears."""
    conditions = _where(
        "$timeFilter",
        _enterprise_filter(enterprise),
        SITES,
        NOT_DRILL,
        "\"state\" = 'active-unacked'",
    )
    return (
        f'SELECT count("severity") AS "alarms" FROM "alarm" WHERE {conditions} '
        'GROUP BY time($__interval), "level" fill(0)'
    )


def _sensor(enterprise: str, site: str, sensor: str) -> str:
    return _where(
        f'"enterprise" = {literal(enterprise)}',
        f'"site" = {literal(site)}',
        f'"sensor" = {literal(sensor)}',
    )


def reading(enterprise: str, site: str, sensor: str, aggregate: str = "mean") -> str:
    """One sensor's value per interval. ``aggregate`` is ``max`` for a sensor that alarms high,
    ``min`` for one that alarms low, so a peak that raised an alarm is never averaged away."""
    conditions = _where("$timeFilter", _sensor(enterprise, site, sensor), NOT_DRILL)
    return (
        f'SELECT {aggregate}("value") AS "value" FROM "reading" WHERE {conditions} '
        "GROUP BY time($__interval) fill(none)"
    )


def rise_rate(enterprise: str, site: str, sensor: str) -> str:
    """Rise rate per hour: ``derivative`` of the interval means, divided by the real time
    between buckets (gaps left out with ``fill(none)``)."""
    conditions = _where("$timeFilter", _sensor(enterprise, site, sensor), NOT_DRILL)
    return (
        f'SELECT derivative(mean("value"), 1h) AS "rise" FROM "reading" WHERE {conditions} '
        "GROUP BY time($__interval) fill(none)"
    )


def rolling_rain(enterprise: str, gauges: Iterable[tuple[str, str]], hours: int) -> str:
    """Rolling rainfall over the last ``hours`` hours, one series per gauge.

    ``sum`` per 5-minute bucket with ``fill(0)`` gives a bucket for every 5 minutes (a dry
    bucket is 0 mm, not missing), and ``moving_average`` over the ``hours × 12`` buckets up
    to each bucket, times their number, is their sum: the rolling sum at every bucket, exactly
    as the accumulation rule computes it. The query starts ``hours`` before the range so the
    first point on screen already sums a full window (Grafana draws only the range).
    """
    buckets = hours * 12
    pairs = " OR ".join(
        f'("site" = {literal(site)} AND "sensor" = {literal(sensor)})'
        for site, sensor in sorted(gauges)
    )
    conditions = _where(
        f"time >= ${{__from}}ms - {hours}h",
        "time <= ${__to}ms",
        f'"enterprise" = {literal(enterprise)}',
        f"({pairs})",
        SITES,
        NOT_DRILL,
    )
    return (
        f'SELECT moving_average(sum("value"), {buckets}) * {buckets} AS "rain_{hours}h" '
        f'FROM "reading" WHERE {conditions} '
        f'GROUP BY time({RAIN_BUCKET}), "site", "sensor" fill(0)'
    )


def last_reports(enterprise: str, kinds: Iterable[str]) -> str:
    """When each sensor of these kinds last reported and what, within the time range."""
    conditions = _where(
        "$timeFilter",
        f'"enterprise" = {literal(enterprise)}',
        f'"kind" =~ {regex_of(kinds)}',
        SITES,
        NOT_DRILL,
    )
    return (
        f'SELECT last("value") AS "value" FROM "reading" WHERE {conditions} '
        'GROUP BY "site", "sensor"'
    )


def alarm_annotations(enterprise: str) -> str:
    """Every alarm transition of the selected sites, as annotations: the message as text,
    sensor, level and state as tags."""
    conditions = _where("$timeFilter", f'"enterprise" = {literal(enterprise)}', SITES, NOT_DRILL)
    return f'SELECT "message", "sensor", "level", "state" FROM "alarm" WHERE {conditions}'
