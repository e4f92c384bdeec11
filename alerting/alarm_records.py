"""The records of Kafka's ``ew.alarms``: what the workers write and the alerter reads.

One record per alarm event, keyed by the alarm id so that every event of one occurrence goes
to one partition and is read in the order it was written. The value is the event as
:func:`alerting.codec.event_to_dict` writes it for the retained ``…/alarm`` topics, plus the
three display names, because the alerter builds notifications from the event alone and has no
reason to look names up in a registry that may have changed since.
"""

from __future__ import annotations

import json

from alerting.codec import event_from_dict, event_to_dict
from earlywarn.model import AlarmEvent

ALARMS_TOPIC = "ew.alarms"


def alarm_key(event: AlarmEvent) -> bytes:
    """The record key: the alarm id (UTF-8)."""
    return event.alarm_id.encode("utf-8")


def alarm_value(event: AlarmEvent) -> bytes:
    """The record value: compact UTF-8 JSON with sorted keys (the same event always gives the
    same bytes, which makes duplicates easy to see in a topic dump)."""
    data = event_to_dict(event)
    data["enterprise_name"] = event.enterprise_name
    data["site_name"] = event.site_name
    data["sensor_name"] = event.sensor_name
    text = json.dumps(
        data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return text.encode("utf-8")


def alarm_from_value(value: bytes) -> AlarmEvent:
    """The event of :func:`alarm_value`'s bytes; :class:`ValueError` with a plain message when
    they are not UTF-8 JSON or a field is missing or of the wrong type."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"the record value is not UTF-8 text (byte {exc.start})"
        raise ValueError(msg) from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        msg = f"the record value is not JSON: {exc}"
        raise ValueError(msg) from None
    return event_from_dict(data)
