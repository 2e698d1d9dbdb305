"""The CLI documents itself: every command has help, prints data as --json, and is in the README.

In the style of sqlite-utils' test_docs.py: walks the click command tree, so a new command is covered
the moment it is registered.
"""
from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from zoo.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # zoo's group imports each command's module here (they load lazily)
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        found.append((prefix + (name,), cmd))
        if isinstance(cmd, click.Group):
            found.extend(_commands(cmd, prefix + (name,)))
    return found


COMMANDS = _commands(main)
LEAVES = [(path, cmd) for path, cmd in COMMANDS if not isinstance(cmd, click.Group)]
IDS = [" ".join(path) for path, _ in COMMANDS]
LEAF_IDS = [" ".join(path) for path, _ in LEAVES]


def test_the_tree_is_walked():
    assert {"export", "list", "show", "run", "weights import"} <= set(IDS)


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=IDS)
def test_every_command_has_help(path, cmd):
    assert cmd.help and cmd.help.strip(), f"`zoo {' '.join(path)}` has no docstring"
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert cmd.help.strip().splitlines()[0] in " ".join(result.output.split()), "the help shows the docstring"
    undocumented = [p.opts[0] for p in cmd.params if isinstance(p, click.Option) and not p.hidden and not p.help]
    assert not undocumented, f"`zoo {' '.join(path)}`: options without help: {undocumented}"


@pytest.mark.parametrize("path,cmd", LEAVES, ids=LEAF_IDS)
def test_every_command_speaks_json(path, cmd):
    opts = {opt for param in cmd.params for opt in getattr(param, "opts", [])}
    assert "--json" in opts, f"`zoo {' '.join(path)}` has no --json for scripts"


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=IDS)
def test_every_command_is_in_the_readme(path):
    pattern = r"\bzoo " + r"\s+".join(map(re.escape, path)) + r"\b"
    assert re.search(pattern, README), f"`zoo {' '.join(path)}` does not appear in README.md"
