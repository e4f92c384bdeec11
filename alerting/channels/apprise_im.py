"""IM bots and webhooks through Apprise: DingTalk, WeCom, Feishu, JSON webhooks, mail via mailto.

Apprise already speaks these vendors' APIs (signing, payload shapes, their error answers), so
we keep no vendor code of our own. A channel is one Apprise URL template in which ``{address}``
(and any other placeholder of :data:`~alerting.channels.http_provider.FIELDS`) is filled from
the notification, URL-quoted: ``dingtalk://TOKEN/{address}`` @-mentions the person's phone in
the duty group, ``json://hooks.example.cn/earlywarn`` posts to a webhook, ``wecombot://KEY``
writes to a WeCom group whatever the address.

Why a failed notify is RETRY: Apprise reports only success or failure, not whether the bot
answered 500, timed out or refused a bad token. Most failures of a bot that worked yesterday
are transient (the vendor's API, the county's uplink), and escalation bounds the retries and
then moves on to the person's next channel, so retrying costs at most a few minutes where
giving up at once could lose the fastest channel. What certainly cannot work — a URL Apprise
cannot parse, a scheme with no plugin, a plugin that rejects its arguments — is PERMANENT.

The detail says why, from Apprise's own log: its warnings and errors emitted *in this thread*
during the send are collected (``apprise.LogCapture`` would also collect what other channels'
threads log at the same moment). Records Apprise marks as not for capture (``apprise_capture``
false: sensitive) are left out.

Every request gets ``timeout_s`` as its connect and read timeout (Apprise's ``cto``/``rto``),
so a hung bot cannot hold a dispatcher thread beyond it.
"""

from __future__ import annotations

import functools
import logging
import threading
from types import TracebackType

import apprise

from alerting.channels.base import log_outcome
from alerting.channels.http_provider import Template, template_values, url_quote
from alerting.notifications import Notification, Outcome
from earlywarn.model import Level

log = logging.getLogger(__name__)

APPRISE_LOGGER = "apprise"
SERVICES_URL = "https://appriseit.com/services/"

_TYPES = {
    None: apprise.NotifyType.SUCCESS,  # the alarm cleared
    Level.BLUE: apprise.NotifyType.INFO,
    Level.YELLOW: apprise.NotifyType.WARNING,
    Level.ORANGE: apprise.NotifyType.FAILURE,
    Level.RED: apprise.NotifyType.FAILURE,
}


@functools.cache
def known_schemes() -> frozenset[str]:
    """Every URL scheme an installed Apprise plugin handles (computed once: it takes ~0.5 s)."""
    schemes: set[str] = set()
    for service in apprise.Apprise().details().get("schemas", ()):
        for key in ("protocols", "secure_protocols"):
            value = service.get(key) or ()
            schemes.update((value,) if isinstance(value, str) else value)
    return frozenset(s.lower() for s in schemes)


def check_url_template(url: str) -> Template:
    """Parse an Apprise URL template; ``ValueError`` for a bad placeholder or unknown scheme."""
    template = Template.parse(url)
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme or not rest:
        msg = (
            f"an Apprise URL looks like scheme://…, e.g. dingtalk://TOKEN/{{address}}; got {url!r}"
        )
        raise ValueError(msg)
    if scheme.lower() not in known_schemes():
        msg = f"no Apprise plugin handles {scheme}:// (see {SERVICES_URL})"
        raise ValueError(msg)
    return template


class _ThreadLog(logging.Handler):
    """Collects the ``apprise`` logger's warnings and errors emitted by the current thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self._thread or not getattr(record, "apprise_capture", True):
            return
        try:
            message = " ".join(record.getMessage().split())
        except (TypeError, ValueError):
            message = str(record.msg)
        if message and message not in self.messages:
            self.messages.append(message)

    def __enter__(self) -> _ThreadLog:
        logging.getLogger(APPRISE_LOGGER).addHandler(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        logging.getLogger(APPRISE_LOGGER).removeHandler(self)

    def why(self, fallback: str) -> str:
        """What Apprise said, or ``fallback`` when it said nothing we could hear."""
        return "; ".join(self.messages) or fallback


class AppriseChannel:
    """Delivers notifications to the Apprise URL made from the template and the address."""

    def __init__(self, name: str, url: str, *, timeout_s: float = 10.0) -> None:
        if not timeout_s > 0:
            msg = f"the timeout must be positive, got {timeout_s!r}"
            raise ValueError(msg)
        self._name = name
        self._url = check_url_template(url)
        self._scheme = url.partition("://")[0]
        self._timeout_s = timeout_s
        self._asset = apprise.AppriseAsset()

    @property
    def name(self) -> str:
        """The channel name contacts use (``dingtalk``, ``wecom``, ``webhook``…)."""
        return self._name

    def send(self, notification: Notification) -> Outcome:
        """Instantiate the plugin for this address and notify; classify, never raise."""
        url = self._url.render(template_values(notification), url_quote)
        with _ThreadLog() as heard:
            outcome = self._notify(url, notification, heard)
        log_outcome(log, self._name, notification, outcome, outcome.detail)
        return outcome

    def _notify(self, url: str, notification: Notification, heard: _ThreadLog) -> Outcome:
        scheme = f"{self._scheme}://"
        try:
            plugin = apprise.Apprise.instantiate(url, asset=self._asset)
            if plugin is None:
                why = heard.why("Apprise gave no reason")
                return Outcome.permanent(f"Apprise cannot use the {scheme} URL: {why}")
            plugin.socket_connect_timeout = self._timeout_s
            plugin.socket_read_timeout = self._timeout_s
            ok = plugin.notify(
                body=notification.body,
                title=notification.subject,
                notify_type=_TYPES[notification.level],
            )
        except Exception:
            # A plugin bug must not stop escalation; the next channel may still reach the person.
            log.exception("%s: the Apprise %s plugin failed", self._name, scheme)
            return Outcome.permanent(f"the Apprise {scheme} plugin raised an error (see the log)")
        service = getattr(plugin, "service_name", scheme)
        if ok:
            return Outcome.sent(f"{service} accepted {notification.key}")
        why = heard.why("Apprise reported a failure without a reason")
        return Outcome.retry(f"{service} did not accept the message: {why}")
