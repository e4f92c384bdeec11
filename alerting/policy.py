"""Escalation policies: when, to which rungs and on which channels an alarm is sent.

A policy is a list of steps, each an offset from the alarm's start, a choice of rungs, a
set of channels and an optional repeat. :func:`plan` turns a policy and a number of rungs into
the sequence of planned sends; the escalation engine walks it, resolving rungs to people at
the moment of sending and skipping what an acknowledgement (always) or the alarm clearing
(unless the step says ``until: acked``) has made pointless. Nothing here knows the clock,
the store or the channels, so every policy can be checked by listing its plan.

Defaults (:data:`DEFAULT_POLICIES`, one per level, used when ``escalation.yaml`` does not
redefine them):

- blue: an IM message to every rung of the blue chain, once;
- yellow: IM and SMS to every rung, once;
- orange: SMS and a voice call to the first rung; the call repeats every 5 min to every
  rung reached so far; at 10 min the next rung gets SMS and a call, and another rung is
  added every 10 min until the chain is exhausted (an unanswered alarm must reach the
  主要负责人 and the duty officers the enterprise put in its orange chain, not stop at two);
- red: SMS and a voice call to every rung at once, the call repeating every 3 min. The
  SMS is ours, not the issue's: it carries the acknowledgement link and the details a
  call's text-to-speech cannot leave behind.

Every repeat stops at the acknowledgement. When the alarm clears unacknowledged, the steps
stop too (``until: cleared``, the default) and everyone already notified gets one "cleared"
message on the policy's ``cleared`` channels; ``until: acked`` keeps a step going until
someone acknowledges.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from earlywarn.model import Level, Person

__all__ = [
    "CHANNELS",
    "CHANNEL_NAMES",
    "DEFAULT_POLICIES",
    "IM",
    "IM_CHANNELS",
    "SELECTORS",
    "PlannedSend",
    "Policy",
    "RungSelector",
    "Step",
    "allows",
    "contacts_for",
    "default_policy",
    "plan",
    "restrict",
]

CHANNELS = ("console", "sms", "voice", "email", "dingtalk", "wecom", "feishu", "webhook")
"""Channel names a contact, a step or a route may use."""
IM = "im"
IM_CHANNELS = ("dingtalk", "wecom", "feishu", "webhook")
"""What ``im`` stands for: the person's first contact on one of these, in the person's order."""
CHANNEL_NAMES = (*CHANNELS, IM)
WRITTEN_FALLBACK = ("sms", "email")
"""Where ``im`` goes for a person with no IM contact: a blue alarm must still reach them."""
PHONE_CHANNELS = ("sms", "voice")
"""Channels that fall back to the person's ``phone`` when no contact is given for them."""

Selector = Literal["first", "next", "all", "reached"]
SELECTORS: tuple[Selector, ...] = ("first", "next", "all", "reached")
RungSelector = Selector | tuple[int, ...]
"""Which rungs a step sends to: a keyword, or rung numbers counted from 1.

``first``: rung 1. ``all``: every rung. ``next``: the lowest rung not reached yet; a
repeating ``next`` step climbs one rung per repeat. ``reached``: every rung reached at an
earlier time (by any step), so a repeated call follows the chain as it climbs. Numbers
beyond the chain's length are skipped: chains differ between enterprises.
"""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a policy; times are milliseconds from the alarm's start.

    ``repeat_ms``: send again at this interval. ``stop_on_clear``: stop (and do not start)
    once the alarm has cleared, even unacknowledged; an ack always stops. ``max_repeats`` and
    ``repeat_for_ms`` bound the repeats by count (not counting the first send) and by time
    after the first send.
    """

    after_ms: int
    rungs: RungSelector
    channels: tuple[str, ...]
    repeat_ms: int | None = None
    stop_on_clear: bool = True
    max_repeats: int | None = None
    repeat_for_ms: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.after_ms < 0:
            problems.append("'after' must not be negative")
        if isinstance(self.rungs, tuple):
            if not self.rungs or any(n < 1 for n in self.rungs):
                problems.append("rung numbers count from 1")
        elif self.rungs not in SELECTORS:
            problems.append(f"unknown rungs {self.rungs!r}")
        if not self.channels:
            problems.append("a step needs at least one channel")
        unknown = [c for c in self.channels if c not in CHANNEL_NAMES]
        if unknown:
            problems.append(f"unknown channel {unknown[0]!r}")
        if self.repeat_ms is not None and self.repeat_ms <= 0:
            problems.append("'repeat' must be a positive interval")
        limited = self.max_repeats is not None or self.repeat_for_ms is not None
        if limited and self.repeat_ms is None:
            problems.append("a limit on repeats needs 'repeat'")
        if self.max_repeats is not None and self.max_repeats < 1:
            problems.append("a number of repeats must be at least 1")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True, slots=True)
class Policy:
    """A named escalation policy; ``cleared``: channels of the one "cleared" message."""

    name: str
    steps: tuple[Step, ...]
    cleared: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.steps:
            msg = f"policy {self.name!r} has no steps"
            raise ValueError(msg)
        unknown = [c for c in self.cleared if c not in CHANNEL_NAMES]
        if unknown:
            msg = f"policy {self.name!r}: unknown channel {unknown[0]!r}"
            raise ValueError(msg)

    @property
    def channels(self) -> frozenset[str]:
        """Every channel a step of this policy uses."""
        return frozenset(c for step in self.steps for c in step.channels)


_MIN = 60_000

DEFAULT_POLICIES: Mapping[str, Policy] = {
    "blue": Policy("blue", (Step(0, "all", (IM,)),), cleared=(IM,)),
    "yellow": Policy("yellow", (Step(0, "all", (IM, "sms")),), cleared=(IM,)),
    "orange": Policy(
        "orange",
        (
            Step(0, "first", ("sms", "voice")),
            Step(5 * _MIN, "reached", ("voice",), repeat_ms=5 * _MIN),
            Step(10 * _MIN, "next", ("sms", "voice"), repeat_ms=10 * _MIN),
        ),
        cleared=("sms",),
    ),
    "red": Policy(
        "red",
        (
            Step(0, "all", ("sms", "voice")),
            Step(3 * _MIN, "all", ("voice",), repeat_ms=3 * _MIN),
        ),
        cleared=("sms",),
    ),
}


def default_policy(level: Level) -> str:
    """The name of the policy an alarm of ``level`` gets unless a route says otherwise."""
    return level.label


@dataclass(frozen=True, slots=True)
class PlannedSend:
    """One planned send: rung ``rung`` (from 0) on ``channels`` at ``due_ms``.

    ``(step, repeat, rung)`` is unique within a plan, so it can key a durable timer and
    keep a restarted engine from sending the same thing twice. ``repeat`` is 0 for a step's
    first send. ``stop_on_clear`` is the step's: skip this send if the alarm has cleared.
    """

    due_ms: int
    offset_ms: int
    step: int
    repeat: int
    rung: int
    channels: tuple[str, ...]
    stop_on_clear: bool


def allows(allowed: frozenset[str] | None, channel: str) -> bool:
    """Whether a route's channel restriction lets ``channel`` through (``None``: anything).

    ``im`` in a restriction admits every IM channel, and a step's ``im`` passes a
    restriction naming at least one IM channel.
    """
    if allowed is None or channel in allowed:
        return True
    if channel == IM:
        return any(c in allowed for c in IM_CHANNELS)
    return channel in IM_CHANNELS and IM in allowed


def restrict(channels: Iterable[str], allowed: frozenset[str] | None) -> tuple[str, ...]:
    """``channels`` that ``allowed`` lets through, in order."""
    return tuple(c for c in channels if allows(allowed, c))


def contacts_for(
    person: Person, channels: Iterable[str], allowed: frozenset[str] | None = None
) -> tuple[tuple[str, str], ...]:
    """``(channel, address)`` pairs to reach ``person`` on ``channels``, without repeats.

    ``im`` becomes the person's first IM contact (see :data:`IM_CHANNELS`), or their SMS or
    e-mail when they have none. ``sms`` and ``voice`` fall back to the person's ``phone``;
    ``console`` needs no address (the person id stands in). A channel the person has no
    address for is left out.
    """
    contacts = [(c, a) for c, a in person.contacts if allows(allowed, c)]
    found: dict[tuple[str, str], None] = {}
    for channel in channels:
        if not allows(allowed, channel):
            continue
        if channel == IM:
            pair = next(((c, a) for c, a in contacts if c in IM_CHANNELS), None)
            for fallback in WRITTEN_FALLBACK:
                if pair is None:
                    pair = _address(person, contacts, fallback, allowed)
        else:
            pair = _address(person, contacts, channel, allowed)
        if pair is not None:
            found[pair] = None
    return tuple(found)


def _address(
    person: Person, contacts: list[tuple[str, str]], channel: str, allowed: frozenset[str] | None
) -> tuple[str, str] | None:
    if not allows(allowed, channel):
        return None
    for c, a in contacts:
        if c == channel:
            return (c, a)
    if channel in PHONE_CHANNELS:
        return (channel, person.phone)
    if channel == "console":
        return (channel, person.id)
    return None


def plan(
    policy: Policy,
    start_ms: int,
    rungs: int,
    *,
    channels: frozenset[str] | None = None,
    horizon_ms: int | None = None,
) -> Iterator[PlannedSend]:
    """The sends ``policy`` plans for an alarm that started at ``start_ms``, in time order.

    ``rungs`` is the number of rungs of the decision, ``channels`` its restriction.
    Lazy and, with a repeat, endless: stop at ``horizon_ms`` (inclusive) or take what you
    need. Sends at one instant come in step order, then rung order. A rung counts as reached
    by the step that selects it even if the restriction leaves that step nothing to send, so
    a restriction changes what is sent, never when the chain climbs.
    """
    steps = policy.steps
    allowed = [restrict(step.channels, channels) for step in steps]
    pending: list[tuple[int, int, int]] = [(s.after_ms, i, 0) for i, s in enumerate(steps)]
    heapq.heapify(pending)
    reached: set[int] = set()
    while pending and rungs > 0 and _can_send(pending, steps, allowed, reached):
        offset = pending[0][0]
        if horizon_ms is not None and start_ms + offset > horizon_ms:
            return
        group = []
        while pending and pending[0][0] == offset:
            group.append(heapq.heappop(pending))
        before = frozenset(reached)
        for index, (_, i, repeat) in enumerate(group):
            step = steps[i]
            chosen = _select(step.rungs, rungs, before, reached)
            if chosen is None and step.rungs == "reached":
                later = [steps[j] for _, j, _ in group[index + 1 :]]
                if reached or _reaching([steps[j] for _, j, _ in pending] + later):
                    chosen = ()
            if chosen is None:
                continue  # this step has nothing left to select: it ends here
            for rung in chosen:
                if allowed[i]:
                    yield PlannedSend(
                        start_ms + offset, offset, i, repeat, rung, allowed[i], step.stop_on_clear
                    )
            reached.update(chosen)
            again = _repeat_offset(step, repeat + 1)
            if again is not None:
                heapq.heappush(pending, (again, i, repeat + 1))


def _select(
    selector: RungSelector, rungs: int, before: frozenset[int], reached: set[int]
) -> tuple[int, ...] | None:
    """The rungs a step selects now, or ``None`` when it can never select any again."""
    if isinstance(selector, tuple):
        chosen = tuple(sorted({n - 1 for n in selector if n <= rungs}))
    elif selector == "first":
        chosen = (0,)
    elif selector == "all":
        chosen = tuple(range(rungs))
    elif selector == "next":
        chosen = tuple(r for r in range(rungs) if r not in reached)[:1]
    else:
        chosen = tuple(sorted(before))
    return chosen or None


def _reaching(steps: Iterable[Step]) -> bool:
    return any(s.rungs != "reached" for s in steps)


def _can_send(
    pending: list[tuple[int, int, int]],
    steps: tuple[Step, ...],
    allowed: list[tuple[str, ...]],
    reached: set[int],
) -> bool:
    """Whether anything pending can still produce a send, so an endless plan never spins idle."""
    queued = [steps[i] for _, i, _ in pending]
    reaching = _reaching(queued)
    return any(
        allowed[i] and (steps[i].rungs != "reached" or reached or reaching) for _, i, _ in pending
    )


def _repeat_offset(step: Step, repeat: int) -> int | None:
    if step.repeat_ms is None:
        return None
    if step.max_repeats is not None and repeat > step.max_repeats:
        return None
    if step.repeat_for_ms is not None and repeat * step.repeat_ms > step.repeat_for_ms:
        return None
    return step.after_ms + repeat * step.repeat_ms
