"""Fixtures: a real InfluxDB 1.x loaded with the sample data, and the built dashboards.

InfluxDB starts once per session (its start and the sample's ten thousand lines are the cost
worth sharing); tests only read from it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboards.build import BuiltDashboard, build_dashboards
from earlywarn.registry import Registry
from tests.conftest import EXAMPLE_REGISTRY, _service_missing
from tests.dashboards.sample import BUCKET_MS, Sample, build_sample
from tests.services.influxdb1 import InfluxDB1, find_influxd

DATABASE = "earlywarn"
EXAMPLE_REGISTRY_DIR = EXAMPLE_REGISTRY


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    """A fresh influxd on free loopback ports for the session."""
    if find_influxd() is None:
        _service_missing("influxd (Debian package influxdb)")
    server = InfluxDB1(tmp_path_factory.mktemp("influxdb"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sample(registry: Registry) -> Sample:
    """The sample data, ending at the last whole five minutes before now."""
    end_ms = int(time.time() * 1000) // BUCKET_MS * BUCKET_MS
    return build_sample(registry, end_ms)


@pytest.fixture(scope="session")
def loaded(influxdb: InfluxDB1, sample: Sample) -> InfluxDB1:
    """InfluxDB holding the sample (written in chunks, as the storage writer would)."""
    influxdb.create_database(DATABASE)
    for i in range(0, len(sample.lines), 5000):
        influxdb.write(DATABASE, sample.lines[i : i + 5000])
    return influxdb


@pytest.fixture(scope="session")
def built(registry: Registry) -> list[BuiltDashboard]:
    """Every dashboard of the example registry."""
    return build_dashboards(registry)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """Where a test builds to."""
    return tmp_path / "out"
