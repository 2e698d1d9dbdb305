"""The PostgreSQL store's schema: created and migrated explicitly (``zoo store init``), never on open."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from ..errors import StoreError
from .postgres import SCHEMA_VERSION, PostgresMetadataStore

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE {s}.store (
    one             BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    store_id        TEXT NOT NULL,
    schema_version  INTEGER NOT NULL,
    artifacts       TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE TABLE {s}.models (name TEXT PRIMARY KEY, last_version INTEGER NOT NULL);
CREATE TABLE {s}.versions (
    name        TEXT NOT NULL REFERENCES {s}.models(name),
    version     INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    framework   TEXT,
    arch        TEXT,
    created_at  TEXT NOT NULL,
    record      TEXT NOT NULL,
    PRIMARY KEY (name, version),
    UNIQUE (name, sha256)
);
CREATE INDEX versions_sha256 ON {s}.versions(sha256);
CREATE TABLE {s}.aliases (
    name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES {s}.versions(name, version) ON DELETE CASCADE
);
CREATE TABLE {s}.tags (
    name TEXT NOT NULL, version INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (name, version, key),
    FOREIGN KEY (name, version) REFERENCES {s}.versions(name, version) ON DELETE CASCADE
);
CREATE TABLE {s}.reports (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    payload     TEXT NOT NULL,
    FOREIGN KEY (name, version) REFERENCES {s}.versions(name, version) ON DELETE CASCADE
);
CREATE INDEX reports_version ON {s}.reports(name, version);
CREATE FUNCTION {s}.refuse_update() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'zoo: % are %', TG_ARGV[0], TG_ARGV[1]; END $$;
CREATE TRIGGER versions_immutable BEFORE UPDATE ON {s}.versions
    FOR EACH ROW EXECUTE FUNCTION {s}.refuse_update('versions', 'immutable');
CREATE TRIGGER reports_append_only BEFORE UPDATE ON {s}.reports
    FOR EACH ROW EXECUTE FUNCTION {s}.refuse_update('reports', 'append-only')
"""
_MIGRATIONS: dict[int, str] = {}  # target version -> statements that bring version-1 up to it


def initialise(store: PostgresMetadataStore, artifacts: str | None) -> str:
    """Create the schema, or migrate an older one (under a lock, so concurrent inits are safe); returns what was done."""
    import psycopg

    conn = store._conn()
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"zoo-init:{store.url.schema}",))
            exists = conn.execute("SELECT to_regclass(%s)", (f"{store._s}.store",)).fetchone()[0]
            if exists is None:
                if not artifacts:
                    raise StoreError(f"Creating the registry at {store.location} needs an artifacts location",
                                     hint="add --artifacts s3://BUCKET/PREFIX (or a shared folder)")
                for statement in _SCHEMA.format(s=store._s).split(";\n"):
                    conn.execute(statement)
                conn.execute(f"INSERT INTO {store._s}.store(store_id, schema_version, artifacts, created_at) VALUES (%s,%s,%s,%s)",
                             (uuid.uuid4().hex, SCHEMA_VERSION, artifacts,
                              datetime.now(timezone.utc).isoformat(timespec="seconds")))
                done = "created"
            else:
                (found,) = conn.execute(f"SELECT schema_version FROM {store._s}.store").fetchone()
                if found > SCHEMA_VERSION:
                    raise StoreError(f"The registry at {store.location} uses schema {found}; this zoo understands up to "
                                     f"{SCHEMA_VERSION}", hint="upgrade zoo (pip install -U zoo-registry)")
                for target in range(found + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[target].format(s=store._s).split(";\n"):
                        conn.execute(statement)
                    conn.execute(f"UPDATE {store._s}.store SET schema_version = %s", (target,))
                done = "migrated" if found < SCHEMA_VERSION else "unchanged"
    except psycopg.Error as exc:
        raise store._error(exc, "initialise") from None
    return done


def grant(store: PostgresMetadataStore, role: str, *, write: bool) -> None:
    """Let ``role`` read (SELECT) or also write (INSERT, UPDATE, DELETE) the store's tables."""
    import psycopg
    from psycopg import sql

    privileges = "SELECT, INSERT, UPDATE, DELETE" if write else "SELECT"
    schema, who = sql.Identifier(store.url.schema), sql.Identifier(role)
    conn = store._conn()
    try:
        with conn.transaction():
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, who))
            conn.execute(sql.SQL("GRANT " + privileges + " ON ALL TABLES IN SCHEMA {} TO {}").format(schema, who))
            if write:
                conn.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(schema, who))
    except psycopg.Error as exc:
        raise store._error(exc, "grant access to") from None
