"""``zoo bench``: latency, throughput and memory of versions under ONNX Runtime (and natively)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from ..errors import InvalidInput, NotFound
from ._app import emit_json, info, json_option, main, pass_ctx, table


def _progress(message: str) -> None:
    info(f"  {message}")


def parse_batches(spec: str) -> list[int]:
    """``"1,8,32"`` -> ``[1, 8, 32]``; anything else is InvalidInput naming the bad item."""
    out = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            value = int(item)
        except ValueError:
            value = 0
        if value < 1:
            raise InvalidInput(f"Expected batch sizes as positive integers, comma-separated. Received: {item!r}",
                               hint="e.g. --batch 1,8,32")
        out.append(value)
    if not out:
        raise InvalidInput(f"Expected at least one batch size. Received: {spec!r}", hint="e.g. --batch 1,8,32")
    return sorted(set(out))


def _f(value: float | None, digits: int = 2) -> str | None:
    if value is None:
        return None
    return f"{value:,.{digits}f}"


def _where(stats: dict[str, Any], payload: dict[str, Any]) -> tuple[str, str]:
    """(device, precision) of one engine's figures; payloads stored before they were recorded: ORT's provider."""
    device = stats.get("device") or payload["provider"].get("device") or (
        "cuda" if payload["provider"]["name"] in ("cuda", "tensorrt") else "cpu")
    return device, stats.get("precision") or payload.get("precision") or "fp32"


def _rows(payload: dict[str, Any]) -> list[list[Any]]:
    rows = []
    ort_facts: dict[str, Any] = next((e for e in payload.get("engines", ()) if e["name"] == "onnxruntime"), {})
    for r in payload["results"]:
        engines = [("onnxruntime", {**ort_facts, **r["onnxruntime"]})]
        if r.get("native"):
            engines.append((r["native"]["framework"], r["native"]))
        for name, s in engines:
            device, precision = _where(s, payload)
            rows.append([
                r["batch"], name, device, precision, _f(s["p50_ms"]), _f(s["p90_ms"]), _f(s["p99_ms"]),
                _f(s["throughput"], 1), _f(s["gflops"], 1), _f(s["load_s"]), _f(s["peak_rss_mb"], 0),
                _f(s["device_memory_mb"], 0) if s.get("device_memory_mb") is not None else None,
                _f(r["speedup"]) if name == "onnxruntime" and r.get("speedup") else None,
            ])
    return rows


def _quieted(payloads: Sequence[dict[str, Any]]) -> list[str]:
    total: dict[str, int] = {}
    for p in payloads:
        for what, n in (p.get("onnxruntime_log_quieted") or {}).items():
            total[what] = total.get(what, 0) + n
    return [f"onnxruntime log kept quiet: {n} x {what}" for what, n in total.items()]


def _notes(payloads: Sequence[dict[str, Any]]) -> list[str]:
    return sorted({e["note"] for p in payloads for e in p.get("engines", ()) if e.get("note")})


def _print_one(payload: dict[str, Any]) -> None:
    from ..bench import machine_line

    columns = ["batch", "engine", "device", "precision", "p50 ms", "p90 ms", "p99 ms", "samples/s", "GFLOP/s", "load s",
               "peak RSS MB", "GPU MB", "ORT speed-up x"]
    rows = _rows(payload)
    keep = [i for i, c in enumerate(columns) if c not in ("GPU MB", "ORT speed-up x") or any(r[i] is not None for r in rows)]
    caption = "\n".join([payload["provider"]["reason"], *_notes([payload]), *_quieted([payload]),
                         machine_line(payload["machine"])])
    table(payload["ref"], [columns[i] for i in keep], [[r[i] for i in keep] for r in rows], caption=caption)


def _print_compare(payloads: Sequence[dict[str, Any]]) -> None:
    from ..bench import machine_line

    native = any(r.get("native") for p in payloads for r in p["results"])
    columns = ["ref", "framework", "precision", "provider", "batch", "p50 ms", "p90 ms", "p99 ms", "samples/s", "GFLOP/s",
               "peak RSS MB", "vs first x"]
    if native:
        columns += ["native", "native p50 ms", "ORT speed-up x"]
    first = {r["batch"]: r["onnxruntime"]["p50_ms"] for r in payloads[0]["results"]}
    rows = []
    for p in payloads:
        for r in p["results"]:
            s = r["onnxruntime"]
            base = first.get(r["batch"])
            device, precision = _where(s, p)
            row = [p["ref"], p.get("framework") or "external", precision, p["provider"]["name"], r["batch"],
                   _f(s["p50_ms"]), _f(s["p90_ms"]), _f(s["p99_ms"]), _f(s["throughput"], 1), _f(s["gflops"], 1),
                   _f(s["peak_rss_mb"], 0), _f(base / s["p50_ms"]) if base else None]
            if native:
                nat = r.get("native")
                where = "{} on {} ({})".format(nat["framework"], *_where(nat, p)) if nat else None
                row += [where, _f(nat["p50_ms"]) if nat else None, _f(r.get("speedup"))]
            rows.append(row)
    # One line per distinct machine: the load average moves between runs, the machine does not.
    machines = {machine_line({**p["machine"], "load_avg_1m": None}) for p in payloads}
    caption = "\n".join(["vs first: p50 of the first ref / p50 of this row (>1: faster); all refs timed interleaved", *_notes(payloads),
                         *_quieted(payloads), *sorted(machines)])
    table("zoo bench --compare", columns, rows, caption=caption)


def _stored(registry, version) -> dict[str, Any]:
    reports = registry.reports(version, kind="bench")
    if not reports:
        raise NotFound(f"No stored benchmark for {version.ref}", hint=f"run `zoo bench {version.ref}` first (without --stored)")
    return max(reports, key=lambda r: r.created_at).payload


@main.command("bench")
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@click.option("--batch", "batch_spec", default="1", show_default=True, metavar="N[,N...]",
              help="Batch sizes, comma-separated, e.g. 1,8,32.")
@click.option("--provider", type=click.Choice(["cpu", "cuda", "tensorrt"]),
              help="Force an execution provider (default: the fastest that loads).")
@click.option("--native", is_flag=True,
              help="Also time the framework that built REF, interleaved in the same process, on ORT's device at REF's "
                   "precision; adds the ORT/native speed-up. Refused if the framework cannot run on that device.")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed runs per engine and batch size.")
@click.option("--min-time", type=float, default=2.0, show_default=True, help="Timed seconds per engine and batch size, at least.")
@click.option("--min-iters", type=int, default=10, show_default=True, help="Timed runs per engine and batch size, at least.")
@click.option("--host-io", is_flag=True, help="Time numpy-in/numpy-out ONNX Runtime calls (copies included) instead of I/O binding.")
@click.option("--compare", is_flag=True,
              help="Several REFs side by side in one table (rows: ref x batch), all timed interleaved in one run.")
@click.option("--stored", is_flag=True, help="Show the latest stored results instead of measuring again.")
@click.option("--no-save", is_flag=True, help="Do not attach the results to the version.")
@json_option
@pass_ctx
def bench_cmd(ctx, refs, batch_spec, provider, native, warmup, min_time, min_iters, host_io, compare, stored, no_save,
              as_json) -> None:
    """Time REF under ONNX Runtime: latency, throughput, memory.

    Reports latency p50/p90/p99, samples/s, GFLOP/s and peak memory per batch size,
    and each engine's device and precision. Results are attached to the version with a
    description of the machine (`zoo show REF` lists them).

    \b
    Examples:
      zoo bench resnet50 --batch 1,8,32
      zoo bench resnet50:torch --native             # ORT vs PyTorch, same run
      zoo bench --compare resnet50:torch resnet50:tensorflow --batch 1,8
      zoo bench --compare resnet50@1 resnet50@2 resnet50@3    # fp32, fp16, int8 (zoo convert)
    """
    from ..bench import bench_artifacts

    if compare and len(refs) < 2:
        raise InvalidInput(f"--compare needs at least two references. Received: {' '.join(refs)!r}",
                           hint="e.g. zoo bench --compare resnet50:torch resnet50:tensorflow")
    if not compare and len(refs) > 1:
        raise InvalidInput(f"Expected one REF (or --compare with several). Received: {' '.join(refs)!r}",
                           hint=f"zoo bench --compare {' '.join(refs)}")
    batches = parse_batches(batch_spec)
    registry = ctx.registry()
    versions = [registry.resolve(ref) for ref in refs]
    if stored:
        payloads = [_stored(registry, version) for version in versions]
    else:
        what = [f"batch {','.join(map(str, batches))}", f">= {min_time:g} s and {min_iters} runs each"]
        if native:
            what.append(f"with {', '.join(sorted({v.framework or '?' for v in versions}))} on the same device")
        if native or len(versions) > 1:
            what.append("all interleaved")
        info(f"{', '.join(v.ref for v in versions)}: {', '.join(what)}")
        payloads = bench_artifacts(
            [(registry.path(v), v) for v in versions], batches=batches, provider=provider, native=native,
            warmup=warmup, min_time=min_time, min_iters=min_iters, io_binding=not host_io, progress=_progress,
        )
        if not no_save:
            for version, payload in zip(versions, payloads, strict=True):
                registry.attach(version, "bench", payload)
    if as_json:
        emit_json(payloads if compare else payloads[0])
        return
    if compare:
        _print_compare(payloads)
    else:
        _print_one(payloads[0])
