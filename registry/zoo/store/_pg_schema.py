"""The PostgreSQL store's schema: the shared tables (:mod:`._sql`), the one-row ``store`` table, the
immutability triggers, and the migrations from older schema versions. Statements only: running them
is :meth:`zoo.store.postgres.PostgresMetadataStore.initialise`'s job (this module imports no store).

The schema version is kept in ``store.schema_version``; 1 -> 2 added the search indexes and
``alias_events`` (append-only history of alias moves); 2 -> 3 added ``alias_policies`` (gated aliases),
``events`` (the append-only event log), ``webhooks`` and ``deliveries`` (the webhook outbox); 3 -> 4
``labels`` (class names stored once per list, named by digest from each version's record).
"""
from __future__ import annotations

from ._sql import ALIAS_CHANNEL, Dialect, tables_ddl

__all__ = ["SCHEMA_VERSION", "create_statements", "dialect", "migration_statements"]

SCHEMA_VERSION = 4


def dialect(schema: str) -> Dialect:
    """The PostgreSQL dialect for tables in ``schema`` (validated against SCHEMA_PATTERN: safe to quote)."""
    return Dialect(
        param="%s", prefix=f'"{schema}".',
        tags_json="json_object_agg(t.key, t.value)::text", aliases_json="json_agg(a.alias)::text",
        record_field="({col}::json #>> '{path}')",
        json_rows="json_array_elements({col}::json #> '{path}')", json_true="'true'", json_valid="TRUE",
        identity="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        actor="current_user",  # the PostgreSQL role
        notify=f"SELECT pg_notify('{ALIAS_CHANNEL}', ?)", schema=schema,
    )


def _alias_event_triggers(s: str) -> list[str]:
    return [
        f"""CREATE TRIGGER alias_events_append_only BEFORE UPDATE OR DELETE ON {s}.alias_events
    FOR EACH ROW EXECUTE FUNCTION {s}.refuse_update('alias events', 'append-only')""",
    ]


def _event_triggers(s: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS events_append_only ON {s}.events",  # idempotent: a half-migrated store re-runs it
        f"""CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON {s}.events
    FOR EACH ROW EXECUTE FUNCTION {s}.refuse_update('events', 'append-only')""",
    ]


def _labels_triggers(s: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS labels_immutable ON {s}.labels",
        f"""CREATE TRIGGER labels_immutable BEFORE UPDATE ON {s}.labels
    FOR EACH ROW EXECUTE FUNCTION {s}.refuse_update('labels', 'immutable')""",
    ]


def create_statements(schema: str) -> list[str]:
    """A new, empty store (the caller inserts the ``store`` row)."""
    s = f'"{schema}"'
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"""CREATE TABLE {s}.store (
    one             BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    store_id        TEXT NOT NULL,
    schema_version  INTEGER NOT NULL,
    artifacts       TEXT NOT NULL,
    created_at      TEXT NOT NULL
)""",
        *tables_ddl(dialect(schema)),
        f"""CREATE FUNCTION {s}.refuse_update() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'zoo: % are %', TG_ARGV[0], TG_ARGV[1]; END $$""",
        f"""CREATE TRIGGER versions_immutable BEFORE UPDATE ON {s}.versions
    FOR EACH ROW EXECUTE FUNCTION {s}.refuse_update('versions', 'immutable')""",
        f"""CREATE TRIGGER reports_append_only BEFORE UPDATE ON {s}.reports
    FOR EACH ROW EXECUTE FUNCTION {s}.refuse_update('reports', 'append-only')""",
        *_alias_event_triggers(s),
        *_event_triggers(s),
        *_labels_triggers(s),
    ]


def migration_statements(schema: str, target: int) -> list[str]:
    """The statements that bring schema version ``target - 1`` up to ``target``."""
    if target == 2:
        return [*tables_ddl(dialect(schema)), *_alias_event_triggers(f'"{schema}"')]
    if target == 3:
        return [*tables_ddl(dialect(schema)), *_event_triggers(f'"{schema}"')]
    if target == 4:
        return [*tables_ddl(dialect(schema)), *_labels_triggers(f'"{schema}"')]
    raise ValueError(f"no migration to schema {target}")  # a bug: SCHEMA_VERSION grew without one
