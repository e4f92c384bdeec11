"""A policy from ``escalation.yaml`` whose calls go on after the alarm cleared (``until:
acked``): an alarm that came and went at 02:00 still needs someone to look, so the calls
repeat until someone acknowledges, and the acknowledgement stops them.

The registry is the example one plus an ``escalation.yaml`` replacing the built-in red
policy, loaded through the real loader; the rest as in the night scenario.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from alerting.lifecycle import State
from earlywarn.registry import load_registry
from tests.alerting.night import GAS, MIN, NIGHT, open_night, sent
from tests.conftest import EXAMPLE_REGISTRY
from tests.services.http_recorder import HttpRecorder

ESCALATION = """\
policies:
  red:
    steps:
      - {rungs: first, channels: [voice], repeat: 3min, until: acked}
    cleared: [sms]
"""
ZHOU = "+8613800020003"


def test_calls_go_on_after_the_clear_until_someone_acknowledges(
    http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    registry_dir = tmp_path / "registry"
    shutil.copytree(EXAMPLE_REGISTRY, registry_dir)
    (registry_dir / "escalation.yaml").write_text(ESCALATION, encoding="utf-8")
    night = open_night(load_registry(registry_dir), http_recorder, tmp_path / "alerts.db")

    night.reading(GAS, 62.0)
    assert night.at(0) == 1  # only rung 1, by voice, as the replaced policy says
    night.clock.set(NIGHT + 2 * MIN)
    night.reading(GAS, 2.0)  # the gas is gone at 02:02
    (record,) = night.store.list_alarms()
    assert record.state is State.CLEARED_UNACKED
    night.at(2 * MIN)
    (all_clear,) = sent(http_recorder, "/sms")
    assert all_clear[1].startswith("【已恢复】")
    for minute in range(3, 10):
        night.at(minute * MIN)
    assert [a for a, _ in sent(http_recorder, "/voice")] == [ZHOU] * 4  # 02:00, 03, 06, 09

    night.clock.set(NIGHT + 10 * MIN)
    night.service.ack(record.alarm_id, "hx-ops-zhou", "cli", "查看过，探头正常")
    for minute in range(10, 40):
        night.at(minute * MIN)
    assert len(sent(http_recorder, "/voice")) == 4
