"""Job-file errors: :class:`JobFileError` and the wording of pydantic's findings in the words of a job file."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence

from pydantic import BaseModel
from pydantic_core import ErrorDetails

_MAX_SHOWN_INPUT_CHARS = 80
_UNESCAPED_BREAKS = re.compile("[\x85\u2028\u2029]")


class JobFileError(ValueError):
    """A job file that cannot be used. ``str(error)`` is one line per problem, each starting with the file name;
    :attr:`problems` holds ``(field, message)`` pairs (field ``""`` for the file as a whole)."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(
            "\n".join(
                f"{source}: {field}: {message}" if field else f"{source}: {message}" for field, message in self.problems
            )
        )


def describe(detail: ErrorDetails, model: type[BaseModel]) -> tuple[str, str]:
    """``(field path, message)`` for one pydantic error, in the words of a job file rather than of pydantic."""
    location = detail["loc"]
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location).lstrip(".")
    kind = detail["type"]
    if kind == "extra_forbidden":
        known = _known_fields(model, location[:-1])
        close = difflib.get_close_matches(str(location[-1]), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known fields: {', '.join(known)})"
        return field, "unknown field" + hint
    if kind == "missing":
        return field, "is required"
    message = detail["msg"].removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    if kind == "value_error" and isinstance(detail["input"], list | dict):
        return field, message  # our own checks of a list or section say which entry is wrong
    return field, f"{message} (got {_shown(detail['input'])})"


def json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "a number"


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False) if _is_json(value) else repr(value)
    # Keep the message one line a problem: JSON leaves these line breaks unescaped.
    text = _UNESCAPED_BREAKS.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
    return text if len(text) <= _MAX_SHOWN_INPUT_CHARS else text[: _MAX_SHOWN_INPUT_CHARS - 3] + "..."


def _is_json(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _known_fields(model: type[BaseModel], location: Sequence[int | str]) -> list[str]:
    """The field names of the section at ``location`` (for "did you mean" hints)."""
    for part in location:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        candidates = getattr(annotation, "__args__", (annotation,))
        sections = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not sections:
            return []
        model = sections[0]
    return list(model.model_fields)
