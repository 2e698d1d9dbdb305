"""Where a store lives, from what the user typed: a folder, a PostgreSQL URL, an ``s3://`` URL.

``--store`` / ``ZOO_STORE`` take a folder (the embedded store, the zero-config default) or
``postgresql://user[:password]@host[:port]/db[?schema=NAME&...]``; ``--artifacts`` / ``ZOO_ARTIFACTS``
take ``s3://bucket[/prefix]`` or a folder. Secrets never leave this module unredacted: every
message that names a location uses :attr:`StoreURL.shown`, and :func:`scrub` removes a password
from driver messages that might quote it. Nothing here imports a database or S3 client.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from ..errors import InvalidInput

__all__ = ["ArtifactsURL", "StoreURL", "is_database_url", "parse_artifacts", "parse_database", "redact", "scrub"]

DATABASE_SCHEMES = ("postgresql", "postgres")
DEFAULT_SCHEMA = "zoo"
SCHEMA_PATTERN = r"[a-z_][a-z0-9_]{0,62}"
_SECRET_PARAMS = {"password", "sslpassword", "passfile", "sslkey", "secret", "token", "aws_secret_access_key"}
_REDACTED = "***"


def is_database_url(value: object) -> bool:
    """Whether ``value`` names a PostgreSQL store (anything else is a folder)."""
    return isinstance(value, str) and value.split(":", 1)[0].lower() in DATABASE_SCHEMES and "://" in value


def redact(url: str) -> str:
    """``url`` with any password (userinfo or query parameter) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + _REDACTED
        netloc = f"{userinfo}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, _REDACTED if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [] if parts.password is None else [parts.password, unquote(parts.password)]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() in _SECRET_PARAMS]
    return [s for s in found if s]


def scrub(text: str, url: str) -> str:
    """``text`` (e.g. a driver's error message) with every secret of ``url`` replaced by ``***``."""
    for secret in sorted(set(_secrets(url)), key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
    return text.replace(url, redact(url))


@dataclass(frozen=True)
class StoreURL:
    """A parsed PostgreSQL store address. ``conninfo`` goes to the driver; ``shown`` goes to people."""

    conninfo: str  # the URL without zoo's own ``schema`` parameter
    schema: str
    shown: str

    def __str__(self) -> str:
        return self.shown


def parse_database(url: str) -> StoreURL:
    """Split zoo's ``schema`` parameter (default ``zoo``) off a ``postgresql://`` URL."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidInput(f"Expected a PostgreSQL URL like postgresql://user@host:5432/db. Received: {redact(url)!r}",
                           hint=str(exc)) from None
    if parts.scheme.lower() not in DATABASE_SCHEMES or not parts.netloc and not parts.path.strip("/"):
        raise InvalidInput(f"Expected a PostgreSQL URL like postgresql://user@host:5432/db. Received: {redact(url)!r}",
                           hint="name the host and the database")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in pairs if k == "schema"]
    schema = schemas[-1] if schemas else DEFAULT_SCHEMA
    if not re.fullmatch(SCHEMA_PATTERN, schema, re.ASCII):
        raise InvalidInput(f"Expected a schema name matching {SCHEMA_PATTERN}. Received: {schema!r}",
                           hint=f"leave ?schema= out for the default {DEFAULT_SCHEMA!r}")
    rest = urlencode([(k, v) for k, v in pairs if k != "schema"], quote_via=quote)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, rest, ""))
    return StoreURL(conninfo=conninfo, schema=schema, shown=redact(url))


@dataclass(frozen=True)
class ArtifactsURL:
    """Where artifact bytes live: an S3 bucket and key prefix (``bucket`` set), or a folder (``folder`` set)."""

    bucket: str | None = None
    prefix: str = ""
    folder: str | None = None

    @property
    def shown(self) -> str:
        if self.bucket is None:
            return str(self.folder)
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def __str__(self) -> str:
        return self.shown


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", re.ASCII)
_PREFIX_PART = re.compile(r"[A-Za-z0-9._-]{1,128}", re.ASCII)


def parse_artifacts(value: str) -> ArtifactsURL:
    """``s3://bucket[/prefix]`` or a folder path. A prefix is plain path segments (no ``..``, no empties)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"Expected an artifacts location (s3://bucket/prefix or a folder). Received: {value!r}")
    if "://" not in value:
        return ArtifactsURL(folder=value)
    parts = urlsplit(value)
    if parts.scheme.lower() != "s3":
        raise InvalidInput(f"Expected an artifacts location s3://bucket/prefix or a folder. Received: {redact(value)!r}",
                           hint="other object stores speak S3: point AWS_ENDPOINT_URL at them and use s3://")
    if parts.query or parts.fragment or "@" in parts.netloc or not _BUCKET.fullmatch(parts.netloc):
        raise InvalidInput(f"Expected s3://BUCKET/PREFIX with a valid bucket name. Received: {redact(value)!r}",
                           hint="credentials and the endpoint come from the AWS variables (AWS_ENDPOINT_URL, AWS_PROFILE, ...)")
    segments = [s for s in parts.path.split("/") if s]
    if any(not _PREFIX_PART.fullmatch(s) or s in (".", "..") for s in segments):
        raise InvalidInput(f"Expected a key prefix of plain segments [A-Za-z0-9._-]. Received: {parts.path!r}",
                           hint="e.g. s3://models/zoo or s3://models/team-a/registry")
    return ArtifactsURL(bucket=parts.netloc, prefix="/".join(segments))
