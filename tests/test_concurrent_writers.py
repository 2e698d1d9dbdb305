"""Concurrent writers: 8 processes register distinct and identical artifacts into one model at once.

Distinct bytes -> exactly one version each; identical bytes -> one version; numbers unique and
gapless 1..N; nobody sees "database is locked". On the embedded backend the store does not exist before
the processes start, so the race to create it is part of the test; on the shared one, half the writers
use another cache folder (another "machine").
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from backends import Backend
from conftest import PYTHON, make_tiny_onnx, subprocess_env
from zoo._registry import Registry
from zoo.errors import StoreError

WORKERS = 8
DISTINCT_PER_WORKER = 2

WORKER = r"""
import json, os, sys, time
from pathlib import Path
store, go, *paths = sys.argv[1:]
from zoo import open_registry
while not os.path.exists(go):
    time.sleep(0.001)
registry = open_registry(store)
out = []
for p in paths:
    r = registry.register(p, name="shared", tags={"source": Path(p).parent.name})
    out.append({"path": p, "version": r.version.version, "sha256": r.version.sha256, "created": r.created})
print(json.dumps(out))
"""


def test_parallel_registrations_into_one_model(tmp_path: Path, backend: Backend):
    go = tmp_path / "go"
    jobs = []
    for w in range(WORKERS):
        paths = [make_tiny_onnx(tmp_path / f"w{w}-d{i}" / "model.onnx", seed=100 * w + i) for i in range(DISTINCT_PER_WORKER)]
        paths.append(make_tiny_onnx(tmp_path / f"w{w}-same" / "model.onnx", seed=7))  # same bytes, separate files
        jobs.append([str(p) for p in (paths[:1] + paths[2:] + paths[1:2])])  # identical one in the middle
    procs = [
        subprocess.Popen([PYTHON, "-c", WORKER, backend.location, str(go), *paths],
                         env=subprocess_env(**{**backend.env, **({"ZOO_CACHE": str(tmp_path / "machine-b")} if w % 2 else {})}),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w, paths in enumerate(jobs)
    ]
    time.sleep(0.5)  # let them import; then release all at once
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert "locked" not in err.lower()
        results.extend(json.loads(out))

    registry = backend.open()
    versions = registry.list("shared")
    expected_distinct = WORKERS * DISTINCT_PER_WORKER + 1
    assert len(versions) == expected_distinct
    assert [v.version for v in versions] == list(range(1, expected_distinct + 1))  # unique and gapless
    assert len({v.sha256 for v in versions}) == expected_distinct  # no duplicated bytes

    same = [r for r in results if "-same" in r["path"]]
    assert len({r["sha256"] for r in same}) == 1 and len({r["version"] for r in same}) == 1
    assert sum(r["created"] for r in same) == 1  # exactly one process created it; the others deduped
    distinct = [r for r in results if "-same" not in r["path"]]
    assert all(r["created"] for r in distinct)
    assert Counter(r["version"] for r in distinct).most_common(1)[0][1] == 1
    by_number = {v.version: v for v in versions}
    for r in results:
        assert by_number[r["version"]].sha256 == r["sha256"]

    assert all(r.ok for r in registry.verify())
    assert backend.scratch(registry) == []
    assert backend.objects(registry) == sorted(v.sha256 for v in versions)


def test_threads_share_one_registry(store: Registry, tiny_onnx):
    paths = [tiny_onnx(seed) for seed in range(8)] + [tiny_onnx(0)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda p: store.register(p, name="threads"), paths))
    assert sorted(r.version.version for r in results if r.created) == list(range(1, 9))
    assert [v.version for v in store.list("threads")] == list(range(1, 9))


def test_a_busy_writer_is_waited_for_and_a_stuck_one_times_out_cleanly(embedded_store: Registry, tiny_onnx, monkeypatch):
    """Another process holding the write lock: short waits succeed, long ones end in StoreError, never a driver error.
    (The shared store's lock: tests/test_shared_store.py.)"""
    store = embedded_store
    store.register(tiny_onnx(0), name="tiny")
    blocker = sqlite3.connect(store.root / "registry.db", isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, lambda: blocker.execute("COMMIT"))
    release.start()
    t0 = time.monotonic()
    assert store.set_tags("tiny@1", {"waited": "yes"}).tags == {"waited": "yes"}
    assert time.monotonic() - t0 >= 0.4
    release.join()

    blocker.execute("BEGIN IMMEDIATE")
    monkeypatch.setenv("ZOO_LOCK_TIMEOUT", "0.3")
    with pytest.raises(StoreError) as exc:
        store.set_tags("tiny@1", {"waited": "no"})
    assert "Timed out" in exc.value.message and "ZOO_LOCK_TIMEOUT" in exc.value.hint
    assert "database is locked" not in str(exc.value)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert store.resolve("tiny@1").tags == {"waited": "yes"}
