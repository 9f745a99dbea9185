"""Telling export formats apart by their content, and decoding them once.

* XML (``<`` first): CVAT for images.
* One JSON value: an object with ``images``/``annotations``/``categories`` is COCO; with ``data`` a Label Studio
  task; with ``source-ref`` a one-line Ground Truth manifest. A list is a Label Studio JSON or JSON_MIN export.
* Several JSON objects, one per line: a Ground Truth output manifest (lines with ``source-ref``).
* Other text: CSV; Label Studio's has an ``annotator`` column.

Anything else is an :class:`~.model.ExportError` that says what was seen and asks for the format.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, AnyStr, Literal

from truthflow.annotation_imports.json_parsing import loads_utf8
from truthflow.annotation_imports.model import ExportError, ExportFormat

Shape = Literal["xml", "json", "json-lines", "text"]
_NOT_PARSED = object()


class Decoded:
    """A file's shape, its text, and its JSON document when it is one JSON value (parsed once, here). The text of a
    JSON document is decoded only when a reader asks for it (the JSON readers do not: they take the document)."""

    __slots__ = ("_data", "_text", "document", "shape")

    def __init__(self, text: str | None, shape: Shape, document: Any = _NOT_PARSED, *, data: bytes = b"") -> None:
        self._text = text
        self._data = data
        self.shape: Shape = shape
        self.document: Any = document

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self._data.decode("utf-8-sig")
        return self._text

    @property
    def parsed(self) -> bool:
        return self.document is not _NOT_PARSED


def decode(name: str, data: bytes) -> Decoded:
    """Decode ``data`` as UTF-8 and find its shape; a JSON value is parsed (see :mod:`.json_parsing`). XML is left
    to its parser (``text`` is empty), which reads the encoding its declaration names."""
    start = first_character(data)
    if start == b"<":
        return Decoded("", "xml")
    if start in (b"{", b"["):
        parsed, document = loads_utf8(data)
        if parsed:
            return Decoded(None, "json", document, data=data)
    # Not JSON, or JSON that pydantic-core refused: the standard library decides, and words the error.
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ExportError(f"{name}: not UTF-8 text (byte {error.start})") from None
    start_text = first_character(text)
    if start_text not in ("{", "["):
        return Decoded(text, "text")
    try:
        return Decoded(text, "json", json.loads(text))
    except json.JSONDecodeError as error:
        if start_text == "{" and error.msg == "Extra data":
            return Decoded(text, "json-lines")
        raise ExportError(f"{name} line {error.lineno}: not valid JSON ({error.msg})") from None
    except (ValueError, RecursionError) as error:  # nesting deeper than the parser's stack, huge integers
        raise ExportError(f"{name}: not readable JSON ({type(error).__name__}: {str(error)[:200]})") from None


def first_character(data: AnyStr) -> AnyStr:
    """The first character that is not white space or a byte-order mark (empty when there is none), without copying
    the whole (possibly huge) content."""
    skipped = "\ufeff \t\r\n" if isinstance(data, str) else b"\xef\xbb\xbf \t\r\n"
    index, size = 0, 4096
    while index < len(data):
        chunk = data[index : index + size].lstrip(skipped)
        if chunk:
            return chunk[:1]
        index += size
    return data[:0]


def detect_format(name: str, decoded: Decoded) -> ExportFormat | Literal["csv"]:
    """The format of a decoded file; ``csv`` is truthflow's own CSV layout (any text that is not Label Studio's)."""
    if decoded.shape == "xml":
        return "cvat"
    if decoded.shape == "json-lines":
        return "groundtruth"
    if decoded.shape == "text":
        return "label-studio" if "annotator" in csv_header(decoded.text) else "csv"
    document = decoded.document
    if type(document) is list:
        return "label-studio"
    if type(document) is dict:
        keys = set(document)
        if keys & {"images", "annotations", "categories"} and "data" not in keys:
            return "coco"
        if "data" in keys:
            return "label-studio"
        if "source-ref" in keys:
            return "groundtruth"
        listed = ", ".join(sorted(map(str, keys))[:10]) or "none"
        raise ExportError(
            f"{name}: cannot tell the format of a JSON object with keys {listed} (COCO has images/annotations/"
            "categories, a Label Studio task has data, a Ground Truth manifest line has source-ref); give --format"
        )
    raise ExportError(f"{name}: cannot tell the format of a JSON {type(document).__name__}; give --format")


def csv_header(text: str) -> list[str]:
    """The first row's cells (stripped); empty for empty text."""
    try:
        row = next(csv.reader(io.StringIO(_first_line(text)), delimiter=csv_delimiter(text)), [])
    except csv.Error:
        return []
    return [cell.strip() for cell in row]


def csv_delimiter(text: str) -> str:
    """A tab when the header line has tabs and no commas (Label Studio's TSV export), else a comma."""
    first_line = _first_line(text)
    return "\t" if "\t" in first_line and "," not in first_line else ","


def _first_line(text: str) -> str:
    end = text.find("\n", 0, 65536)
    return text[: end if end >= 0 else 65536]
