"""The embedded store's SQLite schema: tables, and the triggers that make versions and reports immutable."""

__all__ = ["SCHEMA"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    name          TEXT PRIMARY KEY,
    last_version  INTEGER NOT NULL            -- numbers are never reused, even after a removal
);
CREATE TABLE IF NOT EXISTS versions (
    name        TEXT NOT NULL REFERENCES models(name),
    version     INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    framework   TEXT,
    arch        TEXT,
    created_at  TEXT NOT NULL,
    record      TEXT NOT NULL,                -- the immutable ModelVersion as JSON (no tags/aliases)
    PRIMARY KEY (name, version),
    UNIQUE (name, sha256)
);
CREATE INDEX IF NOT EXISTS versions_sha256 ON versions(sha256);
CREATE TABLE IF NOT EXISTS aliases (
    name     TEXT NOT NULL,
    alias    TEXT NOT NULL,
    version  INTEGER NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES versions(name, version) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS tags (
    name     TEXT NOT NULL,
    version  INTEGER NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (name, version, key),
    FOREIGN KEY (name, version) REFERENCES versions(name, version) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    payload     TEXT NOT NULL,
    FOREIGN KEY (name, version) REFERENCES versions(name, version) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS reports_version ON reports(name, version);
CREATE TRIGGER IF NOT EXISTS versions_immutable BEFORE UPDATE ON versions
BEGIN SELECT RAISE(ABORT, 'zoo: versions are immutable'); END;
CREATE TRIGGER IF NOT EXISTS reports_append_only BEFORE UPDATE ON reports
BEGIN SELECT RAISE(ABORT, 'zoo: reports are append-only'); END;
CREATE TABLE IF NOT EXISTS store_info (
    key    TEXT PRIMARY KEY,                  -- store_id, format_version: written once at creation
    value  TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS store_info_immutable BEFORE UPDATE ON store_info
BEGIN SELECT RAISE(ABORT, 'zoo: the store identity is immutable'); END;
"""
