"""A real SMTP server (aiosmtpd) on a free loopback port that records what it accepts.

It speaks real SMTP over a real socket, so the e-mail channel is tested against the same
protocol exchange as a production server. It can be told to refuse recipients or data with a
given reply (``550 …``, ``451 …``) and to require a login, to exercise classification.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.services.mosquitto import free_port


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    def message(self) -> EmailMessage:
        """The message parsed as a mail client would (headers decoded)."""
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    """aiosmtpd hooks; they run on the server's own thread and event loop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_reply is not None:
            return self.data_reply
        data = envelope.original_content or envelope.content
        with self.lock:
            self.received.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), data))
        return "250 Message accepted for delivery"


class SmtpServer:
    """``start``/``stop`` an aiosmtpd Controller on 127.0.0.1; ``users`` turns on AUTH."""

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self._handler = _Handler()
        self._users = users
        kwargs: dict[str, Any] = {}
        if users is not None:
            kwargs = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(self._handler, hostname=self.host, port=self.port, **kwargs)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        users = self._users or {}
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode()
            if users.get(login) == auth_data.password.decode():
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> None:
        """Start the server thread; returns once it answers."""
        self._controller.start()

    def stop(self) -> None:
        """Stop the server thread."""
        self._controller.stop()

    @property
    def received(self) -> list[Received]:
        """Messages accepted so far (the client had its 250 after each was recorded)."""
        with self._handler.lock:
            return list(self._handler.received)

    def refuse_recipients(self, reply: str | None) -> None:
        """Answer every RCPT TO with ``reply`` (``"550 5.1.1 no such user"``); None accepts."""
        self._handler.rcpt_reply = reply

    def refuse_data(self, reply: str | None) -> None:
        """Answer the end of DATA with ``reply`` (``"451 4.3.0 try later"``); None accepts."""
        self._handler.data_reply = reply
