"""Whether a job file may run: every check a later step would make, made at once.

:func:`accept_job_file` is what the starter runs at upload and what every step that reads the job file runs again:
the job file's own rules (:func:`truthflow.job_file.parse_job_file`), the job's scope for every S3 address it names
(:mod:`truthflow.job_scope`), and the limits of the files "Prepare labeling input" writes from it
(:func:`truthflow.labeling_input.labeling_input_problems`). Given a way to read the job's files (``read_object``), it
also reads and checks the gold file the job names (:mod:`truthflow.gold_questions`). A job file that passes here does
not fail days later, after people have labeled, on a limit that could have been known at upload.
"""

from __future__ import annotations

from truthflow.gold_questions import ObjectReader, load_gold_questions
from truthflow.job_file import JobFile, JobFileError, parse_job_file
from truthflow.job_scope import JobScope
from truthflow.labeling_input import labeling_input_problems


def accept_job_file(
    text: str | bytes, *, source: str, scope: JobScope, read_object: ObjectReader | None = None
) -> JobFile:
    """The validated job file, or :class:`JobFileError` listing every problem, each naming ``source`` and a field
    (or, for the gold file, :class:`~truthflow.gold_questions.GoldFileError` naming that file and its lines)."""
    job = parse_job_file(text, source=source, scope=scope)
    problems = labeling_input_problems(job)
    if problems:
        raise JobFileError(source, problems)
    if read_object is not None:
        load_gold_questions(job, scope=scope, job_file_source=source, read_object=read_object)
    return job
