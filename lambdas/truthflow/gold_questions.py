"""Gold questions of a job: images of its ``images/`` folder whose label is known, named by the job file's
``gold_labels``.

The file is a CSV in the job's folder (``jobs/<id>/<gold_labels>``, e.g. ``jobs/pens-v1/gold.csv``), UTF-8, read as
strictly as the command line's CSV files (:mod:`truthflow.tables`)::

    image,label
    desk-007.jpg,pencil
    batch-2/desk-113.png,eraser

``image`` is the image's path under the job's ``images/`` folder, as uploaded; ``label`` is one of the job's labels,
exactly. Other columns are ignored; an image listed twice must have the same label both times. Gold images are
labeled like every other image of the job: the manifest line, the task and the template are the same, so workers
cannot tell them apart (unless the file names give them away: name them as the others). Their known labels fix those
images' labels and anchor each worker's skill in both consolidation steps, and ``quality.json`` scores every worker on
them.

Checked at upload (the starter, :func:`load_gold_questions` through :func:`truthflow.job_acceptance.accept_job_file`)
and again by "Prepare labeling input", which also checks that every gold image is one of the job's images
(:func:`check_gold_images`) and writes the run's copy (:mod:`truthflow.groundtruth.gold_labels`). Problems name the
file and the line: ``jobs/pens-v1/gold.csv line 7: label 'pencl' is not one of the job's labels (did you mean
'pencil'?)``.
"""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from truthflow.groundtruth.gold_labels import gold_labels_document
from truthflow.groundtruth.input_manifest import MAX_DATA_OBJECTS_PER_JOB
from truthflow.job_file import JobFile, JobFileError
from truthflow.job_scope import JobScope
from truthflow.tables import InputError, read_rows_from

GOLD_COLUMNS = ("image", "label")
# 100,000 rows (a labeling job's maximum) of ~300-character paths fit easily.
MAX_GOLD_FILE_BYTES = 32 << 20
# Problems reported one by one; the rest are counted.
MAX_LISTED_PROBLEMS = 20
MAX_IMAGE_PATH_CHARS = 900  # S3 keys take 1,024 bytes, and jobs/<id>/images/ comes before the path
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")

ObjectReader = Callable[[str, int], bytes | None]
"""``(s3 URI, limit) -> bytes`` of the object, or ``None`` when there is no such object; an object larger than
``limit`` bytes raises :class:`ObjectTooLargeError` (unread)."""


class ObjectTooLargeError(ValueError):
    """An object is larger than the reader was allowed to read."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size:,} bytes")
        self.size = size


class GoldFileError(JobFileError):
    """A gold file that cannot be used: one line per problem, each naming the file and its line as the command line
    does (``jobs/pens-v1/gold.csv line 7: ...``). A :class:`JobFileError`, so every step that refuses a job file
    refuses it alike; :attr:`problems` holds ``("line 7", message)`` pairs."""

    def __init__(self, source: str, problems: Sequence[tuple[int | None, str]], *, more: int = 0) -> None:
        listed = [(f"line {line}" if line else "", message) for line, message in problems]
        if more:
            listed.append(("", f"and {more:,} more problem(s)"))
        super().__init__(source, listed)
        # The file and its line read as one place ("gold.csv line 7"), not as a file and a field.
        self.args = (
            "\n".join(f"{source} {where}: {text}" if where else f"{source}: {text}" for where, text in listed),
        )


@dataclass(frozen=True)
class GoldQuestions:
    """The gold file as read: image path (under ``images/``) -> label, and the line each came from."""

    source: str
    labels: dict[str, str]
    lines: dict[str, int]

    def by_uri(self, images_prefix_uri: str) -> dict[str, str]:
        """Image S3 URI -> label (``images_prefix_uri`` is ``s3://<bucket>/jobs/<id>/images/``)."""
        return {images_prefix_uri + image: label for image, label in self.labels.items()}


def gold_file_key(job_id: str, gold_labels: str) -> str:
    return f"jobs/{job_id}/{gold_labels}"


def read_gold_questions(data: bytes, *, source: str, labels: Sequence[str]) -> GoldQuestions:
    """Read and check a gold file's bytes (see the module docstring); :class:`GoldFileError` lists what is wrong."""
    allowed = set(labels)
    gold: dict[str, str] = {}
    lines: dict[str, int] = {}
    problems: list[tuple[int | None, str]] = []
    more = 0
    try:
        for line, row in read_rows_from(source, io.BytesIO(data), GOLD_COLUMNS):
            problem = _row_problem(row["image"], row["label"], allowed, labels)
            image, label = row["image"], row["label"]
            if problem is None and image in gold and gold[image] != label:
                problem = f"image {image!r} has gold label {label!r}, but line {lines[image]} gave {gold[image]!r}"
            if problem is None and image not in gold and len(gold) >= MAX_DATA_OBJECTS_PER_JOB:
                problem = f"more than {MAX_DATA_OBJECTS_PER_JOB:,} gold images; a labeling job takes at most that many"
            if problem is not None:
                if len(problems) < MAX_LISTED_PROBLEMS:
                    problems.append((line, problem))
                else:
                    more += 1
                continue
            gold.setdefault(image, label)
            lines.setdefault(image, line)
    except InputError as error:
        # The CSV itself is broken (encoding, quotes, columns): the message already names the file and the line.
        message = str(error).removeprefix(source).lstrip(":").strip()
        line_number = None
        match = re.match(r"line (\d+): (.*)", message, flags=re.DOTALL)
        if match is not None:
            line_number, message = int(match.group(1)), match.group(2)
        problems.append((line_number, message))
    if not problems and not gold:
        problems.append((None, "no gold images after the header (columns image,label)"))
    if problems:
        raise GoldFileError(source, problems, more=more)
    return GoldQuestions(source, gold, lines)


def _row_problem(image: str, label: str, allowed: set[str], labels: Sequence[str]) -> str | None:
    if image.startswith(("s3://", "https://", "http://")):
        return (
            f"image {image[:200]!r}: give the image's path under the job's images/ folder (e.g. 'desk-007.jpg'), "
            "not a URI"
        )
    if len(image) > MAX_IMAGE_PATH_CHARS:
        return f"image path of {len(image):,} characters; at most {MAX_IMAGE_PATH_CHARS}"
    if _CONTROL_CHARACTERS.search(image) or image.startswith("/"):
        return f"image {image[:200]!r}: a path under images/ has no control characters and does not start with '/'"
    if not image.lower().endswith(IMAGE_EXTENSIONS):
        return f"image {image[:200]!r} is not a {', '.join(IMAGE_EXTENSIONS)} file (the images a job labels)"
    if label not in allowed:
        close = difflib.get_close_matches(label, list(labels), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" ({', '.join(labels[:20])})"
        return f"label {label[:200]!r} is not one of the job's labels{hint}"
    return None


def load_gold_questions(
    job: JobFile, *, scope: JobScope, job_file_source: str, read_object: ObjectReader
) -> GoldQuestions | None:
    """The job's gold questions (``None`` without ``gold_labels``), read with ``read_object`` and checked. A missing
    or oversized file is a :class:`JobFileError` naming the job file's ``gold_labels`` field; a bad one a
    :class:`GoldFileError` naming its lines."""
    if job.gold_labels is None:
        return None
    key = gold_file_key(scope.job_id, job.gold_labels)
    uri = f"s3://{scope.bucket}/{key}"
    problem = scope.problem(uri)
    if problem is not None:
        raise JobFileError(job_file_source, [("gold_labels", problem)])
    try:
        data = read_object(uri, MAX_GOLD_FILE_BYTES)
    except ObjectTooLargeError as error:
        raise JobFileError(
            job_file_source,
            [("gold_labels", f"{key}: {error.size:,} bytes; a gold file may have at most {MAX_GOLD_FILE_BYTES:,}")],
        ) from None
    if data is None:
        raise JobFileError(
            job_file_source,
            [
                (
                    "gold_labels",
                    f"{key}: no such file (or none the pipeline may read); upload the gold file before the job file "
                    "(its upload starts the run)",
                )
            ],
        )
    return read_gold_questions(data, source=key, labels=job.labels)


def check_gold_images(gold: GoldQuestions, *, image_keys: Iterable[str], images_prefix: str) -> None:
    """Every gold image must be one of the job's images (``image_keys``: the listing's image keys, which start with
    ``images_prefix``, ``jobs/<id>/images/``); :class:`GoldFileError` lists those that are not."""
    listed = {key.removeprefix(images_prefix) for key in image_keys}
    missing = sorted((line, image) for image, line in gold.lines.items() if image not in listed)
    if not missing:
        return
    problems: list[tuple[int | None, str]] = []
    for line, image in missing[:MAX_LISTED_PROBLEMS]:
        hint = " (the path is under images/: leave 'images/' out)" if image.startswith("images/") else ""
        problems.append(
            (
                line,
                f"image {image[:200]!r} is not among the job's images ({images_prefix}{image[:200]} is no image of "
                f"at least one byte){hint}; gold images are labeled with the others: upload them to {images_prefix}",
            )
        )
    raise GoldFileError(gold.source, problems, more=len(missing) - len(problems))


def gold_document_for_run(
    gold: GoldQuestions, *, bucket: str, images_prefix: str, labeling_jobs: Sequence[str]
) -> dict[str, object]:
    """The run's ``manifests/gold-labels.json`` (:mod:`truthflow.groundtruth.gold_labels`)."""
    return gold_labels_document(
        gold.by_uri(f"s3://{bucket}/{images_prefix}"),
        labeling_jobs=labeling_jobs,
        gold_file=f"s3://{bucket}/{gold.source}",
    )
