"""Acknowledgements from the phone: an SMS reply with the code, a keypress during the call,
through the real acknowledgement server (aiohttp, webhook secret) and the real alert service.

Two orange gas alarms of 华信化工's tank farm call 周立军 at 02:00. He opens the link of the
first (GET: the page, no acknowledgement), replies to its SMS with the code — after a
colleague who was not sent it tried from his own phone — and presses 2, then 1, during the
call about the second. Each acknowledgement stops that alarm's calls.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp

from alerting.ackweb import AckServer
from alerting.lifecycle import State
from earlywarn.registry import Registry
from tests.alerting.night import GAS, MIN, NIGHT, Night, link_in, open_night, sent
from tests.services.http_recorder import HttpRecorder, Recorded

HOOK_SECRET = "sms-gateway-callback-secret"
AUTH = {"Authorization": f"Bearer {HOOK_SECRET}"}
SOUTH = "huaxin-chem/tank-farm-1/GD-03"


def _request(recorder: HttpRecorder, path: str, about: str) -> Recorded:
    (found,) = [r for r in recorder.requests if r.path == path and about in r.json()["text"]]
    return found


def _state(night: Night, sensor: str) -> State:
    return next(a.state for a in night.store.list_alarms() if a.sensor == sensor)


def test_sms_reply_and_keypress_acknowledge_through_the_ack_server(
    registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    night = open_night(registry, http_recorder, tmp_path / "alerts.db")
    night.reading(GAS, 30.0)
    night.reading(SOUTH, 30.0)
    assert night.at(0) == 4
    north_sms = _request(http_recorder, "/sms", "北侧可燃气体探测器1")
    south_call = _request(http_recorder, "/voice", "南侧可燃气体探测器1")
    code = re.search(r"回复 (\d+) 确认", north_sms.json()["body"])
    assert code is not None
    replies: dict[str, Any] = {}

    async def scenario() -> None:
        server = AckServer(
            night.service, night.signer, night.clock.now_ms, webhook_secret=HOOK_SECRET
        )
        port = await server.start()
        night.signer.base_url = f"http://127.0.0.1:{port}"
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as session:

                async def post(path: str, data: dict[str, str], **kw: Any) -> Any:
                    async with session.post(base + path, data=data, **kw) as answer:
                        return answer.status, await answer.json(content_type=None)

                # 02:01 the link from the SMS is opened (a chat app's preview, or him): GET.
                night.clock.set(NIGHT + MIN)
                link = link_in(north_sms).replace("http://127.0.0.1:1", base)
                async with session.get(link) as page:
                    assert page.status == 200
                    assert "报警中，未确认" in await page.text()
                replies["after get"] = _state(night, GAS)
                # 02:02 a colleague who was not sent the alarm replies from his phone; then
                # a number nobody has; then the webhook without its secret.
                night.clock.set(NIGHT + 2 * MIN)
                replies["wu"] = await post(
                    "/hooks/sms-reply",
                    {"phone": "+8613800030001", "text": code.group(1)},
                    headers=AUTH,
                )
                replies["stranger"] = await post(
                    "/hooks/sms-reply",
                    {"phone": "13900000000", "text": code.group(1)},
                    headers=AUTH,
                )
                async with session.post(
                    base + "/hooks/sms-reply", data={"phone": "13800020003", "text": code.group(1)}
                ) as unauthorised:
                    replies["no secret"] = unauthorised.status
                replies["before reply"] = _state(night, GAS)
                # 02:03 周立军 replies, in his own words after the code, from his phone as the
                # gateway reports it (national format).
                night.clock.set(NIGHT + 3 * MIN)
                replies["zhou"] = await post(
                    "/hooks/sms-reply",
                    {"phone": "13800020003", "text": f"{code.group(1)} 收到，2人已到现场"},
                    headers=AUTH,
                )
                # 02:04 during the call about the south detector he presses 2, then 1.
                night.clock.set(NIGHT + 4 * MIN)
                key = south_call.json()["key"]
                replies["ivr 2"] = await post(
                    "/hooks/ivr", {"key": key, "digits": "2"}, headers=AUTH
                )
                replies["south after 2"] = _state(night, SOUTH)
                replies["ivr 1"] = await post(
                    "/hooks/ivr", {"key": key, "digits": "1"}, headers=AUTH
                )
        finally:
            await server.stop()

    asyncio.run(scenario())

    assert replies["after get"] is State.ACTIVE_UNACKED
    assert replies["wu"][0] == 200 and replies["wu"][1]["ok"] is False
    assert replies["stranger"][1]["ok"] is False
    assert replies["no secret"] == 404
    assert replies["before reply"] is State.ACTIVE_UNACKED
    assert replies["zhou"][1]["ok"] is True, replies["zhou"]
    assert replies["ivr 2"][1]["ok"] is False
    assert replies["south after 2"] is State.ACTIVE_UNACKED
    assert replies["ivr 1"][1]["ok"] is True, replies["ivr 1"]

    north = next(a for a in night.store.list_alarms() if a.sensor == GAS)
    south = next(a for a in night.store.list_alarms() if a.sensor == SOUTH)
    for alarm, how in ((north, "sms-reply"), (south, "ivr")):
        assert alarm.state is State.ACTIVE_ACKED
        history = night.store.history(alarm.alarm_id)
        assert history is not None
        assert [(a.by, a.how) for a in history.acks] == [("hx-ops-zhou", how)]
    # The 02:05 calls of both alarms were cancelled by the acknowledgements; nobody else was
    # reached, so there is nobody to tell.
    for minute in range(4, 30):
        assert night.at(minute * MIN) == 0
    assert len(sent(http_recorder, "/voice")) == 2
