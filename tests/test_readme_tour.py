"""The README's CLI tour and its Python API example run as written, in order, in an empty folder.

The commands are parsed from README.md (the ``console`` block of "## CLI tour", every ``$ `` line,
and the ``python`` block of "## Python API"), never copied here, so the README cannot drift from
what works. Each runs in a fresh temporary folder through ``bash``, with ``zoo`` and ``python3``
meaning this interpreter, and must exit 0. To keep the run short, these changes (and no others)
are made to the README's text before running it:

- ``resnet50`` becomes ``resnet18``: the same code paths at a third of the work;
- a command that builds models gets small sizes appended (:data:`SMALL`: 10 classes, 64 px) unless
  it already chooses a size, and ``zoo bench`` times briefly;
- ``224`` becomes ``64`` (the prepared batch and the Python example's input follow the small size).

A plain ``zoo`` command (words only: no quote, expansion, pipe or redirection, so bash would pass
exactly ``shlex.split`` of it) runs in-process through the same ``main`` the ``zoo`` script calls, so
the frameworks are imported once rather than by every command; the first one, and every command that
needs the shell, run through ``bash`` with ``zoo`` on PATH.

So the 1000-class defaults (``imagenet-1k`` labels) are exercised by ``tests/test_cli_images.py``;
here the 10-class models print class ids, except ``tiny``, which the tour labels itself.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

pytestmark = [pytest.mark.torch, pytest.mark.tensorflow]

README = REPO_ROOT / "README.md"
SMALL = {  # command prefix -> options appended unless the command already gives the first of them
    "zoo export": ["--num-classes", "10", "--input-size", "64"],
    "zoo parity": ["--num-classes", "10", "--input-size", "64", "--batch", "2"],
    "zoo weights export": ["--num-classes", "10"],
    "zoo weights import": ["--input-size", "64"],
    "zoo bench": ["--min-time", "0.2", "--min-iters", "3", "--warmup", "1"],
}
SUBSTITUTIONS = (("resnet50", "resnet18"), ("224", "64"))
COMMAND_TIMEOUT_S = 600
_PLAIN_ZOO = re.compile(r"zoo [\w@:./=,+ -]+")  # bash would split it exactly as shlex.split does
_COMMENT = re.compile(r"\s{2,}#\s.*$")  # the tour aligns its comments after two or more spaces


def _section(text: str, heading: str) -> str:
    start = text.index(heading + "\n")
    following = text.find("\n## ", start + len(heading))
    return text[start:following if following != -1 else len(text)]


def _first_block(section: str, language: str) -> str:
    match = re.search(rf"^```{language}\n(.*?)^```", section, re.S | re.M)
    assert match, f"no ```{language} block in the README section"
    return match.group(1)


def tour_commands(text: str) -> list[str]:
    """The ``$ `` lines of the tour, comments removed (each must be one complete shell command)."""
    block = _first_block(_section(text, "## CLI tour"), "console")
    commands = []
    for line in block.splitlines():
        if not line.startswith("$ "):
            continue
        command = _COMMENT.sub("", line[2:]).strip()
        shlex.split(command)  # balanced quotes: a comment was not cut out of the middle of a string
        commands.append(command)
    return commands


def python_example(text: str) -> str:
    return _first_block(_section(text, "## Python API"), "python")


def small(command: str) -> str:
    """The command at small sizes (see the module docstring)."""
    for old, new in SUBSTITUTIONS:
        command = command.replace(old, new)
    for prefix, options in SMALL.items():
        if command.startswith(prefix + " ") and options[0] not in command:
            command = f"{command} {' '.join(options)}"
    return command


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def test_the_tour_is_parsed_and_made_small(readme):
    commands = tour_commands(readme)
    assert len(commands) >= 20 and commands[0] == "zoo plugins"
    used = " ".join(commands)
    for feature in ("--image", "--labels", "@sha256:", "--input batch.npy", "zoo weights import", "zoo register model.onnx"):
        assert feature in used, feature
    assert small("zoo export resnet50 --framework all") == "zoo export resnet18 --framework all --num-classes 10 --input-size 64"
    assert small("zoo export resnet18 --num-classes 10 --input-size 64 --name tiny") == \
        "zoo export resnet18 --num-classes 10 --input-size 64 --name tiny"
    assert small("zoo weights export resnet50 -o r50.safetensors") == "zoo weights export resnet18 -o r50.safetensors --num-classes 10"


def _shims(folder: Path) -> dict[str, str]:
    """``zoo`` and ``python3`` on PATH as this interpreter (the one pytest runs zoo with); no store variable."""
    folder.mkdir()
    for name, argv in (("zoo", f'"{sys.executable}" -m zoo'), ("python3", f'"{sys.executable}"')):
        shim = folder / name
        shim.write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
        shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("ZOO_STORE", "ZOO_TEST_CRASH_AT")}
    env["PATH"] = f"{folder}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def _expectations(command: str) -> list[str]:
    """Key output of a tour command (stdout and stderr together)."""
    words = command.split()
    sub = " ".join(words[1:3]) if words[:2] == ["zoo", "weights"] else " ".join(words[1:2])
    if words[0] != "zoo":
        return []
    return {
        "plugins": ["torch", "tensorflow"],
        "archs": ["resnet18", "googlenet"],
        "export": ["registered "],
        "weights import": ["registered "],
        "weights export": ["wrote r50.safetensors"],
        "register": ["registered detector@1"],
        "run": ["rank" if "--output" not in command else "wrote logits"],
        "list": ["tiny@1", "resnet18@1"],
        "show": ["sha256", "transform"],
        "alias": ["resnet18@prod -> resnet18@1"],
        "verify": ["versions intact"],
        "parity": ["parity: resnet18"],
        "bench": ["resnet18@1"],
        "convert": ["int8 of resnet18@1" if "--int8" in command else "fp16 of resnet18@1"],
        "tag": ["team=vision"],
        "rm": ["deleted detector@1"],
    }.get(sub, [])


def _in_process(command: str) -> tuple[int, str]:
    """Run a plain ``zoo ...`` command through ``zoo.cli.main`` here: (exit code, stdout + stderr)."""
    import traceback

    from click.testing import CliRunner

    from zoo.cli import main

    result = CliRunner().invoke(main, shlex.split(command)[1:], prog_name="zoo",
                                env={"ZOO_STORE": None, "ZOO_TEST_CRASH_AT": None})
    output = result.stdout + result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += "".join(traceback.format_exception(result.exception))
    return result.exit_code, output


def test_plain_commands_are_recognised():
    assert _PLAIN_ZOO.fullmatch("zoo export resnet18 --framework all --num-classes 10 --input-size 64")
    assert _PLAIN_ZOO.fullmatch("zoo bench --compare resnet18@prod resnet18@3 --batch 1")
    for shell in ('zoo run "tiny@sha256:$(sha256sum model.onnx | cut -c1-12)" --image cat.jpg',
                  "zoo list > out.txt", "zoo show 'x y'", "zoo list; rm -rf ~", "zoo show $HOME", "zoo show a*"):
        assert not _PLAIN_ZOO.fullmatch(shell), shell


def test_readme_tour_and_python_example_run_as_written(readme, tmp_path, monkeypatch):
    env = _shims(tmp_path / "bin")
    work = tmp_path / "tour"
    work.mkdir()
    monkeypatch.chdir(work)  # the in-process commands, like the shell ones, use ./artifacts
    in_shell = 0
    for command in map(small, tour_commands(readme)):
        if _PLAIN_ZOO.fullmatch(command) and in_shell:
            code, output = _in_process(command)
        else:
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=work, env=env, capture_output=True,
                                    text=True, timeout=COMMAND_TIMEOUT_S)
            code, output = result.returncode, result.stdout + result.stderr
            in_shell += command.startswith("zoo ")  # the first zoo command runs the installed script
        assert code == 0, f"`{command}` exited {code}:\n{output[-4000:]}"
        for needle in _expectations(command):
            assert needle in output, f"`{command}` did not print {needle!r}:\n{output[-4000:]}"
        if command.startswith(("zoo run tiny", 'zoo run "tiny@sha256:')):
            rows = subprocess.run(["bash", "-c", command + " --json"], cwd=work, env=env, capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT_S, check=True).stdout
            labels = (work / "classes.txt").read_text().split()
            assert all(t["label"] == labels[t["class"]] for t in json.loads(rows)[0]["top"])  # names, from classes.txt

    example = python_example(readme)
    for old, new in SUBSTITUTIONS:
        example = example.replace(old, new)
    result = subprocess.run([sys.executable, "-c", example], cwd=work, env=env, capture_output=True, text=True,
                            timeout=COMMAND_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resnet18@1 cpu (1, 10)" in result.stdout

    import zoo

    registry = zoo.open_registry(work / "artifacts")
    detector_gone = [v.ref for v in registry.list("detector")]
    assert detector_gone == []  # the tour's own `zoo rm`
    tiny = registry.resolve("tiny")
    assert tiny.labels is not None and list(tiny.labels) == (work / "classes.txt").read_text().split()
    assert tiny.transform is not None and tiny.transform.crop == (64, 64)
    prod = registry.resolve("resnet18@prod")
    assert prod.framework == "torch" and prod.version == 1
    assert registry.resolve("resnet18:tensorflow@2").framework == "tensorflow"
