"""Short, signed, expiring acknowledgement links.

Every notification carries a link such as
``https://ew.example.cn/a/AAAAKgGbZ5Hs0fXkP8n1Wq3v.hx-ops-zhou`` that opens the alarm for
one person. It must be short (an SMS segment holds 70 Chinese characters), must not be
guessable or editable (whoever holds it can acknowledge as that person), and must stop
working after a while (a forwarded SMS from last month acknowledges nothing). So the token
carries only what is needed — the alarm's store number, the person and an expiry in
minutes — and a truncated HMAC-SHA256 over them with a server secret.

Verifying a token never acknowledges anything: the web page shows the alarm on GET and only
a POST acknowledges (chat apps fetch links to build previews).

Token layout (before URL-safe base64 without padding):
``alarm ref (4 bytes, big-endian) | expiry minute since the epoch (4 bytes) | MAC (10 bytes)``
followed in clear by ``.`` and the person id (ASCII token, see :mod:`earlywarn.model`). The
MAC covers the version byte, both numbers and the person id. 80 bits of MAC are far beyond
what an attacker can try online against a rate-limited endpoint before the link expires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass

_VERSION = b"\x01"
_MAC_BYTES = 10
_HEAD = struct.Struct(">II")
_PERSON = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_MINUTE_MS = 60_000
MIN_SECRET_BYTES = 16
"""Shorter secrets are refused: a guessable secret makes every link forgeable."""


class LinkError(ValueError):
    """Why a token was refused, in plain words (shown to the person who opened it)."""


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a valid token says: this person may act on this alarm until ``expires_ms``."""

    alarm_ref: int
    person: str
    expires_ms: int


class LinkSigner:
    """Makes and checks acknowledgement links with one server secret.

    ``base_url`` is where the acknowledgement web server is reachable from the phones of the
    people called (``https://ew.example.cn``); ``ttl_ms`` how long a link stays valid after
    it was sent (default 24 h: long enough for a night and the morning after).
    """

    def __init__(self, secret: bytes, base_url: str, ttl_ms: int = 24 * 3_600_000) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"the link secret must be at least {MIN_SECRET_BYTES} bytes long "
                f"(got {len(secret)}); generate one with `openssl rand -hex 32`"
            )
        if ttl_ms < _MINUTE_MS:
            raise ValueError("acknowledgement links must stay valid for at least a minute")
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self.ttl_ms = ttl_ms

    def token(self, alarm_ref: int, person: str, now_ms: int) -> str:
        """A token for ``person`` on the alarm numbered ``alarm_ref``, valid from now."""
        if not 0 <= alarm_ref < 2**32:
            raise ValueError(f"alarm reference {alarm_ref} does not fit a link")
        if not _PERSON.match(person):
            raise ValueError(f"person id {person!r} cannot be put in a link")
        expiry = -(-(now_ms + self.ttl_ms) // _MINUTE_MS)  # rounded up to the minute
        head = _HEAD.pack(alarm_ref, expiry)
        mac = self._mac(head, person)
        packed = base64.urlsafe_b64encode(head + mac).rstrip(b"=").decode("ascii")
        return f"{packed}.{person}"

    def link(self, alarm_ref: int, person: str, now_ms: int) -> str:
        """The full URL to put in a message."""
        return f"{self.base_url}/a/{self.token(alarm_ref, person, now_ms)}"

    def verify(self, token: str, now_ms: int) -> LinkClaim:
        """The claim of a genuine, unexpired token; :class:`LinkError` otherwise."""
        packed, sep, person = token.partition(".")
        if not sep or not _PERSON.match(person):
            raise LinkError("this link is incomplete; open the whole link from the message")
        try:
            raw = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4))
        except (binascii.Error, ValueError):
            raise LinkError("this link is damaged; open the whole link from the message") from None
        if len(raw) != _HEAD.size + _MAC_BYTES:
            raise LinkError("this link is damaged; open the whole link from the message")
        head, mac = raw[: _HEAD.size], raw[_HEAD.size :]
        if not hmac.compare_digest(mac, self._mac(head, person)):
            raise LinkError("this link is not genuine (it was altered or not made by us)")
        alarm_ref, expiry = _HEAD.unpack(head)
        expires_ms = expiry * _MINUTE_MS
        if now_ms >= expires_ms:
            raise LinkError("this link has expired; use the latest message or the duty room")
        return LinkClaim(alarm_ref, person, expires_ms)

    def _mac(self, head: bytes, person: str) -> bytes:
        digest = hmac.new(self._secret, _VERSION + head + person.encode("ascii"), hashlib.sha256)
        return digest.digest()[:_MAC_BYTES]
