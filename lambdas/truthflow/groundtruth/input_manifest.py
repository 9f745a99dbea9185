"""The input manifest of a labeling job: JSON Lines, one ``{"source-ref": "s3://bucket/key"}`` object per image.

Limits from the AWS pages ``sms-input-data-input-manifest`` and ``input-data-limits`` (reference §1.3): a line is at
most 100,000 characters, no single attribute may exceed 20,000 characters, attribute names cannot begin with ``$``,
and a job takes at most 100,000 data objects. Every key of a line reaches the PRE Lambda as ``dataObject``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

MAX_LINE_CHARS = 100_000
MAX_ATTRIBUTE_CHARS = 20_000
MAX_DATA_OBJECTS_PER_JOB = 100_000


def check_s3_uri(uri: str, *, what: str = "source-ref") -> str:
    """Return ``uri`` if it is ``s3://<bucket>/<key>``; otherwise a ``ValueError`` saying what is wrong."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValueError(f"{what} {uri!r} is not an s3:// URI")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ValueError(f"{what} {uri!r} needs a bucket and an object key (s3://<bucket>/<key>)")
    return uri


def attribute_size(value: Any) -> int:
    """The characters an attribute value takes in a manifest line, as the 20,000-character limit counts them."""
    return len(json.dumps(value, ensure_ascii=False))


def input_manifest_line(source_ref: str, attributes: Mapping[str, Any] | None = None) -> str:
    """One input-manifest line (ending in ``\\n``): ``source-ref`` first, then ``attributes`` (passed to the PRE
    Lambda unchanged). Checks the documented limits."""
    check_s3_uri(source_ref)
    line: dict[str, Any] = {"source-ref": source_ref}
    for name, value in (attributes or {}).items():
        if name in line:
            raise ValueError(f"attribute {name!r} would overwrite source-ref")
        if not name or name.startswith("$"):
            raise ValueError(f"attribute name {name!r} is empty or begins with '$'")
        size = attribute_size(value)
        if size > MAX_ATTRIBUTE_CHARS:
            raise ValueError(f"attribute {name!r} of {source_ref} is {size} characters; the limit is 20,000")
        line[name] = value
    text = json.dumps(line, ensure_ascii=False, separators=(",", ":"))
    if len(text) > MAX_LINE_CHARS:
        raise ValueError(f"manifest line for {source_ref} is {len(text)} characters; the limit is 100,000")
    return text + "\n"


def build_input_manifest(
    source_refs: Iterable[str],
    *,
    attributes: Callable[[str], Mapping[str, Any]] | None = None,
    max_objects: int = MAX_DATA_OBJECTS_PER_JOB,
) -> Iterator[str]:
    """Stream input-manifest lines for ``source_refs`` (in the given order). ``attributes(source_ref)`` adds
    per-image attributes. More than ``max_objects`` images (the per-job quota) is a ``ValueError``."""
    for count, source_ref in enumerate(source_refs, start=1):
        if count > max_objects:
            raise ValueError(f"more than {max_objects} data objects: split the images over several labeling jobs")
        yield input_manifest_line(source_ref, attributes(source_ref) if attributes is not None else None)


def write_input_manifest(
    source_refs: Iterable[str],
    write: Callable[[str], object],
    *,
    attributes: Callable[[str], Mapping[str, Any]] | None = None,
) -> int:
    """Write the manifest through ``write`` (e.g. ``file.write``) and return the number of lines written."""
    written = 0
    for line in build_input_manifest(source_refs, attributes=attributes):
        write(line)
        written += 1
    return written
