"""Composite (zone) rule: k of n member sensors at or above a level raise one zone alarm.

Two gas detectors in the same zone both in alarm are far more likely a real leak than one
detector alone, so the zone raises its own alarm, usually at a higher level ("2 of the 4
detectors of the north tank farm at orange or above → zone red").

A member *counts* when its level — the highest active alarm level over its rules, or over
one chosen rule (``member_rule``) — is at or above ``at_level``. Whoever runs the rules
(the pipeline) works out that level and calls :func:`update` when it may have changed (it may
call more often: an unchanged level changes nothing, but lets on- and off-delays run). The
zone alarm is held exactly while at least ``min_count`` members count; it goes through the
shared latch (:mod:`rules.latch`) with one level, so on- and off-delays behave as for the
other kinds.

Members report at their own pace, so updates are not ordered in time: a member's level is
always recorded, and the latch runs on the newest time it has seen (it never goes back).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules import quality
from rules.events import RuleEvent, with_flapping
from rules.latch import Delays, LatchState, cached_delays
from rules.levels import Level

KIND = "composite"


@dataclass(frozen=True, slots=True)
class CompositeRule:
    """``min_count`` of ``members`` at ``at_level`` or above raise the zone alarm at ``level``.

    ``members`` are sensor uids (``enterprise/site/sensor``). ``member_rule``, if given, is the
    id of the member rule whose level counts (e.g. ``combustible_gas``, so that an offline or
    out-of-range alarm of a detector is not taken for gas); otherwise a member's highest
    active level over all of its rules counts.
    """

    rule_id: str
    members: tuple[str, ...]
    min_count: int
    at_level: Level
    level: Level
    off_delay_ms: int = 0
    on_delay_ms: int = 0
    member_rule: str | None = None

    def __post_init__(self) -> None:
        name = f"rule {self.rule_id!r}"
        if not isinstance(self.rule_id, str) or not self.rule_id:
            msg = "a composite rule needs a rule id"
            raise ValueError(msg)
        members = tuple(self.members)
        if any(not isinstance(m, str) or not m for m in members):
            msg = f"{name}: members must be sensor ids (non-empty text)"
            raise ValueError(msg)
        if len(members) < 2:
            msg = f"{name}: a composite rule needs at least 2 members, got {len(members)}"
            raise ValueError(msg)
        repeated = sorted({m for m in members if members.count(m) > 1})
        if repeated:
            msg = f"{name}: each member may appear only once; repeated: {', '.join(repeated)}"
            raise ValueError(msg)
        k = self.min_count
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(members):
            msg = (
                f"{name}: min_count must be a whole number from 1 to the number of members "
                f"({len(members)}), got {k!r}"
            )
            raise ValueError(msg)
        at_level = quality.as_level(self.rule_id, self.at_level)
        level = quality.as_level(self.rule_id, self.level)
        if level < at_level:
            msg = (
                f"{name}: the zone level {level.label} is below the member level "
                f"{at_level.label}; a zone alarm must not be lower than what its members show"
            )
            raise ValueError(msg)
        if self.member_rule is not None and (
            not isinstance(self.member_rule, str) or not self.member_rule
        ):
            msg = f"{name}: member_rule must be a rule id, got {self.member_rule!r}"
            raise ValueError(msg)
        quality.check_delays(self.rule_id, self.on_delay_ms, self.off_delay_ms)
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "at_level", at_level)
        object.__setattr__(self, "level", level)

    @property
    def delays(self) -> Delays:
        """On- and off-delay for the latch (no consecutive count: updates are not readings)."""
        return cached_delays(self.on_delay_ms, self.off_delay_ms)

    @property
    def kind(self) -> str:
        """``composite``."""
        return KIND

    @property
    def label(self) -> str:
        """``2/4 测点≥橙色``: how many of how many members at what level raise the alarm."""
        return f"{self.min_count}/{len(self.members)} 测点≥{self.at_level.zh}"

    def initial(self) -> CompositeState:
        """No alarm, no member heard from."""
        return CompositeState()

    def state_from_dict(self, data: Mapping[str, Any]) -> CompositeState:
        """Read back :meth:`CompositeState.to_dict`; members no longer configured are dropped."""
        state = CompositeState.from_dict(data)
        kept = {uid: lvl for uid, lvl in state.member_levels.items() if uid in self.members}
        return dataclasses.replace(state, member_levels=kept)

    def count(self, state: CompositeState) -> int:
        """How many members are at ``at_level`` or above in ``state``."""
        return sum(1 for lvl in state.member_levels.values() if lvl >= self.at_level)


@dataclass(frozen=True, slots=True)
class CompositeState:
    """The latch and the last level reported for each member (uid → level, 0 for none).

    The mapping is never changed in place: :func:`update` builds a new one.
    """

    latch: LatchState = field(default_factory=LatchState)
    member_levels: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return {"latch": self.latch.to_dict(), "members": dict(sorted(self.member_levels.items()))}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompositeState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            latch=LatchState.from_dict(data["latch"]),
            member_levels={str(uid): int(lvl) for uid, lvl in data.get("members", {}).items()},
        )


def update(
    rule: CompositeRule, state: CompositeState, member_uid: str, member_level: int, ts_ms: int
) -> tuple[CompositeState, RuleEvent | None]:
    """Record ``member_uid``'s current level (0: no active alarm) at ``ts_ms``.

    Returns the new state and the zone alarm's transition, if any. The event's value is the
    number of members at or above ``at_level``; its set-point is ``min_count``.
    """
    if member_uid not in rule.members:
        msg = f"rule {rule.rule_id!r}: {member_uid!r} is not a member"
        raise ValueError(msg)
    if isinstance(member_level, bool) or not 0 <= int(member_level) <= max(Level):
        msg = (
            f"rule {rule.rule_id!r}: a member level is 0 to {int(max(Level))}, got {member_level!r}"
        )
        raise ValueError(msg)
    levels = {**state.member_levels, member_uid: int(member_level)}
    last = state.latch.last_ts_ms
    at = ts_ms if last is None else max(ts_ms, last)
    interim = CompositeState(state.latch, levels)
    count = rule.count(interim)
    latch, moved = quality.step_one(
        rule.delays, rule.level, count >= rule.min_count, state.latch, at
    )
    new_state = CompositeState(latch, levels)
    if moved is None:
        return new_state, None
    event = quality.make_event(
        rule.rule_id,
        KIND,
        moved,
        direction="high",
        value=float(count),
        setpoint=float(rule.min_count),
        label=rule.label,
        ts_ms=at,
        window_ms=None,
    )
    # Not run by the engine, so the rule sets the latch's flapping flag on its event itself.
    return new_state, with_flapping(event, latch.flapping)
