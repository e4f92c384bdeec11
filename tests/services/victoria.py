"""Start, stop and restart a real VictoriaMetrics on a free loopback port; read back its data.

VictoriaMetrics (Debian's ``victoria-metrics``) accepts InfluxDB's ``/api/v2/write`` line
protocol, so the storage tests send through the real influxdb-client and the real HTTP path
to a real server. What it stores differs from InfluxDB in ways the tests must know:

- a field becomes a series named ``<measurement>_<field>`` with the tags as labels;
- string fields are not kept as text (it stores 0), so tests compare numeric fields only;
- malformed lines are skipped (logged) with 204, never a 400: rejections are tested against
  our own HTTP server instead;
- without deduplication, writing the same point twice keeps two samples. With
  ``dedup=True`` (``-dedup.minScrapeInterval=1ms``) it keeps one per series and millisecond,
  InfluxDB's "the same point overwrites" semantics.

Data lives in ``workdir`` and survives ``stop``/``start`` (same port, same data), as a
restarted InfluxDB would. Used by ``tests/storage`` and ``bench/storage.py``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tests.services.process import ServerProcess, find_binary, free_port

CANDIDATES = ("/usr/bin/victoria-metrics", "/usr/local/bin/victoria-metrics")


def find_victoria() -> str | None:
    """Path of the victoria-metrics binary, or ``None`` when it is not installed."""
    return find_binary("victoria-metrics", CANDIDATES)


@dataclass(frozen=True)
class Series:
    """One exported series: its name, labels, and samples in time order."""

    name: str
    labels: dict[str, str]
    timestamps: list[int]
    values: list[float]


class VictoriaMetrics(ServerProcess):
    """One server process; ``start``/``stop`` may be called repeatedly (same port, same data)."""

    name = "victoria-metrics"
    stop_wait_s = 20.0  # SIGTERM: it flushes what it holds to disk

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        dedup: bool = False,
        binary: str | None = None,
    ) -> None:
        found = binary or find_victoria()
        if found is None:
            msg = "victoria-metrics is not installed (apt-get install victoria-metrics)"
            raise FileNotFoundError(msg)
        self.binary = found
        self.workdir = workdir
        self.port = port or free_port()
        self.dedup = dedup
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir / "victoria-metrics.log")

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the base URL for the InfluxDB client."""
        return f"http://127.0.0.1:{self.port}"

    def _args(self) -> list[str]:
        args = [
            self.binary,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.workdir / 'data'}",
            # Tests write fixed timestamps from the past; the default (one month) drops them.
            "-retentionPeriod=100y",
            "-loggerLevel=WARN",
        ]
        if self.dedup:
            args.append("-dedup.minScrapeInterval=1ms")
        return args

    def start(self, timeout_s: float = 20.0) -> None:
        """Start and wait until ``/health`` answers OK."""
        self._launch(
            self._args(),
            lambda: self._get("/health", timeout_s=0.5).strip() == b"OK",
            timeout_s,
            0.05,
            f"did not become healthy on port {self.port}",
        )

    def restart(self) -> None:
        """Stop and start again on the same port with the same data."""
        self.stop()
        self.start()

    def flush(self) -> None:
        """Make everything written so far visible to queries and exports."""
        self._get("/internal/force_flush")

    def export(self, match: str = '{__name__=~".+"}') -> list[Series]:
        """Every sample of the matching series, merged per series (an export may split one
        series over several lines), sorted by name and labels."""
        self.flush()
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        body = self._get(f"/api/v1/export?{query}", timeout_s=60)
        merged: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[int, float]]]
        merged = defaultdict(list)
        for raw in body.splitlines():
            if not raw.strip():
                continue
            item = json.loads(raw)
            labels = dict(item["metric"])
            name = labels.pop("__name__")
            key = (name, tuple(sorted(labels.items())))
            merged[key].extend(zip(item["timestamps"], item["values"], strict=True))
        out = []
        for (series_name, series_labels), samples in sorted(merged.items()):
            samples.sort()
            out.append(
                Series(
                    series_name,
                    dict(series_labels),
                    [int(t) for t, _ in samples],
                    [float(v) for _, v in samples],
                )
            )
        return out

    def points(self, match: str = '{__name__=~".+"}') -> list[tuple[str, str, int, float]]:
        """Every sample as ``(name, labels as sorted k=v text, timestamp ms, value)``, sorted:
        easy to compare with what was written, duplicates included."""
        found: list[tuple[str, str, int, float]] = []
        for series in self.export(match):
            labels = ",".join(f"{k}={v}" for k, v in sorted(series.labels.items()))
            found.extend(
                (series.name, labels, t, v)
                for t, v in zip(series.timestamps, series.values, strict=True)
            )
        found.sort()
        return found

    def metric(self, sample: str) -> float:
        """One of the server's own metrics by its exact sample name with labels, e.g.
        ``vm_rows_inserted_total{type="influx"}`` (samples received, duplicates included)."""
        for line in self._get("/metrics").decode().splitlines():
            name, _, value = line.rpartition(" ")
            if name == sample:
                return float(value)
        msg = f"victoria-metrics has no metric {sample}"
        raise KeyError(msg)

    def _get(self, path: str, timeout_s: float = 10.0) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=timeout_s) as response:  # noqa: S310
            return bytes(response.read())
