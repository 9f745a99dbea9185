"""JSON from people we do not control (worker answers, worker-response files), parsed within fixed bounds.

Python's parser recurses once per nesting level: an answer nested a thousand brackets deep raises ``RecursionError``
(not a ``ValueError``), and so would any recursive code that later walks the parsed value. Every worker answer is
therefore measured before it is parsed: text longer than :data:`MAX_JSON_CHARS` or nested deeper than
:data:`MAX_JSON_DEPTH` is refused with :class:`JsonLimitError`. The depth is measured without recursion (brackets
outside string literals, summed with numpy), in time linear in the text.

The bounds are far above anything the crowd elements produce: a ``crowd-bounding-box`` answer nests 4 levels
(5 in a worker-response file's ``answers`` list, 6 with the element reference's list wrapper), and its
:data:`~truthflow.groundtruth.worker_answers.MAX_BOXES_PER_ANSWER` boxes take about 40,000 characters.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

MAX_JSON_DEPTH = 64
MAX_JSON_CHARS = 1_000_000

# A JSON string literal: no catastrophic backtracking (the two alternatives never match the same character).
_STRING_LITERAL = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
# Half of a surrogate pair, escaped: json.loads accepts it, but no UTF-8 output can hold the string it makes.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")
_OPENERS = np.zeros(256, dtype=np.int8)
_OPENERS[[ord("["), ord("{")]] = 1
_OPENERS[[ord("]"), ord("}")]] = -1


class JsonLimitError(ValueError):
    """JSON refused because it is longer or nested deeper than the bounds; the message says which and by how much."""


def encodes_as_utf8(text: str) -> bool:
    """Whether UTF-8 can hold ``text`` (not when it has half of a surrogate pair, which JSON escapes can make)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def value_encodes_as_utf8(value: Any) -> bool:
    """Whether every string (key or value) of a parsed JSON value is one UTF-8 can hold."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def nesting_depth(text: str | bytes) -> int:
    """The deepest bracket nesting of a JSON text (brackets inside string literals do not count)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if b"[" not in data and b"{" not in data:
        return 0
    without_strings = _STRING_LITERAL.sub(b'""', data)
    steps = _OPENERS[np.frombuffer(without_strings, dtype=np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def loads_bounded(
    text: str | bytes, *, what: str, max_depth: int = MAX_JSON_DEPTH, max_chars: int = MAX_JSON_CHARS
) -> Any:
    """``json.loads`` for untrusted text: :class:`JsonLimitError` when it is too long or too deep, otherwise the
    usual ``json.JSONDecodeError`` (a ``ValueError``) for malformed JSON, and a ``ValueError`` for a string that is
    not Unicode (a lone surrogate escape: every output is UTF-8). ``what`` names the text in messages."""
    if len(text) > max_chars:
        raise JsonLimitError(f"{what} is {len(text):,} characters long; at most {max_chars:,} are read")
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JsonLimitError(f"{what} is nested {depth} levels deep; at most {max_depth} levels are read")
    value = json.loads(text)
    escaped = _SURROGATE_ESCAPE.search(text) if isinstance(text, str) else _SURROGATE_ESCAPE_BYTES.search(text)
    if escaped is not None and not value_encodes_as_utf8(value):  # rare: only then is the value checked whole
        raise ValueError(f"{what} holds a lone surrogate escape (\\ud800-\\udfff without its pair)")
    return value
