"""Escalation policies: the defaults plan what the issue asks for; the planner's rules.

A plan is compared as a list of ``(minute, rung number, channels)`` so that each test reads
like the escalation it describes.
"""

from __future__ import annotations

from itertools import islice

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.policy import (
    DEFAULT_POLICIES,
    IM,
    PlannedSend,
    Policy,
    RungSelector,
    Step,
    allows,
    contacts_for,
    default_policy,
    plan,
    restrict,
)
from earlywarn.model import Level, Person

START = 1_790_000_000_000
MIN = 60_000


def sends(
    policy: Policy,
    rungs: int,
    minutes: int,
    channels: frozenset[str] | None = None,
) -> list[tuple[int, int, tuple[str, ...]]]:
    """``(minute, rung number from 1, channels)`` of every send up to ``minutes``."""
    horizon = START + minutes * MIN
    return [
        (s.offset_ms // MIN, s.rung + 1, s.channels)
        for s in plan(policy, START, rungs, channels=channels, horizon_ms=horizon)
    ]


def test_every_level_has_a_default_policy_named_after_it() -> None:
    for level in Level:
        assert DEFAULT_POLICIES[default_policy(level)].name == level.label


def test_blue_is_one_im_message_to_every_rung() -> None:
    assert sends(DEFAULT_POLICIES["blue"], 2, 60) == [(0, 1, (IM,)), (0, 2, (IM,))]


def test_yellow_is_im_and_sms_once() -> None:
    assert sends(DEFAULT_POLICIES["yellow"], 1, 60) == [(0, 1, (IM, "sms"))]


def test_orange_calls_the_first_rung_every_5_minutes_and_climbs_every_10() -> None:
    voice, both = ("voice",), ("sms", "voice")
    assert sends(DEFAULT_POLICIES["orange"], 3, 30) == [
        (0, 1, both),  # SMS and a call to the first rung
        (5, 1, voice),  # the call repeats every 5 minutes …
        (10, 1, voice),
        (10, 2, both),  # … after 10 minutes the next rung is added
        (15, 1, voice),
        (15, 2, voice),  # and its calls repeat with the first rung's
        (20, 1, voice),
        (20, 2, voice),
        (20, 3, both),  # another rung every 10 minutes
        (25, 1, voice),
        (25, 2, voice),
        (25, 3, voice),
        (30, 1, voice),
        (30, 2, voice),
        (30, 3, voice),  # the chain is exhausted: no more rungs to add
    ]


def test_red_calls_every_rung_at_once_and_every_3_minutes() -> None:
    planned = sends(DEFAULT_POLICIES["red"], 3, 9)
    assert planned[:3] == [(0, r, ("sms", "voice")) for r in (1, 2, 3)]
    assert planned[3:] == [(m, r, ("voice",)) for m in (3, 6, 9) for r in (1, 2, 3)]


def test_repeats_stop_when_the_alarm_clears_by_default() -> None:
    for policy in DEFAULT_POLICIES.values():
        assert all(s.stop_on_clear for s in islice(plan(policy, START, 3), 50))
    assert DEFAULT_POLICIES["orange"].cleared == ("sms",)


def test_planned_sends_carry_absolute_times_and_unique_keys() -> None:
    planned = list(islice(plan(DEFAULT_POLICIES["orange"], START, 4), 200))
    first = planned[0]
    assert first == PlannedSend(START, 0, 0, 0, 0, ("sms", "voice"), True)
    keys = [(s.step, s.repeat, s.rung) for s in planned]
    assert len(set(keys)) == len(keys)
    assert [s.due_ms for s in planned] == sorted(s.due_ms for s in planned)
    assert all(s.due_ms == START + s.offset_ms for s in planned)


def test_the_plan_is_lazy_and_endless_with_a_repeat() -> None:
    planned = list(islice(plan(DEFAULT_POLICIES["red"], START, 1), 1000))
    assert len(planned) == 1000
    assert planned[-1].offset_ms == 999 * 3 * MIN  # one send at 0, 3, 6 … minutes


def test_no_rungs_no_sends() -> None:
    assert list(plan(DEFAULT_POLICIES["red"], START, 0)) == []


def test_rung_numbers_beyond_the_chain_are_skipped() -> None:
    policy = Policy("p", (Step(0, (1, 3), ("sms",)), Step(5 * MIN, (4,), ("voice",))))
    assert sends(policy, 2, 60) == [(0, 1, ("sms",))]


def test_repeats_are_bounded_by_count_and_by_time() -> None:
    by_count = Policy("c", (Step(0, "first", ("voice",), 2 * MIN, max_repeats=2),))
    assert [m for m, _, _ in sends(by_count, 1, 60)] == [0, 2, 4]
    by_time = Policy("t", (Step(MIN, "first", ("voice",), 2 * MIN, repeat_for_ms=5 * MIN),))
    assert [m for m, _, _ in sends(by_time, 1, 60)] == [1, 3, 5]
    acked = Policy("a", (Step(0, "first", ("voice",), MIN, stop_on_clear=False),))
    assert not next(plan(acked, START, 1)).stop_on_clear


def test_next_climbs_one_rung_per_repeat_and_stops_at_the_end() -> None:
    policy = Policy("climb", (Step(0, "next", ("sms",), 10 * MIN),))
    # Finite: once the chain is exhausted the step ends, even with no horizon.
    assert [(m, r) for m, r, _ in sends(policy, 3, 10_000)] == [(0, 1), (10, 2), (20, 3)]
    assert len(list(plan(policy, START, 3))) == 3


def test_reached_only_names_rungs_reached_before_now() -> None:
    policy = Policy(
        "p",
        (
            Step(0, "reached", ("voice",), 5 * MIN),  # nothing reached yet at 0
            Step(0, "first", ("sms",)),
            Step(5 * MIN, (2,), ("sms",)),
        ),
    )
    assert sends(policy, 2, 10) == [
        (0, 1, ("sms",)),
        (5, 1, ("voice",)),
        (5, 2, ("sms",)),
        (10, 1, ("voice",)),
        (10, 2, ("voice",)),
    ]


def test_a_policy_that_can_reach_nobody_ends() -> None:
    policy = Policy("p", (Step(0, "reached", ("voice",), MIN),))
    assert list(plan(policy, START, 3)) == []
    beyond = Policy("q", (Step(0, (5,), ("sms",)), Step(0, "reached", ("voice",), MIN)))
    assert list(plan(beyond, START, 3)) == []


def test_a_channel_restriction_changes_what_is_sent_never_when() -> None:
    only_sms = frozenset({"sms"})
    assert sends(DEFAULT_POLICIES["orange"], 2, 10, only_sms) == [
        (0, 1, ("sms",)),
        (10, 2, ("sms",)),
    ]
    # Nothing left to send: the plan ends instead of spinning.
    assert list(plan(DEFAULT_POLICIES["red"], START, 2, channels=frozenset({"email"}))) == []


def test_im_in_a_restriction_admits_every_im_channel_and_back() -> None:
    assert allows(None, "voice")
    assert allows(frozenset({IM}), "dingtalk")
    assert allows(frozenset({"wecom"}), IM)
    assert not allows(frozenset({"sms"}), IM)
    assert not allows(frozenset({IM}), "sms")
    assert restrict((IM, "sms", "voice"), frozenset({"feishu", "voice"})) == (IM, "voice")


ZHOU = Person(
    "hx-ops-zhou",
    "周立军",
    "操作负责人",
    "+8613800020003",
    (("voice", "+8613800020009"), ("wecom", "zhou-wx"), ("dingtalk", "hx-zhoulijun")),
)
OWNER = Person("r01-owner", "店主", "店主", "+8613800030101", (("email", "o@example.cn"),))


def test_im_is_the_first_im_contact_in_the_persons_own_order() -> None:
    assert contacts_for(ZHOU, [IM]) == (("wecom", "zhou-wx"),)
    assert contacts_for(ZHOU, [IM], frozenset({"dingtalk"})) == (("dingtalk", "hx-zhoulijun"),)


def test_sms_and_voice_fall_back_to_the_phone_and_im_to_sms() -> None:
    assert contacts_for(ZHOU, ["sms", "voice"]) == (
        ("sms", "+8613800020003"),
        ("voice", "+8613800020009"),  # the voice contact wins over the phone
    )
    # No IM contact: a blue alarm still reaches the owner, by SMS; asked for both, one SMS.
    assert contacts_for(OWNER, [IM, "sms"]) == (("sms", "+8613800030101"),)
    assert contacts_for(OWNER, [IM], frozenset({IM})) == ()
    assert contacts_for(OWNER, ["dingtalk", "email", "console"]) == (
        ("email", "o@example.cn"),
        ("console", "r01-owner"),
    )


@pytest.mark.parametrize(
    ("step", "words"),
    [
        ((-1, "first", ("sms",)), "negative"),
        ((0, "some", ("sms",)), "unknown rungs"),
        ((0, (0,), ("sms",)), "count from 1"),
        ((0, "first", ()), "at least one channel"),
        ((0, "first", ("pager",)), "unknown channel 'pager'"),
        ((0, "first", ("sms",), 0), "positive"),
        ((0, "first", ("sms",), None, True, 3), "needs 'repeat'"),
    ],
)
def test_a_step_checks_itself(step: tuple[object, ...], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Step(*step)  # type: ignore[arg-type]


def test_a_policy_checks_itself() -> None:
    with pytest.raises(ValueError, match="no steps"):
        Policy("empty", ())
    with pytest.raises(ValueError, match="unknown channel"):
        Policy("p", (Step(0, "all", ("sms",)),), cleared=("fax",))
    assert DEFAULT_POLICIES["red"].channels == frozenset({"sms", "voice"})


selectors: st.SearchStrategy[RungSelector] = st.one_of(
    st.sampled_from(["first", "next", "all", "reached"]),
    st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple),
)
steps_st = st.builds(
    Step,
    st.integers(0, 30).map(lambda m: m * MIN),
    selectors,
    st.sampled_from([("sms",), ("voice",), (IM, "sms")]),
    st.one_of(st.none(), st.integers(1, 10).map(lambda m: m * MIN)),
)


@given(st.lists(steps_st, min_size=1, max_size=4), st.integers(0, 6))
def test_any_plan_is_in_time_order_within_its_rungs_and_never_repeats_a_key(
    steps: list[Step], rungs: int
) -> None:
    policy = Policy("p", tuple(steps))
    planned = list(islice(plan(policy, START, rungs, horizon_ms=START + 120 * MIN), 2000))
    assert [s.due_ms for s in planned] == sorted(s.due_ms for s in planned)
    assert all(0 <= s.rung < rungs for s in planned)
    keys = [(s.step, s.repeat, s.rung) for s in planned]
    assert len(set(keys)) == len(keys)
