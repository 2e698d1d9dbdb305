"""One SQL layer for both metadata stores: every statement is written once, here.

SQLite and PostgreSQL differ only in what a :class:`Dialect` says: the placeholder (``?`` / ``%s``),
the prefix of table names (none / ``"schema".``), four expressions (JSON aggregation of tags and
aliases, reading a field of the stored record, the column type of an identity key) and, on
PostgreSQL, the ``NOTIFY`` sent with an alias move. Statements use ``{p}`` for the prefix and ``?``
for parameters, and contain no ``%``.

:class:`SQLTxn` implements :class:`~zoo.store.base.MetadataTxn` over a DB-API object with
``execute`` / ``executemany`` (a ``sqlite3.Connection`` or a ``psycopg`` cursor) inside a
transaction the store opened.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, StoreError
from ..gates import BENCH_ROWS, BENCH_SIDE, METRICS, OPS, Requirement
from ..records import AliasEvent, ModelVersion, Report, Transform, VersionRow

if TYPE_CHECKING:
    from ..labels import Labels

__all__ = ["ALIAS_CHANNEL", "Dialect", "Filters", "SQLTxn", "tables_ddl"]

ALIAS_CHANNEL = "zoo_alias"  # PostgreSQL NOTIFY channel of alias moves (see zoo.store.base)
_NOTIFY_MAX_BYTES = 7000


@dataclass(frozen=True)
class Dialect:
    """What differs between the two databases; everything else is shared text."""

    param: str  # "?" or "%s"
    prefix: str  # "" or '"schema".'
    tags_json: str  # JSON object text of (t.key, t.value) rows
    aliases_json: str  # JSON array text of a.alias rows
    record_field: str  # text of a field of a JSON column: {col}, and {path} ('$.a.b' or '{a,b}', see field())
    json_rows: str  # the elements of a JSON array in a column, as rows with a `value` column: {col}, {path}
    json_true: str  # what record_field gives for a JSON true
    json_valid: str  # whether {col} holds JSON that record_field can read (PostgreSQL: its cast fails loudly instead)
    identity: str  # column type of an auto-numbered primary key
    actor: str  # SQL expression (or "?" for a parameter) naming who writes
    notify: str | None = None  # statement sending an alias event (one parameter: its JSON), or None
    schema: str | None = None  # named in notifications (one channel serves every store in a database)

    def sql(self, statement: str) -> str:
        return _render(self, statement)

    def field(self, column: str, dotted: str) -> str:
        return self.record_field.replace("{col}", column).replace("{path}", self._path(dotted))

    def rows(self, column: str, dotted: str) -> str:
        return self.json_rows.replace("{col}", column).replace("{path}", self._path(dotted))

    def _path(self, dotted: str) -> str:
        return "$." + dotted if self.param == "?" else "{" + dotted.replace(".", ",") + "}"


@lru_cache(maxsize=512)
def _render(dialect: Dialect, statement: str) -> str:
    text = (statement.replace("{tags}", dialect.tags_json).replace("{aliases}", dialect.aliases_json)
            .replace("{precision}", _PRECISION.replace("{record_precision}", dialect.field("v.record", "provenance.precision")))
            .replace("{p}", dialect.prefix).replace("{identity}", dialect.identity))
    return text if dialect.param == "?" else text.replace("?", dialect.param)


def tables_ddl(dialect: Dialect) -> list[str]:
    """The tables and indexes both stores share (CREATE ... IF NOT EXISTS: also a migration)."""
    return [dialect.sql(s) for s in _TABLES]


_TABLES = (
    """CREATE TABLE IF NOT EXISTS {p}models (
    name          TEXT PRIMARY KEY,
    last_version  INTEGER NOT NULL            -- numbers are never reused, even after a removal
)""",
    """CREATE TABLE IF NOT EXISTS {p}versions (
    name        TEXT NOT NULL REFERENCES {p}models(name),
    version     INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    framework   TEXT,
    arch        TEXT,
    created_at  TEXT NOT NULL,
    record      TEXT NOT NULL,                -- the immutable ModelVersion as JSON (no tags/aliases)
    PRIMARY KEY (name, version),
    UNIQUE (name, sha256)
)""",
    "CREATE INDEX IF NOT EXISTS versions_sha256 ON {p}versions(sha256)",
    """CREATE TABLE IF NOT EXISTS {p}aliases (
    name     TEXT NOT NULL,
    alias    TEXT NOT NULL,
    version  INTEGER NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES {p}versions(name, version) ON DELETE CASCADE
)""",
    """CREATE TABLE IF NOT EXISTS {p}tags (
    name     TEXT NOT NULL,
    version  INTEGER NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (name, version, key),
    FOREIGN KEY (name, version) REFERENCES {p}versions(name, version) ON DELETE CASCADE
)""",
    """CREATE TABLE IF NOT EXISTS {p}reports (
    id          {identity},
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    payload     TEXT NOT NULL,
    FOREIGN KEY (name, version) REFERENCES {p}versions(name, version) ON DELETE CASCADE
)""",
    "CREATE INDEX IF NOT EXISTS reports_version ON {p}reports(name, version)",
    # schema 2: search in the store (a tag or alias filter is an index lookup) and alias history
    "CREATE INDEX IF NOT EXISTS tags_key_value ON {p}tags(key, value)",
    "CREATE INDEX IF NOT EXISTS aliases_alias ON {p}aliases(alias)",
    "CREATE INDEX IF NOT EXISTS versions_arch ON {p}versions(arch)",
    """CREATE TABLE IF NOT EXISTS {p}alias_events (
    id            {identity},
    name          TEXT NOT NULL,
    alias         TEXT NOT NULL,
    at            TEXT NOT NULL,              -- ISO 8601 UTC; never before the previous event of the alias
    actor         TEXT NOT NULL,              -- the OS user (embedded) or the PostgreSQL role (shared)
    from_version  INTEGER,                    -- NULL: the alias was set for the first time
    to_version    INTEGER,                    -- NULL: the alias was deleted
    reason        TEXT,
    forced        INTEGER NOT NULL,           -- 1: a gate was overridden
    policy        TEXT                        -- JSON: the gate's verdict, when a policy checked the move
)""",
    "CREATE INDEX IF NOT EXISTS alias_events_alias ON {p}alias_events(name, alias, id)",
    # schema 3: gated aliases (a policy per alias) and registry events with their webhook deliveries (an outbox)
    """CREATE TABLE IF NOT EXISTS {p}alias_policies (
    name     TEXT NOT NULL,
    alias    TEXT NOT NULL,
    require  TEXT NOT NULL,                   -- JSON array of requirement texts (zoo.gates)
    set_at   TEXT NOT NULL,
    PRIMARY KEY (name, alias)
)""",
    """CREATE TABLE IF NOT EXISTS {p}events (
    id        {identity},                     -- the log's order
    event_id  TEXT NOT NULL UNIQUE,           -- the CloudEvent id receivers de-duplicate by
    type      TEXT NOT NULL,
    subject   TEXT NOT NULL,
    at        TEXT NOT NULL,
    body      TEXT NOT NULL                   -- the CloudEvent, JSON
)""",
    """CREATE TABLE IF NOT EXISTS {p}webhooks (
    id          {identity},
    url         TEXT NOT NULL,
    secret      TEXT,
    types       TEXT NOT NULL,                -- JSON array of event types; [] = every type
    created_at  TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS {p}deliveries (
    event         BIGINT NOT NULL,
    webhook       BIGINT NOT NULL REFERENCES {p}webhooks(id) ON DELETE CASCADE,
    attempts      INTEGER NOT NULL,
    next_at       TEXT NOT NULL,
    delivered_at  TEXT,
    last_error    TEXT,
    PRIMARY KEY (event, webhook)
)""",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON {p}deliveries(delivered_at, next_at)",
    # schema 4: class names stored once per list, not in every version's record (a 1000-name list is 14 KB of JSON:
    # `zoo list` parsed 14 MB for 1,000 versions of ImageNet models)
    """CREATE TABLE IF NOT EXISTS {p}labels (
    sha256   TEXT PRIMARY KEY,                -- zoo.labels.Labels.sha256 of the names
    classes  TEXT NOT NULL                    -- JSON array of the class names, by output index
)""",
)

# A version's precision as zoo.convert records it: its `precision` tag, else provenance, else fp32.
_PRECISION = ("COALESCE((SELECT t.value FROM {p}tags t WHERE t.name = v.name AND t.version = v.version"
              " AND t.key = 'precision'), {record_precision}, 'fp32')")

# A version with its tags and aliases in one statement (no query per row: `zoo list` of 10,000 versions).
_VERSIONS = (
    "SELECT v.name, v.version, v.record,"
    " (SELECT {tags} FROM {p}tags t WHERE t.name = v.name AND t.version = v.version),"
    " (SELECT {aliases} FROM {p}aliases a WHERE a.name = v.name AND a.version = v.version)"
    " FROM {p}versions v"
)
_EVENT_COLUMNS = "id, name, alias, at, actor, from_version, to_version, reason, forced, policy"


@dataclass(frozen=True)
class Filters:
    """What :meth:`SQLTxn.versions` selects on; every field given must match (None: any)."""

    name: str | None = None
    framework: str | None = None
    arch: str | None = None
    tags: tuple[tuple[str, str], ...] = ()  # (key, value) pairs, all required
    alias: str | None = None
    precision: str | None = None
    created_until: str | None = None  # ISO 8601 UTC: versions created at or before it
    reports: tuple[Requirement, ...] = ()  # zoo.gates.parse_search: met by the version's newest report of each kind

    def where(self, dialect: Dialect) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (("name", self.name), ("framework", self.framework), ("arch", self.arch)):
            if value is not None:
                clauses.append(f"v.{column} = ?")
                args.append(value)
        # Row-value IN over an indexed lookup: the database starts from the few matching tag/alias rows
        # (indexes tags_key_value, aliases_alias) instead of testing every version.
        for key, value in self.tags:
            clauses.append("(v.name, v.version) IN (SELECT t.name, t.version FROM {p}tags t WHERE t.key = ? AND t.value = ?)")
            args += [key, value]
        if self.alias is not None:
            clauses.append("(v.name, v.version) IN (SELECT a.name, a.version FROM {p}aliases a WHERE a.alias = ?)")
            args.append(self.alias)
        if self.precision is not None:
            clauses.append("{precision} = ?")
            args.append(self.precision)
        if self.created_until is not None:
            clauses.append("v.created_at <= ?")
            args.append(self.created_until)
        for req in self.reports:
            clauses.append(_report_clause(req, dialect))
            args += [req.kind] if req.metric is None else [req.kind, req.value]
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


_NEWEST_REPORT = ("(SELECT {figure} FROM {p}reports r WHERE r.name = v.name AND r.version = v.version AND r.kind = ?"
                  " ORDER BY r.id DESC LIMIT 1)")


def _report_clause(req: Requirement, d: Dialect) -> str:
    """SQL testing ``req`` on the newest report of its kind, as :func:`zoo.gates.check` reads an absolute requirement:
    ``passed`` is true; an eval figure at the top of the payload; a bench figure in the row of the smallest batch
    size. Placeholders: the kind, then the bound."""
    if req.metric is None:
        return _NEWEST_REPORT.replace("{figure}", d.field("r.payload", "passed")) + f" = {d.json_true}"
    assert req.op in OPS  # parse_requirement's operators: safe to put in the statement
    field = METRICS[req.metric][1]
    if req.kind == "bench":
        figure = (f"(SELECT {d.field('b.value', f'{BENCH_SIDE}.{field}')} FROM {d.rows('r.payload', BENCH_ROWS)} b"
                  f" ORDER BY CAST({d.field('b.value', 'batch')} AS INTEGER) LIMIT 1)")
    else:
        figure = d.field("r.payload", field)
    return f"CAST({_NEWEST_REPORT.replace('{figure}', figure)} AS DOUBLE PRECISION) {req.op} ?"


def _decode_error(what: str, exc: BaseException) -> StoreError:
    return StoreError(f"The registry database holds a corrupt record for {what}: {type(exc).__name__}: {exc}",
                      hint="restore the registry database from a backup; `zoo verify` reports what is readable and "
                           "deletes nothing")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class SQLTxn:
    """:class:`~zoo.store.base.MetadataTxn` over ``conn`` (``execute``/``executemany``) inside a transaction."""

    def __init__(self, conn: Any, dialect: Dialect, *, writable: bool, actor: str = "", history: bool = True,
                 events: bool = True, source: str = "zoo"):
        self._c = conn
        self._d = dialect
        self._writable = writable
        self._actor = actor  # the OS user, for a dialect whose actor is a parameter
        self._history = history  # False on an older schema without alias_events (read as "no events")
        self._events = events  # False on a schema older than 3 (no policies, events or webhooks: read as none)
        self._source = source  # the CloudEvents source of this store's events
        self.emitted: list[int] = []  # log ids of the events this transaction queued for a webhook
        self._shared: dict[tuple[str, ...], Any] = {}  # labels and transforms read in this transaction (_once)

    def _x(self, statement: str, args: Any = ()) -> Any:
        return self._c.execute(self._d.sql(statement), tuple(args))

    # ------------------------------------------------------------------ reads

    def _hydrate(self, rows: list[Any]) -> list[ModelVersion]:
        out = []
        for name, number, record, tags, aliases in rows:
            try:
                d = json.loads(record)
                d["name"], d["version"] = name, number
                d["tags"] = dict(sorted(json.loads(tags).items())) if tags else {}
                d["aliases"] = tuple(sorted(json.loads(aliases))) if aliases else ()
                if (labels := d.get("labels")) is not None and "classes" not in labels:  # schema 4: by reference
                    d["labels"] = self._once(("labels", str(labels["name"]), str(labels["sha256"])),
                                             lambda: self._read_labels(labels))
                if (transform := d.get("transform")) is not None:
                    d["transform"] = self._once(("transform", repr(transform)), lambda: Transform.from_dict(transform))
                out.append(ModelVersion.from_dict(d))
            except (ValueError, TypeError, KeyError, AttributeError, InvalidInput) as exc:  # a stored record that
                # fails the checks a new one passes is corrupt too
                raise _decode_error(f"{name}@{number}", exc) from None
        return out

    def _once(self, key: tuple[str, ...], make: Callable[[], Any]) -> Any:
        """One object per key per transaction: versions share a few label lists and transforms, read and checked once."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    def _read_labels(self, ref: Mapping[str, Any]) -> Labels:
        """The :class:`Labels` a record names by ``{name, sha256, count}``: the ``labels`` table's row, checked."""
        from ..labels import Labels

        row = self._x("SELECT classes FROM {p}labels WHERE sha256 = ?", (ref["sha256"],)).fetchone()
        if row is None:
            raise KeyError(f"labels {str(ref['sha256'])[:12]} are not in the store")
        found = Labels(name=str(ref["name"]), classes=tuple(json.loads(row[0])))
        if found.sha256 != ref["sha256"] or len(found) != ref["count"]:
            raise ValueError(f"labels {found.sha256[:12]} do not match their digest or count")
        return found

    def _select(self, where: str, args: Any, tail: str) -> list[ModelVersion]:
        return self._hydrate(self._x(_VERSIONS + where + tail, args).fetchall())

    def _one(self, where: str, args: Any, tail: str = " LIMIT 1") -> ModelVersion | None:
        found = self._select(where, args, tail)
        return found[0] if found else None

    def get(self, name: str, version: int) -> ModelVersion | None:
        return self._one(" WHERE v.name = ? AND v.version = ?", (name, version))

    def find(self, name: str, sha256: str) -> ModelVersion | None:
        return self._one(" WHERE v.name = ? AND v.sha256 = ?", (name, sha256))

    def latest(self, name: str, *, framework: str | None = None, created_until: str | None = None) -> ModelVersion | None:
        where, args = Filters(name=name, framework=framework, created_until=created_until).where(self._d)
        return self._one(where, args, " ORDER BY v.version DESC LIMIT 1")

    def versions(self, name: str | None = None, *, framework: str | None = None, arch: str | None = None,
                 filters: Filters | None = None) -> list[ModelVersion]:
        given: dict[str, Any] = {k: v for k, v in (("name", name), ("framework", framework), ("arch", arch)) if v is not None}
        where, args = dataclasses.replace(filters or Filters(), **given).where(self._d)
        return self._select(where, args, " ORDER BY v.name, v.version")

    def rows(self, filters: Filters) -> list[VersionRow]:
        valid = self._d.json_valid.replace("{col}", "v.record")

        def count(path: str) -> str:  # read only from a record that is JSON: a corrupt one is named below, not a DB error
            return f"CASE WHEN {valid} THEN CAST({self._d.field('v.record', path)} AS BIGINT) END"

        where, args = filters.where(self._d)
        found = self._x(
            f"SELECT v.name, v.version, {valid}, v.framework, v.arch, COALESCE({count('params.trainable')},"
            f" {count('onnx_params')}), {count('size_bytes')}, v.sha256, (SELECT {{aliases}} FROM {{p}}aliases a"
            " WHERE a.name = v.name AND a.version = v.version), v.created_at FROM {p}versions v" + where
            + " ORDER BY v.name, v.version", args)
        out = []
        for name, number, ok, framework, arch, params, size, sha256, aliases, created in found:
            if not ok or size is None:
                raise _decode_error(f"{name}@{number}", ValueError("the record is not a version's JSON"))
            out.append(VersionRow(name, number, framework, arch, params, size, sha256,
                                  tuple(sorted(json.loads(aliases))) if aliases else (), created))
        return out

    def models(self) -> list[str]:
        return [n for (n,) in self._x("SELECT DISTINCT name FROM {p}versions ORDER BY name").fetchall()]

    def alias_target(self, name: str, alias: str) -> int | None:
        row = self._x("SELECT version FROM {p}aliases WHERE name = ? AND alias = ?", (name, alias)).fetchone()
        return None if row is None else int(row[0])

    def digest_in_use(self, sha256: str) -> bool:
        return self._x("SELECT 1 FROM {p}versions WHERE sha256 = ? LIMIT 1", (sha256,)).fetchone() is not None

    def digests(self) -> set[str]:
        return {d for (d,) in self._x("SELECT DISTINCT sha256 FROM {p}versions").fetchall()}

    def reports(self, name: str, version: int, kind: str | None = None) -> list[Report]:
        sql, args = "SELECT name, version, kind, created_at, payload FROM {p}reports WHERE name = ? AND version = ?", [name, version]
        if kind is not None:
            sql, args = sql + " AND kind = ?", args + [kind]
        out = []
        for n, v, k, created, payload in self._x(sql + " ORDER BY id", args).fetchall():
            try:
                body = json.loads(payload)
            except ValueError as exc:
                raise _decode_error(f"a {k!r} report of {name}@{version}", exc) from None
            out.append(Report(name=n, version=v, kind=k, created_at=created, payload=body))
        return out

    def alias_history(self, name: str, alias: str | None = None, *, until: str | None = None,
                      last: bool = False) -> list[AliasEvent]:
        """Alias events of ``name`` (of one ``alias``), oldest first; ``until``: at or before that time;
        ``last``: only the newest matching one."""
        if not self._history:
            return []
        sql, args = f"SELECT {_EVENT_COLUMNS} FROM {{p}}alias_events WHERE name = ?", [name]
        if alias is not None:
            sql, args = sql + " AND alias = ?", args + [alias]
        if until is not None:
            sql, args = sql + " AND at <= ?", args + [until]
        rows = self._x(sql + (" ORDER BY id DESC LIMIT 1" if last else " ORDER BY id"), args).fetchall()
        out = []
        for row in rows:
            try:
                out.append(AliasEvent(id=int(row[0]), name=row[1], alias=row[2], at=row[3], actor=row[4],
                                      from_version=row[5], to_version=row[6], reason=row[7], forced=bool(row[8]),
                                      policy=None if row[9] is None else json.loads(row[9])))
            except (ValueError, TypeError) as exc:
                raise _decode_error(f"alias event {row[0]} of {name}@{row[2]}", exc) from None
        return out

    # ------------------------------------------------------------------ writes

    def _need_write(self) -> None:
        if not self._writable:
            raise RuntimeError("write inside a read transaction")  # a bug in the caller, not user input

    def add_version(self, record: ModelVersion) -> ModelVersion:
        self._need_write()
        self._x("INSERT INTO {p}models(name, last_version) VALUES (?, 0) ON CONFLICT (name) DO NOTHING", (record.name,))
        ((number,),) = self._x("UPDATE {p}models SET last_version = last_version + 1 WHERE name = ? RETURNING last_version",
                               (record.name,)).fetchall()
        body = record.to_dict(omit=("name", "version", "tags", "aliases", "labels"))
        if record.labels is not None:  # the names once per list (the labels table); the record names them by digest
            digest = record.labels.sha256
            if self._x("SELECT 1 FROM {p}labels WHERE sha256 = ?", (digest,)).fetchone() is None:
                self._x("INSERT INTO {p}labels(sha256, classes) VALUES (?, ?) ON CONFLICT (sha256) DO NOTHING",
                        (digest, json.dumps(list(record.labels.classes), ensure_ascii=False)))
            body["labels"] = {"name": record.labels.name, "sha256": digest, "count": len(record.labels)}
        else:
            body["labels"] = None
        self._x("INSERT INTO {p}versions(name, version, sha256, framework, arch, created_at, record) VALUES (?,?,?,?,?,?,?)",
                (record.name, number, record.sha256, record.framework, record.arch, record.created_at,
                 json.dumps(body, sort_keys=True)))
        if record.tags:
            self.set_tags(record.name, number, record.tags)
        created = self.get(record.name, number)
        assert created is not None
        self.add_event("version.created", created.ref, {
            "name": created.name, "version": created.version, "sha256": created.sha256, "created_at": created.created_at,
            "framework": created.framework, "arch": created.arch})
        return created

    def delete_version(self, name: str, version: int, *, reason: str | None = None) -> None:
        self._need_write()
        for (alias,) in self._x("SELECT alias FROM {p}aliases WHERE name = ? AND version = ? ORDER BY alias",
                                (name, version)).fetchall():
            self._record(name, alias, version, None, reason=reason or f"version {version} removed")
        self._x("DELETE FROM {p}versions WHERE name = ? AND version = ?", (name, version))

    def set_alias(self, name: str, alias: str, version: int, *, reason: str | None = None, forced: bool = False,
                  policy: Mapping[str, Any] | None = None) -> AliasEvent | None:
        self._need_write()
        before = self.alias_target(name, alias)
        if before == version:
            return None  # not a move: nothing to record
        self._x("INSERT INTO {p}aliases(name, alias, version) VALUES (?,?,?) "
                "ON CONFLICT (name, alias) DO UPDATE SET version = EXCLUDED.version", (name, alias, version))
        return self._record(name, alias, before, version, reason=reason, forced=forced, policy=policy)

    def delete_alias(self, name: str, alias: str, *, reason: str | None = None, forced: bool = False,
                     policy: Mapping[str, Any] | None = None) -> AliasEvent | None:
        self._need_write()
        before = self.alias_target(name, alias)
        if before is None:
            return None
        self._x("DELETE FROM {p}aliases WHERE name = ? AND alias = ?", (name, alias))
        return self._record(name, alias, before, None, reason=reason, forced=forced, policy=policy)

    def _record(self, name: str, alias: str, before: int | None, after: int | None, *, reason: str | None,
                forced: bool = False, policy: Mapping[str, Any] | None = None) -> AliasEvent:
        """Append the event of one alias move, in the transaction that moves it."""
        previous = self.alias_history(name, alias, last=True)
        at = max(_now(), previous[0].at) if previous else _now()  # never before the alias's previous event
        policy_json = None if policy is None else json.dumps(policy, sort_keys=True)
        actor_sql = self._d.actor
        args = [name, alias, at] + ([self._actor] if actor_sql == "?" else []) + \
            [before, after, reason, int(forced), policy_json]
        ((number, actor),) = self._x(
            f"INSERT INTO {{p}}alias_events(name, alias, at, actor, from_version, to_version, reason, forced, policy) "
            f"VALUES (?, ?, ?, {actor_sql}, ?, ?, ?, ?, ?) RETURNING id, actor", args).fetchall()
        event = AliasEvent(id=int(number), name=name, alias=alias, at=at, actor=actor, from_version=before,
                           to_version=after, reason=reason, forced=forced,
                           policy=None if policy_json is None else json.loads(policy_json))
        if self._d.notify is not None:
            payload = json.dumps({**event.to_dict(), "schema": self._d.schema}, sort_keys=True)
            if len(payload.encode()) > _NOTIFY_MAX_BYTES:  # PostgreSQL caps a payload at 8000 bytes: drop the verdict
                payload = json.dumps({**event.to_dict(), "schema": self._d.schema, "policy": "truncated"}, sort_keys=True)
            self._x(self._d.notify, (payload,))
        self.add_event("alias.moved", f"{name}@{alias}", event.to_dict())
        return event

    def set_tags(self, name: str, version: int, tags: Mapping[str, str]) -> None:
        self._need_write()
        self._c.executemany(self._d.sql("INSERT INTO {p}tags(name, version, key, value) VALUES (?,?,?,?) "
                                        "ON CONFLICT (name, version, key) DO UPDATE SET value = EXCLUDED.value"),
                            [(name, version, k, v) for k, v in tags.items()])

    def delete_tag(self, name: str, version: int, key: str) -> bool:
        self._need_write()
        return self._x("DELETE FROM {p}tags WHERE name = ? AND version = ? AND key = ?", (name, version, key)).rowcount > 0

    def add_report(self, report: Report) -> Report:
        self._need_write()
        self._x("INSERT INTO {p}reports(name, version, kind, created_at, payload) VALUES (?,?,?,?,?)",
                (report.name, report.version, report.kind, report.created_at, json.dumps(report.payload, sort_keys=True)))
        self.add_event("report.attached", f"{report.name}@{report.version}", {
            "name": report.name, "version": report.version, "kind": report.kind, "created_at": report.created_at})
        return report

    # ------------------------------------------------------------------ alias policies (schema 3)

    def policy(self, name: str, alias: str) -> list[str] | None:
        if not self._events:
            return None
        row = self._x("SELECT require FROM {p}alias_policies WHERE name = ? AND alias = ?", (name, alias)).fetchone()
        return None if row is None else list(json.loads(row[0]))

    def policies(self, name: str | None = None) -> list[tuple[str, str, list[str]]]:
        if not self._events:
            return []
        sql, args = "SELECT name, alias, require FROM {p}alias_policies", []
        if name is not None:
            sql, args = sql + " WHERE name = ?", [name]
        return [(n, a, list(json.loads(r))) for n, a, r in self._x(sql + " ORDER BY name, alias", args).fetchall()]

    def set_policy(self, name: str, alias: str, require: list[str] | None) -> None:
        """Replace the policy on ``name@alias`` (None or [] removes it)."""
        self._need_write()
        self._x("DELETE FROM {p}alias_policies WHERE name = ? AND alias = ?", (name, alias))
        if require:
            self._x("INSERT INTO {p}alias_policies(name, alias, require, set_at) VALUES (?,?,?,?)",
                    (name, alias, json.dumps(list(require)), _now()))

    # ------------------------------------------------------------------ events and webhook deliveries (schema 3)

    def add_event(self, type_: str, subject: str, data: Mapping[str, Any]) -> dict[str, Any] | None:
        """Append a CloudEvent to the log, with a pending delivery for each webhook that wants its type."""
        if not self._events:
            return None
        from ..events import make_event

        self._need_write()
        event = make_event(type_, source=self._source, subject=subject, data=dict(data))
        ((number,),) = self._x("INSERT INTO {p}events(event_id, type, subject, at, body) VALUES (?,?,?,?,?) RETURNING id",
                               (event["id"], type_, subject, event["time"], json.dumps(event, sort_keys=True))).fetchall()
        for hook, types in self._x("SELECT id, types FROM {p}webhooks ORDER BY id").fetchall():
            if not json.loads(types) or type_ in json.loads(types):
                self._x("INSERT INTO {p}deliveries(event, webhook, attempts, next_at) VALUES (?,?,0,?)",
                        (number, hook, event["time"]))
                if not self.emitted or self.emitted[-1] != number:
                    self.emitted.append(int(number))
        return event

    def events(self, *, after: int = 0, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
        """(log id, event) after log id ``after``, oldest first."""
        if not self._events:
            return []
        rows = self._x("SELECT id, body FROM {p}events WHERE id > ? ORDER BY id LIMIT ?", (after, limit)).fetchall()
        return [(int(i), json.loads(b)) for i, b in rows]

    def add_webhook(self, url: str, secret: str | None, types: list[str]) -> int:
        self._need_write()
        ((number,),) = self._x("INSERT INTO {p}webhooks(url, secret, types, created_at) VALUES (?,?,?,?) RETURNING id",
                               (url, secret, json.dumps(types), _now())).fetchall()
        return int(number)

    def webhooks(self) -> list[dict[str, Any]]:
        if not self._events:
            return []
        rows = self._x("SELECT w.id, w.url, w.secret IS NOT NULL, w.types, w.created_at,"
                       " (SELECT COUNT(*) FROM {p}deliveries d WHERE d.webhook = w.id AND d.delivered_at IS NULL)"
                       " FROM {p}webhooks w ORDER BY w.id").fetchall()
        return [{"id": int(i), "url": u, "signed": bool(s), "types": json.loads(t), "created_at": c, "pending": int(n)}
                for i, u, s, t, c, n in rows]

    def delete_webhook(self, number: int) -> bool:
        self._need_write()
        return self._x("DELETE FROM {p}webhooks WHERE id = ?", (number,)).rowcount > 0

    def claim_deliveries(self, now: str, lease_until: str, *, events: list[int] | None = None,
                         limit: int = 100) -> list[tuple[int, int, str, str | None, dict[str, Any], int]]:
        """Due deliveries (of ``events`` only, if given), leased until ``lease_until`` so that another worker
        skips them meanwhile: (event log id, webhook id, url, secret, event, attempts so far)."""
        self._need_write()
        sql = ("SELECT d.event, d.webhook, w.url, w.secret, e.body, d.attempts FROM {p}deliveries d"
               " JOIN {p}webhooks w ON w.id = d.webhook JOIN {p}events e ON e.id = d.event"
               " WHERE d.delivered_at IS NULL AND d.next_at <= ?")
        args: list[Any] = [now]
        if events is not None:
            if not events:
                return []
            sql += " AND d.event IN (" + ",".join("?" * len(events)) + ")"
            args += events
        rows = self._x(sql + " ORDER BY d.event, d.webhook LIMIT ?", [*args, limit]).fetchall()
        for event, hook, *_ in rows:
            self._x("UPDATE {p}deliveries SET next_at = ? WHERE event = ? AND webhook = ?", (lease_until, event, hook))
        return [(int(e), int(h), u, s, json.loads(b), int(a)) for e, h, u, s, b, a in rows]

    def delivery_result(self, event: int, webhook: int, *, at: str, error: str | None, next_at: str) -> None:
        """Record one attempt: delivered (``error`` None) or failed, to retry at ``next_at``."""
        self._need_write()
        if error is None:
            self._x("UPDATE {p}deliveries SET attempts = attempts + 1, delivered_at = ?, last_error = NULL"
                    " WHERE event = ? AND webhook = ?", (at, event, webhook))
        else:
            self._x("UPDATE {p}deliveries SET attempts = attempts + 1, next_at = ?, last_error = ?"
                    " WHERE event = ? AND webhook = ?", (next_at, error[:500], event, webhook))
