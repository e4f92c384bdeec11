"""The append-only audit log of the alert store: every transition, send and acknowledgement.

The Work Safety Law of the PRC (安全生产法, article 36 as amended in 2021) forbids tampering
with, hiding or destroying the data of monitoring and alarm equipment. The audit log is how
earlywarn shows that its alarm records were not changed after the fact:

- **The database refuses changes.** Triggers abort every UPDATE and DELETE on ``audit`` with
  "the audit log is append-only …", and an INSERT must chain to the last row (see
  :mod:`alerting.store_schema`). The store's own connection also refuses, through SQLite's
  authorizer, to drop or alter the audit table or its triggers.
- **Tampering that bypasses the triggers is detectable.** Someone with a separate tool can
  drop the triggers and edit rows. Each row carries ``hash`` = SHA-256 over its own fields and
  the previous row's hash (``prev_hash``), so :func:`verify` finds a changed row (its hash no
  longer matches), a deleted row (a gap in ``seq``, or a broken chain), rows cut from the end
  (SQLite's AUTOINCREMENT counter is past the last row) and missing triggers.
- **What a chain cannot show alone**: someone who rewrites a row *and* recomputes every later
  hash and the counter leaves a valid chain. Against that, publish :func:`head` (sequence
  number and hash of the last row) somewhere else from time to time — the service log, a
  daily report — and pass it to :func:`verify` as ``expected_head``.

A row's hash covers ``[seq, ts_ms, kind, alarm_id, actor, detail, prev_hash]`` as compact JSON
(UTF-8, no ASCII escaping), so any tool can recompute it.
"""

from __future__ import annotations

import enum
import hashlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alerting.store_schema import AUDIT_TRIGGERS, GENESIS_HASH

__all__ = ["AuditEntry", "AuditKind", "append", "canonical", "head", "row_hash", "verify"]


class AuditKind(enum.StrEnum):
    """What an audit row records."""

    TRANSITION = "transition"
    ACK = "ack"
    ACK_REFUSED = "ack_refused"
    STEP_PLANNED = "step_planned"
    STEP_CLAIMED = "step_claimed"
    STEP_FINISHED = "step_finished"
    STEP_INTERRUPTED = "step_interrupted"
    STEPS_CANCELLED = "steps_cancelled"
    ATTEMPT = "attempt"
    SHELVED = "shelved"
    UNSHELVED = "unshelved"
    WINDOW_ADDED = "window_added"
    WINDOW_ENDED = "window_ended"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit row. ``detail`` is the JSON object stored with it."""

    seq: int
    ts_ms: int
    kind: str
    alarm_id: str | None
    actor: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


def canonical(detail: Mapping[str, Any]) -> str:
    """The stored text of a detail object: sorted keys, compact, UTF-8 kept as is."""
    return json.dumps(
        detail, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def row_hash(
    seq: int, ts_ms: int, kind: str, alarm_id: str | None, actor: str, detail: str, prev: str
) -> str:
    """SHA-256 (hex) of one row's fields chained to the previous row's hash."""
    fields = [seq, ts_ms, kind, alarm_id, actor, detail, prev]
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _counter(conn: sqlite3.Connection) -> int:
    """SQLite's AUTOINCREMENT counter for ``audit``: the highest sequence number ever used."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
    return int(row[0]) if row else 0


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    """Sequence number and hash of the last row; ``(0, GENESIS_HASH)`` for an empty log."""
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)


def append(
    conn: sqlite3.Connection,
    ts_ms: int,
    kind: AuditKind,
    alarm_id: str | None,
    actor: str,
    detail: Mapping[str, Any],
) -> AuditEntry:
    """Append one row. Call inside the caller's write transaction, so the row commits (or
    not) with the change it records and no other writer can slip a row in between.

    The next sequence number continues SQLite's counter, not the last row, so rows cut from
    the end leave a visible gap instead of being silently replaced.
    """
    last_seq, prev = head(conn)
    seq = max(last_seq, _counter(conn)) + 1
    text = canonical(detail)
    digest = row_hash(seq, ts_ms, kind.value, alarm_id, actor, text, prev)
    conn.execute(
        "INSERT INTO audit (seq, ts_ms, kind, alarm_id, actor, detail, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, ts_ms, kind.value, alarm_id, actor, text, prev, digest),
    )
    return AuditEntry(seq, ts_ms, kind.value, alarm_id, actor, dict(detail), prev, digest)


def verify(conn: sqlite3.Connection, expected_head: tuple[int, str] | None = None) -> list[str]:
    """The problems found in the audit log, in plain words with the row number; empty if
    the log is intact (and, given ``expected_head``, still contains that row unchanged)."""
    problems: list[str] = []
    present = {
        str(r[0])
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
    }
    problems.extend(
        f"trigger {name} is missing: the audit log is no longer protected against changes"
        for name in AUDIT_TRIGGERS
        if name not in present
    )
    last_seq, prev = 0, GENESIS_HASH
    head_seen = False
    rows = conn.execute(
        "SELECT seq, ts_ms, kind, alarm_id, actor, detail, prev_hash, hash FROM audit ORDER BY seq"
    )
    for seq, ts_ms, kind, alarm_id, actor, detail, prev_hash, digest in rows:
        if seq != last_seq + 1:
            gone = (
                f"row {last_seq + 1} before it is missing"
                if seq == last_seq + 2
                else f"rows {last_seq + 1}–{seq - 1} before it are missing"
            )
            problems.append(f"row {seq}: {gone}")
        if prev_hash != prev:
            what = f"row {last_seq}" if last_seq else "the start of the log"
            problems.append(f"row {seq}: does not chain to {what} (deleted or changed rows)")
        if row_hash(seq, ts_ms, kind, alarm_id, actor, detail, prev_hash) != digest:
            problems.append(
                f"row {seq}: its content does not match its hash (changed after it was written)"
            )
        if expected_head is not None and seq == expected_head[0]:
            head_seen = True
            if digest != expected_head[1]:
                problems.append(f"row {seq}: differs from the head recorded earlier")
        last_seq, prev = seq, digest
    counter = _counter(conn)
    if counter > last_seq:
        problems.append(
            f"rows {last_seq + 1}–{counter} at the end are missing "
            f"(the log had reached row {counter})"
        )
    if expected_head is not None and expected_head[0] > 0 and not head_seen:
        problems.append(f"row {expected_head[0]}: recorded earlier as the head, no longer present")
    return problems
