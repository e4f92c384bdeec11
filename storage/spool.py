"""The spool: a durable local queue of line-protocol lines in SQLite, in front of InfluxDB.

Every line goes here first and leaves only when InfluxDB has taken it, or refused it for good
(then it moves to the ``rejected`` table with the reason, kept for inspection). So an InfluxDB
outage, a restart or a crash of our process costs no point: the drainer
(:mod:`storage.drain`) sends the lines in order of their ids whenever the server is back.

Durability settings, chosen deliberately:

- **WAL journal**: appends (the runner) and peeks (the drainer) do not block each other, and a
  commit is one sequential write to the log.
- **synchronous=FULL**: every commit is fsynced before ``append`` returns, so a line the
  caller was told is stored survives a power cut too. With NORMAL, WAL commits survive a
  crash of the process but the last ones may roll back after a power loss or a kernel panic,
  and the caller (an exporter that has already advanced its cursor, a runner that has
  acknowledged the MQTT message) could not tell. Callers batch (one transaction per call,
  e.g. 1,000 lines), so FULL costs one fsync per batch; ``bench/storage.py`` measures it.
- **AUTOINCREMENT ids**: ids never repeat, even after the table empties, so "every line up to
  id N" is always exactly the lines that were peeked, whatever was appended since.

Size: running totals of bytes (UTF-8) and lines are kept in the ``meta`` table and updated in
the same transaction as every change, so checking the limit costs no scan. At ``max_bytes``
the spool logs one WARNING per crossing and counts ``over_limit``. Events (alarms,
notifications, site snapshots) are never dropped. Readings are dropped only by an explicit
policy (:class:`ReadingsAtLimit`), and counted.

Cursors: an exporter that tails another durable log (the alert store's audit log) stores how
far it got in the same transaction as the lines it made from it, so after a crash it neither
loses nor repeats a line.

One object may be shared by threads; several processes may open the same file (SQLite locks
it; ``busy_timeout`` waits up to 30 s). Writes go through one connection (a lock serialises
them), reads through another: under WAL a reader sees the last commit and never waits for a
writer, so the drainer peeking 5,000 lines, or the runner asking for the depth, never holds up
an append (and with it the acknowledgement of MQTT messages) behind an fsync, and an append
never holds up a peek. :meth:`checkpoint` copies the log into the database file (the drainer
calls it after each step), so an append does not pay for that either; an append does it itself
only after ``checkpoint_every`` commits without one (no drainer running).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from storage.spool_types import Batch, Klass, ReadingsAtLimit, Rejected, SpoolStats

__all__ = ["Batch", "Klass", "ReadingsAtLimit", "Rejected", "Spool", "SpoolStats"]

log = logging.getLogger(__name__)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS line (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        klass INTEGER NOT NULL,
        text TEXT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cursor (name TEXT PRIMARY KEY, position INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS rejected (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        line_id INTEGER NOT NULL,
        klass INTEGER NOT NULL,
        text TEXT NOT NULL,
        reason TEXT NOT NULL,
        at_ms INTEGER NOT NULL)""",
    "INSERT OR IGNORE INTO meta (key, value) VALUES ('bytes', 0), ('lines', 0)",
)

_DROP_CHUNK = 1000


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Spool:
    """A durable FIFO of line-protocol lines in one SQLite file."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int,
        readings_at_limit: ReadingsAtLimit = ReadingsAtLimit.KEEP,
        clock_ms: Callable[[], int] = _wall_ms,
        checkpoint_every: int = 2_000,
    ) -> None:
        if max_bytes <= 0:
            msg = f"max_bytes must be positive, got {max_bytes}"
            raise ValueError(msg)
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.policy = ReadingsAtLimit(readings_at_limit)
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._stats = SpoolStats()
        self.checkpoint_every = checkpoint_every
        self._commits = 0
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a transaction takes the
        # write lock at its start and never fails half-way with "database is locked".
        self._db = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            log.warning("Spool %s: SQLite would not use WAL here (%s)", self.path, mode)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        with self._transaction():
            for statement in _SCHEMA:
                self._db.execute(statement)
        self._reader = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        size = self.size_bytes()
        self._over = size >= self.max_bytes
        if self._over:
            log.warning(
                "Spool %s opened over its limit: %s bytes of %s, %s lines waiting",
                self.path,
                f"{size:,}",
                f"{self.max_bytes:,}",
                f"{self.depth():,}",
            )

    # --- writing ---------------------------------------------------------------------------

    def append(
        self,
        lines: Sequence[str],
        *,
        klass: Klass,
        cursor: tuple[str, int] | None = None,
    ) -> int:
        """Store ``lines`` (and the cursor, if given) in one transaction; return how many stored.

        Fewer than given only for readings under ``DROP_NEW`` at the limit (counted as
        ``refused_readings``); the cursor is stored even then, since the exporter has dealt
        with those positions. When this returns, the lines are on disk. ``ValueError`` for a
        line with a newline (it would be two points to the server).
        """
        klass = Klass(klass)
        sizes = [len(line.encode("utf-8")) for line in lines]
        if any("\n" in line or "\r" in line for line in lines):
            msg = "a spooled line must not contain a newline"
            raise ValueError(msg)
        dropped = refused = 0
        with self._lock:
            with self._transaction():
                size, count = self._totals()
                if (
                    klass is Klass.READING
                    and self.policy is ReadingsAtLimit.DROP_NEW
                    and size >= self.max_bytes
                ):
                    refused, lines, sizes = len(lines), (), []
                if lines:
                    # One statement for the whole batch: ``executemany`` would run one step
                    # per line, each releasing and taking back the GIL, which under load
                    # means waiting for the event loop's thread every time.
                    self._db.execute(
                        "INSERT INTO line (klass, text)"
                        " SELECT ?, value FROM json_each(?) ORDER BY key",
                        (int(klass), json.dumps(list(lines), ensure_ascii=False)),
                    )
                size += sum(sizes)
                count += len(lines)
                if self.policy is ReadingsAtLimit.DROP_OLDEST and size > self.max_bytes:
                    dropped, freed = self._drop_oldest_readings(size - self.max_bytes)
                    size -= freed
                    count -= dropped
                self._set_totals(size, count)
                if cursor is not None:
                    name, position = cursor
                    self._db.execute(
                        "INSERT INTO cursor (name, position) VALUES (?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                        (name, int(position)),
                    )
            self._count(appended=len(lines), dropped_readings=dropped, refused_readings=refused)
            self._check_limit(size, count)
        if dropped or refused:
            log.debug(
                "Spool %s at its limit: %d readings dropped, %d refused",
                self.path,
                dropped,
                refused,
            )
        return len(lines)

    def remove(self, batch: Batch) -> int:
        """Delete a peeked batch once the server has taken it; return lines deleted."""
        return self.remove_through(batch.last_id)

    def remove_through(self, line_id: int) -> int:
        """Delete every line with an id up to ``line_id`` (a batch's settled prefix)."""
        with self._lock:
            with self._transaction():
                removed, freed = self._db.execute(
                    "SELECT count(*), coalesce(sum(length(CAST(text AS BLOB))), 0)"
                    " FROM line WHERE id <= ?",
                    (line_id,),
                ).fetchone()
                if not removed:
                    return 0
                self._db.execute("DELETE FROM line WHERE id <= ?", (line_id,))
                size, count = self._totals()
                size, count = size - freed, count - removed
                self._set_totals(size, count)
            self._count(removed=removed)
            self._check_limit(size, count)
        return int(removed)

    def reject(self, refused: Sequence[tuple[int, str]]) -> int:
        """Move lines the server refused for good, ``(line id, reason)``, to ``rejected``."""
        moved = 0
        at_ms = self._clock_ms()
        with self._lock:
            with self._transaction():
                size, count = self._totals()
                for line_id, reason in refused:
                    row = self._db.execute(
                        "DELETE FROM line WHERE id = ? RETURNING klass, text", (line_id,)
                    ).fetchone()
                    if row is None:
                        continue
                    self._db.execute(
                        "INSERT INTO rejected (line_id, klass, text, reason, at_ms)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (line_id, row[0], row[1], reason, at_ms),
                    )
                    moved += 1
                    size -= len(row[1].encode("utf-8"))
                    count -= 1
                self._set_totals(size, count)
            self._count(rejected=moved)
            self._check_limit(size, count)
        return moved

    # --- reading ---------------------------------------------------------------------------

    def peek(self, limit: int) -> Batch:
        """The first ``limit`` lines in order; they stay until :meth:`remove`."""
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT id, text FROM line ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        if not rows:
            return Batch((), ())
        ids, lines = zip(*rows, strict=True)
        return Batch(ids, lines)

    def depth(self) -> int:
        """Lines waiting to be sent."""
        with self._read_lock:
            return _totals(self._reader)[1]

    def size_bytes(self) -> int:
        """UTF-8 bytes of the lines waiting (without SQLite's overhead)."""
        with self._read_lock:
            return _totals(self._reader)[0]

    def oldest_ms(self) -> int | None:
        """Timestamp of the next line to send (how far behind InfluxDB is), or ``None``."""
        with self._read_lock:
            row = self._reader.execute("SELECT text FROM line ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        return int(str(row[0]).rsplit(" ", 1)[1])

    def cursor(self, name: str) -> int:
        """Where the exporter ``name`` got to (0 if it never stored a position)."""
        with self._read_lock:
            row = self._reader.execute(
                "SELECT position FROM cursor WHERE name = ?", (name,)
            ).fetchone()
        return int(row[0]) if row else 0

    def rejected(self, limit: int = 100) -> list[Rejected]:
        """The most recently rejected lines, newest first."""
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT line_id, klass, text, reason, at_ms FROM rejected ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [Rejected(r[0], Klass(r[1]), r[2], r[3], r[4]) for r in rows]

    def rejected_count(self) -> int:
        """Every line ever rejected and still kept in the file."""
        with self._read_lock:
            return int(self._reader.execute("SELECT count(*) FROM rejected").fetchone()[0])

    @property
    def stats(self) -> SpoolStats:
        """Counters since this object was opened."""
        return self._stats

    @property
    def over_limit(self) -> bool:
        """Whether the spool currently holds ``max_bytes`` or more."""
        return self._over

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database file, as far as readers allow.

        PASSIVE: it neither waits for nor blocks an append. Without it the log would only
        grow (automatic checkpoints are off, see the module docstring).
        """
        with self._read_lock:
            self._reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        with self._lock:
            self._commits = 0

    def close(self) -> None:
        """Close the file (everything appended is already on disk)."""
        with self._lock, self._read_lock:
            self._reader.close()
            try:
                # The last connection to close checkpoints and removes the log.
                self._db.execute("PRAGMA wal_autocheckpoint=1000")
            finally:
                self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- inside ----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self._commits += 1
        if self._commits >= self.checkpoint_every:
            # Nobody checkpointed for a long time (no drainer running): do it here.
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self._commits = 0

    def _totals(self) -> tuple[int, int]:
        return _totals(self._db)

    def _set_totals(self, size: int, count: int) -> None:
        self._db.executemany(
            "UPDATE meta SET value = ? WHERE key = ?", ((size, "bytes"), (count, "lines"))
        )

    def _drop_oldest_readings(self, excess: int) -> tuple[int, int]:
        """Delete the oldest readings until ``excess`` bytes are freed (or none are left)."""
        dropped = freed = 0
        while freed < excess:
            rows = self._db.execute(
                "SELECT id, length(CAST(text AS BLOB)) FROM line WHERE klass = ?"
                " ORDER BY id LIMIT ?",
                (int(Klass.READING), _DROP_CHUNK),
            ).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            for line_id, size in rows:
                dropped += 1
                freed += size
                if freed >= excess:
                    last = line_id
                    break
            self._db.execute(
                "DELETE FROM line WHERE klass = ? AND id <= ?", (int(Klass.READING), last)
            )
        return dropped, freed

    def _count(self, **deltas: int) -> None:
        """Add to the counters (under the lock: the runner and the drainer share them)."""
        stats = self._stats
        self._stats = replace(stats, **{k: getattr(stats, k) + v for k, v in deltas.items()})

    def _check_limit(self, size: int, count: int) -> None:
        """Warn once when the spool reaches its limit; note when it is back under."""
        if size >= self.max_bytes and not self._over:
            self._over = True
            self._count(over_limit=1)
            log.warning(
                "Spool %s reached its limit: %s bytes in %s lines (limit %s); InfluxDB is not"
                " keeping up or is unreachable. Readings: %s; alarms and notifications are"
                " always kept",
                self.path,
                f"{size:,}",
                f"{count:,}",
                f"{self.max_bytes:,}",
                _POLICY_WORDS[self.policy],
            )
        elif size < self.max_bytes and self._over:
            self._over = False
            log.info(
                "Spool %s is back under its limit: %s bytes in %s lines",
                self.path,
                f"{size:,}",
                f"{count:,}",
            )


def _totals(db: sqlite3.Connection) -> tuple[int, int]:
    rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
    return int(rows["bytes"]), int(rows["lines"])


_POLICY_WORDS = {
    ReadingsAtLimit.KEEP: "all kept, the spool keeps growing",
    ReadingsAtLimit.DROP_OLDEST: "the oldest are dropped to make room",
    ReadingsAtLimit.DROP_NEW: "new ones are refused",
}
