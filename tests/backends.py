"""The registry backends the contract tests run on: the embedded store and the shared pair.

``embedded``: SQLite + files in a temporary folder. ``shared``: a fresh PostgreSQL schema and S3 prefix
per test (on $ZOO_TEST_PG_URL / $ZOO_TEST_S3_URL, else on services started by ``.ci/services``), with a
per-test local cache. :class:`Backend` also gives the few store-specific views a contract test needs:
published digests, leftovers of writers, and a way to damage stored bytes as an attacker would.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("embedded", "shared")
PG_ENV, S3_ENV = "ZOO_TEST_PG_URL", "ZOO_TEST_S3_URL"


@dataclass(frozen=True)
class Services:
    pg_url: str  # postgresql://... (a database the tests may create schemas in)
    s3_url: str  # s3://bucket[/prefix] at AWS_ENDPOINT_URL (or AWS itself)


def start_services() -> tuple[Services, Callable[[], None]]:
    """External services if both variables are set; otherwise start local ones (and return how to stop them)."""
    pg, s3 = os.environ.get(PG_ENV), os.environ.get(S3_ENV)
    if pg and s3:
        return Services(pg, s3), lambda: None
    script = REPO_ROOT / ".ci" / "services"
    proc = subprocess.run([str(script), "start"], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"The shared backend's services did not start ({script} start): {proc.stderr.strip()}\n"
                    f"Install them (apt-get install -y postgresql; pip install 'moto[server]') or set {PG_ENV} and {S3_ENV}.",
                    pytrace=False)
    found: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            found[key] = shlex.split(value)[0]
    if not s3:
        for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            os.environ[key] = found[key]
    folder = found["ZOO_SERVICES_DIR"]
    return Services(pg or found["ZOO_SERVICES_PG_URL"], s3 or found["ZOO_SERVICES_S3_URL"]), \
        lambda: subprocess.run([str(script), "stop", folder], capture_output=True, timeout=120) and None



def flip_byte(path: Path, offset: int = -20, *, keep_mtime: bool = False) -> str:
    """Flip one byte of a local file in place (store files are read-only: that is the point); return the
    file's new sha256."""
    st = path.stat()
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    path.chmod(0o444)
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return hashlib.sha256(bytes(data)).hexdigest()

@dataclass
class Backend:
    name: str
    root: Path  # this test's local folder for the backend (the embedded store, or the shared store's cache)
    location: str  # what --store / ZOO_STORE take
    env: dict[str, str] = field(default_factory=dict)  # for child processes (and set in this one)
    artifacts: str | None = None
    schema: str | None = None

    def __str__(self) -> str:
        return self.name

    @classmethod
    def create(cls, name: str, tmp_path: Path, services: Services | None) -> "Backend":
        if name == "embedded":
            from zoo._registry import Registry

            location = str(tmp_path / "store")
            Registry.open(location, create=True).close()  # as `zoo store init` creates a shared one
            return cls(name, tmp_path / "store", location, {"ZOO_STORE": location})
        assert services is not None
        from zoo.store.shared import init_shared

        suffix = uuid.uuid4().hex[:12]
        schema = f"t_{suffix}"
        location = services.pg_url + ("&" if "?" in services.pg_url else "?") + f"schema={schema}"
        artifacts = f"{services.s3_url.rstrip('/')}/t_{suffix}"
        init_shared(location, artifacts=artifacts)
        cache = tmp_path / "cache"
        env = {"ZOO_STORE": location, "ZOO_CACHE": str(cache), "ZOO_CRASH_WINDOW": "0"}
        return cls(name, cache, location, env, artifacts, schema)

    def open(self, *, cache: Path | None = None) -> Any:
        """A registry on this store; ``cache`` gives the shared store another machine's cache folder."""
        import zoo

        if cache is not None and self.name == "shared":
            from zoo._registry import Registry

            return Registry.open_shared(self.location, cache=cache)
        return zoo.open_registry(self.location)

    def drop(self) -> None:
        """Remove a shared store's schema and objects (the services may be external and long-lived)."""
        if self.name != "shared":
            return
        import psycopg

        from zoo.store._s3io import make_client
        from zoo.store.location import parse_artifacts, parse_database

        with psycopg.connect(parse_database(self.location).conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        where = parse_artifacts(str(self.artifacts))
        client = make_client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=where.bucket, Prefix=where.prefix + "/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=where.bucket, Delete={"Objects": keys})

    # ------------------------------------------------------------------ views a contract test needs

    def objects(self, registry: Any) -> list[str]:
        """Digests of every published artifact."""
        return sorted(registry._blobs.digests())

    def scratch(self, registry: Any) -> list[str]:
        """What in-flight or dead writers left: scratch folders, lock files, upload intents."""
        if self.name == "embedded":
            return sorted(p.name for p in (self.root / "tmp").iterdir())
        blobs = registry._blobs
        intents = [o["Key"] for o in blobs._list(blobs._key("staging") + "/")]
        local = self.root / "staging" / "tmp"
        return sorted(intents + ([p.name for p in local.iterdir()] if local.is_dir() else []))

    def _key(self, registry: Any, digest: str, sha256: str) -> str:
        return registry._blobs._key("objects", digest, sha256)

    def damage(self, registry: Any, version: Any, relpath: str = "model.onnx", offset: int = -20,
               *, keep_mtime: bool = False) -> tuple[str, str]:
        """Flip one stored byte where the store keeps it; returns (where, new sha256). The shared store's
        local cache entry is dropped too, so the damaged copy is what the next read sees."""
        f = next(f for f in version.files if f.relpath == relpath)
        if self.name == "embedded":
            path = registry.path(version, verify=False).parent / relpath
            return str(path), flip_byte(path, offset, keep_mtime=keep_mtime)
        blobs = registry._blobs
        key = self._key(registry, version.sha256, f.sha256)
        data = bytearray(blobs._client.get_object(Bucket=blobs.bucket, Key=key)["Body"].read())
        data[offset] ^= 0xFF
        blobs._client.put_object(Bucket=blobs.bucket, Key=key, Body=bytes(data))  # an attacker ignores If-None-Match
        blobs.cache.drop(version.sha256)
        return f"s3://{blobs.bucket}/{key}", hashlib.sha256(bytes(data)).hexdigest()

    def delete_file(self, registry: Any, version: Any, relpath: str) -> str:
        """Remove one stored file of an artifact; returns where it was."""
        if self.name == "embedded":
            path = registry.path(version, verify=False).parent / relpath
            path.unlink()
            return str(path)
        f = next(f for f in version.files if f.relpath == relpath)
        blobs = registry._blobs
        key = self._key(registry, version.sha256, f.sha256)
        blobs._client.delete_object(Bucket=blobs.bucket, Key=key)
        blobs.cache.drop(version.sha256)
        return f"s3://{blobs.bucket}/{key}"
