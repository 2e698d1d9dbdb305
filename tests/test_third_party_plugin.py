"""A plugin installed with pip appears in zoo with no change to zoo; broken ones break nothing.

The toy plugin (tests/fixtures/toy_plugin) is a real distribution, installed with pip into a
temporary folder; the duplicate, broken and missing-framework plugins are distributions written
by hand (a dist-info folder is all an installed entry point is).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "toy_plugin"


def _dist_info(site: Path, dist: str, entry_points: dict[str, str]) -> None:
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[zoo.plugins]\n{lines}\n")


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(FIXTURE)],
        check=True, cwd=build, env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    assert (site / "zoo_toy" / "__init__.py").is_file()
    return site


def zoo(*args: str, sites: list[Path], store: Path) -> subprocess.CompletedProcess:
    path = [*map(str, sites), *filter(None, [os.environ.get("PYTHONPATH")])]  # the zoo under test stays importable
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "ZOO_STORE": str(store)}
    return subprocess.run([sys.executable, "-m", "zoo.cli", *args], capture_output=True, text=True, env=env)


def test_pip_installed_plugin_is_listed(toy_site, tmp_path):
    result = zoo("plugins", "--json", sites=[toy_site], store=tmp_path)
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["toy"]["available"] is True
    assert plugins["toy"]["distribution"] == "zoo-toy-plugin"
    assert plugins["toy"]["architectures"] == ["toy-linear"]
    assert {"torch", "tensorflow"} <= set(plugins)


def test_third_party_plugin_exports_registers_and_runs(toy_site, tmp_path):
    store = tmp_path / "store"
    result = zoo("export", "toy-linear", "--framework", "toy", "--num-classes", "7", "--input-size", "32", "--json",
                 sites=[toy_site], store=store)
    assert result.returncode == 0, result.stderr
    (exported,) = json.loads(result.stdout)
    version = exported["version"]
    assert (version["framework"], version["arch"], version["num_classes"]) == ("toy", "toy-linear", 7)
    assert version["params"]["trainable"] == 7 * 3 + 7
    # the toy names its graph pixels -> scores with batch 'n': the core's contract pass renamed them
    assert [(t["name"], t["shape"]) for t in version["signature"]["inputs"]] == [("images", ["batch", 3, 32, 32])]
    assert [(t["name"], t["shape"]) for t in version["signature"]["outputs"]] == [("logits", ["batch", 7])]
    assert "renamed graph value 'pixels' to 'images'" in version["provenance"]["export_notes"]

    batch = np.random.default_rng(1).standard_normal((2, 3, 32, 32), dtype=np.float32)
    np.save(tmp_path / "x.npy", batch)
    run = zoo("run", "toy-linear:toy", "--input", str(tmp_path / "x.npy"), "--json", sites=[toy_site], store=store)
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert len(rows) == 2 and len(rows[0]["top"]) == 5


def test_duplicate_plugin_names_are_an_error(toy_site, tmp_path):
    dup = tmp_path / "dup"
    _dist_info(dup, "zoo-toy-clone", {"toy": "zoo_toy:ToyPlugin"})
    result = zoo("plugins", sites=[toy_site, dup], store=tmp_path / "s")
    assert result.returncode != 0
    assert "Two plugins are named 'toy'" in result.stderr
    assert "zoo-toy-clone" in result.stderr and "zoo-toy-plugin" in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_and_missing_framework_plugins_break_nothing(toy_site, tmp_path):
    extra = tmp_path / "extra"
    _dist_info(extra, "zoo-broken", {"broken": "zoo_no_such_module:Plugin"})
    _dist_info(extra, "zoo-ghost", {"ghost": "zoo_toy:GhostPlugin"})
    result = zoo("plugins", "--json", sites=[toy_site, extra], store=tmp_path / "s")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["broken"]["available"] is False
    assert "zoo_no_such_module" in plugins["broken"]["reason"]
    assert plugins["ghost"]["available"] is False
    assert "zoo_no_such_framework" in plugins["ghost"]["reason"]
    assert plugins["ghost"]["hint"] == "pip install 'zoo-ghost[framework]'"
    table = zoo("plugins", sites=[toy_site, extra], store=tmp_path / "s")
    assert "zoo-ghost[framework]" in table.stdout, "brackets in a hint are text, not rich markup"
    assert plugins["toy"]["available"] is True

    (tmp_path / "s").mkdir()  # an empty folder (like a clone's artifacts/) lists as an empty registry
    listing = zoo("list", "--json", sites=[toy_site, extra], store=tmp_path / "s")
    assert listing.returncode == 0 and json.loads(listing.stdout) == []

    using = zoo("export", "toy-linear", "--framework", "ghost", sites=[toy_site, extra], store=tmp_path / "s")
    assert using.returncode == 4
    assert "zoo_no_such_framework" in using.stderr and "pip install 'zoo-ghost[framework]'" in using.stderr
