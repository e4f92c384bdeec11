"""The foundation of the alert store: the connection, one write transaction, the audit
append, and reading and writing alarm records.

The public class is :class:`alerting.store.AlertStore`; its parts live in
:mod:`alerting.store_steps` (escalation steps and delivery attempts) and
:mod:`alerting.store_holds` (shelving, maintenance and drill windows) on top of this base, so
that each module stays about one thing.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Self

from alerting import store_audit
from alerting.codec import event_to_dict
from alerting.lifecycle import AlarmRecord, Transition, event_key
from alerting.store_audit import AuditKind
from alerting.store_rows import (
    RECORD_COLUMNS,
    record_from_row,
    record_values,
    transition_dict,
    transition_values,
)
from alerting.store_schema import AUDIT_TRIGGERS, configure, ensure_schema
from earlywarn.model import AlarmEvent

__all__ = ["SYSTEM", "StoreBase", "StoreError"]

_log = logging.getLogger(__name__)

SYSTEM = "earlywarn"
"""The actor of audit rows written by the service itself."""

_INSERT_RECORD = (
    f"INSERT INTO alarms ({', '.join(RECORD_COLUMNS)}, event, created_ms, updated_ms) "  # noqa: S608 - column names are constants
    f"VALUES ({', '.join('?' * (len(RECORD_COLUMNS) + 3))})"
)
_UPDATE_WITH_EVENT = (
    "UPDATE alarms SET "  # noqa: S608 - column names are constants
    + ", ".join(f"{c} = ?" for c in RECORD_COLUMNS[1:])
    + ", event = ?, updated_ms = ? WHERE alarm_id = ?"
)
_UPDATE_RECORD = (
    "UPDATE alarms SET "  # noqa: S608 - column names are constants
    + ", ".join(f"{c} = ?" for c in RECORD_COLUMNS[1:])
    + ", updated_ms = ? WHERE alarm_id = ?"
)


class StoreError(Exception):
    """A request the store's state does not allow (finishing a step that is not sending)."""


def _guard_audit(action: int, arg1: str | None, arg2: str | None, *_: str | None) -> int:
    """SQLite authorizer: this connection may not drop or alter the audit log or its
    triggers, nor make the schema writable. Reads and inserts pass; UPDATE and DELETE reach
    the triggers, which refuse them with their own message."""
    if action == sqlite3.SQLITE_DROP_TRIGGER and arg1 in AUDIT_TRIGGERS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_DROP_TABLE and arg1 == "audit":
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_ALTER_TABLE and arg2 == "audit":
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and arg1 == "writable_schema":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class StoreBase:
    """The connection to one alert store file (created with its schema if new).

    Times are always arguments (``now_ms``, epoch milliseconds): the store never reads a
    clock, so tests run hours of escalation without sleeping.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 5000) -> None:
        self._path = Path(path)
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=busy_timeout_ms / 1000)
        try:
            conn.row_factory = sqlite3.Row
            configure(conn, busy_timeout_ms)
            ensure_schema(conn)
            conn.set_authorizer(_guard_audit)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def close(self) -> None:
        """Close the connection (SQLite checkpoints the log when the last one closes)."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the write lock from its first read."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _audit(
        self,
        now_ms: int,
        kind: AuditKind,
        alarm_id: str | None,
        detail: dict[str, Any],
        actor: str = SYSTEM,
    ) -> None:
        store_audit.append(self._conn, now_ms, kind, alarm_id, actor, detail)

    # --- records ---------------------------------------------------------------------------

    def get(self, alarm_id: str) -> AlarmRecord | None:
        """The current record of one occurrence."""
        row = self._conn.execute("SELECT * FROM alarms WHERE alarm_id = ?", (alarm_id,)).fetchone()
        return record_from_row(row) if row else None

    def get_by_ref(self, ref: int) -> AlarmRecord | None:
        """The current record of the occurrence with this store number (link, SMS code)."""
        row = self._conn.execute("SELECT * FROM alarms WHERE ref = ?", (ref,)).fetchone()
        return record_from_row(row) if row else None

    def _save(
        self, record: AlarmRecord, now_ms: int, event: AlarmEvent | None = None
    ) -> AlarmRecord:
        """Insert or update a record and return it with its ``ref``; ``event`` (the last
        applied one) replaces the stored event JSON, otherwise it is kept."""
        values = record_values(record)
        if event is None:
            self._conn.execute(_UPDATE_RECORD, (*values[1:], now_ms, record.alarm_id))
        else:
            text = json.dumps(event_to_dict(event), ensure_ascii=False, allow_nan=False)
            # Update first, insert only a new occurrence: an upsert would draw a number from
            # the AUTOINCREMENT sequence on every event, and refs are short SMS reply codes.
            updated = self._conn.execute(
                _UPDATE_WITH_EVENT, (*values[1:], text, now_ms, record.alarm_id)
            ).rowcount
            if not updated:
                self._conn.execute(_INSERT_RECORD, (*values, text, now_ms, now_ms))
        if record.ref is not None:
            return record
        row = self._conn.execute(
            "SELECT ref FROM alarms WHERE alarm_id = ?", (record.alarm_id,)
        ).fetchone()
        return replace(record, ref=int(row[0]))

    def _add_transition(
        self,
        t: Transition,
        now_ms: int,
        event: AlarmEvent | None,
        actor: str = SYSTEM,
        *,
        kind: AuditKind = AuditKind.TRANSITION,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Store a transition with the event that made it, and its audit row (``kind`` and
        ``extra`` let an acknowledgement be audited as one ``ack`` row with its details)."""
        event_doc = event_to_dict(event) if event is not None else None
        self._conn.execute(
            "INSERT INTO transitions (alarm_id, kind, ts_ms, from_state, to_state, from_level, "
            "to_level, by_person, detail, event_key, event, recorded_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                *transition_values(t),
                event_key(event) if event is not None else None,
                json.dumps(event_doc, ensure_ascii=False) if event_doc is not None else None,
                now_ms,
            ),
        )
        detail = {**transition_dict(t), **(extra or {})}
        if event_doc is not None:
            detail["event"] = event_doc
        self._audit(now_ms, kind, t.alarm_id, detail, actor)
