"""Durable escalation: kill the process (SIGKILL) between steps and during a call, start
another on the same store: the next step comes on time, nothing is sent twice.

The control room runs in a child process (:mod:`tests.alerting.escalation_child`) driven on
stdin with an injected clock; the recorder of SMS and calls runs in the test process, so it
outlives every child.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from alerting.store import AlertStore
from tests.alerting.night import GAS, MIN, sent
from tests.conftest import EXAMPLE_REGISTRY, ROOT
from tests.services.http_recorder import HttpRecorder, Reply


class Child:
    def __init__(self, port: int, store: Path) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.alerting.escalation_child",
                str(EXAMPLE_REGISTRY),
                str(port),
                str(store),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.readline() == "ready"

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def send(self, command: str) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.readline()
        assert answer.startswith("ok "), answer
        return int(answer.split()[1])

    def post(self, command: str) -> None:
        """Send a command without waiting for its answer (to kill the child during it)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        assert self.proc.returncode == -signal.SIGKILL

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def test_killed_between_steps_the_next_call_comes_on_time_and_none_twice(
    http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    store = tmp_path / "alerts.db"
    first = Child(http_recorder.port, store)
    first.send(f"reading {GAS} 62")
    assert first.send("at 0") == 10  # SMS and a call to the five rungs of the red chain
    assert first.send(f"at {3 * MIN}") == 5
    first.kill()  # between the 02:03 and 02:06 calls

    second = Child(http_recorder.port, store)
    assert second.send(f"at {5 * MIN}") == 0  # nothing is re-sent on restart
    assert second.send(f"at {6 * MIN}") == 5  # the 02:06 call, on time
    second.close()

    calls = Counter(a for a, _ in sent(http_recorder, "/voice"))
    assert set(calls.values()) == {3}, calls
    assert len(sent(http_recorder, "/sms")) == 5
    with AlertStore(store) as check:
        assert check.verify_audit() == []


def test_killed_while_overdue_one_call_per_person_not_a_backlog(
    http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    store = tmp_path / "alerts.db"
    first = Child(http_recorder.port, store)
    first.send(f"reading {GAS} 62")
    first.send("at 0")
    first.kill()
    # Down for 20 minutes: six repeats were missed. On restart each person gets one call at
    # once (overdue), then the schedule goes on.
    second = Child(http_recorder.port, store)
    assert second.send(f"at {20 * MIN}") == 5
    assert second.send(f"at {21 * MIN}") == 5  # the 02:21 repeat
    second.close()
    calls = Counter(a for a, _ in sent(http_recorder, "/voice"))
    assert set(calls.values()) == {3}, calls


def test_killed_during_a_call_the_call_is_not_repeated_and_the_schedule_holds(
    http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    store = tmp_path / "alerts.db"
    first = Child(http_recorder.port, store)
    first.send(f"reading {GAS} 62")
    first.send("at 0")
    # The provider hangs on the next request: the child is killed in the middle of a call.
    http_recorder.script(Reply(delay_s=1.5))
    before = len(http_recorder.requests)
    first.post(f"at {3 * MIN}")
    while len(http_recorder.requests) == before:  # wait until the call is in flight
        pass
    first.kill()

    second = Child(http_recorder.port, store)
    # The interrupted call's outcome is unknown: it is not made again; the other four
    # 02:03 calls that never started are made now, and 02:06 comes on time.
    assert second.send(f"at {3 * MIN}") == 4
    assert second.send(f"at {6 * MIN}") == 5
    second.close()
    calls = Counter(a for a, _ in sent(http_recorder, "/voice"))
    assert sorted(calls.values()) == [3, 3, 3, 3, 3], calls
    with AlertStore(store) as check:
        unknown = [
            s
            for s in check.steps_of(check.list_alarms()[0].alarm_id)
            if s.status.value == "unknown"
        ]
        assert len(unknown) == 1
