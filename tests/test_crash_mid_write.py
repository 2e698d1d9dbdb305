"""Crash mid-write: a registering process SIGKILLed at any step leaves the full version or no trace.

The child kills itself (``ZOO_TEST_CRASH_AT``) after writing the scratch copy, after moving the object
into place, just before the commit, or just after it. Afterwards the next write (or ``verify``)
clears the leftovers under the write lock, ``verify`` is clean, and version numbers stay gapless.
"""
from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from backends import Backend
from conftest import PYTHON, subprocess_env
from zoo._registry import CRASH_ENV, CRASH_POINTS, Registry

CHILD = r"""
import sys
from zoo import open_registry
open_registry(sys.argv[1]).register(sys.argv[2], name=sys.argv[3])
print("survived")
"""


def register_and_crash(store: Path | str, model: Path, name: str, point: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run([PYTHON, "-c", CHILD, str(store), str(model), name], env=subprocess_env(**(env or {}), **{CRASH_ENV: point}),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr)
    assert "survived" not in proc.stdout


def assert_clean(registry: Registry, backend: Backend) -> None:
    """verify() is clean, and after it no scratch file and no unreferenced object remains."""
    results = registry.verify()
    assert results and all(r.ok for r in results), results
    assert backend.scratch(registry) == []
    assert backend.objects(registry) == sorted({v.sha256 for v in registry.list()})


def test_crash_points_match_the_code():
    assert CRASH_POINTS == ("after_tmp_write", "after_rename", "before_commit", "after_commit")


@pytest.mark.parametrize("cleanup", ["next_write", "verify"])
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
    assert_clean(registry, backend)
    assert registry.path("first@1") == registry.path(kept)  # still there, and verified


def test_live_writers_scratch_space_is_not_taken_for_abandoned(tmp_path: Path, tiny_onnx):
    """A scratch folder whose writer is alive (its flock held) survives another process's cleanup."""
    registry = Registry.open(tmp_path / "store")
    staged = registry._blobs.stage(tiny_onnx(0).read_bytes(), {})
    other = subprocess.run(
        [PYTHON, "-c", "import sys; from zoo._registry import Registry; Registry.open(sys.argv[1]).verify()",
         str(registry.root)], env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr
    assert (registry.root / "tmp" / staged.token).is_dir()
    registry._blobs.discard(staged)
    assert list((registry.root / "tmp").iterdir()) == []
