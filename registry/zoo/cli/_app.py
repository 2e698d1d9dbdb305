"""The ``zoo`` group and what every command module shares (context, JSON, tables, progress, errors).

Command modules import from here; :data:`main` imports each by name (:data:`COMMAND_MODULES`) only when its command
runs: one direction, no cycle.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import math
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click

from .. import STORE_ENV
from .._distribution import DISTRIBUTION
from ..errors import INTERNAL_ERROR_EXIT, INTERRUPTED_EXIT, ZooError
from ._table import Styled


@dataclass
class Context:
    """What every command gets: where the store is, and how to talk."""

    store: str | None
    debug: bool
    artifacts: str | None = None  # for a PostgreSQL store: where its artifacts are, if not where it recorded

    def registry(self):
        from .. import open_registry

        return open_registry(self.store, artifacts=self.artifacts)


pass_ctx = click.make_pass_decorator(Context)

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table.")


_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """Records as dicts, tuples as lists, NaN and infinities as null (not JSON; a report may hold them): one walk."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    kind = type(value)
    names = _FIELDS.get(kind)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def emit_json(data: Any) -> None:
    """Print ``data`` (records, lists of records, dicts) as strict JSON on stdout (NaN -> null): indented on
    a terminal, one line for pipes and files (the C encoder: 10,000 versions in about a second)."""
    text = json.dumps(_plain(data), indent=2 if sys.stdout.isatty() else None, default=str, allow_nan=False)
    click.echo(text)


def printable(text: str) -> str:
    """``text`` with every control or format character (ESC, newline, bidi override...) shown as an
    escape like ``\\x1b``, so that outside text cannot move the cursor, recolour or hide output."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Pipes and files get a wide table instead of rich's 80-column default, so nothing folds.
    width = None if stream.isatty() else 200
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Styled):
        return value
    text = str(value)
    if text.isprintable():  # nearly every cell: nothing to escape
        return text
    # Line breaks are layout (a status and its hint); every other control character is escaped.
    return "\n".join(printable(line) for line in text.split("\n"))


RIGHT_ALIGNED = ("params", "non-trainable", "MACs", "size", "version", "#", "ms", "/s", "x")  # column names ending so


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, caption: str | None = None):
    """Print a table on stdout (:mod:`._table`); ``None`` cells render as a dash, brackets in values survive."""
    from ._table import print_table

    print_table(sys.stdout, _cell(title) if title else None, columns, ([_cell(v) for v in row] for row in rows),
                right=[c.endswith(RIGHT_ALIGNED) for c in columns], caption=_cell(caption) if caption else None)


def info(message: str) -> None:
    """One status line on stderr, so stdout stays clean for --json and pipes."""
    click.echo(printable(message), err=True)


def progress():
    """A progress bar on stderr (hidden when stderr is not a terminal)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console(stderr=True), transient=False,
    )


class ZooGroup(click.Group):
    """Maps ZooError to a message and its exit code; everything else to a short internal-error line.

    ``--debug`` is accepted anywhere before a ``--`` (``zoo list --debug`` too): it adds the
    traceback and never changes the exit code.

    Commands load lazily: ``modules`` maps each command's name to the module of :mod:`zoo.cli` that
    registers it, imported only when that command runs (``zoo list`` imports ``browse`` alone) or when
    the commands are listed (``zoo --help``). Invariant: importing every module registers exactly
    these names, each from the module named (``tests/test_cli.py`` checks).
    """

    def __init__(self, *args: Any, modules: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.modules = dict(modules or {})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.modules:
            importlib.import_module(f"{__package__}.{self.modules[cmd_name]}")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.modules})

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        if "--debug" in args[:end]:
            args = ["--debug", *(a for a in args[:end] if a != "--debug"), *args[end:]]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            if _debug(ctx):
                traceback.print_exc(file=sys.stderr)
            click.secho(f"error: {printable(exc.message)}", fg="red", err=True)
            if exc.hint:
                click.echo(f"  hint: {printable(exc.hint)}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(INTERRUPTED_EXIT)
        except Exception as exc:  # a bug or an environment fault: say so without a wall of text
            if _debug(ctx):
                traceback.print_exc(file=sys.stderr)
            click.secho(f"internal error: {type(exc).__name__}: {printable(str(exc))}", fg="red", err=True)
            if not _debug(ctx):
                click.echo("  hint: rerun with --debug for the traceback, and report it", err=True)
            ctx.exit(INTERNAL_ERROR_EXIT)


def _debug(ctx: click.Context) -> bool:
    obj = ctx.find_object(Context)
    return bool(obj and obj.debug)


COMMAND_MODULES = {  # command -> the module under zoo.cli that defines it (one per line: merges stay quiet)
    "alias": "browse",
    "archs": "inventory",
    "bench": "bench",
    "convert": "export",
    "copy": "copy",
    "deploy": "deploy",
    "eval": "evaluate",
    "events": "events",
    "export": "export",
    "gc": "gc",
    "list": "browse",
    "parity": "parity",
    "plugins": "inventory",
    "policy": "promote",
    "promote": "promote",
    "register": "export",
    "report": "ui",
    "rm": "browse",
    "run": "run",
    "serve": "serve",
    "show": "browse",
    "store": "stores",
    "tag": "browse",
    "ui": "ui",
    "verify": "browse",
    "weights": "weights",
}


@click.group(cls=ZooGroup, modules=COMMAND_MODULES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--store",
    envvar=STORE_ENV,
    metavar="DIR|URL",
    help=f"Registry store: a folder (default: ./artifacts) or postgresql://user@host:port/db (env {STORE_ENV}).",
)
@click.option(
    "--artifacts",
    metavar="S3URL|DIR",
    help="A PostgreSQL store's artifacts, if not where `zoo store init` recorded them: s3://bucket/prefix or a "
         "folder (env ZOO_ARTIFACTS).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks on errors (also accepted after the command); exit codes stay.")
@click.version_option(package_name=DISTRIBUTION, prog_name="zoo")  # read only when --version is given
@click.pass_context
def main(ctx: click.Context, store: str | None, artifacts: str | None, debug: bool) -> None:
    """zoo: build reference CNNs in any framework, version them as ONNX, run them on ONNX Runtime.

    \b
    References:  NAME            latest version      e.g. resnet50
                 NAME@N          version N           e.g. resnet50@3
                 NAME@ALIAS      an alias            e.g. resnet50@prod
                 NAME:FRAMEWORK  latest built by it  e.g. resnet50:tensorflow, resnet50:torch@prod
                 NAME@sha256:HEX content, 12+ hex    e.g. resnet50@sha256:9f86d081884c
    """
    ctx.obj = Context(store=store, debug=debug, artifacts=artifacts)

