"""The spool: order, durability across reopening, cursors in the same transaction, the size
limit and its policies, and the rejected table."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from storage.spool import Klass, ReadingsAtLimit, Spool


def readings(n: int, start: int = 0, width: int = 0) -> list[str]:
    """``n`` distinct reading lines; ``width`` pads them to a fixed size in bytes."""
    lines = [
        f"reading,sensor=s{i} value={i}.5 {1_700_000_000_000 + i}" for i in range(start, start + n)
    ]
    if width:
        lines = [
            line.replace("reading,", "reading,p=" + "x" * (width - len(line) - 3) + ",", 1)
            for line in lines
        ]
    return lines


def alarms(n: int, start: int = 0) -> list[str]:
    return [
        f'alarm,sensor=s{i} state="active-unacked",severity=4i {1_700_000_000_000 + i}'
        for i in range(start, start + n)
    ]


def test_lines_come_out_in_append_order_and_leave_only_when_removed(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=10**9) as spool:
        spool.append(readings(3), klass=Klass.READING)
        spool.append(alarms(2), klass=Klass.EVENT)
        spool.append(readings(2, start=3), klass=Klass.READING)
        first = spool.peek(4)
        assert list(first.lines) == readings(3) + alarms(1)
        assert spool.peek(4) == first  # peeking does not take
        assert spool.remove(first) == 4
        assert list(spool.peek(100).lines) == alarms(1, start=1) + readings(2, start=3)
        assert spool.depth() == 3
        assert spool.stats.appended == 7
        assert spool.stats.removed == 4


def test_depth_and_size_are_running_totals_in_utf8_bytes(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=10**9) as spool:
        lines = ['alarm message="液位超高" 1', "reading value=1.0 2"]
        spool.append(lines, klass=Klass.EVENT)
        assert spool.size_bytes() == sum(len(line.encode()) for line in lines)
        assert spool.depth() == 2
        spool.remove(spool.peek(1))
        assert spool.size_bytes() == len(lines[1])
        spool.remove(spool.peek(1))
        assert (spool.depth(), spool.size_bytes()) == (0, 0)
        assert spool.oldest_ms() is None


def test_reopening_resumes_where_it_was(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Spool(path, max_bytes=10**9) as spool:
        spool.append(readings(10), klass=Klass.READING, cursor=("audit", 10))
        spool.remove(spool.peek(4))
    with Spool(path, max_bytes=10**9) as spool:
        assert list(spool.peek(100).lines) == readings(6, start=4)
        assert spool.depth() == 6
        assert spool.oldest_ms() == 1_700_000_000_004
        assert spool.cursor("audit") == 10
        assert spool.cursor("never") == 0
        spool.append(readings(1, start=10), klass=Klass.READING)
        assert spool.peek(100).lines[-1] == readings(1, start=10)[0]


def test_ids_never_repeat_so_removing_a_batch_never_takes_a_newer_line(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=10**9) as spool:
        spool.append(readings(2), klass=Klass.READING)
        batch = spool.peek(10)
        spool.remove(batch)  # table empty now
        spool.append(readings(1, start=2), klass=Klass.READING)
        assert spool.peek(10).ids[0] > batch.last_id
        spool.remove(batch)  # removing the old batch again takes nothing new
        assert spool.depth() == 1


def test_cursor_is_stored_with_the_lines(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=10**9) as spool:
        spool.append(alarms(3), klass=Klass.EVENT, cursor=("audit", 3))
        spool.append(alarms(2, start=3), klass=Klass.EVENT, cursor=("audit", 5))
        assert spool.cursor("audit") == 5
        assert spool.depth() == 5


def test_a_failed_append_leaves_neither_lines_nor_cursor(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Spool(path, max_bytes=10**9) as spool:
        spool.append(alarms(1), klass=Klass.EVENT, cursor=("audit", 1))
        # The cursor is written last in the transaction: a position SQLite cannot store fails
        # after the lines were inserted, and the whole append must roll back.
        with pytest.raises(OverflowError):
            spool.append(alarms(5, start=1), klass=Klass.EVENT, cursor=("audit", 2**70))
        assert spool.depth() == 1
        assert spool.cursor("audit") == 1
        assert spool.stats.appended == 1
    # ...and on disk, as another process reading the file sees it.
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM line").fetchone() == (1,)
        assert db.execute("SELECT position FROM cursor").fetchall() == [(1,)]
    with Spool(path, max_bytes=10**9) as spool:
        assert spool.depth() == 1
        assert spool.size_bytes() == len(alarms(1)[0])


def test_a_line_with_a_newline_is_refused(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=10**9) as spool:
        with pytest.raises(ValueError, match="newline"):
            spool.append(["a v=1 1\nb v=2 2"], klass=Klass.READING)
        assert spool.depth() == 0


# --- the size limit ------------------------------------------------------------------------


def _limit_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "reached its limit" in r.getMessage()
    ]


def test_keep_grows_past_the_limit_warning_once_per_crossing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="storage.spool")
    with Spool(tmp_path / "s.db", max_bytes=1000) as spool:
        for i in range(10):
            spool.append(readings(10, start=10 * i, width=50), klass=Klass.READING)
        assert spool.depth() == 100
        assert spool.size_bytes() == 5000
        assert spool.over_limit
        assert len(_limit_warnings(caplog)) == 1
        assert spool.stats.over_limit == 1
        spool.remove(spool.peek(90))  # back under: 500 bytes
        assert not spool.over_limit
        assert any("back under its limit" in r.getMessage() for r in caplog.records)
        spool.append(readings(20, width=50), klass=Klass.READING)  # second crossing
        assert len(_limit_warnings(caplog)) == 2
        assert spool.stats.over_limit == 2
        assert spool.stats.dropped_readings == spool.stats.refused_readings == 0


def test_drop_oldest_drops_only_readings_and_never_events(tmp_path: Path) -> None:
    with Spool(
        tmp_path / "s.db", max_bytes=1000, readings_at_limit=ReadingsAtLimit.DROP_OLDEST
    ) as spool:
        spool.append(readings(10, width=50), klass=Klass.READING)  # 500 bytes, ids 1-10
        events = alarms(5)  # about 320 bytes
        spool.append(events, klass=Klass.EVENT)
        spool.append(readings(10, start=10, width=50), klass=Klass.READING)
        lines = spool.peek(1000).lines
        # every event is still there, and the readings kept are the newest ones
        assert [line for line in lines if line.startswith("alarm")] == events
        kept = [line for line in lines if line.startswith("reading")]
        assert 0 < len(kept) < 20
        assert kept == readings(20, width=50)[-len(kept) :]
        assert spool.stats.dropped_readings == 20 - len(kept)
        assert spool.size_bytes() <= 1000
        assert spool.size_bytes() == sum(len(line) for line in lines)
        assert spool.depth() == len(lines)
        # events alone past the limit: nothing to drop, all kept, still warning
        spool.append(alarms(50, start=5), klass=Klass.EVENT)
        lines = spool.peek(1000).lines
        assert list(lines) == alarms(55)
        assert spool.over_limit


def test_drop_new_refuses_readings_at_the_limit_but_keeps_events_and_the_cursor(
    tmp_path: Path,
) -> None:
    with Spool(
        tmp_path / "s.db", max_bytes=1000, readings_at_limit=ReadingsAtLimit.DROP_NEW
    ) as spool:
        assert spool.append(readings(20, width=50), klass=Klass.READING) == 20  # reaches the limit
        assert (
            spool.append(readings(5, start=20, width=50), klass=Klass.READING, cursor=("x", 25))
            == 0
        )
        assert spool.cursor("x") == 25
        assert spool.stats.refused_readings == 5
        assert spool.append(alarms(3), klass=Klass.EVENT) == 3
        assert spool.depth() == 23
        spool.remove(spool.peek(10))
        assert spool.append(readings(2, start=30, width=50), klass=Klass.READING) == 2


def test_rejected_lines_are_kept_with_their_reason(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=10**9, clock_ms=lambda: 42) as spool:
        spool.append(readings(3), klass=Klass.READING)
        spool.append(alarms(1), klass=Klass.EVENT)
        batch = spool.peek(10)
        assert (
            spool.reject([(batch.ids[1], "HTTP 400: bad"), (batch.ids[3], "HTTP 400: worse")]) == 2
        )
        assert spool.reject([(batch.ids[1], "again")]) == 0  # already moved
        assert spool.depth() == 2
        assert spool.size_bytes() == len(readings(3)[0]) + len(readings(3)[2])
        assert spool.rejected_count() == 2
        newest, older = spool.rejected()
        assert (newest.line_id, newest.klass, newest.text, newest.reason, newest.at_ms) == (
            batch.ids[3],
            Klass.EVENT,
            alarms(1)[0],
            "HTTP 400: worse",
            42,
        )
        assert older.text == readings(3)[1]
        assert spool.stats.rejected == 2


def _wal_bytes(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_reads_do_not_wait_for_a_writer_holding_the_lock(tmp_path: Path) -> None:
    """Another connection in the middle of a write transaction (a slow fsync, the drain
    deleting a batch) does not hold up peek, depth or cursor: they see the last commit."""
    path = tmp_path / "s.db"
    with Spool(path, max_bytes=10**9) as spool:
        spool.append(readings(3), klass=Klass.READING, cursor=("audit", 7))
        writer = sqlite3.connect(path, isolation_level=None, timeout=0.1)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO line (klass, text) VALUES (1, 'uncommitted 1')")
        try:
            assert list(spool.peek(10).lines) == readings(3)
            assert (spool.depth(), spool.cursor("audit")) == (3, 7)
            assert spool.oldest_ms() == 1_700_000_000_000
        finally:
            writer.rollback()
            writer.close()


def test_the_log_is_copied_back_by_checkpoints_not_by_appends(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Spool(path, max_bytes=10**9, checkpoint_every=50) as spool:
        for i in range(49):
            spool.append(readings(100, start=i * 100, width=200), klass=Klass.READING)
        grown = _wal_bytes(path)
        assert grown > 49 * 100 * 200  # every append so far is only in the log
        spool.checkpoint()
        spool.remove(spool.peek(10_000))
        spool.checkpoint()
        # Once checkpointed, the log is written from its start again: it stops growing
        # (without the checkpoints it would now hold twice as much).
        for i in range(49):
            spool.append(readings(100, start=i * 100, width=200), klass=Klass.READING)
        assert _wal_bytes(path) < 1.5 * grown
        # Without anyone checkpointing, the 50th commit does it itself.
        for i in range(100):
            spool.append(readings(100, start=i * 100, width=200), klass=Klass.READING)
        assert _wal_bytes(path) < 1.5 * grown
    assert not path.with_name("s.db-wal").exists()  # closing the last connection cleans up
    with Spool(path, max_bytes=10**9) as again:
        assert again.depth() == 149 * 100
