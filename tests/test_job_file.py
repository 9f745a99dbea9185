"""The job file (``jobs/<id>/job.json``): defaults, documented limits, and errors that name the file and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from truthflow.aws.s3 import decode_event_key
from truthflow.job_file import JobFile, JobFileError, job_file_key, job_id_from_key, parse_job_file
from truthflow.job_scope import JobScope

EVENTS = Path(__file__).parent / "events"
SOURCE = "jobs/pens-v1/job.json"


def parse(data: Any, source: str = SOURCE) -> JobFile:
    return parse_job_file(json.dumps(data), source=source)


def problems(data: Any) -> list[str]:
    """Every line of the error message, checked to start with the file name."""
    with pytest.raises(JobFileError) as caught:
        parse(data)
    lines = str(caught.value).splitlines()
    assert lines and all(line.startswith(f"{SOURCE}: ") for line in lines)
    assert len(lines) == len(caught.value.problems)
    return lines


def minimal(**fields: Any) -> dict[str, Any]:
    return {"task_type": "bounding-box", "labels": ["pen", "pencil"], **fields}


# --- valid files ------------------------------------------------------------------------------------------------------


def test_documented_bounding_box_example_parses_as_written():
    text = (EVENTS / "job_bounding_box.json").read_text()
    job = parse_job_file(text, source=SOURCE)
    assert job.task_type == "bounding-box"
    assert job.labels == ["pen", "pencil", "marker"]
    assert job.exclusion.min_box_width == 4.0
    assert job.training.hyperparameters == {
        "epochs": 30,
        "mini_batch_size": 16,
        "learning_rate": 0.001,
        "base_network": "resnet-50",
    }
    assert job.start_at == "label"
    # Every field of the example is given explicitly, so the example documents the whole schema. The ways to bring
    # labels instead of labeling are documented with their own examples; gold questions are for classification jobs
    # and need a gold file (tested with their own files).
    assert set(json.loads(text)) == set(JobFile.model_fields) - {"existing_annotations", "annotations", "gold_labels"}


def test_documented_classification_example_parses_as_written():
    job = parse_job_file((EVENTS / "job_image_classification.json").read_bytes(), source=SOURCE)
    assert job.task_type == "image-classification"
    assert job.workers_per_object == 5
    assert job.quality_gate.metric == "validation:accuracy"
    assert job.quality_gate.threshold == 0.85
    assert job.split.validation_fraction == 0.25 and job.split.seed == 7
    assert job.exclusion.min_confidence == 0.6
    assert job.exclusion.min_box_width == 1.0  # unspecified keys of a section keep their defaults
    assert job.training.instance_type == "ml.g5.xlarge"


def test_minimal_bounding_box_file_gets_every_default():
    job = parse(minimal())
    assert job.workers_per_object == 3
    assert job.task_time_limit_seconds == 300
    assert job.task_availability_lifetime_seconds == 864_000
    assert job.max_concurrent_task_count == 1_000
    assert job.automated_labeling is None
    assert (job.split.validation_fraction, job.split.seed) == (0.2, 0)
    assert (job.exclusion.min_box_width, job.exclusion.min_box_height, job.exclusion.min_confidence) == (1, 1, 0)
    assert job.training.model_dump() == {
        "instance_type": "ml.p3.2xlarge",
        "instance_count": 1,
        "max_runtime_seconds": 86_400,
        "hyperparameters": {},
    }
    assert (job.quality_gate.metric, job.quality_gate.threshold) == ("validation:mAP", 0.5)
    assert job.endpoint.model_dump() == {"instance_type": "ml.m5.xlarge", "initial_instance_count": 1}
    assert job.existing_annotations is None
    assert job.task_title and job.task_description
    assert job.instructions.header and job.instructions.short and job.instructions.full


def test_classification_defaults_differ_from_bounding_box_defaults():
    boxes = parse(minimal())
    classes = parse({"task_type": "image-classification", "labels": ["cat", "dog"]})
    assert (classes.quality_gate.metric, classes.quality_gate.threshold) == ("validation:accuracy", 0.7)
    assert classes.task_title != boxes.task_title
    assert classes.instructions.header != boxes.instructions.header


def test_a_section_given_in_part_keeps_the_task_type_defaults_of_the_rest():
    job = parse(minimal(quality_gate={"threshold": 0.65}, instructions={"header": "Box every pen."}))
    assert (job.quality_gate.metric, job.quality_gate.threshold) == ("validation:mAP", 0.65)
    assert job.instructions.header == "Box every pen."
    assert job.instructions.full == parse(minimal()).instructions.full


def test_one_label_is_enough_for_bounding_boxes():
    # Ground Truth's documented minimum: 1 label for boxes (a one-class detector), 2 for classification.
    assert parse({"task_type": "bounding-box", "labels": ["pen"]}).labels == ["pen"]


def test_byte_order_mark_and_bytes_are_accepted():
    text = "\ufeff" + json.dumps(minimal())
    assert parse_job_file(text, source=SOURCE).labels == ["pen", "pencil"]
    assert parse_job_file(text.encode("utf-8"), source=SOURCE).labels == ["pen", "pencil"]


@pytest.mark.parametrize(
    ("existing", "start_at", "uri"),
    [
        (
            {"output_manifest": "s3://other-bucket/gt/output.manifest"},
            "consolidate",
            "s3://other-bucket/gt/output.manifest",
        ),
        ({"consolidated_manifest": "s3://b/jobs/pens-v1/dataset/consolidated.manifest"}, "build", None),
    ],
)
def test_existing_annotations_choose_where_the_run_starts(existing, start_at, uri):
    job = parse(minimal(existing_annotations=existing))
    assert job.start_at == start_at
    assert job.existing_annotations is not None
    assert job.existing_annotations.manifest_uri == (uri or existing["consolidated_manifest"])


def test_tool_exports_start_the_run_at_import_and_resolve_under_the_job_folder():
    section = {"format": "label-studio", "files": ["annotations/project-3.json", "s3://shared/exports/job_7.xml"]}
    job = parse_job_file(
        json.dumps(minimal(annotations=section)), source=SOURCE, scope=JobScope("b", "pens-v1", frozenset({"shared"}))
    )
    assert job.start_at == "import" and job.annotations is not None and job.annotations.format == "label-studio"
    assert job.annotations.file_uris("b", "pens-v1") == [
        "s3://b/jobs/pens-v1/annotations/project-3.json",
        "s3://shared/exports/job_7.xml",
    ]
    assert parse(minimal(annotations={"files": ["a.xml"]})).annotations.format is None  # told from each file


@pytest.mark.parametrize(
    ("section", "extra", "expected"),
    [
        ({"files": []}, {}, "annotations.files: list should have at least 1 item"),
        ({"files": "a.json"}, {}, "annotations.files: input should be a valid list"),
        ({"format": "yolo", "files": ["a"]}, {}, "annotations.format: input should be 'label-studio', 'cvat', 'coco'"),
        ({"files": ["../other-job/a.json"]}, {}, "annotations.files[0]: must be a path relative to the job's folder"),
        ({"files": ["/annotations/a.json"]}, {}, "annotations.files[0]: must be a path relative to the job's folder"),
        ({"files": ["a\\b.json"]}, {}, "annotations.files[0]: must not contain control characters or backslashes"),
        ({"files": ["https://ls.example.com/export"]}, {}, "annotations.files[0]: must be a path under the job's"),
        (
            {"files": ["s3://b/jobs/other-job/a.json"]},
            {},
            "annotations.files[0]: 's3://b/jobs/other-job/a.json' is outside this job",
        ),
        ({"files": ["a.json", "a.json"]}, {}, "annotations.files: files[1] 'a.json' is listed twice"),
        ({"file": ["a.json"]}, {}, "annotations.file: unknown field (did you mean 'files'?)"),
        (
            {"files": ["a.json"]},
            {"existing_annotations": {"output_manifest": "s3://b/jobs/pens-v1/o.manifest"}},
            "annotations: give either 'annotations' (several people's answers, consolidated by the run) or "
            "'existing_annotations'",
        ),
        ({"files": ["a.json"]}, {"automated_labeling": True}, "annotations: a job that brings its annotations labels"),
    ],
)
def test_bad_annotations_sections(section, extra, expected):
    with pytest.raises(JobFileError) as caught:
        parse_job_file(json.dumps(minimal(annotations=section, **extra)), source=SOURCE, scope=JobScope("b", "pens-v1"))
    assert any(line.startswith(f"{SOURCE}: {expected}") for line in str(caught.value).splitlines()), caught.value


def test_model_is_immutable():
    job = parse(minimal())
    with pytest.raises(ValueError):
        job.workers_per_object = 5  # type: ignore[misc]


# --- documented limits ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("workers_per_object", [1, 9], [0, 10]),
        ("task_time_limit_seconds", [30, 28_800], [29, 28_801]),
        ("task_availability_lifetime_seconds", [60, 2_592_000], [59, 2_592_001]),
        ("max_concurrent_task_count", [1, 1_000], [0, 1_001, 5_000]),
        (
            "task_title",
            ["T", "x" * 128, "Stifte zählen", "two\nlines", "\ue000\ufffd"],
            ["", "   ", "x" * 129, "bell\x07", "Pens 🖊", "math \U0001d499", "\ufffe"],
        ),
        (
            "task_description",
            ["D", "x" * 255, "Zähle die Stifte"],
            ["", "x" * 256, "two\nlines", "line\u2028separator", "next\u0085line"],
        ),
    ],
)
def test_labeling_settings_stay_within_the_api_limits(field, good, bad):
    for value in good:
        assert getattr(parse(minimal(**{field: value})), field) == value
    for value in bad:
        lines = problems(minimal(**{field: value}))
        assert len(lines) == 1 and lines[0].startswith(f"{SOURCE}: {field}: ")


@pytest.mark.parametrize(
    ("section", "field", "good", "bad"),
    [
        ("split", "validation_fraction", [0.01, 0.99], [0, 1, -0.1, 1.5]),
        ("split", "seed", [0, 12345], [-1, 1.5]),
        ("exclusion", "min_box_width", [0, 2.5], [-1]),
        ("exclusion", "min_confidence", [0, 1, 0.5], [-0.01, 1.01]),
        (
            "training",
            "instance_type",
            ["ml.p3.2xlarge", "ml.p2.xlarge", "ml.g4dn.xlarge", "ml.g5.12xlarge"],
            ["ml.m5.xlarge", "p3.2xlarge", "ml.p4d.24xlarge", "ml.p5.48xlarge", "ml.g6.xlarge", "ml.p3dn.24xlarge"],
        ),
        ("training", "instance_count", [1, 4], [0]),
        ("training", "max_runtime_seconds", [1, 2_419_200], [0, 2_419_201]),
        ("quality_gate", "threshold", [0, 1, 0.42], [-0.1, 1.1]),
        ("quality_gate", "metric", ["validation:mAP"], [""]),
        (
            "endpoint",
            "instance_type",
            ["ml.m5.xlarge", "ml.c5.large", "ml.g4dn.xlarge"],
            ["m5.xlarge", "ml.m5", "ML.M5.XLARGE"],
        ),
        ("endpoint", "initial_instance_count", [1, 3], [0]),
    ],
)
def test_section_settings_stay_within_their_limits(section, field, good, bad):
    for value in good:
        assert getattr(getattr(parse(minimal(**{section: {field: value}})), section), field) == value
    for value in bad:
        lines = problems(minimal(**{section: {field: value}}))
        assert len(lines) == 1 and lines[0].startswith(f"{SOURCE}: {section}.{field}: ")


def test_hyperparameters_are_strings_or_numbers_within_the_api_limits():
    assert parse(minimal(training={"hyperparameters": {"epochs": 3, "lr": 0.1, "net": "resnet-50"}}))
    lines = problems(
        minimal(training={"hyperparameters": {"flag": True, "list": [1], "nothing": None, "long": "x" * 2_501}})
    )
    assert sorted(line.split(": ")[1] for line in lines) == [
        "training.hyperparameters.flag",
        "training.hyperparameters.list",
        "training.hyperparameters.long",
        "training.hyperparameters.nothing",
    ]
    assert problems(minimal(training={"hyperparameters": {f"h{i}": i for i in range(101)}})) == [
        f"{SOURCE}: training.hyperparameters: at most 100 hyperparameters (got 101)"
    ]


# --- errors: one class each, with the file name and the field -----------------------------------------------------


def test_bad_workers_per_object_names_file_field_limits_and_value():
    assert problems(minimal(workers_per_object=12)) == [
        "jobs/pens-v1/job.json: workers_per_object: must be between 1 and 9 (got 12)"
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (minimal(worker_per_object=3), "worker_per_object: unknown field (did you mean 'workers_per_object'?)"),
        (minimal(split={"sed": 1}), "split.sed: unknown field (did you mean 'seed'?)"),
        (minimal(colour="red"), "colour: unknown field (known fields: task_type, labels, workers_per_object"),
    ],
)
def test_unknown_fields_are_errors_with_a_hint(data, expected):
    lines = problems(data)
    assert len(lines) == 1 and lines[0].startswith(f"{SOURCE}: {expected}")


def test_one_label_for_classification_is_an_error():
    [line] = problems({"task_type": "image-classification", "labels": ["pen"]})
    assert line.startswith(f"{SOURCE}: labels: ")
    assert "at least 2" in line


@pytest.mark.parametrize("labels", [["pen", "pen"], ["pen", "pencil", "p en"]])
def test_duplicate_labels_are_an_error(labels):
    [line] = problems(minimal(labels=labels))
    assert line.startswith(f"{SOURCE}: labels: ") and "unique" in line


@pytest.mark.parametrize(
    "labels", [[], "pen", ["pen", ""], ["pen", " pencil"], ["pen", 3], [f"l{i}" for i in range(51)]]
)
def test_other_bad_label_lists_are_errors(labels):
    lines = problems(minimal(labels=labels))
    assert all(": labels" in line for line in lines)


@pytest.mark.parametrize("field", ["output_manifest", "consolidated_manifest"])
def test_https_url_in_existing_annotations_is_rejected_with_the_reason(field):
    url = "https://truthflow-data.s3.amazonaws.com/old/output.manifest"
    [line] = problems(minimal(existing_annotations={field: url}))
    assert line == (
        f"{SOURCE}: existing_annotations.{field}: must be an s3:// URI (s3://<bucket>/<key>), not an https URL "
        f'(got "{url}")'
    )


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ({}, "existing_annotations: give exactly one of"),
        ({"output_manifest": "s3://b/o.manifest", "consolidated_manifest": "s3://b/c.manifest"}, "exactly one"),
        ({"output_manifest": "s3://bucket-only"}, "needs a bucket and an object key"),
        ({"output_manifest": "/local/output.manifest"}, "is not an s3:// URI"),
        ({"manifest": "s3://b/o.manifest"}, "existing_annotations.manifest: unknown field"),
    ],
)
def test_bad_existing_annotations(existing, expected):
    lines = problems(minimal(existing_annotations=existing))
    assert any(expected in line for line in lines)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"task_type": "bounding-box", "labels": ["pen"],}', "is not valid JSON: "),
        ('{"task_type": "bounding-box"\n "labels": ["pen"]}', "(line 2, column 2)"),
        ("", "is not valid JSON"),
        ('["pen"]', "must be a JSON object {...}, not an array"),
        ('"pen"', "not a string"),
        ("null", "not null"),
        ("[" * 100_000 + "]" * 100_000, "is nested too deeply to read"),
        ('{"task_type": "bounding-box", "labels": ["pen\\ud800"]}', "holds a lone surrogate escape"),
        ('{"task_type": "bounding-box", "labels": ["pen"], "task_title": "\\udfff"}', "holds a lone surrogate escape"),
    ],
)
def test_malformed_json_names_the_file(text, expected):
    with pytest.raises(JobFileError) as caught:
        parse_job_file(text, source=SOURCE)
    message = str(caught.value)
    assert message.startswith(f"{SOURCE}: ") and expected in message
    assert len(message.splitlines()) == 1


def test_a_surrogate_pair_is_unicode_and_reads():
    job = parse_job_file('{"task_type": "bounding-box", "labels": ["pen \\ud83d\\udd8a"]}', source=SOURCE)
    assert job.labels == ["pen \U0001f58a"]


def test_text_that_is_not_utf8_names_the_file():
    with pytest.raises(JobFileError, match=r"^jobs/pens-v1/job.json: is not UTF-8 text"):
        parse_job_file(b'{"labels": ["\xff"]}', source=SOURCE)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"workers_per_object": "3"}, 'workers_per_object: input should be a valid integer (got "3")'),
        ({"workers_per_object": 3.0}, "workers_per_object: input should be a valid integer (got 3.0)"),
        ({"automated_labeling": "yes"}, "automated_labeling: must be true, false or a section such as"),
        ({"automated_labeling": {"target": 0}}, "automated_labeling.target: must be greater than 0 and at most 1"),
        ({"automated_labeling": {"model": "a_b"}}, "automated_labeling.model: must be a SageMaker model name"),
        (
            {"automated_labeling": {"instance_type": "ml.t3.medium"}},
            "automated_labeling.instance_type: the built-in algorithms' batch transform runs on the families",
        ),
        ({"task_type": "bounding-boxes"}, "task_type: input should be 'bounding-box' or 'image-classification'"),
        ({"split": 0.2}, "split: input should be a valid dictionary"),
    ],
)
def test_wrong_types_are_named_not_coerced(fields, expected):
    lines = problems(minimal(**fields))
    assert any(line.startswith(f"{SOURCE}: {expected}") for line in lines)


def test_every_problem_is_reported_at_once_one_per_line():
    lines = problems(
        {
            "task_type": "image-classification",
            "labels": ["pen"],
            "workers_per_object": 0,
            "colour": "red",
            "existing_annotations": {"output_manifest": "https://b.s3.amazonaws.com/o.manifest"},
        }
    )
    fields = sorted(line.split(": ")[1] for line in lines)
    assert fields == ["colour", "existing_annotations.output_manifest", "labels", "workers_per_object"]


def test_missing_required_fields_are_named():
    assert problems({}) == [f"{SOURCE}: task_type: is required", f"{SOURCE}: labels: is required"]


def test_job_file_error_is_a_value_error_with_structured_problems():
    with pytest.raises(ValueError) as caught:
        parse(minimal(workers_per_object=12))
    assert isinstance(caught.value, JobFileError)
    assert caught.value.source == SOURCE
    assert caught.value.problems == [("workers_per_object", "must be between 1 and 9 (got 12)")]


# --- job ids ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("job_id", ["pens-v1", "a", "a--b", "x" * 40, "2024-06-01"])
def test_job_id_from_key_accepts_ground_truth_style_names(job_id):
    assert job_id_from_key(f"jobs/{job_id}/job.json") == job_id
    assert job_file_key(job_id) == f"jobs/{job_id}/job.json"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("jobs/pens_v1/job.json", "may contain only lower-case letters, digits and hyphens"),
        ("jobs/Pens-v1/job.json", "has upper-case letters; use 'pens-v1'"),
        ("jobs/-pens/job.json", "must start and end with a letter or digit"),
        ("jobs/pens-/job.json", "must start and end with a letter or digit"),
        ("jobs/pens v1/job.json", "may contain only lower-case letters"),
        (f"jobs/{'x' * 41}/job.json", "is 41 characters; at most 40"),
        ("jobs//job.json", "must be a non-empty string"),
        ("jobs/pens-v1/images/job.json", "is not a job file"),
        ("jobs/pens-v1/job.yaml", "is not a job file"),
        ("other/pens-v1/job.json", "is not a job file"),
        ("jobs/pens-v1", "is not a job file"),
    ],
)
def test_job_id_from_key_rejects_other_keys_and_bad_ids(key, expected):
    with pytest.raises(ValueError, match="job") as caught:
        job_id_from_key(key)
    assert expected in str(caught.value)


def test_job_id_from_url_encoded_event_key():
    assert job_id_from_key("jobs/pens-v1/job.json", decode=decode_event_key) == "pens-v1"
    with pytest.raises(ValueError, match=r"'pens v1' may contain only lower-case letters"):
        job_id_from_key("jobs/pens+v1/job.json", decode=decode_event_key)


# --- rules a later step (or the API) enforces, checked in the job file ------------------------------------------------


def test_image_classification_trains_on_one_instance_and_object_detection_may_use_several():
    lines = problems({"task_type": "image-classification", "labels": ["a", "b"], "training": {"instance_count": 2}})
    assert lines == [
        f"{SOURCE}: training.instance_count: must be 1: the built-in image-classification algorithm does not support "
        "distributed training in Pipe mode, which truthflow trains in (a multi-GPU instance such as 'ml.p3.8xlarge' "
        "uses all its GPUs) (got 2)"
    ]
    assert parse(minimal(training={"instance_count": 2})).training.instance_count == 2


def test_hyperparameters_may_not_crowd_the_runs_state():
    crowded = {f"h{i:02d}": "x" * 400 for i in range(81)}  # 81 x 403 characters > 32,000
    [line] = problems(minimal(training={"hyperparameters": crowded}))
    assert "training.hyperparameters: hyperparameters take 32,643 characters" in line
    assert "Step Functions limits to 256 KB" in line
    assert parse(minimal(training={"hyperparameters": dict(list(crowded.items())[:79])}))


@pytest.mark.parametrize(
    ("task_type", "count", "allowed"),
    [("bounding-box", 50, True), ("bounding-box", 51, False), ("image-classification", 500, True),
     ("image-classification", 501, False)],
)  # fmt: skip
def test_label_count_is_capped_per_task_type(task_type, count, allowed):
    data = {"task_type": task_type, "labels": [f"c{i}" for i in range(count)]}
    if allowed:
        assert len(parse(data).labels) == count
    else:
        [line] = problems(data)
        assert line.startswith(f"{SOURCE}: labels: ") and "at most" in line


@pytest.mark.parametrize("label", ["pen\tcil", "pen\ncil", "pen\rcil", "pen\x00cil", "pen\u2028cil", "pen\x85cil"])
def test_labels_may_not_hold_tabs_line_breaks_or_control_characters(label):
    [line] = problems(minimal(labels=["pen", label]))
    assert line.startswith(f"{SOURCE}: labels: label 2 ") and "tabs, line breaks or other control characters" in line


def test_s3_addresses_must_lie_within_the_jobs_scope():
    scope = JobScope("data", "pens-v1", frozenset({"shared"}))
    inside = {"output_manifest": "s3://data/jobs/pens-v1/imports/output.manifest"}
    allowed = {"consolidated_manifest": "s3://shared/anything/consolidated.manifest"}
    for existing in (inside, allowed):
        assert parse_job_file(json.dumps(minimal(existing_annotations=existing)), source=SOURCE, scope=scope)
    for outside in ("s3://data/jobs/other/output.manifest", "s3://data/jobs/pens-v10/x", "s3://other/x.manifest"):
        data = json.dumps(minimal(existing_annotations={"output_manifest": outside}))
        with pytest.raises(JobFileError) as caught:
            parse_job_file(data, source=SOURCE, scope=scope)
        assert caught.value.problems[0][0] == "existing_annotations.output_manifest"
        assert "is outside this job" in caught.value.problems[0][1]


def test_tool_exports_and_gold_questions_are_refused_together():
    lines = problems(
        {"task_type": "image-classification", "labels": ["cat", "dog"], "gold_labels": "gold.csv",
         "annotations": {"format": "label-studio", "files": ["annotations/export.json"]}}
    )  # fmt: skip
    assert any("annotations: cannot be combined with gold_labels" in line for line in lines), lines
