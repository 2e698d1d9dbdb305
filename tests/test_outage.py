"""Degraded mode with the real services: S3 (moto) and PostgreSQL go down while a consumer with a warm cache
loads and a writer registers; each outcome and exit code is the README's "When a service is down" table.

These tests start their own PostgreSQL and S3 endpoint (they stop them; the session's shared ones are never
touched). S3 is reached through :class:`Proxy`, a tiny TCP proxy on 127.0.0.1 that can refuse connections
(the endpoint is down), swallow them (a hung endpoint) or delay every byte (a slow one): moto keeps its
objects in memory, so the proxy is how its endpoint goes away and comes back with nothing lost.
PostgreSQL is stopped and started for real (pg_ctl): its data is on disk.
"""
from __future__ import annotations

import glob
import os
import shlex
import socket
import subprocess
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import zoo
from backends import REPO_ROOT
from conftest import make_tiny_onnx
from zoo.cli import main
from zoo.errors import StaleResolution, StoreError, StoreUnavailable
from zoo.records import Transform, VersionMeta

META = VersionMeta(arch="tiny", framework="torch", num_classes=10, transform=Transform.for_input_size(8, 8))
TIMEOUTS = {"ZOO_CONNECT_TIMEOUT": "1", "ZOO_READ_TIMEOUT": "1", "ZOO_RETRIES": "1"}
# The most an outage may take to answer with these settings: (connect + read) per attempt, 2 attempts, back-off.
ANSWER_WITHIN_S = 2 * (1 + 1) + 0.25 + 2.0


class Proxy:
    """A TCP proxy on 127.0.0.1 to ``upstream``: ``mode`` is "up" (forward), "down" (connections refused),
    "hang" (accepted, never answered); ``delay`` seconds are added before each forwarded chunk."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.mode, self.delay = "up", 0.0
        self._listener: socket.socket | None = None
        self._held: list[socket.socket] = []
        self.port = self._listen(0)

    def _listen(self, port: int) -> int:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()
        return int(sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, mode: str, delay: float = 0.0) -> None:
        self.delay = delay
        if mode == "down" and self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread, frees the port
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        elif mode != "down" and self._listener is None:
            self._listen(self.port)
        for held in self._held:  # connections held open by "hang" end with it
            held.close()
        self._held.clear()
        self.mode = mode

    def close(self) -> None:
        self.set("down")

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return
            if self.mode == "hang":
                self._held.append(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if self.delay:
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@dataclass
class Own:
    """This module's own services: PostgreSQL (stopped and started with pg_ctl) and moto behind a proxy."""

    folder: Path
    pg_url: str
    pg_port: int
    s3: Proxy
    env: dict[str, str]

    def _pg_ctl(self, *args: str) -> None:
        binary = shutil_which("pg_ctl") or sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
        cmd = [binary, "-D", str(self.folder / "pg" / "data"), *args]
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60, cwd="/")

    def stop_pg(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start_pg(self) -> None:
        pg = self.folder / "pg"
        self._pg_ctl("-l", str(pg / "server.log"), "-w", "-t", "60", "-o",
                     f"-c listen_addresses=127.0.0.1 -p {self.pg_port} -k {pg} -c fsync=off -c max_connections=200", "start")


def shutil_which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


@pytest.fixture(scope="module")
def own() -> Iterator[Own]:
    script = REPO_ROOT / ".ci" / "services"  # in a new /tmp folder (the postgres user cannot enter pytest's)
    proc = subprocess.run([str(script), "start"], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"{script} start failed: {proc.stderr.strip()}", pytrace=False)
    found = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        found[key] = shlex.split(value)[0]
    moto = found["AWS_ENDPOINT_URL"].rsplit(":", 1)
    proxy = Proxy(("127.0.0.1", int(moto[1])))
    env = {k: found[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    env.update(TIMEOUTS, AWS_ENDPOINT_URL=proxy.url)
    pg_url, folder = found["ZOO_SERVICES_PG_URL"], Path(found["ZOO_SERVICES_DIR"])
    try:
        yield Own(folder, pg_url, int(pg_url.rsplit(":", 1)[1].split("/")[0]), proxy, env)
    finally:
        proxy.close()
        subprocess.run([str(script), "stop", str(folder)], capture_output=True, timeout=120)


@dataclass
class Scene:
    store: str  # the database URL
    sha256: str
    warm: Path  # a consumer's cache that loaded tiny@prod and the pinned ref while everything was up
    cold: Path  # a consumer's cache that never loaded anything
    onnx: Path


@pytest.fixture
def scene(own: Own, tmp_path: Path, monkeypatch) -> Iterator[Scene]:
    from zoo.store.shared import init_shared

    for key, value in own.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ZOO_OFFLINE", raising=False)
    own.s3.set("up")
    suffix = uuid.uuid4().hex[:10]
    store = f"{own.pg_url}?schema=o_{suffix}"
    init_shared(store, artifacts=f"s3://zoo/o_{suffix}")
    monkeypatch.setenv("ZOO_STORE", store)
    writer = zoo.open_registry(store)
    version = writer.register(make_tiny_onnx(tmp_path / "v1.onnx"), name="tiny", meta=META).version
    writer.set_alias("tiny@1", "prod")
    writer.close()
    warm, cold = tmp_path / "warm", tmp_path / "cold"
    monkeypatch.setenv("ZOO_CACHE", str(warm))
    zoo.load("tiny@prod")
    zoo.load(f"tiny@sha256:{version.sha256[:12]}")
    monkeypatch.setenv("ZOO_CACHE", str(cold))
    yield Scene(store, version.sha256, warm, cold, make_tiny_onnx(tmp_path / "v2.onnx", seed=1))
    own.s3.set("up")


def use(cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("ZOO_CACHE", str(cache))


def cli(*args: str, code: int) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def timed_failure(call, within: float = ANSWER_WITHIN_S) -> StoreUnavailable:
    start = time.monotonic()
    with pytest.raises(StoreUnavailable) as exc:
        call()
    took = time.monotonic() - start
    assert took < within, f"the outage took {took:.1f} s to answer (limit {within} s)"
    return exc.value


BATCH = np.zeros((1, 3, 8, 8), np.float32)


def test_s3_down_cached_versions_load_uncached_fail_fast_writes_exit_7(own: Own, scene: Scene, monkeypatch):
    own.s3.set("down")
    use(scene.warm, monkeypatch)
    assert zoo.load("tiny@prod").predict(BATCH).shape == (1, 10)  # verified bytes in the cache: no S3 needed
    cli("run", "tiny@prod", "--random", "1", code=0)
    use(scene.cold, monkeypatch)
    err = timed_failure(lambda: zoo.load("tiny@prod"))
    assert err.service == "s3" and own.s3.url in err.message and err.exit_code == 7
    for args in (["run", "tiny@prod", "--random", "1"], ["register", str(scene.onnx), "--name", "tiny"], ["verify"], ["gc"]):
        out = cli(*args, code=7)
        assert "Cannot reach the S3 endpoint" in out and own.s3.url in out, args
    assert "unreachable" in cli("store", "info", "--json", code=7).split('"artifacts_service"')[1]
    own.s3.set("up")  # back: everything works, nothing was lost
    assert zoo.load("tiny@prod").predict(BATCH).shape == (1, 10)
    cli("register", str(scene.onnx), "--name", "tiny", code=0)
    assert [v.version for v in zoo.open_registry().list("tiny")] == [1, 2]
    assert all(r.ok for r in zoo.open_registry().verify())


def test_postgres_down_pinned_loads_aliases_need_stale_writes_exit_7(own: Own, scene: Scene, monkeypatch):
    use(scene.warm, monkeypatch)
    own.stop_pg()
    try:
        pinned = f"tiny@sha256:{scene.sha256[:12]}"
        assert zoo.load(pinned).version.sha256 == scene.sha256
        assert zoo.load("tiny@prod", sha256=scene.sha256).predict(BATCH).shape == (1, 10)
        err = timed_failure(lambda: zoo.load("tiny@prod"))  # an alias: stale only when allowed
        assert err.service == "postgresql" and "allow_stale=True" in str(err) and "ZOO_OFFLINE=1" in str(err)
        with pytest.warns(StaleResolution, match=r"tiny@prod is tiny@1 .* s ago"):
            assert zoo.load("tiny@prod", allow_stale=True).version.version == 1
        monkeypatch.setenv("ZOO_OFFLINE", "1")
        with pytest.warns(StaleResolution, match="ZOO_OFFLINE"):
            zoo.load("tiny@prod")
        assert "a stale answer" in cli("run", "tiny@prod", "--random", "1", code=0)
        monkeypatch.delenv("ZOO_OFFLINE")
        cli("run", "tiny@prod", "--random", "1", code=7)
        assert "a stale answer" in cli("run", "tiny@prod", "--random", "1", "--allow-stale", code=0)
        cli("register", str(scene.onnx), "--name", "tiny", code=7)
        cli("alias", "tiny@1", "staging", code=7)
        info = cli("store", "info", "--json", code=7)
        assert '"database_service": "unreachable' in info
        own.s3.set("down")  # both down: the pinned ref still loads from the cache
        assert zoo.load(pinned).predict(BATCH).shape == (1, 10)
        use(scene.cold, monkeypatch)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no stale answer is served silently from an empty cache either
            for call in (lambda: zoo.load(pinned), lambda: zoo.load("tiny@prod", allow_stale=True)):
                assert "local cache" in timed_failure(call).message
        own.s3.set("up")
    finally:
        own.start_pg()
    cli("register", str(scene.onnx), "--name", "tiny", code=0)  # back: writes work, nothing was lost
    cli("alias", "tiny@2", "prod", code=0)
    assert zoo.load("tiny@prod").version.version == 2
    assert [v.version for v in zoo.open_registry().list("tiny")] == [1, 2]


@pytest.mark.parametrize("mode", ["hang", "slow"])
def test_a_slow_endpoint_answers_within_the_timeout(own: Own, scene: Scene, monkeypatch, mode: str):
    """A hung S3 endpoint (accepts, never answers) and a hung PostgreSQL (the same proxy in front of it) fail
    within the timeouts; a slow one (each chunk delayed, well under the read timeout) still serves."""
    if mode == "slow":
        own.s3.set("up", delay=0.2)
        assert zoo.load("tiny@prod").predict(BATCH).shape == (1, 10)
        return
    own.s3.set("hang")
    assert "ReadTimeout" in timed_failure(lambda: zoo.load("tiny@prod")).message
    pg = Proxy(("127.0.0.1", own.pg_port))
    pg.set("hang")
    try:
        hung = scene.store.replace(f":{own.pg_port}/", f":{pg.port}/")
        err = timed_failure(lambda: zoo.open_registry(hung))
        assert err.service == "postgresql" and isinstance(err, StoreError)
    finally:
        pg.close()


@pytest.mark.parametrize("env, value", [("ZOO_CONNECT_TIMEOUT", "0"), ("ZOO_READ_TIMEOUT", "soon"), ("ZOO_RETRIES", "-1"),
                                        ("ZOO_RETRIES", "99"), ("ZOO_CONNECT_TIMEOUT", "nan")])
def test_timeout_settings_are_validated_not_defaulted(monkeypatch, env: str, value: str):
    from zoo.errors import InvalidInput
    from zoo.store import _network

    monkeypatch.setenv(env, value)
    with pytest.raises(InvalidInput, match=env):
        (_network.connect_timeout(), _network.read_timeout(), _network.retries())
