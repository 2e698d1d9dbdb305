"""Registry metadata in PostgreSQL, shared by every machine that can reach the database.

One PostgreSQL schema (``zoo`` unless the URL says ``?schema=NAME``) holds one registry. The tables
mirror the embedded SQLite store; ``store`` is a one-row table with the store's identity (a random
id, also written beside the artifacts), the schema version and where the artifacts live.

- *Created and migrated explicitly*: opening never creates anything. ``zoo store init`` creates the
  schema (or migrates an older one); an uninitialised database is :class:`~zoo.errors.NotFound`,
  a schema written by a newer zoo is a :class:`~zoo.errors.StoreError`.
- *One writer at a time across machines*: every write transaction takes a transaction-scoped
  advisory lock keyed by the store id, waiting at most ``ZOO_LOCK_TIMEOUT`` seconds (``lock_timeout``).
  Version numbers come from ``models.last_version``, updated in the same transaction as the
  insert, so a rolled-back or killed writer leaves no gap and a number is never reused.
- *Immutable*: triggers refuse UPDATE on versions and reports, for hand-written SQL too.
- *Read-only roles*: a role without INSERT on ``versions`` can read everything; its writes fail
  before anything is changed, with an error naming the missing privilege.

psycopg is imported when a store is opened, never on the cold path of a local store.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import NotFound, StoreError, StoreUnavailable
from ..records import ModelVersion, Report
from .base import StoreIdentity
from .location import StoreURL, scrub

__all__ = ["SCHEMA_VERSION", "PostgresMetadataStore", "StoreInfo"]

SCHEMA_VERSION = 1
LOCK_TIMEOUT_ENV = "ZOO_LOCK_TIMEOUT"
TABLES = ("store", "models", "versions", "aliases", "tags", "reports")

def _refused_for_good(exc: BaseException) -> bool:
    """An answer from the server that retrying will not change (bad password, no such role or database)."""
    state = getattr(getattr(exc, "diag", None), "sqlstate", None) or ""
    text = str(exc).lower()
    return state.startswith("28") or state == "3D000" or any(
        s in text for s in ("authentication failed", "does not exist", "no pg_hba.conf entry", "password"))


# Connections inherited across fork: never used or closed in the child (closing would end the parent's session).
_inherited: list[Any] = []


def _lock_timeout() -> float:
    try:
        return max(0.0, float(os.environ.get(LOCK_TIMEOUT_ENV, "300")))
    except ValueError:
        return 300.0


@dataclass(frozen=True)
class StoreInfo:
    """The ``store`` row: who this store is and where its artifacts live."""

    store_id: str
    schema_version: int
    artifacts: str
    created_at: str


class PostgresTxn:
    """:class:`~zoo.store.base.MetadataTxn` on one connection inside BEGIN ... COMMIT."""

    def __init__(self, cur: Any, schema: str, *, writable: bool):
        self._cur = cur
        self._s = schema
        self._writable = writable

    def _select(self, where: str, args: tuple[Any, ...], tail: str = "ORDER BY v.name, v.version") -> list[ModelVersion]:
        s = self._s
        self._cur.execute(
            f"""SELECT v.name, v.version, v.record,
                  (SELECT json_object_agg(t.key, t.value ORDER BY t.key)::text FROM {s}.tags t
                    WHERE t.name = v.name AND t.version = v.version),
                  (SELECT array_agg(a.alias ORDER BY a.alias) FROM {s}.aliases a
                    WHERE a.name = v.name AND a.version = v.version)
                FROM {s}.versions v {where} {tail}""",
            args,
        )
        out = []
        for name, number, record, tags, aliases in self._cur.fetchall():
            d = json.loads(record)
            d["name"], d["version"] = name, number
            d["tags"] = json.loads(tags) if tags else {}
            d["aliases"] = tuple(aliases or ())
            out.append(ModelVersion.from_dict(d))
        return out

    def _one(self, where: str, args: tuple[Any, ...], tail: str = "") -> ModelVersion | None:
        found = self._select(where, args, tail or "LIMIT 1")
        return found[0] if found else None

    def get(self, name: str, version: int) -> ModelVersion | None:
        return self._one("WHERE v.name = %s AND v.version = %s", (name, version))

    def find(self, name: str, sha256: str) -> ModelVersion | None:
        return self._one("WHERE v.name = %s AND v.sha256 = %s", (name, sha256))

    def latest(self, name: str, *, framework: str | None = None) -> ModelVersion | None:
        if framework is None:
            return self._one("WHERE v.name = %s", (name,), "ORDER BY v.version DESC LIMIT 1")
        return self._one("WHERE v.name = %s AND v.framework = %s", (name, framework), "ORDER BY v.version DESC LIMIT 1")

    def versions(self, name: str | None = None, *, framework: str | None = None, arch: str | None = None) -> list[ModelVersion]:
        where, args = [], []
        for column, value in (("name", name), ("framework", framework), ("arch", arch)):
            if value is not None:
                where.append(f"v.{column} = %s")
                args.append(value)
        return self._select(("WHERE " + " AND ".join(where)) if where else "", tuple(args))

    def models(self) -> list[str]:
        self._cur.execute(f"SELECT DISTINCT name FROM {self._s}.versions ORDER BY name")
        return [n for (n,) in self._cur.fetchall()]

    def alias_target(self, name: str, alias: str) -> int | None:
        self._cur.execute(f"SELECT version FROM {self._s}.aliases WHERE name = %s AND alias = %s", (name, alias))
        row = self._cur.fetchone()
        return None if row is None else int(row[0])

    def digest_in_use(self, sha256: str) -> bool:
        self._cur.execute(f"SELECT 1 FROM {self._s}.versions WHERE sha256 = %s LIMIT 1", (sha256,))
        return self._cur.fetchone() is not None

    def digests(self) -> set[str]:
        self._cur.execute(f"SELECT DISTINCT sha256 FROM {self._s}.versions")
        return {d for (d,) in self._cur.fetchall()}

    def reports(self, name: str, version: int, kind: str | None = None) -> list[Report]:
        sql = f"SELECT name, version, kind, created_at, payload FROM {self._s}.reports WHERE name = %s AND version = %s"
        args: tuple[Any, ...] = (name, version)
        if kind is not None:
            sql, args = sql + " AND kind = %s", args + (kind,)
        self._cur.execute(sql + " ORDER BY id", args)
        return [Report(name=n, version=v, kind=k, created_at=c, payload=json.loads(p)) for n, v, k, c, p in self._cur.fetchall()]

    # ------------------------------------------------------------------ writes

    def _need_write(self) -> None:
        if not self._writable:
            raise RuntimeError("write inside a read transaction")  # a bug in the caller, not user input

    def add_version(self, record: ModelVersion) -> ModelVersion:
        self._need_write()
        s, cur = self._s, self._cur
        cur.execute(f"INSERT INTO {s}.models(name, last_version) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING", (record.name,))
        cur.execute(f"UPDATE {s}.models SET last_version = last_version + 1 WHERE name = %s RETURNING last_version", (record.name,))
        (number,) = cur.fetchone()
        body = record.to_dict()
        for key in ("name", "version", "tags", "aliases"):
            body.pop(key, None)
        cur.execute(
            f"INSERT INTO {s}.versions(name, version, sha256, framework, arch, created_at, record) VALUES (%s,%s,%s,%s,%s,%s,%s)",
            (record.name, number, record.sha256, record.framework, record.arch, record.created_at, json.dumps(body, sort_keys=True)),
        )
        if record.tags:
            self.set_tags(record.name, number, record.tags)
        created = self.get(record.name, number)
        assert created is not None
        return created

    def delete_version(self, name: str, version: int) -> None:
        self._need_write()
        self._cur.execute(f"DELETE FROM {self._s}.versions WHERE name = %s AND version = %s", (name, version))

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self._need_write()
        self._cur.execute(
            f"INSERT INTO {self._s}.aliases(name, alias, version) VALUES (%s,%s,%s) "
            "ON CONFLICT (name, alias) DO UPDATE SET version = EXCLUDED.version", (name, alias, version))

    def delete_alias(self, name: str, alias: str) -> bool:
        self._need_write()
        self._cur.execute(f"DELETE FROM {self._s}.aliases WHERE name = %s AND alias = %s", (name, alias))
        return self._cur.rowcount > 0

    def set_tags(self, name: str, version: int, tags: Mapping[str, str]) -> None:
        self._need_write()
        self._cur.executemany(
            f"INSERT INTO {self._s}.tags(name, version, key, value) VALUES (%s,%s,%s,%s) "
            "ON CONFLICT (name, version, key) DO UPDATE SET value = EXCLUDED.value",
            [(name, version, k, v) for k, v in tags.items()])

    def delete_tag(self, name: str, version: int, key: str) -> bool:
        self._need_write()
        self._cur.execute(f"DELETE FROM {self._s}.tags WHERE name = %s AND version = %s AND key = %s", (name, version, key))
        return self._cur.rowcount > 0

    def add_report(self, report: Report) -> Report:
        self._need_write()
        self._cur.execute(
            f"INSERT INTO {self._s}.reports(name, version, kind, created_at, payload) VALUES (%s,%s,%s,%s,%s)",
            (report.name, report.version, report.kind, report.created_at, json.dumps(report.payload, sort_keys=True)))
        return report


class PostgresMetadataStore:
    """:class:`~zoo.store.base.MetadataStore` in a PostgreSQL schema; one connection per thread and process."""

    def __init__(self, url: StoreURL, *, check: bool = True):
        self.url = url
        self.location = url.shown
        self._s = f'"{url.schema}"'  # validated against SCHEMA_PATTERN: safe to quote and interpolate
        self._local = threading.local()
        self._writable: bool | None = None
        self._info: StoreInfo | None = None
        if check:
            self._info = self.info()

    # ------------------------------------------------------------------ connections and errors

    def _conn(self) -> Any:
        local = self._local
        if getattr(local, "pid", None) != os.getpid() or local.conn.closed:
            if getattr(local, "pid", None) not in (None, os.getpid()):
                _inherited.append(local.conn)
            conn = self._connect()
            local.conn, local.pid = conn, os.getpid()
        return local.conn

    def _connect(self) -> Any:
        """A new connection, within ``ZOO_CONNECT_TIMEOUT`` seconds per attempt and ``ZOO_RETRIES`` retries with
        back-off (see :mod:`zoo.store._network`); a server that stops answering is noticed by TCP keepalives and
        ``tcp_user_timeout``. No answer at all is :class:`~zoo.errors.StoreUnavailable`."""
        import time

        import psycopg

        from . import _network

        timeout, retries = _network.connect_timeout(), _network.retries()
        for attempt in range(retries + 1):
            try:
                return psycopg.connect(self.url.conninfo, autocommit=True, connect_timeout=max(1, round(timeout)),
                                       application_name="zoo", keepalives=1, keepalives_idle=max(1, round(timeout)),
                                       keepalives_interval=1, keepalives_count=3,
                                       tcp_user_timeout=int(_network.read_timeout() * 1000))
            except psycopg.OperationalError as exc:
                if attempt < retries and not _refused_for_good(exc):
                    time.sleep(_network.backoff(attempt))
                    continue
                unreachable = not _refused_for_good(exc)
                tries = f" ({attempt + 1} attempt{'s' if attempt else ''} of {timeout:g} s)" if unreachable else ""
                message = f"Cannot connect to the registry database {self.location}{tries}: {self._scrub(exc)}"
                hint = ("check the host, port, user and password in the URL (or PGPASSWORD / ~/.pgpass), and that the "
                        "server accepts connections from this machine")
                if unreachable:
                    raise StoreUnavailable(message, service="postgresql", hint=hint + "; versions in the local cache "
                                           f"still load by sha256 (and aliases with allow_stale / {_network.OFFLINE_ENV}=1); "
                                           f"{_network.CONNECT_TIMEOUT_ENV} and {_network.RETRIES_ENV} set how long zoo "
                                           "waits") from None
                raise StoreError(message, hint=hint) from None
            except psycopg.Error as exc:
                raise StoreError(f"Cannot connect to the registry database {self.location}: {self._scrub(exc)}",
                                 hint="check the URL's parameters") from None
        raise AssertionError("unreachable")

    def _scrub(self, exc: BaseException) -> str:
        return scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, self.url.conninfo)

    def _error(self, exc: BaseException, action: str = "use") -> StoreError | NotFound:
        import psycopg.errors as pe

        text = self._scrub(exc)
        if isinstance(exc, pe.OperationalError) and not getattr(exc, "sqlstate", None):  # the connection was lost
            return StoreUnavailable(f"Lost the connection to the registry database {self.location}: {text}",
                                    hint="check that the server is up; versions in the local cache still load by sha256",
                                    service="postgresql")
        if isinstance(exc, (pe.UndefinedTable, pe.InvalidSchemaName)):
            return NotFound(f"No zoo registry in the database {self.location} (schema {self.url.schema!r} has no zoo tables)",
                            hint=f"create it with `zoo store init {self.location} --artifacts s3://BUCKET/PREFIX`")
        if isinstance(exc, pe.InsufficientPrivilege):
            return StoreError(f"The PostgreSQL role may not {action} the registry at {self.location}: {text}",
                              hint=f"grant it access: `zoo store init {self.location} --grant-read ROLE` (or --grant-write ROLE)")
        if isinstance(exc, pe.LockNotAvailable):
            return StoreError(f"Timed out after {_lock_timeout():.0f} s waiting for the write lock of {self.location}",
                              hint=f"another zoo process is writing; retry, or raise {LOCK_TIMEOUT_ENV} (seconds)")
        if isinstance(exc, pe.ReadOnlySqlTransaction):
            return StoreError(f"The registry database {self.location} is read-only here: {text}",
                              hint="write through the primary server, not a read replica")
        return StoreError(f"Cannot {action} the registry database {self.location}: {text}",
                          hint="check that the server is up and the URL names a zoo store (`zoo store info URL`)")

    @contextmanager
    def _transaction(self, begin: str, *, writable: bool) -> Iterator[PostgresTxn]:
        import psycopg

        conn = self._conn()
        try:
            cur = conn.cursor()
            cur.execute(begin)
        except psycopg.Error as exc:
            self._drop(conn)
            if not isinstance(exc, psycopg.OperationalError) or getattr(exc, "sqlstate", None):
                raise self._error(exc) from None
            conn = self._conn()  # a connection the server dropped (a restart): one new connection, once
            try:
                cur = conn.cursor()
                cur.execute(begin)
            except psycopg.Error as again:
                self._drop(conn)
                raise self._error(again) from None
        try:
            if writable:
                self._begin_write(cur)
            yield PostgresTxn(cur, self._s, writable=writable)
            cur.execute("COMMIT")
        except BaseException as exc:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                self._drop(conn)  # the session is gone or broken: the server rolls back on its own
            if isinstance(exc, psycopg.Error):
                raise self._error(exc, "write" if writable else "read") from None
            raise

    def _drop(self, conn: Any) -> None:
        try:
            conn.close()
        except Exception:  # (closing a broken connection must not mask the real error)
            pass
        self._local = threading.local()

    @property
    def read_only_reason(self) -> str | None:
        if self.writable:
            return None
        return (f"The registry at {self.location} is read-only for this PostgreSQL role: it lacks the INSERT privilege "
                f"on {self.url.schema}.versions")

    def _begin_write(self, cur: Any) -> None:
        why = self.read_only_reason
        if why:
            raise StoreError(why, hint=f"write with a role that may (`zoo store init {self.location} --grant-write ROLE`); "
                                       "reading works as is")
        cur.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(_lock_timeout() * 1000)}ms",))
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key(),))

    def _lock_key(self) -> int:
        info = self._info or self.info()
        return int.from_bytes(hashlib.sha256(f"zoo-write:{info.store_id}".encode()).digest()[:8], "big", signed=True)

    # ------------------------------------------------------------------ the protocol

    def read(self):
        return self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", writable=False)

    def write(self):
        return self._transaction("BEGIN", writable=True)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local = threading.local()

    # ------------------------------------------------------------------ identity, privileges, set-up

    def info(self) -> StoreInfo:
        """The store row; NotFound on an uninitialised database, StoreError on a schema from a newer zoo."""
        import psycopg

        conn = self._conn()
        try:
            row = conn.execute(f"SELECT store_id, schema_version, artifacts, created_at FROM {self._s}.store").fetchone()
        except psycopg.Error as exc:
            raise self._error(exc, "read") from None
        if row is None:
            raise NotFound(f"The zoo registry in {self.location} has no identity row (an interrupted `zoo store init`?)",
                           hint=f"run `zoo store init {self.location} --artifacts ...` again")
        info = StoreInfo(store_id=row[0], schema_version=int(row[1]), artifacts=row[2], created_at=row[3])
        if info.schema_version > SCHEMA_VERSION:
            raise StoreError(f"The registry at {self.location} uses schema {info.schema_version}; this zoo understands "
                             f"up to {SCHEMA_VERSION}", hint="upgrade zoo (pip install -U zoo-registry)")
        if info.schema_version < SCHEMA_VERSION:
            raise StoreError(f"The registry at {self.location} uses schema {info.schema_version}, older than this zoo's "
                             f"{SCHEMA_VERSION}", hint=f"migrate it once with `zoo store init {self.location}`")
        return info

    # The MetadataStore protocol's identity half: `zoo store init` creates the store, never a write.

    @property
    def read_only(self) -> bool:
        return not self.writable

    def identity(self) -> StoreIdentity | None:
        """The id `zoo store init` recorded; an uninitialised database is NotFound naming that command."""
        return StoreIdentity(self.info().store_id)

    def create(self, identity: StoreIdentity) -> None:
        recorded = self.info().store_id
        if recorded != identity.store_id:
            raise StoreError(f"The registry in {self.location} belongs to store {recorded}, not to {identity.store_id}",
                             hint="pair the database with the artifacts given to its `zoo store init`")

    @property
    def writable(self) -> bool:
        """Whether this role may write versions (checked once per store object)."""
        if self._writable is None:
            import psycopg

            try:
                row = self._conn().execute("SELECT has_table_privilege(%s, 'INSERT')", (f"{self._s}.versions",)).fetchone()
            except psycopg.Error as exc:
                raise self._error(exc, "read") from None
            self._writable = bool(row[0])
        return self._writable

    def initialise(self, artifacts: str | None) -> tuple[StoreInfo, str]:
        """Create the schema, or migrate an older one; idempotent. Returns (info, what was done)."""
        from ._pg_schema import initialise

        done = initialise(self, artifacts)
        self._info = self.info()
        return self._info, done

    def grant(self, role: str, *, write: bool) -> None:
        """Let ``role`` read (SELECT) or also write (INSERT, UPDATE, DELETE) this store's tables."""
        from ._pg_schema import grant

        grant(self, role, write=write)
