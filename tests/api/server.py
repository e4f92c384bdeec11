"""The API served in-process by uvicorn on its own event loop in a background thread, with a
real alert store opened on that loop (as the runner's loop owns it in production), seeded
with alarms of two enterprises; and the tokens of each role."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerting.service import AlertService
from alerting.store import AlertStore
from earlywarn.alert_wiring import build_alert_service
from earlywarn.api.app import ApiContext, create_app
from earlywarn.api.server import ApiServer
from earlywarn.api.tokens import Tokens, add_token
from earlywarn.clock import ManualClock
from earlywarn.counters import Counters
from earlywarn.model import AlarmEvent, Change, Level
from earlywarn.onboard import Onboarder
from earlywarn.registry import Registry

START_MS = 1_795_284_000_000


def gas_event(registry: Registry, uid: str, value: float, ts_ms: int) -> AlarmEvent:
    """A combustible-gas alarm raised at ``ts_ms`` on sensor ``uid`` of the registry."""
    sensor = registry.sensors[uid]
    enterprise = registry.enterprises[sensor.enterprise]
    site = registry.site(sensor.enterprise, sensor.site)
    assert site is not None
    return AlarmEvent(
        alarm_id=f"{uid}/combustible_gas@{ts_ms}",
        sensor=uid,
        enterprise=sensor.enterprise,
        site=sensor.site,
        sensor_id=sensor.id,
        kind=sensor.kind,
        enterprise_name=enterprise.name,
        site_name=site.name,
        sensor_name=sensor.name,
        rule="combustible_gas",
        rule_kind="threshold",
        change=Change.RAISED,
        level=Level.RED,
        previous=None,
        value=value,
        setpoint=50.0,
        setpoint_label="二级报警",
        unit=sensor.unit,
        ts_ms=ts_ms,
        start_ms=ts_ms,
        message=f"{site.name} {sensor.name} {value} %LEL（红色）",
    )


@dataclass
class Roles:
    """A token of each kind."""

    centre: str
    laojie: str
    huaxin: str


def make_tokens(path: Path) -> Roles:
    """A tokens file with a centre token and one per example enterprise (with gas)."""
    return Roles(
        centre=add_token(path, "duty-room", "centre"),
        laojie=add_token(path, "laojie-officer", "enterprise:laojie-restaurants"),
        huaxin=add_token(path, "huaxin-officer", "enterprise:huaxin-chem"),
    )


class ApiThread:
    """``start()`` serves on a free port; ``url``; ``call(fn)`` runs ``fn`` on the loop."""

    def __init__(
        self,
        registry: Registry,
        store_path: Path,
        tokens_path: Path,
        onboarder: Onboarder | None = None,
        counters: Counters | None = None,
    ) -> None:
        self.registry = registry
        self.store_path = store_path
        self.tokens_path = tokens_path
        self.onboarder = onboarder
        self.counters = counters or Counters()
        self.clock = ManualClock(START_MS)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.service: AlertService | None = None
        self.error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="api-test", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def serve() -> None:
            self._stop = asyncio.Event()
            store = AlertStore(self.store_path)  # opened on this loop's thread
            self.service = build_alert_service(self.registry, store, self.clock, {})
            ctx = ApiContext(
                registry=self.registry,
                tokens=Tokens.load(self.tokens_path, set(self.registry.enterprises)),
                store=store,
                ack=self.service.ack,
                counters=lambda: self.counters,
                queues=lambda: {"mqtt_handoff": 3},
                mqtt_connected=lambda: True,
                onboarder=self.onboarder,
            )
            server = ApiServer(create_app(ctx), "127.0.0.1", 0)
            self.port = await server.start()
            self.ready.set()
            try:
                await self._stop.wait()
            finally:
                await server.stop()
                store.close()

        try:
            self.loop.run_until_complete(serve())
        except BaseException as exc:
            self.error = exc
            self.ready.set()
        finally:
            self.loop.close()

    def start(self) -> ApiThread:
        self._thread.start()
        assert self.ready.wait(15), "the API did not start"
        if self.error is not None:
            raise self.error
        return self

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the API's loop (where the store lives) and return its result."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def raise_alarm(self, uid: str, value: float, ts_ms: int) -> int:
        """Emit a red gas alarm through the alert service; returns its number (ref)."""
        assert self.service is not None
        service = self.service
        event = gas_event(self.registry, uid, value, ts_ms)

        def emit() -> int:
            service.emit(event)
            record = service.store.get(event.alarm_id)
            assert record is not None and record.ref is not None
            return record.ref

        ref: int = self.call(emit)
        return ref

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
