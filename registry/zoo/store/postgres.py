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
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import ImmutableError, NotFound, StoreError, StoreUnavailable
from ._pg_schema import SCHEMA_VERSION, create_statements, dialect, migration_statements
from ._sql import SQLTxn
from .base import StoreIdentity
from .location import StoreURL, scrub

__all__ = ["SCHEMA_VERSION", "PostgresMetadataStore", "StoreInfo"]
LOCK_TIMEOUT_ENV = "ZOO_LOCK_TIMEOUT"
CONNECT_TIMEOUT_S = 10
TABLES = ("store", "models", "versions", "aliases", "tags", "reports", "alias_events")

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


class PostgresMetadataStore:
    """:class:`~zoo.store.base.MetadataStore` in a PostgreSQL schema; one connection per thread and process."""

    def __init__(self, url: StoreURL, *, check: bool = True):
        self.url = url
        self.location = url.shown
        self._s = f'"{url.schema}"'  # validated against SCHEMA_PATTERN: safe to quote and interpolate
        self._dialect = dialect(url.schema)
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

    def _error(self, exc: BaseException, action: str = "use") -> StoreError | NotFound | ImmutableError:
        import psycopg.errors as pe

        text = self._scrub(exc)
        if isinstance(exc, pe.OperationalError) and not getattr(exc, "sqlstate", None):  # the connection was lost
            return StoreUnavailable(f"Lost the connection to the registry database {self.location}: {text}",
                                    hint="check that the server is up; versions in the local cache still load by sha256",
                                    service="postgresql")
        if isinstance(exc, pe.RaiseException) and text.startswith("zoo: "):
            return ImmutableError(f"Refused by the registry database {self.location}: {text[5:]}",
                                  hint="versions, reports and alias history never change; register a new version instead")
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
    def _transaction(self, begin: str, *, writable: bool) -> Iterator[SQLTxn]:
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
            info = self._info or self.info()
            yield SQLTxn(cur, self._dialect, writable=writable, history=info.schema_version >= 2,
                         events=info.schema_version >= 3, source=f"zoo:{self.location}")
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
        info = self._info or self.info()
        if info.schema_version < SCHEMA_VERSION:
            raise StoreError(f"The registry at {self.location} uses schema {info.schema_version}, older than this zoo's "
                             f"{SCHEMA_VERSION}: it serves reads, and writes wait for its migration",
                             hint=f"migrate it once with `zoo store init {self.location}` (a role that may create tables)")
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
        return info  # an older schema serves reads; writes ask for its migration (see _begin_write)

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
        """Create the schema, or migrate an older one, under a lock (concurrent inits are safe); idempotent.
        Returns (info, what was done: "created", "migrated" or "unchanged")."""
        import psycopg

        conn = self._conn()
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"zoo-init:{self.url.schema}",))
                exists = conn.execute("SELECT to_regclass(%s)", (f"{self._s}.store",)).fetchone()[0]
                if exists is None:
                    done = self._create_schema(conn, artifacts)
                else:
                    (found,) = conn.execute(f"SELECT schema_version FROM {self._s}.store").fetchone()
                    if found > SCHEMA_VERSION:
                        raise StoreError(f"The registry at {self.location} uses schema {found}; this zoo understands up "
                                         f"to {SCHEMA_VERSION}", hint="upgrade zoo (pip install -U zoo-registry)")
                    for target in range(found + 1, SCHEMA_VERSION + 1):
                        for statement in migration_statements(self.url.schema, target):
                            conn.execute(statement)
                        conn.execute(f"UPDATE {self._s}.store SET schema_version = %s", (target,))
                    done = "migrated" if found < SCHEMA_VERSION else "unchanged"
        except psycopg.Error as exc:
            raise self._error(exc, "initialise") from None
        self._info = self.info()
        return self._info, done

    def _create_schema(self, conn: Any, artifacts: str | None) -> str:
        if not artifacts:
            raise StoreError(f"Creating the registry at {self.location} needs an artifacts location",
                             hint="add --artifacts s3://BUCKET/PREFIX (or a shared folder), or set ZOO_ARTIFACTS")
        for statement in create_statements(self.url.schema):
            conn.execute(statement)
        conn.execute(f"INSERT INTO {self._s}.store(store_id, schema_version, artifacts, created_at) VALUES (%s,%s,%s,%s)",
                     (uuid.uuid4().hex, SCHEMA_VERSION, artifacts, datetime.now(timezone.utc).isoformat(timespec="seconds")))
        return "created"

    def grant(self, role: str, *, write: bool) -> None:
        """Let ``role`` read (SELECT) or also write (INSERT, UPDATE, DELETE) this store's tables."""
        import psycopg
        from psycopg import sql

        privileges = "SELECT, INSERT, UPDATE, DELETE" if write else "SELECT"
        schema, who = sql.Identifier(self.url.schema), sql.Identifier(role)
        conn = self._conn()
        try:
            with conn.transaction():
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, who))
                conn.execute(sql.SQL("GRANT " + privileges + " ON ALL TABLES IN SCHEMA {} TO {}").format(schema, who))
                if write:
                    conn.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(schema, who))
        except psycopg.Error as exc:
            raise self._error(exc, "grant access to") from None
