"""``earlywarn dashboards push`` against a recording Grafana: folders once, dashboards
overwritten, the token sent, plain errors with their exit codes."""

from __future__ import annotations

import argparse
import builtins
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from earlywarn import dashboards_cli
from tests.dashboards.conftest import EXAMPLE_REGISTRY_DIR
from tests.services.grafana_recorder import GrafanaRecorder
from tests.services.mosquitto import free_port

TOKEN = "glsa_test_token"


@pytest.fixture
def grafana() -> Iterator[GrafanaRecorder]:
    """A recording Grafana accepting ``TOKEN``."""
    server = GrafanaRecorder(TOKEN)
    server.start()
    yield server
    server.stop()


def _cli(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    dashboards_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    code: int = args.func(args, out, err)
    return code, out.getvalue(), err.getvalue()


def test_push_from_the_registry_creates_folders_once_and_overwrites(
    grafana: GrafanaRecorder,
) -> None:
    argv = (
        "dashboards",
        "push",
        "--grafana",
        grafana.url,
        "--token",
        TOKEN,
        "--registry",
        str(EXAMPLE_REGISTRY_DIR),
    )
    code, out, err = _cli(*argv)
    assert (code, err) == (0, "")
    assert "pushed 7 dashboards" in out
    created = grafana.calls_to("POST", "/api/folders")
    assert sorted(c.body["uid"] for c in created) == [
        "ew-centre",
        "ewf-huaxin-chem",
        "ewf-laojie-restaurants",
        "ewf-qingjiang-water",
    ]
    assert grafana.folders["ewf-huaxin-chem"]["title"] == "安县华信化工有限公司"
    posts = grafana.calls_to("POST", "/api/dashboards/db")
    assert len(posts) == 7
    assert all(p.body["overwrite"] is True for p in posts)
    assert all(p.authorization == f"Bearer {TOKEN}" for p in posts + created)
    assert grafana.dashboards["ew-gas-laojie-restaurants"]["folderUid"] == "ewf-laojie-restaurants"
    assert grafana.calls_to("GET", "/api/health")

    # Again: the folders are found, nothing new is created, every dashboard is overwritten.
    code, out, _err = _cli(*argv)
    assert code == 0
    assert len(grafana.calls_to("POST", "/api/folders")) == 4
    assert "folders created: 0, already there: 4" in out
    assert len(grafana.dashboards) == 7
    assert {d["version"] for d in grafana.dashboards.values()} == {2}


def test_push_from_built_files_gives_the_same_folders_and_dashboards(
    grafana: GrafanaRecorder, out_dir: Path
) -> None:
    assert (
        _cli("dashboards", "build", "--registry", str(EXAMPLE_REGISTRY_DIR), "--out", str(out_dir))[
            0
        ]
        == 0
    )
    code, _out, err = _cli(
        "dashboards", "push", "--grafana", grafana.url, "--token", TOKEN, "--dir", str(out_dir)
    )
    assert (code, err) == (0, "")
    assert set(grafana.folders) == {
        "ew-centre",
        "ewf-huaxin-chem",
        "ewf-laojie-restaurants",
        "ewf-qingjiang-water",
    }
    assert len(grafana.dashboards) == 7


def test_wrong_token_is_a_plain_error_and_exit_1(grafana: GrafanaRecorder) -> None:
    code, out, err = _cli(
        "dashboards",
        "push",
        "--grafana",
        grafana.url,
        "--token",
        "wrong",
        "--registry",
        str(EXAMPLE_REGISTRY_DIR),
    )
    assert code == 1
    assert out == ""
    assert "401 Unauthorized" in err
    assert "check --token" in err
    assert not grafana.folders


def test_read_only_token_says_which_role_is_needed() -> None:
    server = GrafanaRecorder(TOKEN, read_only=True)
    server.start()
    try:
        code, _out, err = _cli(
            "dashboards",
            "push",
            "--grafana",
            server.url,
            "--token",
            TOKEN,
            "--registry",
            str(EXAMPLE_REGISTRY_DIR),
        )
    finally:
        server.stop()
    assert code == 1
    assert "403 Forbidden" in err
    assert "Editor" in err


def test_grafana_not_running_is_a_plain_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _out, err = _cli(
        "dashboards",
        "push",
        "--grafana",
        url,
        "--token",
        TOKEN,
        "--registry",
        str(EXAMPLE_REGISTRY_DIR),
    )
    assert code == 1
    assert f"Cannot reach Grafana at {url}" in err
    assert "Traceback" not in err


def test_without_grafana_client_push_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_grafana_client(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("grafana_client"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_grafana_client)
    code, _out, err = _cli(
        "dashboards",
        "push",
        "--grafana",
        "http://127.0.0.1:1",
        "--token",
        TOKEN,
        "--registry",
        str(EXAMPLE_REGISTRY_DIR),
    )
    assert code == 2
    assert (
        "URLLIB3_NO_OVERRIDE=1 pip install --no-binary urllib3-future 'earlywarn[grafana]'" in err
    )


def test_push_without_a_token_is_a_usage_error() -> None:
    code, _out, err = _cli(
        "dashboards",
        "push",
        "--grafana",
        "http://127.0.0.1:1",
        "--token",
        "",
        "--registry",
        str(EXAMPLE_REGISTRY_DIR),
    )
    assert code == 2
    assert "GRAFANA_TOKEN" in err
