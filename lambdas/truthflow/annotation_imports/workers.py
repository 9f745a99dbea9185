"""Who answered: worker ids that stay apart across files and tools.

A tool's user ids are local to one tool instance (every fresh Label Studio calls its first user ``1``), so a worker
is the file plus the id inside it, written ``<file>#<id>``. An e-mail address is global: the same address in two
files (say a Label Studio export and a CVAT job export) is the same person. A file whose tool records no user (a
CVAT task export, a COCO file) is one worker, named by the file.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def is_email(text: str) -> bool:
    return _EMAIL.fullmatch(text) is not None


def worker_id(file_name: str, local_id: str) -> str:
    """``local_id`` itself when it is an e-mail address (lower-cased: addresses compare without case), else
    ``<file>#<local_id>``."""
    text = local_id.strip()
    if is_email(text):
        return text.lower()
    return f"{file_name}#{text}"
