"""Alias history and search in the store, on both backends.

Every alias set, move and delete is an append-only event written in the transaction of the move;
``at=`` resolves what an alias meant then; concurrent movers lose no event; older stores migrate.
"""
from __future__ import annotations

import getpass
import json
import sqlite3
import threading
from datetime import datetime, timezone

import pytest

import zoo
from backends import Backend
from conftest import cli_on
from zoo._registry import Registry
from zoo.errors import ImmutableError, InvalidReference, NotFound, StoreError
from zoo.store.sqlite import SCHEMA_VERSION


def moves(events) -> list[tuple]:
    return [(e.alias, e.action, e.from_version, e.to_version, e.reason) for e in events]


def actor_of(store: Registry, backend: Backend) -> str:
    """Who the store records: the OS user (embedded), the PostgreSQL role (shared)."""
    if backend.name == "embedded":
        return getpass.getuser()
    import psycopg

    with psycopg.connect(store._meta.url.conninfo) as conn:  # type: ignore[attr-defined]
        return conn.execute("SELECT current_user").fetchone()[0]


def test_every_move_is_recorded_in_order_and_resolvable_at_a_time(store: Registry, backend: Backend, tiny_onnx):
    for seed in range(3):
        store.register(tiny_onnx(seed), name="m")
    store.set_alias("m@1", "prod")
    t1 = datetime.now(timezone.utc)
    store.set_alias("m@2", "prod", reason="better eval")
    store.set_alias("m@2", "prod")  # not a move: nothing recorded
    store.set_alias("m@prod", "canary")
    t2 = datetime.now(timezone.utc)
    store.remove_alias("m", "canary", reason="done")
    store.set_alias("m@3", "prod")
    store.remove("m@3", force=True)  # takes its alias with it: recorded as a delete
    t3 = datetime.now(timezone.utc).isoformat()

    history = store.alias_history("m")
    assert moves(history) == [
        ("prod", "set", None, 1, None), ("prod", "move", 1, 2, "better eval"), ("canary", "set", None, 2, None),
        ("canary", "delete", 2, None, "done"), ("prod", "move", 2, 3, None), ("prod", "delete", 3, None, "version 3 removed"),
    ]
    assert [e.id for e in history] == sorted(e.id for e in history) and [e.at for e in history] == sorted(e.at for e in history)
    assert {e.actor for e in history} == {actor_of(store, backend)} and not any(e.forced or e.policy for e in history)
    assert moves(store.alias_history("m", "canary")) == moves(history)[2:4]

    assert store.resolve("m@prod", at=t1).version == 1
    assert store.resolve("m@prod", at=t2).version == 2 and store.resolve("m@canary", at=t2).version == 2
    assert store.resolve("m", at=t1).version == 2  # the newest registered by then that still exists (3 was removed)
    with pytest.raises(NotFound, match="had been deleted"):
        store.resolve("m@prod", at=t3)
    with pytest.raises(NotFound, match="was not set at 2020"):
        store.resolve("m@prod", at="2020-01-01T00:00Z")
    with pytest.raises(NotFound, match="had no version"):
        store.resolve("m", at="2020-01-01")
    with pytest.raises(InvalidReference, match="ISO 8601"):
        store.resolve("m@prod", at="yesterday")
    store.set_alias("m@1", "prod")
    assert store.load("m@prod", at=t2).version.version == 2 and store.load("m@prod").version.version == 1
    with pytest.raises(NotFound, match="No model named 'nope'"):
        store.alias_history("nope")


def test_concurrent_movers_lose_no_event(store: Registry, backend: Backend, tiny_onnx):
    """Three writers move one alias four times each, every move to a version of its own: 12 events,
    each starting where the previous one ended, the last ending where the alias points."""
    movers, rounds = 3, 4
    for seed in range(movers * rounds):
        store.register(tiny_onnx(seed), name="m")
    errors: list[BaseException] = []

    def mover(index: int) -> None:
        registry = backend.open()
        try:
            for r in range(rounds):
                registry.set_alias(f"m@{1 + index * rounds + r}", "prod", reason=f"mover {index}")
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            registry.close()

    threads = [threading.Thread(target=mover, args=(i,)) for i in range(movers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    events = store.alias_history("m", "prod")
    assert len(events) == movers * rounds
    assert sorted(e.to_version for e in events) == list(range(1, movers * rounds + 1))
    assert events[0].from_version is None
    assert all(e.from_version == prev.to_version for prev, e in zip(events, events[1:], strict=False))
    assert events[-1].to_version == store.resolve("m@prod").version
    for i in range(movers):  # each mover's own moves appear in its order
        mine = [e.to_version for e in events if e.reason == f"mover {i}"]
        assert mine == sorted(mine) and len(mine) == rounds


def test_the_database_refuses_to_change_history(store: Registry, backend: Backend, tiny_onnx):
    store.register(tiny_onnx(0), name="m")
    store.set_alias("m@1", "prod")
    if backend.name == "embedded":
        conn, error, prefix = sqlite3.connect(store.root / "registry.db"), sqlite3.DatabaseError, ""
    else:
        import psycopg

        conn, error, prefix = psycopg.connect(store._meta.url.conninfo, autocommit=True), psycopg.Error, f"{backend.schema}."
    with conn:
        for sql in (f"UPDATE {prefix}alias_events SET to_version = 9", f"DELETE FROM {prefix}alias_events"):
            with pytest.raises(error, match="append-only"):
                conn.execute(sql)
    with pytest.raises(ImmutableError, match="append-only") as exc:
        with store._meta.write() as txn:
            txn._c.execute(f"DELETE FROM {prefix}alias_events")  # type: ignore[attr-defined]
    assert exc.value.exit_code == 6
    assert len(store.alias_history("m")) == 1


def test_search_runs_in_the_store(store: Registry, tiny_onnx):
    store.register(tiny_onnx(0), name="a", tags={"team": "vision", "stage": "dev"})
    store.register(tiny_onnx(1), name="a", tags={"team": "nlp"})
    store.register(tiny_onnx(2), name="b", tags={"team": "vision", "precision": "int8"})
    store.set_alias("a@2", "prod")
    store.set_alias("b@1", "prod")
    assert [v.ref for v in store.list(tags={"team": "vision"})] == ["a@1", "b@1"]
    assert [v.ref for v in store.list(tags={"team": "vision", "stage": "dev"})] == ["a@1"]
    assert [v.ref for v in store.list("a", alias="prod")] == ["a@2"]
    assert [v.ref for v in store.list(alias="prod", tags={"team": "vision"})] == ["b@1"]
    assert [v.ref for v in store.list(precision="int8")] == ["b@1"]
    assert [v.ref for v in store.list(precision="fp32")] == ["a@1", "a@2"]
    assert store.list(tags={"team": "audio"}) == [] and store.list(alias="canary") == []
    # the filter is in the query: the transaction is asked for the filtered rows, not all of them
    with store._read() as txn:
        assert len(txn.versions(filters=zoo.store.Filters(tags=(("team", "vision"),)))) == 2


def test_cli_history_list_filters_and_at(embedded_store: Registry, tiny_onnx):
    zoo_cli = cli_on(embedded_store.root)
    embedded_store.register(tiny_onnx(0), name="m", tags={"team": "vision"})
    embedded_store.register(tiny_onnx(1), name="m")
    zoo_cli("alias", "m@1", "prod")
    between = datetime.now(timezone.utc).isoformat()
    zoo_cli("alias", "m@2", "prod", "--reason", "better")
    events = json.loads(zoo_cli("alias", "--history", "m", "prod", "--json").stdout)
    assert [(e["action"], e["from_version"], e["to_version"], e["reason"]) for e in events] == \
        [("set", None, 1, None), ("move", 1, 2, "better")]
    assert "better" in zoo_cli("alias", "--history", "m").stdout
    assert [v["version"] for v in json.loads(zoo_cli("list", "--tag", "team=vision", "--json").stdout)] == [1]
    assert [v["version"] for v in json.loads(zoo_cli("list", "--alias", "prod", "--json").stdout)] == [2]
    assert json.loads(zoo_cli("show", "m@prod", "--at", between, "--json").stdout)["version"] == 1
    zoo_cli("alias", "--history", "m", "--delete", code=2)


def test_an_old_embedded_store_reads_then_migrates_on_its_first_write(embedded_store: Registry, tiny_onnx):
    """A schema-1 store (before alias history) opens; reads work; the first write migrates it."""
    embedded_store.register(tiny_onnx(0), name="m", tags={"team": "vision"})
    embedded_store.set_alias("m@1", "prod")
    conn = sqlite3.connect(embedded_store.root / "registry.db")
    with conn:
        for statement in ("DROP TRIGGER alias_events_append_only", "DROP TRIGGER alias_events_kept",
                          "DROP TABLE alias_events", "DROP INDEX tags_key_value", "DROP INDEX aliases_alias",
                          "DROP INDEX versions_arch", "PRAGMA user_version=1"):
            conn.execute(statement)
    conn.close()
    old = Registry.open(embedded_store.root)
    assert old.alias_history("m") == [] and [v.ref for v in old.list(tags={"team": "vision"}, alias="prod")] == ["m@1"]
    old.set_alias("m@1", "canary")
    conn = sqlite3.connect(embedded_store.root / "registry.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    assert moves(old.alias_history("m")) == [("canary", "set", None, 1, None)]


def test_store_init_takes_zoo_artifacts(shared_services, tmp_path, monkeypatch):
    """`zoo store init URL` with ZOO_ARTIFACTS set and no --artifacts creates the store there."""
    import uuid

    from click.testing import CliRunner

    from zoo.cli import main

    assert "ZOO_ARTIFACTS" in CliRunner().invoke(main, ["store", "init", "--help"]).output
    suffix = uuid.uuid4().hex[:12]
    location = shared_services.pg_url + ("&" if "?" in shared_services.pg_url else "?") + f"schema=t_{suffix}"
    artifacts = f"{shared_services.s3_url.rstrip('/')}/t_{suffix}"
    monkeypatch.setenv("ZOO_ARTIFACTS", artifacts)
    made = Backend("shared", tmp_path, location, {}, artifacts, f"t_{suffix}")
    try:
        result = CliRunner().invoke(main, ["store", "init", location, "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["artifacts"] == artifacts
    finally:
        made.drop()


@pytest.fixture
def shared(shared_services, tmp_path, monkeypatch):
    made = Backend.create("shared", tmp_path, shared_services)
    for key, value in made.env.items():
        monkeypatch.setenv(key, value)
    yield made
    made.drop()


def test_an_old_shared_store_reads_refuses_writes_until_init_migrates_it(shared: Backend, tiny_onnx):
    """The embedded store migrates on its first write (above); a PostgreSQL store is migrated
    explicitly by `zoo store init`, and serves reads until then."""
    import psycopg

    from zoo.store.shared import init_shared

    store = shared.open()
    store.register(tiny_onnx(0), name="m")
    store.set_alias("m@1", "prod")
    with psycopg.connect(store._meta.url.conninfo, autocommit=True) as conn:
        conn.execute(f'DROP TABLE "{shared.schema}".alias_events')
        conn.execute(f'UPDATE "{shared.schema}".store SET schema_version = 1')
    old = shared.open()
    assert old.alias_history("m") == [] and old.resolve("m@prod").version == 1
    with pytest.raises(StoreError, match="schema 1") as exc:
        old.set_alias("m@1", "canary")
    assert "zoo store init" in exc.value.hint
    assert init_shared(shared.location).done == "migrated"
    migrated = shared.open()
    migrated.set_alias("m@1", "canary")
    assert moves(migrated.alias_history("m")) == [("canary", "set", None, 1, None)]


def test_a_move_on_postgresql_notifies_listeners_at_commit(shared: Backend, tiny_onnx):
    import psycopg

    store = shared.open()
    store.register(tiny_onnx(0), name="m")
    with psycopg.connect(store._meta.url.conninfo, autocommit=True) as listener:
        listener.execute("LISTEN zoo_alias")
        store.set_alias("m@1", "prod", reason="ship it")
        received = [json.loads(n.payload) for n in listener.notifies(timeout=10, stop_after=1)]
    event = store.alias_history("m", "prod")[0]
    assert received == [{**event.to_dict(), "schema": shared.schema}]
