"""The embedded store's SQLite schema: the shared tables (:mod:`._sql`), the store identity, and the
triggers that make versions, reports and alias history immutable.

``PRAGMA user_version`` keeps the schema version. Every statement is idempotent (``IF NOT EXISTS``),
so applying :data:`SCHEMA` to an older store under the write lock migrates it (1 -> 2 added the search
indexes and ``alias_events``; 2 -> 3 alias policies, the event log, webhooks and their deliveries; 3 -> 4 the ``labels`` table:
class names once per list).
"""
from __future__ import annotations

from ._sql import Dialect, tables_ddl

__all__ = ["DIALECT", "SCHEMA", "SCHEMA_VERSION"]

SCHEMA_VERSION = 4

DIALECT = Dialect(
    param="?", prefix="",
    tags_json="json_group_object(t.key, t.value)", aliases_json="json_group_array(a.alias)",
    record_field="json_extract({col}, '{path}')",
    json_rows="json_each({col}, '{path}')", json_true="1", json_valid="json_valid({col})",
    identity="INTEGER PRIMARY KEY AUTOINCREMENT",
    actor="?",  # the OS user, given by the store
)

SCHEMA: list[str] = tables_ddl(DIALECT) + [
    """CREATE TRIGGER IF NOT EXISTS versions_immutable BEFORE UPDATE ON versions
BEGIN SELECT RAISE(ABORT, 'zoo: versions are immutable'); END""",
    """CREATE TRIGGER IF NOT EXISTS reports_append_only BEFORE UPDATE ON reports
BEGIN SELECT RAISE(ABORT, 'zoo: reports are append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS alias_events_append_only BEFORE UPDATE ON alias_events
BEGIN SELECT RAISE(ABORT, 'zoo: alias history is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS alias_events_kept BEFORE DELETE ON alias_events
BEGIN SELECT RAISE(ABORT, 'zoo: alias history is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS events_append_only BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'zoo: the event log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS events_kept BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'zoo: the event log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS labels_immutable BEFORE UPDATE ON labels
BEGIN SELECT RAISE(ABORT, 'zoo: labels are immutable'); END""",
    """CREATE TABLE IF NOT EXISTS store_info (
    key    TEXT PRIMARY KEY,                  -- store_id, format_version: written once at creation
    value  TEXT NOT NULL
)""",
    """CREATE TRIGGER IF NOT EXISTS store_info_immutable BEFORE UPDATE ON store_info
BEGIN SELECT RAISE(ABORT, 'zoo: the store identity is immutable'); END""",
]
