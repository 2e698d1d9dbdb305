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

import getpass
import os
import random
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ImmutableError, StoreError, ZooError
from ._sql import SQLTxn, _decode_error
from ._sqlite_schema import DIALECT, SCHEMA, SCHEMA_VERSION
from .base import LEGACY_STORE_ID, StoreIdentity

__all__ = ["SCHEMA_VERSION", "SQLiteMetadataStore"]

_SCHEMA = ";\n".join(SCHEMA)  # the whole schema as one script (tests recreate old stores from it)
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


def _os_user() -> str:
    """Who moves an alias on the embedded store: the OS user (the uid when it has no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError, ImportError):
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def _lock_timeout() -> float:
    try:
        return float(os.environ.get(LOCK_TIMEOUT_ENV, "300"))
    except ValueError:
        return 300.0


class SQLiteMetadataStore:
    """:class:`~zoo.store.base.MetadataStore` in one SQLite file; one connection per thread and process."""

    def __init__(self, path: Path, *, read_only: bool = False):
        self.path = Path(path)
        self.location = str(self.path)
        self.read_only = read_only
        self._local = threading.local()
        self._actor = _os_user()

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
            self._migrate(conn, force=True)
            row = conn.execute("SELECT value FROM store_info WHERE key='store_id'").fetchone()
            if row is None:
                conn.executemany("INSERT INTO store_info(key, value) VALUES (?, ?)",
                                 [("store_id", identity.store_id), ("format_version", str(identity.format_version))])
            elif row[0] != identity.store_id:
                raise StoreError(f"{self.location!r} belongs to store {row[0]}, not to store {identity.store_id}",
                                 hint="restore this store's own registry.db from a backup")

    def _migrate(self, conn: sqlite3.Connection, *, force: bool = False) -> None:
        """Inside a write transaction: bring a zoo database of an older schema up to this one (every
        statement is idempotent). ``force``: also create the tables of a new, empty database."""
        if self._schema_version(conn) >= SCHEMA_VERSION and not force:
            return
        if not force and conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='versions'").fetchone() is None:
            return  # not a zoo database (yet): identity() says what it is
        for statement in SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

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
    def _transaction(self, statement: str, *, writable: bool) -> Iterator[SQLTxn]:
        """Commit when the block exits normally; roll back otherwise. Driver errors become StoreError.
        A write transaction first migrates an older schema (under the write lock)."""
        conn = self._conn()
        self._execute_when_free(conn, statement)
        try:
            if writable:
                self._migrate(conn)
            schema = conn.execute("PRAGMA user_version").fetchone()[0]  # older stores: no alias events, policies...
            yield SQLTxn(conn, DIALECT, writable=writable, actor=self._actor, history=schema >= 2, events=schema >= 3,
                         source=f"zoo:{self.location}")
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
