"""``channels.yaml``: how notifications leave earlywarn (SMTP, an SMS/voice gateway, IM bots).

The file is optional and lives in the registry directory, next to the people whose
``contacts`` name its channels. Without it only the ``console`` channel exists. Every problem is
reported as ``file:line: message``, all of them in one pass, like the registry's::

    channels:
      email:
        type: smtp
        host: smtp.example.cn
        port: 465                       # default by security: 25 none, 587 starttls, 465 tls
        security: tls                   # none | starttls | tls (default starttls)
        username: alarm@example.cn      # optional; with password
        password: ${EARLYWARN_SMTP_PASSWORD}
        from: "安县应急预警 <alarm@example.cn>"
        timeout: 20s                    # default 20s
      sms:
        type: http
        url: https://sms.example.cn/api/send
        method: POST                    # POST | PUT | PATCH | GET (default POST)
        content: json                   # json | form (default json)
        charset: utf-8                  # body encoding (gbk for some old gateways)
        headers: {X-Api-Key: "${EARLYWARN_SMS_KEY}"}
        body: '{"phone": "{address}", "text": "{subject}"}'
        sign: {secret: "${EARLYWARN_SMS_SECRET}", header: X-Signature,
               timestamp_header: X-Timestamp, algorithm: sha256, encoding: hex,
               timestamp_unit: s}
        success: {field: code, equals: "OK", retryable: ["BUSY"]}
        idempotency_header: Idempotency-Key   # false: send none
        timeout: 10s                    # default 10s
      dingtalk:
        type: apprise
        url: "dingtalk://${EARLYWARN_DINGTALK_TOKEN}/{address}"
        timeout: 10s
      webhook: {type: apprise, url: "json://hooks.example.cn/earlywarn"}

``${VAR}`` in any text is read from the environment when the channels are built, so secrets
stay out of the file; a variable that is not set is reported at its line. ``{address}``,
``{subject}``… are the notification's fields (see ``docs/channels.md``). For ``content:
json`` the body may also be written as a YAML mapping. Durations take ``30s``, ``5min``…

:func:`load_channels` is what the service calls; :func:`read_channel_settings` only reads and
checks the file (no environment), for tools that show the configuration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from alerting.channels.base import Channel
from alerting.channels.config import (
    CONSOLE,
    AppriseSettings,
    ChannelConfigError,
    ChannelSettings,
    ConsoleSettings,
    FieldProblem,
    HttpSettings,
    SmtpSettings,
    build_channels,
)
from alerting.channels.console import ConsoleChannel
from alerting.channels.http_provider import (
    ALGORITHMS,
    CONTENTS,
    DEFAULT_IDEMPOTENCY_HEADER,
    ENCODINGS,
    TIMESTAMP_UNITS,
    Content,
    Signing,
    SuccessCheck,
)
from alerting.channels.smtp_email import SECURITIES, Security
from earlywarn.durations import parse_seconds
from earlywarn.schema import ID_PATTERN, FileChecker
from earlywarn.yamlsource import Problem, YList, YMap, load_file

CHANNELS_FILE = "channels.yaml"
"""The file's name in the registry directory (not an enterprise file)."""

TYPES = ("console", "smtp", "http", "apprise")
KEYS: dict[str, tuple[str, ...]] = {
    "console": ("type",),
    "smtp": ("type", "host", "port", "security", "username", "password", "from", "timeout"),
    "http": (
        "type",
        "url",
        "method",
        "content",
        "charset",
        "headers",
        "body",
        "sign",
        "success",
        "idempotency_header",
        "timeout",
    ),
    "apprise": ("type", "url", "timeout"),
}
_T = TypeVar("_T")
# Typed lookups: a value found here is known to be one of the settings' literal choices.
_SECURITIES: dict[str, Security] = {s: s for s in SECURITIES}
_CONTENTS: dict[str, Content] = {c: c for c in CONTENTS}
SIGN_KEYS = ("secret", "header", "timestamp_header", "algorithm", "encoding", "timestamp_unit")
SUCCESS_KEYS = ("field", "equals", "retryable")


class ChannelsError(Exception):
    """``channels.yaml`` has problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def load_channels(
    registry_dir: Path | str, environ: Mapping[str, str] | None = None
) -> dict[str, Channel]:
    """The channels of ``registry_dir/channels.yaml`` by name (console only when absent).

    ``${VAR}`` references are resolved from ``environ`` (default ``os.environ``). Raises
    :class:`ChannelsError` listing every problem of the file and every missing variable.
    """
    path = Path(registry_dir) / CHANNELS_FILE
    if not path.exists():
        return {CONSOLE: ConsoleChannel(CONSOLE)}
    problems: list[Problem] = []
    read = _read(path, problems)
    # Check the variables of the channels that were read even when others have problems,
    # so one run reports everything.
    try:
        channels = build_channels([entry.settings for entry in read], environ)
    except ChannelConfigError as exc:
        lines = {entry.settings.name: entry for entry in read}
        problems.extend(_problem(str(path), lines, p) for p in exc.problems)
        channels = {}
    if problems:
        raise ChannelsError(problems)
    return channels


def read_channel_settings(path: Path | str) -> list[ChannelSettings]:
    """The checked settings of one channels file, ``${VAR}`` unresolved; raises ChannelsError."""
    problems: list[Problem] = []
    read = _read(Path(path), problems)
    if problems:
        raise ChannelsError(problems)
    return [entry.settings for entry in read]


@dataclass(frozen=True, slots=True)
class _Read:
    """One channel's settings and where each of its fields was written."""

    settings: ChannelSettings
    line: int
    lines: dict[str, int] = field(default_factory=dict)


def _problem(file: str, read: dict[str, _Read], p: FieldProblem) -> Problem:
    entry = read.get(p.channel)
    line = 0 if entry is None else entry.lines.get(p.field, entry.line)
    return Problem(file, line, str(p))


def _read(path: Path, problems: list[Problem]) -> list[_Read]:
    check = FileChecker(str(path), problems)
    before = len(problems)
    data = load_file(path, problems)
    if data is None:
        if len(problems) == before:
            check.error(1, "the channels file is empty; define channels or delete the file")
        _hint_unquoted_references(path, problems, before)
        return []
    top = check.as_map(data, 1, "the channels file")
    if top is None:
        return []
    check.known_keys(top, ("channels",), "the channels file")
    cm = check.as_map(top.get("channels"), top.line_of("channels"), "'channels'")
    if cm is None:
        return []
    out: list[_Read] = []
    for name, raw in cm.items():
        entry = _Channel(check, name, cm.line_of(name)).read(raw)
        if entry is not None:
            out.append(entry)
    return out


def _hint_unquoted_references(path: Path, problems: list[Problem], start: int) -> None:
    """Explain the likeliest syntax error here: ``${VAR}`` unquoted inside ``{…}``, where YAML
    reads the braces as a nested mapping ("expected ',' or '}', but got '{'")."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return
    for i in range(start, len(problems)):
        p = problems[i]
        if "syntax" in p.message and 0 < p.line <= len(lines) and "${" in lines[p.line - 1]:
            hint = 'inside { } write references quoted: password: "${EARLYWARN_SMTP_PASSWORD}"'
            problems[i] = Problem(p.file, p.line, f"{p.message} ({hint})")


class _Channel:
    """Reads one channel's mapping; records each field's line for later problems."""

    def __init__(self, check: FileChecker, name: str, line: int) -> None:
        self.check = check
        self.name = name
        self.line = line
        self.what = f"channel {name!r}"
        self.lines: dict[str, int] = {}
        self.ok = True

    def error(self, line: int, message: str) -> None:
        self.check.error(line, f"{self.what}: {message}")
        self.ok = False

    def read(self, raw: Any) -> _Read | None:
        if not ID_PATTERN.match(self.name):
            self.error(self.line, "a channel name is ASCII letters, digits, '_', '.' or '-'")
        m = self.check.as_map(raw, self.line, self.what)
        if m is None:
            return None
        kind = m.get("type")
        if kind not in TYPES:
            got = "no type" if kind is None else f"unknown type {kind!r}"
            self.error(m.line_of("type"), f"{got}; expected one of {', '.join(TYPES)}")
            return None
        if self.name == CONSOLE and kind != "console":
            self.error(self.line, "the name 'console' is kept for the console channel")
        self.check.known_keys(m, KEYS[kind], self.what)
        self.ok = self.ok and all(key in KEYS[kind] for key in m)
        self.lines = {key: m.line_of(key) for key in m}
        settings = self._settings(kind, m)
        if settings is None or not self.ok:
            return None
        return _Read(settings, m.line, self.lines)

    def _settings(self, kind: str, m: YMap) -> ChannelSettings | None:
        try:
            if kind == "console":
                return ConsoleSettings(self.name)
            if kind == "smtp":
                return self._smtp(m)
            if kind == "http":
                return self._http(m)
            return self._apprise(m)
        except ChannelConfigError as exc:
            for p in exc.problems:
                where = f"{p.field}: " if p.field else ""
                self.error(self.lines.get(p.field, m.line), f"{where}{p.message}")
            return None

    def _smtp(self, m: YMap) -> SmtpSettings | None:
        host = self.text(m, "host")
        sender = self.text(m, "from")
        port = self.integer(m, "port")
        security = self.choice(m, "security", _SECURITIES, "starttls")
        username = self.text(m, "username", required=False)
        password = self.text(m, "password", required=False)
        timeout = self.seconds(m, "timeout", 20.0)
        if host is None or sender is None or security is None:
            return None
        return SmtpSettings(
            self.name,
            host=host,
            sender=sender,
            port=port,
            security=security,
            username=username,
            password=password,
            timeout_s=timeout,
        )

    def _http(self, m: YMap) -> HttpSettings | None:
        url = self.text(m, "url")
        method = self.text(m, "method", required=False) or "POST"
        content = self.choice(m, "content", _CONTENTS, "json")
        charset = self.text(m, "charset", required=False) or "utf-8"
        body = self.body(m, content or "json")
        headers = self.headers(m)
        sign = self.sign(m)
        success = self.success(m)
        idempotency = self.idempotency(m)
        timeout = self.seconds(m, "timeout", 10.0)
        if url is None or content is None:
            return None
        return HttpSettings(
            self.name,
            url=url,
            body=body or "",
            method=method,
            content=content,
            charset=charset,
            headers=headers,
            sign=sign,
            success=success,
            timeout_s=timeout,
            idempotency_header=idempotency,
        )

    def _apprise(self, m: YMap) -> AppriseSettings | None:
        url = self.text(m, "url")
        timeout = self.seconds(m, "timeout", 10.0)
        if url is None:
            return None
        return AppriseSettings(self.name, url, timeout_s=timeout)

    # Field readers: each records a problem (and returns None) instead of raising.

    def text(self, m: YMap, key: str, *, required: bool = True, prefix: str = "") -> str | None:
        """A text field. Numbers are refused rather than converted: YAML reads ``0123`` as 83,
        which would silently change a password or a key."""
        value = m.get(key)
        if value is None:
            if required:
                self.error(m.line, f"missing the required field '{prefix}{key}'")
            return None
        if not isinstance(value, str):
            self.error(m.line_of(key), f"'{prefix}{key}' must be quoted text, got {value!r}")
            return None
        if not value.strip():
            self.error(m.line_of(key), f"'{prefix}{key}' must not be empty")
            return None
        return value.strip()

    def choice(self, m: YMap, key: str, allowed: dict[str, _T], default: _T) -> _T | None:
        """One of ``allowed`` (``default`` when absent)."""
        value = self.text(m, key, required=False)
        if value is None:
            return default if m.get(key) is None else None
        if value not in allowed:
            self.error(m.line_of(key), f"unknown {key} {value!r}: use {', '.join(allowed)}")
            return None
        return allowed[value]

    def integer(self, m: YMap, key: str) -> int | None:
        value = m.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(m.line_of(key), f"{key!r} must be a whole number, got {value!r}")
            return None
        return value

    def seconds(self, m: YMap, key: str, default: float) -> float:
        """A positive duration; ``default`` when absent or wrong (the problem is recorded and
        the channel dropped, but its other fields are still checked)."""
        if m.get(key) is None:
            return default
        try:
            value = parse_seconds(m[key])
        except ValueError as exc:
            self.error(m.line_of(key), f"{key!r}: {exc}")
            return default
        if value <= 0:
            self.error(m.line_of(key), f"{key!r} must be longer than zero")
            return default
        return value

    def body(self, m: YMap, content: str) -> str | None:
        value = m.get("body")
        if isinstance(value, YMap | YList):
            if content != "json":
                self.error(m.line_of("body"), "a body written as YAML needs content: json")
                return None
            return json.dumps(value, ensure_ascii=False)
        return self.text(m, "body", required=False)

    def headers(self, m: YMap) -> dict[str, str]:
        if m.get("headers") is None:
            return {}
        hm = self.check.as_map(m["headers"], m.line_of("headers"), f"{self.what}: 'headers'")
        if hm is None:
            self.ok = False
            return {}
        out: dict[str, str] = {}
        for name in hm:
            self.lines[f"headers.{name}"] = hm.line_of(name)
            value = self.text(hm, name, prefix="headers.")
            if value is not None:
                out[name] = value
        return out

    def sign(self, m: YMap) -> Signing | None:
        if m.get("sign") is None:
            return None
        sm = self.check.as_map(m["sign"], m.line_of("sign"), f"{self.what}: 'sign'")
        if sm is None:
            self.ok = False
            return None
        self.known(sm, SIGN_KEYS, "'sign'")
        for key in sm:
            self.lines[f"sign.{key}"] = sm.line_of(key)
        secret = self.text(sm, "secret", prefix="sign.")
        header = self.text(sm, "header", required=False, prefix="sign.")
        stamp = self.text(sm, "timestamp_header", required=False, prefix="sign.")
        choices = {
            "algorithm": ALGORITHMS,
            "encoding": ENCODINGS,
            "timestamp_unit": TIMESTAMP_UNITS,
        }
        chosen: dict[str, str] = {}
        for key, allowed in choices.items():
            value = self.text(sm, key, required=False, prefix="sign.")
            if value is not None and value not in allowed:
                self.error(sm.line_of(key), f"sign {key} {value!r}: use {' or '.join(allowed)}")
            elif value is not None:
                chosen[key] = value
        if secret is None or len(chosen) < sum(sm.get(k) is not None for k in choices):
            return None
        if header is not None:
            chosen["header"] = header
        if stamp is not None:
            chosen["timestamp_header"] = stamp
        return Signing(secret, **chosen)

    def success(self, m: YMap) -> SuccessCheck | None:
        if m.get("success") is None:
            return None
        sm = self.check.as_map(m["success"], m.line_of("success"), f"{self.what}: 'success'")
        if sm is None:
            self.ok = False
            return None
        self.known(sm, SUCCESS_KEYS, "'success'")
        path = self.text(sm, "field", prefix="success.")
        equals = sm.get("equals")
        if not _scalar(equals):
            self.error(
                sm.line_of("equals"), "success needs 'equals': the value that means delivered"
            )
        raw = sm.get("retryable", YList())
        retryable = raw if isinstance(raw, YList) else [raw]
        if not all(_scalar(code) for code in retryable):
            self.error(sm.line_of("retryable"), "success 'retryable' is a list of codes")
        if path is None or not _scalar(equals):
            return None
        try:
            return SuccessCheck(path, equals, tuple(retryable))
        except ValueError as exc:
            self.error(sm.line_of("field"), str(exc))
            return None

    def idempotency(self, m: YMap) -> str | None:
        value = m.get("idempotency_header", DEFAULT_IDEMPOTENCY_HEADER)
        if value is False:
            return None
        if value is None or not isinstance(value, str) or not value.strip():
            self.error(
                m.line_of("idempotency_header"),
                "'idempotency_header' is a header name, or false to send none",
            )
            return None
        return value.strip()

    def known(self, m: YMap, allowed: tuple[str, ...], what: str) -> None:
        for key in m:
            if key not in allowed:
                self.error(
                    m.line_of(key),
                    f"unknown field {key!r} in {what}; expected {', '.join(allowed)}",
                )


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)
