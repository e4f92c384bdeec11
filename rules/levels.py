"""The four warning levels of Chinese emergency warnings, ordered blue < yellow < orange < red.

Defined here (not in ``earlywarn.model``) because rules map set-points to levels and must not
import anything outside ``rules``; the domain model re-exports it.
"""

from __future__ import annotations

from enum import IntEnum


class Level(IntEnum):
    """Warning level; the integer order is the severity order (IV blue lowest, I red highest)."""

    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def label(self) -> str:
        """Lower-case English name, as used in YAML, topics and the InfluxDB ``level`` tag."""
        return self.name.lower()

    @property
    def zh(self) -> str:
        """Chinese colour name as printed in warnings (蓝色 … 红色)."""
        return _ZH[self]

    @property
    def roman(self) -> str:
        """Response grade: red is I (highest), blue is IV."""
        return _ROMAN[self]

    @classmethod
    def parse(cls, text: str) -> Level:
        """Accept ``red``, ``RED``, ``红色``, ``红`` or ``I``; ``ValueError`` lists the choices."""
        key = text.strip()
        for level in cls:
            if key.lower() == level.label or key in (level.zh, level.zh[0], level.roman):
                return level
        choices = ", ".join(level.label for level in cls)
        msg = f"unknown level {text!r}: expected one of {choices}"
        raise ValueError(msg)


_ZH = {Level.BLUE: "蓝色", Level.YELLOW: "黄色", Level.ORANGE: "橙色", Level.RED: "红色"}
_ROMAN = {Level.BLUE: "IV", Level.YELLOW: "III", Level.ORANGE: "II", Level.RED: "I"}
