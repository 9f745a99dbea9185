"""Image references in exports, reduced to the image's file name so the same photo matches across tools.

Exports name images in many ways: Label Studio's ``/data/upload/<project>/<8 hex>-photo.jpg`` (uploads get an
8-hex-digit prefix), ``/data/local-files/?d=folder/photo.jpg`` (local storage), ``s3://bucket/key``, ``gs://``,
``http(s)://host/path?signature``, CVAT's relative paths (``folder/photo.jpg``), COCO's ``file_name`` (Label Studio's
COCO export writes ``images/<8 hex>-photo.jpg``, on Windows with ``\\``), or a bare name. The item name is the last
path segment, percent-decoded where the reference is a URL, with Label Studio's upload prefix removed.

The prefix is ``<8 lowercase hex digits>-`` (Label Studio prepends ``uuid4().hex[:8]``); it is kept when the whole
name is a UUID (``3f2a9c1b-4e5d-11ee-be56-0242ac120002.jpg``), whose first group looks the same.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

_UPLOAD_PREFIX = re.compile(r"[0-9a-f]{8}-")
_UUID_NAME = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?:\.[^.]*)?")
_URL_SCHEMES = ("http://", "https://")


def last_segment(reference: str) -> str:
    """The reference's last path segment as the tool stored it (no prefix removed); ``ValueError`` if none."""
    text = reference.strip()
    if not text:
        raise ValueError("empty image reference")
    if text.startswith("data:"):
        raise ValueError("an inline data: URI, not a file reference")
    is_url = text[:8].lower().startswith(_URL_SCHEMES)
    decode = is_url or text.startswith("/data/")  # Label Studio serves uploads and files under /data/
    if decode:
        if is_url or "?" in text or "#" in text:
            parts = urlsplit(text)
            local = parse_qs(parts.query).get("d")
            # Label Studio's local-files storage puts the file's path in the ``d`` query parameter (decoded).
            if local and parts.path.rstrip("/").endswith("local-files"):
                text, decode = local[0], False
            else:
                text = parts.path
    elif "://" in text:
        text = text.split("://", 1)[1].partition("/")[2]  # s3://bucket/key, gs://..., azure-blob://...
    name = text.rsplit("/", 1)[-1]
    if "\\" in name:
        name = name.rsplit("\\", 1)[-1]
    if decode and "%" in name:
        name = unquote(name)
    if not name or name in {".", ".."}:
        raise ValueError(f"cannot take a file name from {reference!r}")
    return name


def image_file_name(reference: str) -> str:
    """The item name of an image reference: its file name without Label Studio's upload prefix."""
    name = last_segment(reference)
    if _UPLOAD_PREFIX.match(name) and len(name) > 9 and not _UUID_NAME.fullmatch(name):
        return name[9:]
    return name
