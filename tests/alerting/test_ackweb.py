"""The acknowledgement web server over real HTTP: GET shows, only POST acknowledges.

The desk behind the server is a small recording stand-in (a seam this project owns); the
server, its link checks and its webhooks are the real thing, reached through aiohttp's
client over loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from alerting.ackweb import AckReply, AckServer, AlarmPage, Answer, Contacted
from alerting.links import LinkSigner

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = 1_790_000_000_000


@dataclass
class Desk:
    """Records every acknowledgement; one alarm numbered 7."""

    acks: list[tuple[Any, ...]] = field(default_factory=list)

    def page(self, alarm_ref: int, person: str) -> AlarmPage | None:
        if alarm_ref != 7:
            return None
        state = "active-acked" if self.acks else "active-unacked"
        return AlarmPage(
            alarm_ref=7,
            title="罐区一 T101 液位",
            level="red",
            peak_level="red",
            state=state,
            enterprise_name="安县华信化工有限公司",
            site_name="罐区一",
            sensor_name="T101甲醇储罐液位",
            value_text="17.62 m",
            message="罐区一 T101 液位 17.62 m，超过高高限 17.50 m（红色）<script>",
            start_ms=NOW,
            contacted=(Contacted("周立军", "操作负责人", "voice", NOW, "sent"),),
            answers=tuple(Answer(a[1], NOW, a[2], a[3]) for a in self.acks),
        )

    def acknowledge(self, alarm_ref: int, person: str, how: str, comment: str) -> AckReply:
        self.acks.append((alarm_ref, person, how, comment))
        return AckReply(True, "已确认")

    def acknowledge_by_phone(self, phone: str, code: str) -> AckReply:
        self.acks.append(("phone", phone, "sms-reply", code))
        return AckReply(code == "7", "已确认" if code == "7" else "回复码不对")

    def acknowledge_by_call(self, key: str, digits: str) -> AckReply:
        self.acks.append(("call", key, "ivr", digits))
        return AckReply(digits == "1", "已确认")


Scenario = Callable[[aiohttp.ClientSession, str, AckServer], Awaitable[None]]


def serve(desk: Desk, scenario: Scenario, now: list[int] | None = None) -> None:
    clock = now or [NOW]
    signer = LinkSigner(SECRET, "http://127.0.0.1")

    async def main() -> None:
        server = AckServer(desk, signer, lambda: clock[0], webhook_secret="hook-secret")
        port = await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                await scenario(session, f"http://127.0.0.1:{port}", server)
        finally:
            await server.stop()

    asyncio.run(main())


def link_path(ref: int = 7, person: str = "hx-ops-zhou") -> str:
    return "/a/" + LinkSigner(SECRET, "http://x").token(ref, person, NOW)


def test_get_shows_the_alarm_and_never_acknowledges() -> None:
    desk = Desk()

    async def scenario(s: aiohttp.ClientSession, base: str, _srv: AckServer) -> None:
        for _ in range(3):  # a chat app's preview fetcher, a mail scanner, the person
            async with s.get(base + link_path()) as r:
                assert r.status == 200
                text = await r.text()
                assert r.headers["Cache-Control"] == "no-store"
                assert r.headers["Referrer-Policy"] == "no-referrer"
        assert "17.62 m" in text
        assert "周立军" in text  # who else was called
        assert 'method="post"' in text
        assert "<script>" not in text  # everything shown is escaped
        async with s.head(base + link_path()) as r:
            assert r.status == 200

    serve(desk, scenario)
    assert desk.acks == []


def test_post_acknowledges_with_the_comment() -> None:
    desk = Desk()

    async def scenario(s: aiohttp.ClientSession, base: str, _srv: AckServer) -> None:
        async with s.post(base + link_path(), data={"comment": "已关闭进料阀"}) as r:
            assert r.status == 200
            text = await r.text()
        assert "已确认" in text
        assert "已关闭进料阀" in text

    serve(desk, scenario)
    assert desk.acks == [(7, "hx-ops-zhou", "link", "已关闭进料阀")]


def test_tampered_expired_and_unknown_links_do_not_acknowledge() -> None:
    desk = Desk()
    clock = [NOW]

    async def scenario(s: aiohttp.ClientSession, base: str, _srv: AckServer) -> None:
        good = link_path()
        tampered = good.replace("hx-ops-zhou", "hx-main-sun")
        async with s.post(base + tampered, data={"comment": "x"}) as r:
            assert r.status == 403
            assert "被修改过" in await r.text()
        async with s.get(base + link_path(ref=8)) as r:
            assert r.status == 404
        clock[0] = NOW + 25 * 3_600_000
        async with s.post(base + good) as r:
            assert r.status == 403
            assert "过期" in await r.text()

    serve(desk, scenario, clock)
    assert desk.acks == []


def test_guessing_links_is_rate_limited() -> None:
    desk = Desk()

    async def scenario(s: aiohttp.ClientSession, base: str, srv: AckServer) -> None:
        statuses = []
        for i in range(srv.limiter.limit + 2):
            async with s.get(f"{base}/a/AAAAAAAAAAAAAAAAAAAAAAAA{i}.hx-ops-zhou") as r:
                statuses.append(r.status)
        assert statuses[: srv.limiter.limit] == [403] * srv.limiter.limit
        assert statuses[-1] == 429
        async with s.post(base + link_path()) as r:  # even a good link waits a minute
            assert r.status == 429

    serve(desk, scenario)
    assert desk.acks == []


def test_webhooks_need_the_secret_and_map_replies_to_acks() -> None:
    desk = Desk()

    async def scenario(s: aiohttp.ClientSession, base: str, _srv: AckServer) -> None:
        async with s.post(base + "/hooks/sms-reply", data={"phone": "1", "text": "7"}) as r:
            assert r.status == 404  # without the secret the hook does not exist
        auth = {"Authorization": "Bearer hook-secret"}
        async with s.post(
            base + "/hooks/sms-reply", data={"phone": "+8613800020003", "text": "7"}, headers=auth
        ) as r:
            assert r.status == 200
            assert (await r.json())["ok"] is True
        async with s.post(
            base + "/hooks/sms-reply?secret=hook-secret", json={"phone": "+86138", "text": "9"}
        ) as r:
            assert (await r.json())["ok"] is False
        async with s.post(
            base + "/hooks/ivr", json={"key": "k1", "digits": "1"}, headers=auth
        ) as r:
            assert (await r.json()) == {"ok": True, "message": "已确认"}
        async with s.post(base + "/hooks/ivr", json={"key": "k1"}, headers=auth) as r:
            assert r.status == 400

    serve(desk, scenario)
    assert desk.acks == [
        ("phone", "+8613800020003", "sms-reply", "7"),
        ("phone", "+86138", "sms-reply", "9"),
        ("call", "k1", "ivr", "1"),
    ]
