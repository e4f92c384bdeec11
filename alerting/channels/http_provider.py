"""SMS and voice calls through one configurable HTTP gateway.

Every Chinese SMS or voice provider has its own API, but nearly all of them are "send this
phone number and this text as JSON or a form, with a key and maybe a signature, and read a
code in the answer". One channel class configured per provider covers them, so adding a
gateway is a ``channels.yaml`` entry, not code. The same class serves ``sms`` and ``voice``:
the channel name is configuration.

Templates
    The URL and the body are templates with ``{field}`` placeholders filled from the
    :class:`~alerting.notifications.Notification` (see :data:`FIELDS`). ``{{`` and ``}}`` stand
    for literal braces; any other brace is literal too, so a ``{`` in Chinese text never
    breaks a template. Values are escaped for where they land:

    - ``json`` body: the template must be valid JSON. It is parsed once, placeholders are
      filled inside its *strings*, and the result is serialised again, so a quote, a brace or a
      backslash in a message can never break the JSON. A string that is exactly one
      placeholder takes the field's JSON value: ``"{drill}"`` becomes ``true``/``false``,
      ``"{attempt}"`` a number, ``"{link}"`` ``null`` when there is no link.
    - ``form`` body: ``name=value&name=value``; names and values are URL-encoded after
      filling (in the configured charset, UTF-8 by default; some old gateways want GBK). With
      ``GET`` the form goes into the query string.
    - URL: each value is percent-encoded (``quote`` with no safe characters).

Signature (optional)
    ``HMAC(secret, timestamp + "\\n" + body)`` with SHA-256 (or SHA-512), sent hex-encoded (or
    base64) in the signature header, the timestamp (Unix seconds, or milliseconds) in the
    timestamp header. ``body`` is the exact bytes sent; with ``GET`` it is the query string.
    The gateway recomputes it to check that the request is ours and recent.

Classification (one helper, :func:`classify_status`): 2xx → SENT; 408, 429 and 5xx → RETRY
with ``retry_after_s`` from ``Retry-After`` (seconds or an HTTP date); any other status →
PERMANENT with the status and an excerpt of the answer. Redirects are not followed (a POST
that is redirected loses its body): a 3xx is PERMANENT and names where to point the URL.
Timeouts and connection errors → RETRY. Many gateways answer 200 with an error code in the
body, so an optional :class:`SuccessCheck` reads one JSON field; a 2xx that fails it is
PERMANENT unless the code is listed as retryable (a rate limit, "system busy").

``Notification.key`` goes in an idempotency header (``Idempotency-Key`` by default), so a
gateway that honours it drops the duplicate when a retry follows a lost answer.

Details never contain the URL's query or the headers: they may hold the gateway key.
"""

from __future__ import annotations

import base64
import codecs
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import requests

from alerting.channels.base import log_outcome
from alerting.notifications import Delivery, Notification, Outcome

log = logging.getLogger(__name__)

Content = Literal["json", "form"]
CONTENTS: tuple[Content, ...] = ("json", "form")
METHODS = ("POST", "PUT", "PATCH", "GET")
ALGORITHMS = ("sha256", "sha512")
ENCODINGS = ("hex", "base64")
TIMESTAMP_UNITS = ("s", "ms")
DEFAULT_IDEMPOTENCY_HEADER = "Idempotency-Key"
EXCERPT_CHARS = 200

FIELDS: tuple[str, ...] = (
    "address",
    "subject",
    "body",
    "person",
    "person_name",
    "alarm_id",
    "key",
    "level",
    "level_zh",
    "link",
    "drill",
    "attempt",
    "channel",
)
"""Placeholders a template may use. ``level`` is ``red``…``blue`` and ``level_zh`` 红色…蓝色
(both empty when the alarm cleared); ``drill`` is ``true``/``false`` (演练); ``link`` is empty
when there is no acknowledgement link."""


def template_values(notification: Notification) -> dict[str, object]:
    """The placeholder values of one notification, as native values (``None`` when absent)."""
    n = notification
    return {
        "address": n.address,
        "subject": n.subject,
        "body": n.body,
        "person": n.person,
        "person_name": n.person_name,
        "alarm_id": n.alarm_id,
        "key": n.key,
        "level": n.level.label if n.level is not None else None,
        "level_zh": n.level.zh if n.level is not None else None,
        "link": n.link,
        "drill": n.drill,
        "attempt": n.attempt,
        "channel": n.channel,
    }


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def url_quote(text: str) -> str:
    """Percent-encode everything but unreserved characters (for a value inside a URL)."""
    return quote(text, safe="")


_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Template:
    """Text with ``{field}`` placeholders, parsed once; :meth:`parse` rejects unknown names."""

    parts: tuple[tuple[bool, str], ...]
    """``(is_field, text)``: a literal piece or a field name."""

    @classmethod
    def parse(cls, text: str, allowed: tuple[str, ...] = FIELDS) -> Template:
        """Split ``text``; ``ValueError`` names an unknown placeholder and the known ones."""
        parts: list[tuple[bool, str]] = []
        pos = 0
        literal = ""
        for match in _TOKEN.finditer(text):
            literal += text[pos : match.start()]
            pos = match.end()
            name = match.group(1)
            if name is None:
                literal += match.group(0)[0]
                continue
            if name not in allowed:
                known = ", ".join("{" + f + "}" for f in allowed)
                msg = f"unknown placeholder {{{name}}}; use one of {known}"
                raise ValueError(msg)
            if literal:
                parts.append((False, literal))
                literal = ""
            parts.append((True, name))
        literal += text[pos:]
        if literal:
            parts.append((False, literal))
        return cls(tuple(parts))

    @property
    def fields(self) -> frozenset[str]:
        """The placeholders used."""
        return frozenset(text for is_field, text in self.parts if is_field)

    @property
    def single_field(self) -> str | None:
        """The field name when the whole template is exactly one placeholder."""
        if len(self.parts) == 1 and self.parts[0][0]:
            return self.parts[0][1]
        return None

    def render(
        self, values: Mapping[str, object], escape: Callable[[str], str] | None = None
    ) -> str:
        """Fill the placeholders, each value passed through ``escape`` (literals are not)."""
        out: list[str] = []
        for is_field, text in self.parts:
            if not is_field:
                out.append(text)
                continue
            value = _as_text(values.get(text))
            out.append(escape(value) if escape else value)
        return "".join(out)


class Body(Protocol):
    """A compiled body template."""

    def render(self, values: Mapping[str, object], charset: str) -> bytes:
        """The bytes to send for one notification."""
        ...


class _EmptyBody:
    def render(self, values: Mapping[str, object], charset: str) -> bytes:
        return b""


class _JsonBody:
    """A JSON document whose strings are templates; rendered by serialising, never splicing."""

    def __init__(self, text: str) -> None:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = (
                f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                'write placeholders inside JSON strings, e.g. {"phone": "{address}"}'
            )
            raise ValueError(msg) from None
        self._document = _compile_json(document)

    def render(self, values: Mapping[str, object], charset: str) -> bytes:
        filled = _fill_json(self._document, values)
        text = json.dumps(filled, ensure_ascii=False, separators=(",", ":"))
        return text.encode(charset, errors="replace")


def _compile_json(node: Any) -> Any:
    if isinstance(node, str):
        return Template.parse(node)
    if isinstance(node, dict):
        return {key: _compile_json(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_compile_json(item) for item in node]
    return node


def _fill_json(node: Any, values: Mapping[str, object]) -> Any:
    if isinstance(node, Template):
        single = node.single_field
        if single is not None:
            return values.get(single)
        return node.render(values)
    if isinstance(node, dict):
        return {key: _fill_json(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill_json(item, values) for item in node]
    return node


class _FormBody:
    """``a=b&c=d``: parsed into pairs once, URL-encoded after filling."""

    def __init__(self, text: str) -> None:
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            msg = "the form body must look like name={field}&name=text"
            raise ValueError(msg) from None
        self._pairs = tuple((Template.parse(k), Template.parse(v)) for k, v in pairs)

    def render(self, values: Mapping[str, object], charset: str) -> bytes:
        pairs = [(k.render(values), v.render(values)) for k, v in self._pairs]
        return urlencode(pairs, encoding=charset, errors="replace").encode("ascii")


def compile_body(text: str, content: Content) -> Body:
    """Parse a body template for ``content``; ``ValueError`` says what is wrong with it."""
    if not text.strip():
        return _EmptyBody()
    if content == "json":
        return _JsonBody(text)
    return _FormBody(text)


def check_url(template: str) -> Template:
    """Parse a URL template and check it is an absolute http(s) URL."""
    parsed = Template.parse(template)
    probe = urlsplit(parsed.render(dict.fromkeys(FIELDS, "x")))
    if probe.scheme not in ("http", "https") or not probe.hostname:
        msg = f"the URL must start with http:// or https:// and name a host, got {template!r}"
        raise ValueError(msg)
    return parsed


def check_charset(charset: str) -> None:
    """``ValueError`` for a charset Python cannot encode, now rather than at every send."""
    try:
        codecs.lookup(charset)
    except LookupError:
        msg = f"unknown charset {charset!r}: use utf-8 or gbk"
        raise ValueError(msg) from None


@dataclass(frozen=True, slots=True)
class Signing:
    """HMAC signature of each request: ``HMAC(secret, timestamp + "\\n" + body)``."""

    secret: str
    header: str = "X-Signature"
    timestamp_header: str = "X-Timestamp"
    algorithm: str = "sha256"
    encoding: str = "hex"
    timestamp_unit: str = "s"

    def __post_init__(self) -> None:
        if not self.secret:
            msg = "the signing secret is empty"
            raise ValueError(msg)
        if self.algorithm not in ALGORITHMS:
            msg = f"unknown algorithm {self.algorithm!r}: use {' or '.join(ALGORITHMS)}"
            raise ValueError(msg)
        if self.encoding not in ENCODINGS:
            msg = f"unknown encoding {self.encoding!r}: use {' or '.join(ENCODINGS)}"
            raise ValueError(msg)
        if self.timestamp_unit not in TIMESTAMP_UNITS:
            msg = f"unknown timestamp unit {self.timestamp_unit!r}: use s or ms"
            raise ValueError(msg)

    def headers(self, payload: bytes, now_s: float) -> dict[str, str]:
        """The signature and timestamp headers for ``payload`` sent at ``now_s``."""
        stamp = str(int(now_s * 1000) if self.timestamp_unit == "ms" else int(now_s))
        message = stamp.encode("ascii") + b"\n" + payload
        digest = hmac.new(self.secret.encode("utf-8"), message, self.algorithm).digest()
        text = digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode()
        return {self.header: text, self.timestamp_header: stamp}


@dataclass(frozen=True, slots=True)
class SuccessCheck:
    """A 2xx only counts as sent when the JSON answer's ``field`` equals ``equals``.

    ``field`` may be a dotted path (``result.code``). Values compare as equal when they are
    equal or print the same (a gateway's ``0`` and ``"0"``). A code in ``retryable`` (a rate
    limit, "system busy") makes the failure RETRY instead of PERMANENT.
    """

    field: str
    equals: object
    retryable: tuple[object, ...] = ()

    def __post_init__(self) -> None:
        if not self.field or any(not part for part in self.field.split(".")):
            msg = f"the success field must be a name or dotted path, got {self.field!r}"
            raise ValueError(msg)

    def judge(self, answer: object, excerpt: str) -> Outcome | None:
        """``None`` when the answer passes, else the failure's outcome."""
        found: object = answer
        for part in self.field.split("."):
            if not isinstance(found, dict) or part not in found:
                return Outcome.permanent(
                    f"the answer has no field {self.field!r} to confirm delivery: {excerpt}"
                )
            found = found[part]
        if _same(found, self.equals):
            return None
        what = f"the gateway answered {self.field}={found!r} (expected {self.equals!r}): {excerpt}"
        if any(_same(found, code) for code in self.retryable):
            return Outcome.retry(what)
        return Outcome.permanent(what)


def _same(a: object, b: object) -> bool:
    return a == b or _as_text(a) == _as_text(b)


def classify_status(status: int) -> Delivery:
    """The shared HTTP rule: 2xx sent; 408, 429 and 5xx worth retrying; the rest not."""
    if 200 <= status < 300:
        return Delivery.SENT
    if status in (408, 429) or 500 <= status < 600:
        return Delivery.RETRY
    return Delivery.PERMANENT


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; ``None`` if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, delta)


def excerpt(content: bytes, encoding: str | None) -> str:
    """The start of an answer, on one line, for an outcome's detail."""
    text = content[: EXCERPT_CHARS * 4].decode(encoding or "utf-8", errors="replace")
    text = " ".join(text.split())
    if len(text) > EXCERPT_CHARS:
        text = text[:EXCERPT_CHARS] + "…"
    return text or "(empty answer)"


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    url: str
    headers: dict[str, str]
    data: bytes | None = field(repr=False)


class HttpProviderChannel:
    """Delivers notifications through one HTTP gateway; see the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        url: str,
        body: str = "",
        method: str = "POST",
        content: Content = "json",
        charset: str = "utf-8",
        headers: Mapping[str, str] | None = None,
        signing: Signing | None = None,
        success: SuccessCheck | None = None,
        timeout_s: float = 10.0,
        idempotency_header: str | None = DEFAULT_IDEMPOTENCY_HEADER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if method.upper() not in METHODS:
            msg = f"unknown method {method!r}: use one of {', '.join(METHODS)}"
            raise ValueError(msg)
        if content not in CONTENTS:
            msg = f"unknown content {content!r}: use json or form"
            raise ValueError(msg)
        if method.upper() == "GET" and content != "form" and body.strip():
            msg = "a GET request carries its body in the query string: use content: form"
            raise ValueError(msg)
        if not timeout_s > 0:
            msg = f"the timeout must be positive, got {timeout_s!r}"
            raise ValueError(msg)
        check_charset(charset)
        self._name = name
        self._url = check_url(url)
        self._body = compile_body(body, content)
        self._method = method.upper()
        self._content = content
        self._charset = charset
        self._headers = dict(headers or {})
        self._signing = signing
        self._success = success
        self._timeout_s = timeout_s
        self._idempotency_header = idempotency_header
        self._clock = clock

    @property
    def name(self) -> str:
        """The channel name contacts use (``sms``, ``voice``…)."""
        return self._name

    def send(self, notification: Notification) -> Outcome:
        """POST (or PUT/GET) one notification; classify the answer."""
        request = self._request(notification)
        host = urlsplit(request.url).hostname or "?"
        try:
            response = requests.request(
                request.method,
                request.url,
                data=request.data,
                headers=request.headers,
                timeout=self._timeout_s,
                allow_redirects=False,
            )
        except requests.Timeout:
            outcome = Outcome.retry(f"{host} did not answer within {self._timeout_s:g} s")
        except requests.ConnectionError as exc:
            outcome = Outcome.retry(f"cannot reach {host}: {_reason(exc)}")
        except requests.RequestException as exc:
            outcome = Outcome.retry(f"request to {host} failed: {_reason(exc)}")
        except ValueError as exc:  # e.g. a header value http.client cannot encode
            outcome = Outcome.permanent(f"the request to {host} cannot be made: {exc}")
        else:
            with response:
                outcome = self._judge(response)
        self._log(notification, host, outcome)
        return outcome

    def _request(self, notification: Notification) -> _Request:
        values = template_values(notification)
        url = self._url.render(values, url_quote)
        payload = self._body.render(values, self._charset)
        headers: dict[str, str] = {}
        data: bytes | None = payload or None
        if self._method == "GET":
            if payload:
                url += ("&" if "?" in url else "?") + payload.decode("ascii")
            data = None
        elif data is not None:
            kind = "application/json" if self._content == "json" else _FORM
            headers["Content-Type"] = f"{kind}; charset={self._charset}"
        headers.update(self._headers)
        if self._idempotency_header:
            headers[self._idempotency_header] = notification.key
        if self._signing is not None:
            headers.update(self._signing.headers(payload, self._clock()))
        return _Request(self._method, url, headers, data)

    def _judge(self, response: requests.Response) -> Outcome:
        status = response.status_code
        declared = "charset" in response.headers.get("Content-Type", "").lower()
        text = excerpt(response.content, response.encoding if declared else None)
        delivery = classify_status(status)
        if delivery is Delivery.RETRY:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            return Outcome.retry(f"HTTP {status} {response.reason}: {text}", wait)
        if delivery is Delivery.PERMANENT:
            if 300 <= status < 400:
                where = response.headers.get("Location", "?")
                return Outcome.permanent(
                    f"HTTP {status}: the gateway redirects to {where}; put that URL in the channel"
                )
            return Outcome.permanent(f"HTTP {status} {response.reason}: {text}")
        if self._success is None:
            return Outcome.sent(f"HTTP {status}")
        try:
            answer = json.loads(response.content)
        except ValueError:
            return Outcome.permanent(
                f"HTTP {status} but the answer is not JSON, so {self._success.field!r} "
                f"cannot confirm delivery: {text}"
            )
        failed = self._success.judge(answer, text)
        return failed or Outcome.sent(f"HTTP {status}, {self._success.field} confirmed")

    def _log(self, notification: Notification, host: str, outcome: Outcome) -> None:
        sent = f"{host} accepted {notification.key} ({outcome.detail})"
        log_outcome(log, self._name, notification, outcome, sent)


_FORM = "application/x-www-form-urlencoded"


def _reason(exc: requests.RequestException) -> str:
    """The innermost cause (``[Errno 111] Connection refused``): it names the real problem and,
    unlike the outer messages, does not repeat the URL with its query, which may hold a key."""
    cause: BaseException = exc
    seen = {id(cause)}
    while (inner := cause.__cause__ or cause.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        cause = inner
    if cause is exc:
        return type(exc).__name__
    return str(cause) or type(cause).__name__
