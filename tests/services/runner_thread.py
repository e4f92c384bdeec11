"""Run the embedded runner on its own event loop in a background thread.

Tests and benchmarks publish with plain paho clients from the main thread and read the runner's
counters through :meth:`RunnerThread.snapshot`, which is taken on the runner's loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from alerting.sinks import AlarmSink
from alerting.store import AlertStore
from earlywarn.alert_wiring import AlertingRuntime
from earlywarn.clock import Clock
from earlywarn.counters import Counters
from earlywarn.registry import Registry
from earlywarn.runner import EmbeddedRunner
from earlywarn.settings import RunSettings
from earlywarn.storage_wiring import StorageRuntime


class RunnerThread:
    """Start with ``start()``, stop with ``stop()``; both block until done."""

    def __init__(
        self,
        registry: Registry,
        settings: RunSettings,
        clock: Clock | None = None,
        sinks: Sequence[AlarmSink] = (),
        alerting: Callable[[], AlertingRuntime] | None = None,
        storage: Callable[[AlertStore | None], StorageRuntime] | None = None,
    ) -> None:
        self.runner = EmbeddedRunner(registry, settings, clock, sinks)
        self._alerting_factory = alerting
        self._storage_factory = storage
        self.alerting: AlertingRuntime | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="earlywarn-runner", daemon=True)
        self.result: Counters | None = None
        self.error: BaseException | None = None

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            self._stop = asyncio.Event()
            if self._alerting_factory is not None:
                # The store belongs to the thread that opens it: this one, the runner's.
                self.alerting = self._alerting_factory()
                self.runner.alerts = self.alerting.service
                self.runner.ack_server = self.alerting.ack_server
                self.runner.pipeline.sinks.append(self.alerting.service)
            if self._storage_factory is not None:
                store = self.alerting.store if self.alerting is not None else None
                self.runner.storage = self._storage_factory(store)
                self.runner.pipeline.readings_out = self.runner.storage.writer.put
            try:
                self.result = await self.runner.run(self._stop)
            finally:
                if self.alerting is not None:
                    self.alerting.close()

        try:
            self._loop.run_until_complete(serve())
        except BaseException as exc:
            self.error = exc
        finally:
            self._loop.close()

    def start(self, timeout_s: float = 15.0, *, wait: bool = True) -> RunnerThread:
        """Start, and unless ``wait`` is false, wait until the runner is subscribed."""
        self._thread.start()
        if not wait:
            return self
        self.wait_for(
            lambda: (
                self.runner.connection is not None and self.runner.connection.subscribed.is_set()
            ),
            timeout_s,
            "the runner did not subscribe",
        )
        return self

    def snapshot(self) -> dict[str, Any]:
        """Counters, read on the runner's loop."""
        if self.result is not None:
            return self.result.snapshot()
        future = asyncio.run_coroutine_threadsafe(_snap(self.runner.counters), self._loop)
        return future.result(timeout=5)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the runner's loop and return its result."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=5)

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll ``predicate`` until true; raise ``TimeoutError`` naming ``what``."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if self.error is not None:
                raise self.error
            if time.monotonic() > deadline:
                raise TimeoutError(what)
            time.sleep(0.02)

    def stop(self, timeout_s: float = 15.0) -> Counters:
        """Ask the runner to stop and wait for it."""
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)
        if self.error is not None:
            raise self.error
        assert self.result is not None, "runner did not finish"
        return self.result


async def _snap(counters: Counters) -> dict[str, Any]:
    return counters.snapshot()
