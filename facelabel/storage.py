"""Photos in object storage (``s3://bucket/key``, or any fsspec URL: ``gs://``, ``az://``,
``http(s)://``): URLs parsed strictly for confinement, listings streamed page by page, objects
read after a size check, and an unreachable store told apart from a missing object.

Credentials and the endpoint are never handled here: s3fs and botocore read the standard
AWS variables and files (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, …).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
from typing import Iterator, Sequence
from urllib.parse import unquote, urlsplit

from facelabel.errors import NOT_FOUND, FacelabelError, ReadError

log = logging.getLogger(__name__)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
# bounded waits on every storage connection, so a dead link is noticed, not waited on forever
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 20
CALL_TIMEOUT = 60  # a whole call (a HEAD, a GET, a listing page), its client's retries included
SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class StorageUnavailable(FacelabelError):
    """The object store cannot be reached (or answers with a server error): try again later."""


def is_url(path: object) -> bool:
    """A URL with a scheme of two letters or more (``C:\\`` is a Windows drive, not a scheme)."""
    return isinstance(path, str) and bool(_SCHEME.match(path))


@dataclasses.dataclass(frozen=True)
class ObjectURL:
    """A URL split into scheme, bucket (or host) and key, with no segment that could climb."""

    scheme: str
    bucket: str
    key: str  # no leading or trailing "/"; "" for a whole bucket

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key}" if self.key else f"{self.scheme}://{self.bucket}"

    def within(self, root: ObjectURL) -> bool:
        """Under ``root``: the same scheme and bucket, the key at or below root's on a ``/``."""
        if (self.scheme, self.bucket) != (root.scheme, root.bucket):
            return False
        return not root.key or self.key == root.key or self.key.startswith(root.key + "/")

    @property
    def fs_path(self) -> str:
        """The path fsspec's filesystem for this scheme takes."""
        if self.scheme in ("http", "https"):
            return str(self)
        return f"{self.bucket}/{self.key}" if self.key else self.bucket

    @property
    def mirrored(self) -> str:
        """A relative path that mirrors scheme, bucket and key (sidecars under ``--out``)."""
        return "/".join(filter(None, (self.scheme, self.bucket, self.key)))


def parse(url: str) -> ObjectURL:
    """``url`` split strictly; ReadError for anything that is not a plain bucket and key.

    Refused: credentials, query or fragment in the URL, empty segments (``//``), and segments
    that are ``.``, ``..`` or hold ``/`` or ``\\`` once percent-decoded (at any depth), so
    neither a store nor an HTTP server can resolve a key to somewhere else.
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ReadError(f"refused: not a valid URL: {exc}") from None
    if parts.query or parts.fragment or "@" in parts.netloc or not parts.netloc:
        raise ReadError(f"refused: {_shown(url)}: only scheme://bucket/key URLs are read")
    key = parts.path[1:] if parts.path.startswith("/") else parts.path
    segments = key.split("/")
    if segments[-1] == "":  # a trailing "/" names a prefix
        segments.pop()
    for segment in segments:
        decoded = _fully_unquoted(segment)
        if decoded in ("", ".", "..") or "/" in decoded or "\\" in decoded or "\x00" in decoded:
            raise ReadError(f"refused: {_shown(url)}: the key has an empty, '.' or '..' segment")
    return ObjectURL(parts.scheme.lower(), parts.netloc.lower(), "/".join(segments))


def _fully_unquoted(text: str) -> str:
    while (decoded := unquote(text)) != text:
        text = decoded
    return text


def normalised(url: str) -> str:
    """The form a URL is stored and compared in (``s3://bucket/prefix``, no trailing ``/``)."""
    return str(parse(url))


def inside(url: str, roots: Sequence[str]) -> bool:
    """``url`` lies under one of the URL ``roots`` (local roots never hold a URL)."""
    try:
        target = parse(url)
        return any(target.within(parse(r)) for r in roots if is_url(r))
    except ReadError:
        return False


def filesystem(scheme: str):
    """fsspec's filesystem for ``scheme``, with bounded connect and read waits (fsspec keeps one
    instance per process and settings, renewed after a fork). On S3 botocore makes one attempt
    per request and s3fs retries it; ``_call`` bounds the whole call."""
    import fsspec

    if scheme in ("s3", "s3a"):
        timeouts = {"connect_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT}
        return fsspec.filesystem(
            "s3",
            config_kwargs={**timeouts, "retries": {"max_attempts": 1, "mode": "standard"}},
            use_listings_cache=False,
        )
    if scheme in ("http", "https"):
        import aiohttp

        timeout = aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
        return fsspec.filesystem(scheme, client_kwargs={"timeout": timeout})
    return fsspec.filesystem(scheme)


def objects(url: str) -> Iterator[str]:
    """Every object's URL under ``url`` (or ``url`` itself when it names one), as the store
    lists them: page by page on S3, folder by folder elsewhere; nothing is kept but the page.
    A URL that names neither an object nor a prefix with objects is a ReadError."""
    root = parse(url)
    found = False
    try:
        for found, object_url in enumerate(_listed(root), start=1):
            yield object_url
    except StorageUnavailable:
        raise
    except ReadError as exc:
        raise ReadError(f"{_shown(url)}: {exc}") from None
    except Exception as exc:
        error = _storage_error(exc, url)
        raise (ReadError(f"{_shown(url)}: {error}") if isinstance(error, ReadError) else error) from None
    if not found:
        raise ReadError(f"{_shown(url)}: no object or prefix of that name")


def _listed(root: ObjectURL) -> Iterator[str]:
    fs = filesystem(root.scheme)
    if root.key and _call(fs, "isfile", root.fs_path):
        yield str(root)
    elif hasattr(fs, "_iterdir"):  # s3fs: one flat listing under the prefix, a page at a time
        yield from _pages(fs, root)
    else:
        for folder, _, names in fs.walk(root.fs_path):
            for name in names:
                path = f"{folder.rstrip('/')}/{name}"
                yield path if is_url(path) else f"{root.scheme}://{path}"


def _pages(fs, root: ObjectURL) -> Iterator[str]:
    """s3fs's paged ``list_objects_v2`` under ``root``, driven from this thread."""
    from fsspec.asyn import sync

    prefix = f"{root.key}/" if root.key else ""
    pages = fs._iterdir(root.bucket, delimiter="", prefix=prefix)
    while True:
        try:
            entry = sync(fs.loop, pages.__anext__, timeout=CALL_TIMEOUT)
        except StopAsyncIteration:
            return
        if entry["type"] == "file" and not entry["name"].endswith("/"):
            yield f"{root.scheme}://{entry['name']}"


def read_object(
    url: str,
    roots: Sequence[str],
    *,
    max_bytes: int,
    data_roots: Sequence[object] = (),
    outage_deadline: float = 0,
) -> bytes:
    """The bytes of the object at ``url``, refused unread unless it lies under ``roots`` (and
    under the URL ``data_roots`` when the worker has any) and is at most ``max_bytes`` long
    by its listing (a HEAD), before any byte is fetched. An unreachable store is tried again
    with backoff for ``outage_deadline`` seconds, then StorageUnavailable."""
    target = parse(url)
    if not any(target.within(parse(r)) for r in roots if is_url(r)):
        raise ReadError(f"refused: {_shown(url)} is outside the job's roots")
    if data_roots and not inside(str(target), [str(r) for r in data_roots]):
        raise ReadError(f"refused: {_shown(url)} is outside this worker's FACELABEL_DATA_ROOTS")
    started, wait = time.monotonic(), 1.0
    while True:
        try:
            return _fetch(target, max_bytes)
        except StorageUnavailable as exc:
            if time.monotonic() - started + wait > outage_deadline:
                raise
            log.warning("%s; trying again in %.0f s", exc, wait)
            time.sleep(wait)
            wait = min(2 * wait, 60.0)


def _fetch(target: ObjectURL, max_bytes: int) -> bytes:
    fs = filesystem(target.scheme)
    try:
        info = _call(fs, "info", target.fs_path)
        if info.get("type") == "directory":
            raise ReadError("not a file: it is a directory")
        size = info.get("size")
        if size is None:
            raise ReadError("the store does not tell the object's size")
        if size > max_bytes:
            raise ReadError(f"file too large: {size} bytes (limit {max_bytes})")
        # one byte past the limit: an object that grew since the HEAD is still caught
        data = _call(fs, "cat_file", target.fs_path, start=0, end=max_bytes + 1) if size else b""
    except (ReadError, StorageUnavailable):
        raise
    except Exception as exc:
        raise _storage_error(exc, str(target)) from None
    if len(data) > max_bytes:
        raise ReadError(f"file too large: over {max_bytes} bytes (limit)")
    return data


def _call(fs, method: str, *args, **kwargs):
    """``fs.method(...)``, given at most CALL_TIMEOUT seconds where fsspec can bound it (its
    asynchronous filesystems: s3, gcs, az, http); a dead link then fails in bounded time."""
    if getattr(fs, "async_impl", False):
        kwargs["timeout"] = CALL_TIMEOUT
    return getattr(fs, method)(*args, **kwargs)


def _storage_error(exc: Exception, url: str) -> Exception:
    """A missing or forbidden object as a ReadError (a failure row); anything else, from a
    refused connection to a time-out or a server error, as StorageUnavailable (retried)."""
    if isinstance(exc, FileNotFoundError):
        return ReadError(NOT_FOUND)
    if isinstance(exc, PermissionError):
        return ReadError("permission denied")
    if isinstance(exc, IsADirectoryError):
        return ReadError("not a file: it is a directory")
    status = _http_status(exc)
    if status is not None and status < 500:
        return ReadError(f"cannot read object: {_shown(str(exc))}")
    return StorageUnavailable(
        f"object store unavailable for {_shown(url)}: {_shown(str(exc)) or type(exc).__name__}"
    )


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status of the store's answer behind ``exc`` (s3fs keeps botocore's error as the
    cause of the OSError it raises); None when no answer came."""
    while exc is not None:
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            return response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        status = getattr(exc, "status", None)  # aiohttp's ClientResponseError (http://)
        if isinstance(status, int):
            return status
        exc = exc.__cause__
    return None


def _shown(text: str) -> str:
    """``text`` with any credential of the environment replaced by ``***``."""
    for name in SECRETS:
        if len(secret := os.environ.get(name, "")) >= 8:  # shorter ones are no real key
            text = text.replace(secret, "***")
    return text
