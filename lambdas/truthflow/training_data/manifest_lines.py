"""The lines of a manifest read as raw bytes, with where each one begins, so that a manifest can be cut into byte
ranges that hold whole lines (the shards) and each range read on its own.

Lines end where ``bytes.splitlines`` ends them (``\\n``, ``\\r\\n`` or ``\\r``), as a whole object read with botocore's
``iter_lines`` does; a ``\\r\\n`` split across two chunks is one line end. Blank lines are yielded too (they count
for line numbers).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ManifestLine:
    """Line ``number`` (1-based) of a manifest: its text (UTF-8, without the line end), its first byte ``start`` and
    ``end``, the byte after its line end."""

    number: int
    start: int
    end: int
    text: str


def manifest_lines(chunks: Iterable[bytes], *, start: int = 0, first_number: int = 1) -> Iterator[ManifestLine]:
    """Split a byte stream given as chunks (any sizes) into lines; ``start`` and ``first_number`` are the position
    and line number of its first byte in the whole manifest. A line that is not UTF-8 is a ``ValueError`` naming it."""
    pending = b""
    offset, number = start, first_number
    for chunk in chunks:
        if not chunk:
            continue
        pieces = (pending + chunk).splitlines(keepends=True)
        # The last piece may go on in the next chunk: no line end yet, or a "\r" that a "\n" may follow.
        pending = b"" if pieces[-1].endswith(b"\n") else pieces.pop()
        for piece in pieces:
            yield _line(piece, number, offset)
            offset += len(piece)
            number += 1
    if pending:
        yield _line(pending, number, offset)


def _line(piece: bytes, number: int, offset: int) -> ManifestLine:
    if piece.endswith(b"\r\n"):
        content = piece[:-2]
    elif piece.endswith((b"\n", b"\r")):
        content = piece[:-1]
    else:
        content = piece
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"line {number}: not UTF-8 ({error.reason} at byte {error.start + 1})") from None
    return ManifestLine(number, offset, offset + len(piece), text)
