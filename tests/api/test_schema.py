"""schemathesis against the served OpenAPI document: generated requests (valid and invalid)
to every operation, with a centre token and with an enterprise token, never get a 5xx, and
every answer matches the schema. The API runs in process on a real alert store holding two
enterprises' alarms, with onboarding configured over a copy of the example registry."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from earlywarn.clock import ManualClock
from earlywarn.mosquitto_auth import AuthDir, BrokerReloader
from earlywarn.onboard import Onboarder
from earlywarn.registry import load_registry
from tests.api.conftest import HUAXIN_GAS, LAOJIE_GAS, Served
from tests.api.server import START_MS, ApiThread, make_tokens
from tests.conftest import EXAMPLE_REGISTRY


@pytest.fixture(scope="module")
def served_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("api-schema")
    registry_dir = root / "registry"
    shutil.copytree(EXAMPLE_REGISTRY, registry_dir)
    tokens = make_tokens(root / "tokens.yaml")
    onboarder = Onboarder(
        registry_dir, AuthDir(root / "mqtt"), BrokerReloader(), ManualClock(START_MS)
    )
    api = ApiThread(
        load_registry(registry_dir), root / "alerts.db", root / "tokens.yaml", onboarder
    ).start()
    try:
        laojie = api.raise_alarm(LAOJIE_GAS, 57.5, START_MS)
        huaxin = api.raise_alarm(HUAXIN_GAS, 62.0, START_MS + 1000)
        yield Served(api, tokens, laojie, huaxin)
    finally:
        api.stop()


FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


def _fuzz_every_operation(served: Served, token: str) -> int:
    """Run generated cases of every operation; returns how many operations were fuzzed.

    schemathesis's own pytest plugin does not run under pytest 9, so its strategies are
    driven with hypothesis directly, one operation at a time.
    """
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @FUZZ
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            case.validate_response(
                response,
                checks=(not_a_server_error, status_code_conformance, response_schema_conformance),
            )

        run()
        count += 1
    return count


def test_no_request_of_the_centre_gets_a_server_error(served_module: Served) -> None:
    assert _fuzz_every_operation(served_module, served_module.tokens.centre) == 8


def test_no_request_of_an_enterprise_gets_a_server_error(served_module: Served) -> None:
    assert _fuzz_every_operation(served_module, served_module.tokens.laojie) == 8


def test_the_schema_documents_every_route(served_module: Served) -> None:
    doc = httpx.get(f"{served_module.url}/openapi.json").json()
    assert set(doc["paths"]) == {
        "/healthz",
        "/metrics",
        "/api/v1/enterprises",
        "/api/v1/enterprises/{enterprise_id}",
        "/api/v1/alarms",
        "/api/v1/alarms/{ref}",
        "/api/v1/alarms/{ref}/ack",
        "/api/v1/onboarding",
    }
