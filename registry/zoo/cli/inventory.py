"""`zoo plugins` and `zoo archs`: what can be built here, and with how many parameters."""
from __future__ import annotations

from typing import Any

import click

from ._app import Styled, emit_json, info, json_option, main, progress, table
from ._render import fmt_int


@main.command("plugins")
@json_option
def plugins_cmd(as_json: bool) -> None:
    """List framework plugins and whether each can run here.

    A missing framework is shown with the command that installs it.
    """
    from ..plugins import plugin_statuses

    statuses = plugin_statuses()
    if as_json:
        emit_json(statuses)
        return
    table(
        "zoo plugins",
        ["plugin", "framework", "version", "status", "architectures"],
        [
            (
                s.name,
                f"{s.display_name or '?'} {s.framework_version or ''}".strip(),
                s.version,
                "available" if s.available else f"unavailable: {s.reason}\n{s.hint or ''}".strip(),
                len(s.architectures),
            )
            for s in statuses
        ],
    )


@main.command("archs")
@click.option("--framework", "-f", default="all", show_default=True, help="Plugin name(s), comma-separated, or 'all'.")
@click.option("--num-classes", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Classifier width (the published reference counts are for 1000).")
@click.option("--build", "build", is_flag=True,
              help="Build every model and count it, compared with the tables (tens of seconds).")
@json_option
def archs_cmd(framework: str, num_classes: int, build: bool, as_json: bool) -> None:
    """Architectures per plugin, with parameter counts.

    Counts per framework, side by side, compared with the published reference; "from" says who
    defines the architecture (zoo's nine, or the plugin that contributes it). They come from
    the architecture tables (zoo.architectures: instant, and the plugin contract tests check
    every build against them); --build builds each model and counts it instead. Exits 1 if a
    count differs from the reference or, with --build, from the tables.
    """
    from .._inventory import count_architectures
    from ..architectures import inference_graph_note
    from ..plugins import resolve_frameworks

    plugins = resolve_frameworks(framework)
    if build:
        with progress() as bar:
            task = bar.add_task("counting parameters", total=sum(len(p.architectures()) for p in plugins))

            def step(label: str) -> None:
                bar.update(task, description=label, advance=1)

            rows = count_architectures(plugins, build=True, num_classes=num_classes, progress=step)
            bar.update(task, description="counted")
    else:
        rows = count_architectures(plugins, num_classes=num_classes,
                                   progress=lambda label: info(f"building {label}: not in the architecture tables"))
    if as_json:
        emit_json(rows)
    else:
        _render(rows, plugins, num_classes=num_classes, caption=inference_graph_note(r.arch for r in rows))
    bad = sum(not r.ok for r in rows)
    if bad:
        raise click.ClickException(f"{bad} architecture(s) do not match the reference or table parameter counts")


def _render(rows: list[Any], plugins: list[Any], *, num_classes: int, caption: str | None) -> None:
    columns = ["arch", "from", "reference params"]
    for p in plugins:
        columns += [f"{p.name} params", f"{p.name} non-trainable"]
    columns.append("match")
    cells_rows = []
    for r in rows:
        cells: list[Any] = [r.arch, f"plugin {r.contributed_by}" if r.contributed_by else "zoo", fmt_int(r.reference)]
        for p in plugins:
            c = r.frameworks.get(p.name)
            if c is None:
                cells += [None, None]
                continue
            mark = "" if c.ok else " ✗"
            cells += [f"{c.trainable:,}{mark}", fmt_int(c.non_trainable)]
        cells.append(Styled("[green]yes[/]" if r.ok else "[bold red]MISMATCH[/]"))
        cells_rows.append(cells)
    sources = sorted({c.source for r in rows for c in r.frameworks.values()})
    how = "counted from " + " and ".join("the architecture tables" if s == "tables" else "built models" for s in sources)
    table(f"architectures ({num_classes} classes)", columns, cells_rows, caption="\n".join(filter(None, [caption, how])))
