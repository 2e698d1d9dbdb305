"""`zoo copy`: copy versions, with their metadata and reports, from one store to another."""
from __future__ import annotations

import click

from ._app import Context, emit_json, info, json_option, main, pass_ctx, table


@main.command("copy")
@click.argument("refs", nargs=-1, metavar="[REF]...")
@click.option("--model", metavar="NAME", help="Copy every version of this model.")
@click.option("--all", "everything", is_flag=True, help="Copy every version of every model.")
@click.option("--from", "source", metavar="STORE", help="Source store (default: --store / ZOO_STORE).")
@click.option("--to", "target", metavar="STORE", required=True, help="Target store: a folder or postgresql://...")
@click.option("--artifacts", metavar="S3URL|DIR", help="The target's artifacts, if not where it recorded them.")
@click.option("--no-aliases", is_flag=True, help="Do not set the copied versions' aliases in the target.")
@click.option("--gated", is_flag=True,
              help="Copy only versions whose latest parity report passed (`zoo parity`); say which were held back.")
@json_option
@pass_ctx
def copy_cmd(ctx: Context, refs: tuple[str, ...], model: str | None, everything: bool, source: str | None, target: str,
             artifacts: str | None, no_aliases: bool, gated: bool, as_json: bool) -> None:
    """Copy versions between stores, checking every sha256 end to end.

    \b
    zoo copy resnet50@3 --to postgresql://ci@db/zoo      one version
    zoo copy --model resnet50 --from ./scratch --to URL  every version of a model
    zoo copy --all --from ./artifacts --to URL           everything
    zoo copy --model resnet50 --from ./scratch --to URL --gated   only what passed `zoo parity`

    Facts, tags, reports and aliases come along; numbers are the target's own. Repeating a copy
    adds only what is missing.
    """
    from .. import open_registry
    from .._copying import copy_versions, select_versions

    src = open_registry(source, artifacts=None) if source is not None else ctx.registry()
    dst = open_registry(target, artifacts=artifacts)
    held_back: list = []
    versions = select_versions(src, refs=refs, model=model, everything=everything, gated=gated, held_back=held_back)
    for v in held_back:
        info(f"held back {v.ref}: no passing parity report (run `zoo parity {v.name}` first)")

    def say(r) -> None:
        if not as_json:
            info(f"{r.source} -> {r.target}: " + ("copied" if r.created else "already there")
                 + (f", {r.reports_added} report(s)" if r.reports_added else "")
                 + (f", alias {', '.join(r.aliases_set)}" if r.aliases_set else ""))

    results = copy_versions(src, dst, versions, aliases=not no_aliases, on_copied=say)
    if as_json:
        emit_json(results)
        return
    table(f"copied into {dst.location}", ["from", "to", "status", "reports", "aliases set"],
          [(r.source, r.target, "copied" if r.created else "already there", r.reports_added, ", ".join(r.aliases_set) or None)
           for r in results])
