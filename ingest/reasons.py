"""Why an incoming message (or one value in it) was rejected: the dead-letter vocabulary.

Each reason is a stable token, counted per reason and written into the dead-letter message, so
an operator can see at a glance which devices send what kind of bad data.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """A rejection reason; the value is the token used in counters and dead-letter payloads."""

    BAD_TOPIC = "bad_topic"
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    BAD_JSON = "bad_json"
    BAD_SHAPE = "bad_shape"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    BAD_VALUE = "bad_value"
    NOT_FINITE = "not_finite"
    WRONG_UNIT = "wrong_unit"
    UNKNOWN_SENSOR = "unknown_sensor"
    UNKNOWN_CHANNEL = "unknown_channel"
    TOO_MANY_READINGS = "too_many_readings"
    INTERNAL_ERROR = "internal_error"


class PayloadError(Exception):
    """A payload (or one reading in it) cannot be accepted; ``detail`` says why in plain words."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
