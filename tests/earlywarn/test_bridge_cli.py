"""``earlywarn bridge``: settings it refuses before connecting to anything."""

from __future__ import annotations

import pytest

from earlywarn.cli import main


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--mqtt", "http://127.0.0.1:1883"], "unsupported scheme"),
        (["--share-group", "a/b"], "share group"),
        (["--kafka-timeout", "0"], "--kafka-timeout must be positive"),
    ],
)
def test_bad_settings_exit_2_in_plain_words(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bridge", *argv]) == 2
    assert said in capsys.readouterr().err
