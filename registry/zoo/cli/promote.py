"""``zoo policy`` (gate an alias), ``zoo promote`` (produce what the gate reads, then move the alias)."""
from __future__ import annotations

from typing import Any

import click

from ._app import emit_json, info, json_option, main, pass_ctx, table


def _policy_rows(policies: list[Any]) -> list[list[Any]]:
    return [[p.name, p.alias, "\n".join(r.text for r in p.requirements)] for p in policies]


@main.command("policy")
@click.argument("model", required=False)
@click.argument("alias", required=False)
@click.option("--require", "requirements", multiple=True, metavar="REQ",
              help="A requirement (repeat): a report kind that must have passed (parity, fp16-parity, int8-parity), or "
                   "METRIC OP VALUE, where METRIC is eval.top1, eval.top5, bench.p50, bench.p90, bench.p99 or "
                   "bench.throughput and VALUE a number (75%), ALIAS +/- a number, or a number * ALIAS.")
@click.option("--clear", is_flag=True, help="Remove the policy: the alias moves freely again.")
@json_option
@pass_ctx
def policy_cmd(ctx, model, alias, requirements, clear, as_json) -> None:
    """Gate ALIAS of MODEL: what a version's reports must show before the alias may point at it.

    Without --require or --clear, lists the policies (of MODEL). A move that falls short is
    refused (exit 13) naming each unmet requirement and its figures; `zoo alias ... --force
    --reason TEXT` overrides, and the alias history records it.

    \b
    Examples:
      zoo policy resnet50 prod --require parity --require "eval.top1 >= prod - 0.5%" --require "bench.p50 <= 1.1 * prod"
      zoo policy resnet50            # the policies on resnet50's aliases
      zoo policy resnet50 prod --clear
    """
    from ..errors import InvalidInput

    registry = ctx.registry()
    if requirements or clear:
        if model is None or alias is None:
            raise InvalidInput("Expected MODEL and ALIAS with --require or --clear. Received: "
                               + " ".join(x for x in (model, alias) if x) or "neither",
                               hint="e.g. zoo policy resnet50 prod --require parity")
        if requirements and clear:
            raise InvalidInput("Expected --require or --clear, not both. Received: both", hint="--clear removes the policy")
        registry.set_policy(model, alias, None if clear else list(requirements))
        info(f"{model}@{alias}: " + ("no policy" if clear else f"{len(requirements)} requirement(s)"))
    policies = [p for p in registry.policies(model) if alias is None or p.alias == alias]
    if as_json:
        emit_json([p.to_dict() for p in policies])
    elif policies:
        table("alias policies", ["model", "alias", "requires"], _policy_rows(policies))
    else:
        info("no alias policies" + (f" on {model}" if model else ""))


@main.command("promote")
@click.argument("ref")
@click.argument("alias")
@click.option("--data", metavar="DIR", help="Labelled images for the eval the policy reads (see `zoo eval`).")
@click.option("--reason", metavar="TEXT", help="Why; recorded in the alias history.")
@click.option("--min-time", type=float, default=2.0, show_default=True, help="Timed seconds per engine, if a bench is run.")
@json_option
@pass_ctx
def promote_cmd(ctx, ref, alias, data, reason, min_time, as_json) -> None:
    """Run what ALIAS's policy needs on REF, then move ALIAS to REF through its gate.

    Checks REF's parity (the registered version against the frameworks that built its
    weights) when the policy requires it and REF has no passing report, evaluates REF and the
    current version on --data (one pass) when the policy reads eval figures they lack, and
    times both interleaved when it reads bench figures; then the gate decides: the alias
    moves (exit 0) or stays and each unmet requirement is named (exit 13).

    \b
    Examples:
      zoo promote resnet50@4 prod --data val/ --reason "retrained on the March data"
    """
    from .._promote import promote

    registry = ctx.registry()
    version, ran = promote(registry, ref, alias, data=data, reason=reason, min_time=min_time,
                           progress=lambda m: info(f"  {m}"))
    verdict = registry.alias_history(version.name, alias)[-1]
    if as_json:
        emit_json({"version": version, "alias": alias, "ran": ran, "event": verdict})
    else:
        info(f"{version.name}@{alias} -> {version.ref}" + (f" (ran: {', '.join(ran)})" if ran else ""))
        if verdict.policy:
            table(f"gate on {alias}", ["requirement", "met", "why"],
                  [[c["requirement"], "yes" if c["met"] else "no", c["why"]] for c in verdict.policy["checks"]])
