"""Immutability: no API changes a version's bytes or recorded facts; only aliases and tags move;
remove() is the one explicit delete, and bytes another version uses survive it."""
from __future__ import annotations

import dataclasses
import hashlib
import sqlite3

import pytest

from zoo._registry import Registry
from zoo.errors import ImmutableError, NotFound
from zoo.records import ModelVersion, Report, VersionMeta

PUBLIC_API = {
    "open", "close", "register", "list", "models", "resolve", "path", "load", "set_alias", "remove_alias",
    "set_tags", "remove_tag", "remove", "verify", "attach", "reports",
    "open_shared", "alias_history",  # open_shared: the shared store; alias_history: reads the append-only log
    "rows",  # reads what list selects, as a listing's columns
    "gc", "ensure_writable",  # gc deletes only unreferenced artifacts; ensure_writable writes nothing
    # gated aliases and events: a policy gates alias moves; the event log is append-only; webhooks and their
    # deliveries are configuration and an outbox. None of them touches a version.
    "set_policy", "policies", "check_gate", "events", "add_webhook", "webhooks", "remove_webhook", "deliver",
}
MOVABLE = {"aliases", "tags"}


def frozen_facts(v: ModelVersion) -> dict:
    return {k: val for k, val in v.to_dict().items() if k not in MOVABLE}


def test_the_api_has_no_setter_for_versions():
    public = {n for n in dir(Registry) if not n.startswith("_") and callable(getattr(Registry, n))}
    assert public == PUBLIC_API, "a new public method: is it a way to change a version? update this list knowingly"


def test_records_are_frozen(store: Registry, tiny_onnx):
    v = store.register(tiny_onnx(0), name="tiny").version
    for field, value in (("sha256", "0" * 64), ("version", 9), ("arch", "x"), ("tags", {})):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(v, field, value)
    report = store.attach(v, "bench", {"ms": 1.0})
    assert isinstance(report, Report)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.payload = {}


def test_everything_else_leaves_a_version_unchanged(store: Registry, tiny_onnx):
    v = store.register(tiny_onnx(0), name="tiny", meta=VersionMeta(arch="tiny", framework="torch")).version
    path = store.path(v)
    blob_sha = hashlib.sha256(path.read_bytes()).hexdigest()

    store.set_alias("tiny@1", "prod")
    store.set_tags("tiny@1", {"team": "vision"})
    store.remove_tag("tiny@1", "team")
    store.attach("tiny@1", "parity", {"ok": True})
    store.register(tiny_onnx(0), name="tiny", meta=VersionMeta(arch="tiny", framework="torch"))  # dedupe
    store.register(tiny_onnx(0), name="tiny", meta=VersionMeta(arch="other", framework="tensorflow"))  # new version
    store.register(tiny_onnx(0), name="elsewhere", meta=VersionMeta(arch="tiny", framework="torch"))  # shares bytes
    store.remove("tiny@2")
    store.verify()

    after = store.resolve("tiny@1")
    assert frozen_facts(after) == frozen_facts(v)
    assert after.aliases == ("prod",) and after.tags == {}
    assert hashlib.sha256(path.read_bytes()).hexdigest() == blob_sha == v.sha256


def test_the_database_refuses_updates_to_versions_and_reports(store: Registry, tiny_onnx, backend):
    """Defence in depth: even SQL written by hand cannot edit a version or a report."""
    v = store.register(tiny_onnx(0), name="tiny").version
    store.attach(v, "bench", {"ms": 1.0})
    if backend.name == "embedded":
        conn, error, tables = sqlite3.connect(store.root / "registry.db"), sqlite3.DatabaseError, ""
    else:
        import psycopg

        conn, error, tables = psycopg.connect(store._meta.url.conninfo, autocommit=True), psycopg.Error, f"{backend.schema}."
    with conn:
        with pytest.raises(error, match="immutable"):
            conn.execute(f"UPDATE {tables}versions SET sha256 = '{'0' * 64}' WHERE name = 'tiny'")
        with pytest.raises(error, match="append-only"):
            conn.execute(f"UPDATE {tables}reports SET payload = '{{}}'")
        for sql in (f"UPDATE {tables}events SET body = '{{}}'", f"DELETE FROM {tables}events"):  # the event log
            with pytest.raises(error, match="append-only"):
                conn.execute(sql)
    assert store.resolve("tiny@1") == v and [e["type"] for _, e in store.events()] == ["version.created", "report.attached"]


def test_remove_keeps_bytes_another_version_uses(store: Registry, tiny_onnx):
    a = store.register(tiny_onnx(0), name="a").version
    b = store.register(tiny_onnx(0), name="b").version
    assert a.sha256 == b.sha256
    shared = store.path(a)
    store.remove("a@1")
    assert shared.is_file() and store.path("b@1") == shared  # still there and still verified
    with pytest.raises(NotFound):
        store.resolve("a@1")
    store.remove("b")
    assert not shared.exists() and not shared.parent.exists()
    assert store.list() == [] and all(r.ok for r in store.verify())


def test_remove_is_explicit_and_numbers_are_not_reused(store: Registry, tiny_onnx):
    src = tiny_onnx(0)
    store.register(src, name="tiny")
    store.register(tiny_onnx(1), name="tiny")
    store.attach("tiny@1", "bench", {"ms": 1.0})
    removed = store.remove("tiny@1")
    assert removed.version == 1
    with pytest.raises(NotFound):
        store.remove("tiny@1")
    with pytest.raises(NotFound):
        store.reports("tiny@1")
    again = store.register(src, name="tiny")  # the same bytes come back as a new number, never as 1
    assert again.created and again.version.version == 3
    assert store.reports("tiny@3") == []  # the old version's reports did not come back with the bytes


def test_a_refused_change_is_an_immutable_error_exit_6(embedded_store: Registry, tiny_onnx):
    store = embedded_store
    """Issue 10.9: ImmutableError is what the store raises when something immutable is changed,
    e.g. an UPDATE of a version, a report or the store's identity reaching the database."""
    v = store.register(tiny_onnx(0), name="tiny").version
    store.attach(v, "bench", {"ms": 1.0})
    for sql in ("UPDATE versions SET sha256 = 'x'", "UPDATE reports SET payload = '{}'",
                "UPDATE store_info SET value = 'x' WHERE key = 'store_id'"):
        with pytest.raises(ImmutableError) as exc:
            with store._meta.write() as txn:
                txn._c.execute(sql)  # type: ignore[attr-defined]
        assert exc.value.exit_code == 6 and "immutable" in exc.value.message or "append-only" in exc.value.message
    assert store.resolve("tiny@1") == v and store.verify()[0].ok
