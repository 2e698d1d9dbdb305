"""`zoo gc`: list artifacts no version references, and delete them only when asked."""
from __future__ import annotations

import click

from .._registry import CRASH_WINDOW_S
from ._app import emit_json, info, json_option, main, pass_ctx, table
from ._render import fmt_size


@main.command("gc")
@click.option("--yes", is_flag=True, help="Delete the artifacts listed (without it, gc only lists).")
@click.option("--older-than", "older_than", type=float, default=CRASH_WINDOW_S, show_default=True, metavar="SECONDS",
              help="Only artifacts published at least this long ago (younger ones may belong to a writer about to commit).")
@json_option
@pass_ctx
def gc_cmd(ctx, yes, older_than, as_json) -> None:
    """List stored artifacts that no version references; delete them with --yes.

    Such artifacts are left by a writer that crashed or by an interrupted `zoo rm`. The
    store's identity is checked first: gc never deletes on the word of a missing, empty or
    foreign registry.db (that is exit 7 with the way to recover).
    """
    registry = ctx.registry()
    orphans = registry.gc(older_than_s=older_than, delete=yes)
    if as_json:
        emit_json({"deleted": yes, "artifacts": orphans})
        return
    if orphans:
        table(None, ["sha256", "size", "age (h)", "location"],
              [(o.digest, fmt_size(o.size), f"{o.age_s / 3600:.1f}", o.location) for o in orphans])
    total = fmt_size(sum(o.size for o in orphans)) or "0 B"
    if yes:
        info(f"deleted {len(orphans)} unreferenced artifact(s), {total}")
    elif orphans:
        info(f"{len(orphans)} unreferenced artifact(s), {total}; `zoo gc --yes` deletes them")
    else:
        info(f"no unreferenced artifact older than {older_than:g} s")
    young = len(registry.gc(older_than_s=0)) - (0 if yes else len(orphans))
    if young > 0:
        info(f"{young} younger unreferenced artifact(s) kept (a writer may be committing them; see --older-than)")
