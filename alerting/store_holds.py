"""Shelving, maintenance and drill windows in the alert store (the rules are in
:mod:`alerting.holds`)."""

from __future__ import annotations

from dataclasses import replace

from alerting.holds import Shelf, Window, hold_reason, shelved_until
from alerting.lifecycle import State
from alerting.store_audit import AuditKind
from alerting.store_base import StoreBase
from alerting.store_rows import (
    record_from_row,
    shelf_from_row,
    window_from_row,
)

__all__ = ["Holds"]


class Holds(StoreBase):
    """Shelvings of (sensor, rule) points and maintenance/drill windows."""

    def _windows_at(self, t_ms: int) -> list[Window]:
        rows = self._conn.execute(
            "SELECT * FROM windows WHERE from_ms <= ? AND until_ms > ? "
            "AND (ended_ms IS NULL OR ended_ms > ?)",
            (t_ms, t_ms, t_ms),
        ).fetchall()
        return [window_from_row(r) for r in rows]

    def _shelves_of(self, sensor: str, rule: str) -> list[Shelf]:
        rows = self._conn.execute(
            "SELECT * FROM shelves WHERE sensor = ? AND rule = ? ORDER BY id", (sensor, rule)
        ).fetchall()
        return [shelf_from_row(r) for r in rows]

    def _refresh_shelving(self, sensor: str, rule: str, now_ms: int) -> None:
        """Keep ``shelved_until_ms`` of the point's open occurrences equal to the shelving
        in force, so :func:`alerting.lifecycle.is_shelved` answers right."""
        until = shelved_until(self._shelves_of(sensor, rule), sensor, rule, now_ms)
        rows = self._conn.execute(
            "SELECT * FROM alarms WHERE sensor = ? AND rule = ? AND state <> ?",
            (sensor, rule, State.CLEARED.value),
        ).fetchall()
        for row in rows:
            record = record_from_row(row)
            if record.shelved_until_ms != until:
                self._save(replace(record, shelved_until_ms=until), now_ms)

    def shelve(self, alarm_id: str, by: str, until_ms: int, reason: str, now_ms: int) -> Shelf:
        """Shelve the (sensor, rule) of an occurrence from now until ``until_ms`` (at most
        :data:`alerting.holds.MAX_SHELVE_MS`). ``ValueError`` for an unknown alarm or an
        invalid shelving."""
        with self._write():
            record = self.get(alarm_id)
            if record is None:
                msg = f"no alarm {alarm_id}"
                raise ValueError(msg)
            shelf = Shelf(record.sensor, record.rule, now_ms, until_ms, by, reason, alarm_id)
            cursor = self._conn.execute(
                "INSERT INTO shelves (sensor, rule, alarm_id, from_ms, until_ms, by_person, "
                "reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (shelf.sensor, shelf.rule, alarm_id, now_ms, until_ms, by, reason),
            )
            shelf = replace(shelf, id=cursor.lastrowid)
            detail = {"shelf": shelf.id, "until_ms": until_ms, "reason": reason}
            self._audit(now_ms, AuditKind.SHELVED, alarm_id, detail, by)
            self._refresh_shelving(record.sensor, record.rule, now_ms)
        return shelf

    def unshelve(self, alarm_id: str, by: str, now_ms: int) -> int:
        """End now every shelving in force on the (sensor, rule) of an occurrence; returns
        how many. ``ValueError`` for an unknown alarm."""
        with self._write():
            record = self.get(alarm_id)
            if record is None:
                msg = f"no alarm {alarm_id}"
                raise ValueError(msg)
            cursor = self._conn.execute(
                "UPDATE shelves SET ended_ms = ?, ended_by = ? WHERE sensor = ? AND rule = ? "
                "AND from_ms <= ? AND until_ms > ? AND ended_ms IS NULL",
                (now_ms, by, record.sensor, record.rule, now_ms, now_ms),
            )
            count = cursor.rowcount
            self._audit(now_ms, AuditKind.UNSHELVED, alarm_id, {"ended": count}, by)
            self._refresh_shelving(record.sensor, record.rule, now_ms)
        return count

    def shelves(self, *, at_ms: int | None = None) -> list[Shelf]:
        """Every shelving, or those in force at ``at_ms``."""
        rows = self._conn.execute("SELECT * FROM shelves ORDER BY id").fetchall()
        found = [shelf_from_row(r) for r in rows]
        if at_ms is None:
            return found
        return [s for s in found if s.covers(s.sensor, s.rule, at_ms)]

    def add_window(self, window: Window, now_ms: int) -> Window:
        """Store a maintenance or drill window (validated by :class:`Window`); returns it
        with its id."""
        with self._write():
            cursor = self._conn.execute(
                "INSERT INTO windows (kind, scope, target, from_ms, until_ms, by_person, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    window.kind.value,
                    window.scope.value,
                    window.target,
                    window.from_ms,
                    window.until_ms,
                    window.by,
                    window.reason,
                ),
            )
            stored = replace(window, id=cursor.lastrowid, ended_ms=None, ended_by=None)
            detail = {
                "window": stored.id,
                "kind": stored.kind.value,
                "scope": stored.scope.value,
                "target": stored.target,
                "from_ms": stored.from_ms,
                "until_ms": stored.until_ms,
                "reason": stored.reason,
            }
            self._audit(now_ms, AuditKind.WINDOW_ADDED, None, detail, window.by)
        return stored

    def end_window(self, window_id: int, by: str, now_ms: int) -> Window | None:
        """End a window now (it stops covering from ``now_ms``); ``None`` if unknown. A
        window already over is returned unchanged."""
        with self._write():
            row = self._conn.execute("SELECT * FROM windows WHERE id = ?", (window_id,)).fetchone()
            if row is None:
                return None
            window = window_from_row(row)
            if window.end_ms <= now_ms:
                return window
            self._conn.execute(
                "UPDATE windows SET ended_ms = ?, ended_by = ? WHERE id = ?",
                (now_ms, by, window_id),
            )
            self._audit(now_ms, AuditKind.WINDOW_ENDED, None, {"window": window_id}, by)
        return replace(window, ended_ms=now_ms, ended_by=by)

    def windows(self, *, at_ms: int | None = None) -> list[Window]:
        """Every window, or those in force at ``at_ms``."""
        if at_ms is not None:
            return self._windows_at(at_ms)
        rows = self._conn.execute("SELECT * FROM windows ORDER BY id").fetchall()
        return [window_from_row(r) for r in rows]

    def hold_reason(self, alarm_id: str, now_ms: int) -> str | None:
        """Why notifications of this occurrence are held now (shelved, maintenance), or
        ``None`` to send them. ``ValueError`` for an unknown alarm."""
        record = self.get(alarm_id)
        if record is None:
            msg = f"no alarm {alarm_id}"
            raise ValueError(msg)
        return hold_reason(
            self._windows_at(now_ms),
            self._shelves_of(record.sensor, record.rule),
            record.sensor,
            record.rule,
            now_ms,
        )
