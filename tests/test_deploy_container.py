"""The Containerfile, checked without a container engine: its COPY set builds and installs zoo in a fresh venv
(offline, --no-deps: the cheap check; the full install from the index is `slow`), it runs as a non-root user,
its HEALTHCHECK probes /v2/health/ready, and its ENTRYPOINT + CMD parse with zoo's own CLI."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

RECIPE = REPO_ROOT / "Containerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in RECIPE.read_text().splitlines():
        if not current and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        current += raw.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        keyword, _, rest = current.strip().partition(" ")
        lines.append((keyword.upper(), rest.strip()))
        current = ""
    return lines


def _exec_form(keyword: str) -> list[str]:
    found = [rest for k, rest in instructions() if k == keyword]
    assert len(found) == 1, f"one {keyword} expected"
    value = json.loads(found[0])  # exec form: no shell between the container and zoo
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def test_runs_as_a_non_root_user_and_checks_readiness():
    steps = instructions()
    keywords = [k for k, _ in steps]
    assert steps[0][0] == "FROM" and "slim" in steps[0][1]
    user = [rest for k, rest in steps if k == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")  # installs as root, runs as the user
    health = " ".join(rest for k, rest in steps if k == "HEALTHCHECK")
    assert "/v2/health/ready" in health and "--interval" in health
    assert {"8080", "8081"} <= set(" ".join(rest for k, rest in steps if k == "EXPOSE").split())
    cmd = _exec_form("CMD")
    assert cmd[cmd.index("--http-port") + 1] == "8080" and cmd[cmd.index("--grpc-port") + 1] == "8081"
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"  # localhost inside a container is unreachable from outside


def test_the_command_line_parses_with_zoos_cli():
    import click

    from zoo.cli import main

    argv = _exec_form("ENTRYPOINT") + _exec_form("CMD")
    assert argv[0] == "zoo"
    parent = click.Context(main, info_name="zoo")
    command = main.get_command(parent, argv[1])
    assert isinstance(command, click.Command) and not isinstance(command, click.Group)
    sub = command.make_context(argv[1], argv[2:], parent=parent)  # click.UsageError on an unknown option or bad value
    assert sub.params["http_port"] == 8080 and sub.params["grpc_port"] == 8081


def _context(tmp_path: Path) -> Path:
    """A build context made by the recipe's COPY lines (only what they name, from the repository)."""
    ctx = tmp_path / "opt-zoo"
    ctx.mkdir()
    for keyword, rest in instructions():
        if keyword != "COPY":
            continue
        *sources, dest = shlex.split(rest)
        for source in sources:
            src, target = REPO_ROOT / source, ctx / (dest if not dest.endswith("/") and dest not in (".", "./") else source)
            if src.is_dir():
                shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                shutil.copy2(src, target)
    return ctx


def _install_lines() -> list[list[str]]:
    found = []
    for keyword, rest in instructions():
        if keyword == "RUN" and "pip install" in rest:
            words = shlex.split(rest.split("&&")[0])
            found.append(words[words.index("install") + 1:])
    assert found, "the recipe installs zoo with pip"
    return found


def _venv(tmp_path: Path, *, system: bool) -> Path:
    """A fresh venv; with ``system`` it sees this environment's packages and has no pip of its own (this one's
    pip installs into it with --python: no ensurepip, seconds instead of half a minute)."""
    venv = tmp_path / "venv"
    flags = ["--system-site-packages", "--without-pip"] if system else []
    subprocess.run([sys.executable, "-m", "venv", *flags, str(venv)], check=True, capture_output=True, timeout=120)
    return venv / "bin" / "python"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def test_the_install_step_builds_zoo_from_the_copied_files(tmp_path):
    """The recipe's pip line, offline and without dependencies (they come from this environment): the COPY set is
    enough to build the wheel, package data included, and the installed `zoo` runs."""
    ctx, python = _context(tmp_path), _venv(tmp_path, system=True)
    for args in _install_lines():
        proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                               "--no-build-isolation", "--no-index", *args],
                              cwd=ctx, env=_clean_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    probe = ("import zoo, zoo.deploy.kserve as k, zoo.labels as l; print(zoo.__file__); "
             "assert k.schema()['properties']['spec']; assert len(l.builtin_labels('imagenet-1k')) == 1000")
    proc = subprocess.run([str(python), "-c", probe], env=_clean_env(), capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert str(python.parent.parent) in proc.stdout  # the venv's own copy, not this checkout
    zoo = python.parent / "zoo"
    proc = subprocess.run([str(zoo), "deploy", "kserve", "--help"], env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--storage-uri" in proc.stdout


@pytest.mark.slow
def test_the_full_install_resolves_from_the_index(tmp_path):
    """The recipe's pip line verbatim in a fresh venv without this environment's packages (downloads ~200 MB)."""
    ctx, python = _context(tmp_path), _venv(tmp_path, system=False)
    for args in _install_lines():
        proc = subprocess.run([str(python), "-m", "pip", "install", *args], cwd=ctx, env=_clean_env(),
                              capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-2000:]
    proc = subprocess.run([str(python.parent / "zoo"), "--help"], env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    probe = "import importlib.util as u; print([m for m in ('torch', 'tensorflow') if u.find_spec(m)])"
    banned = subprocess.run([str(python), "-c", probe], env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert banned.stdout.strip() == "[]"  # a CPU serving image: ONNX Runtime only
