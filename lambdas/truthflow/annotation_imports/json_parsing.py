"""Parsing the JSON of exports: pydantic-core's parser first, the standard library's wherever that one refuses.

``pydantic_core.from_json`` (Rust; pydantic is a core dependency and in the Lambda layer) parses a Label Studio
export 1.5-2.4 times as fast as ``json.loads`` and a CSV cell's regions twice as fast (README, "Benchmarks";
``make bench``, annotation imports). Where it accepts a document it gives the values ``json.loads`` gives: the last of
duplicate keys, ``NaN`` and ``Infinity``, integers of any size up to Python's 4,300-digit limit, the same floats,
escaped slashes (``tests/test_annotation_imports_json.py`` checks each). Where it refuses one, ``json.loads`` reads
it as before, so what it reads and every error it raises (with its wording and line) stay those of the standard
library; that covers what ``json.loads`` reads and pydantic-core does not: nesting deeper than 200 levels and lone
surrogate escapes (``"\\ud800"``). Bytes go to pydantic-core as they are, without a copy decoded to ``str``: its
success means the bytes are valid UTF-8 (it checks every string, and everything outside strings is ASCII JSON syntax).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import from_json

_UTF8_BOM = b"\xef\xbb\xbf"


def loads(text: str) -> Any:
    """``json.loads(text)``, parsed by pydantic-core when it can (same value, same errors)."""
    try:
        return from_json(text, allow_inf_nan=True)
    except ValueError:
        return json.loads(text)


def loads_utf8(data: bytes) -> tuple[bool, Any]:
    """``(True, value)`` when ``data`` (UTF-8, one leading byte-order mark allowed) is one JSON value that
    pydantic-core parses, else ``(False, None)``: the caller decodes and parses with the standard library, which
    then reads the document or says what is wrong with it."""
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    try:
        # Keys only in the string cache: an export's values are mostly unique (ids, dates, coordinates), and caching
        # them too parsed the benchmark's exports up to 18 % slower.
        return True, from_json(data, allow_inf_nan=True, cache_strings="keys")
    except ValueError:
        return False, None
