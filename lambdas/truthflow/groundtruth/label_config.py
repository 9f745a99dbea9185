"""The label-category configuration file (``LabelCategoryConfigS3Uri``).

Format (CreateLabelingJob API reference, reference §5.1)::

    {"document-version": "2018-11-28", "labels": [{"label": "label_1"}, {"label": "label_2"}, ...]}

plus, documented for named-entity recognition only, ``"instructions": {"shortInstruction": "<html>",
"fullInstruction": "<html>"}``. Rules (API reference and ``input-data-limits``): image and text classification need at
least two labels, other task types at least one; labels must be unique; a label is at most 256 characters; via the API
a bounding-box job takes at most 50 labels, single-label image classification is unlimited.

The order of ``labels`` is part of the contract: a label's index is the ``class_id`` in the output manifest.
Ground Truth itself does not insist on ``2018-11-28`` when reading (a real job used ``2021-01-01``), so parsing
accepts any ``document-version``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DOCUMENT_VERSION = "2018-11-28"
MAX_LABEL_CHARS = 256
# Ours: the Lambdas that read a job's label-category file (PRE, ACS, the pipeline steps) read it whole, so a file
# larger than this is refused rather than read. A job file's labels and instructions stay far below it.
MAX_LABEL_CATEGORY_CONFIG_BYTES = 1_048_576

TaskType = Literal["bounding-box", "image-classification"]
MIN_LABELS: dict[str, int] = {"bounding-box": 1, "image-classification": 2}
MAX_LABELS_VIA_API: dict[str, int | None] = {"bounding-box": 50, "image-classification": None}

_CONFIG = ConfigDict(extra="allow", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)


class LabelEntry(BaseModel):
    model_config = _CONFIG

    label: str


class Instructions(BaseModel):
    model_config = _CONFIG

    short_instruction: str | None = Field(default=None, alias="shortInstruction")
    full_instruction: str | None = Field(default=None, alias="fullInstruction")


class LabelCategoryConfig(BaseModel):
    """A parsed label-category file (also the console's ``annotation-tool/data.json``)."""

    model_config = _CONFIG

    document_version: str = Field(alias="document-version")
    labels: list[LabelEntry]
    instructions: Instructions | None = None

    @property
    def label_names(self) -> list[str]:
        """The labels in file order: index ``i`` is ``class_id`` ``i`` in the output manifest."""
        return [entry.label for entry in self.labels]


def validate_labels(labels: Sequence[str], *, task_type: TaskType) -> list[str]:
    """Check a label list against the documented rules and return it as a list.

    Besides the documented rules, labels may not have surrounding whitespace or differ only in whitespace: workers'
    answers are matched to labels ignoring whitespace (see ``worker_answers``), so such labels would be ambiguous.
    """
    if isinstance(labels, str):
        raise ValueError("labels must be a list of strings, not one string")
    names = list(labels)
    minimum = MIN_LABELS[task_type]
    if len(names) < minimum:
        raise ValueError(f"a {task_type} job needs at least {minimum} label(s), got {len(names)}: {names}")
    maximum = MAX_LABELS_VIA_API[task_type]
    if maximum is not None and len(names) > maximum:
        raise ValueError(f"a {task_type} job takes at most {maximum} labels via the API, got {len(names)}")
    seen: dict[str, str] = {}
    for position, name in enumerate(names, start=1):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"label {position}: expected a non-empty string, got {name!r}")
        if name != name.strip():
            raise ValueError(f"label {position} {name!r} has leading or trailing whitespace")
        if len(name) > MAX_LABEL_CHARS:
            raise ValueError(f"label {position} is {len(name)} characters; the limit is {MAX_LABEL_CHARS}")
        squeezed = "".join(name.split())
        if squeezed in seen:
            raise ValueError(f"label {position} {name!r} repeats {seen[squeezed]!r} (labels must be unique)")
        seen[squeezed] = name
    return names


def build_label_category_config(
    labels: Sequence[str],
    *,
    task_type: TaskType,
    short_instruction: str | None = None,
    full_instruction: str | None = None,
) -> dict[str, Any]:
    """The label-category file as a dictionary (``json.dumps`` it to upload). The optional instructions are written
    in the documented ``instructions`` object; the built-in image tasks read their instructions from the worker
    template instead, so they are only informative there."""
    config: dict[str, Any] = {
        "document-version": DOCUMENT_VERSION,
        "labels": [{"label": name} for name in validate_labels(labels, task_type=task_type)],
    }
    instructions = {
        key: value
        for key, value in (("shortInstruction", short_instruction), ("fullInstruction", full_instruction))
        if value is not None
    }
    if instructions:
        config["instructions"] = instructions
    return config


def parse_label_category_config(data: str | bytes | Mapping[str, Any]) -> LabelCategoryConfig:
    """Parse a label-category file; a malformed one raises ``pydantic.ValidationError`` naming the field, one larger
    than :data:`MAX_LABEL_CATEGORY_CONFIG_BYTES` a ``ValueError``."""
    if isinstance(data, str | bytes):
        size = len(data.encode("utf-8") if isinstance(data, str) else data)
        if size > MAX_LABEL_CATEGORY_CONFIG_BYTES:
            raise ValueError(
                f"the label-category file is {size:,} bytes; at most {MAX_LABEL_CATEGORY_CONFIG_BYTES:,} are read"
            )
        return LabelCategoryConfig.model_validate(json.loads(data))
    return LabelCategoryConfig.model_validate(dict(data))


def label_category_config_text(config: Mapping[str, Any]) -> str:
    """The file's text as the prepare step writes it; refuses a config larger than the readers accept."""
    text = json.dumps(config, indent=2) + "\n"
    size = len(text.encode("utf-8"))
    if size > MAX_LABEL_CATEGORY_CONFIG_BYTES:
        raise ValueError(
            f"the label-category file would be {size:,} bytes; at most {MAX_LABEL_CATEGORY_CONFIG_BYTES:,}"
        )
    return text
