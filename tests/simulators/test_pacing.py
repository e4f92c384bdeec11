"""The speed factor, on an injected clock: nobody waits for real."""

from __future__ import annotations

from simulators.engine import Simulation
from simulators.messages import Message
from simulators.pacing import Pacer
from simulators.play import play
from simulators.transform import mark_drill, shift, shift_to_now
from tests.simulators.scenarios import HOUR, START, gas_device, scenario


class FakeTime:
    """A monotonic clock whose sleep moves it forward and records the request."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> bool:
        self.slept.append(seconds)
        self.now += seconds
        return True


def run_at(speed: float) -> tuple[FakeTime, list[tuple[float, Message]]]:
    clock = FakeTime()
    sent: list[tuple[float, Message]] = []
    sim = Simulation(scenario((gas_device(),), hours=1))
    play(
        sim.messages(),
        [lambda m: sent.append((clock.now, m))],
        pacer=Pacer(speed, clock.monotonic, clock.sleep),
    )
    return clock, sent


def test_an_hour_at_speed_60_takes_a_minute_and_each_message_goes_on_time() -> None:
    _clock, sent = run_at(60.0)
    first_real, first = sent[0]
    last_real, last = sent[-1]
    assert abs((last_real - first_real) - (last.t_ms - first.t_ms) / 1000 / 60) < 1e-6
    assert 59.0 < last_real - first_real <= 60.0
    for real, message in sent:
        due = first_real + (message.t_ms - first.t_ms) / 1000 / 60
        assert abs(real - due) < 1e-6


def test_speed_scales_the_real_duration_inversely() -> None:
    slow, _ = run_at(2.0)
    fast, _ = run_at(20.0)
    assert abs(sum(slow.slept) / sum(fast.slept) - 10.0) < 1e-6


def test_an_interrupted_wait_stops_the_run() -> None:
    clock = FakeTime()
    calls = 0

    def sleep(seconds: float) -> bool:
        nonlocal calls
        calls += 1
        clock.sleep(seconds)
        return calls < 3

    sim = Simulation(scenario((gas_device(),), hours=1))
    played = play(sim.messages(), [], pacer=Pacer(1.0, clock.monotonic, sleep))
    assert played.interrupted and played.count < 10


def test_shift_to_now_never_puts_a_timestamp_ahead_of_the_real_clock() -> None:
    now = START + 30 * 24 * HOUR
    span = 4 * HOUR
    for speed in (0.5, 1.0, 10.0, None):
        delta = shift_to_now(START, START + span, now, speed)
        rate = speed or float("inf")
        for t in range(START, START + span + 1, HOUR // 4):
            real_at = now + (t - START) / rate if rate != float("inf") else now
            assert t + delta <= real_at + 1, speed
    assert shift_to_now(START, START + span, now, 1.0) == now - START


def test_shift_moves_epoch_and_iso_timestamps_and_keeps_the_rest() -> None:
    reading = Message(
        START,
        "ew/v1/e/s/G1/up",
        b'[{"ts": 1795284000000, "v": 1.5}, {"ts": "2026-11-22T00:00:05+08:00", "v": 2}]',
    )
    moved = shift(reading, 60_000)
    assert moved.t_ms == START + 60_000
    assert moved.payload == (
        b'[{"ts": 1795284060000, "v": 1.5}, {"ts": "2026-11-22T00:01:05+08:00", "v": 2}]'
    )
    garbage = Message(START, "ew/v1/e/s/G1/up", b"\x00\x17garbled frame")
    assert shift(garbage, 60_000).payload == garbage.payload
    status = Message(START, "ew/v1/e/s/G1/status", b"offline", retain=True)
    assert mark_drill(status) == status
    assert mark_drill(reading).payload.count(b'"drill": true') == 2
