"""Small typed accessors over line-aware YAML that collect plain-worded problems.

Every accessor returns ``None`` (and records a :class:`Problem` at the right line) instead of
raising, so one pass reports every error in a file, not just the first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from earlywarn.durations import parse_seconds
from earlywarn.yamlsource import Problem, YList, YMap

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PHONE_PATTERN = re.compile(r"^\+?[0-9][0-9 -]{4,19}$")


class FileChecker:
    """Reads values out of one file's YAML, recording problems against that file."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems

    def error(self, line: int, message: str) -> None:
        """Record a problem at ``line``."""
        self.problems.append(Problem(self.file, line, message))

    def as_map(self, value: Any, line: int, what: str) -> YMap | None:
        """``value`` if it is a mapping, else a problem saying what was expected."""
        if isinstance(value, YMap):
            return value
        self.error(line, f"{what} must be a mapping of fields, got {_describe(value)}")
        return None

    def as_list(self, value: Any, line: int, what: str) -> YList | None:
        """``value`` if it is a list, else a problem."""
        if isinstance(value, YList):
            return value
        self.error(line, f"{what} must be a list, got {_describe(value)}")
        return None

    def known_keys(self, m: YMap, allowed: Iterable[str], what: str) -> None:
        """Flag unknown (usually misspelt) fields, which would otherwise be silently ignored."""
        allowed_set = set(allowed)
        for key in m:
            if key not in allowed_set:
                choices = ", ".join(sorted(allowed_set))
                self.error(m.line_of(key), f"unknown field {key!r} in {what}; expected {choices}")

    def text(self, m: YMap, key: str, what: str, *, required: bool = True) -> str | None:
        """A non-empty string field (numbers are accepted and turned into text)."""
        if key not in m or m[key] is None:
            if required:
                self.error(m.line, f"{what} is missing the required field {key!r}")
            return None
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(m.line_of(key), f"{what}: {key!r} must be text, got {_describe(value)}")
            return None
        text = str(value).strip()
        if not text:
            self.error(m.line_of(key), f"{what}: {key!r} must not be empty")
            return None
        return text

    def phone(self, m: YMap, key: str, what: str) -> str | None:
        """A phone number as quoted text: digits, optional leading ``+``, spaces or dashes."""
        if key not in m or m[key] is None:
            self.error(m.line, f"{what} is missing the required field {key!r}")
            return None
        value = m[key]
        if not isinstance(value, str):
            self.error(
                m.line_of(key),
                f"{what}: {key!r} must be quoted text such as "
                f'"+8613800000000" (unquoted, YAML reads it as a number)',
            )
            return None
        if not PHONE_PATTERN.match(value.strip()):
            self.error(m.line_of(key), f"{what}: {key!r} {value!r} is not a phone number")
            return None
        return value.strip()

    def ident(self, m: YMap, key: str, what: str, *, required: bool = True) -> str | None:
        """An identifier used in topics and tags: ASCII letters, digits, ``_ . -``."""
        value = m.get(key)
        if value is None:
            if required:
                self.error(m.line, f"{what} is missing the required field {key!r}")
            return None
        if not isinstance(value, str) or not ID_PATTERN.match(value):
            self.error(
                m.line_of(key),
                f"{what}: {key!r} must be an id of ASCII letters, digits, '_', '.' or '-' "
                f"(at most 64, starting with a letter or digit), got {value!r}",
            )
            return None
        return value

    def number(self, m: YMap, key: str, what: str, *, required: bool = True) -> float | None:
        """A finite number."""
        if key not in m or m[key] is None:
            if required:
                self.error(m.line, f"{what} is missing the required field {key!r}")
            return None
        return self.number_value(m[key], m.line_of(key), f"{what}: {key!r}")

    def number_value(self, value: Any, line: int, what: str) -> float | None:
        """``value`` as a finite float, or a problem."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(line, f"{what} must be a number, got {_describe(value)}")
            return None
        if not math.isfinite(value):
            self.error(line, f"{what} must be a finite number, got {value!r}")
            return None
        return float(value)

    def seconds(self, m: YMap, key: str, what: str, default: float) -> float | None:
        """A duration field in seconds (``30s``, ``5min``…), ``default`` when absent."""
        if key not in m or m[key] is None:
            return default
        try:
            return parse_seconds(m[key])
        except ValueError as exc:
            self.error(m.line_of(key), f"{what}: {key!r}: {exc}")
            return None


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, YMap | dict):
        return "a mapping"
    if isinstance(value, YList | list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
