"""S3 plumbing for :mod:`zoo.store.s3`: clients, error messages that name the missing permission,
bounded-memory multipart uploads, and the small formats (manifest, identity)."""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..records import StoredFile

MULTIPART_THRESHOLD = 64 << 20
MIN_PART = 16 << 20
MAX_PARTS = 10_000
PARALLEL_PARTS = 4  # bounded memory: at most this many parts in RAM per upload
_PERMISSION = {  # S3 operation -> the IAM action a denied request lacked
    "PutObject": "s3:PutObject", "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject", "GetObject": "s3:GetObject", "HeadObject": "s3:GetObject",
    "ListObjectsV2": "s3:ListBucket", "DeleteObject": "s3:DeleteObject", "DeleteObjects": "s3:DeleteObject",
}

_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def make_client() -> Any:
    """One client per process and AWS configuration (creating one costs a few hundred ms; they are thread-safe)."""
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    key = (os.getpid(), endpoint, *(os.environ.get(v) for v in (
        "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")))
    with _clients_lock:
        if key not in _clients:
            session = boto3.session.Session()
            config = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=16,
                            s3={"addressing_style": "path"} if endpoint else {})
            _clients[key] = session.client("s3", region_name=session.region_name or "us-east-1", config=config)
        return _clients[key]


def status(exc: BaseException) -> int:
    return int(getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def error(exc: BaseException, op: str, where: str, *, bucket: str, location: str) -> StoreError:
    """A StoreError for a failed S3 request: a denied one names the IAM action it lacked."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
        permission = _PERMISSION.get(op, op)
        return StoreError(f"The S3 credentials may not {op} on {where}: they lack the {permission} permission",
                          hint="reading needs s3:GetObject and s3:ListBucket; registering also s3:PutObject and s3:DeleteObject")
    if code == "NoSuchBucket":
        return StoreError(f"The bucket {bucket!r} of {location} does not exist",
                          hint="create it (aws s3 mb s3://BUCKET), or fix --artifacts / ZOO_ARTIFACTS")
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return StoreError(f"No S3 credentials found for {location}",
                          hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError"):
        return StoreError(f"Cannot reach the S3 endpoint for {location}: {exc}", hint="check AWS_ENDPOINT_URL and the network")
    return StoreError(f"S3 {op} failed on {where}: {exc}", hint="check the bucket, the endpoint and the credentials")


def multipart(client: Any, bucket: str, key: str, path: Path, size: int, sha256: str, call: Callable[..., Any],
              fail: Callable[[BaseException, str, str], StoreError]) -> None:
    """Upload ``path`` in parts, ``PARALLEL_PARTS`` at a time (bounded memory), completed with If-None-Match: *
    (an existing object is kept). An unfinished upload is aborted."""
    from botocore.exceptions import ClientError

    part = max(MIN_PART, -(-size // MAX_PARTS))
    upload = call("CreateMultipartUpload", key, Metadata={"sha256": sha256})["UploadId"]
    fd = os.open(path, os.O_RDONLY)

    def send(number: int) -> dict[str, Any]:
        data = os.pread(fd, part, (number - 1) * part)
        etag = call("UploadPart", key, UploadId=upload, PartNumber=number, Body=data)["ETag"]
        return {"ETag": etag, "PartNumber": number}

    try:
        with ThreadPoolExecutor(PARALLEL_PARTS) as pool:
            parts = list(pool.map(send, range(1, -(-size // part) + 1)))
        try:
            client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts},
                                             IfNoneMatch="*")
            upload = ""
        except ClientError as exc:
            if status(exc) not in (409, 412):  # 412: already there (immutable: keep it)
                raise fail(exc, "CompleteMultipartUpload", key) from None
    finally:
        os.close(fd)
        if upload:
            try:
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
            except Exception:  # (best effort; a bucket lifecycle rule cleans the rest)
                pass


class Missing(Exception):
    """An artifact file's key is not in the bucket."""


def md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def manifest(files: Sequence[StoredFile]) -> bytes:
    return json.dumps({"files": [f.to_dict() for f in files]}, sort_keys=True).encode()


def identity(body: bytes) -> str | None:
    try:
        found = json.loads(body).get("store_id")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def is_digest(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def check_digest(digest: str) -> None:
    if not is_digest(digest):
        raise StoreError(f"Expected a sha256 hex digest. Received: {digest!r}")
