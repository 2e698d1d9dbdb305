"""Crash mid-write: a registering process SIGKILLed at any step leaves the full version or no trace.

The child kills itself (a fault-injecting store wrapper, ``faults.crash_at``) after writing the scratch
copy, after moving the object into place, just before the commit, or just after it. Afterwards the next write (``gc --yes`` is one)
clears the leftovers under the write lock, ``verify`` is clean, and version numbers stay gapless.
A commit that fails (disk full) takes its published object back at once.
"""
from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from backends import Backend
from conftest import PYTHON, subprocess_env
from faults import CRASH_POINTS, FailingCommit
from zoo._registry import Registry

TESTS = Path(__file__).resolve().parent
CHILD = r"""
import sys
sys.path.insert(0, sys.argv[5])
from faults import crash_at
from zoo import open_registry
crash_at(open_registry(sys.argv[1]), sys.argv[4]).register(sys.argv[2], name=sys.argv[3])
print("survived")
"""


def register_and_crash(store: Path | str, model: Path, name: str, point: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run([PYTHON, "-c", CHILD, str(store), str(model), name, point, str(TESTS)],
                          env=subprocess_env(**(env or {})), capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr)
    assert "survived" not in proc.stdout


def assert_clean(registry: Registry, backend: Backend) -> None:
    """verify() is clean, and after it no scratch file and no unreferenced object remains."""
    results = registry.verify()
    assert results and all(r.ok for r in results), results
    assert backend.scratch(registry) == []
    assert backend.objects(registry) == sorted({v.sha256 for v in registry.list()})


def test_production_code_reads_no_crash_switch():
    """Fault injection lives in tests/faults.py: no environment variable makes zoo kill itself."""
    source = "\n".join(p.read_text() for p in (TESTS.parent / "registry" / "zoo").rglob("*.py"))
    assert "ZOO_TEST_CRASH" not in source and "os.kill(os.getpid()" not in source


@pytest.mark.parametrize("cleanup", ["next_write", "gc"])
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_leaves_all_or_nothing(backend: Backend, tiny_onnx, point: str, cleanup: str):
    backend.open().register(tiny_onnx(1), name="other")
    model = tiny_onnx(0)
    register_and_crash(backend.location, model, "crashy", point, backend.env)

    registry = backend.open()
    committed = point == "after_commit"
    assert [v.ref for v in registry.list("crashy")] == (["crashy@1"] if committed else [])
    if point in ("after_tmp_write", "after_rename", "before_commit"):
        assert backend.scratch(registry), "the crash should have left scratch files to clean"

    if cleanup == "next_write":
        registry.set_tags("other@1", {"touched": "yes"})  # any write clears a dead writer's leftovers
        assert backend.scratch(registry) == []
        if not committed:
            assert backend.objects(registry) == [registry.resolve("other@1").sha256]
    else:
        registry.gc(older_than_s=0, delete=True)
    assert_clean(registry, backend)

    # Retrying succeeds, and the crashed attempt did not use up a version number.
    result = registry.register(model, name="crashy")
    assert result.created is not committed and result.version.version == 1
    assert registry.register(tiny_onnx(2), name="crashy").version.version == 2
    assert_clean(registry, backend)


@pytest.mark.parametrize("point", ["after_tmp_write", "after_rename", "before_commit"])
def test_crash_while_sharing_bytes_keeps_the_other_model(backend: Backend, tiny_onnx, point: str):
    """The crashed writer meant to publish bytes another model already uses: those must survive cleanup."""
    model = tiny_onnx(0)
    kept = backend.open().register(model, name="first").version
    register_and_crash(backend.location, model, "second", point, backend.env)
    registry = backend.open()
    assert registry.list("second") == []
    registry.gc(older_than_s=0, delete=True)  # a write: sweeps the dead writer's leftovers
    assert_clean(registry, backend)
    assert registry.path("first@1") == registry.path(kept)  # still there, and verified


def test_live_writers_scratch_space_is_not_taken_for_abandoned(tmp_path: Path, tiny_onnx):
    """A scratch folder whose writer is alive (its flock held) survives another process's cleanup."""
    registry = Registry.open(tmp_path / "store", create=True)
    staged = registry._blobs.stage(tiny_onnx(0).read_bytes(), {})
    other = subprocess.run(
        [PYTHON, "-c", "import sys; from zoo._registry import Registry; Registry.open(sys.argv[1]).gc(older_than_s=0, delete=True)",
         str(registry.root)], env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr
    assert (registry.root / "tmp" / staged.token).is_dir()
    registry._blobs.discard(staged)
    assert list((registry.root / "tmp").iterdir()) == []


@pytest.mark.parametrize("shared", [False, True], ids=["new-bytes", "bytes-another-model-uses"])
def test_a_failed_commit_leaves_no_published_object(store: Registry, backend: Backend, tiny_onnx, shared: bool):
    """Issue 10.6: the object published inside a transaction whose commit failed is taken back at once
    (unless a version uses it), so a full disk does not stay full and no later verify is needed."""
    from zoo.errors import StoreError

    kept = store.register(tiny_onnx(0), name="first").version if shared else None
    store._meta = FailingCommit(store._meta)  # type: ignore[assignment]
    with pytest.raises(StoreError, match="no space left on device"):
        store.register(tiny_onnx(0), name="second")
    assert store.list("second") == []
    assert backend.objects(store) == ([kept.sha256] if kept else [])
    assert backend.scratch(store) == []
    assert store.register(tiny_onnx(0), name="second").version.version == 1  # the retry works
    assert_clean(store, backend)


def test_verify_deletes_nothing_and_gc_deletes_only_when_asked(store: Registry, backend: Backend, tiny_onnx):
    """Issue 10.1: orphans are listed by verify/gc; only gc with delete=True removes them, and only
    those older than the crash window."""
    v = store.register(tiny_onnx(0), name="a").version
    orphan = store.register(tiny_onnx(1), name="b").version
    with store._meta.write() as txn:
        txn.delete_version("b", 1)
    assert store.verify() and all(r.ok for r in store.verify())
    assert backend.objects(store) == sorted([v.sha256, orphan.sha256])  # verify deleted nothing
    assert [o.digest for o in store.gc(older_than_s=0)] == [orphan.sha256]  # listed, not deleted
    assert store.gc(delete=True) == []  # younger than the crash window: kept
    assert len(backend.objects(store)) == 2
    assert [o.digest for o in store.gc(older_than_s=0, delete=True)] == [orphan.sha256]
    assert backend.objects(store) == [v.sha256]


def test_a_full_disk_is_reported_as_such(embedded_store: Registry, monkeypatch):
    """Issue 10.10: SQLite reports a write on a full disk as "disk I/O error"; zoo says what it is."""
    import sqlite3

    from zoo.store import sqlite as zsqlite

    monkeypatch.setattr(zsqlite, "_free_bytes", lambda folder: 0)
    io_error = sqlite3.OperationalError("disk I/O error")
    io_error.sqlite_errorname = "SQLITE_IOERR_WRITE"  # type: ignore[attr-defined]
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    for exc in (io_error, full):
        err = embedded_store._meta._store_error("use", exc)  # type: ignore[attr-defined]
        assert err.exit_code == 7 and "no space left on device" in err.message and "free space" in err.hint
    monkeypatch.setattr(zsqlite, "_free_bytes", lambda folder: 10 << 30)
    assert "no space left" not in embedded_store._meta._store_error("use", io_error).message  # type: ignore[attr-defined]
