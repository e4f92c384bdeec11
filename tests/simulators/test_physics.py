"""Physical sanity of the models, over many random inputs (hypothesis)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.engine import Simulation
from simulators.hydrology import NashCascade, RiverStage
from simulators.rain import RainField, TippingBucket
from simulators.rain_formula import ChicagoStorm, StormFormula
from simulators.scenario import (
    Catchment,
    CounterReset,
    Flow,
    GasRoom,
    Heat,
    Leak,
    RainParams,
    Rating,
    Storm,
    TankLeak,
    TankParams,
    Ventilation,
    Window,
)
from simulators.tank import TankPhysics
from tests.simulators.scenarios import HOUR, START, gas_device, scenario, tank_device

MINUTE = 60_000


def readings(sim: Simulation, topic_part: str) -> list[tuple[int, object]]:
    out = []
    for m in sim.messages():
        if m.topic.endswith("/up") and topic_part in m.topic:
            doc = json.loads(m.payload)
            for item in doc if isinstance(doc, list) else [doc]:
                out.append((item["ts"], item.get("v", item.get("values"))))
    return out


# -- design storm ------------------------------------------------------------------------------


@given(
    period=st.sampled_from([1, 2, 5, 10, 20, 50, 100]),
    hours=st.floats(0.5, 24),
    peak=st.floats(0.1, 0.9),
)
def test_a_chicago_storm_accumulates_monotonically_to_the_formula_depth(
    period: int, hours: float, peak: float
) -> None:
    storm = ChicagoStorm(StormFormula(), period, hours * 60, peak)
    times = np.linspace(-10, hours * 60 + 10, 400)
    depth = [storm.cumulative_mm(t) for t in times]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(depth))
    assert math.isclose(depth[-1], StormFormula().depth_mm(hours * 60, period), rel_tol=1e-9)
    assert depth[0] == 0.0


@given(period=st.sampled_from([2, 10, 50]), window=st.sampled_from([10, 30, 60, 120]))
def test_the_heaviest_window_around_the_peak_holds_the_formula_depth_for_that_window(
    period: int, window: int
) -> None:
    """The defining property of the Chicago hyetograph."""
    storm = ChicagoStorm(StormFormula(), period, 180, 0.4)
    t_peak = 0.4 * 180
    around = storm.cumulative_mm(t_peak + 0.6 * window) - storm.cumulative_mm(t_peak - 0.4 * window)
    assert math.isclose(around, StormFormula().depth_mm(window, period), rel_tol=1e-9)


def test_the_default_formula_gives_the_textbook_beijing_figures() -> None:
    """q = 2001 (1 + 0.811 lg P) / (t + 8)^0.711: P = 1, t = 10 min gives 2001/18^0.711."""
    q = StormFormula().q(10, 1)
    assert math.isclose(q, 2001 * 18**-0.711, rel_tol=2e-3)


# -- tipping bucket ---------------------------------------------------------------------------


@settings(max_examples=30)
@given(
    bucket=st.sampled_from([0.1, 0.2, 0.5]),
    period=st.sampled_from([2, 20, 100]),
    resets=st.lists(st.integers(1, 47), max_size=3, unique=True),
    counter_max=st.sampled_from([None, 50.0]),
)
def test_a_cumulative_counter_only_falls_at_a_declared_reset_or_wrap(
    bucket: float, period: int, resets: list[int], counter_max: float | None
) -> None:
    uid = "e/s/RG"
    storm = Storm(START, 4 * 3600, period, ((uid, 1.0),))
    declared = [CounterReset(START + r * 5 * MINUTE, (uid,)) for r in resets]
    gauge = TippingBucket(
        uid,
        RainParams(bucket, cumulative=True, counter_max=counter_max),
        RainField([storm], []),
        np.random.default_rng(1),
        declared,
    )
    reset_at = {d.at_ms for d in declared}
    field = gauge.field
    previous, previous_t, wraps, since = 0.0, START, 0, START
    for i in range(1, 60):
        t = START + i * 5 * MINUTE
        value = gauge.report(t)
        assert value >= 0.0
        if any(previous_t < r <= t for r in reset_at):
            wraps, since = 0, max(r for r in reset_at if r <= t)
        elif value < previous:
            assert counter_max is not None, f"the counter fell at report {i} without a reset"
            wraps += 1
        # Unwrapped, the counter is the rain since the last reset, to within one tip.
        counted = value + wraps * (counter_max or 0.0)
        fallen = field.depth_mm(uid, t) - field.depth_mm(uid, since)
        assert abs(counted - fallen) <= bucket + 1e-6
        previous, previous_t = value, t


@settings(max_examples=30)
@given(bucket=st.sampled_from([0.1, 0.2, 0.5]), period=st.sampled_from([1, 10, 100]))
def test_interval_reports_are_whole_tips_adding_up_to_the_rain(bucket: float, period: int) -> None:
    uid = "e/s/RG"
    field = RainField([Storm(START, 3 * 3600, period, ((uid, 1.0),))], [])
    gauge = TippingBucket(uid, RainParams(bucket), field, np.random.default_rng(2))
    reports = [gauge.report(START + i * 5 * MINUTE) for i in range(50)]
    assert all(
        r >= 0 and math.isclose(r / bucket, round(r / bucket), abs_tol=1e-6) for r in reports
    )
    total = field.depth_mm(uid, START + 49 * 5 * MINUTE)
    assert abs(sum(reports) - total) <= bucket + 1e-6


# -- tank -------------------------------------------------------------------------------------


@settings(max_examples=40)
@given(
    level=st.floats(0, 20),
    inflow=st.floats(0, 2000),
    outflow=st.floats(0, 2000),
    hole=st.floats(0, 200),
)
def test_a_tank_level_stays_within_its_height(
    level: float, inflow: float, outflow: float, hole: float
) -> None:
    w = Window(START + 10 * MINUTE, START + 3 * HOUR)
    tank = TankPhysics(
        TankParams(diameter_m=6, height_m=20, level_m=level),
        START,
        lambda _t: 15.0,
        pressure_kpa=100,
        relief_kpa=237,
        flows=[Flow(w, "t", inflow, outflow)],
        leaks=[TankLeak(w, "t", hole)] if hole else [],
    )
    for i in range(1, 50):
        tank.advance(START + i * 5 * MINUTE)
        assert 0.0 <= tank.level_m <= 20.0
        assert tank.pressure_kpa <= 237 + 1e-6


def test_an_overfill_spills_and_its_vapour_reaches_a_detector() -> None:
    device, gas = tank_device(), gas_device("e/s/GD")
    sim = Simulation(
        scenario(
            (device, gas),
            (Flow(Window(START, START + 4 * HOUR), "e/s/T1", 400.0),),
            hours=4,
            tanks={"e/s/T1": TankParams(diameter_m=10, level_m=14, vapour=(("e/s/GD", 0.3),))},
            rooms={"e/s/GD": GasRoom(500, 60)},
        )
    )
    levels = [v["level"] for _t, v in readings(sim, "/T1/")]  # type: ignore[index]
    gas_values = [v for _t, v in readings(Simulation(sim.scenario), "/GD/")]
    assert max(levels) == 20.0 and min(levels) >= 0
    assert max(gas_values) > 25  # type: ignore[type-var]
    assert sim.world.tanks["e/s/T1"].spilled_m3 > 0


def test_heating_raises_temperature_and_with_it_the_pressure() -> None:
    device = tank_device()
    heat = Heat(Window(START + HOUR, START + 3 * HOUR), "e/s/T1", 3000)
    sim = Simulation(
        scenario((device,), (heat,), hours=4, tanks={"e/s/T1": TankParams(diameter_m=6, level_m=4)})
    )
    rows = [v for _t, v in readings(sim, "/T1/")]
    before = rows[len(rows) // 4 - 5]
    peak = max(rows, key=lambda v: v["temp"])  # type: ignore[index]
    assert peak["temp"] > before["temp"] + 20  # type: ignore[index]
    assert peak["press"] > before["press"] + 5  # type: ignore[index]


# -- gas --------------------------------------------------------------------------------------


@settings(max_examples=25)
@given(rate=st.floats(0.0, 50.0), ach=st.floats(0.0, 30.0), volume=st.floats(5, 200))
def test_a_detector_reads_within_zero_to_full_scale(rate: float, ach: float, volume: float) -> None:
    uid = "e/s/G1"
    events = (Leak(Window(START + 5 * MINUTE, START + 40 * MINUTE), uid, rate or 0.001, "lpg"),)
    sim = Simulation(scenario((gas_device(uid),), events, rooms={uid: GasRoom(volume, ach)}))
    values = [v for _t, v in readings(sim, "/G1/")]
    assert values and all(0.0 <= v <= 100.0 for v in values)  # type: ignore[operator]


def test_a_leak_rises_with_its_rate_and_falls_with_ventilation() -> None:
    uid = "e/s/G1"

    def peak(rate: float, ach: float) -> float:
        events = (
            Leak(Window(START + 5 * MINUTE), uid, rate, "methane"),
            Ventilation(Window(START + 5 * MINUTE), (uid,), ach),
        )
        sim = Simulation(scenario((gas_device(uid),), events, rooms={uid: GasRoom(30, 1)}))
        return max(v for _t, v in readings(sim, "/G1/"))  # type: ignore[type-var,return-value]

    assert peak(0.2, 6) > peak(0.1, 6) * 1.5
    assert peak(0.2, 20) < peak(0.2, 6) * 0.6


# -- river ------------------------------------------------------------------------------------


def test_a_storm_upstream_raises_the_river_hours_later_and_it_falls_again() -> None:
    gauges = ("e/s/P1",)
    field = RainField([Storm(START, 2 * 3600, 20, (("e/s/P1", 1.0),), 0.4)], [])
    catchment = Catchment(gauges, area_km2=100, runoff=0.6, reservoirs=3, k_h=1.5, base_flow=8)
    river = RiverStage(NashCascade(catchment, field, START), Rating(zero_stage=99.0))
    times = [START + i * 5 * MINUTE for i in range(24 * 12)]
    stage = [river.value(t) for t in times]
    crest = times[int(np.argmax(stage))]
    rain_peak = START + round(0.4 * 2 * HOUR)
    assert crest - rain_peak > 2 * HOUR  # (N − 1) K = 3 h after the burst, give or take
    assert max(stage) > stage[0] + 1.0
    assert stage[-1] < max(stage) - 0.5 * (max(stage) - stage[0])  # the falling limb


@settings(max_examples=20)
@given(
    reservoirs=st.integers(1, 5),
    k_h=st.floats(0.2, 4.0),
    period=st.sampled_from([2, 20, 100]),
    step_min=st.sampled_from([1, 5, 30]),
)
def test_the_catchment_neither_creates_nor_loses_water(
    reservoirs: int, k_h: float, period: int, step_min: int
) -> None:
    field = RainField([Storm(START, 3 * 3600, period, (("e/s/P1", 1.0),))], [])
    catchment = Catchment(("e/s/P1",), area_km2=50, runoff=0.5, reservoirs=reservoirs, k_h=k_h)
    cascade = NashCascade(catchment, field, START)
    for i in range(1, 24 * 60 // step_min):
        cascade.advance(START + i * step_min * MINUTE)
        balance = cascade.released_m3 + sum(cascade.storage_m3)
        assert math.isclose(balance, cascade.rained_m3, rel_tol=1e-9, abs_tol=1e-6)
    rain = 0.5 * field.depth_mm("e/s/P1", START + 24 * HOUR) / 1000 * 50e6
    assert math.isclose(cascade.rained_m3, rain, rel_tol=1e-9)
