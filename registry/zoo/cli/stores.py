"""`zoo store init` and `zoo store info`: create, migrate and describe a (shared) store."""
from __future__ import annotations

import click

from ._app import Context, emit_json, info, json_option, main, pass_ctx, table


@main.group("store")
def store_group() -> None:
    """Create and inspect stores (a PostgreSQL store is created explicitly, once)."""


@store_group.command("init")
@click.argument("store", required=False, metavar="[STORE]")
@click.option("--artifacts", metavar="S3URL|DIR",
              help="Where a new PostgreSQL store keeps artifacts: s3://bucket/prefix or a folder (default: env "
                   "ZOO_ARTIFACTS).")
@click.option("--grant-read", multiple=True, metavar="ROLE", help="Let this PostgreSQL role read the store (repeatable).")
@click.option("--grant-write", multiple=True, metavar="ROLE", help="Let this PostgreSQL role also write (repeatable).")
@json_option
@pass_ctx
def init_cmd(ctx: Context, store: str | None, artifacts: str | None, grant_read: tuple[str, ...],
             grant_write: tuple[str, ...], as_json: bool) -> None:
    """Create a store, or migrate an older one (idempotent).

    \b
    zoo store init postgresql://admin@db/zoo --artifacts s3://models/zoo --grant-read apps
    zoo store init ./artifacts                 a folder store (also created by its first write)
    """
    from .. import default_store, open_registry
    from ..store.location import is_database_url

    where = store or ctx.store or str(default_store())
    if is_database_url(where):
        from ..store.shared import init_shared

        result = init_shared(where, artifacts=artifacts or ctx.artifacts, grant_read=grant_read, grant_write=grant_write)
        if as_json:
            emit_json(result.to_dict())
            return
        info(f"{result.done}: {result.store} (store id {result.store_id}, schema {result.schema_version}), "
             f"artifacts at {result.artifacts}" + "".join(f"; {r} may read" for r in grant_read)
             + "".join(f"; {r} may write" for r in grant_write))
        return
    if artifacts or grant_read or grant_write:
        from ..errors import InvalidInput

        raise InvalidInput(f"Expected --artifacts/--grant-* only for a PostgreSQL store. Received: the folder {where!r}",
                           hint="a folder store keeps its artifacts inside it")
    registry = open_registry(where)
    if as_json:
        emit_json({"store": str(registry.root.resolve()), "kind": "folder", "done": "ready"})
        return
    info(f"ready: folder store {str(registry.root.resolve())!r}")


@store_group.command("info")
@click.argument("store", required=False, metavar="[STORE]")
@json_option
@pass_ctx
def info_cmd(ctx: Context, store: str | None, as_json: bool) -> None:
    """Where a store is, who it is (id, schema), where its artifacts and local cache are, whether you may write,
    and whether each service of a PostgreSQL store answers (exit 7 after the report when one does not)."""
    from .. import default_store
    from ..store.location import is_database_url

    where = store or ctx.store or str(default_store())
    if not is_database_url(where):
        from .. import open_registry

        registry = open_registry(where)
        data = {"store": str(registry.root.resolve()), "kind": "folder", "versions": len(registry.list())}
    else:
        from ..store.shared import shared_info

        data = {**shared_info(where, artifacts=ctx.artifacts).to_dict(), "kind": "postgresql"}
        data.pop("done", None)
    if as_json:
        emit_json(data)
    else:
        table("zoo store", ["field", "value"], [(k, v) for k, v in data.items()])
    down = [k for k in ("database_service", "artifacts_service") if str(data.get(k, "")).startswith("unreachable")]
    if down:
        from ..errors import StoreUnavailable

        raise click.exceptions.Exit(StoreUnavailable.exit_code)
