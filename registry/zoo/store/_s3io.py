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

from ..errors import StoreError, StoreUnavailable
from ..records import StoredFile
from . import _network

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
    """One client per process and AWS configuration (creating one costs a few hundred ms; they are thread-safe).

    Connect and read timeouts and retries come from :mod:`zoo.store._network` (an unreachable endpoint
    answers in seconds); a configuration botocore refuses is a :class:`~zoo.errors.StoreError`."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    connect, read, retries = _network.connect_timeout(), _network.read_timeout(), _network.retries()
    key = (os.getpid(), endpoint, connect, read, retries, *(os.environ.get(v) for v in (
        "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")))
    with _clients_lock:
        if key not in _clients:
            try:
                session = boto3.session.Session()
                config = Config(retries={"total_max_attempts": retries + 1, "mode": "standard"}, max_pool_connections=16,
                                connect_timeout=connect, read_timeout=read,
                                s3={"addressing_style": "path"} if endpoint else {})
                _clients[key] = session.client("s3", region_name=session.region_name or "us-east-1", config=config)
            except (ValueError, BotoCoreError) as exc:
                raise StoreError(f"Cannot set up an S3 client for endpoint {endpoint or 'AWS'}: {exc}",
                                 hint="check AWS_ENDPOINT_URL, AWS_PROFILE and the AWS configuration files") from None
        return _clients[key]


def errors() -> tuple[type[BaseException], ...]:
    """Every exception an S3 request can raise: ClientError (an answer), BotoCoreError (no answer: refused,
    timed out, cut short) and urllib3's errors escaping a streamed body."""
    from botocore.exceptions import BotoCoreError, ClientError
    from urllib3.exceptions import HTTPError

    return (ClientError, BotoCoreError, HTTPError)


def endpoint_of(client: Any) -> str:
    return str(getattr(getattr(client, "meta", None), "endpoint_url", "") or "AWS S3")


def status(exc: BaseException) -> int:
    return int((getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def error(exc: BaseException, op: str, where: str, *, bucket: str, location: str, endpoint: str = "") -> StoreError:
    """A StoreError for a failed S3 request: a denied one names the IAM action it lacked; one that got no
    answer (refused, timed out, cut short) is :class:`~zoo.errors.StoreUnavailable` naming the endpoint."""
    code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code", "")
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
    if _no_answer(exc):  # an outage (or a wrong endpoint)
        attempts = _network.retries() + 1
        return StoreUnavailable(
            f"Cannot reach the S3 endpoint {endpoint or 'AWS S3'} for {location} ({op}, {attempts} attempt"
            f"{'s' if attempts > 1 else ''}): {type(exc).__name__}: {exc}",
            hint=f"check that the endpoint is up and AWS_ENDPOINT_URL; versions in the local cache still load; "
                 f"{_network.CONNECT_TIMEOUT_ENV}, {_network.READ_TIMEOUT_ENV} and {_network.RETRIES_ENV} set how long "
                 "zoo waits", service="s3")
    return StoreError(f"S3 {op} failed on {where}: {exc}", hint="check the bucket, the endpoint and the credentials")


def _no_answer(exc: BaseException) -> bool:
    """Whether the request got no (whole) answer: refused, timed out, connection cut, body cut short."""
    import botocore.exceptions as be
    from urllib3.exceptions import HTTPError

    cut = tuple(getattr(be, n) for n in ("ConnectionError", "HTTPClientError", "ResponseStreamingError", "IncompleteReadError")
                if hasattr(be, n))
    return isinstance(exc, (*cut, HTTPError, ConnectionError, TimeoutError))


def multipart(client: Any, bucket: str, key: str, path: Path, size: int, sha256: str, call: Callable[..., Any],
              fail: Callable[[BaseException, str, str], StoreError]) -> None:
    """Upload ``path`` in parts, ``PARALLEL_PARTS`` at a time (bounded memory), completed with If-None-Match: *
    (an existing object is kept). An unfinished upload is aborted."""
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
        except errors() as exc:
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
