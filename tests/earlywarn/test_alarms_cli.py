"""``earlywarn alarms …`` and ``earlywarn maintenance …`` as the duty room runs them: the real
command line, in-process and as the installed script, against a real store file filled by
applying alarm events through :class:`alerting.store.AlertStore`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerting.lifecycle import State
from alerting.store import AlertStore
from alerting.store_rows import AlarmHistory, StepPlan, StepStatus
from earlywarn.alarms_cli import format_time, parse_time
from earlywarn.cli import main
from earlywarn.model import AlarmEvent, Change, Level
from earlywarn.store_path import DEFAULT_STORE, STORE_ENV, store_path
from tests.conftest import EXAMPLE_REGISTRY

ROOT = Path(__file__).resolve().parents[2]
EARLYWARN = ROOT / ".venv" / "bin" / "earlywarn"
SHANGHAI = ZoneInfo("Asia/Shanghai")
MIN = 60_000
H = 3_600_000

TANK = "huaxin-chem/tank-farm-1/T101-LT"
GAS = "laojie-restaurants/r-01/G1"
TEMP = "huaxin-chem/tank-farm-1/T101-TT"
OLD = "huaxin-chem/tank-farm-1/T102-LT"
NAMES = {
    TANK: ("华信化工", "罐区一", "T101甲醇储罐液位", "tank_level"),
    GAS: ("老街餐饮", "清江鱼庄", "可燃气体探测器", "combustible_gas"),
    TEMP: ("华信化工", "罐区一", "T101温度", "temperature"),
    OLD: ("华信化工", "罐区一", "T102液位", "tank_level"),
}


def event(
    sensor: str,
    change: Change,
    level: Level | None,
    previous: Level | None,
    ts_ms: int,
    start_ms: int,
    rule: str = "high",
) -> AlarmEvent:
    """An alarm event as the rules make it."""
    enterprise, site, sensor_id = sensor.split("/")
    ent_name, site_name, sensor_name, kind = NAMES[sensor]
    return AlarmEvent(
        alarm_id=f"{sensor}/{rule}@{start_ms}",
        sensor=sensor,
        enterprise=enterprise,
        site=site,
        sensor_id=sensor_id,
        kind=kind,
        enterprise_name=ent_name,
        site_name=site_name,
        sensor_name=sensor_name,
        rule=rule,
        rule_kind="threshold",
        change=change,
        level=level,
        previous=previous,
        value=17.6,
        setpoint=17.5,
        setpoint_label="高高限",
        unit="m",
        ts_ms=ts_ms,
        start_ms=start_ms,
        message=f"{sensor_name} 超限 17.6",
    )


@dataclass(frozen=True)
class Alarms:
    """The store file and the ids of what is in it."""

    path: Path
    now: int
    red: str  # active-unacked red, 3 pending calls, one attempt
    gas: str  # cleared-unacked orange
    blue: str  # active-acked blue
    old: str  # cleared and acknowledged, 30 h ago
    drill: str  # active-unacked yellow drill


@pytest.fixture
def alarms(tmp_path: Path) -> Alarms:
    path = tmp_path / "alerts.db"
    now = time.time_ns() // 1_000_000
    with AlertStore(path) as store:
        t = now - 30 * H
        old = event(OLD, Change.RAISED, Level.YELLOW, None, t, t)
        store.apply_event(old, t)
        store.ack(old.alarm_id, "hx-ops-zhou", "link", "看过了", t + MIN)
        store.apply_event(event(OLD, Change.CLEARED, None, Level.YELLOW, t + H, t), t + H)

        t = now - 3 * H
        blue = event(TEMP, Change.RAISED, Level.BLUE, None, t, t)
        store.apply_event(blue, t)
        store.ack(blue.alarm_id, "hx-tech-li", "web", "", t + MIN)

        t = now - 2 * H
        red = event(TANK, Change.RAISED, Level.ORANGE, None, t, t)
        store.apply_event(red, t)
        store.apply_event(event(TANK, Change.LEVEL_CHANGED, Level.RED, Level.ORANGE, t + MIN, t), t)
        steps = store.plan_steps(
            [
                StepPlan(f"{red.alarm_id}|red|{k}", red.alarm_id, now + k * 3 * MIN, "hx-ops-zhou")
                for k in range(1, 4)
            ],
            t,
        )
        store.record_attempt(
            alarm_id=red.alarm_id,
            step_id=steps[0].id,
            person="hx-ops-zhou",
            channel="voice",
            address="+8613800000001",
            outcome="retry",
            detail="no answer",
            attempt=1,
            now_ms=t + 2 * MIN,
        )

        t = now - 30 * MIN
        gas = event(GAS, Change.RAISED, Level.ORANGE, None, t, t)
        store.apply_event(gas, t)
        store.apply_event(event(GAS, Change.CLEARED, None, Level.ORANGE, t + MIN, t), t + MIN)

        t = now - 10 * MIN
        drill = event(GAS, Change.RAISED, Level.YELLOW, None, t, t, rule="drill")
        store.apply_event(drill, t, drill=True)
    return Alarms(
        path, now, red.alarm_id, gas.alarm_id, blue.alarm_id, old.alarm_id, drill.alarm_id
    )


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


Cli = Callable[..., Run]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``earlywarn ARGS…`` in this process: exit code, standard output, standard error."""

    def run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def history(path: Path, alarm_id: str) -> AlarmHistory:
    with AlertStore(path) as store:
        found = store.history(alarm_id)
    assert found is not None
    return found


def ref_of(path: Path, alarm_id: str) -> int:
    with AlertStore(path) as store:
        record = store.get(alarm_id)
    assert record is not None
    assert record.ref is not None
    return record.ref


# --- where the store is ------------------------------------------------------------------------


def test_store_path_prefers_the_flag_then_the_variable_then_the_default() -> None:
    env = {STORE_ENV: "/var/lib/earlywarn/alerts.db"}
    assert store_path("/srv/x.db", environ=env) == Path("/srv/x.db")
    assert store_path(None, environ=env) == Path("/var/lib/earlywarn/alerts.db")
    assert store_path(None, environ={}) == Path(DEFAULT_STORE) == Path("earlywarn-alerts.db")
    assert store_path(None, environ={STORE_ENV: "  "}) == Path(DEFAULT_STORE)
    assert store_path("~/a.db", environ={}) == Path.home() / "a.db"


def test_read_commands_refuse_a_missing_store_and_do_not_create_it(
    cli: Cli, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.db"
    for args in (
        ["alarms", "list"],
        ["alarms", "show", "1"],
        ["alarms", "ack", "1", "--by", "x", "--comment", "c"],
        ["alarms", "audit", "--verify"],
        ["maintenance", "list"],
    ):
        result = cli(*args, "--store", str(missing))
        assert result.code == 2, args
        assert f"no alert store at {missing}" in result.err
    assert not missing.exists()


def test_the_store_comes_from_the_environment_or_the_current_directory(
    cli: Cli, alarms: Alarms, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(STORE_ENV, str(alarms.path))
    assert "T101甲醇储罐液位" in cli("alarms", "list").out
    monkeypatch.delenv(STORE_ENV)
    monkeypatch.chdir(alarms.path.parent)
    assert cli("alarms", "list").code == 2  # no earlywarn-alerts.db here
    alarms.path.rename(tmp_path / DEFAULT_STORE)
    assert "T101甲醇储罐液位" in cli("alarms", "list").out


def test_a_file_that_is_not_a_store_is_said_so(cli: Cli, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a database " * 100, encoding="utf-8")
    result = cli("alarms", "list", "--store", str(bogus))
    assert result.code == 2
    assert "cannot open the alert store" in result.err


# --- list ------------------------------------------------------------------------------------


def test_list_shows_unacknowledged_alarms_first_in_local_time(cli: Cli, alarms: Alarms) -> None:
    result = cli("alarms", "list", "--store", str(alarms.path))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split()[:6] == ["ref", "level", "peak", "state", "flags", "start"]
    body = lines[1:-1]
    states = [line.split()[3] for line in body]
    # active-unacked (red before the yellow drill), cleared-unacked, active-acked, cleared
    assert states == [
        "active-unacked",
        "active-unacked",
        "cleared-unacked",
        "active-acked",
        "cleared",
    ]
    assert "RED" in body[0] and "T101甲醇储罐液位" in body[0]
    assert "drill" in body[1]
    assert body[2].split()[1:3] == ["-", "ORANGE"]  # cleared: no level now, orange at peak
    assert "hx-tech-li" in body[3]
    start = format_time(alarms.now - 2 * H, SHANGHAI)
    assert start.endswith("+08:00") and start in body[0]
    assert lines[-1] == "5 alarms, times in Asia/Shanghai"
    # The columns line up: every row's names start under the "where" heading.
    where = lines[0].index("where")
    assert all(line[where:].startswith(("华信化工", "老街餐饮")) for line in body), body


def test_list_filters(cli: Cli, alarms: Alarms) -> None:
    store = ["--store", str(alarms.path)]

    def ids(*args: str) -> list[str]:
        result = cli("alarms", "list", *store, "--format", "jsonl", *args)
        assert result.code == 0, result.err
        return [json.loads(line)["alarm_id"] for line in result.out.splitlines()]

    assert ids("--state", "unacked") == [alarms.red, alarms.drill, alarms.gas]
    assert ids("--state", "cleared,active-acked") == [alarms.blue, alarms.old]
    assert ids("--state", "open", "--no-drill") == [alarms.red, alarms.gas, alarms.blue]
    assert ids("--drill") == [alarms.drill]
    assert ids("--level", "orange") == [alarms.red, alarms.gas]
    assert ids("--level", "红色") == [alarms.red]
    assert ids("--since", "1h") == [alarms.drill, alarms.gas]
    assert ids("--enterprise", "laojie-restaurants") == [alarms.drill, alarms.gas]
    assert ids("--site", "huaxin-chem/tank-farm-1", "--order", "start") == [
        alarms.red,
        alarms.blue,
        alarms.old,
    ]
    since = datetime.fromtimestamp((alarms.now - 150 * MIN) / 1000, SHANGHAI)
    assert ids("--since", f"{since:%Y-%m-%d %H:%M:%S}") == [alarms.red, alarms.drill, alarms.gas]
    assert ids("--limit", "2") == [alarms.red, alarms.drill]
    limited = cli("alarms", "list", *store, "--limit", "2")
    assert "more match (--limit 2)" in limited.out
    bad = cli("alarms", "list", *store, "--state", "asleep")
    assert bad.code == 2 and "unknown state 'asleep'" in bad.err
    assert cli("alarms", "list", *store, "--since", "yesterday").code == 2
    assert cli("alarms", "list", *store, "--level", "purple").code == 2
    assert cli("alarms", "list", *store, "--tz", "Mars/Olympus").code == 2


def test_list_jsonl_carries_every_field_with_local_times(cli: Cli, alarms: Alarms) -> None:
    result = cli("alarms", "list", "--store", str(alarms.path), "--format", "jsonl")
    first = json.loads(result.out.splitlines()[0])
    assert first["alarm_id"] == alarms.red
    assert (first["state"], first["level"], first["peak"]) == ("active-unacked", "red", "red")
    assert first["ref"] == ref_of(alarms.path, alarms.red)
    assert first["start"].endswith("+08:00")
    assert first["start_ms"] == alarms.now - 2 * H
    assert first["cleared"] is None and first["acked_by"] is None
    utc = cli("alarms", "list", "--store", str(alarms.path), "--format", "jsonl", "--tz", "UTC")
    assert json.loads(utc.out.splitlines()[0])["start"].endswith("+00:00")


def test_an_empty_store_lists_no_alarm(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    AlertStore(path).close()
    result = cli("alarms", "list", "--store", str(path))
    assert (result.code, result.out) == (0, "no alarm matches\n")


# --- show and ack ----------------------------------------------------------------------------


def test_show_has_transitions_calls_and_pending_steps(cli: Cli, alarms: Alarms) -> None:
    ref = ref_of(alarms.path, alarms.red)
    result = cli("alarms", "show", f"#{ref}", "--store", str(alarms.path))
    assert result.code == 0, result.err
    out = result.out
    assert out.startswith(f"alarm #{ref}  {alarms.red}")
    assert "active-unacked" in out and "RED (peak RED)" in out
    assert "17.6 m; 高高限 17.5 m" in out
    assert "raised" in out and "level_up" in out and "ORANGE → RED" in out
    assert "hx-ops-zhou  voice" in out and "no answer" in out
    assert "notification steps: 3 pending" in out
    assert out.count("  pending  due ") == 3
    assert "acknowledgements\n  none" in out
    same = cli("alarms", "show", alarms.red, "--store", str(alarms.path))
    assert same.out == out


def test_ack_from_the_cli_cancels_pending_steps_and_shows_everywhere(
    cli: Cli, alarms: Alarms
) -> None:
    store = ["--store", str(alarms.path)]
    ref = str(ref_of(alarms.path, alarms.red))
    result = cli("alarms", "ack", ref, *store, "--by", "hx-ops-zhou", "--comment", "已关阀")
    assert result.code == 0, result.err
    assert f"{alarms.red} acknowledged by hx-ops-zhou" in result.out
    assert "3 pending notification step(s) cancelled" in result.out
    assert "is now active-acked" in result.out
    with AlertStore(alarms.path) as opened:
        assert [s.status for s in opened.steps_of(alarms.red)] == [StepStatus.CANCELLED] * 3
        assert opened.due_steps(alarms.now + H) == []
    [ack] = history(alarms.path, alarms.red).acks
    assert (ack.by, ack.how.value, ack.comment) == ("hx-ops-zhou", "cli", "已关阀")
    shown = cli("alarms", "show", ref, *store).out
    assert "hx-ops-zhou by cli: 已关阀" in shown
    assert "notification steps: 3 cancelled" in shown and "pending  due" not in shown
    listed = cli("alarms", "list", *store, "--format", "jsonl").out.splitlines()
    red = next(json.loads(line) for line in listed if alarms.red in line)
    assert (red["state"], red["acked_by"]) == (State.ACTIVE_ACKED.value, "hx-ops-zhou")
    # Acknowledged alarms come after the unacknowledged ones now.
    assert json.loads(listed[0])["alarm_id"] == alarms.drill

    again = cli("alarms", "ack", ref, *store, "--by", "hx-tech-li", "--comment", "x")
    assert again.code == 0
    assert again.out.startswith(f"note: {alarms.red} was already acknowledged by hx-ops-zhou")
    assert "nothing changed" in again.out


def test_ack_of_an_unknown_alarm_says_so_and_exits_1(cli: Cli, alarms: Alarms) -> None:
    store = ["--store", str(alarms.path)]
    for alarm in ("999", "huaxin-chem/tank-farm-1/T101-LT/high@1"):
        result = cli("alarms", "ack", alarm, *store, "--by", "hx-ops-zhou", "--comment", "c")
        assert result.code == 1
        assert f"unknown alarm '{alarm}'" in result.err
    assert cli("alarms", "show", "#999", *store).code == 1


def test_ack_checks_the_person_against_the_registry(cli: Cli, alarms: Alarms) -> None:
    args = ["alarms", "ack", alarms.gas, "--store", str(alarms.path), "--comment", "c"]
    registry = ["--registry", str(EXAMPLE_REGISTRY)]
    wrong = cli(*args, *registry, "--by", "hx-ops-zhuo")
    assert wrong.code == 2
    assert "'hx-ops-zhuo' is not one of the people" in wrong.err
    assert "did you mean hx-ops-zhou" in wrong.err
    assert history(alarms.path, alarms.gas).acks == ()
    assert cli(*args, *registry, "--by", "hx-ops-zhou").code == 0
    assert cli(*args, "--by", "  ").code == 2


# --- shelving --------------------------------------------------------------------------------


def test_shelve_and_unshelve(cli: Cli, alarms: Alarms) -> None:
    store = ["--store", str(alarms.path)]
    who = ["--by", "hx-ops-zhou", "--reason", "探头校准"]
    too_long = cli("alarms", "shelve", alarms.red, *store, *who, "--until", "25h")
    assert too_long.code == 2
    assert "limited to 24 h" in too_long.err
    result = cli("alarms", "shelve", alarms.red, *store, *who, "--until", "8h")
    assert result.code == 0, result.err
    assert "shelved huaxin-chem/tank-farm-1/T101-LT high" in result.out
    assert "+08:00 by hx-ops-zhou: 探头校准" in result.out
    with AlertStore(alarms.path) as opened:
        reason = opened.hold_reason(alarms.red, alarms.now + H)
        assert reason is not None and reason.startswith("shelved until")
        record = opened.get(alarms.red)
        assert record is not None and record.shelved_until_ms is not None
        assert abs(record.shelved_until_ms - (alarms.now + 8 * H)) < 60_000
    listed = cli("alarms", "list", *store, "--state", "active-unacked", "--no-drill").out
    assert "shelved" in listed.splitlines()[1]
    assert "held: shelved until" in cli("alarms", "show", alarms.red, *store).out

    ended = cli("alarms", "unshelve", alarms.red, *store, "--by", "hx-ops-zhou")
    assert ended.code == 0 and "1 shelving(s) ended" in ended.out
    assert "not shelved" in cli("alarms", "unshelve", alarms.red, *store, "--by", "x").out
    with AlertStore(alarms.path) as opened:
        assert opened.hold_reason(alarms.red, alarms.now + H) is None


def test_parse_time_reads_durations_clock_times_and_dates() -> None:
    base = int(datetime(2026, 11, 22, 2, 0, tzinfo=SHANGHAI).timestamp() * 1000)

    def at(text: str, *, forward: bool) -> datetime:
        return datetime.fromtimestamp(
            parse_time(text, SHANGHAI, base, forward=forward) / 1000, SHANGHAI
        )

    assert at("8h", forward=True) == datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)
    assert at("24h", forward=False) == datetime(2026, 11, 21, 2, 0, tzinfo=SHANGHAI)
    assert at("08:00", forward=True) == datetime(2026, 11, 22, 8, 0, tzinfo=SHANGHAI)
    assert at("01:30", forward=True) == datetime(2026, 11, 23, 1, 30, tzinfo=SHANGHAI)
    assert at("08:00", forward=False) == datetime(2026, 11, 21, 8, 0, tzinfo=SHANGHAI)
    assert at("2026-11-20 18:30", forward=False) == datetime(2026, 11, 20, 18, 30, tzinfo=SHANGHAI)
    assert at("2026-11-20", forward=False) == datetime(2026, 11, 20, tzinfo=SHANGHAI)
    utc = at("2026-11-21T18:00:00+00:00", forward=True)
    assert utc == datetime(2026, 11, 21, 18, 0, tzinfo=UTC) == utc.astimezone(SHANGHAI)
    for bad in ("tomorrow", "25:00", "8 hours"):
        with pytest.raises(ValueError, match="expected a duration"):
            parse_time(bad, SHANGHAI, base, forward=True)
    assert format_time(base, SHANGHAI) == "2026-11-22 02:00:00 +08:00"
    assert format_time(base, ZoneInfo("UTC")) == "2026-11-21 18:00:00 +00:00"
    assert format_time(None, SHANGHAI) == "-"


# --- audit -----------------------------------------------------------------------------------


def test_audit_prints_the_log_and_verifies_it(cli: Cli, alarms: Alarms) -> None:
    store = ["--store", str(alarms.path)]
    log = cli("alarms", "audit", *store)
    assert log.code == 0
    rows = log.out.splitlines()
    assert rows[0].split()[0] == "1"
    assert any("step_planned" in row for row in rows)
    one = cli("alarms", "audit", *store, "--alarm", alarms.gas, "--format", "jsonl")
    entries = [json.loads(line) for line in one.out.splitlines()]
    assert {e["alarm_id"] for e in entries} == {alarms.gas}
    assert [e["kind"] for e in entries] == ["transition", "transition"]
    assert entries[0]["ts"].endswith("+08:00")

    verified = cli("alarms", "audit", *store, "--verify")
    assert verified.code == 0, verified.err
    assert "is intact" in verified.out
    head = cli("alarms", "audit", *store, "--head").out.strip()
    seq, digest = head.split(":")
    assert int(seq) == len(rows) and len(digest) == 64
    assert cli("alarms", "audit", *store, "--expect-head", head).code == 0


def test_audit_verify_fails_after_tampering_behind_the_triggers(cli: Cli, alarms: Alarms) -> None:
    store = ["--store", str(alarms.path)]
    head = cli("alarms", "audit", *store, "--head").out.strip()
    with sqlite3.connect(alarms.path, isolation_level=None) as conn:
        for name in ("audit_no_update", "audit_no_delete", "audit_chained_insert"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("UPDATE audit SET actor = 'someone-else' WHERE seq = 3")
    result = cli("alarms", "audit", *store, "--verify")
    assert result.code == 1
    assert "audit: row 3: its content does not match its hash" in result.err
    assert "trigger audit_no_update is missing" in result.err
    assert "is NOT intact: 4 problems" in result.err
    assert cli("alarms", "audit", *store, "--expect-head", head).code == 1
    assert cli("alarms", "audit", *store, "--expect-head", "3:abc").code == 2


# --- maintenance windows ---------------------------------------------------------------------


def test_maintenance_windows_add_list_end(cli: Cli, alarms: Alarms) -> None:
    store = ["--store", str(alarms.path)]
    add = [
        "maintenance",
        "add",
        *store,
        "--scope",
        "site",
        "--target",
        "huaxin-chem/tank-farm-1",
        "--until",
        "4h",
        "--reason",
        "罐区检修",
        "--by",
        "hx-ops-zhou",
    ]
    result = cli(*add)
    assert result.code == 0, result.err
    assert result.out.startswith("maintenance window 1 on site huaxin-chem/tank-farm-1 from ")
    with AlertStore(alarms.path) as opened:
        reason = opened.hold_reason(alarms.red, alarms.now + H)
        assert reason is not None and reason.startswith("maintenance window until")
    planned = cli(*add, "--from", "2h", "--drill")
    assert planned.code == 0, planned.err
    assert "drill window 2" in planned.out and "【演练】" in planned.out
    listed = cli("maintenance", "list", *store).out.splitlines()
    assert listed[0].split() == [
        "id",
        "kind",
        "scope",
        "target",
        "from",
        "until",
        "status",
        "by",
        "reason",
    ]
    assert "in force" in listed[1] and "planned" in listed[2]

    ended = cli("maintenance", "end", "1", *store, "--by", "hx-ops-zhou")
    assert ended.code == 0 and "ended by hx-ops-zhou" in ended.out
    again = cli("maintenance", "end", "1", *store, "--by", "hx-ops-zhou")
    assert again.code == 0 and "already over" in again.out
    assert cli("maintenance", "end", "9", *store, "--by", "hx-ops-zhou").code == 1
    in_force = cli("maintenance", "list", *store).out.splitlines()[1:]
    assert [line.split()[0] for line in in_force] == ["2"]
    everything = cli("maintenance", "list", *store, "--all").out
    assert "ended " in everything and "by hx-ops-zhou" in everything


def test_maintenance_refuses_what_would_hold_nothing(
    cli: Cli, alarms: Alarms, tmp_path: Path
) -> None:
    base = [
        "maintenance",
        "add",
        "--store",
        str(alarms.path),
        "--by",
        "hx-ops-zhou",
        "--reason",
        "r",
    ]
    registry = ["--registry", str(EXAMPLE_REGISTRY)]
    sensor_drill = cli(*base, "--scope", "sensor", "--target", TANK, "--until", "1h", "--drill")
    assert sensor_drill.code == 2 and "drill mode is per site or enterprise" in sensor_drill.err
    shape = cli(*base, "--scope", "site", "--target", "huaxin-chem", "--until", "1h")
    assert shape.code == 2 and "targets 'enterprise/site'" in shape.err
    typo = cli(
        *base, *registry, "--scope", "site", "--target", "huaxin-chem/tank-farm-9", "--until", "1h"
    )
    assert typo.code == 2 and "no site 'huaxin-chem/tank-farm-9' in the registry" in typo.err
    ok = cli(*base, *registry, "--scope", "sensor", "--target", TANK, "--until", "1h")
    assert ok.code == 0, ok.err
    past = cli(
        *base,
        "--scope",
        "enterprise",
        "--target",
        "huaxin-chem",
        "--from",
        "2020-01-01",
        "--until",
        "1h",
    )
    assert past.code == 2 and "already past" in past.err

    fresh = tmp_path / "fresh" / "new.db"
    fresh.parent.mkdir()
    args = ["--scope", "enterprise", "--target", "huaxin-chem", "--until", "1h"]
    new = ["maintenance", "add", "--store", str(fresh), "--by", "p", "--reason", "r", *args]
    assert cli(*new).code == 2 and not fresh.exists()
    assert cli(*new, "--create").code == 0 and fresh.exists()


# --- the installed script ----------------------------------------------------------------------


def test_the_installed_script_lists_and_acknowledges(alarms: Alarms) -> None:
    if not EARLYWARN.exists():
        pytest.skip(f"{EARLYWARN} is not installed")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(EARLYWARN), *args], capture_output=True, text=True, timeout=60, check=False
        )

    store = ["--store", str(alarms.path)]
    ack = run("alarms", "ack", alarms.gas, *store, "--by", "lj-ops-wu", "--comment", "已开窗通风")
    assert ack.returncode == 0, ack.stderr
    assert f"{alarms.gas} acknowledged by lj-ops-wu" in ack.stdout
    listed = run("alarms", "list", *store, "--state", "cleared")
    assert listed.returncode == 0, listed.stderr
    assert "lj-ops-wu" in listed.stdout and "清江鱼庄" in listed.stdout
    unknown = run("alarms", "ack", "4242", *store, "--by", "lj-ops-wu", "--comment", "c")
    assert unknown.returncode == 1
    assert "unknown alarm '4242'" in unknown.stderr
