"""Mosquitto's password and ACL files, written by earlywarn, and asking the broker to reload.

Mosquitto 2 reads one ``password_file`` and one ``acl_file``. Onboarding keeps one fragment
of each per enterprise and assembles the two files the broker reads from the fragments and
a hand-kept base (the service accounts), so offboarding an enterprise is deleting its
fragments and assembling again — nothing else in the files is touched. Layout of the
directory (``--mqtt-dir``)::

    base.passwd, base.acl          service accounts (earlywarn, simulator): kept by hand
    enterprises/<id>.passwd        the enterprise's device or gateway accounts (hashes)
    enterprises/<id>.acl           what each of them may publish and read
    enterprises/<id>.json          the accounts, their topics and when they were issued
    passwd, acl                    assembled; what mosquitto.conf names

Passwords are stored only as Mosquitto's ``$7$`` hashes (PBKDF2-SHA512, 12-byte salt), the
format ``mosquitto_passwd`` writes, so the broker verifies them itself and nobody, earlywarn
included, can read a device's secret back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ITERATIONS = 101
"""Mosquitto's own default. The secrets are 192 random bits, so stretching them would add no
protection, while every device connection pays for it: a county's devices reconnecting
together after a broker restart should not cost minutes of CPU."""
SALT_BYTES = 12
HASH_PREFIX = "$7$"
SECRET_BYTES = 24
"""192 bits: base64url gives 32 characters, which fit every device's password field."""

BASE_PASSWD = "base.passwd"  # noqa: S105 - a file name
BASE_ACL = "base.acl"
ENTERPRISES_DIR = "enterprises"
PASSWD = "passwd"  # noqa: S105 - a file name
ACL = "acl"


def new_secret() -> str:
    """A random device secret (URL-safe, no padding): shown once, stored only as a hash."""
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """``$7$<iterations>$<salt>$<hash>`` as Mosquitto 2 writes and checks it."""
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return (
        f"{HASH_PREFIX}{iterations}${base64.b64encode(salt).decode()}"
        f"${base64.b64encode(digest).decode()}"
    )


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (used by tests and ``--check``)."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":  # '', '7', iterations, salt, hash
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


def read_passwd(path: Path) -> dict[str, str]:
    """``user → hash`` of a password file (missing file: empty)."""
    if not path.exists():
        return {}
    entries: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        user, _, hashed = line.partition(":")
        entries[user] = hashed
    return entries


def passwd_text(entries: Iterable[tuple[str, str]]) -> str:
    """Password-file lines ``user:hash``."""
    return "".join(f"{user}:{hashed}\n" for user, hashed in entries)


@dataclass(frozen=True, slots=True)
class AclEntry:
    """One account's rights: topics it may write (publish) and read (subscribe)."""

    user: str
    write: tuple[str, ...]
    read: tuple[str, ...]


def acl_text(header: str, entries: Sequence[AclEntry]) -> str:
    """An ``acl_file`` fragment: ``user`` lines each followed by their ``topic`` lines.

    Everything not granted is refused: Mosquitto denies by default once an ACL file is set.
    """
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for entry in entries:
        lines.append("")
        lines.append(f"user {entry.user}")
        lines.extend(f"topic write {topic}" for topic in entry.write)
        lines.extend(f"topic read {topic}" for topic in entry.read)
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str, group: str | None = None) -> None:
    """Write ``text`` to ``path`` atomically (a reader sees the old or the new file, never
    half of one), never readable by others, even for an instant: mode 0600, or 0640 owned
    by ``group`` (the broker's group, when the broker runs as another user)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o640 if group else 0o600
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if group:
            shutil.chown(tmp, group=group)
        os.chmod(tmp, mode)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


class AuthDir:
    """The broker's authentication directory (see the module docstring)."""

    def __init__(self, root: Path, group: str | None = None) -> None:
        self.root = root
        self.group = group
        """The broker's group: the assembled files are made readable to it (0640)."""

    @property
    def passwd(self) -> Path:
        """The assembled password file the broker reads."""
        return self.root / PASSWD

    @property
    def acl(self) -> Path:
        """The assembled ACL file the broker reads."""
        return self.root / ACL

    def fragment(self, enterprise: str, suffix: str) -> Path:
        """``enterprises/<id>.<suffix>``."""
        return self.root / ENTERPRISES_DIR / f"{enterprise}.{suffix}"

    def enterprises(self) -> list[str]:
        """Ids of the enterprises that have accounts, sorted."""
        folder = self.root / ENTERPRISES_DIR
        return sorted(p.stem for p in folder.glob("*.passwd")) if folder.is_dir() else []

    def write_enterprise(
        self, enterprise: str, hashes: dict[str, str], acl: Sequence[AclEntry], manifest: str
    ) -> None:
        """Replace one enterprise's fragments (and its manifest) and assemble."""
        header = f"enterprise {enterprise}: written by `earlywarn onboard`; do not edit"
        write_private(self.fragment(enterprise, "passwd"), passwd_text(sorted(hashes.items())))
        write_private(self.fragment(enterprise, "acl"), acl_text(header, acl))
        write_private(self.fragment(enterprise, "json"), manifest)
        self.assemble()

    def remove_enterprise(self, enterprise: str) -> bool:
        """Delete one enterprise's fragments and assemble; ``False`` if it had none."""
        found = False
        for suffix in ("passwd", "acl", "json"):
            path = self.fragment(enterprise, suffix)
            if path.exists():
                path.unlink()
                found = True
        self.assemble()
        return found

    def assemble(self) -> None:
        """Write ``passwd`` and ``acl`` from the base files and every enterprise's fragments.

        A user name defined twice would let Mosquitto pick one silently; it cannot happen
        through onboarding (device accounts are ``enterprise/site/device``), and a base
        account of that shape is refused here rather than shadowed.
        """
        users = read_passwd(self.root / BASE_PASSWD)
        acl_parts = []
        base_acl = self.root / BASE_ACL
        if base_acl.exists():
            acl_parts.append(base_acl.read_text(encoding="utf-8"))
        for enterprise in self.enterprises():
            for user, hashed in read_passwd(self.fragment(enterprise, "passwd")).items():
                if user in users:
                    msg = f"MQTT user {user!r} of {enterprise} is already defined"
                    raise ValueError(msg)
                users[user] = hashed
            acl_path = self.fragment(enterprise, "acl")
            if acl_path.exists():
                acl_parts.append(acl_path.read_text(encoding="utf-8"))
        write_private(self.passwd, passwd_text(users.items()), self.group)
        acl = "\n".join(acl_parts) if acl_parts else "# no accounts\n"
        write_private(self.acl, acl, self.group)


class BrokerReloader:
    """Asks Mosquitto to re-read its password and ACL files.

    Mosquitto reloads both on SIGHUP. Give the pid file it writes (``pid_file`` in
    mosquitto.conf), or a command for set-ups where earlywarn cannot signal the broker
    itself (``docker compose kill -s HUP mosquitto``, ``systemctl reload mosquitto``).
    With neither, the operator is told to reload by hand.
    """

    def __init__(self, pid_file: Path | None = None, command: str | None = None) -> None:
        self.pid_file = pid_file
        self.command = command

    @property
    def configured(self) -> bool:
        """Whether there is any way to reload."""
        return self.pid_file is not None or bool(self.command)

    def reload(self) -> str:
        """Reload now; returns what was done, in words. Raises ``OSError`` when the broker
        could not be told (the files are written: a manual reload completes the change)."""
        if self.pid_file is not None:
            try:
                pid = int(self.pid_file.read_text(encoding="ascii").strip())
            except (OSError, ValueError) as exc:
                msg = f"cannot read the broker's pid from {self.pid_file}: {exc}"
                raise OSError(msg) from None
            os.kill(pid, signal.SIGHUP)
            log.info("sent SIGHUP to the MQTT broker (pid %s)", pid)
            return f"sent SIGHUP to the broker (pid {pid})"
        if self.command:
            argv = shlex.split(self.command)
            done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)  # noqa: S603 - the operator's own command
            if done.returncode != 0:
                msg = f"{self.command!r} exited {done.returncode}: {done.stderr.strip()[-500:]}"
                raise OSError(msg)
            log.info("ran %r to reload the MQTT broker", self.command)
            return f"ran {self.command!r}"
        return "no reload configured: reload the broker yourself (SIGHUP)"
