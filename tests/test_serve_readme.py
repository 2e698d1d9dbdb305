"""The README's "Serving" section runs as written (curl lines and the tritonclient example) against a served
tiny model: the same requests, with the model name, input size and port substituted."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("tritonclient.http")

from conftest import REPO_ROOT, cli_on, make_tiny_onnx
from zoo.labels import Labels
from zoo.records import VersionMeta
from zoo.transforms import Transform

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Serving", 1)[1].split("\n## ", 1)[0]
SKIPPED = ("python3 -m pip", "zoo serve", "kill %1")  # the test installs nothing and runs the server itself


def _block(language: str) -> str:
    match = re.search(rf"^```{language}\n(.*?)^```", SECTION, re.S | re.M)
    assert match, f"no {language} block in README's Serving section"
    return match.group(1)


def _small(text: str, port: int) -> str:
    for big, small in (("localhost:8000", f"127.0.0.1:{port}"), ("resnet50", "tiny"), ("224, 224", "8, 8"),
                       ("150528", "192"), (", 224\n", ", 8\n"),
                       ("sleep 3;", "sleep 0.5;")):
        text = text.replace(big, small)
    return re.sub(r"\s{2,}#\s.*$", "", text, flags=re.M)


def test_readme_serving_section_runs_as_written(tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    from PIL import Image

    import zoo
    from zoo.serve import Server

    store = tmp_path / "store"
    labels = Labels(name="tiny", classes=tuple(f"class {i}" for i in range(10)))
    with zoo.open_registry(store) as registry:
        for seed in (0, 1):
            registry.register(make_tiny_onnx(tmp_path / f"m{seed}/model.onnx", seed), name="tiny",
                              meta=VersionMeta(labels=labels, transform=Transform(resize=8, crop=8)))
        registry.set_alias("tiny@1", "prod")
    work = tmp_path / "work"
    work.mkdir()
    Image.effect_mandelbrot((32, 24), (-2, -1.2, 1, 1.2), 64).convert("RGB").save(work / "cat.jpg")
    server = Server(["tiny@prod"], store=store, http_port=0, grpc_port=None, poll_interval=0.05).start_in_thread()
    zoo_cli = cli_on(store)
    outputs = []
    try:
        for line in _small(_block("bash"), server.http_port).splitlines():
            if not line.strip() or line.startswith(SKIPPED):
                continue
            if line.startswith("zoo "):
                zoo_cli(*line.split()[1:])
                continue
            done = subprocess.run(["bash", "-c", line], cwd=work, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, (line, done.stderr)
            outputs.append(done.stdout)
        text = "\n".join(outputs)
        assert '"sha256"' in text and "class " in text  # metadata, then the image's top-3 labels
        assert "zoo-model-version: 2" in text.lower()   # the moved alias answers with version 2
        assert "zoo_serve_requests_total" in text and "zoo_serve_batch_size_count" in text
        assert (work / "logits.json").exists()
        cwd = os.getcwd()
        os.chdir(work)
        try:
            namespace: dict = {}
            exec(compile(_small(_block("python"), server.http_port), "README.md", "exec"), namespace)
        finally:
            os.chdir(cwd)
        top3 = namespace["top3"].as_numpy("logits")
        assert top3.shape == (1, 3) and all(cell.decode().count(":") == 2 for cell in top3[0])
        assert namespace["result"].as_numpy("logits").shape == (1, 10)
    finally:
        server.close()
    assert Path(work / "request.json").exists()
