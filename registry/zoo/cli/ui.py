"""``zoo ui`` (a read-only web UI over the store) and ``zoo report`` (one self-contained HTML evidence card)."""
from __future__ import annotations

from pathlib import Path

import click

from ._app import emit_json, info, json_option, main, pass_ctx


@main.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; the default serves this machine only (0.0.0.0 exposes the store to the network).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port (0: any free port).")
@click.option("--store", "ui_store", metavar="DIR|URL", help="The store to show (same as `zoo --store ... ui`).")
@click.option("--quiet", is_flag=True, help="Do not print a line per request on stderr.")
@json_option
@pass_ctx
def ui_cmd(ctx, host, port, ui_store, quiet, as_json) -> None:
    """Serve a read-only web UI over the store: models, versions, evidence cards, comparisons.

    Pages are HTML rendered on the server (every fact readable with JavaScript off); it never writes
    to the store, binds to 127.0.0.1 unless --host says otherwise, and serves no file from disk.
    Stop it with Ctrl-C. --json prints {"url": ...} once it listens.
    """
    from .. import open_registry
    from ..ui.server import make_server

    store = ui_store or ctx.store

    def opener():
        return open_registry(store, artifacts=ctx.artifacts, read_only=True)

    first = opener()  # fail fast (exit 3 for a store that does not exist) before binding
    where = first.location
    first.close()
    if not as_json:
        info(f"zoo ui: reading the versions of {where} ...")
    try:
        server, state = make_server(opener, host=host, port=port, where=f"store {where}", quiet=quiet)
    except OSError as exc:
        from ..errors import InvalidInput

        raise InvalidInput(f"Cannot listen on {host}:{port}: {exc.strerror or exc}",
                           hint="choose another --port (0 picks a free one)") from None
    url = f"http://{host if ':' not in host else f'[{host}]'}:{server.server_address[1]}/"
    if as_json:
        emit_json({"url": url, "store": where, "versions": len(state.index.versions), "index_s": round(state.index.build_s, 3)})
    else:
        info(f"zoo ui: {url} (store {where}, {len(state.index.versions):,} versions read in {state.index.build_s:.2f} s; Ctrl-C stops)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
        state.close()


@main.command("report")
@click.argument("ref")
@click.option("--against", metavar="REF2", help="Compare with this version side by side (differing facts highlighted).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The HTML file to write (replaced atomically).")
@json_option
@pass_ctx
def report_cmd(ctx, ref, against, output, as_json) -> None:
    """Write REF's evidence card as one self-contained HTML file (no network, inline SVG charts).

    Facts, provenance, labels and every attached report (parity matrix, latency vs batch, conversion
    error, eval). With --against, both versions side by side first. The file fetches nothing, so a CI
    job can attach it to its run.
    """
    from ..ui.report import write_report

    path = write_report(output, registry=ctx.registry(), ref=ref, against=against)
    size = path.stat().st_size
    if as_json:
        emit_json({"path": str(path), "bytes": size, "ref": ref, "against": against})
    else:
        info(f"wrote {path} ({size / 1000:.1f} KB)")
