"""The report's HTML page: :func:`write_report` writes ``report.html``, its PNG figures and ``summary.json``."""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from truthflow.local.report.analysis import (
    IOU_THRESHOLDS,
    MAJORITY,
    MATCH_IOU,
    PIPELINE,
    WITHOUT_GOLD,
    WORKER_BEST,
    WORKER_MEAN,
    _analyse,
    _Analysis,
)
from truthflow.local.report.disagreements import MAX_LISTED
from truthflow.local.report.figures import (
    _confusion_figure,
    _quality_figure,
    _skill_figure,
    _timeline_figure,
    threshold_figure,
)
from truthflow.local.report.inputs import BOUNDING_BOX, FAILED_STATUSES, ReportInputs, StateSpan
from truthflow.local.report.samples import _find_image, _sample_png
from truthflow.local.report.text import _METHOD_NAMES, DASH, _number

MAX_SAMPLES = 12

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 64rem;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #f4f6f8; }
table.facts th { background: none; font-weight: 600; width: 9rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.pipeline td { font-weight: 600; }
tr.failed td { color: #b00020; }
img.figure { max-width: 100%; border: 1px solid #eee; }
.note { background: #f8f8f0; border-left: 4px solid #E69F00; padding: 0.5rem 0.8rem; }
.muted { color: #666; font-size: 0.9rem; }
.samples { display: flex; flex-wrap: wrap; gap: 1rem; }
.samples figure { margin: 0; max-width: 25rem; }
.samples figcaption { font-size: 0.8rem; color: #444; word-break: break-all; }
code { font-size: 0.85rem; }
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], *, row_classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
    body = []
    for position, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{_e(cell)}</td>' if _is_numeric(cell) else f"<td>{_e(cell)}</td>" for cell in row
        )
        css = row_classes[position] if position < len(row_classes) and row_classes[position] else ""
        body.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _facts(facts: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f'<tr><th scope="row">{_e(name)}</th><td>{_e(value)}</td></tr>' for name, value in facts)
    return f'<table class="facts"><tbody>{rows}</tbody></table>'


def _is_numeric(cell: object) -> bool:

    if isinstance(cell, int | float):
        return True
    text = str(cell).removesuffix(" s")
    try:
        float(text)
    except ValueError:
        return text == DASH
    return True


def _figure_html(name: str | None, alt: str) -> str:
    if name is None:
        return '<p class="muted">No figure: nothing to plot.</p>'
    return f'<p><img class="figure" src="{_e(name)}" alt="{_e(alt)}"></p>'


def _header_html(inputs: ReportInputs, summary: Mapping[str, Any]) -> str:
    run = f"{summary['run_seconds']:.1f} s" if summary["run_seconds"] is not None else DASH
    facts = [
        ("Dataset", inputs.dataset or DASH),
        ("Task", summary["task_type"]),
        ("Labels", ", ".join(summary["labels"])),
        (
            "Images",
            f"{summary['n_images']} ({summary['n_gold_images']} with gold, {summary['n_scored_images']} scored)",
        ),
        ("Workers", f"{summary['n_workers']} ({summary['n_answers']} answers)"),
        ("Run time", run),
        ("Labeling job", inputs.job_id or DASH),
        ("Execution", f"{inputs.execution_name or DASH} \u2014 {inputs.execution_status or DASH}"),
    ]
    locations = ([("Outputs", inputs.outputs_location)] if inputs.outputs_location else []) + list(
        inputs.outputs.items()
    )
    outputs = _table(("Output", "Location"), locations)
    notes = "".join(f'<p class="note">{_e(note)}</p>' for note in inputs.notes)
    return (
        "<h2>What this is</h2>"
        "<p>The end-to-end truthflow pipeline (images \u2192 Ground Truth labeling \u2192 consolidation \u2192 "
        "training data \u2192 training \u2192 endpoint) run offline, with its labels scored against gold.</p>"
        + _facts(facts)
        + notes
        + (outputs if locations else "")
    )


def _quality_html(summary: Mapping[str, Any], figure: str | None) -> str:
    if summary.get("agreement") is not None:
        return (
            "<h2>1. Label quality against gold</h2><p>No image has gold labels, so nothing is scored against gold: "
            "see the agreement between annotators below.</p>"
        )
    names = _METHOD_NAMES[summary["task_type"]]
    methods = (PIPELINE, MAJORITY, WORKER_MEAN, WORKER_BEST)
    css = ["pipeline", "", "", ""]
    if summary["accuracy"] is not None:
        accuracy = summary["accuracy"]
        accuracy_rows = [
            (
                names[m] + (f" ({accuracy['best_worker']})" if m == WORKER_BEST and accuracy["best_worker"] else ""),
                _number(accuracy[m]),
            )
            for m in methods
        ]
        if WITHOUT_GOLD in accuracy:
            accuracy_rows.insert(1, ("Dawid-Skene without the gold questions", _number(accuracy[WITHOUT_GOLD])))
            css = ["pipeline", "", "", "", ""]
        gold_note = (
            f" The {summary['n_gold_questions']} gold questions given to the pipeline are left out (it knows their "
            "labels); the second row is the pipeline's engine on the same answers without them, computed here: what "
            "the gold questions bought."
            if summary.get("n_gold_questions")
            else ""
        )
        text = (
            f"<p>Accuracy on the {accuracy['n_scored']} images with gold and answers. Majority vote and the single-"
            "worker figures are computed by this report from the raw answers; the single-worker mean averages each "
            "worker's own accuracy on the gold images they answered."
            + gold_note
            + (
                f" {accuracy['pipeline_missing']} scored images had no pipeline label (counted wrong)."
                if accuracy["pipeline_missing"]
                else ""
            )
            + "</p>"
        )
        return (
            "<h2>1. Label quality against gold</h2>"
            + text
            + _table(("Method", "Accuracy"), accuracy_rows, row_classes=css)
            + (_figure_html(figure, "accuracy of each method against gold"))
        )
    detection = summary["detection"]
    header = ["Method"] + [f"{metric} @ IoU \u2265 {t:g}" for t in IOU_THRESHOLDS for metric in ("P", "R", "F1")]
    rows: list[list[object]] = []
    for method in methods:
        best = detection["best_worker"]
        label = names[method] + (f" ({best})" if method == WORKER_BEST and best else "")
        cells: list[object] = [label]
        for threshold in IOU_THRESHOLDS:
            scores = detection[f"{threshold:g}"][method] or {}
            cells += [_number(scores.get(metric)) for metric in ("precision", "recall", "f1")]
        rows.append(cells)
    text = (
        f"<p>Micro-averaged precision (P), recall (R) and F1 on the {detection['n_scored']} images with gold and "
        "answers; a box matches a gold box of its own class one-to-one at IoU at least the threshold. The naive "
        "majority uses the same clusters and at-least-half quorum as the pipeline but per-edge median boxes, without "
        "worker skill. Each single worker is scored alone on the images they saw; the best is the one with the highest "
        f"F1 at IoU \u2265 {MATCH_IOU:g}."
        "</p>"
    )
    return (
        "<h2>1. Label quality against gold</h2>"
        + text
        + _table(header, rows, row_classes=css)
        + _figure_html(figure, "precision, recall and F1 of each method against gold")
    )


def _skill_html(summary: Mapping[str, Any], figure: str | None, x_name: str) -> str:
    boxes = summary["task_type"] == BOUNDING_BOX
    header = ["Worker", "Kind", "True accuracy", "Estimated (pipeline)", "Measured vs gold", "Answers"]
    gold_questions = bool(summary.get("n_gold_questions"))
    if gold_questions:
        header[5:5] = ["On gold questions (pipeline)", "Gold questions answered"]
    if boxes:
        header[4] = "Label accuracy of matched boxes"
        header += ["Boxes", f"F1 @ IoU \u2265 {MATCH_IOU:g}", "True box jitter", "True miss rate"]
    rows = []
    for worker, stats in summary["workers"].items():
        row: list[object] = [
            worker,
            stats["kind"] or DASH,
            _number(stats["true_accuracy"]),
            _number(stats["estimated_accuracy"]),
            _number(stats["gold_accuracy"]),
            stats["n_answers"],
        ]
        if gold_questions:
            row[5:5] = [_number(stats.get("gold_question_accuracy")), stats.get("gold_questions_answered", 0)]
        if boxes:
            row += [
                stats.get("n_boxes", 0),
                _number(stats.get(f"f1_at_{MATCH_IOU:g}")),
                _number(stats["box_jitter"]),
                _number(stats["miss_rate"]),
            ]
        rows.append(row)
    text = (
        f"<p>Each point is a worker: x is the {_e(x_name)}, y the pipeline's estimate from its quality summary; "
        "points on the dashed diagonal are estimated exactly. The table adds each worker's accuracy measured "
        "against gold on the images they answered"
        + (
            ", and their accuracy on the gold questions as the pipeline scored it (quality.json), next to the "
            "model's estimate"
            if gold_questions
            else ""
        )
        + ".</p>"
    )
    return (
        "<h2>4. Worker skill: estimated vs true</h2>"
        + text
        + _figure_html(figure, "estimated vs true skill")
        + (_table(header, rows))
    )


def _timeline_html(timeline: Sequence[StateSpan], figure: str | None) -> str:
    heading = "<h2>6. Execution timeline</h2>"
    if not timeline:
        return heading + '<p class="muted">No state timeline was recorded.</p>'
    origin = min(start for _, start, _, _ in timeline)
    rows = [
        (name, f"{start - origin:.2f} s", f"{end - origin:.2f} s", f"{end - start:.2f} s", status.lower())
        for name, start, end, status in timeline
    ]
    css = ["failed" if status in FAILED_STATUSES else "" for *_, status in timeline]
    return (
        heading
        + "<p>The state machine's states in order of their start; failed states in red.</p>"
        + _figure_html(figure, "execution timeline")
        + _table(("State", "Start", "End", "Duration", "Status"), rows, row_classes=css)
    )


def _samples_html(analysis: _Analysis, inputs: ReportInputs, out_dir: Path) -> str:
    data = analysis.data
    figures = []
    for position, (key, encoded) in enumerate(list(inputs.sample_images.items())[:MAX_SAMPLES], start=1):
        image = _find_image(key, data.images)
        if data.task_type == BOUNDING_BOX:
            gold = data.gold_boxes.get(image, []) if image else []
            result = data.result_boxes.get(image, []) if image else []
            caption = f"{len(result)} consolidated boxes (solid, with confidence), {len(gold)} gold boxes (dashed)"
        else:
            gold, result = [], []
            label, confidence = data.result_labels.get(image, (DASH, math.nan)) if image else (DASH, math.nan)
            truth = data.gold_labels.get(image, DASH) if image else DASH
            caption = f"pipeline: {label} ({_number(confidence, 2)}) \u00b7 gold: {truth}"
        name = f"sample-{position:02d}.png"
        try:
            (out_dir / name).write_bytes(_sample_png(encoded, gold, result, data.labels))
        except (OSError, ValueError) as error:
            figures.append(f"<figure><figcaption>{_e(key)}: could not be drawn ({_e(error)})</figcaption></figure>")
            continue
        figures.append(
            f'<figure><img src="{name}" alt="{_e(key)}"><figcaption><code>{_e(image or key)}</code><br>'
            f"{_e(caption)}</figcaption></figure>"
        )
    if not figures:
        return '<h2>5. Sample images</h2><p class="muted">No sample images were given.</p>'
    more = len(inputs.sample_images) - MAX_SAMPLES
    note = f'<p class="muted">{more} more sample images not shown.</p>' if more > 0 else ""
    return f'<h2>5. Sample images</h2><div class="samples">{"".join(figures)}</div>{note}'


MAX_DISAGREEMENT_THUMBNAILS = 8


def disagreements_html(analysis: _Analysis, inputs: ReportInputs, out_dir: Path) -> str:
    """Section 2: the images where the pipeline and majority vote differ, with gold, and thumbnails of the first."""
    found = analysis.summary["disagreements"]
    data = analysis.data
    boxes = data.task_type == BOUNDING_BOX
    low, high = (f"{threshold:g}" for threshold in (IOU_THRESHOLDS[0], IOU_THRESHOLDS[-1]))
    heading = "<h2>2. Where the pipeline and majority vote disagree</h2>"
    majority_name = "the naive majority" if boxes else "majority vote"
    basis = (
        f"Boxes differ when they found other objects or classes (not matched one to one at IoU \u2265 {low}), or "
        f"drew an object far enough apart that one matches a gold box at IoU \u2265 {low} or {high} and the other "
        "does not. "
        if boxes
        else ""
    )
    if not found["n"]:
        return heading + (
            f'<p class="muted">{basis}On none of the {found["n_answered"]} answered images does the pipeline differ '
            f"from {majority_name}.</p>"
        )
    judged = found["pipeline_right"] + found["majority_right"] + found["neither_right"] + found["equal"]
    verdict = f"Against gold, on the {judged} of them that are not gold questions, " + (
        f"the pipeline's boxes score the higher F1 (at IoU \u2265 {high}, then {low}) on {found['pipeline_right']}, "
        f"the naive majority's on {found['majority_right']} ({found['equal']} equal)."
        if boxes
        else f"the pipeline is right on {found['pipeline_right']}, majority vote on {found['majority_right']}, "
        f"neither on {found['neither_right']}."
    )
    gold_part = (
        f" {found['n_gold_questions']} are gold questions, which the pipeline labels with their known label."
        if found["n_gold_questions"]
        else ""
    )
    text = (
        f"<p>{basis}On {found['n']} of the {found['n_answered']} answered images the pipeline differs from "
        f"{majority_name} over the same answers. {verdict}{gold_part}</p>"
    )
    rows: list[list[object]] = []
    for row in found["images"]:
        where = "gold question" if row["gold_question"] else (row["winner"] or DASH)
        if boxes:
            scores = [_number(row[f"{who}_f1"].get(t)) for t in (high, low) for who in ("pipeline", "majority")]
            rows.append([row["image"], row["pipeline_boxes"], row["majority_boxes"],
                         DASH if row["gold_boxes"] is None else row["gold_boxes"], *scores, where])  # fmt: skip
        else:
            answers = ", ".join(f"{worker}: {label}" for worker, label in row["answers"].items())
            rows.append([row["image"], answers, row["majority"], f"{row['pipeline']} ({_number(row['confidence'], 2)})",
                         row["gold"] or DASH, where])  # fmt: skip
    header = (
        ["Image", "Boxes (pipeline)", "Boxes (majority)", "Boxes (gold)", f"F1 @ {high} pipeline",
         f"F1 @ {high} majority", f"F1 @ {low} pipeline", f"F1 @ {low} majority", "Better"]
        if boxes
        else ["Image", "Answers", "Majority vote", "Pipeline (confidence)", "Gold", "Right"]
    )  # fmt: skip
    more = found["n"] - len(found["images"])
    more_note = (
        f'<p class="muted">{more} more not listed (summary.json lists the first {MAX_LISTED}).</p>' if more else ""
    )
    return heading + text + _table(header, rows) + more_note + _disagreement_thumbnails(analysis, inputs, out_dir)


def _disagreement_thumbnails(analysis: _Analysis, inputs: ReportInputs, out_dir: Path) -> str:
    data = analysis.data
    figures = []
    for position, row in enumerate(analysis.summary["disagreements"]["images"][:MAX_DISAGREEMENT_THUMBNAILS], 1):
        image = row["image"]
        encoded = inputs.images.get(image)
        if encoded is None:
            continue
        if data.task_type == BOUNDING_BOX:
            panels = [
                ("pipeline", data.result_boxes.get(image, [])),
                ("majority", analysis.majority_boxes.get(image, [])),
            ]
            gold = data.gold_boxes.get(image, [])
        else:
            panels, gold = [("labels", [])], []
        for kind, shown in panels:
            name = f"disagreement-{position:02d}-{kind}.png"
            try:
                (out_dir / name).write_bytes(_sample_png(encoded, gold, shown, data.labels))
            except (OSError, ValueError) as error:
                figures.append(
                    f"<figure><figcaption>{_e(image)}: could not be drawn ({_e(error)})</figcaption></figure>"
                )
                continue
            if data.task_type == BOUNDING_BOX:
                caption = f"{kind}: {len(shown)} boxes (solid), gold {len(gold)} (dashed)"
            else:
                caption = (
                    f"pipeline: {row['pipeline']} \u00b7 majority: {row['majority']} \u00b7 gold: {row['gold'] or DASH}"
                )
            figures.append(
                f'<figure><img src="{name}" alt="{_e(image)}"><figcaption><code>{_e(image)}</code><br>'
                f"{_e(caption)}</figcaption></figure>"
            )
    return f'<div class="samples">{"".join(figures)}</div>' if figures else ""


def automated_html(summary: Mapping[str, Any] | None, figure: str | None) -> str:
    if summary is None:
        return ""
    theta = summary.get("theta")
    chosen = f"θ = {theta:.4f}" if theta is not None else "no θ qualified: every remaining image went to people"
    origin = "bootstrap, trained on the first batch" if summary.get("bootstrap_model") else "given in job.json"
    share = summary.get("machine_share")
    shown_share = DASH if share is None else f"{share:.0%}"
    facts = [
        ("Threshold", chosen),
        ("How chosen", str(summary.get("reason") or DASH)),
        ("Model", f"{summary.get('model_name')} ({origin})"),
        (
            "Machine-labeled",
            f"{summary['machine_labeled']} of {summary['n_images']} images ({shown_share})",
        ),
        (
            "Human-labeled",
            f"{summary['human_labeled']} images: {summary.get('first_batch')} in the first batch "
            f"({summary.get('first_batch_workers_per_object')} people each), the rest "
            f"{summary.get('workers_per_object')} each",
        ),
        (
            "Saved",
            f"{summary.get('human_tasks')} human tasks instead of {summary.get('human_tasks_without_model')}: "
            f"{summary.get('human_tasks_saved')} saved, about {summary.get('cost_saved') or 0:.2f} USD at "
            f"{summary.get('price_per_task')} USD per task",
        ),
    ]
    rows = [
        ("Machine labels", _number(summary.get("machine_label_quality")), summary.get("machine_label_quality_n")),
        ("Human labels", _number(summary.get("human_label_quality")), summary.get("human_label_quality_n")),
        ("Target (against human labels)", _number(summary.get("target")), DASH),
    ]
    table = "".join(
        f"<tr><td>{_e(name)}</td><td class='num'>{value}</td><td class='num'>{count}</td></tr>"
        for name, value, count in rows
    )
    image = f'<p><img class="figure" src="{figure}" alt="quality against confidence threshold"></p>' if figure else ""
    fact_rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    return (
        "<h2>Automated labeling</h2>"
        "<p>People labeled a random first batch; a model labeled the other images where its confidence was at least "
        "θ, and people labeled the rest. θ was tested from the threshold accepting half of the calibration images "
        "downwards and kept while the lower confidence bound of the accepted images' quality met the target.</p>"
        f'<table class="facts">{fact_rows}</table>'
        f"<p>Quality against gold ({_e(str(summary.get('quality_measure') or ''))}):</p>"
        f"<table><tr><th>labels</th><th>quality</th><th>images with gold</th></tr>{table}</table>"
        f"{image}"
    )


def agreement_html(summary: Mapping[str, Any] | None) -> str:
    """Agreement between annotators, shown when no image has gold (:mod:`truthflow.local.report.agreement`)."""
    if summary is None:
        return ""
    boxes = "mean_iou_matched" in next(iter(summary["annotators"].values()), {})
    if boxes:
        header = ["Annotator", "Answers", "F1 with consolidated", "Mean IoU of matched boxes"]
        keys = ["n_answers", "f1_with_consolidated", "mean_iou_matched"]
        pair_header, pair_key = ["Annotators", "Shared images", "Mean F1"], "mean_f1"
        overall = f"mean pairwise F1 per image {_number(summary['overall'])}"
    else:
        header = ["Annotator", "Answers", "Agreement with consolidated", "Cohen's kappa with consolidated"]
        keys = ["n_answers", "agreement_with_consolidated", "kappa_with_consolidated"]
        pair_header, pair_key = ["Annotators", "Shared images", "Cohen's kappa"], "kappa"
        overall = f"Fleiss' kappa {_number(summary['overall'])}"
    rows = [
        [worker, *(stats[key] if key == "n_answers" else _number(stats[key]) for key in keys)]
        for worker, stats in summary["annotators"].items()
    ]
    pairs = [
        [" \u00d7 ".join(pair["annotators"]), pair["n_shared"], _number(pair[pair_key])] for pair in summary["pairs"]
    ]
    return (
        "<h2>Agreement between annotators</h2>"
        "<p>No image has gold labels (a tool export normally has none), so quality is told by agreement: "
        f"{_e(summary['measure'])}. Overall, over the {summary['n_multi_annotated']} images with at least two "
        f"annotators: {_e(overall)}. The pipeline's own estimate of each annotator's accuracy is in the worker "
        "table below.</p>"
        + _table(header, rows)
        + (_table(pair_header, pairs) if pairs else '<p class="muted">No two annotators share an image.</p>')
    )


def write_report(inputs: ReportInputs, out_dir: Path) -> Path:
    """Write ``report.html``, its PNG figures and ``summary.json`` into ``out_dir`` (created); returns the HTML path."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    analysis = _analyse(inputs)
    summary = analysis.summary
    quality = _quality_figure(summary, out_dir / "quality.png")
    confusion = _confusion_figure(analysis.confusions, out_dir / "confusion.png")
    skill, x_name = _skill_figure(summary, out_dir / "skill.png")
    timeline = _timeline_figure(analysis.data.timeline, out_dir / "timeline.png")
    threshold = threshold_figure(inputs.automated_labeling, out_dir / "threshold.png")
    confusion_text = (
        "<p>Rows are the gold class, columns the method's; colour is the share of the gold row, numbers are counts."
        + (
            " Boxes are matched one-to-one whatever their class; unmatched gold boxes fall in <em>(missed)</em>, "
            f"unmatched consolidated boxes in <em>(no object)</em>, coloured by their share of the column (IoU "
            f"\u2265 {MATCH_IOU:g}).</p>"
            if inputs.task_type == BOUNDING_BOX
            else "</p>"
        )
    )
    title = f"truthflow report \u2014 {inputs.dataset}" if inputs.dataset else "truthflow report"
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">Labeling job {_e(inputs.job_id or DASH)} \u00b7 execution '
        f"{_e(inputs.execution_name or DASH)} ({_e(inputs.execution_status or 'unknown')})</p>",
        _header_html(inputs, summary),
        _quality_html(summary, quality),
        automated_html(summary["automated_labeling"], threshold),
        agreement_html(summary.get("agreement")),
        disagreements_html(analysis, inputs, out_dir),
        "<h2>3. Confusion matrices</h2>" + confusion_text + _figure_html(confusion, "confusion matrices"),
        _skill_html(summary, skill, x_name),
        _samples_html(analysis, inputs, out_dir),
        _timeline_html(analysis.data.timeline, timeline),
        f'<p class="muted">Report written in {time.perf_counter() - started:.2f} s.</p>',
    ]
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    path = out_dir / "report.html"
    path.write_text(document, encoding="utf-8")
    return path
