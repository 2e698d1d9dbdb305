"""``zoo events``: the registry's event log (CloudEvents), its webhooks, and their delivery."""
from __future__ import annotations

import time

import click

from ._app import Context, emit_json, info, json_option, main, pass_ctx, table


@main.group("events", invoke_without_command=True)
@click.option("--follow", is_flag=True, help="Keep printing new events as they are logged (polls every --interval s).")
@click.option("--after", type=int, default=0, show_default=True, metavar="ID", help="Only events after this log id.")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between polls with --follow.")
@json_option
@click.pass_context
def events_cmd(click_ctx, follow, after, interval, as_json) -> None:
    """The registry's events: version.created, alias.moved, report.attached, gate.refused.

    Each is a CloudEvents 1.0 JSON object, logged (append-only) in the transaction of the change.
    With --json, one event per line. Webhooks get them by HTTP POST, signed (see `zoo events webhook`).

    \b
    Examples:
      zoo events --json
      zoo events --follow
      zoo events webhook add https://ci.example.com/hook --secret-env HOOK_SECRET --type alias.moved
      zoo events deliver --follow     # a worker: retries failed deliveries with back-off
    """
    if click_ctx.invoked_subcommand is not None:
        return
    registry = click_ctx.find_object(Context).registry()
    last = after
    while True:
        found = registry.events(after=last)
        for number, event in found:
            last = number
            if as_json:
                emit_json(event)
            else:
                click.echo(f"{number:>6}  {event['time'][:19].replace('T', ' ')}  {event['type']:<16} {event['subject']}")
        if not follow:
            if not found and not as_json:
                info("no events" + (f" after {after}" if after else ""))
            return
        time.sleep(interval)


@events_cmd.group("webhook", invoke_without_command=True)
@json_option
@click.pass_context
def webhook_cmd(click_ctx, as_json) -> None:
    """List the webhooks (or add / remove one)."""
    if click_ctx.invoked_subcommand is not None:
        return
    hooks = click_ctx.find_object(Context).registry().webhooks()
    if as_json:
        emit_json(hooks)
    elif hooks:
        table("webhooks", ["id", "url", "types", "signed", "pending"],
              [[h["id"], h["url"], ", ".join(h["types"]) or "all", "yes" if h["signed"] else "no", h["pending"]] for h in hooks])
    else:
        info("no webhooks")


@webhook_cmd.command("add")
@click.argument("url")
@click.option("--type", "types", multiple=True, metavar="TYPE", help="Only this event type (repeat); default: every type.")
@click.option("--secret-env", metavar="VAR", help="Sign each POST with the secret in environment variable VAR "
                                                  "(header X-Zoo-Signature-256: sha256=HMAC of the body).")
@json_option
@pass_ctx
def webhook_add(ctx, url, types, secret_env, as_json) -> None:
    """POST every later event to URL (with back-off retries until it answers 2xx)."""
    import os

    from ..errors import InvalidInput

    secret = None
    if secret_env is not None:
        secret = os.environ.get(secret_env)
        if not secret:
            raise InvalidInput(f"Expected a secret in ${secret_env}. Received: it is unset or empty",
                               hint=f"export {secret_env}=... first (the secret is never given on the command line)")
    number = ctx.registry().add_webhook(url, secret=secret, types=types)
    if as_json:
        emit_json({"id": number, "url": url, "types": list(types), "signed": secret is not None})
    else:
        info(f"webhook {number}: {url}")


@webhook_cmd.command("rm")
@click.argument("number", type=int, metavar="ID")
@json_option
@pass_ctx
def webhook_rm(ctx, number, as_json) -> None:
    """Remove webhook ID (its pending deliveries go with it)."""
    ctx.registry().remove_webhook(number)
    if as_json:
        emit_json({"id": number, "removed": True})
    else:
        info(f"removed webhook {number}")


@events_cmd.command("deliver")
@click.option("--follow", is_flag=True, help="Keep delivering as deliveries fall due (polls every --interval s).")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between polls with --follow.")
@json_option
@pass_ctx
def deliver_cmd(ctx, follow, interval, as_json) -> None:
    """Send every due webhook delivery now (failed ones wait for their back-off)."""
    registry = ctx.registry()
    total = {"delivered": 0, "failed": 0}
    while True:
        counts = registry.deliver()
        total = {k: total[k] + counts[k] for k in total}
        if not follow:
            break
        time.sleep(interval)
    if as_json:
        emit_json(total)
    else:
        info(f"delivered {total['delivered']}, failed {total['failed']} (retried after back-off)")
