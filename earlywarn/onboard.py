"""Onboarding and offboarding an enterprise: its registry file, MQTT accounts, ACL, broker
reload and dashboards, in that order.

The enterprise file lands in the registry directory as ``<enterprise-id>.yaml`` (copied byte
for byte, comments kept), where ``earlywarn run`` reads it at its next start. The registry
file goes first: a device that can log in before the service knows its sensors would only
fill the dead-letter topic with ``unknown_sensor``.

Secrets: each new account gets a random secret, hashed at once; the secret is returned to
the caller exactly once and kept nowhere. Re-running with the same file changes nothing
(existing accounts keep their hashes, and the broker is not even reloaded); a device added
to the file gets an account, a device removed loses its account; ``rotate`` issues new
secrets for every account, and the old ones stop working at the reload.

Offboarding revokes every account and ACL entry of the enterprise and moves its registry
file to ``<registry>/offboarded/`` (out of the loader's sight, kept for the record). Its
readings, alarms and audit log stay where they are: they are evidence (安全生产法, art. 36).
"""

from __future__ import annotations

import enum
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from dashboards.build import (
    DASHBOARDS_DIR,
    DEFAULT_DATASOURCE_UID,
    FOLDER_INDEX,
    build_dashboards,
    write_dashboards,
)
from dashboards.naming import enterprise_folder
from earlywarn.clock import Clock
from earlywarn.model import Enterprise
from earlywarn.mosquitto_auth import AuthDir, BrokerReloader, hash_password, new_secret, read_passwd
from earlywarn.mqtt_accounts import Account, Mode, accounts_for
from earlywarn.onboard_check import (
    Checked,
    check_enterprise_file,
    check_registry_without,
    declared_id,
    enterprise_files,
)
from earlywarn.registry import Registry
from earlywarn.yamlsource import Problem

log = logging.getLogger(__name__)

OFFBOARDED_DIR = "offboarded"


class OnboardingError(Exception):
    """The file (or the registry it would make) has problems; ``problems`` lists them all."""

    def __init__(self, problems: tuple[Problem, ...] | list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class Status(enum.StrEnum):
    """What happened to one account."""

    NEW = "new"
    ROTATED = "rotated"
    KEPT = "kept"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Credential:
    """One account after onboarding; ``password`` only when a secret was just issued."""

    user: str
    site: str
    devices: tuple[str, ...]
    status: Status
    password: str | None
    account: Account | None


@dataclass(frozen=True, slots=True)
class BrokerOutcome:
    """Whether the broker's files changed, and what reloading it came to."""

    changed: bool
    done: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class OnboardResult:
    """What one onboarding did."""

    enterprise: Enterprise
    target: Path
    registry_changed: bool
    mode: Mode
    credentials: tuple[Credential, ...]
    broker: BrokerOutcome
    dashboards: tuple[Path, ...]

    @property
    def issued(self) -> tuple[Credential, ...]:
        """Accounts with a secret to hand to the installer now."""
        return tuple(c for c in self.credentials if c.password is not None)


@dataclass(frozen=True, slots=True)
class OffboardResult:
    """What offboarding did."""

    enterprise: str
    revoked: tuple[str, ...]
    moved_to: Path | None
    broker: BrokerOutcome


class Onboarder:
    """Onboards into one registry directory and one broker authentication directory."""

    def __init__(
        self,
        registry_dir: Path,
        auth: AuthDir,
        reloader: BrokerReloader,
        clock: Clock,
        *,
        dashboards_out: Path | None = None,
        datasource_uid: str = DEFAULT_DATASOURCE_UID,
    ) -> None:
        self.registry_dir = registry_dir
        self.auth = auth
        self.reloader = reloader
        self.clock = clock
        self.dashboards_out = dashboards_out
        self.datasource_uid = datasource_uid

    def check(self, source: Path, *, update: bool = False) -> Checked:
        """Check ``source`` without changing anything (``update``: it may replace the
        enterprise of its id)."""
        return check_enterprise_file(source, self.registry_dir, update=update)

    def onboard(
        self,
        source: Path,
        *,
        rotate: bool = False,
        mode: Mode | None = None,
        update: bool = False,
    ) -> OnboardResult:
        """Check and onboard ``source``; raise :class:`OnboardingError` on any problem."""
        checked = self.check(source, update=update)
        if not checked.ok or checked.enterprise is None or checked.registry is None:
            raise OnboardingError(checked.problems)
        assert checked.target is not None  # noqa: S101 - set whenever the check passed
        enterprise, target = checked.enterprise, checked.target
        registry_changed = _install(source, target)
        manifest = self._manifest(enterprise.id)
        mode = mode or Mode(str(manifest.get("mode", Mode.DEVICE.value)))
        credentials, hashes = self._credentials(enterprise, mode, rotate)
        before = self._broker_files()
        self.auth.write_enterprise(
            enterprise.id,
            hashes,
            [c.account.acl for c in credentials if c.account is not None],
            self._manifest_text(enterprise, mode, credentials, target, manifest),
        )
        broker = self._reload_if_changed(before)
        dashboards = self._dashboards(checked.registry, enterprise)
        log.info(
            "onboarded %s: %d accounts (%d issued), registry file %s",
            enterprise.id,
            sum(1 for c in credentials if c.status is not Status.REVOKED),
            sum(1 for c in credentials if c.password is not None),
            "changed" if registry_changed else "unchanged",
        )
        return OnboardResult(
            enterprise, target, registry_changed, mode, credentials, broker, dashboards
        )

    def offboard(self, enterprise_id: str, *, keep_registry: bool = False) -> OffboardResult:
        """Revoke every account of the enterprise and take its file out of the registry
        (unless ``keep_registry``); raise :class:`OnboardingError` when the registry would
        not load without it, and ``LookupError`` for an enterprise unknown here."""
        file = next(
            (p for p in enterprise_files(self.registry_dir) if declared_id(p)[0] == enterprise_id),
            None,
        )
        has_accounts = enterprise_id in self.auth.enterprises()
        if file is None and not has_accounts:
            msg = f"enterprise {enterprise_id!r} is neither in {self.registry_dir} nor has accounts"
            raise LookupError(msg)
        if file is not None and not keep_registry:
            problems = check_registry_without(self.registry_dir, file)
            if problems:
                raise OnboardingError(problems)
        revoked = tuple(sorted(read_passwd(self.auth.fragment(enterprise_id, "passwd"))))
        before = self._broker_files()
        self.auth.remove_enterprise(enterprise_id)
        broker = self._reload_if_changed(before)
        moved: Path | None = None
        if file is not None and not keep_registry:
            folder = self.registry_dir / OFFBOARDED_DIR
            folder.mkdir(exist_ok=True)
            moved = folder / f"{enterprise_id}.{self.clock.now_ms()}.yaml"
            file.replace(moved)
        log.info("offboarded %s: %d accounts revoked", enterprise_id, len(revoked))
        return OffboardResult(enterprise_id, revoked, moved, broker)

    # -- parts -------------------------------------------------------------------------------

    def _manifest(self, enterprise: str) -> dict[str, object]:
        path = self.auth.fragment(enterprise, "json")
        if not path.exists():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}

    def _credentials(
        self, enterprise: Enterprise, mode: Mode, rotate: bool
    ) -> tuple[tuple[Credential, ...], dict[str, str]]:
        """Each account kept, new or rotated, and the revoked ones; with the new hashes."""
        old = read_passwd(self.auth.fragment(enterprise.id, "passwd"))
        hashes: dict[str, str] = {}
        found: list[Credential] = []
        for account in accounts_for(enterprise, mode):
            if account.user in old and not rotate:
                hashes[account.user] = old[account.user]
                found.append(
                    Credential(
                        account.user, account.site, account.devices, Status.KEPT, None, account
                    )
                )
                continue
            secret = new_secret()
            hashes[account.user] = hash_password(secret)
            status = Status.ROTATED if account.user in old else Status.NEW
            found.append(
                Credential(account.user, account.site, account.devices, status, secret, account)
            )
        found.extend(
            Credential(user, "", (), Status.REVOKED, None, None)
            for user in sorted(set(old) - set(hashes))
        )
        return tuple(found), hashes

    def _manifest_text(
        self,
        enterprise: Enterprise,
        mode: Mode,
        credentials: tuple[Credential, ...],
        target: Path,
        previous: dict[str, object],
    ) -> str:
        """Who has an account and may do what, and when each secret was issued (no secret:
        the manifest is for audits and for the next run)."""
        now = self.clock.now_ms()
        issued: dict[str, int] = {}
        accounts_before = previous.get("accounts")
        for item in accounts_before if isinstance(accounts_before, list) else []:
            if isinstance(item, dict) and isinstance(item.get("issued_ms"), int):
                issued[str(item.get("user"))] = item["issued_ms"]
        accounts = [
            {
                "user": c.user,
                "site": c.site,
                "devices": list(c.devices),
                "write": list(c.account.write),
                "read": list(c.account.read),
                "issued_ms": now if c.password is not None else issued.get(c.user, now),
            }
            for c in credentials
            if c.account is not None
        ]
        doc = {
            "enterprise": enterprise.id,
            "name": enterprise.name,
            "mode": mode.value,
            "registry_file": str(target),
            "accounts": accounts,
        }
        return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"

    def _broker_files(self) -> tuple[str, str]:
        def text(path: Path) -> str:
            return path.read_text(encoding="utf-8") if path.exists() else ""

        return text(self.auth.passwd), text(self.auth.acl)

    def _reload_if_changed(self, before: tuple[str, str]) -> BrokerOutcome:
        if self._broker_files() == before:
            return BrokerOutcome(False, "broker files unchanged: no reload needed")
        try:
            return BrokerOutcome(True, self.reloader.reload())
        except OSError as exc:
            log.error("the MQTT broker was not reloaded: %s", exc)
            return BrokerOutcome(True, "not reloaded", str(exc))

    def _dashboards(self, registry: Registry, enterprise: Enterprise) -> tuple[Path, ...]:
        """The enterprise's dashboards under ``dashboards_out`` (as ``dashboards build``
        lays them out), and its folder in the folder index."""
        if self.dashboards_out is None:
            return ()
        folder = enterprise_folder(enterprise.id, enterprise.name)
        boards = [
            b for b in build_dashboards(registry, self.datasource_uid) if b.folder.uid == folder.uid
        ]
        written = write_dashboards(boards, self.dashboards_out)
        index_path = self.dashboards_out / DASHBOARDS_DIR / FOLDER_INDEX
        index: dict[str, str] = {}
        if index_path.exists():
            index = json.loads(index_path.read_text(encoding="utf-8"))
        index[folder.title] = folder.uid
        index_path.write_text(
            json.dumps(index, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        return (*written, index_path)


def _install(source: Path, target: Path) -> bool:
    """Copy the file into the registry (atomically); ``False`` when it is there already."""
    data = source.read_bytes()
    if target.exists() and target.read_bytes() == data:
        return False
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    shutil.copymode(source, tmp)
    tmp.replace(target)
    return True
