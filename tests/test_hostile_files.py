"""Hostile files around zoo: links planted where zoo writes, devices given as input, files that
change while zoo reads them (issue 10, items 3 and 10).

Every file zoo writes outside its store goes through :mod:`zoo._atomic`: a temp file with an
unpredictable name created O_EXCL|O_NOFOLLOW in the destination folder, then one atomic rename, so
a link planted at the output (or at any name zoo might pick) is never written through.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from onnx_models import tiny_cnn
from zoo import open_registry
from zoo._atomic import write_file
from zoo.cli import main
from zoo.errors import InvalidInput, InvalidModelFile

SIZE = 16


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    open_registry(root).register(tiny_cnn(tmp_path / "m.onnx", size=SIZE), name="tiny")
    return root


def test_a_link_at_the_destination_is_replaced_not_followed(tmp_path: Path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out.bin"
    out.symlink_to(victim)
    assert write_file(out, b"new bytes") == out
    assert victim.read_text() == "precious"
    assert not out.is_symlink() and out.read_bytes() == b"new bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin", "victim.txt"]  # no temp file left


def test_links_planted_for_predictable_temp_names_are_never_opened(tmp_path: Path):
    """The old `.{name}.tmp-{pid}` scheme wrote through a link planted for the next pids."""
    from zoo.weights import save_weights

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for pid in range(os.getpid() - 5, os.getpid() + 50):
        (tmp_path / f".out.safetensors.tmp-{pid}").symlink_to(victim)
    save_weights({"w": np.ones((2, 2), np.float32)}, tmp_path / "out.safetensors")
    assert victim.read_text() == "precious"
    assert not (tmp_path / "out.safetensors").is_symlink()


def test_a_failed_write_leaves_nothing(tmp_path: Path):
    def boom(fh):
        fh.write(b"half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError):
        write_file(tmp_path / "out.bin", boom)
    assert list(tmp_path.iterdir()) == []


def test_zoo_run_output_is_atomic_and_named_as_written(store: Path, tmp_path: Path):
    victim = tmp_path / "victim.npy"
    victim.write_bytes(b"precious")
    (tmp_path / "link.npy").symlink_to(victim)
    runner = CliRunner()
    for name in ("link.npy", "out_noext"):
        result = runner.invoke(main, ["--store", str(store), "run", "tiny", "--random", "2", "--output", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert f"to {tmp_path / name}\n" in result.stderr  # the name it really wrote
        assert np.load(tmp_path / name).shape == (2, 10)
    assert victim.read_bytes() == b"precious" and not (tmp_path / "out_noext.npy").exists()


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
def test_devices_and_folders_as_input_are_clear_errors(store: Path, path: str):
    result = CliRunner().invoke(main, ["--store", str(store), "run", "tiny", "--input", path])
    assert result.exit_code == 2, result.output
    assert "Expected a regular .npy file" in result.stderr and repr(path) in result.stderr


def test_a_model_truncated_while_it_is_read_is_an_error_not_sigbus(tmp_path: Path):
    """register used to mmap the source: truncating it meanwhile killed zoo with SIGBUS."""
    from zoo.onnx import _files as onnx_info

    src = tiny_cnn(tmp_path / "m.onnx", size=SIZE)
    size = src.stat().st_size
    real_fstat = os.fstat

    def fstat_then_truncate(fd):  # another process truncates the file right after zoo sized it
        st = real_fstat(fd)
        if src.stat().st_size == size and os.path.samestat(st, src.stat()):
            threading.Thread(target=lambda: os.truncate(src, size // 2)).start()
            threading.Event().wait(0.2)
        return st

    onnx_info.os.fstat, original = fstat_then_truncate, onnx_info.os.fstat  # type: ignore[assignment]
    try:
        with pytest.raises(InvalidModelFile, match="changed size while it was being read"):
            open_registry(tmp_path / "store").register(src, name="tiny")
    finally:
        onnx_info.os.fstat = original  # type: ignore[assignment]


def test_output_into_a_missing_folder_fails_before_running(store: Path, tmp_path: Path):
    with pytest.raises(InvalidInput, match="does not exist"):
        write_file(tmp_path / "missing" / "x.npy", b"")
