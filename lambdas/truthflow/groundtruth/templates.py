"""Worker task templates (Liquid HTML) for bounding boxes and single-label image classification, and the
``taskInput`` our PRE Lambda builds for them.

Elements and attributes follow the AWS element reference pages ``sms-ui-template-crowd-bounding-box``
(``name``, ``src``, ``header``, ``labels``, ``initial-value``; regions ``full-instructions`` with a ``header``
attribute and ``short-instructions``) and ``sms-ui-template-crowd-image-classifier`` (``name``, ``src``, ``header``,
``categories``; the same two regions), inside ``<crowd-form>`` with the ``crowd-html-elements.js`` script. The
``name`` attributes are the built-in ones (``boundingBox``, ``crowd-image-classifier``), so worker answers have the
same top-level key as a built-in job's.

``taskInput`` fields (:data:`TASK_INPUT_FIELDS`), read in the template as ``{{ task.input.<field> }}``:

``taskObject``
    the image's S3 URI; the template passes it through ``grant_read_access`` (a presigned URL for the worker).
``labels``
    the label list, rendered with ``to_json | escape`` into ``labels`` / ``categories``.
``header``
    the question shown above the image.
``initialValue`` (bounding box only, optional)
    pre-drawn boxes ``[{"label", "left", "top", "width", "height"}]`` (pixels), e.g. model predictions.

The labels and header given to the render functions are also baked in as fallbacks, and ``src`` falls back to
``task.input.source-ref``: since 2024-09 the PRE Lambda is optional, and without one ``task.input`` is the manifest
line itself. Text given to the render functions is HTML-escaped, and ``{``/``}`` become character references so that
Liquid never sees a ``{{`` or ``{%`` in user text.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from truthflow.groundtruth.worker_answers import PixelBox

CROWD_ELEMENTS_SCRIPT = "https://assets.crowd.aws/crowd-html-elements.js"
BOUNDING_BOX_ELEMENT_NAME = "boundingBox"
IMAGE_CLASSIFIER_ELEMENT_NAME = "crowd-image-classifier"
TASK_INPUT_FIELDS = ("taskObject", "labels", "header", "initialValue")


def build_task_input(
    source_ref: str,
    *,
    labels: Sequence[str],
    header: str | None,
    initial_boxes: Sequence[PixelBox] | None = None,
) -> dict[str, Any]:
    """The ``taskInput`` for one image (see the module docstring for each field); without a ``header`` the template
    shows the one it was rendered with."""
    task_input: dict[str, Any] = {"taskObject": source_ref, "labels": list(labels)}
    if header is not None:
        task_input["header"] = header
    if initial_boxes:
        task_input["initialValue"] = [
            {"label": box.label, "left": box.left, "top": box.top, "width": box.width, "height": box.height}
            for box in initial_boxes
        ]
    return task_input


def render_bounding_box_template(
    *,
    labels: Sequence[str],
    header: str,
    short_instructions: str,
    full_instructions: str,
    full_instructions_header: str = "Bounding box instructions",
) -> str:
    """A ``crowd-bounding-box`` template. Instructions are plain text (blank lines separate paragraphs)."""
    return _render(
        element="crowd-bounding-box",
        name=BOUNDING_BOX_ELEMENT_NAME,
        labels_attribute="labels",
        labels=labels,
        header=header,
        short_instructions=short_instructions,
        full_instructions=full_instructions,
        full_instructions_header=full_instructions_header,
        extra_attributes=(
            '    {% if task.input.initialValue %}initial-value="{{ task.input.initialValue | to_json | escape }}"'
            "{% endif %}\n"
        ),
    )


def render_image_classification_template(
    *,
    labels: Sequence[str],
    header: str,
    short_instructions: str,
    full_instructions: str,
    full_instructions_header: str = "Classification instructions",
) -> str:
    """A single-label ``crowd-image-classifier`` template. Instructions are plain text."""
    return _render(
        element="crowd-image-classifier",
        name=IMAGE_CLASSIFIER_ELEMENT_NAME,
        labels_attribute="categories",
        labels=labels,
        header=header,
        short_instructions=short_instructions,
        full_instructions=full_instructions,
        full_instructions_header=full_instructions_header,
        extra_attributes="",
    )


def _render(
    *,
    element: str,
    name: str,
    labels_attribute: str,
    labels: Sequence[str],
    header: str,
    short_instructions: str,
    full_instructions: str,
    full_instructions_header: str,
    extra_attributes: str,
) -> str:
    if isinstance(labels, str) or not labels:
        raise ValueError("labels must be a non-empty list of strings")
    baked_labels = _attribute_text(json.dumps(list(labels), ensure_ascii=False))
    return (
        f'<script src="{CROWD_ELEMENTS_SCRIPT}"></script>\n'
        "<crowd-form>\n"
        f"  <{element}\n"
        f'    name="{name}"\n'
        '    src="{% if task.input.taskObject %}{{ task.input.taskObject | grant_read_access }}'
        '{% else %}{{ task.input.source-ref | grant_read_access }}{% endif %}"\n'
        f'    header="{{% if task.input.header %}}{{{{ task.input.header | escape }}}}'
        f'{{% else %}}{_attribute_text(header)}{{% endif %}}"\n'
        f'    {labels_attribute}="{{% if task.input.labels %}}{{{{ task.input.labels | to_json | escape }}}}'
        f'{{% else %}}{baked_labels}{{% endif %}}"\n'
        f"{extra_attributes}"
        "  >\n"
        f'    <full-instructions header="{_attribute_text(full_instructions_header)}">\n'
        f"{_paragraphs(full_instructions)}"
        "    </full-instructions>\n"
        "    <short-instructions>\n"
        f"{_paragraphs(short_instructions)}"
        "    </short-instructions>\n"
        f"  </{element}>\n"
        "</crowd-form>\n"
    )


def _attribute_text(text: str) -> str:
    """HTML-escape (quotes included) and hide Liquid's braces behind character references."""
    return html.escape(text, quote=True).replace("{", "&#123;").replace("}", "&#125;")


def _paragraphs(text: str) -> str:
    blocks = [" ".join(block.split()) for block in text.strip().split("\n\n")]
    return "".join(f"      <p>{_attribute_text(block)}</p>\n" for block in blocks if block)
