"""The ``zoo`` command line: thin commands that parse, call the API, and render.

Each command group lives in its own module and registers itself on :data:`main`. Errors from
:mod:`zoo.errors` become one readable message and the error's exit code; a traceback
appears only with ``--debug``. No framework is imported here.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from .. import STORE_ENV
from ..errors import ZooError


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


def emit_json(data: Any) -> None:
    """Print ``data`` (records, lists of records, dicts) as JSON on stdout."""
    from ..records import _jsonable

    click.echo(json.dumps(_jsonable(data), indent=2, sort_keys=False, default=str))


def console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Pipes and files get a wide table instead of rich's 80-column default, so nothing folds.
    width = None if stream.isatty() else 200
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


class Styled(str):
    """A table cell whose rich markup is meant (``Styled("[green]ok[/]")``); other cells print as is."""


def _cell(value: Any) -> str:
    from rich.markup import escape

    if value is None:
        return "-"
    return value if isinstance(value, Styled) else escape(str(value))


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, caption: str | None = None):
    """Print a readable table (rich); ``None`` cells render as a dash, brackets in values survive."""
    from rich.table import Table

    t = Table(title=_cell(title) if title else None, caption=_cell(caption) if caption else None, header_style="bold")
    for col in columns:
        right = col.endswith(("params", "non-trainable", "MACs", "size", "version", "#", "ms", "/s", "x"))
        t.add_column(col, justify="right" if right else "left", overflow="fold")
    for row in rows:
        t.add_row(*[_cell(v) for v in row])
    console().print(t)


def info(message: str) -> None:
    """One status line on stderr, so stdout stays clean for --json and pipes."""
    click.echo(message, err=True)


def progress():
    """A progress bar on stderr (hidden when stderr is not a terminal)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console(stderr=True), transient=False,
    )


class ZooGroup(click.Group):
    """Maps ZooError to a message and exit code; everything else to a short internal-error line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            if _debug(ctx):
                raise
            click.secho(f"error: {exc.message}", fg="red", err=True)
            if exc.hint:
                click.echo(f"  hint: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # a bug or an environment fault: say so without a wall of text
            if _debug(ctx):
                raise
            click.secho(f"internal error: {type(exc).__name__}: {exc}", fg="red", err=True)
            click.echo("  hint: rerun with --debug for the traceback, and report it", err=True)
            ctx.exit(70)


def _debug(ctx: click.Context) -> bool:
    obj = ctx.find_object(Context)
    return bool(obj and obj.debug) or "--debug" in sys.argv


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="zoo", prog_name="zoo")
@click.pass_context
def main(ctx: click.Context, store: str | None, artifacts: str | None, debug: bool) -> None:
    """zoo: build reference CNNs in any framework, version them as ONNX, run them on ONNX Runtime.

    \b
    References:  NAME            latest version      e.g. resnet50
                 NAME@N          version N           e.g. resnet50@3
                 NAME@ALIAS      an alias            e.g. resnet50@prod
                 NAME:FRAMEWORK  latest built by it  e.g. resnet50:tensorflow, resnet50:torch@prod
    """
    ctx.obj = Context(store=store, debug=debug, artifacts=artifacts)


# Command modules register themselves on `main` when imported (each imports no framework).
from . import bench, browse, copy, export, inventory, parity, run, stores, weights  # noqa: E402, F401
