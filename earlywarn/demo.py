"""``earlywarn demo``: broker, simulated devices and the runner in one process.

A new user sees, within a minute and with nothing else installed, readings flowing, a
restaurant gas leak rising from orange to red, a tank passing its high-high level, a faulty
device's messages going to the dead-letter topic, and a summary. The demo checks its own
result: it exits 1 if the alarms it stages did not happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from alerting.channels.base import Channel
from alerting.channels.console import ConsoleChannel
from alerting.console import ConsoleSink
from alerting.policy import CHANNELS
from alerting.store import AlertStore
from earlywarn.alert_wiring import open_alerting
from earlywarn.api_wiring import ApiSettings, start_api
from earlywarn.clock import SystemClock
from earlywarn.embedded_broker import EmbeddedBroker, free_port
from earlywarn.messages import Language
from earlywarn.model import AlarmEvent, Level, format_value
from earlywarn.registry import Registry
from earlywarn.runner import EmbeddedRunner
from earlywarn.settings import RunSettings
from ingest.topics import DEADLETTER
from simulators.demo import LENGTH_S, DemoChannel, DemoDevice, DemoScenario, Publication

LEAK = ("laojie-restaurants", "r-03", "G1")
OVERFILL = ("huaxin-chem", "tank-farm-1", "T101-LT")
CLOUD = (("huaxin-chem", "tank-farm-1", "GD-01"), ("huaxin-chem", "tank-farm-1", "GD-02"))
"""Two detectors of the north zone: each goes orange, and together they raise the zone's
red alarm (a composite rule of the example registry)."""
TICK_S = 1.0


@dataclass
class _Recorder:
    """Keeps every alarm event for the summary and the self-check."""

    events: list[AlarmEvent]

    def emit(self, event: AlarmEvent) -> None:
        self.events.append(event)


def demo_devices(registry: Registry) -> list[DemoDevice]:
    """The registry's devices as plain simulator descriptions."""
    devices: dict[tuple[str, str, str], list[DemoChannel]] = {}
    for s in registry.sensors.values():
        devices.setdefault((s.enterprise, s.site, s.device), []).append(
            DemoChannel(s.id, s.channel, s.kind, s.unit, s.range[0], s.range[1])
        )
    return [DemoDevice(e, site, d, tuple(chs)) for (e, site, d), chs in sorted(devices.items())]


async def run_demo(
    registry: Registry,
    out: TextIO,
    *,
    speed: float = 1.0,
    forever: bool = False,
    duration_s: float = LENGTH_S,
    seed: int = 7,
    language: Language = "zh",
    store: Path | None = None,
    api: ApiSettings | None = None,
) -> int:
    """Run the demo; return the process exit code (``api``: also serve the HTTP API)."""
    logging.getLogger("earlywarn.pipeline").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="earlywarn-demo-") as scratch:
        where = store or Path(scratch) / "alerts.db"
        code = await _run(registry, out, where, speed, forever, duration_s, seed, language, api)
        if store is not None:
            out.write(f"alert store kept at {store}: try `earlywarn alarms list --store {store}`\n")
        return code


def demo_channels(out: TextIO) -> dict[str, Channel]:
    """Every channel name prints to the demo's output: who would be called, texted, messaged."""
    return {name: ConsoleChannel(name, out) for name in CHANNELS}


async def _run(
    registry: Registry,
    out: TextIO,
    store: Path,
    speed: float,
    forever: bool,
    duration_s: float,
    seed: int,
    language: Language,
    api: ApiSettings | None = None,
) -> int:
    async with EmbeddedBroker() as broker:
        recorder = _Recorder([])
        settings = RunSettings(
            mqtt_url=broker.url,
            client_id="earlywarn-demo",
            keepalive_s=30,
            language=language,
            ack_listen=f"127.0.0.1:{free_port()}",
            link_secret=secrets.token_hex(32),
        )
        clock = SystemClock()
        alerting = open_alerting(registry, settings, clock, store, demo_channels(out))
        runner = EmbeddedRunner(
            registry,
            settings,
            clock,
            sinks=[ConsoleSink(out), recorder],
            alerts=alerting.service,
            ack_server=alerting.ack_server,
        )
        stop = asyncio.Event()
        serving = asyncio.create_task(runner.run(stop))
        await _wait_for(
            lambda: runner.connection is not None and runner.connection.subscribed.is_set(), 15.0
        )
        server = await start_api(api, registry, runner, alerting.service, None) if api else None
        if server is not None:
            out.write(f"API on http://{server.host}:{server.port} (OpenAPI at /docs)\n")
        devices = demo_devices(registry)
        scenario = DemoScenario(devices, LEAK, OVERFILL, seed, CLOUD)
        out.write(
            f"earlywarn demo: broker {broker.url}, {len(devices)} devices, "
            f"{len(registry.sensors)} sensors of {len(registry.enterprises)} enterprises; "
            f"{duration_s:.0f} s of scenario at speed {speed:g}"
            f"{' (looping until Ctrl-C)' if forever else ''}\n"
        )
        interrupted = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            # Ctrl-C ends the scenario early but still drains, summarises and checks.
            loop.add_signal_handler(signal.SIGINT, interrupted.set)
        published = await _play(scenario, broker.url, out, speed, forever, duration_s, interrupted)
        await _wait_for(lambda: runner.counters.received >= published, 10.0)
        await asyncio.sleep(2 * settings.escalate_s)  # the last alarms' first sends
        stop.set()
        counters = await serving
        if server is not None:
            await server.stop()
        calls = _calls(alerting.store)
        alerting.close()
    out.write("\nsummary\n" + counters.format() + "\n")
    out.write(_alarm_table(recorder.events))
    out.write(
        f"\nnotifications: {sum(calls.values())} sent ("
        + ", ".join(f"{channel} {n}" for channel, n in sorted(calls.items()))
        + "); acknowledge with the link in each line while the demo runs\n"
    )
    if interrupted.is_set():
        out.write("\ndemo stopped by Ctrl-C\n")
        return 0
    return _self_check(recorder.events, calls, out)


def _calls(store: AlertStore) -> dict[str, int]:
    """Deliveries sent, by channel, over every alarm of the demo."""
    counts: dict[str, int] = {}
    for record in store.list_alarms(limit=10_000):
        for contact in store.who_was_called(record.alarm_id):
            counts[contact.channel] = counts.get(contact.channel, 0) + contact.attempts
    return counts


async def _play(
    scenario: DemoScenario,
    url: str,
    out: TextIO,
    speed: float,
    forever: bool,
    duration_s: float,
    interrupted: asyncio.Event,
) -> int:
    host, port = url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="earlywarn-demo-devices")
    deadletters: list[dict[str, object]] = []

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        # paho's thread: only collect; printing happens on the loop.
        deadletters.append(json.loads(msg.payload))

    client.on_message = on_message
    client.connect(host, int(port))
    client.subscribe(DEADLETTER, qos=1)
    client.loop_start()
    published = 0
    real_len = duration_s / speed
    start_ms = time.time_ns() // 1_000_000 - round((duration_s - real_len) * 1000)
    t = 0.0
    began = time.monotonic()
    try:
        while (forever or t <= duration_s) and not interrupted.is_set():
            ts_ms = start_ms + round(t * 1000)
            pubs = scenario.readings_at(t % LENGTH_S, ts_ms)
            for pub in pubs:
                client.publish(pub.topic, pub.payload, qos=1)
            for topic, payload in scenario.faults_at(t % LENGTH_S, (t - TICK_S) % LENGTH_S, ts_ms):
                client.publish(topic, payload, qos=1)
                published += 1
            published += len(pubs)
            out.write(_flow_line(ts_ms, len(pubs), pubs, scenario) + "\n")
            while deadletters:
                d = deadletters.pop(0)
                out.write(
                    f"                     dead-letter  {d['reason']}: {d['detail']} "
                    f"({d['topic']})\n"
                )
            out.flush()
            t += TICK_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    interrupted.wait(), max(0.0, began + t / speed - time.monotonic())
                )
    finally:
        # loop_stop waits until the broker has acknowledged every queued publish; the broker
        # runs on this event loop, so wait in a thread or the two wait for each other.
        await asyncio.to_thread(client.loop_stop)
        client.disconnect()
    return published


def _flow_line(ts_ms: int, count: int, pubs: list[Publication], scenario: DemoScenario) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts_ms / 1000))
    watched = []
    for pub in pubs:
        device = pub.device
        for ch in device.channels:
            key = (device.enterprise, device.site, ch.sensor_id)
            if key in (scenario.leak, scenario.overfill):
                value = pub.values[ch.channel or "v"]
                watched.append(f"{device.site}/{ch.sensor_id} {format_value(value, ch.unit)}")
    return f"{when}  readings  {count:3d} published  · " + " · ".join(watched)


def _alarm_table(events: list[AlarmEvent]) -> str:
    if not events:
        return "\nno alarms\n"
    rows: dict[str, list[AlarmEvent]] = {}
    for e in events:
        rows.setdefault(e.alarm_id, []).append(e)
    lines = [
        "",
        "alarms",
        f"  {'site':<22} {'sensor':<10} {'rule':<16} {'highest':<8} {'events':>6}  state",
    ]
    for chain in rows.values():
        first = chain[0]
        highest = max((e.level for e in chain if e.level), default=None)
        state = "cleared" if chain[-1].level is None else f"active ({chain[-1].level.label})"
        lines.append(
            f"  {first.site_name:<22} {first.sensor_id:<10} {first.rule:<16} "
            f"{highest.label if highest else '-':<8} {len(chain):>6}  {state}"
        )
    return "\n".join(lines) + "\n"


def _self_check(events: list[AlarmEvent], calls: dict[str, int], out: TextIO) -> int:
    def reached(sensor: tuple[str, str, str], level: Level) -> bool:
        uid = "/".join(sensor)
        return any(e.sensor == uid and e.level is not None and e.level >= level for e in events)

    missing = []
    if not (reached(LEAK, Level.ORANGE) and reached(LEAK, Level.RED)):
        missing.append("gas leak orange → red at " + "/".join(LEAK))
    if not reached(OVERFILL, Level.RED):
        missing.append("tank high-high level at " + "/".join(OVERFILL))
    if not calls.get("voice"):
        missing.append("a voice call for a red alarm")
    if missing:
        out.write("\ndemo FAILED: expected alarms did not happen: " + "; ".join(missing) + "\n")
        return 1
    out.write(
        "\ndemo OK: the gas leak rose from orange to red, the tank passed its high-high level, "
        "and the responsible people were called\n"
    )
    return 0


async def _wait_for(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            msg = "the demo's runner did not get ready in time"
            raise TimeoutError(msg)
        await asyncio.sleep(0.02)
