"""The alert store's SQLite schema, its connection settings and its version.

The schema version is SQLite's ``PRAGMA user_version``: 0 is an empty file, which gets the
schema; :data:`SCHEMA_VERSION` is what this code reads and writes; anything newer was written
by a newer earlywarn and is refused rather than misread. A migration later adds a step from
version N to N+1 in :func:`ensure_schema`, run inside the same transaction.

Connection settings and why:

- ``journal_mode=WAL``: readers (the CLI, the web page) never block the writer, and a commit
  is one append to the write-ahead log; a crash mid-write leaves the last committed state,
  recovered from the log on the next open.
- ``synchronous=FULL``: every commit is fsynced to the log before it returns. With ``NORMAL``
  a power loss can undo the last commits — an acknowledgement, or the record that a call was
  made. Alarm data must survive power loss, and commits are few (alarms, not readings).
- ``foreign_keys=ON``: a step, attempt or acknowledgement always belongs to a stored alarm.
- a busy timeout: the service and a CLI in another process may write at the same moment; the
  second waits for the first instead of failing.

The audit table protects itself: triggers abort any UPDATE or DELETE, and an insert must
chain to the last row's hash (see :mod:`alerting.store_audit`).
"""

from __future__ import annotations

import sqlite3

__all__ = [
    "AUDIT_TRIGGERS",
    "GENESIS_HASH",
    "SCHEMA_VERSION",
    "SchemaError",
    "configure",
    "ensure_schema",
]

SCHEMA_VERSION = 1
GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first audit row."""

AUDIT_TRIGGERS = ("audit_no_update", "audit_no_delete", "audit_chained_insert")
"""The triggers that keep the audit log append-only (:mod:`alerting.store_audit` reports a
missing one)."""

_DDL = """
CREATE TABLE alarms (
    ref                 INTEGER PRIMARY KEY AUTOINCREMENT,
    alarm_id            TEXT NOT NULL UNIQUE,
    enterprise          TEXT NOT NULL,
    site                TEXT NOT NULL,
    sensor              TEXT NOT NULL,
    sensor_id           TEXT NOT NULL,
    kind                TEXT NOT NULL,
    rule                TEXT NOT NULL,
    rule_kind           TEXT NOT NULL,
    enterprise_name     TEXT NOT NULL,
    site_name           TEXT NOT NULL,
    sensor_name         TEXT NOT NULL,
    unit                TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN
                            ('active-unacked', 'active-acked', 'cleared-unacked', 'cleared')),
    level               TEXT CHECK (level IN ('blue', 'yellow', 'orange', 'red')),
    peak_level          TEXT NOT NULL CHECK (peak_level IN ('blue', 'yellow', 'orange', 'red')),
    value               REAL,
    setpoint            REAL,
    setpoint_label      TEXT NOT NULL,
    message             TEXT NOT NULL,
    start_ms            INTEGER NOT NULL,
    last_ts_ms          INTEGER NOT NULL,
    seen                TEXT NOT NULL,
    cleared_ms          INTEGER,
    acked_ms            INTEGER,
    acked_by            TEXT,
    drill               INTEGER NOT NULL CHECK (drill IN (0, 1)),
    flapping            INTEGER NOT NULL CHECK (flapping IN (0, 1)),
    suppressed_until_ms INTEGER,
    shelved_until_ms    INTEGER,
    event               TEXT NOT NULL,
    created_ms          INTEGER NOT NULL,
    updated_ms          INTEGER NOT NULL
);
CREATE INDEX alarms_point ON alarms (sensor, rule, start_ms);
CREATE INDEX alarms_state ON alarms (state, start_ms);
CREATE INDEX alarms_place ON alarms (enterprise, site, start_ms);
CREATE INDEX alarms_start ON alarms (start_ms);

CREATE TABLE transitions (
    id          INTEGER PRIMARY KEY,
    alarm_id    TEXT NOT NULL REFERENCES alarms (alarm_id),
    kind        TEXT NOT NULL,
    ts_ms       INTEGER NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL CHECK (to_state IN
                    ('active-unacked', 'active-acked', 'cleared-unacked', 'cleared')),
    from_level  TEXT,
    to_level    TEXT,
    by_person   TEXT,
    detail      TEXT NOT NULL,
    event_key   TEXT,
    event       TEXT,
    recorded_ms INTEGER NOT NULL
);
CREATE INDEX transitions_alarm ON transitions (alarm_id, id);

CREATE TABLE steps (
    id          INTEGER PRIMARY KEY,
    step_key    TEXT NOT NULL UNIQUE,
    alarm_id    TEXT NOT NULL REFERENCES alarms (alarm_id),
    due_ms      INTEGER NOT NULL,
    target      TEXT NOT NULL,
    channel     TEXT,
    payload     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN
                    ('pending', 'sending', 'sent', 'failed', 'cancelled', 'unknown')),
    claims      INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL,
    claimed_ms  INTEGER,
    finished_ms INTEGER,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX steps_due ON steps (status, due_ms, id);
CREATE INDEX steps_alarm ON steps (alarm_id, status);

CREATE TABLE attempts (
    id       INTEGER PRIMARY KEY,
    step_id  INTEGER REFERENCES steps (id),
    alarm_id TEXT NOT NULL REFERENCES alarms (alarm_id),
    person   TEXT NOT NULL,
    channel  TEXT NOT NULL,
    address  TEXT NOT NULL,
    outcome  TEXT NOT NULL CHECK (outcome IN ('sent', 'retry', 'permanent')),
    detail   TEXT NOT NULL,
    attempt  INTEGER NOT NULL CHECK (attempt >= 1),
    ts_ms    INTEGER NOT NULL
);
CREATE INDEX attempts_alarm ON attempts (alarm_id, id);
CREATE INDEX attempts_step ON attempts (step_id);

CREATE TABLE acks (
    id        INTEGER PRIMARY KEY,
    alarm_id  TEXT NOT NULL REFERENCES alarms (alarm_id),
    by_person TEXT NOT NULL,
    how       TEXT NOT NULL CHECK (how IN ('link', 'cli', 'sms-reply', 'ivr', 'web')),
    comment   TEXT NOT NULL,
    ts_ms     INTEGER NOT NULL,
    via       TEXT
);
CREATE INDEX acks_alarm ON acks (alarm_id, id);

CREATE TABLE shelves (
    id        INTEGER PRIMARY KEY,
    sensor    TEXT NOT NULL,
    rule      TEXT NOT NULL,
    alarm_id  TEXT REFERENCES alarms (alarm_id),
    from_ms   INTEGER NOT NULL,
    until_ms  INTEGER NOT NULL CHECK (until_ms > from_ms),
    by_person TEXT NOT NULL,
    reason    TEXT NOT NULL,
    ended_ms  INTEGER,
    ended_by  TEXT
);
CREATE INDEX shelves_point ON shelves (sensor, rule, until_ms);

CREATE TABLE windows (
    id        INTEGER PRIMARY KEY,
    kind      TEXT NOT NULL CHECK (kind IN ('maintenance', 'drill')),
    scope     TEXT NOT NULL CHECK (scope IN ('sensor', 'site', 'enterprise')),
    target    TEXT NOT NULL,
    from_ms   INTEGER NOT NULL,
    until_ms  INTEGER NOT NULL CHECK (until_ms > from_ms),
    by_person TEXT NOT NULL,
    reason    TEXT NOT NULL,
    ended_ms  INTEGER,
    ended_by  TEXT,
    CHECK (kind = 'maintenance' OR scope <> 'sensor')
);
CREATE INDEX windows_time ON windows (until_ms, from_ms);

CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms     INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    alarm_id  TEXT,
    actor     TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_alarm ON audit (alarm_id, seq);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: rows cannot be changed (Work Safety Law)');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: rows cannot be deleted (Work Safety Law)');
END;

CREATE TRIGGER audit_chained_insert BEFORE INSERT ON audit
WHEN NEW.prev_hash IS NOT coalesce(
    (SELECT hash FROM audit ORDER BY seq DESC LIMIT 1),
    '0000000000000000000000000000000000000000000000000000000000000000')
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: a new row must chain to the last row');
END;
"""


class SchemaError(Exception):
    """The file is not an alert store this code can use (newer schema, not WAL…)."""


def configure(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Apply the connection settings described in the module docstring."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        msg = f"the alert store needs WAL mode, SQLite gave {mode!r} (is it on a network share?)"
        raise SchemaError(msg)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the schema in an empty file, or check the version of an existing one.

    Runs in one immediate transaction, so two processes opening a new file at once cannot
    both create it.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version == 0:
            for statement in _statements(_DDL):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version > SCHEMA_VERSION:
            msg = (
                f"the alert store has schema version {version}, newer than this earlywarn "
                f"understands ({SCHEMA_VERSION}); upgrade earlywarn"
            )
            raise SchemaError(msg)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """Split the DDL into complete statements (triggers contain ``;`` inside BEGIN … END).

    Not ``executescript``: it commits first, and the schema must be created in the one
    transaction that checked the version."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
