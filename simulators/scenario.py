"""What a scenario is, as plain values: devices, their physical settings and a timeline.

The wiring in ``earlywarn`` reads a scenario file, checks it against the registry and builds
these; the simulators take them as they are. Times are epoch milliseconds (UTC), durations
seconds, physical quantities SI-like units named in each field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulators.rain_formula import StormFormula


@dataclass(frozen=True, slots=True)
class Window:
    """A span of scenario time ``[start_ms, end_ms)``; ``end_ms`` ``None`` runs to the end."""

    start_ms: int
    end_ms: int | None = None

    def __post_init__(self) -> None:
        if self.end_ms is not None and self.end_ms <= self.start_ms:
            msg = f"a window must end after it starts ({self.start_ms} … {self.end_ms})"
            raise ValueError(msg)

    def contains(self, t_ms: int) -> bool:
        """Whether ``t_ms`` lies in the window."""
        return self.start_ms <= t_ms and (self.end_ms is None or t_ms < self.end_ms)


@dataclass(frozen=True, slots=True)
class Cycle:
    """On for ``on_s``, off for ``off_s``, repeating from a window's start (a fan on a
    thermostat, a pump on a level switch)."""

    on_s: float
    off_s: float

    def __post_init__(self) -> None:
        if self.on_s <= 0 or self.off_s <= 0:
            msg = "a cycle's on and off times must be positive"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One registered sensor as the device measures it."""

    uid: str
    sensor_id: str
    channel: str | None
    kind: str
    unit: str
    low: float
    high: float

    @property
    def key(self) -> str:
        """Its key in a payload's ``values`` (``v`` for a single-value device)."""
        return self.channel or "v"


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A device publishing on ``ew/v1/{enterprise}/{site}/{device}/up`` every ``interval_s``.

    ``jitter`` is the spread of its reporting interval (a fraction: 0.02 is ±2 %); its clock
    is off by ``skew_s`` and runs fast by ``drift_ppm``; a dead connection is noticed by the
    broker after 1.5 × ``keepalive_s`` (then it publishes the last will); while offline it
    buffers up to ``buffer`` readings and back-fills them when it returns.
    """

    enterprise: str
    site: str
    device: str
    channels: tuple[ChannelSpec, ...]
    interval_s: float
    jitter: float = 0.02
    skew_s: float = 0.0
    drift_ppm: float = 0.0
    keepalive_s: float = 60.0
    buffer: int = 1000

    @property
    def key(self) -> str:
        """``enterprise/site/device``."""
        return f"{self.enterprise}/{self.site}/{self.device}"

    @property
    def topic(self) -> str:
        """Where its readings go."""
        return f"ew/v1/{self.key}/up"

    @property
    def status_topic(self) -> str:
        """Where ``online`` and its last will ``offline`` go."""
        return f"ew/v1/{self.key}/status"

    @property
    def client_id(self) -> str:
        """Its own MQTT client id, as each real device has."""
        return f"sim-{self.enterprise}.{self.site}.{self.device}"

    @property
    def single_value(self) -> bool:
        """One sensor without a channel: payloads carry ``v``, not ``values``."""
        return len(self.channels) == 1 and self.channels[0].channel is None


@dataclass(frozen=True, slots=True)
class Ambient:
    """Outdoor air temperature over the day: a cosine, warmest at ``warmest_hour`` (local)."""

    mean_c: float = 15.0
    amplitude_c: float = 6.0
    warmest_hour: float = 14.0


@dataclass(frozen=True, slots=True)
class GasRoom:
    """Where a gas detector hangs: a well-mixed volume aired ``ach`` times an hour.

    Outdoors (a tank farm) the volume is the air a release mixes into near the detector and
    ``ach`` how often the wind renews it. ``response_s`` is the detector's T90. ``gas``
    ``None``: the gas of a leak at it, else a tank's vapour, else methane (%LEL) or H2S.
    """

    volume_m3: float = 30.0
    ach: float = 2.0
    gas: str | None = None
    response_s: float = 30.0


@dataclass(frozen=True, slots=True)
class TankParams:
    """A vertical cylindrical tank and its contents.

    ``vapour`` shares: the fraction of the evaporating liquid (from a leak or an overflow)
    that reaches each nearby gas detector's volume, by sensor uid.
    """

    diameter_m: float = 10.0
    height_m: float = 20.0
    level_m: float | None = None
    inflow_m3h: float = 0.0
    outflow_m3h: float = 0.0
    liquid: str = "methanol"
    temperature_c: float | None = None
    time_constant_h: float = 12.0
    pressure_kpa: float | None = None
    relief_kpa: float | None = None
    evaporation: float = 0.02
    vapour: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class RainParams:
    """A tipping-bucket gauge: the bucket (0.1, 0.2 or 0.5 mm) and what a reading is."""

    bucket_mm: float = 0.5
    cumulative: bool = False
    counter_max: float | None = None


@dataclass(frozen=True, slots=True)
class Catchment:
    """The catchment above a water-level gauge: which rain gauges fall on it and how it drains.

    Effective rain (``runoff`` × rain) over ``area_km2`` runs through a Nash cascade of
    ``reservoirs`` linear reservoirs of ``k_h`` hours each and ``lag_h`` of travel time, on
    top of ``base_flow`` (m³/s).
    """

    gauges: tuple[str, ...]
    area_km2: float = 100.0
    runoff: float = 0.5
    reservoirs: int = 3
    k_h: float = 1.0
    lag_h: float = 0.0
    base_flow: float = 10.0


@dataclass(frozen=True, slots=True)
class Rating:
    """Stage from discharge: ``Q = a · (H − zero_stage)^b`` (m³/s, m)."""

    zero_stage: float
    a: float = 30.0
    b: float = 1.6


@dataclass(frozen=True, slots=True)
class Reservoir:
    """A reservoir at a dam: level-pool routing over a spillway crest, plus a gate release."""

    surface_km2: float
    level_m: float
    crest_m: float
    spillway_width_m: float = 30.0
    coefficient: float = 1.7
    release_m3s: float = 5.0


@dataclass(frozen=True, slots=True)
class WaterParams:
    """A water-level gauge: a river reach (``rating``) or a reservoir (``reservoir``)."""

    catchment: Catchment
    rating: Rating | None = None
    reservoir: Reservoir | None = None


@dataclass(frozen=True, slots=True)
class Leak:
    """Gas escaping at ``rate_g_s`` next to a detector, reaching others by their share."""

    window: Window
    detector: str
    rate_g_s: float
    gas: str | None = None
    nearby: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Ventilation:
    """Air changes per hour at detectors change (a fan, a door), optionally cycling."""

    window: Window
    detectors: tuple[str, ...]
    ach: float
    cycle: Cycle | None = None


FAULT_TYPES = ("stuck", "dropout", "spike", "drift")


@dataclass(frozen=True, slots=True)
class Fault:
    """An instrument fault: ``stuck`` (frozen value), ``dropout`` (messages lost with
    ``probability``), ``spike`` (one reading, or each with ``probability``, shows ``value``),
    ``drift`` (an offset growing ``rate_per_h``)."""

    window: Window
    sensor: str
    type: str
    probability: float | None = None
    value: float | None = None
    rate_per_h: float = 0.0


@dataclass(frozen=True, slots=True)
class Offline:
    """Devices lose their connection (power, network); back-fill on return if ``buffer``."""

    window: Window
    devices: tuple[str, ...]
    buffer: bool = True


@dataclass(frozen=True, slots=True)
class Flow:
    """A tank's inflow and/or outflow (m³/h) change for a while (filling, a pump)."""

    window: Window
    tank: str
    inflow_m3h: float | None = None
    outflow_m3h: float | None = None


@dataclass(frozen=True, slots=True)
class Heat:
    """Heat into a tank's contents (a runaway heater, a fire next to it), in kW."""

    window: Window
    tank: str
    power_kw: float


@dataclass(frozen=True, slots=True)
class TankLeak:
    """A hole of ``hole_mm`` at the bottom of a tank: it drains by Torricelli's law."""

    window: Window
    tank: str
    hole_mm: float


@dataclass(frozen=True, slots=True)
class Storm:
    """A design storm (Chicago hyetograph) over gauges, each scaled by its factor."""

    start_ms: int
    duration_s: float
    return_period_y: float
    gauges: tuple[tuple[str, float], ...]
    peak_ratio: float = 0.4
    formula: StormFormula = field(default_factory=StormFormula)


@dataclass(frozen=True, slots=True)
class Rain:
    """Steady rain of ``intensity_mm_h`` over gauges for a while."""

    window: Window
    gauges: tuple[str, ...]
    intensity_mm_h: float


@dataclass(frozen=True, slots=True)
class CounterReset:
    """Cumulative gauges' counters are reset to zero (a declared reset, e.g. at 08:00)."""

    at_ms: int
    gauges: tuple[str, ...]


Event = Leak | Ventilation | Fault | Offline | Flow | Heat | TankLeak | Storm | Rain | CounterReset


@dataclass(frozen=True)
class Scenario:
    """Everything a run needs; the same scenario and seed always give the same messages.

    ``utc_offset_s`` is the local clock's offset (the start's), for the diurnal cycle.
    Settings are keyed by sensor uid (gas, rain, water) or device key (tanks).
    """

    name: str
    seed: int
    start_ms: int
    end_ms: int
    utc_offset_s: int
    devices: tuple[DeviceSpec, ...]
    events: tuple[Event, ...] = ()
    ambient: Ambient = field(default_factory=Ambient)
    rooms: dict[str, GasRoom] = field(default_factory=dict)
    tanks: dict[str, TankParams] = field(default_factory=dict)
    rain: dict[str, RainParams] = field(default_factory=dict)
    water: dict[str, WaterParams] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            msg = "a scenario must end after it starts"
            raise ValueError(msg)
