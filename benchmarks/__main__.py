"""``make bench``: accuracy and speed of truthflow's consolidation next to its anchors, in one run.

Anchors: majority vote, Toloka crowd-kit 1.4.2 (MajorityVote, DawidSkene; run in its own environment through
``benchmarks/crowdkit_anchor.py``), a single worker and a naive clustering for boxes. Prints tables; asserts
nothing (targets are shown beside the figures).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import (
    annotation_imports,
    box_accuracy,
    groundtruth_handlers,
    import_step,
    local_tools,
    memory,
    offline_demo,
    scale,
    scale_training,
    simulated_crowds,
    threshold_guarantee,
)
from benchmarks.classification import (
    DATASETS,
    TIMED_DATASETS,
    accuracy_rows,
    gold_rows,
    synthetic_answers,
    synthetic_row,
    whole_process_rows,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASETS_ROOT = REPO.parent / "shared" / "crowd_datasets"
PARTS = (
    "accuracy", "gold", "simulated", "speed", "memory", "boxes", "handlers", "imports", "tools", "threshold", "scale",
    "import-step", "demo",
)  # fmt: skip


def run_anchor(
    anchor_python: Path, datasets_root: Path, names: list[str], synthetic_npz: Path | None, accuracy_only: bool = False
) -> dict[str, object]:
    command = [
        str(anchor_python),
        str(REPO / "benchmarks" / "crowdkit_anchor.py"),
        "--datasets-root",
        str(datasets_root),
        "--datasets",
        ",".join(names),
    ]
    if synthetic_npz is not None:
        command += ["--synthetic-npz", str(synthetic_npz)]
    if accuracy_only:
        command.append("--accuracy-only")
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, object] = json.loads(completed.stdout)
    return result


def model_name(name: object) -> str:
    """A model as the tables show it: finalists averaged read ``a + b`` (``mean of a, b`` in the result)."""
    text = str(name)
    return text.removeprefix("mean of ").replace(", ", " + ") if text.startswith("mean of ") else text


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("-|-".join("-" * w for w in widths))
    lines += [" | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def print_accuracy(ours: list[dict[str, object]], anchor: dict[str, dict[str, float]]) -> None:
    rows = []
    defaults, crowdkit_ds = [], []
    for row in ours:
        name = str(row["dataset"])
        ck = anchor.get(name, {})
        ck_mv, ck_ds = ck.get("mv_accuracy", float("nan")), ck.get("ds_accuracy", float("nan"))
        target = max(ck_mv, ck_ds) - 0.005
        auto = float(row["auto"])
        defaults.append(auto)
        crowdkit_ds.append(ck_ds)
        rows.append(
            [
                name,
                str(row["answers"]),
                f"{row['mv']:.3f}",
                str(row["ties"]),
                f"{auto:.3f}",
                model_name(row["model"]),
                f"{row['ds']:.3f}",
                f"{row['onecoin']:.3f}",
                f"{row['subtypes']:.3f}",
                f"{ck_mv:.3f}",
                f"{ck_ds:.3f}",
                f"{target:.3f}",
                "yes" if auto >= target else "NO",
            ]
        )
    mean_target = float(np.mean(crowdkit_ds)) + 0.01
    rows.append(
        [
            "mean",
            "",
            f"{np.mean([float(r['mv']) for r in ours]):.3f}",
            "",
            f"{np.mean(defaults):.4f}",
            "",
            f"{np.mean([float(r['ds']) for r in ours]):.4f}",
            f"{np.mean([float(r['onecoin']) for r in ours]):.4f}",
            f"{np.mean([float(r['subtypes']) for r in ours]):.4f}",
            "",
            f"{np.mean(crowdkit_ds):.4f}",
            f"{mean_target:.4f}",
            "yes" if np.mean(defaults) >= mean_target else "NO",
        ]
    )
    print("\n## Classification accuracy on gold items (truthflow default = auto; a + b: finalists averaged)\n")
    headers = ["dataset", "answers", "MV", "MV ties", "auto", "auto chose", "ds", "one-coin", "subtypes"]
    print(table([*headers, "ck MV", "ck DS", "target", "auto meets"], rows))
    product = next(r for r in ours if r["dataset"] == "product")
    ck_product = anchor.get("product", {})
    print(
        f"\nproduct, F1 of class 1: MV {product['mv_f1_positive']:.3f}, auto {product['auto_f1_positive']:.3f}, "
        f"ds {product['ds_f1_positive']:.3f}, one-coin {product['onecoin_f1_positive']:.3f}; "
        f"crowd-kit MV {ck_product.get('mv_f1_class1', float('nan')):.3f}, "
        f"DS {ck_product.get('ds_f1_class1', float('nan')):.3f}"
    )


def print_gold(rows: list[dict[str, object]]) -> None:
    print("\n## What 5 % gold buys (auto; scored on the gold items not given)\n")
    body = [
        [
            str(r["dataset"]),
            str(r["gold given"]),
            str(r["scored"]),
            f"{r['without']:.3f}",
            f"{r['with']:.3f}",
            f"{float(r['with']) - float(r['without']):+.3f}",
            model_name(r["model"]),
        ]
        for r in rows
    ]
    gains = [float(r["with"]) - float(r["without"]) for r in rows]
    body.append(["mean", "", "", "", "", f"{np.mean(gains):+.3f}", ""])
    print(table(["dataset", "gold given", "scored", "without gold", "with gold", "gain", "model with gold"], body))


def print_simulated(ours: list[dict[str, object]], anchor: dict[str, dict[str, float]]) -> None:
    print("\n## Simulated crowds shaped like unseen data sets (robustness check, seeds 0 and 1)\n")
    body = []
    gaps = []
    for row in ours:
        name = str(row["dataset"])
        ck = anchor.get(name, {})
        ck_mv, ck_ds = ck.get("mv_accuracy", float("nan")), ck.get("ds_accuracy", float("nan"))
        floor = max(ck_mv, ck_ds) - 0.005
        gaps.append(float(row["auto"]) - ck_ds)
        body.append(
            [
                f"{name}: {simulated_crowds.scenario_of(name).name}",
                str(row["answers"]),
                f"{row['mv']:.3f}",
                f"{row['auto']:.3f}",
                model_name(row["model"]),
                f"{ck_mv:.3f}",
                f"{ck_ds:.3f}",
                "yes" if float(row["auto"]) >= floor else "NO",
            ]
        )
    body.append(["mean auto - ck DS", "", "", f"{np.mean(gaps):+.3f}", "", "", "", ""])
    print(table(["data set", "answers", "MV", "auto", "auto chose", "ck MV", "ck DS", ">= floor"], body))


def print_speed(
    ours: list[dict[str, object]],
    anchor: dict[str, dict[str, float]],
    processes: list[dict[str, object]],
    synthetic: dict[str, object],
    anchor_synthetic: dict[str, object] | None,
) -> None:
    rows = []
    for row in ours:
        name = str(row["dataset"])
        if name not in TIMED_DATASETS:
            continue
        ck_seconds = anchor.get(name, {}).get("ds_seconds", float("nan"))
        ours_seconds = float(row["seconds"])
        ratio = ck_seconds / ours_seconds
        rows.append(
            [
                name,
                str(row["answers"]),
                f"{ours_seconds:.3f}",
                f"{ck_seconds:.3f}",
                f"{ratio:.1f}x",
                "yes" if ratio >= 20 else "NO",
            ]
        )
    print("\n## Fit time of the default method (names in, labels out; best of repeated runs) vs crowd-kit DS\n")
    print(table(["dataset", "answers", "ours s", "crowd-kit s", "speed-up", ">= 20x"], rows))
    body = []
    for row in processes:
        ratio = float(row["crowd-kit"]) / float(row["ours"])
        body.append(
            [
                str(row["dataset"]),
                f"{row['ours']:.2f}",
                f"{row['crowd-kit']:.2f}",
                f"{ratio:.1f}x",
                "yes" if ratio >= 8 else "NO",
            ]
        )
    print("\n## Whole process, CSV in and CSV out (truthflow consolidate vs crowd-kit DS in python; best of 3)\n")
    print(table(["dataset", "ours s", "crowd-kit s", "speed-up", ">= 8x"], body))
    ck_text = "not run"
    if anchor_synthetic and anchor_synthetic.get("ds_seconds") is not None:
        ck_text = f"{anchor_synthetic['ds_seconds']:.1f} s"
    print(
        f"\nsynthetic {synthetic['answers']:,} answers x 10 classes x 2,000 workers, default method on coded answers: "
        f"{synthetic['seconds']:.2f} s (chose {synthetic['model']}, accuracy {synthetic['accuracy']:.4f}; "
        f"target < 2 s); crowd-kit DS {ck_text}"
    )


def print_memory(rows: list[dict[str, object]]) -> None:
    print("\n## Peak memory (tracemalloc) where naive arrays grow with the square of the input\n")
    body = [[str(r["case"]), f"{r['peak MiB']:.1f}", f"{r['dense would need MiB']:,.0f}"] for r in rows]
    print(table(["case", "peak MiB", "labels^2 / boxes^2 arrays would need MiB"], body))


def print_boxes(rows: list[dict[str, object]]) -> None:
    print("\n## Boxes: Caltech pedestrians, gold images only\n")
    headers = ["method", "P@0.5", "R@0.5", "F1@0.5", "P@0.7", "R@0.7", "F1@0.7"]
    keys = ["precision@0.5", "recall@0.5", "f1@0.5", "precision@0.7", "recall@0.7", "f1@0.7"]
    body = [[str(r["method"]), *(f"{float(r[k]):.3f}" for k in keys)] for r in rows]
    print(table(headers, body))
    print("targets: F1@0.7 >= 0.88 and F1@0.5 >= 0.94")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--datasets-root", type=Path, default=DEFAULT_DATASETS_ROOT)
    parser.add_argument("--anchor-python", type=Path, help="python of the crowd-kit environment (.venv-bench)")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated parts to run (default all: {','.join(PARTS)})"
    )
    args = parser.parse_args()
    parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")

    print("# truthflow benchmarks", flush=True)
    anchor: dict[str, object] = {}
    synthetic_data = synthetic_answers() if "speed" in parts else None
    if args.anchor_python and parts & {"accuracy", "speed"}:
        with tempfile.TemporaryDirectory() as folder:
            npz = None
            if synthetic_data is not None:
                npz = Path(folder) / "synthetic.npz"
                np.savez(npz, **{k: v for k, v in synthetic_data.items() if k != "truth"})
            anchor = run_anchor(args.anchor_python, args.datasets_root, list(DATASETS), npz)
        print(f"crowd-kit version: {anchor.get('crowdkit_version', 'not run')}")
    datasets = anchor.get("datasets", {})
    ours = accuracy_rows(args.datasets_root) if parts & {"accuracy", "speed"} else []
    if "accuracy" in parts:
        print_accuracy(ours, datasets)
    if "gold" in parts:
        print_gold(gold_rows(args.datasets_root))
    if "simulated" in parts:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            names = simulated_crowds.write_datasets(root)
            simulated_anchor: dict[str, object] = {}
            if args.anchor_python:
                simulated_anchor = run_anchor(args.anchor_python, root, names, None, accuracy_only=True)
            print_simulated(simulated_crowds.accuracy_rows(root, names), simulated_anchor.get("datasets", {}))
    if "speed" in parts and synthetic_data is not None:
        processes = whole_process_rows(args.datasets_root, args.anchor_python)
        print_speed(ours, datasets, processes, synthetic_row(synthetic_data), anchor.get("synthetic"))
    if "memory" in parts:
        print_memory(memory.rows())
    if "boxes" in parts:
        print_boxes(box_accuracy.run(args.datasets_root))
    if "handlers" in parts:
        print("\n## Ground Truth Lambdas and converters (targets: batch < 1 s, import < 0.5 s, >= 20,000 lines/s)\n")
        print(groundtruth_handlers.table(groundtruth_handlers.run()))
    if "imports" in parts:
        print(
            f"\n## Reading tool exports into consolidation inputs ({annotation_imports.TASKS:,} tasks each; target "
            f">= {annotation_imports.TARGET:,} tasks/s; anchor: the standard library parsing the same bytes)\n"
        )
        print(annotation_imports.table_header(), flush=True)
        annotation_imports.run(progress=lambda line: print(line, flush=True))
    if "tools" in parts:
        print("\n## Offline tools (timed here, not in the tests; anchors measured in the same run)\n")
        print(local_tools.table(local_tools.run()))
    if "threshold" in parts:
        print(
            f"\n## Automated labeling: does θ keep its promise? ({threshold_guarantee.TRIALS:,} calibration draws a "
            "row; misses: share of draws whose accepted machine labels fall below the target, promised <= 5 %; "
            "anchors: a point estimate and the walk from the strictest θ, on the same draws)\n"
        )
        print(threshold_guarantee.table(threshold_guarantee.run()), flush=True)
    if "scale" in parts:
        print("\n## Consolidate whole job at 100,000 images (moto S3; capacity: a third of 15 min and of 4096 MB)\n")
        print(scale.table(scale.run()), flush=True)
        print(
            "\n## Build training data in shards, and a brought manifest's consolidation, at 100,000 and 1,000,000 "
            "images (moto S3; per Lambda call; anchor: one pass in one process; capacity: a third of 15 min and of "
            "the function's memory)\n"
        )
        print(scale_training.table(scale_training.run()), flush=True)
    if "import-step" in parts:
        print("\n## Consolidate whole job for a job that brings Label Studio exports (moto S3; same columns)\n")
        print(scale.table(import_step.run()), flush=True)
    if "demo" in parts:
        demo = offline_demo.run()
        print(
            f"\n## Offline run (make demo, default sample, warm): {demo['status']}, best of {demo['runs']} "
            f"{demo['best_seconds']:.1f} s (target < 60 s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
