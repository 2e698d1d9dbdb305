"""Reads never write: a missing store is "not found", and a store we cannot write serves every read.

Issue 10.7. The read-only store is a real one made unwritable (``chmod -R a-w``) and read by a
child process that has no way around the permissions: as root, the child drops the capabilities
that bypass them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER) from its bounding set before
``exec``, so it is bound by the mode bits like any unprivileged user; as any other user, the
permissions already apply. It must list, show, run, verify and ``zoo.load`` (with its integrity
check), refuse every write with exit 7 "read-only", and leave no file behind (no WAL, no lock).
"""
from __future__ import annotations

import ctypes
import json
import os
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import PYTHON, subprocess_env
from onnx_models import tiny_cnn
from zoo import open_registry
from zoo._registry import Registry
from zoo.cli import main
from zoo.errors import NotFound

SIZE = 16
_PR_CAPBSET_DROP = 24
_BYPASS_CAPS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def _drop_permission_bypass() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _BYPASS_CAPS:
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_unprivileged(script: str, *args: str) -> subprocess.CompletedProcess:
    preexec = _drop_permission_bypass if os.geteuid() == 0 else None
    return subprocess.run([PYTHON, "-c", script, *args], env=subprocess_env(), capture_output=True, text=True,
                          timeout=300, preexec_fn=preexec)


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(Path(dirpath) / name)
            out[str(Path(dirpath, name).relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def make_read_only(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            p.chmod(p.stat().st_mode & ~0o222)
    for dirpath, _dirnames, _filenames in sorted(os.walk(root), reverse=True):
        Path(dirpath).chmod(0o555)


def make_writable(root: Path) -> None:
    for dirpath, _dirnames, _filenames in os.walk(root):
        Path(dirpath).chmod(0o755)


@pytest.fixture
def read_only_store(tmp_path: Path):
    root = tmp_path / "store"
    registry = Registry.open(root)
    registry.register(tiny_cnn(tmp_path / "m.onnx", size=SIZE), name="tiny")
    registry.set_alias("tiny@1", "prod")
    registry.close()  # the last connection checkpoints and removes the WAL files
    make_read_only(root)
    yield root
    make_writable(root)


CHILD = r"""
import json, sys
import numpy as np
from click.testing import CliRunner
import zoo
from zoo.cli import main
store, model = sys.argv[1:]
runner = CliRunner()
out = {}
for key, args in {
    "list": ["list", "--json"], "show": ["show", "tiny@prod", "--json"], "run": ["run", "tiny", "--random", "2", "--json"],
    "verify-ref": ["verify", "tiny@1"], "verify": ["verify", "--json"], "gc-list": ["gc", "--older-than", "0"],
    "alias": ["alias", "tiny@1", "stable"], "tag": ["tag", "tiny@1", "a=b"], "rm": ["rm", "tiny@1", "--yes", "--force"],
    "register": ["register", model, "--name", "other"], "gc-delete": ["gc", "--yes"],
}.items():
    r = runner.invoke(main, ["--store", store, *args])
    out[key] = {"code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr}
m = zoo.load("tiny@prod", store=store)
out["load"] = m.predict(np.zeros((1, 3, 16, 16), np.float32)).shape
out["read_only"] = zoo.open_registry(store).read_only
print(json.dumps(out))
"""


def test_a_store_we_cannot_write_serves_every_read(read_only_store: Path, tmp_path: Path):
    before = snapshot(read_only_store)
    model = tiny_cnn(tmp_path / "other" / "m.onnx", size=SIZE, seed=1)
    proc = run_unprivileged(CHILD, str(read_only_store), str(model))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("list", "show", "run", "verify-ref", "verify", "gc-list"):
        assert out[key]["code"] == 0, (key, out[key])
    assert [(v["name"], v["version"]) for v in json.loads(out["list"]["stdout"])] == [("tiny", 1)]
    assert json.loads(out["show"]["stdout"])["aliases"] == ["prod"]
    assert len(json.loads(out["run"]["stdout"])) == 2
    assert [r["ok"] for r in json.loads(out["verify"]["stdout"])] == [True]
    assert out["load"] == [1, 10] and out["read_only"] is True
    for key in ("alias", "tag", "rm", "register", "gc-delete"):
        assert out[key]["code"] == 7 and "read-only" in out[key]["stderr"], (key, out[key])
        assert "Traceback" not in out[key]["stderr"]
    assert snapshot(read_only_store) == before  # not one file created or changed: no WAL, no lock, no tmp


def test_the_integrity_check_still_runs_on_a_read_only_store(read_only_store: Path):
    target = next((read_only_store / "objects").glob("*/*/model.onnx"))
    make_writable(read_only_store)
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[-20] ^= 0xFF
    target.write_bytes(bytes(data))
    make_read_only(read_only_store)
    proc = run_unprivileged(
        "import sys, zoo\ntry: zoo.load('tiny', store=sys.argv[1])\nexcept zoo.ZooError as e: print(type(e).__name__, e.exit_code)",
        str(read_only_store))
    assert proc.stdout.split() == ["IntegrityError", "5"], proc.stderr[-2000:]


@pytest.mark.parametrize("args", [["list"], ["show", "tiny"], ["run", "tiny", "--random", "1"], ["verify"], ["gc"]])
def test_a_missing_store_is_not_found_and_is_not_created(tmp_path: Path, args):
    missing = tmp_path / "typo" / "store"
    result = CliRunner().invoke(main, ["--store", str(missing), *args])
    assert result.exit_code == 3, result.output
    assert str(missing) in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "typo").exists()


def test_the_api_reads_create_nothing(tmp_path: Path):
    import zoo

    missing = tmp_path / "nothing-here"
    for call in (lambda: open_registry(missing).list(), lambda: zoo.load("tiny", store=missing),
                 lambda: open_registry(missing).resolve("tiny"), lambda: open_registry(missing).verify()):
        with pytest.raises(NotFound, match="No zoo store at"):
            call()
    assert not missing.exists()
    missing.mkdir()  # an existing empty folder (a clone's artifacts/) lists as empty, and stays empty
    assert open_registry(missing).list() == []
    with pytest.raises(NotFound):
        open_registry(missing).resolve("tiny")
    assert list(missing.iterdir()) == []


def test_the_first_write_creates_the_store(tmp_path: Path):
    root = tmp_path / "new"
    registry = open_registry(root)
    assert not root.exists()
    registry.register(tiny_cnn(tmp_path / "m.onnx", size=SIZE), name="tiny")
    assert (root / "store.json").is_file() and (root / "registry.db").is_file()
    assert stat.S_ISDIR((root / "objects").stat().st_mode)
    assert [v.ref for v in open_registry(root).list()] == ["tiny@1"]
    assert np.isfinite(open_registry(root).load("tiny").predict(np.zeros((1, 3, SIZE, SIZE), np.float32))).all()
