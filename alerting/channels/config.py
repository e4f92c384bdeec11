"""Typed channel settings, and building the channels from them.

Settings are plain frozen values that check themselves when made, so a mistake is found when
the configuration is loaded, not at 3 a.m. when the first red alarm tries to call someone.
Every problem is a :class:`FieldProblem` naming the channel and the field *as written in
channels.yaml* (``from``, ``timeout``, ``sign.secret``, ``headers.X-Api-Key``), which is what
lets the file loader (``earlywarn.channels_file``) point at the right line.

Secrets stay out of files: any text field may hold ``${ENV_VAR}`` references, kept as written
in the settings and resolved by :func:`build_channels` (``$${`` stands for a literal ``${``).
A variable that is not set is a :class:`FieldProblem` naming it; every missing variable of
every channel is reported at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from alerting.channels.apprise_im import AppriseChannel, check_url_template
from alerting.channels.base import Channel
from alerting.channels.console import ConsoleChannel
from alerting.channels.http_provider import (
    CONTENTS,
    DEFAULT_IDEMPOTENCY_HEADER,
    METHODS,
    Content,
    HttpProviderChannel,
    Signing,
    SuccessCheck,
    check_charset,
    check_url,
    compile_body,
)
from alerting.channels.smtp_email import SECURITIES, Security, SmtpChannel, check_sender

CONSOLE = "console"
"""The channel that always exists."""

_ENV = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One thing wrong with one channel's settings; ``field`` is the YAML key ('' for all)."""

    channel: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"channel {self.channel!r}: {where}{self.message}"


class ChannelConfigError(ValueError):
    """Channel settings that cannot work; ``problems`` lists every one found."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def env_references(text: str) -> list[str]:
    """The names of the ``${VAR}`` references in ``text``, in order."""
    return [m.group(1) for m in _ENV.finditer(text) if m.group(1)]


def resolve_env(text: str, lookup: Callable[[str], str | None]) -> tuple[str, list[str]]:
    """``text`` with each ``${VAR}`` replaced by ``lookup(VAR)``, and the names not found."""
    missing: list[str] = []

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "${"
        value = lookup(name)
        if value is None:
            missing.append(name)
            return ""
        return value

    return _ENV.sub(one, text), missing


def _masked(text: str) -> str:
    """``text`` with every reference replaced by a harmless stand-in, for checking its shape."""
    return resolve_env(text, lambda _name: "x")[0]


class _Checker:
    """Collects the problems of one settings value; raises them all at the end."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.problems: list[FieldProblem] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(FieldProblem(self.channel, key, message))

    def attempt(self, key: str, check: Callable[[], object]) -> None:
        """Run ``check``; its ``ValueError`` becomes a problem of ``key``."""
        try:
            check()
        except ValueError as exc:
            self.add(key, str(exc))

    def positive(self, key: str, value: float) -> None:
        if not value > 0:
            self.add(key, f"must be a positive duration, got {value!r}")

    def done(self) -> None:
        if not self.channel.strip():
            self.problems.insert(0, FieldProblem(self.channel, "", "a channel needs a name"))
        if self.problems:
            raise ChannelConfigError(self.problems)


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """``type: console``: one line per notification on standard output."""

    name: str = CONSOLE

    def __post_init__(self) -> None:
        _Checker(self.name).done()


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """``type: smtp``. ``sender`` is written ``from``; ``port`` defaults by ``security``
    (25 none, 587 starttls, 465 tls)."""

    name: str
    host: str
    sender: str
    port: int | None = None
    security: Security = "starttls"
    username: str | None = None
    password: str | None = None
    timeout_s: float = 20.0

    def __post_init__(self) -> None:
        check = _Checker(self.name)
        if not self.host.strip():
            check.add("host", "must name the SMTP server")
        if self.security not in SECURITIES:
            check.add("security", f"unknown security {self.security!r}: use none, starttls or tls")
        if self.port is not None and not 0 < self.port < 65536:
            check.add("port", f"must be between 1 and 65535, got {self.port}")
        if (self.username is None) != (self.password is None):
            missing = "password" if self.password is None else "username"
            check.add(missing, "give both username and password, or neither")
        check.attempt("from", lambda: check_sender(_masked(self.sender)))
        check.positive("timeout", self.timeout_s)
        check.done()


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """``type: http``: an SMS or voice gateway (see :mod:`alerting.channels.http_provider`)."""

    name: str
    url: str
    body: str = ""
    method: str = "POST"
    content: Content = "json"
    charset: str = "utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)
    sign: Signing | None = None
    success: SuccessCheck | None = None
    timeout_s: float = 10.0
    idempotency_header: str | None = DEFAULT_IDEMPOTENCY_HEADER

    def __post_init__(self) -> None:
        check = _Checker(self.name)
        check.attempt("url", lambda: check_url(_masked(self.url)))
        if self.method.upper() not in METHODS:
            check.add("method", f"unknown method {self.method!r}: use {', '.join(METHODS)}")
        if self.content not in CONTENTS:
            check.add("content", f"unknown content {self.content!r}: use json or form")
        else:
            check.attempt("body", lambda: compile_body(_masked(self.body), self.content))
            if self.method.upper() == "GET" and self.content == "json" and self.body.strip():
                check.add("content", "a GET request sends its body as a query: use form")
        check.attempt("charset", lambda: check_charset(self.charset))
        for name, value in self.headers.items():
            if not _HEADER_NAME.match(name):
                check.add(f"headers.{name}", f"{name!r} is not a valid HTTP header name")
            if "\n" in value or "\r" in value:
                check.add(f"headers.{name}", "a header value must be one line")
            elif not value.isascii():
                check.add(f"headers.{name}", "a header value must be ASCII; put text in the body")
        if self.idempotency_header is not None and not _HEADER_NAME.match(self.idempotency_header):
            check.add("idempotency_header", f"{self.idempotency_header!r} is not a header name")
        check.positive("timeout", self.timeout_s)
        check.done()


@dataclass(frozen=True, slots=True)
class AppriseSettings:
    """``type: apprise``: an Apprise URL template with ``{address}``."""

    name: str
    url: str
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        check = _Checker(self.name)
        check.attempt("url", lambda: check_url_template(_masked(self.url)))
        check.positive("timeout", self.timeout_s)
        check.done()


ChannelSettings = ConsoleSettings | SmtpSettings | HttpSettings | AppriseSettings
"""The settings of any one channel."""


def build_channels(
    settings: Iterable[ChannelSettings], environ: Mapping[str, str] | None = None
) -> dict[str, Channel]:
    """The channels by name, ``${VAR}`` references resolved from ``environ`` (``os.environ``).

    The console channel is always there, even when ``settings`` do not mention it. Raises
    :class:`ChannelConfigError` listing every missing variable and duplicate name.
    """
    env = os.environ if environ is None else environ
    channels: dict[str, Channel] = {}
    problems: list[FieldProblem] = []
    seen: set[str] = set()
    for item in settings:
        if item.name in seen:
            problems.append(FieldProblem(item.name, "", "two channels have this name"))
            continue
        seen.add(item.name)
        try:
            resolved = _resolved(item, env)
            channels[item.name] = _make(resolved)
        except ChannelConfigError as exc:
            problems.extend(exc.problems)
        except ValueError as exc:  # a resolved value broke a template or an address
            problems.append(FieldProblem(item.name, "", f"after resolving variables: {exc}"))
    if problems:
        raise ChannelConfigError(problems)
    channels.setdefault(CONSOLE, ConsoleChannel(CONSOLE))
    return channels


def _make(item: ChannelSettings) -> Channel:
    if isinstance(item, ConsoleSettings):
        return ConsoleChannel(item.name)
    if isinstance(item, SmtpSettings):
        return SmtpChannel(
            item.name,
            host=item.host,
            sender=item.sender,
            port=item.port,
            security=item.security,
            username=item.username,
            password=item.password,
            timeout_s=item.timeout_s,
        )
    if isinstance(item, HttpSettings):
        return HttpProviderChannel(
            item.name,
            url=item.url,
            body=item.body,
            method=item.method,
            content=item.content,
            charset=item.charset,
            headers=item.headers,
            signing=item.sign,
            success=item.success,
            timeout_s=item.timeout_s,
            idempotency_header=item.idempotency_header,
        )
    return AppriseChannel(item.name, item.url, timeout_s=item.timeout_s)


def _resolved(item: ChannelSettings, env: Mapping[str, str]) -> ChannelSettings:
    """``item`` with every ``${VAR}`` replaced; every missing variable raised at once."""
    problems: list[FieldProblem] = []

    def text(value: str, key: str) -> str:
        out, missing = resolve_env(value, env.get)
        problems.extend(
            FieldProblem(item.name, key, f"the environment variable {name} is not set")
            for name in missing
        )
        return out

    def maybe(value: str | None, key: str) -> str | None:
        return None if value is None else text(value, key)

    changes: dict[str, Any] = {}
    secret: str | None = None
    if isinstance(item, SmtpSettings):
        changes = {
            "host": text(item.host, "host"),
            "sender": text(item.sender, "from"),
            "username": maybe(item.username, "username"),
            "password": maybe(item.password, "password"),
        }
    elif isinstance(item, HttpSettings):
        changes = {
            "url": text(item.url, "url"),
            "body": text(item.body, "body"),
            "headers": {k: text(v, f"headers.{k}") for k, v in item.headers.items()},
        }
        secret = None if item.sign is None else text(item.sign.secret, "sign.secret")
    elif isinstance(item, AppriseSettings):
        changes = {"url": text(item.url, "url")}
    # Missing variables first: the settings made with blanks in their place would only add
    # confusing follow-on problems ("the URL must name a host").
    if problems:
        raise ChannelConfigError(problems)
    if isinstance(item, HttpSettings) and item.sign is not None and secret is not None:
        changes["sign"] = replace(item.sign, secret=secret)
    return replace(item, **changes)
