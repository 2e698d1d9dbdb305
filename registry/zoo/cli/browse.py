"""`zoo list`, `show`, `alias`, `tag`, `rm` and `verify`: reading and curating versions."""
from __future__ import annotations

import click

from ..errors import InvalidInput
from . import Styled, emit_json, info, json_option, main, pass_ctx, table
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

SHOW_LABELS = 5  # class names `zoo show` prints (--json --fields labels has them all)


@main.command("list")
@click.argument("name", required=False)
@click.option("--framework", "-f", help="Only versions built by this plugin.")
@click.option("--arch", help="Only versions of this architecture.")
@json_option
@fields_option
@pass_ctx
def list_cmd(ctx, name, framework, arch, as_json, fields) -> None:
    """List registered versions (all models, or only NAME)."""
    chosen = parse_fields(fields)
    versions = ctx.registry().list(name, framework=framework or None, arch=arch)  # it canonicalises the framework
    if as_json:
        emit_json([version_json(v, chosen) for v in versions])
        return
    if not versions:
        filters = [f"{k} {v!r}" for k, v in (("name", name), ("framework", framework), ("arch", arch)) if v]
        info(f"no versions match {', '.join(filters)}; `zoo list` shows them all" if filters
             else "no versions registered yet; try `zoo export resnet18`")
        return
    table(None, VERSION_COLUMNS, [version_row(v) for v in versions])


@main.command("show")
@click.argument("ref")
@json_option
@fields_option
@pass_ctx
def show_cmd(ctx, ref, as_json, fields) -> None:
    """Show everything recorded on one version.

    Includes its eval transform (resize, crop, interpolation, mean, std) and its
    labels (name, count, sha256 of the list, the first names); --json --fields labels
    has every name.
    """
    chosen = parse_fields(fields)
    registry = ctx.registry()
    v = registry.resolve(ref)
    reports = registry.reports(v)
    if as_json:
        emit_json({**version_json(v, chosen), "reports": reports})
        return
    pre = v.preprocessing
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
        ("preprocessing", None if pre is None else
         f"{pre.layout} {pre.color} {pre.input_size[0]}x{pre.input_size[1]}, x*{pre.scale:.5g}, mean {pre.mean}, std {pre.std}"),
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
    if v.preprocessing is None:
        return None
    from ..transforms import Transform

    return f"none recorded; `zoo run --image` assumes {Transform.from_preprocessing(v.preprocessing).describe()}"


@main.command("alias")
@click.argument("ref")
@click.argument("alias")
@click.option("--delete", is_flag=True,
              help="Remove ALIAS instead of setting it; with NAME@N, only if ALIAS points at version N.")
@json_option
@fields_option
@pass_ctx
def alias_cmd(ctx, ref, alias, delete, as_json, fields) -> None:
    """Point ALIAS (like prod) at version REF.

    Aliases move; versions never change. `latest` is implicit.
    """
    from .._names import validate_alias
    from .._refs import parse_ref

    parsed = parse_ref(ref)
    validate_alias(alias)
    chosen = parse_fields(fields)
    registry = ctx.registry()
    if delete:
        expected = None if parsed.is_latest else registry.resolve(ref).version
        registry.remove_alias(parsed.name, alias, version=expected)
        if as_json:
            emit_json({"name": parsed.name, "alias": alias, "removed": True})
        else:
            info(f"removed alias {alias!r} from {parsed.name}")
        return
    v = registry.set_alias(ref, alias)
    if as_json:
        emit_json({"name": v.name, "alias": alias, "removed": False, "version": version_json(v, chosen)})
    else:
        info(f"{v.name}@{alias} -> {v.ref}")


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
