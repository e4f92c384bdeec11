"""Fixtures for the storage tests: a real VictoriaMetrics, raw or deduplicating.

When ``CI=true`` a missing ``victoria-metrics`` fails the test instead of skipping it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _service_missing
from tests.services.victoria import VictoriaMetrics, find_victoria


def _victoria(workdir: Path, *, dedup: bool) -> Iterator[VictoriaMetrics]:
    if find_victoria() is None:
        _service_missing("victoria-metrics")
    server = VictoriaMetrics(workdir, dedup=dedup)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A fresh VictoriaMetrics without deduplication: every sample written is kept, so a
    duplicate shows."""
    yield from _victoria(tmp_path / "vm", dedup=False)


@pytest.fixture
def victoria_dedup(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A fresh VictoriaMetrics that keeps one sample per series and millisecond, as InfluxDB
    keeps one point per series and timestamp."""
    yield from _victoria(tmp_path / "vm-dedup", dedup=True)
