"""Toloka crowd-kit anchor: MajorityVote and DawidSkene (library defaults) on the shared crowd datasets.

Runs only inside .venv-bench (crowd-kit 1.4.2 pins old pandas/scikit-learn/numpy), so it never imports truthflow.
Prints one JSON object to stdout; warnings and progress go to stderr.

Usage:
    python benchmarks/crowdkit_anchor.py --datasets-root PATH --datasets weather,wsd,... [--synthetic-npz FILE]
    python benchmarks/crowdkit_anchor.py --consolidate ANSWERS.csv OUT.csv   (what ``truthflow consolidate`` does, with
        crowd-kit's DawidSkene: read the CSV, fit, write item,label; for timing the whole process)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import multiprocessing as mp
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from crowdkit.aggregation import DawidSkene, MajorityVote

# crowd-kit 1.4.2 defaults (DawidSkene.n_iter / .tol attr.ib defaults); passed explicitly so the report states them.
DS_N_ITER = 100
DS_TOL = 1e-5
# Small sets are timed more often: their fits are short, so the noise of a single run is relatively larger.
LARGE_DATASET_ANSWERS = 50_000
REPEATS_LARGE, REPEATS_SMALL = 3, 5


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_answers(folder: Path) -> pd.DataFrame:
    # Item and worker ids are mixed (ints, URLs, codes): read them as strings so truth.csv joins on the same key.
    answers = pd.read_csv(folder / "answers.csv", dtype={"item": str, "worker": str, "label": int})
    return answers.rename(columns={"item": "task"})[["task", "worker", "label"]]


def load_truth(folder: Path) -> pd.Series:
    truth = pd.read_csv(folder / "truth.csv", dtype={"item": str, "label": int})
    return truth.set_index("item")["label"]


def dedup_last(answers: pd.DataFrame) -> pd.DataFrame:
    """Keep the last answer of each (task, worker) pair, in file order."""
    return answers.drop_duplicates(subset=["task", "worker"], keep="last").reset_index(drop=True)


def best_time(fit: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of `repeats` calls (the least disturbed run) and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fit()
        best = min(best, time.perf_counter() - start)
    return best, result


def accuracy(predicted: pd.Series, truth: pd.Series) -> float:
    # Gold items without a prediction count as wrong (none should exist: truth.csv lists answered items only).
    aligned = predicted.reindex(truth.index)
    return float((aligned == truth).mean())


def f1_positive(predicted: pd.Series, truth: pd.Series, positive: int = 1) -> float:
    aligned = predicted.reindex(truth.index)
    tp = int(((aligned == positive) & (truth == positive)).sum())
    fp = int(((aligned == positive) & (truth != positive)).sum())
    fn = int(((aligned != positive) & (truth == positive)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def ds_stop_reason(loss_history: list[float]) -> str:
    """Why crowd-kit's EM loop ended: it breaks as soon as the per-answer objective gains less than tol.

    Its objective adds log(prior) once per answer instead of once per item, so it is not the EM lower bound and can
    fall while EM is still improving: "objective_decreased" is an early stop, not convergence.
    """
    if len(loss_history) >= 2:
        gain = loss_history[-1] - loss_history[-2]
        if gain < 0:
            return "objective_decreased"
        if gain < DS_TOL:
            return "tol"
    return "n_iter"


def run_methods(answers: pd.DataFrame, truth: pd.Series, with_f1: bool, repeats: int | None = None) -> dict[str, Any]:
    if repeats is None:
        repeats = REPEATS_LARGE if len(answers) > LARGE_DATASET_ANSWERS else REPEATS_SMALL
    mv_seconds, mv_labels = best_time(lambda: MajorityVote().fit_predict(answers), repeats)
    ds = DawidSkene(n_iter=DS_N_ITER, tol=DS_TOL)
    ds_seconds, ds_labels = best_time(lambda: ds.fit_predict(answers), repeats)
    result: dict[str, Any] = {
        "n_answers": len(answers),
        "n_items": int(answers["task"].nunique()),
        "n_gold": len(truth),
        "repeats": repeats,
        "mv_accuracy": accuracy(mv_labels, truth),
        "ds_accuracy": accuracy(ds_labels, truth),
        "mv_seconds": mv_seconds,
        "ds_seconds": ds_seconds,
        "ds_iterations": len(ds.loss_history_),
        "ds_stop": ds_stop_reason(ds.loss_history_),
    }
    if with_f1:
        result["mv_f1_class1"] = f1_positive(mv_labels, truth)
        result["ds_f1_class1"] = f1_positive(ds_labels, truth)
    return result


def run_dataset(folder: Path, with_f1: bool) -> dict[str, Any]:
    answers, truth = load_answers(folder), load_truth(folder)
    result = run_methods(answers, truth, with_f1)
    deduped = dedup_last(answers)
    result["duplicate_rows"] = len(answers) - len(deduped)
    result["dedup"] = run_methods(deduped, truth, with_f1)
    return result


def fit_synthetic(npz_path: str, channel: Any) -> None:
    """Child process: fit MV and DS once on the synthetic answers and send the measurements back."""
    with np.load(npz_path) as arrays:
        answers = pd.DataFrame({"task": arrays["items"], "worker": arrays["workers"], "label": arrays["labels"]})
    mv_seconds, _ = best_time(lambda: MajorityVote().fit_predict(answers), 1)
    ds = DawidSkene(n_iter=DS_N_ITER, tol=DS_TOL)
    ds_seconds, _ = best_time(lambda: ds.fit_predict(answers), 1)
    channel.send(
        {
            "n_answers": len(answers),
            "n_items": int(answers["task"].nunique()),
            "n_workers": int(answers["worker"].nunique()),
            "n_classes": int(answers["label"].nunique()),
            "mv_seconds": mv_seconds,
            "ds_seconds": ds_seconds,
            "ds_iterations": len(ds.loss_history_),
            "ds_stop": ds_stop_reason(ds.loss_history_),
        }
    )


def receive(receiver: Any) -> dict[str, Any] | None:
    # A child that died sends nothing: the pipe reads as closed.
    try:
        return dict(receiver.recv())
    except EOFError:
        return None


def run_synthetic(npz_path: str, timeout: float) -> dict[str, Any]:
    # A separate process can be killed at the deadline; a pandas fit in this process could not be interrupted.
    receiver, sender = mp.Pipe(duplex=False)
    child = mp.get_context("fork").Process(target=fit_synthetic, args=(npz_path, sender))
    child.start()
    sender.close()
    ready = receiver.poll(timeout)
    result = receive(receiver) if ready else None
    if child.is_alive():
        child.terminate()
    child.join()
    if result is None:
        note = f"crowd-kit DS did not finish within {timeout:.0f} s" if not ready else "fit failed (see stderr)"
        return {"ds_seconds": None, "ds_iterations": None, "note": note}
    return result


def consolidate_file(answers_path: Path, out_path: Path) -> None:
    """The command-line job done with crowd-kit: answers CSV in, ``item,label`` CSV out."""
    answers = pd.read_csv(answers_path, dtype={"item": str, "worker": str, "label": str})
    labels = DawidSkene(n_iter=DS_N_ITER, tol=DS_TOL).fit_predict(answers.rename(columns={"item": "task"}))
    labels.rename("label").rename_axis("item").to_frame().to_csv(out_path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consolidate", nargs=2, type=Path, metavar=("ANSWERS", "OUT"))
    parser.add_argument("--datasets-root", type=Path)
    parser.add_argument("--datasets", default="", help="comma-separated dataset folder names")
    parser.add_argument("--accuracy-only", action="store_true", help="one run per method, no de-duplicated rerun")
    parser.add_argument("--synthetic-npz", help="npz with int arrays items, workers, labels")
    parser.add_argument("--synthetic-timeout", type=float, default=600.0, help="seconds before the DS fit is dropped")
    parser.add_argument("--f1-datasets", default="product", help="datasets that also get F1 of class 1")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.consolidate:
        consolidate_file(*args.consolidate)
        return
    f1_names = {name for name in args.f1_datasets.split(",") if name}
    report: dict[str, Any] = {
        "crowdkit_version": importlib.metadata.version("crowd-kit"),
        "versions": {name: importlib.metadata.version(name) for name in ("pandas", "numpy", "scikit-learn")},
        "settings": {"ds_n_iter": DS_N_ITER, "ds_tol": DS_TOL, "timing": "best of 3 if > 50,000 answers, else 5"},
        "datasets": {},
        "synthetic": None,
    }
    for name in (name for name in args.datasets.split(",") if name):
        log(f"crowd-kit anchor: {name}")
        folder = args.datasets_root / name
        if args.accuracy_only:
            report["datasets"][name] = run_methods(dedup_last(load_answers(folder)), load_truth(folder), False, 1)
        else:
            report["datasets"][name] = run_dataset(folder, name in f1_names)
    if args.synthetic_npz:
        log(f"crowd-kit anchor: synthetic {args.synthetic_npz}")
        report["synthetic"] = run_synthetic(args.synthetic_npz, args.synthetic_timeout)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
