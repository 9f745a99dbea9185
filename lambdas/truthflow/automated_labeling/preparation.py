"""What "Prepare labeling input" adds for automated labeling: the plan, the transform inputs and the run's names.

Files (under ``jobs/<id>/manifests/``): ``automated-labeling-plan.json`` (:class:`~.plan.LabelingPlan`, plus the
manifest attributes every input line carries) and one ``transform-<kind>.json`` per batch transform job, in the
``ManifestFile`` format. The first labeling job's input manifest holds only the first batch (the caller writes it).

Transform jobs take one content type each. The image classifier reads both JPEG and PNG as
``application/x-image``; the object detector is documented for ``image/jpeg`` and ``image/png``, so its images are
split into one job per format. The transform jobs predict the calibration images and the remaining ones, and, for
boxes, also the first batch's training images, on which the detector's score threshold is chosen
(:func:`~truthflow.automated_labeling.machine_labels.choose_score_threshold`).

Names, all derived from the run's labeling job name ``tf-<id>-<8 hex>`` (at most 52 characters) and so within
SageMaker's 63: ``<name>-boot`` (bootstrap training job and model), ``<name>-rest`` (the second labeling job),
``<name>-pred-<kind>`` (transform jobs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from truthflow.automated_labeling.plan import LabelingPlan, plan_labeling
from truthflow.automated_labeling.predictions import transform_manifest
from truthflow.job_file import AutomatedLabelingSettings

PLAN_FILE = "automated-labeling-plan.json"
# Content type of each transform job, by the kind of images it reads.
CLASSIFIER_CONTENT_TYPE = "application/x-image"
DETECTOR_CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png"}


@dataclass(frozen=True)
class AutomatedPreparation:
    """The plan, the files to write (``(key, text)`` relative to the job folder), and the state output (``None``
    when nothing is left for the model and the run labels every image with people)."""

    plan: LabelingPlan
    files: list[tuple[str, str]]
    state: dict[str, Any] | None


def prepare_automated_labeling(
    settings: AutomatedLabelingSettings,
    *,
    task_type: str,
    workers_per_object: int,
    image_uris: Sequence[str],
    images_prefix_uri: str,
    job_prefix_uri: str,
    labeling_job_name: str,
    manifest_attributes: Mapping[str, Any],
    seed: int,
) -> AutomatedPreparation:
    """Plan the run (see the module docstring). ``image_uris`` are the job's images (``s3://`` under
    ``images_prefix_uri``), ``job_prefix_uri`` is ``s3://<bucket>/jobs/<id>/``."""
    is_boxes = task_type == "bounding-box"
    plan = plan_labeling(
        image_uris,
        initial_fraction=settings.initial_fraction,
        calibration_fraction=settings.calibration_fraction,
        target=settings.target,
        delta=settings.delta,
        kind="bounded" if is_boxes else "binary",
        seed=seed,
    )
    plan_document = {**plan.to_dict(), "manifest_attributes": dict(manifest_attributes)}
    files = [(f"manifests/{PLAN_FILE}", json.dumps(plan_document, indent=1) + "\n")]
    if not plan.remaining:
        return AutomatedPreparation(plan, files, None)

    to_predict = [*plan.calibration, *plan.remaining, *(plan.training if is_boxes else ())]
    groups: dict[str, list[str]] = {}
    for uri in to_predict:
        relative = uri.removeprefix(images_prefix_uri)
        kind = ("png" if relative.lower().endswith(".png") else "jpg") if is_boxes else "img"
        groups.setdefault(kind, []).append(relative)
    batches = []
    for kind, relatives in sorted(groups.items()):
        job_name = f"{labeling_job_name}-pred-{kind}"
        manifest_key = f"manifests/transform-{kind}.json"
        files.append((manifest_key, json.dumps(transform_manifest(images_prefix_uri, sorted(relatives))) + "\n"))
        batches.append(
            {
                "job_name": job_name,
                "content_type": DETECTOR_CONTENT_TYPES[kind] if is_boxes else CLASSIFIER_CONTENT_TYPE,
                "manifest_uri": job_prefix_uri + manifest_key,
                "output_uri": f"{job_prefix_uri}predictions/{job_name}/",
                "n_images": len(relatives),
            }
        )
    bootstrap_name = f"{labeling_job_name}-boot"
    state = {
        "plan_uri": job_prefix_uri + f"manifests/{PLAN_FILE}",
        "bootstrap": settings.model is None,
        "bootstrap_job_name": bootstrap_name,
        "model_name": settings.model or bootstrap_name,
        "second_labeling_job_name": f"{labeling_job_name}-rest",
        "transform_batches": batches,
        "instance_type": settings.instance_type,
        "target": settings.target,
        "confidence_level": settings.confidence_level,
        "price_per_task": settings.price_per_task,
        "workers_per_object": workers_per_object,
        "first_batch_workers_per_object": settings.first_batch_workers(workers_per_object),
        "n_first_batch": len(plan.first_batch),
        "n_calibration": len(plan.calibration),
        "n_remaining": len(plan.remaining),
    }
    return AutomatedPreparation(plan, files, state)
