"""`zoo plugins` and `zoo archs`: what can be built here, and with how many parameters."""
from __future__ import annotations

from typing import Any

import click

from . import Styled, emit_json, json_option, main, progress, table
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
@json_option
def archs_cmd(framework: str, as_json: bool) -> None:
    """Architectures per plugin, with parameter counts.

    Full-size (1000-class) counts, side by side per framework.

    Counts are computed by building each model, and compared with the published reference.
    """
    from ..plugins import resolve_frameworks
    from ..reference import INFERENCE_BUILD_OPTIONS, REFERENCE_PARAMS

    plugins = resolve_frameworks(framework)
    archs = sorted({a for p in plugins for a in p.architectures()}, key=_arch_order)
    results: list[dict[str, Any]] = []
    with progress() as bar:
        task = bar.add_task("counting parameters", total=sum(len(p.architectures()) for p in plugins))
        for arch in archs:
            row: dict[str, Any] = {"arch": arch, "reference": REFERENCE_PARAMS.get(arch), "frameworks": {}}
            for plugin in plugins:
                if arch not in plugin.architectures():
                    continue
                bar.update(task, description=f"{plugin.name}: {arch}")
                counts = plugin.count_params(plugin.build(arch, num_classes=1000, **INFERENCE_BUILD_OPTIONS.get(arch, {})))
                row["frameworks"][plugin.name] = {
                    "trainable": counts.trainable,
                    "non_trainable": counts.non_trainable,
                    "matches_reference": row["reference"] is None or counts.trainable == row["reference"],
                }
                bar.advance(task)
            results.append(row)
    if as_json:
        emit_json(results)
        return
    columns = ["arch", "reference params"]
    for p in plugins:
        columns += [f"{p.name} params", f"{p.name} non-trainable"]
    columns.append("match")
    rows = []
    mismatches = 0
    for r in results:
        cells: list[Any] = [r["arch"], fmt_int(r["reference"])]
        ok = True
        for p in plugins:
            c = r["frameworks"].get(p.name)
            if c is None:
                cells += [None, None]
                continue
            ok &= c["matches_reference"]
            mark = "" if c["matches_reference"] else " ✗"
            cells += [f"{c['trainable']:,}{mark}", fmt_int(c["non_trainable"])]
        mismatches += not ok
        cells.append(Styled("[green]yes[/]" if ok else "[bold red]MISMATCH[/]"))
        rows.append(cells)
    caption = "googlenet: inference graph (the auxiliary heads add 6,379,984 in the training graph)"
    table("architectures (1000 classes)", columns, rows, caption=caption)
    if mismatches:
        raise click.ClickException(f"{mismatches} architecture(s) do not match the reference parameter counts")


def _arch_order(arch: str) -> int:
    from ..reference import ARCHITECTURES

    return ARCHITECTURES.index(arch) if arch in ARCHITECTURES else len(ARCHITECTURES)
