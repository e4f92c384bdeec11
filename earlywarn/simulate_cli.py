"""``earlywarn simulate``, ``record`` and ``replay``: simulated devices, captured traffic and
drills over MQTT.

``simulate`` plays a scenario file as the devices would publish it (one connection per device,
QoS 1, last wills), at ``--speed`` times real time, or writes it to a JSON-lines file without a
broker; ``record`` captures live readings and statuses with their arrival times; ``replay``
publishes a recording (or a simulation's file) again. ``--drill`` marks every reading
``"drill": true`` so the runner treats its alarms as a drill. Register with
``simulate_cli.add_parser(sub)`` in ``earlywarn.cli``.

Exit codes: 0 done; 1 the broker could not be reached or did not acknowledge everything;
2 bad input (a scenario or recording with problems, a missing file, a bad URL); 130 stopped
by Ctrl-C (what was sent so far stays sent, the file stays valid).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TextIO
from zoneinfo import ZoneInfo

from earlywarn.durations import parse_seconds
from earlywarn.model import DEFAULT_TIMEZONE
from earlywarn.sim_scenario import LoadedScenario, ScenarioError, load_scenario
from ingest.mqtt import parse_mqtt_url
from simulators.engine import Simulation
from simulators.messages import LogError, LogWriter, Message, read_log
from simulators.mqtt_out import Broker, BrokerError, DevicePublisher
from simulators.pacing import Pacer
from simulators.play import Played, play
from simulators.progress import Progress
from simulators.recorder import TOPICS, Recorder
from simulators.transform import mark_drill, shift, shift_to_now

__all__ = ["add_parser", "cmd_record", "cmd_replay", "cmd_simulate"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
FUTURE_LIMIT_MS = 5 * 60 * 1000
"""How far ahead of its clock the runner accepts timestamps (``future_timestamp`` beyond)."""


@dataclass
class Streams:
    """Where a command writes: results on ``out``, progress and problems on ``err``."""

    out: TextIO
    err: TextIO


def _streams() -> Streams:
    # Looked up at the call, so a test's captured streams are the ones written to.
    return Streams(sys.stdout, sys.stderr)


@contextlib.contextmanager
def _stoppable() -> Iterator[threading.Event]:
    """An event set by Ctrl-C or SIGTERM while the block runs (main thread only)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _broker(url: str, err: TextIO) -> Broker | None:
    try:
        endpoint = parse_mqtt_url(url)
    except ValueError as exc:
        err.write(f"{exc}\n")
        return None
    return Broker(endpoint.host, endpoint.port, endpoint.username, endpoint.password)


def _open_out(path: Path, err: TextIO) -> TextIO | None:
    try:
        return path.open("w", encoding="utf-8", newline="\n")
    except OSError as exc:
        err.write(f"cannot write {path}: {exc.strerror or exc}\n")
        return None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _summary(what: str, played: Played, real_s: float, span_ms: int) -> str:
    hours = span_ms / 3_600_000
    rate = f", {hours / real_s:.1f} simulated h/s" if real_s > 0 else ""
    late = f"; the most a message went out late: {played.late_s:.2f} s" if played.late_s else ""
    return f"{what}: {played.count} messages, {hours:.2f} h of data in {real_s:.1f} s{rate}{late}\n"


def _send(
    messages: Iterator[Message],
    args: argparse.Namespace,
    io: Streams,
    *,
    span: tuple[int, int, int],
    speed: float | None,
    writer_origin: dict[str, str | int],
    prefix: str,
    drill: bool = False,
) -> int:
    """The part ``simulate`` and ``replay`` share: sinks, pacing, progress, summary."""
    sinks: list[Callable[[Message], None]] = []
    publisher: DevicePublisher | None = None
    if args.mqtt:
        broker = _broker(args.mqtt, io.err)
        if broker is None:
            return EXIT_USAGE
        publisher = DevicePublisher(broker, prefix=prefix)
        try:
            publisher.check()
        except BrokerError as exc:
            io.err.write(f"{exc}\n")
            return EXIT_FAILED
        sinks.append(publisher.send)
    out_file: TextIO | None = None
    out_path: Path | None = getattr(args, "out", None)
    if out_path is not None:
        out_file = _open_out(out_path, io.err)
        if out_file is None:
            return EXIT_USAGE
        sinks.append(
            LogWriter(
                out_file,
                "simulate" if writer_origin else "replay",
                flush_each=False,
                **writer_origin,
            )
        )
    start_ms, end_ms, offset = span
    transforms: list[Callable[[Message], Message]] = []
    if args.shift_to_now:
        delta = shift_to_now(start_ms, end_ms, _now_ms(), speed)
        transforms.append(lambda m: shift(m, delta))
        start_ms, end_ms = start_ms + delta, end_ms + delta
    elif publisher is not None and _ahead(start_ms, end_ms, speed):
        io.err.write(
            "warning: these timestamps run ahead of the real clock; the runner rejects readings "
            "more than 5 minutes in the future (future_timestamp). Add --shift-to-now.\n"
        )
    if drill:
        transforms.append(mark_drill)
    progress = None if args.quiet else Progress(io.err, start_ms, end_ms, offset)
    began = time.monotonic()
    result = EXIT_OK
    with _stoppable() as stop:
        pacer = Pacer(speed, time.monotonic, lambda s: not stop.wait(s)) if speed else None
        try:
            played = play(
                messages,
                sinks,
                pacer=pacer,
                progress=progress,
                transforms=transforms,
                stop=stop.is_set,
            )
        except BrokerError as exc:
            io.err.write(f"{exc}\n")
            return EXIT_FAILED
        finally:
            if out_file is not None:
                out_file.close()
            missing = publisher.close() if publisher is not None else 0
    real_s = time.monotonic() - began
    where = " and ".join(
        w
        for w in (
            f"published to {args.mqtt}" if publisher else "",
            f"written to {out_path}" if out_path else "",
        )
        if w
    )
    io.err.write(_summary(where, played, real_s, (played.last_ms or start_ms) - start_ms))
    if missing:
        io.err.write(f"the broker did not acknowledge {missing} message(s): they may be lost\n")
        result = EXIT_FAILED
    if played.interrupted:
        io.err.write("stopped before the end (Ctrl-C)\n")
        result = EXIT_INTERRUPTED
    return result


def _ahead(start_ms: int, end_ms: int, speed: float | None) -> bool:
    """Whether, played from now, a timestamp would be over the runner's future limit."""
    now = _now_ms()
    if speed is None:
        return end_ms > now + FUTURE_LIMIT_MS
    real_end = now + (end_ms - start_ms) / speed
    return start_ms > now + FUTURE_LIMIT_MS or end_ms > real_end + FUTURE_LIMIT_MS


def _report(path: Path, problems: Sequence[object], err: TextIO) -> None:
    for problem in problems:
        err.write(f"{problem}\n")
    count = len(problems)
    err.write(f"scenario {path}: {count} problem{'s' if count != 1 else ''}\n")


def cmd_simulate(args: argparse.Namespace, io: Streams | None = None) -> int:
    """Play a scenario over MQTT and/or into a file."""
    io = io or _streams()
    if not args.mqtt and args.out is None:
        io.err.write("simulate needs --mqtt URL to publish, --out FILE to write, or both\n")
        return EXIT_USAGE
    try:
        loaded: LoadedScenario = load_scenario(args.scenario, args.registry)
    except ScenarioError as exc:
        _report(args.scenario, exc.problems, io.err)
        return EXIT_USAGE
    scenario = loaded.scenario
    if args.seed is not None:
        scenario = replace(scenario, seed=args.seed)
    speed: float | None = args.speed if args.speed is not None else (1.0 if args.mqtt else None)
    simulation = Simulation(scenario, drill=args.drill)
    return _send(
        simulation.messages(),
        args,
        io,
        span=(scenario.start_ms, scenario.end_ms, scenario.utc_offset_s),
        speed=speed,
        writer_origin={"name": scenario.name, "seed": scenario.seed},
        prefix="sim-",
    )


def cmd_replay(args: argparse.Namespace, io: Streams | None = None) -> int:
    """Publish a recording (or a simulation's file) again."""
    io = io or _streams()
    path: Path = args.file
    if not path.is_file():
        io.err.write(f"{path}: recording not found\n")
        return EXIT_USAGE
    try:
        messages = list(read_log(path))
    except LogError as exc:
        io.err.write(f"{path}:{exc.line}: {exc.message}\n")
        return EXIT_USAGE
    except (OSError, UnicodeDecodeError) as exc:
        io.err.write(f"{path}: cannot read the recording ({exc})\n")
        return EXIT_USAGE
    if not messages:
        io.err.write(f"{path}: the recording holds no messages\n")
        return EXIT_USAGE
    speed: float | None = 1.0 if args.real_clock else args.speed
    first = datetime.fromtimestamp(messages[0].t_ms / 1000, UTC)
    offset = first.astimezone(ZoneInfo(DEFAULT_TIMEZONE)).utcoffset()
    return _send(
        iter(messages),
        args,
        io,
        span=(messages[0].t_ms, messages[-1].t_ms, int(offset.total_seconds()) if offset else 0),
        speed=speed,
        writer_origin={},
        prefix="replay-",
        drill=args.drill,
    )


def cmd_record(args: argparse.Namespace, io: Streams | None = None) -> int:
    """Capture live readings and statuses into a file until Ctrl-C, a count or a duration."""
    io = io or _streams()
    broker = _broker(args.mqtt, io.err)
    if broker is None:
        return EXIT_USAGE
    out = _open_out(args.out, io.err)
    if out is None:
        return EXIT_USAGE
    recorder = Recorder(broker, topics=args.topic or TOPICS, client_id=args.client_id)
    writer = LogWriter(out, "record", broker=str(broker))
    if not args.quiet:
        io.err.write(
            f"recording {', '.join(recorder.topics)} from {broker} into {args.out}; "
            "Ctrl-C to stop\n"
        )
    with _stoppable() as stop:
        try:
            count = recorder.run(writer, stop, count=args.count, duration_s=args.duration)
        except BrokerError as exc:
            io.err.write(f"{exc}\n")
            return EXIT_FAILED
        finally:
            out.close()
    io.err.write(f"recorded {count} messages into {args.out}\n")
    return EXIT_OK


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        msg = f"must be a positive factor such as 10 or 0.5, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        msg = f"must be a whole number of at least 1, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def _duration(text: str) -> float:
    try:
        seconds = parse_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not seconds > 0:
        msg = f"must be a positive duration, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return seconds


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simulate``, ``record`` and ``replay`` to the CLI's subcommands."""
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("--quiet", action="store_true", help="no progress line")

    sim = subparsers.add_parser(
        "simulate",
        parents=[quiet],
        help="play a scenario's simulated devices over MQTT, or into a file",
        description="Play a scenario file (examples/scenarios/*.yaml) as its devices would "
        "publish it: one MQTT connection per device, QoS 1, last wills. The same scenario and "
        "seed always give the same messages.",
    )
    sim.add_argument("scenario", type=Path, metavar="SCENARIO", help="scenario file (YAML)")
    sim.add_argument("--mqtt", metavar="URL", help="publish to this broker (mqtt://host:port)")
    sim.add_argument(
        "--out", type=Path, metavar="FILE.jsonl", help="write the messages to this file"
    )
    sim.add_argument(
        "--speed",
        type=_speed,
        metavar="N",
        help="N times real time (default 1 with --mqtt; with --out alone, as fast as possible)",
    )
    sim.add_argument("--drill", action="store_true", help='mark every reading "drill": true')
    sim.add_argument(
        "--shift-to-now",
        action="store_true",
        help="move the run to the present so that no timestamp is ahead of the real clock",
    )
    sim.add_argument("--registry", type=Path, metavar="DIR", help="instead of the scenario's")
    sim.add_argument("--seed", type=int, help="instead of the scenario's")
    sim.set_defaults(func=cmd_simulate)

    rec = subparsers.add_parser(
        "record",
        parents=[quiet],
        help="capture live readings and statuses from a broker into a file",
    )
    rec.add_argument("--mqtt", required=True, metavar="URL", help="broker (mqtt://host:port)")
    rec.add_argument("--out", required=True, type=Path, metavar="FILE", help="the recording")
    rec.add_argument(
        "--topic",
        action="append",
        metavar="FILTER",
        help=f"topic filter, repeatable (default {' and '.join(TOPICS)})",
    )
    rec.add_argument("--count", type=_positive_int, metavar="N", help="stop after N messages")
    rec.add_argument("--duration", type=_duration, metavar="TIME", help="stop after (1h, 30min)")
    rec.add_argument("--client-id", default="earlywarn-record", metavar="ID")
    rec.set_defaults(func=cmd_record)

    rep = subparsers.add_parser(
        "replay",
        parents=[quiet],
        help="publish a recording (or a simulation's file) again",
        description="Publish a recording again, in its order. Pacing: as fast as possible by "
        "default, --real-clock as it was recorded, --speed N at N times that.",
    )
    rep.add_argument("file", type=Path, metavar="FILE", help="from record or simulate --out")
    rep.add_argument("--mqtt", required=True, metavar="URL", help="broker (mqtt://host:port)")
    pace = rep.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=_speed, metavar="N", help="N times the recorded pace")
    pace.add_argument("--real-clock", action="store_true", help="at the recorded pace")
    rep.add_argument(
        "--shift-to-now",
        action="store_true",
        help="move timestamps so the replay happens now, never ahead of the real clock",
    )
    rep.add_argument("--drill", action="store_true", help='mark every reading "drill": true')
    rep.set_defaults(func=cmd_replay)
