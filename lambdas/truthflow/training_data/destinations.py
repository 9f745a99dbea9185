"""Where converters write: a small protocol, so that the Lambda adapter can plug in S3 later.

Converters only ever open one relative path at a time for writing (text, UTF-8, ``\\n`` line ends) or hand over a
finished ``bytes`` value, so an S3 implementation can stream each file as an upload. Paths use ``/`` and are relative
to the destination's root; ``..`` and absolute paths are refused.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol, TextIO


class Destination(Protocol):
    """A writable tree of files."""

    def open_text(self, path: str) -> AbstractContextManager[TextIO]:
        """Open ``path`` for writing text; the file is complete when the context exits without error."""
        ...

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a whole binary file."""
        ...


def checked_relative_path(path: str) -> str:
    """``path`` if it is a relative ``/``-separated path without ``..``, ``.`` or empty parts; else ``ValueError``."""
    parts = path.split("/")
    if not path or path.startswith(("/", "\\")) or any(part in {"", ".", ".."} for part in parts) or ":" in parts[0]:
        raise ValueError(f"destination path {path!r} must be a relative path without '..', '.' or empty parts")
    return path


class DirectoryDestination:
    """Files under a local directory (folders are created as needed)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._root_text = os.fspath(self.root)
        self._made: set[str] = set()

    def _target(self, path: str) -> str:
        relative = checked_relative_path(path)
        folder, _, _ = relative.rpartition("/")
        if folder not in self._made:
            os.makedirs(os.path.join(self._root_text, folder), exist_ok=True)
            self._made.add(folder)
        return os.path.join(self._root_text, relative)

    @contextmanager
    def open_text(self, path: str) -> Iterator[TextIO]:
        with open(self._target(path), "w", encoding="utf-8", newline="\n") as stream:
            yield stream

    def write_bytes(self, path: str, data: bytes) -> None:
        with open(self._target(path), "wb") as stream:
            stream.write(data)


class MemoryDestination:
    """Files kept in a dictionary ``files[path] -> str | bytes`` (tests, small outputs)."""

    def __init__(self) -> None:
        self.files: dict[str, str | bytes] = {}

    @contextmanager
    def open_text(self, path: str) -> Iterator[TextIO]:
        key = checked_relative_path(path)
        buffer = io.StringIO()
        yield buffer
        self.files[key] = buffer.getvalue()

    def write_bytes(self, path: str, data: bytes) -> None:
        self.files[checked_relative_path(path)] = bytes(data)

    def text(self, path: str) -> str:
        """The text file at ``path`` (``KeyError`` when absent, ``TypeError`` when it is binary)."""
        value = self.files[path]
        if not isinstance(value, str):
            raise TypeError(f"{path} is a binary file")
        return value
