"""`zoo list`, `show`, `alias`, `tag`, `rm` and `verify`: reading and curating versions."""
from __future__ import annotations

import click

from ..errors import InvalidInput
from ._app import Styled, emit_json, info, json_option, main, pass_ctx, table
from ._render import (
    VERSION_COLUMNS,
    fields_option,
    fmt_int,
    fmt_shape,
    fmt_size,
    parse_fields,
    parse_tags,
    version_json,
    version_row,
)

SHOW_LABELS = 5  # class names `zoo show` prints (--json --fields all has them all)


@main.command("list")
@click.argument("name", required=False)
@click.option("--framework", "-f", help="Only versions built by this plugin.")
@click.option("--arch", help="Only versions of this architecture.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only versions with this tag (repeatable: all must match).")
@click.option("--alias", help="Only versions this alias points at (e.g. prod).")
@click.option("--precision", help="Only versions of this precision: fp32, fp16 or int8 (its tag or provenance; else fp32).")
@click.option("--require", "require", multiple=True, metavar="REQUIREMENT",
              help="Only versions whose newest report of the kind meets it (repeatable): parity, "
                   "'eval.top1 >= 75%', 'bench.p50 <= 12' (`zoo policy`'s syntax, absolute bounds).")
@json_option
@fields_option
@pass_ctx
def list_cmd(ctx, name, framework, arch, tags, alias, precision, require, as_json, fields) -> None:
    """List registered versions (all models, or only NAME).

    Every filter runs in the store's query, so it stays fast on large registries:

    \b
      zoo list --tag team=vision --precision int8
      zoo list resnet50 --require parity --require 'eval.top1 >= 75%'
      zoo list resnet50 --alias prod --json --fields ref,sha256
    """
    chosen = parse_fields(fields)
    registry, given = ctx.registry(), {"framework": framework or None, "arch": arch, "tags": parse_tags(tags), "alias": alias,
                                       "precision": precision, "require": require}  # the registry canonicalises the framework
    if as_json:
        emit_json([version_json(v, chosen) for v in registry.list(name, **given)])
        return
    versions = registry.rows(name, **given)  # a table needs a few columns: no record is parsed
    if not versions:
        filters = [f"{k} {v!r}" for k, v in (("name", name), ("framework", framework), ("arch", arch), ("alias", alias),
                                             ("precision", precision)) if v] + [f"tag {t!r}" for t in tags] + [
            f"requirement {r!r}" for r in require]
        info(f"no versions match {', '.join(filters)}; `zoo list` shows them all" if filters
             else "no versions registered yet; try `zoo export resnet18`")
        return
    table(None, VERSION_COLUMNS, [version_row(v) for v in versions])


@main.command("show")
@click.argument("ref")
@click.option("--at", "at", metavar="TIME",
              help="Resolve REF as it was at this time (ISO 8601, e.g. 2026-12-01T12:00Z; no offset means UTC): "
                   "an alias through its history, NAME to the newest version registered by then.")
@json_option
@fields_option
@pass_ctx
def show_cmd(ctx, ref, at, as_json, fields) -> None:
    """Show everything recorded on one version.

    Includes its eval transform (resize, crop, interpolation, mean, std) and its
    labels (name, count, sha256 of the list, the first names); --json --fields all
    has every name (and --fields NAMES prints only those fields).
    """
    chosen = parse_fields(fields)
    registry = ctx.registry()
    v = registry.resolve(ref, at=at)
    reports = registry.reports(v)
    if as_json:
        emit_json(version_json(v, chosen) if chosen else {**version_json(v), "reports": reports})
        return
    rows = [
        ("ref", v.ref), ("aliases", ", ".join(v.aliases) or None), ("architecture", v.arch),
        ("framework", f"{v.framework} {v.framework_version or ''}" if v.framework else "external"),
        ("exporter", f"{v.exporter} {v.exporter_version or ''}" if v.exporter else None), ("opset", v.opset),
        ("inputs", "; ".join(f"{t.name} {t.dtype} {fmt_shape(t.shape)}" for t in v.signature.inputs)),
        ("outputs", "; ".join(f"{t.name} {t.dtype} {fmt_shape(t.shape)}" for t in v.signature.outputs)),
        ("params (native trainable)", fmt_int(v.params.trainable) if v.params else None),
        ("params (native non-trainable)", fmt_int(v.params.non_trainable) if v.params else None),
        ("params (ONNX initializers)", fmt_int(v.onnx_params)),
        ("MACs per sample", None if v.macs is None else f"{v.macs / 1e9:.3f} G"),
        ("num classes", v.num_classes),
        ("transform", v.transform.describe() if v.transform else _implied_transform(v)),
        ("labels", None if v.labels is None else
         f"{v.labels.name}, {len(v.labels):,} classes, sha256 {v.labels.sha256[:12]}: "
         + ", ".join(v.labels.classes[:SHOW_LABELS]) + (", ..." if len(v.labels) > SHOW_LABELS else "")),
        ("size", fmt_size(v.size_bytes)), ("sha256", v.sha256), ("created (UTC)", v.created_at),
        ("tags", ", ".join(f"{k}={val}" for k, val in v.tags.items()) or None),
        ("provenance", ", ".join(f"{k}={val}" for k, val in v.provenance.items()) or None),
        ("reports", ", ".join(f"{r.kind} ({r.created_at[:19]})" for r in reports) or None),
    ]
    table(v.ref, ["field", "value"], rows)


def _implied_transform(v) -> str | None:
    """For a version that records no transform: what `zoo run --image` assumes, said as such."""
    from .._classify import transform_for

    inputs = v.signature.inputs
    return f"none recorded; `zoo run --image` assumes {transform_for(v, inputs[0] if inputs else None).describe()}"


@main.command("alias")
@click.argument("ref", metavar="REF|MODEL")
@click.argument("alias", required=False)
@click.option("--delete", is_flag=True,
              help="Remove ALIAS instead of setting it; with NAME@N, only if ALIAS points at version N.")
@click.option("--reason", metavar="TEXT", help="Why the alias moves; recorded in its history.")
@click.option("--force", is_flag=True, help="Move a gated alias although the version misses its policy (needs --reason; "
                                            "recorded in the history with the gate's verdict). See `zoo policy`.")
@click.option("--history", is_flag=True,
              help="List every move of MODEL's aliases (or of ALIAS only), oldest first: when, who, from, to, why.")
@json_option
@fields_option
@pass_ctx
def alias_cmd(ctx, ref, alias, delete, reason, force, history, as_json, fields) -> None:
    """Point ALIAS (like prod) at version REF, or show an alias's history.

    Aliases move; versions never change. `latest` is implicit. Every set, move and
    delete is recorded (append-only) with the time, the OS user (the PostgreSQL role
    on a shared store), the versions and --reason. A gated alias (`zoo policy`) moves
    only to a version that meets its policy: otherwise exit 13 names what is missing.

    \b
      zoo alias resnet50@3 prod --reason "eval +0.4% top-1"
      zoo alias --history resnet50 prod
    """
    from .._names import validate_alias
    from .._refs import parse_ref

    if history:
        given = (("--delete", delete), ("--reason", reason), ("--force", force))
        _alias_history(ctx, ref, alias, as_json, conflicting=[flag for flag, on in given if on])
        return
    if alias is None:
        raise InvalidInput("Expected REF and ALIAS. Received: no ALIAS",
                           hint=f"e.g. zoo alias {ref} prod; `zoo alias --history {parse_ref(ref).name}` lists past moves")
    parsed = parse_ref(ref)
    validate_alias(alias)
    chosen = parse_fields(fields)
    registry = ctx.registry()
    if delete:
        expected = None if parsed.is_latest else registry.resolve(ref).version
        registry.remove_alias(parsed.name, alias, version=expected, reason=reason)
        if as_json:
            emit_json({"name": parsed.name, "alias": alias, "removed": True})
        else:
            info(f"removed alias {alias!r} from {parsed.name}")
        return
    v = registry.set_alias(ref, alias, reason=reason, force=force)
    if as_json:
        emit_json({"name": v.name, "alias": alias, "removed": False, "version": version_json(v, chosen)})
    else:
        info(f"{v.name}@{alias} -> {v.ref}")


def _alias_history(ctx, model: str, alias: str | None, as_json: bool, *, conflicting: list[str]) -> None:
    if conflicting:
        raise InvalidInput(f"Expected --history alone. Received: --history with {' and '.join(conflicting)}",
                           hint=f"zoo alias --history {model} [ALIAS]")
    events = ctx.registry().alias_history(model, alias)
    if as_json:
        emit_json([{**e.to_dict(), "action": e.action} for e in events])
        return
    if not events:
        info(f"no alias of {model} has moved yet" if alias is None else f"{model}@{alias} has no recorded moves")
        return
    table(f"alias history of {model}" + (f"@{alias}" if alias else ""),
          ["#", "at (UTC)", "alias", "action", "from", "to", "who", "reason"],
          [(e.id, e.at[:19].replace("T", " "), e.alias, e.action + (" (forced)" if e.forced else ""),
            e.from_version, e.to_version, e.actor, e.reason) for e in events])


@main.command("tag")
@click.argument("ref")
@click.argument("tags", nargs=-1, metavar="KEY=VALUE...")
@click.option("--remove", "remove", multiple=True, metavar="KEY", help="Remove a tag; repeatable.")
@json_option
@pass_ctx
def tag_cmd(ctx, ref, tags, remove, as_json) -> None:
    """Set or remove free-form tags on a version."""
    if not tags and not remove:
        raise InvalidInput("Nothing to do: give KEY=VALUE pairs or --remove KEY", hint="e.g. zoo tag resnet50@1 team=vision")
    registry = ctx.registry()
    v = registry.set_tags(ref, parse_tags(tags)) if tags else registry.resolve(ref)
    for key in remove:
        v = registry.remove_tag(v.ref, key)
    if as_json:
        emit_json(version_json(v))
    else:
        info(f"{v.ref}: " + (", ".join(f"{k}={val}" for k, val in v.tags.items()) or "no tags"))


@main.command("rm")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Confirm the deletion (required).")
@click.option("--force", is_flag=True, help="Delete even while aliases point at the version (they go with it).")
@json_option
@pass_ctx
def rm_cmd(ctx, ref, yes, force, as_json) -> None:
    """Delete one version (needs --yes).

    Refused while aliases point at it (exit 11), unless --force. Bytes still used by
    another version are kept.
    """
    from .._refs import parse_ref

    parse_ref(ref)
    if not yes:
        raise InvalidInput(f"Refusing to delete {ref!r} without --yes", hint=f"zoo rm {ref} --yes")
    v = ctx.registry().remove(ref, force=force)
    if as_json:
        emit_json({"deleted": version_json(v)})
        return
    info(f"deleted {v.ref}" + (f" and its alias(es) {', '.join(v.aliases)}" if v.aliases else ""))


@main.command("verify")
@click.argument("ref", required=False)
@json_option
@pass_ctx
def verify_cmd(ctx, ref, as_json) -> None:
    """Recompute the sha256 of stored artifacts.

    Checks every version, or only REF; exits 5 if any is corrupt. Reads only: it repairs
    and deletes nothing (it works on a read-only store); `zoo gc` handles unreferenced artifacts.
    """
    from ..errors import IntegrityError

    registry = ctx.registry()
    results = registry.verify(ref)
    bad = [r for r in results if not r.ok]
    if as_json:
        emit_json(results)
    else:
        table(None, ["ref", "status", "problem"], [
            (f"{r.name}@{r.version}", Styled("[green]ok[/]" if r.ok else "[bold red]CORRUPT[/]"), r.problem) for r in results
        ])
        info(f"{len(results) - len(bad)}/{len(results)} versions intact")
    if ref is None:
        orphans = registry.gc(older_than_s=0)
        if orphans:
            info(f"{len(orphans)} stored artifact(s) no version references ({fmt_size(sum(o.size for o in orphans))}); "
                 "`zoo gc` lists them, `zoo gc --yes` deletes those older than an hour")
    if bad:
        raise IntegrityError(f"{len(bad)} corrupt version(s): " + ", ".join(f"{r.name}@{r.version}" for r in bad),
                             hint="re-export or re-register them; `zoo rm REF --yes` removes a corrupt version")
