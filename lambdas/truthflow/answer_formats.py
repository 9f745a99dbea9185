"""What the command line needs to know about ``--answers`` files before it reads them, without loading the export
readers: the format names and help texts of its options, and whether a file is truthflow's own CSV layout.

The export readers (:mod:`truthflow.annotation_imports`, with pydantic models and every reader) take longer to import
than a whole CSV of answers takes to consolidate, so ``truthflow consolidate`` on CSV files never loads them. The
names here are those of :mod:`truthflow.annotation_imports.answer_sources` and the sniffing is its rule
(``tests/test_answer_formats.py`` holds them equal).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

CSV_FORMAT = "csv"
ANSWER_FORMATS: tuple[str, ...] = (CSV_FORMAT, "label-studio", "cvat", "coco", "groundtruth")
ANSWERS_HELP = "or a Label Studio, CVAT, COCO or Ground Truth export; repeat for several files (one per annotator/tool)"
BOX_COLUMNS_HELP = "image,worker,label,left,top,width,height"
FORMAT_HELP = (
    "format of the --answers files: once for all, or once per file in order (default: told from each file's content; "
    "csv is the layout above)"
)
_SNIFF_BYTES = 64 * 1024
_BLANK = b"\xef\xbb\xbf \t\r\n"


def all_csv(paths: Sequence[Path], formats: Sequence[str] | None) -> bool:
    """Whether every file is truthflow's CSV layout: told so by ``--format`` (once for all, or per file), or, without
    it, by content. ``False`` when the format options do not pair with the files (the export path says why)."""
    given = list(formats or ())
    if given:
        return len(given) in (1, len(paths)) and all(name == CSV_FORMAT for name in given)
    return all(path.is_file() and is_answer_csv(path) for path in paths)


def is_answer_csv(path: Path) -> bool:
    """Text that is not XML or JSON and has no Label Studio ``annotator`` column: the layout of this command."""
    try:
        with path.open("rb") as handle:
            prefix = handle.read(_SNIFF_BYTES)
    except OSError:
        return False
    if prefix.lstrip(_BLANK)[:1] in (b"<", b"{", b"["):
        return False
    return "annotator" not in _header(prefix.decode("utf-8-sig", errors="replace"))


def _header(text: str) -> list[str]:
    """The first line's cells (stripped), comma- or, for a tab-separated line without commas, tab-separated."""
    end = text.find("\n", 0, 65536)
    first_line = text[: end if end >= 0 else 65536]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    try:
        row = next(csv.reader(io.StringIO(first_line), delimiter=delimiter), [])
    except csv.Error:
        return []
    return [cell.strip() for cell in row]
