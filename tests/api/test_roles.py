"""Who sees what: a centre token sees everything; an enterprise token sees, shows and
acknowledges only its own alarms and registry entry (another's answers 404, exactly as an
unknown one); no token or a wrong one is 401."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Served


def get(served: Served, path: str, token: str | None, **params: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(served.url + path, headers=headers, params=params, timeout=10)


def ack(served: Served, ref: int, token: str, by: str) -> httpx.Response:
    return httpx.post(
        f"{served.url}/api/v1/alarms/{ref}/ack",
        headers={"Authorization": f"Bearer {token}"},
        json={"by": by, "comment": "已关闭阀门"},
        timeout=10,
    )


@pytest.mark.parametrize(
    "path",
    ["/api/v1/alarms", "/api/v1/alarms/1", "/api/v1/enterprises", "/metrics"],
)
@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_without_a_valid_token_the_answer_is_401(
    served: Served, path: str, token: str | None
) -> None:
    answer = get(served, path, token)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "alarm" not in answer.text.replace("alarms", "")  # no data in the refusal


def test_an_ack_without_a_token_is_401_and_changes_nothing(served: Served) -> None:
    answer = httpx.post(
        f"{served.url}/api/v1/alarms/{served.laojie_ref}/ack", json={"by": "lj-ops-wu"}
    )
    assert answer.status_code == 401
    record = served.api.call(lambda: served.api.service.store.get_by_ref(served.laojie_ref))
    assert record.acked_by is None


def test_the_centre_lists_every_enterprises_alarms(served: Served) -> None:
    alarms = get(served, "/api/v1/alarms", served.tokens.centre).json()
    assert {a["enterprise"] for a in alarms} == {"laojie-restaurants", "huaxin-chem"}


def test_an_enterprise_lists_only_its_own_alarms(served: Served) -> None:
    alarms = get(served, "/api/v1/alarms", served.tokens.laojie).json()
    assert [a["ref"] for a in alarms] == [served.laojie_ref]
    asked = get(served, "/api/v1/alarms", served.tokens.laojie, enterprise="huaxin-chem")
    assert asked.status_code == 404
    assert "huaxin" not in asked.json()["detail"].replace("'huaxin-chem'", "")


def test_an_enterprise_cannot_show_anothers_alarm(served: Served) -> None:
    own = get(served, f"/api/v1/alarms/{served.laojie_ref}", served.tokens.laojie)
    assert own.status_code == 200
    assert own.json()["alarm"]["sensor"] == "laojie-restaurants/r-01/G1"
    other = get(served, f"/api/v1/alarms/{served.huaxin_ref}", served.tokens.laojie)
    unknown = get(served, "/api/v1/alarms/999", served.tokens.laojie)
    assert other.status_code == unknown.status_code == 404
    assert "GD-01" not in other.text and "华信" not in other.text
    assert get(served, f"/api/v1/alarms/{served.huaxin_ref}", served.tokens.centre).is_success


def test_an_enterprise_cannot_ack_anothers_alarm(served: Served) -> None:
    refused = ack(served, served.huaxin_ref, served.tokens.laojie, "lj-ops-wu")
    assert refused.status_code == 404
    # Nor by naming the other enterprise's own person.
    assert ack(served, served.huaxin_ref, served.tokens.laojie, "hx-ops-zhou").status_code == 404
    record = served.api.call(lambda: served.api.service.store.get_by_ref(served.huaxin_ref))
    assert record.acked_by is None and record.state == "active-unacked"


def test_an_enterprise_acks_its_own_alarm_for_one_of_its_people(served: Served) -> None:
    foreign_person = ack(served, served.laojie_ref, served.tokens.laojie, "hx-ops-zhou")
    assert foreign_person.status_code == 403
    done = ack(served, served.laojie_ref, served.tokens.laojie, "lj-ops-wu")
    assert done.status_code == 200
    assert done.json()["status"] == "acked" and done.json()["acked_by"] == "lj-ops-wu"
    assert done.json()["cancelled_steps"] > 0  # the red alarm's pending calls stop
    shown = get(served, f"/api/v1/alarms/{served.laojie_ref}", served.tokens.laojie).json()
    assert shown["alarm"]["state"] == "active-acked"
    assert shown["acks"][0]["how"] == "web"
    again = ack(served, served.laojie_ref, served.tokens.laojie, "lj-ops-wu")
    assert again.json()["status"] == "already_acked"


def test_the_centre_acks_any_alarm_for_a_duty_officer(served: Served) -> None:
    done = ack(served, served.huaxin_ref, served.tokens.centre, "ax-duty-wang")
    assert done.status_code == 200 and done.json()["acked_by"] == "ax-duty-wang"


def test_the_registry_is_filtered_the_same_way(served: Served) -> None:
    assert len(get(served, "/api/v1/enterprises", served.tokens.centre).json()) == 3
    own = get(served, "/api/v1/enterprises", served.tokens.huaxin).json()
    assert [e["id"] for e in own] == ["huaxin-chem"]
    detail = get(served, "/api/v1/enterprises/huaxin-chem", served.tokens.huaxin).json()
    assert detail["site_list"][0]["sensors"][0]["topic"] == "ew/v1/huaxin-chem/tank-farm-1/T101/up"
    other = get(served, "/api/v1/enterprises/laojie-restaurants", served.tokens.huaxin)
    assert other.status_code == 404


def test_metrics_are_for_the_centre(served: Served) -> None:
    assert get(served, "/metrics", served.tokens.laojie).status_code == 403
    text = get(served, "/metrics", served.tokens.centre).text
    assert 'earlywarn_alarms_open{level="red",state="active-unacked"} 2.0' in text
    assert 'earlywarn_queue_depth{queue="mqtt_handoff"} 3.0' in text


def test_health_needs_no_token(served: Served) -> None:
    assert get(served, "/healthz", None).json() == {"status": "ok", "mqtt_connected": True}
