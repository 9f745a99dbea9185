"""The files a labeling job is created from: input manifest, label-category config, worker task templates."""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from truthflow.groundtruth import (
    TASK_INPUT_FIELDS,
    PixelBox,
    build_input_manifest,
    build_label_category_config,
    build_task_input,
    input_manifest_line,
    parse_label_category_config,
    render_bounding_box_template,
    render_image_classification_template,
    validate_labels,
    write_input_manifest,
)

EVENTS = Path(__file__).parent / "events"


# --- input manifest -------------------------------------------------------------------------------------------------


def test_input_manifest_lines_are_source_ref_objects():
    lines = list(build_input_manifest(["s3://bucket/jobs/pens/images/a 1.jpg", "s3://bucket/b.png"]))
    assert lines == [
        '{"source-ref":"s3://bucket/jobs/pens/images/a 1.jpg"}\n',
        '{"source-ref":"s3://bucket/b.png"}\n',
    ]


def test_input_manifest_attributes_and_writer():
    stream = io.StringIO()
    written = write_input_manifest(
        iter(["s3://b/x.jpg", "s3://b/y.jpg"]), stream.write, attributes=lambda uri: {"id": uri[-5]}
    )
    assert written == 2
    assert [json.loads(line) for line in stream.getvalue().splitlines()] == [
        {"source-ref": "s3://b/x.jpg", "id": "x"},
        {"source-ref": "s3://b/y.jpg", "id": "y"},
    ]


@pytest.mark.parametrize(
    ("source_ref", "attributes", "message"),
    [
        ("https://b.s3.amazonaws.com/x.jpg", None, "is not an s3:// URI"),
        ("s3://bucket-only", None, "needs a bucket and an object key"),
        ("s3://b/x.jpg", {"$secret": 1}, "begins with '$'"),
        ("s3://b/x.jpg", {"source-ref": "s3://b/y.jpg"}, "would overwrite source-ref"),
        ("s3://b/x.jpg", {"note": "n" * 20_001}, "the limit is 20,000"),
        ("s3://b/x.jpg", {f"k{i}": "n" * 19_000 for i in range(6)}, "the limit is 100,000"),
    ],
)
def test_input_manifest_limits(source_ref, attributes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        input_manifest_line(source_ref, attributes)


def test_input_manifest_refuses_more_objects_than_a_job_takes():
    with pytest.raises(ValueError, match="more than 2 data objects"):
        list(build_input_manifest((f"s3://b/{i}.jpg" for i in range(3)), max_objects=2))


# --- label-category config ------------------------------------------------------------------------------------------


def test_label_category_config_has_the_documented_shape():
    config = build_label_category_config(["pen", "pencil"], task_type="image-classification")
    assert config == {"document-version": "2018-11-28", "labels": [{"label": "pen"}, {"label": "pencil"}]}
    assert parse_label_category_config(json.dumps(config)).label_names == ["pen", "pencil"]


def test_label_category_config_with_instructions():
    config = build_label_category_config(
        ["pen"], task_type="bounding-box", short_instruction="<p>Box pens</p>", full_instruction="<p>All pens</p>"
    )
    assert config["instructions"] == {"shortInstruction": "<p>Box pens</p>", "fullInstruction": "<p>All pens</p>"}
    parsed = parse_label_category_config(config)
    assert parsed.instructions is not None and parsed.instructions.short_instruction == "<p>Box pens</p>"


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("label_category_config_api.json", ["label_1", "label_2", "label_n"]),
        ("label_category_config_real.json", ["reject", "merchantName"]),
    ],
)
def test_documented_and_real_label_files_parse_in_order(name, labels):
    config = parse_label_category_config((EVENTS / name).read_text(encoding="utf-8"))
    assert config.label_names == labels


def test_label_file_without_labels_names_the_field():
    with pytest.raises(ValidationError, match="labels"):
        parse_label_category_config('{"document-version": "2018-11-28"}')


@pytest.mark.parametrize(
    ("labels", "task_type", "message"),
    [
        (["pen"], "image-classification", "needs at least 2 label(s)"),
        ([], "bounding-box", "needs at least 1 label(s)"),
        (["pen", "pen"], "bounding-box", "label 2 'pen' repeats 'pen'"),
        (["red car", "redcar"], "bounding-box", "repeats 'red car'"),
        (["pen", " pencil"], "bounding-box", "leading or trailing whitespace"),
        (["pen", ""], "bounding-box", "label 2: expected a non-empty string"),
        (["pen", "x" * 257], "bounding-box", "257 characters; the limit is 256"),
        ([f"c{i}" for i in range(51)], "bounding-box", "at most 50 labels"),
        ("pen", "bounding-box", "not one string"),
    ],
)
def test_label_validation(labels, task_type, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_labels(labels, task_type=task_type)


def test_label_limits_that_are_allowed():
    assert validate_labels(["pen"], task_type="bounding-box") == ["pen"]
    assert len(validate_labels([f"c{i}" for i in range(200)], task_type="image-classification")) == 200
    assert validate_labels(["x" * 256, "y"], task_type="image-classification")[0] == "x" * 256


# --- worker templates -----------------------------------------------------------------------------------------------


def test_bounding_box_template_uses_the_documented_element_and_task_input():
    template = render_bounding_box_template(
        labels=["pen", "pencil"],
        header="Draw a box around every pen",
        short_instructions="Box each pen.",
        full_instructions="Tight boxes.\n\nInclude the cap.",
    )
    assert template.startswith('<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>\n<crowd-form>')
    assert "<crowd-bounding-box\n" in template and "</crowd-bounding-box>" in template
    assert 'name="boundingBox"' in template
    assert "{{ task.input.taskObject | grant_read_access }}" in template
    assert "{{ task.input.source-ref | grant_read_access }}" in template
    assert 'labels="{% if task.input.labels %}{{ task.input.labels | to_json | escape }}' in template
    assert "{% else %}[&quot;pen&quot;, &quot;pencil&quot;]{% endif %}" in template
    assert 'initial-value="{{ task.input.initialValue | to_json | escape }}"' in template
    assert '<full-instructions header="Bounding box instructions">' in template
    assert "<p>Tight boxes.</p>\n      <p>Include the cap.</p>" in template
    assert "<short-instructions>\n      <p>Box each pen.</p>" in template
    assert template.count("{% if") == template.count("{% endif %}")


def test_classification_template_uses_categories():
    template = render_image_classification_template(
        labels=["cat", "dog"], header="Which animal?", short_instructions="Pick one.", full_instructions="Pick one."
    )
    assert "<crowd-image-classifier\n" in template and "</crowd-image-classifier>" in template
    assert 'name="crowd-image-classifier"' in template
    assert 'categories="{% if task.input.labels %}{{ task.input.labels | to_json | escape }}' in template
    assert "initial-value" not in template
    assert template.count("{% if") == template.count("{% endif %}")


def test_user_text_cannot_inject_html_or_liquid():
    template = render_bounding_box_template(
        labels=['say "hi"', "{{ x }}"],
        header="<b>{{ task.input.secret }}</b>",
        short_instructions="{% raw %}",
        full_instructions="a < b & c",
    )
    assert "{{ task.input.secret" not in template
    assert "{% raw" not in template
    assert "{{ x }}" not in template
    assert "<b>" not in template
    assert "a &lt; b &amp; c" in template
    assert html.unescape("&#123;&#123; x &#125;&#125;") == "{{ x }}"


def test_template_needs_labels():
    with pytest.raises(ValueError, match="labels"):
        render_image_classification_template(labels=[], header="h", short_instructions="s", full_instructions="f")


def test_task_input_fields_are_the_ones_the_template_reads():
    task_input = build_task_input(
        "s3://b/a.jpg", labels=["pen"], header="Box pens", initial_boxes=[PixelBox("pen", 1, 2, 3, 4)]
    )
    assert task_input == {
        "taskObject": "s3://b/a.jpg",
        "labels": ["pen"],
        "header": "Box pens",
        "initialValue": [{"label": "pen", "left": 1, "top": 2, "width": 3, "height": 4}],
    }
    template = render_bounding_box_template(labels=["pen"], header="h", short_instructions="s", full_instructions="f")
    for field in TASK_INPUT_FIELDS:
        assert f"task.input.{field}" in template
    assert "initialValue" not in build_task_input("s3://b/a.jpg", labels=["pen"], header="h")
