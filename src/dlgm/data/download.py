"""Fetch one dataset file: the mirror first, then each upstream URL; verify its content; write atomically.

A catalogue entry (one file of ``config/datasets.yaml``) gives ``urls``, ``content`` (``gzip``,
``zip`` or ``raw``: what the digest is taken of), ``sha256`` and ``bytes``. Digests are of the
decompressed content, so a mirror that recompressed a file still verifies.

The output appears only when its content verified; otherwise nothing is left behind and one error
lists every source tried and why it failed.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Any

from dlgm.atomic import atomic_path

MIRROR_ENV = "DLGM_DATA_MIRROR"
CHUNK = 1 << 20
log = logging.getLogger("dlgm.data")


class DownloadError(RuntimeError):
    """No source gave a verified copy of the file."""


class ContentError(DownloadError):
    """The bytes arrived but are not the expected content (HTML page, truncated, wrong digest)."""


class SourceMissing(DownloadError):
    """The source answered that it does not have the file (404, no such mirror file): no retry."""


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://", "file://"))


def sources(dataset: str, name: str, urls: list[str], mirror: str | None) -> list[str]:
    """Where to look, in order: ``<mirror>/<dataset>/<name>`` (a folder or a URL prefix), then ``urls``."""
    found = []
    if mirror:
        if is_url(mirror):
            found.append(f"{mirror.rstrip('/')}/{dataset}/{name}")
        else:
            found.append(str(Path(mirror) / dataset / name))
    return found + list(urls)


def _copy(source: str, dest: Path, timeout: float) -> None:
    """Copy one source to ``dest``; HTTP errors are sorted into missing (no retry) and transient."""
    if not is_url(source):
        path = Path(source)
        if not path.parent.parent.is_dir():
            raise SourceMissing(f"mirror folder {path.parent.parent} does not exist")
        if not path.is_file():
            raise SourceMissing(f"mirror has no file {path}")
        shutil.copyfile(path, dest)
        return
    request = urllib.request.Request(source, headers={"User-Agent": "dlgm-data-download"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
            kind = response.headers.get_content_type()
            if kind == "text/html":
                raise ContentError(f"{source} sent an HTML page (Content-Type {kind}) instead of data")
            shutil.copyfileobj(response, out, CHUNK)
    except urllib.error.HTTPError as err:
        if 400 <= err.code < 500 and err.code not in (408, 429):
            raise SourceMissing(f"HTTP {err.code} {err.reason}") from err
        raise
    except http.client.IncompleteRead as err:
        raise OSError(f"connection closed after {len(err.partial)} bytes") from err


def _sniff_html(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head"))


def content_digest(path: str | os.PathLike, content: str) -> tuple[str, int]:
    """sha256 and size of what ``content`` names: gunzipped bytes, a zip's member manifest, or the file."""
    path = Path(path)
    digest = hashlib.sha256()
    size = 0
    if content == "gzip":
        try:
            with gzip.open(path, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        except EOFError as err:
            raise ContentError(f"truncated gzip ({err}); {size} bytes decompressed before the end") from err
        except (gzip.BadGzipFile, OSError, zlib.error) as err:
            raise ContentError(f"not a valid gzip file: {err}") from err
    elif content == "zip":
        try:
            with zipfile.ZipFile(path) as archive:
                members = [info for info in archive.infolist() if not info.is_dir()]
                members.sort(key=lambda info: info.filename)
                for info in members:
                    member_digest = hashlib.sha256(archive.read(info)).hexdigest()
                    digest.update(f"{member_digest}  {info.filename}\n".encode())
                    size += info.file_size
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as err:
            raise ContentError(f"not a valid zip archive (truncated or corrupt): {err}") from err
    elif content == "raw":
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    else:
        raise ValueError(f"unknown content kind {content!r} (expected gzip, zip or raw)")
    return digest.hexdigest(), size


def verify(path: Path, entry: dict[str, Any], name: str, source: str) -> None:
    """Raise ContentError naming file, source, expected and actual digest unless ``path`` is right."""
    if _sniff_html(path):
        raise ContentError(f"{source} sent an HTML page instead of {name}")
    try:
        actual, size = content_digest(path, entry["content"])
    except ContentError as err:
        raise ContentError(f"{name} from {source}: {err}") from err
    expected = entry["sha256"].lower()
    if actual != expected:
        raise ContentError(
            f"checksum mismatch for {name} from {source}: expected sha256 {expected}, "
            f"got {actual} (of the {entry['content']} content, {size} bytes; expected {entry.get('bytes')} bytes)"
        )


def download(
    dataset: str,
    name: str,
    entry: dict[str, Any],
    out: str | os.PathLike,
    *,
    mirror: str | None = None,
    attempts: int = 3,
    backoff: float = 2.0,
    timeout: float = 60.0,
) -> str:
    """Write a verified copy of ``dataset/name`` to ``out``; return the source it came from.

    ``mirror`` defaults to the environment variable DLGM_DATA_MIRROR. Each source gets up to
    ``attempts`` tries, waiting ``backoff * 2**k`` seconds between them, when the failure may be
    passing (network error, HTTP 5xx); a missing file or wrong content moves on to the next source.
    """
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    for key in ("content", "sha256"):
        if key not in entry:
            raise KeyError(f"catalogue entry for {dataset}/{name} lacks {key!r}")
    tried = sources(dataset, name, entry.get("urls", []), mirror)
    if not tried:
        raise DownloadError(
            f"{dataset}/{name} has no upstream URL; set {MIRROR_ENV} to a folder or URL holding {dataset}/{name}"
        )
    failures = []
    for source in tried:
        for attempt in range(attempts):
            log.info("fetching %s/%s from %s (try %d of %d)", dataset, name, source, attempt + 1, attempts)
            try:
                with atomic_path(out) as tmp:
                    _copy(source, tmp, timeout)
                    verify(tmp, entry, name, source)
                log.info("verified %s (sha256 %s)", out, entry["sha256"])
                return source
            except (ContentError, SourceMissing) as err:
                log.warning("%s: %s", source, err)
                failures.append((source, str(err)))
                break
            except (urllib.error.URLError, OSError, TimeoutError) as err:
                if isinstance(err, urllib.error.HTTPError):
                    reason = f"HTTP {err.code} {err.reason}"
                else:
                    reason = getattr(err, "reason", None) or err
                log.warning("%s: %s", source, reason)
                if attempt + 1 == attempts:
                    failures.append((source, f"{reason} (after {attempts} tries)"))
                else:
                    time.sleep(backoff * 2**attempt)
    lines = "\n".join(f"  - {source}: {why}" for source, why in failures)
    if not mirror:
        lines += f"\n  (no mirror: {MIRROR_ENV} is not set)"
    raise DownloadError(f"could not download {dataset}/{name}; every source failed:\n{lines}")
