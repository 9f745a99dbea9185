"""The ``truthflow`` command: consolidate crowd answers from CSV files, and run the demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from truthflow.answer_formats import ANSWER_FORMATS, ANSWERS_HELP, BOX_COLUMNS_HELP, FORMAT_HELP, all_csv
from truthflow.consolidation.labels import DEFAULT_METHOD, METHODS, consolidate_labels
from truthflow.gold_file import read_gold_labels
from truthflow.tables import InputError, check_output_path, write_rows

if TYPE_CHECKING:
    from truthflow.consolidation.labels import LabelConsolidation


def _warn(message: str) -> None:
    print(f"truthflow: warning: {message}", file=sys.stderr)


# Workers listed in the gold table at most (those with the lowest accuracy on gold first).
GOLD_TABLE_ROWS = 20


def _consolidate(args: argparse.Namespace) -> int:
    check_output_path(args.out, [*args.answers, *([args.gold] if args.gold is not None else [])])
    if all_csv(args.answers, args.format):
        # truthflow's own CSV files: read directly, without loading the export readers (most of the start-up time).
        items, workers, labels = _csv_label_answers(args.answers)
        gold = read_gold_labels(args.gold) if args.gold is not None else None
        result = consolidate_labels(items, workers, labels, method=args.method, gold=gold)
        warnings = _repeated_answers_warnings(args.answers, result.duplicates_dropped)
    else:
        from truthflow.annotation_imports.answer_sources import import_warnings, read_label_sources

        answers, report = read_label_sources(args.answers, args.format)
        items, workers, labels = answers.items, answers.workers, answers.labels
        gold = read_gold_labels(args.gold) if args.gold is not None else None
        result = consolidate_labels(items, workers, labels, method=args.method, gold=gold)
        warnings = import_warnings(report, result.duplicates_dropped, "item")
    n_answers = len(items) - result.duplicates_dropped
    for line in warnings:
        print(f"truthflow: {line}", file=sys.stderr)
    for note in result.notes:
        print(f"truthflow: note: {note}", file=sys.stderr)
    rows = [
        (item, label, f"{confidence:.6f}")
        for item, label, confidence in zip(result.item_names, result.labels, result.confidence, strict=True)
    ]
    written = write_rows(args.out, ("item", "label", "confidence"), rows)
    model = "" if result.model == result.method else f" ({result.model})"
    print(f"{written} items consolidated with {result.method}{model} from {n_answers} answers -> {args.out}")
    if result.method == "mv":
        print(f"majority vote: {result.ties} tied items, broken by the class prior, then a seeded draw")
    if gold is not None:
        _print_gold(args.gold, result)
    return 0


def _csv_label_answers(paths: list[Path]) -> tuple[list[str], list[str], list[str]]:
    """The ``item,worker,label`` rows of every file, in file order (a later file's answer replaces an earlier one of
    the same worker and item, as consolidation keeps each worker's last answer)."""
    from truthflow.answer_files import read_label_answers

    items: list[str] = []
    workers: list[str] = []
    labels: list[str] = []
    for path in paths:
        answers = read_label_answers(path)
        items += answers.items
        workers += answers.workers
        labels += answers.labels
    return items, workers, labels


def _repeated_answers_warnings(paths: list[Path], repeated: int) -> list[str]:
    """The warning the export path gives for CSV files: repeated (item, worker) answers, the last one kept."""
    if not repeated:
        return []
    names = ", ".join(str(path) for path in paths)
    return [f"warning: {names}: {repeated} repeated (item, worker) answers; kept each worker's last answer to an item"]


def _print_gold(path: Path, result: LabelConsolidation) -> None:
    scores = result.gold
    print(
        f"gold: {scores.n_answered} of {scores.n_given} gold items from {path} were answered; "
        "their labels are the gold labels"
    )
    scored = [index for index in range(len(result.worker_names)) if scores.answers[index] > 0]
    scored.sort(key=lambda index: (scores.accuracy[index], result.worker_names[index]))
    if not scored:
        return
    print("worker accuracy on gold next to the model's estimate (lowest on gold first):")
    print("  worker | gold answers | accuracy on gold | estimated accuracy")
    for index in scored[:GOLD_TABLE_ROWS]:
        print(
            f"  {result.worker_names[index]} | {scores.answers[index]} | {scores.accuracy[index]:.3f} | "
            f"{result.accuracy[index]:.3f}"
        )
    if len(scored) > GOLD_TABLE_ROWS:
        print(f"  ... and {len(scored) - GOLD_TABLE_ROWS} more workers")


def _consolidate_boxes(args: argparse.Namespace) -> int:
    from truthflow.annotation_imports.answer_sources import import_warnings, read_box_sources
    from truthflow.consolidation.boxes import consolidate_boxes

    check_output_path(args.out, [*args.answers, args.assignments])
    images, report = read_box_sources(args.answers, args.format, args.assignments, warn=_warn)
    for line in import_warnings(report, 0, "image"):
        print(f"truthflow: {line}", file=sys.stderr)
    label_set = sorted({box.label for image in images for answer in image.answers for box in answer.boxes})
    result = consolidate_boxes(images, label_set=label_set)
    for rejected in result.rejected:
        print(f"truthflow: warning: {', '.join(map(str, args.answers))}: rejected {rejected.reason}", file=sys.stderr)
    rows: list[Sequence[object]] = []
    for image in images:
        boxes = result.boxes[image.image]
        if not boxes:
            # The crowd agreed there is nothing to box: one row with an empty label keeps the image accounted for.
            rows.append((image.image, "", "", "", "", "", ""))
        for box in boxes:
            rows.append(
                (
                    image.image,
                    box.label,
                    f"{box.left:.2f}",
                    f"{box.top:.2f}",
                    f"{box.width:.2f}",
                    f"{box.height:.2f}",
                    f"{box.confidence:.6f}",
                )
            )
    write_rows(args.out, ("image", "label", "left", "top", "width", "height", "confidence"), rows)
    n_boxes = sum(len(boxes) for boxes in result.boxes.values())
    print(f"{len(images)} images, {n_boxes} consolidated boxes, {len(result.rejected)} boxes rejected -> {args.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    # Imported here: the offline runner needs moto and matplotlib, which the consolidation commands do not.
    from truthflow.local.offline_run import DemoOptions, parse_worker_mix, print_outcome, run_offline

    options = DemoOptions(
        dataset=args.dataset,
        workers=parse_worker_mix(args.workers),
        workers_per_object=args.workers_per_object,
        seed=args.seed,
        out=args.out,
        max_items=args.max_items,
        automated_labeling=args.automated_labeling,
        gold_share=args.gold_share,
        **({"n_images": args.images} if args.images is not None else {}),
    )
    outcome = run_offline(options)
    print_outcome(outcome)
    return 0 if outcome.status == "SUCCEEDED" else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="truthflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    labels = commands.add_parser(
        "consolidate", help="consolidate class labels: item,worker,label -> item,label,confidence"
    )
    labels.add_argument(
        "--answers",
        type=Path,
        action="append",
        required=True,
        help=f"CSV with columns item,worker,label, {ANSWERS_HELP}",
    )
    labels.add_argument("--format", action="append", choices=ANSWER_FORMATS, help=FORMAT_HELP)
    labels.add_argument("--out", type=Path, required=True, help="CSV to write: item,label,confidence")
    labels.add_argument(
        "--method",
        choices=METHODS,
        default=DEFAULT_METHOD,
        help=f"default: {DEFAULT_METHOD} (the model that best predicts held-out answers)",
    )
    labels.add_argument(
        "--gold", type=Path, help="CSV with columns item,label: known answers; they fix those items and score workers"
    )
    labels.set_defaults(run=_consolidate)

    boxes = commands.add_parser("consolidate-boxes", help="consolidate bounding boxes drawn by several workers")
    boxes.add_argument(
        "--answers", type=Path, action="append", required=True, help=f"CSV: {BOX_COLUMNS_HELP}, {ANSWERS_HELP}"
    )
    boxes.add_argument("--format", action="append", choices=ANSWER_FORMATS, help=FORMAT_HELP)
    boxes.add_argument(
        "--assignments", type=Path, help="CSV: image,worker for every worker who answered, including empty answers"
    )
    boxes.add_argument(
        "--out", type=Path, required=True, help="CSV to write: image,label,left,top,width,height,confidence"
    )
    boxes.set_defaults(run=_consolidate_boxes)

    demo = commands.add_parser(
        "demo", help="run the whole pipeline offline: embedded AWS, emulated Ground Truth workforce, report"
    )
    demo.add_argument(
        "--dataset",
        default="sample",
        help="'sample' (generated pens/pencils/erasers, boxes), 'sample-classification', a crowd data set folder "
        "to replay (e.g. ../shared/crowd_datasets/boxes_caltech_pedestrians), or a Label Studio, CVAT, COCO or Ground "
        "Truth export file or folder of exports (labels imported, stand-in images, agreement instead of gold)",
    )
    demo.add_argument("--images", type=int, help="images in the generated sample (default 200)")
    demo.add_argument(
        "--workers",
        default="careful=2,sloppy=2,biased=1,spammer=1",
        help="simulated workforce mix (default careful=2,sloppy=2,biased=1,spammer=1)",
    )
    demo.add_argument(
        "--workers-per-object",
        type=int,
        help="workers who label each image, 1-9 and at most the workforce (default: the job file's 3, or the "
        "workforce when smaller)",
    )
    demo.add_argument(
        "--max-items", type=int, default=200, help="items replayed from a data set folder or an export (default 200)"
    )
    demo.add_argument(
        "--automated-labeling",
        action="store_true",
        help="people label a first batch, a model labels the images it is sure of, people the rest",
    )
    demo.add_argument(
        "--gold-share",
        type=float,
        default=0.0,
        help="share of the images given to the pipeline as gold questions (job.json gold_labels; classification "
        "only), e.g. 0.05; they are left out of the report's scores",
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="report and outputs (default demo-output)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except InputError as error:
        print(f"truthflow: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
