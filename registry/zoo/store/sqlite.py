"""Registry metadata in one SQLite file (``registry.db``), safe for many processes at once.

WAL mode lets readers proceed while one writer writes; every write transaction starts with
``BEGIN IMMEDIATE`` so that two writers never both read "max version = 3" and both insert 4.
Waiting for the write lock uses SQLite's busy timeout plus an outer retry loop with a deadline
(``ZOO_LOCK_TIMEOUT`` seconds, default 300), so callers see either success or a
:class:`~zoo.errors.StoreError` saying who to wait for, never a raw "database is locked".
Versions and reports are protected by triggers against UPDATE: immutability holds even for
someone poking at the file with the ``sqlite3`` shell. WAL needs a local filesystem (not NFS/SMB).

Opening never creates the file: connections use ``mode=rw`` (``mode=ro`` for a read-only store), and
only :meth:`SQLiteMetadataStore.create` makes a database. A read-only store whose WAL index
(``registry.db-shm``) cannot be created by us (a read-only mount, another user's folder) is read with
``immutable=1``: SQLite then takes no lock and writes nothing, and trusts that no one changes the file
while we read it (true of a read-only mount; see SECURITY.md for another user's folder).
The store's identity lives in table ``store_info`` (key ``store_id``), guarded against UPDATE.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ImmutableError, StoreError, ZooError
from ..records import ModelVersion, Report
from ._sqlite_schema import SCHEMA as _SCHEMA
from .base import LEGACY_STORE_ID, StoreIdentity

SCHEMA_VERSION = 1
LOCK_TIMEOUT_ENV = "ZOO_LOCK_TIMEOUT"
_BUSY_TIMEOUT_MS = 2000


_LOW_SPACE_BYTES = 1 << 20  # below this much free space, an I/O error is reported as a full disk


_inherited: list[sqlite3.Connection] = []


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _free_bytes(folder: Path) -> int | None:
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def _decode_error(what: str, exc: BaseException) -> StoreError:
    return StoreError(f"The registry database holds a corrupt record for {what}: {type(exc).__name__}: {exc}",
                      hint="restore registry.db from a backup; `zoo verify` reports what is readable and deletes nothing")


def _lock_timeout() -> float:
    try:
        return float(os.environ.get(LOCK_TIMEOUT_ENV, "300"))
    except ValueError:
        return 300.0


# A version with its tags and aliases in one statement (no query per row: `zoo list` of 10,000 versions).
_VERSIONS = (
    "SELECT v.*,"
    " (SELECT json_group_object(t.key, t.value) FROM tags t WHERE t.name = v.name AND t.version = v.version) AS tags_json,"
    " (SELECT json_group_array(a.alias) FROM aliases a WHERE a.name = v.name AND a.version = v.version) AS aliases_json"
    " FROM versions v"
)


class SQLiteTxn:
    """:class:`~zoo.store.base.MetadataTxn` over one connection inside BEGIN ... COMMIT."""

    def __init__(self, conn: sqlite3.Connection, *, writable: bool):
        self._c = conn
        self._writable = writable

    # ------------------------------------------------------------------ reads

    def _hydrate(self, rows: list[sqlite3.Row]) -> list[ModelVersion]:
        """Rows of :data:`_VERSIONS` (a version with its tags and aliases, one statement) as records."""
        out = []
        for row in rows:
            try:
                d = json.loads(row["record"])
                d["name"], d["version"] = row["name"], row["version"]
                d["tags"] = dict(sorted(json.loads(row["tags_json"]).items()))
                d["aliases"] = tuple(sorted(json.loads(row["aliases_json"])))
                out.append(ModelVersion.from_dict(d))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise _decode_error(f"{row['name']}@{row['version']}", exc) from None
        return out

    def _one(self, sql: str, args: tuple[Any, ...]) -> ModelVersion | None:
        found = self._hydrate(self._c.execute(sql, args).fetchall())
        return found[0] if found else None

    def get(self, name: str, version: int) -> ModelVersion | None:
        return self._one(_VERSIONS + " WHERE name=? AND version=?", (name, version))

    def find(self, name: str, sha256: str) -> ModelVersion | None:
        return self._one(_VERSIONS + " WHERE name=? AND sha256=?", (name, sha256))

    def latest(self, name: str, *, framework: str | None = None) -> ModelVersion | None:
        if framework is None:
            return self._one(_VERSIONS + " WHERE name=? ORDER BY version DESC LIMIT 1", (name,))
        return self._one(_VERSIONS + " WHERE name=? AND framework=? ORDER BY version DESC LIMIT 1", (name, framework))

    def versions(self, name: str | None = None, *, framework: str | None = None, arch: str | None = None) -> list[ModelVersion]:
        where, args = [], []
        for column, value in (("name", name), ("framework", framework), ("arch", arch)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        sql = _VERSIONS + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY name, version"
        return self._hydrate(self._c.execute(sql, args).fetchall())

    def models(self) -> list[str]:
        return [n for (n,) in self._c.execute("SELECT DISTINCT name FROM versions ORDER BY name")]

    def alias_target(self, name: str, alias: str) -> int | None:
        row = self._c.execute("SELECT version FROM aliases WHERE name=? AND alias=?", (name, alias)).fetchone()
        return None if row is None else row[0]

    def digest_in_use(self, sha256: str) -> bool:
        return self._c.execute("SELECT 1 FROM versions WHERE sha256=? LIMIT 1", (sha256,)).fetchone() is not None

    def digests(self) -> set[str]:
        return {d for (d,) in self._c.execute("SELECT DISTINCT sha256 FROM versions")}

    def reports(self, name: str, version: int, kind: str | None = None) -> list[Report]:
        sql, args = "SELECT * FROM reports WHERE name=? AND version=?", [name, version]
        if kind is not None:
            sql, args = sql + " AND kind=?", args + [kind]
        out = []
        for r in self._c.execute(sql + " ORDER BY id", args):
            try:
                payload = json.loads(r["payload"])
            except ValueError as exc:
                raise _decode_error(f"a {r['kind']!r} report of {name}@{version}", exc) from None
            out.append(Report(name=r["name"], version=r["version"], kind=r["kind"], created_at=r["created_at"], payload=payload))
        return out

    # ------------------------------------------------------------------ writes

    def _need_write(self) -> None:
        if not self._writable:
            raise RuntimeError("write inside a read transaction")  # a bug in the caller, not user input

    def add_version(self, record: ModelVersion) -> ModelVersion:
        self._need_write()
        self._c.execute("INSERT INTO models(name, last_version) VALUES (?, 0) ON CONFLICT(name) DO NOTHING", (record.name,))
        (last,) = self._c.execute("SELECT last_version FROM models WHERE name=?", (record.name,)).fetchone()
        number = last + 1
        body = record.to_dict()
        for key in ("name", "version", "tags", "aliases"):
            body.pop(key, None)
        self._c.execute(
            "INSERT INTO versions(name, version, sha256, framework, arch, created_at, record) VALUES (?,?,?,?,?,?,?)",
            (record.name, number, record.sha256, record.framework, record.arch, record.created_at,
             json.dumps(body, sort_keys=True)),
        )
        self._c.execute("UPDATE models SET last_version=? WHERE name=?", (number, record.name))
        if record.tags:
            self.set_tags(record.name, number, record.tags)
        created = self.get(record.name, number)
        assert created is not None
        return created

    def delete_version(self, name: str, version: int) -> None:
        self._need_write()
        self._c.execute("DELETE FROM versions WHERE name=? AND version=?", (name, version))

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self._need_write()
        self._c.execute(
            "INSERT INTO aliases(name, alias, version) VALUES (?,?,?) ON CONFLICT(name, alias) DO UPDATE SET version=excluded.version",
            (name, alias, version),
        )

    def delete_alias(self, name: str, alias: str) -> bool:
        self._need_write()
        return self._c.execute("DELETE FROM aliases WHERE name=? AND alias=?", (name, alias)).rowcount > 0

    def set_tags(self, name: str, version: int, tags: Mapping[str, str]) -> None:
        self._need_write()
        self._c.executemany(
            "INSERT INTO tags(name, version, key, value) VALUES (?,?,?,?) "
            "ON CONFLICT(name, version, key) DO UPDATE SET value=excluded.value",
            [(name, version, k, v) for k, v in tags.items()],
        )

    def delete_tag(self, name: str, version: int, key: str) -> bool:
        self._need_write()
        return self._c.execute("DELETE FROM tags WHERE name=? AND version=? AND key=?", (name, version, key)).rowcount > 0

    def add_report(self, report: Report) -> Report:
        self._need_write()
        self._c.execute(
            "INSERT INTO reports(name, version, kind, created_at, payload) VALUES (?,?,?,?,?)",
            (report.name, report.version, report.kind, report.created_at, json.dumps(report.payload, sort_keys=True)),
        )
        return report


class SQLiteMetadataStore:
    """:class:`~zoo.store.base.MetadataStore` in one SQLite file; one connection per thread and process."""

    def __init__(self, path: Path, *, read_only: bool = False):
        self.path = Path(path)
        self.location = str(self.path)
        self.read_only = read_only
        self._local = threading.local()

    # ------------------------------------------------------------------ identity and creation

    def identity(self) -> StoreIdentity | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._store_error("read", exc) from None
        if st.st_size == 0:
            return None
        with self.read() as txn:
            conn = txn._c
            tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables:
                return None
            if "versions" not in tables or "models" not in tables:
                shown = ", ".join(sorted(tables)[:8])
                raise StoreError(
                    f"{self.location!r} is not a zoo registry database (it holds tables: {shown})",
                    hint="point --store / ZOO_STORE at a zoo store, or restore this store's registry.db from a backup",
                )
            self._schema_version(conn)
            if "store_info" not in tables:
                return StoreIdentity(LEGACY_STORE_ID)
            info = dict(conn.execute("SELECT key, value FROM store_info").fetchall())
        if "store_id" not in info:
            return StoreIdentity(LEGACY_STORE_ID)
        try:
            return StoreIdentity(store_id=str(info["store_id"]), format_version=int(info.get("format_version", 1)))
        except ValueError:
            raise _decode_error("the store identity", ValueError(repr(info))) from None

    def create(self, identity: StoreIdentity) -> None:
        if self.read_only:
            raise self._read_only_error()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            os.close(fd)
        except OSError as exc:
            raise self._store_error("create", exc) from None
        self._execute_when_free(self._conn(), "PRAGMA journal_mode=WAL")  # persistent; racing openers are fine
        with self.write() as txn:
            conn = txn._c
            self._schema_version(conn)
            for statement in _SCHEMA.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            row = conn.execute("SELECT value FROM store_info WHERE key='store_id'").fetchone()
            if row is None:
                conn.executemany("INSERT INTO store_info(key, value) VALUES (?, ?)",
                                 [("store_id", identity.store_id), ("format_version", str(identity.format_version))])
            elif row[0] != identity.store_id:
                raise StoreError(f"{self.location!r} belongs to store {row[0]}, not to store {identity.store_id}",
                                 hint="restore this store's own registry.db from a backup")

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"The registry at {self.location!r} uses schema {found}; this zoo understands up to {SCHEMA_VERSION}",
                hint="upgrade zoo (pip install -U zoo-registry)",
            )
        return found

    # ------------------------------------------------------------------ connections

    def _connect(self, *, immutable: bool = False) -> sqlite3.Connection:
        mode = "ro" if self.read_only else "rw"  # never "rwc": only create() makes a database
        query = f"mode={mode}" + ("&immutable=1" if immutable else "")
        uri = "file:" + urllib.parse.quote(str(self.path.absolute())) + "?" + query
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=True)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(min(_BUSY_TIMEOUT_MS, _lock_timeout() * 1000))}")
            conn.execute("PRAGMA foreign_keys=ON")
            if not self.read_only:
                conn.execute("PRAGMA synchronous=FULL")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the file (and its WAL index) now
        except BaseException:
            conn.close()
            raise
        return conn

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # never reuse a connection across fork
            if getattr(local, "conn", None) is not None:
                # Inherited from the parent: neither use nor close it here (closing it in a child can
                # disturb the parent's locks, a documented way to corrupt SQLite); keep it referenced.
                _inherited.append(local.conn)
            try:
                try:
                    conn = self._connect()
                except sqlite3.OperationalError:
                    if not self.read_only or not self.path.is_file():
                        raise
                    conn = self._connect(immutable=True)  # no WAL index we may create: read without locks
            except sqlite3.Error as exc:
                raise self._store_error("open", exc) from exc
            local.conn, local.pid = conn, os.getpid()
        return local.conn

    def _read_only_error(self) -> StoreError:
        return StoreError(f"The store {str(self.path.parent)!r} is read-only: it serves reads, not writes",
                          hint="run this command where the store is writable, or on a writable copy of it")

    def _store_error(self, action: str, exc: BaseException) -> ZooError:
        text = str(exc)
        if isinstance(exc, sqlite3.IntegrityError) and text.startswith("zoo: "):
            return ImmutableError(f"Refused by the registry database {self.location!r}: {text[5:]}",
                                  hint="versions, reports and the store identity never change; register a new version instead")
        name = getattr(exc, "sqlite_errorname", "") or ""
        free = _free_bytes(self.path.parent)
        if name == "SQLITE_FULL" or getattr(exc, "errno", None) == 28 or (
                name.startswith("SQLITE_IOERR") and free is not None and free < _LOW_SPACE_BYTES):
            return StoreError(f"Cannot {action} the registry database {self.location!r}: no space left on device "
                              f"({'unknown' if free is None else free} bytes free; SQLite said: {text})",
                              hint="free space on that filesystem, then retry; nothing was half-written")
        if name.startswith("SQLITE_READONLY"):
            return self._read_only_error()
        return StoreError(
            f"Cannot {action} the registry database {self.location!r}: {text}",
            hint="check that the store folder is writable, on a local disk, and that registry.db is a zoo database",
        )

    def _execute_when_free(self, conn: sqlite3.Connection, statement: str) -> None:
        """Run one lock-taking statement, waiting (with jitter) until ``ZOO_LOCK_TIMEOUT`` for busy writers."""
        deadline = time.monotonic() + _lock_timeout()
        delay = 0.001
        while True:
            try:
                conn.execute(statement)
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise self._store_error("use", exc) from exc
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"Timed out after {_lock_timeout():.0f} s waiting for the write lock of {self.location!r}",
                        hint=f"another zoo process is writing; retry, or raise {LOCK_TIMEOUT_ENV} (seconds)",
                    ) from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.05)
            except sqlite3.Error as exc:
                raise self._store_error("use", exc) from exc

    @contextmanager
    def _transaction(self, statement: str, *, writable: bool) -> Iterator[SQLiteTxn]:
        """Commit when the block exits normally; roll back otherwise. Driver errors become StoreError."""
        conn = self._conn()
        self._execute_when_free(conn, statement)
        try:
            yield SQLiteTxn(conn, writable=writable)
            conn.execute("COMMIT")
        except BaseException as exc:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # already rolled back by SQLite itself
            if isinstance(exc, sqlite3.Error):
                raise self._store_error("use", exc) from exc
            raise

    def read(self):
        return self._transaction("BEGIN", writable=False)

    def write(self):
        if self.read_only:
            raise self._read_only_error()
        return self._transaction("BEGIN IMMEDIATE", writable=True)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local = threading.local()
