"""The acknowledgement web server: the page behind every link, and the provider webhooks.

``GET /a/{token}`` shows the alarm — what, where, the value, its state, who else was called
and who answered — with a comment box and an acknowledge button. Only ``POST /a/{token}``
acknowledges: chat apps and mail scanners fetch links to build previews, and a preview must
never silence an alarm. The token is the capability (see :mod:`alerting.links`); the page
sends ``no-store``, ``no-referrer`` and ``noindex`` so it is neither cached nor leaked onward.

Providers call back on two webhooks, both guarded by a shared secret (``Authorization:
Bearer <secret>`` or ``?secret=<secret>``, since many SMS gateways cannot set headers):

- ``POST /hooks/sms-reply`` with ``phone`` and ``text`` (form or JSON): an SMS reply whose
  text is the code printed in the message acknowledges that alarm for the person owning
  the phone, if that person was notified of it.
- ``POST /hooks/ivr`` with ``key`` (the notification key sent with the call) and
  ``digits``: pressing ``1`` during the call acknowledges.

What an alarm looks like and how an acknowledgement is applied belong to the caller, behind
:class:`AckDesk`; this module only speaks HTTP and HTML.
"""

from __future__ import annotations

import hmac
import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from aiohttp import web

from alerting.links import LinkError, LinkSigner

log = logging.getLogger(__name__)

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
_MAX_COMMENT = 500
_LEVEL_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
_LEVEL_COLOUR = {"blue": "#1565c0", "yellow": "#f9a825", "orange": "#ef6c00", "red": "#c62828"}
_STATE_ZH = {
    "active-unacked": "报警中，未确认",
    "active-acked": "报警中，已确认",
    "cleared-unacked": "已恢复，未确认",
    "cleared": "已恢复，已确认",
}


@dataclass(frozen=True, slots=True)
class Contacted:
    """One notification of the alarm, as shown on its page."""

    person_name: str
    role: str
    channel: str
    ts_ms: int
    outcome: str


@dataclass(frozen=True, slots=True)
class Answer:
    """One acknowledgement, as shown on the alarm's page."""

    person_name: str
    ts_ms: int
    how: str
    comment: str


@dataclass(frozen=True, slots=True)
class AlarmPage:
    """Everything the page of one alarm shows; built by the :class:`AckDesk`."""

    alarm_ref: int
    title: str
    level: str | None
    peak_level: str | None
    state: str
    enterprise_name: str
    site_name: str
    sensor_name: str
    value_text: str
    message: str
    start_ms: int
    drill: bool = False
    contacted: tuple[Contacted, ...] = ()
    answers: tuple[Answer, ...] = ()


@dataclass(frozen=True, slots=True)
class AckReply:
    """What an acknowledgement attempt did, in words for the person who tried."""

    acked: bool
    text: str


class AckDesk(Protocol):
    """Where alarms are looked up and acknowledged (the alert service, over its store)."""

    def page(self, alarm_ref: int, person: str) -> AlarmPage | None:
        """The page of an alarm as seen by ``person``; ``None`` if there is no such alarm."""
        ...

    def acknowledge(self, alarm_ref: int, person: str, how: str, comment: str) -> AckReply:
        """Acknowledge for ``person`` (``how``: link, sms-reply, ivr)."""
        ...

    def acknowledge_by_phone(self, phone: str, code: str) -> AckReply:
        """An SMS reply: ``code`` from the message, sent from ``phone``."""
        ...

    def acknowledge_by_call(self, key: str, digits: str) -> AckReply:
        """A keypress during the call whose notification key is ``key``."""
        ...


@dataclass
class _Limiter:
    """At most ``limit`` refused tokens per client per minute: a link's MAC is 80 bits, but
    there is no reason to let anyone try them at line rate."""

    limit: int = 30
    window_s: float = 60.0
    now: Callable[[], float] = time.monotonic
    _seen: dict[str, list[float]] = field(default_factory=dict)

    def blocked(self, client: str) -> bool:
        recent = [t for t in self._seen.get(client, ()) if self.now() - t < self.window_s]
        self._seen[client] = recent
        return len(recent) >= self.limit

    def refused(self, client: str) -> None:
        self._seen.setdefault(client, []).append(self.now())
        if len(self._seen) > 10_000:  # forget the oldest clients rather than grow forever
            for key in list(self._seen)[:5_000]:
                del self._seen[key]


class AckServer:
    """The aiohttp application; ``start`` binds it, ``stop`` closes it.

    ``now_ms`` is the injected clock (links expire by it); ``webhook_secret`` guards the
    provider webhooks (``None`` disables them: they answer 404). ``tz`` is how times are shown.
    """

    def __init__(
        self,
        desk: AckDesk,
        signer: LinkSigner,
        now_ms: Callable[[], int],
        *,
        webhook_secret: str | None = None,
        tz: str = "Asia/Shanghai",
    ) -> None:
        self.desk = desk
        self.signer = signer
        self.now_ms = now_ms
        self.webhook_secret = webhook_secret
        self.tz = ZoneInfo(tz)
        self.limiter = _Limiter()
        self.app = web.Application(client_max_size=64 * 1024)
        self.app.add_routes(
            [
                web.get("/a/{token}", self._show),
                web.post("/a/{token}", self._ack),
                web.post("/hooks/sms-reply", self._sms_reply),
                web.post("/hooks/ivr", self._ivr),
                web.get("/healthz", self._health),
            ]
        )
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve on ``host:port`` (0: a free port); returns the bound port."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log.info("acknowledgement server listening on %s:%s", host, self.port)
        return self.port

    async def stop(self) -> None:
        """Close the listening socket and open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- pages ---------------------------------------------------------------------------

    async def _health(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    def _claim(self, request: web.Request) -> tuple[int, str] | web.Response:
        client = request.remote or "?"
        if self.limiter.blocked(client):
            return self._page("请稍后再试", "<p>尝试次数过多，请一分钟后再试。</p>", status=429)
        try:
            claim = self.signer.verify(request.match_info["token"], self.now_ms())
        except LinkError as exc:
            self.limiter.refused(client)
            log.warning("acknowledgement link refused from %s: %s", client, exc)
            body = f"<p>链接无效：{_h(_zh_link_error(exc))}</p><p>{_h(str(exc))}</p>"
            return self._page("链接无效", body, status=403)
        return claim.alarm_ref, claim.person

    async def _show(self, request: web.Request) -> web.Response:
        claim = self._claim(request)
        if isinstance(claim, web.Response):
            return claim
        ref, person = claim
        page = self.desk.page(ref, person)
        if page is None:
            return self._page("报警不存在", "<p>找不到这条报警。</p>", status=404)
        return self._page(page.title, self._alarm_html(page, request.path))

    async def _ack(self, request: web.Request) -> web.Response:
        claim = self._claim(request)
        if isinstance(claim, web.Response):
            return claim
        ref, person = claim
        form = await request.post()
        comment = str(form.get("comment", "")).strip()[:_MAX_COMMENT]
        reply = self.desk.acknowledge(ref, person, "link", comment)
        log.info("acknowledgement by link: alarm %s, person %s: %s", ref, person, reply.text)
        page = self.desk.page(ref, person)
        notice = f'<p class="notice">{_h(reply.text)}</p>'
        body = notice + (self._alarm_html(page, request.path) if page else "")
        return self._page("已确认" if reply.acked else "未确认", body, status=200)

    # -- webhooks ------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        if self.webhook_secret is None:
            return False
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        given = given or request.query.get("secret", "")
        return hmac.compare_digest(given.encode(), self.webhook_secret.encode())

    async def _fields(self, request: web.Request) -> dict[str, str]:
        if request.content_type == "application/json":
            try:
                doc = await request.json()
            except ValueError:
                return {}
            return {k: str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}
        form = await request.post()
        return {k: str(v) for k, v in form.items()}

    async def _sms_reply(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            raise web.HTTPNotFound()
        fields = await self._fields(request)
        phone, text = fields.get("phone", "").strip(), fields.get("text", "").strip()
        if not phone or not text:
            return web.json_response(
                {"ok": False, "error": "phone and text are required"}, status=400
            )
        reply = self.desk.acknowledge_by_phone(phone, text)
        log.info("SMS reply from %s (%r): %s", phone, text[:40], reply.text)
        return web.json_response({"ok": reply.acked, "message": reply.text})

    async def _ivr(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            raise web.HTTPNotFound()
        fields = await self._fields(request)
        key, digits = fields.get("key", "").strip(), fields.get("digits", "").strip()
        if not key or not digits:
            return web.json_response(
                {"ok": False, "error": "key and digits are required"}, status=400
            )
        reply = self.desk.acknowledge_by_call(key, digits)
        log.info("IVR keypress %r on %s: %s", digits, key, reply.text)
        return web.json_response({"ok": reply.acked, "message": reply.text})

    # -- HTML ----------------------------------------------------------------------------

    def _time(self, ts_ms: int) -> str:
        return datetime.fromtimestamp(ts_ms / 1000, self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def _alarm_html(self, page: AlarmPage, action: str) -> str:
        colour = _LEVEL_COLOUR.get(page.level or page.peak_level or "", "#2e7d32")
        level = _LEVEL_ZH.get(page.level or "", "已恢复")
        drill = '<p class="drill">【演练】</p>' if page.drill else ""
        rows = "".join(
            f"<tr><td>{_h(c.person_name)}</td><td>{_h(c.role)}</td><td>{_h(c.channel)}</td>"
            f"<td>{_h(self._time(c.ts_ms))}</td><td>{_h(c.outcome)}</td></tr>"
            for c in page.contacted
        )
        answers = "".join(
            f"<li>{_h(a.person_name)} {_h(self._time(a.ts_ms))}（{_h(a.how)}）"
            f"{'：' + _h(a.comment) if a.comment else ''}</li>"
            for a in page.answers
        )
        form = ""
        if page.state in ("active-unacked", "cleared-unacked"):
            form = (
                f'<form method="post" action="{_h(action)}">'
                '<label>处置情况（可选）<br><textarea name="comment" rows="3" maxlength="500">'
                "</textarea></label><br>"
                '<button type="submit">确认收到</button></form>'
            )
        return (
            f'{drill}<h1 style="color:{colour}">{_h(level)} · {_h(page.title)}</h1>'
            f"<p>{_h(page.message)}</p>"
            "<table>"
            f"<tr><th>单位</th><td>{_h(page.enterprise_name)}</td></tr>"
            f"<tr><th>地点</th><td>{_h(page.site_name)}</td></tr>"
            f"<tr><th>测点</th><td>{_h(page.sensor_name)}</td></tr>"
            f"<tr><th>数值</th><td>{_h(page.value_text)}</td></tr>"
            f"<tr><th>开始</th><td>{_h(self._time(page.start_ms))}</td></tr>"
            f"<tr><th>状态</th><td>{_h(_STATE_ZH.get(page.state, page.state))}</td></tr>"
            "</table>"
            f"{form}"
            f"<h2>已通知</h2><table><tr><th>人员</th><th>职务</th><th>方式</th><th>时间</th>"
            f"<th>结果</th></tr>{rows}</table>"
            f"<h2>确认记录</h2><ul>{answers or '<li>尚无人确认</li>'}</ul>"
        )

    def _page(self, title: str, body: str, status: int = 200) -> web.Response:
        text = (
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_h(title)}</title><style>body{{font-family:sans-serif;margin:1em;"
            "max-width:40em}table{border-collapse:collapse}td,th{padding:.2em .5em;"
            "text-align:left;border-bottom:1px solid #ddd}button{font-size:1.3em;"
            "padding:.5em 2em}.drill{color:#6a1b9a;font-weight:bold}"
            ".notice{font-weight:bold}</style></head>"
            f"<body>{body}</body></html>"
        )
        return web.Response(
            text=text, status=status, content_type="text/html", charset="utf-8", headers=_HEADERS
        )


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _zh_link_error(exc: LinkError) -> str:
    text = str(exc)
    if "expired" in text:
        return "链接已过期，请使用最新消息中的链接或联系值班室。"
    if "not genuine" in text:
        return "链接不正确（被修改过或并非本系统发出）。"
    return "链接不完整或已损坏，请打开消息中的完整链接。"
