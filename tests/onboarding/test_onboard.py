"""Onboarding and offboarding from the command line: what lands where, what is printed, and
that re-running changes nothing while --rotate, added and removed devices change exactly
what they should."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import pytest

from earlywarn.cli import main
from earlywarn.mosquitto_auth import (
    AuthDir,
    hash_password,
    read_passwd,
    verify_password,
)
from tests.onboarding.enterprise_files import VALID

NEW = "xinyuan-gas"
GD = f"{NEW}/station-1/GD-01"
TK = f"{NEW}/station-1/TK1"


def onboard(
    registry_dir: Path, auth_dir: AuthDir, *args: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    code = main(
        ["onboard", *args, "--registry", str(registry_dir), "--mqtt-dir", str(auth_dir.root)]
    )
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def new_file(tmp_path: Path) -> Path:
    path = tmp_path / "xinyuan.yaml"
    path.write_text(VALID, encoding="utf-8")
    return path


def test_onboarding_prints_each_secret_once_and_stores_only_hashes(
    registry_dir: Path,
    auth_dir: AuthDir,
    new_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sheet = tmp_path / "installer.csv"
    code, out, err = onboard(
        registry_dir, auth_dir, str(new_file), "--csv", str(sheet), capsys=capsys
    )
    assert code == 0, err
    assert (registry_dir / f"{NEW}.yaml").read_bytes() == new_file.read_bytes()
    rows = list(csv.DictReader(io.StringIO(sheet.read_text(encoding="utf-8"))))
    assert [r["username"] for r in rows] == [GD, TK]
    assert sheet.stat().st_mode & 0o777 == 0o600
    stored = read_passwd(auth_dir.passwd)
    for row in rows:
        assert [row["username"], row["password"]] in [
            line.split()[1:] for line in out.splitlines() if line.startswith("  new ")
        ]
        assert verify_password(row["password"], stored[row["username"]])
        assert row["password"] not in auth_dir.passwd.read_text()
        assert row["password"] not in auth_dir.fragment(NEW, "json").read_text()
    assert rows[1]["publish"] == f"ew/v1/{NEW}/station-1/TK1/up ew/v1/{NEW}/station-1/TK1/status"
    assert rows[1]["subscribe"] == f"ew/v1/{NEW}/station-1/+/alarm"
    assert auth_dir.passwd.stat().st_mode & 0o777 == 0o600
    # The service account of the base files is still there, first.
    assert next(iter(stored)) == "earlywarn"


def test_re_running_changes_nothing_and_rotate_changes_every_secret(
    registry_dir: Path, auth_dir: AuthDir, new_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert onboard(registry_dir, auth_dir, str(new_file), capsys=capsys)[0] == 0
    before = auth_dir.passwd.read_bytes(), auth_dir.acl.read_bytes()
    code, out, _ = onboard(registry_dir, auth_dir, str(new_file), capsys=capsys)
    assert code == 0
    assert (auth_dir.passwd.read_bytes(), auth_dir.acl.read_bytes()) == before
    assert "no secret changed" in out and "broker files unchanged" in out
    assert "restart" not in out
    code, out, _ = onboard(registry_dir, auth_dir, str(new_file), "--rotate", capsys=capsys)
    assert code == 0
    new_hashes = read_passwd(auth_dir.passwd)
    old_hashes = dict(line.split(":", 1) for line in before[0].decode().splitlines())
    assert new_hashes[GD] != old_hashes[GD] and new_hashes[TK] != old_hashes[TK]
    assert out.count("  rotated  ") == 2


def test_a_device_added_gets_an_account_and_one_removed_loses_it(
    registry_dir: Path, auth_dir: AuthDir, new_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert onboard(registry_dir, auth_dir, str(new_file), capsys=capsys)[0] == 0
    kept = read_passwd(auth_dir.passwd)[GD]
    new_file.write_text(VALID.replace("device: TK1", "device: TK2"), encoding="utf-8")
    code, out, err = onboard(registry_dir, auth_dir, str(new_file), capsys=capsys)
    assert code == 2 and "--update" in err  # a registered enterprise changes only on purpose
    code, out, _ = onboard(registry_dir, auth_dir, str(new_file), "--update", capsys=capsys)
    assert code == 0
    users = read_passwd(auth_dir.passwd)
    assert users[GD] == kept
    assert f"{NEW}/station-1/TK2" in users and TK not in users
    assert f"  revoked  {TK}" in out
    assert f"user {TK}\n" not in auth_dir.acl.read_text()


def test_gateway_mode_gives_one_account_per_site(
    registry_dir: Path, auth_dir: AuthDir, new_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = onboard(registry_dir, auth_dir, str(new_file), "--mode", "gateway", capsys=capsys)
    assert code == 0
    assert [u for u in read_passwd(auth_dir.passwd) if u.startswith(NEW)] == [f"{NEW}/station-1"]
    acl = auth_dir.fragment(NEW, "acl").read_text()
    assert f"topic write ew/v1/{NEW}/station-1/GD-01/up\n" in acl
    assert f"topic write ew/v1/{NEW}/station-1/TK1/status\n" in acl
    # The mode is remembered.
    assert onboard(registry_dir, auth_dir, str(new_file), capsys=capsys)[0] == 0
    assert f"{NEW}/station-1" in read_passwd(auth_dir.passwd)


def test_a_file_with_problems_changes_nothing(
    registry_dir: Path, auth_dir: AuthDir, new_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new_file.write_text(VALID.replace("kind: tank_level", "kind: tank"), encoding="utf-8")
    before = auth_dir.passwd.read_bytes()
    code, out, err = onboard(registry_dir, auth_dir, str(new_file), capsys=capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"{new_file}:33: sensor LT-01: unknown sensor kind 'tank'")
    assert err.endswith("1 problem(s); nothing was changed\n")
    assert not (registry_dir / f"{NEW}.yaml").exists()
    assert auth_dir.passwd.read_bytes() == before


def test_a_broker_that_cannot_be_reloaded_still_gets_the_secrets_printed(
    registry_dir: Path, auth_dir: AuthDir, new_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = onboard(
        registry_dir, auth_dir, str(new_file), "--reload-command", "false", capsys=capsys
    )
    assert code == 1
    assert out.count("  new      ") == 2
    assert "NOT reloaded" in err


def test_offboarding_revokes_and_moves_the_file_out_of_the_registry(
    registry_dir: Path, auth_dir: AuthDir, new_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert onboard(registry_dir, auth_dir, str(new_file), capsys=capsys)[0] == 0
    code = main(
        ["offboard", NEW, "--registry", str(registry_dir), "--mqtt-dir", str(auth_dir.root)]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    assert f"  revoked  {GD}" in out and f"  revoked  {TK}" in out
    assert not any(u.startswith(NEW) for u in read_passwd(auth_dir.passwd))
    assert NEW not in auth_dir.acl.read_text()
    assert not (registry_dir / f"{NEW}.yaml").exists()
    assert [p.name.split(".")[0] for p in (registry_dir / "offboarded").iterdir()] == [NEW]


def test_offboarding_an_enterprise_routing_still_names_is_refused(
    registry_dir: Path, auth_dir: AuthDir, capsys: pytest.CaptureFixture[str]
) -> None:
    own = registry_dir / "laojie-restaurants.yaml"
    assert onboard(registry_dir, auth_dir, str(own), capsys=capsys)[0] == 0
    code = main(
        [
            "offboard",
            "laojie-restaurants",
            "--registry",
            str(registry_dir),
            "--mqtt-dir",
            str(auth_dir.root),
        ]
    )
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith(f"{registry_dir}/routing.yaml:19: ")
    assert own.exists() and "laojie-restaurants/r-01/G1" in auth_dir.passwd.read_text()


def test_hashes_are_mosquitto_passwd_compatible(tmp_path: Path) -> None:
    tool = Path("/usr/bin/mosquitto_passwd")
    if not tool.exists():
        pytest.skip("mosquitto_passwd is not installed")
    file = tmp_path / "pw"
    subprocess.run([str(tool), "-c", "-b", str(file), "dev", "s3cret"], check=True)
    theirs = read_passwd(file)["dev"]
    assert verify_password("s3cret", theirs)
    assert not verify_password("s3cret!", theirs)
    salt = __import__("base64").b64decode(theirs.split("$")[3])
    assert hash_password("s3cret", salt=salt) == theirs
