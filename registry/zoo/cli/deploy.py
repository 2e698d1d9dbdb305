"""`zoo deploy triton|kserve`: Triton model repositories and KServe InferenceServices from registry versions."""
from __future__ import annotations

import click

from ._app import Context, emit_json, info, json_option, main, pass_ctx, table


@main.group("deploy")
def deploy_group() -> None:
    """Serve versions on Triton or KServe: model repositories and InferenceService manifests."""


@deploy_group.command("triton")
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@click.option("--to", "to", required=True, metavar="DIR|S3URL", help="The model repository: a folder or s3://bucket/prefix.")
@click.option("--max-batch-size", type=int, default=8, show_default=True,
              help="Triton's max_batch_size (dims then leave out the batch axis); 0: no batching, full shapes.")
@click.option("--dynamic-batching/--no-dynamic-batching", default=True, show_default=True,
              help="Let Triton combine requests into batches.")
@click.option("--preferred-batch-size", "preferred", type=int, multiple=True, metavar="N",
              help="A batch size the dynamic batcher aims for (repeatable).")
@click.option("--max-queue-delay-us", type=int, default=100, show_default=True,
              help="How long the dynamic batcher may hold a request to fill a batch, in microseconds.")
@click.option("--kind", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True, help="Instance kind.")
@click.option("--instances", type=int, default=1, show_default=True, help="Model instances (per GPU with --kind gpu).")
@click.option("--tensorrt", is_flag=True, help="Run through ONNX Runtime's TensorRT accelerator (needs --kind gpu).")
@click.option("--trt-fp16", is_flag=True, help="TensorRT with fp16 kernels (implies --tensorrt; needs --kind gpu).")
@json_option
@pass_ctx
def triton_cmd(ctx: Context, refs: tuple[str, ...], to: str, max_batch_size: int, dynamic_batching: bool,
               preferred: tuple[int, ...], max_queue_delay_us: int, kind: str, instances: int, tensorrt: bool,
               trt_fp16: bool, as_json: bool) -> None:
    """Write a Triton model repository serving exactly these versions.

    \b
    zoo deploy triton resnet50@prod --to ./models
    zoo deploy triton resnet50@1 resnet50@3 --to s3://bucket/triton --kind gpu --trt-fp16

    Each model gets config.pbtxt (platform onnxruntime_onnx, checked with Triton's ModelConfig),
    labels.txt, and one folder per version holding the verified model.onnx. Aliases are resolved
    now and pinned (version_policy specific). Re-running writes only what changed.
    """
    from ..deploy import TritonOptions, deploy_triton

    options = TritonOptions(max_batch_size=max_batch_size, dynamic_batching=dynamic_batching,
                            preferred_batch_sizes=preferred, max_queue_delay_us=max_queue_delay_us, kind=kind,
                            instances=instances, tensorrt=tensorrt or trt_fp16, trt_fp16=trt_fp16)
    result = deploy_triton(ctx.registry(), refs, to, options, step=None if as_json else info)
    if as_json:
        emit_json(result)
        return
    table(f"Triton repository {result.repository}", ["model", "version", "from", "sha256", "status"],
          [(v.model, v.version, ", ".join(v.refs), v.sha256[:12], v.status) for v in result.versions])
    for m in result.models:
        info(f"{m.name}/config.pbtxt {m.config} (max_batch_size {m.max_batch_size}, serves "
             f"{', '.join(map(str, m.versions))}); labels.txt {m.labels}; checked with {result.checked_with}")


@deploy_group.command("kserve")
@click.argument("ref")
@click.option("--storage-uri", required=True, metavar="URI",
              help="Where KServe downloads the model from: the repository `zoo deploy triton` wrote (--runtime triton), "
                   "or a folder store (--runtime zoo).")
@click.option("--runtime", type=click.Choice(["triton", "zoo"]), default="triton", show_default=True,
              help="Serve with KServe's Triton runtime or with a `zoo serve` container.")
@click.option("--name", metavar="NAME", help="The InferenceService's name (default: from the model name).")
@click.option("--namespace", metavar="NS", help="The Kubernetes namespace.")
@click.option("--image", default="zoo-serve:latest", show_default=True, help="The container image for --runtime zoo.")
@click.option("--min-replicas", type=int, default=1, show_default=True, help="Fewest replicas (0 allows scale to zero).")
@click.option("--max-replicas", type=int, default=3, show_default=True, help="Most replicas the autoscaler may start.")
@click.option("--scale-metric", type=click.Choice(["concurrency", "rps", "cpu", "memory"]), default="concurrency",
              show_default=True, help="What the autoscaler watches.")
@click.option("--scale-target", type=int, default=8, show_default=True, help="Target value of the scale metric per replica.")
@click.option("--cpu", default="1", show_default=True, help="CPU request and limit (a Kubernetes quantity).")
@click.option("--memory", default="2Gi", show_default=True, help="Memory request and limit (a Kubernetes quantity).")
@click.option("--gpus", type=int, default=0, show_default=True, help="nvidia.com/gpu limit.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), help="Write the manifest here instead of stdout.")
@json_option
@pass_ctx
def kserve_cmd(ctx: Context, ref: str, storage_uri: str, runtime: str, name: str | None, namespace: str | None, image: str,
               min_replicas: int, max_replicas: int, scale_metric: str, scale_target: int, cpu: str, memory: str, gpus: int,
               output: str | None, as_json: bool) -> None:
    """Print a KServe InferenceService (YAML) serving exactly this version.

    \b
    zoo deploy kserve resnet50@prod --storage-uri s3://bucket/triton > resnet50.yaml
    zoo deploy kserve resnet50@prod --storage-uri s3://bucket/store --runtime zoo --image registry/zoo-serve:0.2

    The version's reference and sha256 go into annotations; the manifest is checked against
    KServe's InferenceService CRD schema. --json prints it as JSON (kubectl takes both).
    """
    from .._atomic import write_file
    from ..deploy import KServeOptions, kserve_manifest, to_yaml

    options = KServeOptions(storage_uri=storage_uri, runtime=runtime, name=name, namespace=namespace, image=image,
                            min_replicas=min_replicas, max_replicas=max_replicas, scale_metric=scale_metric,
                            scale_target=scale_target, cpu=cpu, memory=memory, gpus=gpus)
    registry = ctx.registry()
    version = registry.resolve(ref)
    manifest = kserve_manifest(version, ref, options, store=registry.location)
    if output is not None:
        import json

        write_file(output, (json.dumps(manifest, indent=2) + "\n" if as_json else to_yaml(manifest)).encode())
        info(f"wrote {output}: InferenceService {manifest['metadata']['name']} serving {version.ref} "
             f"(sha256 {version.sha256[:12]})")
        return
    if as_json:
        emit_json(manifest)
    else:
        click.echo(to_yaml(manifest), nl=False)
