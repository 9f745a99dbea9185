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

from benchmarks import box_accuracy, groundtruth_handlers, local_tools, offline_demo, scale
from benchmarks.classification import (
    DATASETS,
    TIMED_DATASETS,
    accuracy_rows,
    synthetic_answers,
    synthetic_row,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASETS_ROOT = REPO.parent / "shared" / "crowd_datasets"


def run_anchor(anchor_python: Path, datasets_root: Path, synthetic_npz: Path | None) -> dict[str, object]:
    command = [
        str(anchor_python),
        str(REPO / "benchmarks" / "crowdkit_anchor.py"),
        "--datasets-root",
        str(datasets_root),
        "--datasets",
        ",".join(DATASETS),
    ]
    if synthetic_npz is not None:
        command += ["--synthetic-npz", str(synthetic_npz)]
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, object] = json.loads(completed.stdout)
    return result


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("-|-".join("-" * w for w in widths))
    lines += [" | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def print_accuracy(ours: list[dict[str, object]], anchor: dict[str, dict[str, float]]) -> None:
    rows = []
    best_of_ours, crowdkit_ds = [], []
    for row in ours:
        name = str(row["dataset"])
        ck = anchor.get(name, {})
        ck_mv, ck_ds = ck.get("mv_accuracy", float("nan")), ck.get("ds_accuracy", float("nan"))
        target = max(ck_mv, ck_ds) - 0.005
        ds = float(row["ds"])
        best_of_ours.append(ds)
        crowdkit_ds.append(ck_ds)
        rows.append(
            [
                name,
                str(row["answers"]),
                f"{row['mv']:.3f}",
                f"{ds:.3f}",
                f"{row['onecoin']:.3f}",
                f"{ck_mv:.3f}",
                f"{ck_ds:.3f}",
                f"{target:.3f}",
                "yes" if ds >= target else "NO",
            ]
        )
    rows.append(
        [
            "mean",
            "",
            f"{np.mean([float(r['mv']) for r in ours]):.3f}",
            f"{np.mean(best_of_ours):.3f}",
            f"{np.mean([float(r['onecoin']) for r in ours]):.3f}",
            "",
            f"{np.mean(crowdkit_ds):.3f}",
            f"{np.mean(crowdkit_ds) + 0.01:.3f}",
            "yes" if np.mean(best_of_ours) >= np.mean(crowdkit_ds) + 0.01 else "NO",
        ]
    )
    print("\n## Classification accuracy on gold items (truthflow default = ds)\n")
    print(table(["dataset", "answers", "MV", "DS", "one-coin", "ck MV", "ck DS", "target", "DS meets"], rows))
    product = next(r for r in ours if r["dataset"] == "product")
    ck_product = anchor.get("product", {})
    print(
        f"\nproduct, F1 of class 1: MV {product['mv_f1_positive']:.3f}, DS {product['ds_f1_positive']:.3f}, "
        f"one-coin {product['onecoin_f1_positive']:.3f}; "
        f"crowd-kit MV {ck_product.get('mv_f1_class1', float('nan')):.3f}, "
        f"DS {ck_product.get('ds_f1_class1', float('nan')):.3f}"
    )


def print_speed(
    ours: list[dict[str, object]],
    anchor: dict[str, dict[str, float]],
    synthetic: dict[str, object],
    anchor_synthetic: dict[str, object] | None,
) -> None:
    rows = []
    for row in ours:
        name = str(row["dataset"])
        if name not in TIMED_DATASETS:
            continue
        ck = anchor.get(name, {})
        ck_seconds = ck.get("ds_seconds", float("nan"))
        ours_seconds = float(row["ds_seconds"])
        ratio = ck_seconds / ours_seconds
        rows.append(
            [
                name,
                str(row["answers"]),
                f"{ours_seconds:.3f}",
                f"{ck_seconds:.3f}",
                str(ck.get("ds_iterations", "?")),
                f"{ratio:.1f}x",
                "yes" if ratio >= 20 else "NO",
            ]
        )
    print("\n## Dawid-Skene fit time, best of repeated runs (ours includes coding names and de-duplication)\n")
    print(table(["dataset", "answers", "ours s", "crowd-kit s", "ck iterations", "speed-up", ">= 20x"], rows))
    ck_text = "not run"
    if anchor_synthetic and anchor_synthetic.get("ds_seconds") is not None:
        ck_text = f"{anchor_synthetic['ds_seconds']:.1f} s"
    print(
        f"\nsynthetic {synthetic['answers']:,} answers x 10 classes x 2,000 workers: ours {synthetic['seconds']:.2f} s "
        f"({synthetic['iterations']} EM iterations, converged={synthetic['converged']}, accuracy "
        f"{synthetic['accuracy']:.4f}; target < 2 s); crowd-kit DS {ck_text}"
    )


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
    args = parser.parse_args()

    print("# truthflow benchmarks", flush=True)
    ours = accuracy_rows(args.datasets_root)
    synthetic_data = synthetic_answers()
    synthetic = synthetic_row(synthetic_data)
    anchor: dict[str, object] = {}
    if args.anchor_python:
        with tempfile.TemporaryDirectory() as folder:
            npz = Path(folder) / "synthetic.npz"
            np.savez(npz, **{k: v for k, v in synthetic_data.items() if k != "truth"})
            anchor = run_anchor(args.anchor_python, args.datasets_root, npz)
    datasets = anchor.get("datasets", {})
    print(f"crowd-kit version: {anchor.get('crowdkit_version', 'not run')}")
    print_accuracy(ours, datasets)
    print_speed(ours, datasets, synthetic, anchor.get("synthetic"))
    print_boxes(box_accuracy.run(args.datasets_root))
    print("\n## Ground Truth Lambdas and converters (targets: batch < 1 s, import < 0.5 s, >= 20,000 lines/s)\n")
    print(groundtruth_handlers.table(groundtruth_handlers.run()))
    print("\n## Offline tools (timed here, not in the tests; anchors measured in the same run)\n")
    print(local_tools.table(local_tools.run()))
    print("\n## Whole-job steps at 100,000 images (moto S3; capacity: a third of 15 min and of 3008 MB)\n")
    print(scale.table(scale.run()), flush=True)
    demo = offline_demo.run()
    print(
        f"\n## Offline run (make demo, default sample, warm): {demo['status']}, best of {demo['runs']} "
        f"{demo['best_seconds']:.1f} s (target < 60 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
