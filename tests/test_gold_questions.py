"""Gold questions in the job file: the ``gold_labels`` field and the gold file it names, checked as the starter and
"Prepare labeling input" check them (pure core, no AWS)."""

from __future__ import annotations

import json

import pytest

from truthflow.gold_questions import (
    MAX_GOLD_FILE_BYTES,
    GoldFileError,
    ObjectTooLargeError,
    check_gold_images,
    gold_document_for_run,
    load_gold_questions,
    read_gold_questions,
)
from truthflow.groundtruth.gold_labels import gold_labels_for_job, gold_labels_uri, read_gold_labels
from truthflow.job_acceptance import accept_job_file
from truthflow.job_file import JobFileError, parse_job_file
from truthflow.job_scope import JobScope

SOURCE = "jobs/pens-v1/job.json"
GOLD = "jobs/pens-v1/gold.csv"
LABELS = ["pen", "pencil", "eraser"]
SCOPE = JobScope("data", "pens-v1")


def classification_job(**extra) -> dict:
    return {"task_type": "image-classification", "labels": LABELS, "gold_labels": "gold.csv", **extra}


def read(text: str | bytes):
    return read_gold_questions(text.encode() if isinstance(text, str) else text, source=GOLD, labels=LABELS)


# --- the job file's field --------------------------------------------------------------------------------------------


def test_gold_labels_names_a_csv_in_the_job_folder():
    job = parse_job_file(json.dumps(classification_job(gold_labels="truth/gold set.csv")), source=SOURCE)
    assert job.gold_labels == "truth/gold set.csv"
    assert parse_job_file(json.dumps(classification_job(gold_labels=None)), source=SOURCE).gold_labels is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("s3://data/jobs/pens-v1/gold.csv", "not a URI"),
        ("/gold.csv", "relative path"),
        ("../other-job/gold.csv", "no empty, '.' or '..' parts"),
        ("a//gold.csv", "no empty, '.' or '..' parts"),
        ("gold.json", "must name a .csv file"),
        ("GOLD.CSV", "ending in '.csv'"),
        ("manifests/gold.csv", "a folder the run writes"),
        ("dataset/gold.csv", "a folder the run writes"),
        ("gold\n.csv", "without control characters"),
        ("x" * 600 + ".csv", "1 to 512 characters"),
        ("", "1 to 512 characters"),
        (7, "valid string"),
    ],
)
def test_a_gold_labels_path_outside_the_rules_is_refused_naming_the_field(value, message):
    with pytest.raises(JobFileError) as raised:
        parse_job_file(json.dumps(classification_job(gold_labels=value)), source=SOURCE)
    assert str(raised.value).startswith(f"{SOURCE}: gold_labels: ")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"task_type": "bounding-box", "labels": LABELS}, "image-classification jobs only"),
        (
            classification_job(existing_annotations={"output_manifest": "s3://data/jobs/pens-v1/out.manifest"}),
            "need a labeling run",
        ),
        (classification_job(automated_labeling=True), "cannot be combined with automated_labeling"),
    ],
)
def test_gold_questions_where_they_cannot_work_are_refused(job, message):
    with pytest.raises(JobFileError, match=message) as raised:
        parse_job_file(json.dumps({**job, "gold_labels": "gold.csv"}), source=SOURCE)
    assert "gold_labels:" in str(raised.value)


# --- the gold file ---------------------------------------------------------------------------------------------------


def test_a_gold_file_is_read_by_image_path_with_its_lines():
    gold = read("\ufeffimage,label,note\r\ndesk-007.jpg,pencil,\r\n\r\nbatch 2/desk-113.PNG,eraser,checked twice\r\n")
    assert gold.labels == {"desk-007.jpg": "pencil", "batch 2/desk-113.PNG": "eraser"}
    assert gold.lines == {"desk-007.jpg": 2, "batch 2/desk-113.PNG": 4}
    assert gold.by_uri("s3://data/jobs/pens-v1/images/") == {
        "s3://data/jobs/pens-v1/images/desk-007.jpg": "pencil",
        "s3://data/jobs/pens-v1/images/batch 2/desk-113.PNG": "eraser",
    }


def test_the_same_image_twice_with_the_same_label_is_one_gold_question():
    assert read("image,label\na.jpg,pen\na.jpg,pen\n").labels == {"a.jpg": "pen"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("image,label\na.jpg,pencl\n", f"{GOLD} line 2: label 'pencl' is not one of the job's labels (did you mean"),
        ("image,label\na.jpg,Pen \n", f"{GOLD} line 2: label 'Pen' is not one of the job's labels"),
        ("image,label\na.jpg,owl\n", "(pen, pencil, eraser)"),
        (
            "image,label\na.jpg,pen\nb.jpg,pen\na.jpg,eraser\n",
            f"{GOLD} line 4: image 'a.jpg' has gold label 'eraser', but line 2",
        ),
        ("image,label\nnotes.txt,pen\n", f"{GOLD} line 2: image 'notes.txt' is not a .jpg, .jpeg, .png file"),
        (
            "image,label\ns3://data/jobs/pens-v1/images/a.jpg,pen\n",
            "line 2: image 's3://data/jobs/pens-v1/images/a.jpg'",
        ),
        ("image,label\n/abs/a.jpg,pen\n", "line 2: image '/abs/a.jpg'"),
        ("image,label\n", f"{GOLD}: no gold images after the header"),
        ("", f"{GOLD}: the file is empty"),
        ("item,label\na.jpg,pen\n", f"{GOLD} line 1: missing column(s) image"),
        ("image,label\na.jpg\n", f"{GOLD} line 2: 1 values, the header has 2"),
        ('image,label\n"a.jpg,pen\nb.jpg,pen\n', f"{GOLD} line 2: a value opened with a double quote"),
        ("image,label\na.jpg,\n", f"{GOLD} line 2: empty label"),
        (b"image,label\nd\xe9sk.jpg,pen\n", f"{GOLD} line 2: not UTF-8 text"),
        ("image,label\na.jpg,pen\n".encode("utf-16"), f"{GOLD} line 1: the file is UTF-16 text"),
    ],
)
def test_a_malformed_gold_file_is_refused_naming_the_file_and_line(content, expected):
    with pytest.raises(GoldFileError) as raised:
        read(content)
    assert expected in str(raised.value)
    assert isinstance(raised.value, JobFileError)  # the starter records it as an invalid job


def test_every_bad_row_is_listed_up_to_a_limit():
    rows = "".join(f"img{n}.jpg,owl\n" for n in range(30))
    with pytest.raises(GoldFileError) as raised:
        read("image,label\n" + rows + "good.jpg,pen\n")
    lines = str(raised.value).splitlines()
    assert len(lines) == 21 and lines[0].startswith(f"{GOLD} line 2: label 'owl'") and "line 21:" in lines[19]
    assert lines[-1] == f"{GOLD}: and 10 more problem(s)"


# --- reading it for a job --------------------------------------------------------------------------------------------


def reader(files: dict[str, bytes]):
    asked = []

    def read_object(uri: str, limit: int) -> bytes | None:
        asked.append(uri)
        data = files.get(uri)
        if data is not None and len(data) > limit:
            raise ObjectTooLargeError(len(data))
        return data

    return read_object, asked


def test_accept_job_file_reads_and_checks_the_gold_file_it_names():
    read_object, asked = reader({"s3://data/jobs/pens-v1/gold.csv": b"image,label\na.jpg,pencl\n"})
    with pytest.raises(GoldFileError, match="line 2: label 'pencl'"):
        accept_job_file(json.dumps(classification_job()), source=SOURCE, scope=SCOPE, read_object=read_object)
    assert asked == ["s3://data/jobs/pens-v1/gold.csv"]
    # Without a reader (steps that do not need the gold file) the job file alone is checked.
    accept_job_file(json.dumps(classification_job()), source=SOURCE, scope=SCOPE)


def test_a_missing_or_huge_gold_file_is_named_in_the_job_files_field():
    job = parse_job_file(json.dumps(classification_job()), source=SOURCE)
    read_object, _ = reader({})
    with pytest.raises(JobFileError) as raised:
        load_gold_questions(job, scope=SCOPE, job_file_source=SOURCE, read_object=read_object)
    assert str(raised.value).startswith(f"{SOURCE}: gold_labels: {GOLD}: no such file")
    read_object, _ = reader({"s3://data/jobs/pens-v1/gold.csv": b"x" * (MAX_GOLD_FILE_BYTES + 1)})
    with pytest.raises(JobFileError, match=f"a gold file may have at most {MAX_GOLD_FILE_BYTES:,}"):
        load_gold_questions(job, scope=SCOPE, job_file_source=SOURCE, read_object=read_object)


def test_gold_images_must_be_images_of_the_job():
    gold = read("image,label\na.jpg,pen\nimages/b.jpg,pencil\nc.jpg,eraser\n")
    keys = ["jobs/pens-v1/images/a.jpg", "jobs/pens-v1/images/b.jpg"]
    with pytest.raises(GoldFileError) as raised:
        check_gold_images(gold, image_keys=keys, images_prefix="jobs/pens-v1/images/")
    lines = str(raised.value).splitlines()
    assert lines[0].startswith(f"{GOLD} line 3: image 'images/b.jpg' is not among the job's images")
    assert "leave 'images/' out" in lines[0]
    assert lines[1].startswith(f"{GOLD} line 4: image 'c.jpg' is not among the job's images")
    check_gold_images(read("image,label\na.jpg,pen\n"), image_keys=keys, images_prefix="jobs/pens-v1/images/")


# --- the run's copy --------------------------------------------------------------------------------------------------


def test_the_runs_copy_belongs_to_its_labeling_jobs():
    gold = read("image,label\na.jpg,pen\n")
    document = gold_document_for_run(gold, bucket="data", images_prefix="jobs/pens-v1/images/",
                                     labeling_jobs=["tf-pens-v1-0000aaaa"])  # fmt: skip
    text = json.dumps(document)
    assert gold_labels_for_job(text, labeling_job="TF-pens-v1-0000aaaa") == {
        "s3://data/jobs/pens-v1/images/a.jpg": "pen"
    }
    assert gold_labels_for_job(text, labeling_job="tf-pens-v1-1111bbbb") == {}  # another run's
    assert read_gold_labels(text).gold_file == "s3://data/jobs/pens-v1/gold.csv"
    assert gold_labels_uri("s3://data/jobs/pens-v1/manifests/input.manifest") == (
        "s3://data/jobs/pens-v1/manifests/gold-labels.json"
    )


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", '{"labeling_jobs": "tf-a", "labels": {}}', '{"labeling_jobs": ["tf-a"], "labels": {"a": 1}}'],
)
def test_a_broken_copy_is_a_value_error(text):
    with pytest.raises(ValueError):
        gold_labels_for_job(text, labeling_job="tf-a")
    with pytest.raises(ValueError, match="not one of the job's labels"):
        read_gold_labels('{"labeling_jobs": ["tf-a"], "labels": {"a": "owl"}}', label_set=LABELS)
