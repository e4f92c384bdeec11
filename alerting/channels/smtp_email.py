"""E-mail through an SMTP server with :mod:`smtplib`.

One connection per notification: alarm mail is rare, and a connection kept open across hours
would mostly be found dead by the time the next alarm needs it. Subject and body are UTF-8
(``email.message.EmailMessage`` encodes them as RFC 2047 words and a UTF-8 MIME part), and the
``From`` display name may be Chinese (``安县应急预警 <alarm@example.cn>``).

Classification follows the SMTP reply codes, whatever command they answer: a 4xx reply
(greylisting ``451``, mailbox busy, ``421`` closing) is temporary → RETRY; a 5xx reply
(``550`` no such mailbox, ``554`` rejected) is final → PERMANENT. A refused recipient is
therefore PERMANENT when refused with 5xx and RETRY when deferred with 4xx. A refused
connection, a timeout, a dropped connection or a DNS failure → RETRY. An address that is not
an e-mail address, rejected credentials, a server without the STARTTLS or AUTH the settings
ask for, or a TLS certificate that does not verify → PERMANENT, with a plain message saying
what to fix: retrying cannot help until someone changes the configuration.
"""

from __future__ import annotations

import email.errors
import logging
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Literal

from alerting.channels.base import log_outcome
from alerting.notifications import Notification, Outcome
from earlywarn.model import Level

log = logging.getLogger(__name__)

Security = Literal["none", "starttls", "tls"]
SECURITIES: tuple[Security, ...] = ("none", "starttls", "tls")
DEFAULT_PORTS: dict[str, int] = {"none": 25, "starttls": 587, "tls": 465}


def check_sender(sender: str) -> str:
    """The bare address of ``"Name <addr>"`` or ``addr``; ``ValueError`` if there is none."""
    _name, addr = parseaddr(sender)
    if "@" not in addr or not _valid_address(addr):
        msg = f"the sender {sender!r} is not an e-mail address such as 预警中心 <alarm@example.cn>"
        raise ValueError(msg)
    return addr


def _valid_address(addr: str) -> bool:
    try:
        Address(addr_spec=addr)
    except (ValueError, email.errors.MessageError):
        return False
    return True


class SmtpChannel:
    """Sends each notification as one e-mail to the contact's address."""

    def __init__(
        self,
        name: str = "email",
        *,
        host: str,
        sender: str,
        port: int | None = None,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 20.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in SECURITIES:
            msg = f"unknown security {security!r}: use none, starttls or tls"
            raise ValueError(msg)
        if port is not None and not 0 < port < 65536:
            msg = f"the port must be between 1 and 65535, got {port}"
            raise ValueError(msg)
        if not timeout_s > 0:
            msg = f"the timeout must be positive, got {timeout_s!r}"
            raise ValueError(msg)
        if (username is None) != (password is None):
            msg = "give both username and password, or neither"
            raise ValueError(msg)
        self._name = name
        self._host = host
        self._port = port or DEFAULT_PORTS[security]
        self._security = security
        self._username = username
        self._password = password
        self._sender = sender
        self._sender_addr = check_sender(sender)
        self._timeout_s = timeout_s
        self._context = ssl_context or ssl.create_default_context()

    @property
    def name(self) -> str:
        """The channel name contacts use (``email``)."""
        return self._name

    def send(self, notification: Notification) -> Outcome:
        """Connect, authenticate if configured, send one message, classify any failure."""
        address = notification.address.strip()
        try:
            message = self.compose(notification)
        except (ValueError, email.errors.MessageError) as exc:
            outcome = Outcome.permanent(f"{address!r} is not a usable e-mail address ({exc})")
        else:
            outcome = self._deliver(message, address)
        sent = f"{self._host} accepted {notification.key}"
        log_outcome(log, self._name, notification, outcome, sent)
        return outcome

    def compose(self, notification: Notification) -> EmailMessage:
        """The message for one notification; ``ValueError`` when the address is not one."""
        n = notification
        message = EmailMessage()
        message["Subject"] = " ".join(n.subject.split())
        message["From"] = self._sender
        message["To"] = Address(display_name=n.person_name, addr_spec=n.address.strip())
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain=self._sender_addr.rpartition("@")[2])
        message["X-Earlywarn-Alarm"] = n.alarm_id
        message["X-Earlywarn-Key"] = n.key
        if n.drill:
            message["X-Earlywarn-Drill"] = "yes"
        if n.level is not None and n.level >= Level.ORANGE:
            message["Importance"] = "high"
            message["X-Priority"] = "1"
        message.set_content(n.body, charset="utf-8")
        return message

    def _deliver(self, message: EmailMessage, address: str) -> Outcome:
        where = f"{self._host}:{self._port}"
        try:
            client = self._connect()
            try:
                client.send_message(message, from_addr=self._sender_addr, to_addrs=[address])
            finally:
                _quit(client)
        except smtplib.SMTPAuthenticationError as exc:
            reply = _reply(exc.smtp_code, exc.smtp_error)
            return Outcome.permanent(
                f"{where} rejected the user name or password ({reply}): "
                f"the credentials of channel {self._name!r} are wrong"
            )
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (-1, b""))
            return _by_code(code, f"{where} refused the recipient {address}: {_reply(code, text)}")
        except smtplib.SMTPSenderRefused as exc:
            return _by_code(
                exc.smtp_code,
                f"{where} refused the sender {self._sender_addr}: "
                f"{_reply(exc.smtp_code, exc.smtp_error)}",
            )
        except smtplib.SMTPResponseException as exc:
            return _by_code(
                exc.smtp_code, f"{where} answered {_reply(exc.smtp_code, exc.smtp_error)}"
            )
        except smtplib.SMTPNotSupportedError as exc:
            return Outcome.permanent(
                f"{where} does not support what channel {self._name!r} asks for ({exc}); "
                "check security (none, starttls, tls) and whether the server wants a login"
            )
        except smtplib.SMTPServerDisconnected as exc:
            return Outcome.retry(f"{where} closed the connection: {exc}")
        except ssl.SSLCertVerificationError as exc:
            return Outcome.permanent(f"the TLS certificate of {where} does not verify: {exc}")
        except UnicodeError as exc:  # smtplib sends AUTH credentials as ASCII only
            return Outcome.permanent(
                f"channel {self._name!r} has text smtplib cannot send as ASCII: {exc}"
            )
        except TimeoutError:
            return Outcome.retry(f"{where} did not answer within {self._timeout_s:g} s")
        except OSError as exc:  # refused, unreachable, DNS, TLS handshake, other SMTP errors
            return Outcome.retry(f"cannot talk to {where}: {exc.strerror or exc}")
        return Outcome.sent(f"accepted by {where}")

    def _connect(self) -> smtplib.SMTP:
        client: smtplib.SMTP
        if self._security == "tls":
            client = smtplib.SMTP_SSL(
                self._host, self._port, timeout=self._timeout_s, context=self._context
            )
        else:
            client = smtplib.SMTP(self._host, self._port, timeout=self._timeout_s)
        try:
            if self._security == "starttls":
                client.ehlo()
                client.starttls(context=self._context)
                client.ehlo()
            if self._username is not None and self._password is not None:
                client.login(self._username, self._password)
        except BaseException:
            client.close()
            raise
        return client


def _quit(client: smtplib.SMTP) -> None:
    """Say goodbye; the message was accepted or not already, so a failing QUIT changes nothing."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def _by_code(code: int, detail: str) -> Outcome:
    if 500 <= code < 600:
        return Outcome.permanent(detail)
    return Outcome.retry(detail)


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(words.split())}".strip()
