"""Habits a reviewer would otherwise check by hand: cheap reads of the tree, nothing built or imported."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SOURCES = [ROOT / "plugins" / "zoo_torch" / "__init__.py", ROOT / "plugins" / "zoo_tensorflow" / "__init__.py",
                  ROOT / "tests" / "fixtures" / "toy_plugin" / "zoo_toy" / "__init__.py"]


def test_pyproject_and_changelog_versions_agree():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    headings = re.findall(r"^## (\d+\.\d+\.\d+)\b", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings, "CHANGELOG.md has no '## X.Y.Z' heading"
    assert headings[0] == version, f"pyproject.toml says {version}, the newest CHANGELOG.md heading {headings[0]}"


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_benchmarks_import_nothing_by_patching_sys_path(path):
    """They run as `python -m benchmarks.NAME` with zoo installed; sys.path and PYTHONPATH are left alone."""
    tree = ast.parse(path.read_text(), str(path))
    patched = [node.lineno for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
               and node.value.id == "sys"]
    assert not patched, f"{path.name} touches sys.path on line(s) {patched}"
    assert "PYTHONPATH" not in path.read_text(), f"{path.name} sets PYTHONPATH for its children"


@pytest.mark.parametrize("path", PLUGIN_SOURCES, ids=lambda p: p.parent.name)
def test_plugin_versions_are_not_hard_coded(path):
    """A plugin's version is read from its distribution's metadata (zoo.plugins.distribution_version)."""
    literal = [node.lineno for node in ast.walk(ast.parse(path.read_text(), str(path)))
               if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
               and any(isinstance(t, ast.Name) and t.id in ("version", "__version__") for t in node.targets)]
    assert not literal, f"{path} hard-codes a version on line(s) {literal}"


def test_pre_commit_runs_what_ci_runs():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if re.match(r"\s*python3? -m (ruff|mypy)\b", line)]
    hooks = re.findall(r"^\s*entry:\s*(.+?)\s*$", (ROOT / ".pre-commit-config.yaml").read_text(), re.M)
    assert ci and hooks == ci
