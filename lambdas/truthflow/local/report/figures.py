"""The report's PNG figures: label quality per method, confusion matrices, estimated vs true worker skill, and the
execution timeline.

Matplotlib draws on its Agg canvas directly (no pyplot, no display) and is imported inside the functions that draw,
so this module imports without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from truthflow.local.report.analysis import (
    IOU_THRESHOLDS,
    MAJORITY,
    PIPELINE,
    WORKER_BEST,
    WORKER_MEAN,
    _Confusion,
)
from truthflow.local.report.inputs import FAILED_STATUSES, SUCCEEDED_STATUSES, StateSpan
from truthflow.local.report.text import _METHOD_NAMES

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Bar colours of the summary's methods (pipeline emphasised) and point colours of worker kinds.
_METHOD_COLOURS = {PIPELINE: "#0072B2", MAJORITY: "#E69F00", WORKER_MEAN: "#999999", WORKER_BEST: "#56B4E9"}
_KIND_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> str:
    figure.savefig(path, format="png", dpi=100, metadata={"Software": None})
    return path.name


def _annotate_bars(axes: Axes, bars: Any, *, horizontal: bool = False) -> None:
    for bar in bars:
        value = bar.get_width() if horizontal else bar.get_height()
        if horizontal:
            axes.text(value + 0.01, bar.get_y() + bar.get_height() / 2, f"{value:.3f}", va="center", fontsize=8)
        else:
            x = bar.get_x() + bar.get_width() / 2
            axes.text(x, value + 0.01, f"{value:.2f}", ha="center", va="bottom", fontsize=7, rotation=90)


def _quality_figure(summary: Mapping[str, Any], path: Path) -> str | None:
    names = _METHOD_NAMES[summary["task_type"]]
    if summary["accuracy"] is not None:
        accuracy = summary["accuracy"]
        methods = [m for m in (PIPELINE, MAJORITY, WORKER_MEAN, WORKER_BEST) if accuracy[m] is not None]
        if not methods:
            return None
        figure = _new_figure(6.4, 0.6 + 0.45 * len(methods))
        axes = figure.add_subplot()
        values = [accuracy[m] for m in methods]
        ticks = [names[m] + (f" ({accuracy['best_worker']})" if m == WORKER_BEST else "") for m in methods]
        bars = axes.barh(range(len(methods)), values, color=[_METHOD_COLOURS[m] for m in methods], height=0.6)
        _annotate_bars(axes, bars, horizontal=True)
        axes.set_yticks(range(len(methods)), ticks)
        axes.invert_yaxis()
        axes.set_xlim(0, 1.1)
        axes.set_xlabel(f"accuracy against gold ({accuracy['n_scored']} images)")
        axes.spines[["top", "right"]].set_visible(False)
        return _save(figure, path)
    detection = summary["detection"]
    if detection["n_scored"] == 0:
        return None
    figure = _new_figure(8.0, 3.4)

    panels = figure.subplots(1, len(IOU_THRESHOLDS), sharey=True)
    metrics = ("precision", "recall", "f1")
    width = 0.8 / 4
    for axes, threshold in zip(np.atleast_1d(panels), IOU_THRESHOLDS, strict=True):
        block = detection[f"{threshold:g}"]
        for offset, method in enumerate((PIPELINE, MAJORITY, WORKER_MEAN, WORKER_BEST)):
            scores = block[method]
            if scores is None:
                continue
            label = names[method] + (f" ({detection['best_worker']})" if method == WORKER_BEST else "")
            positions = [k + (offset - 1.5) * width for k in range(len(metrics))]
            values = [scores[metric] if scores[metric] is not None else 0.0 for metric in metrics]
            bars = axes.bar(positions, values, width, color=_METHOD_COLOURS[method], label=label)
            _annotate_bars(axes, bars)
        axes.set_xticks(range(len(metrics)), ["Precision", "Recall", "F1"])
        axes.set_title(f"IoU \u2265 {threshold:g}", fontsize=10)
        axes.set_ylim(0, 1.18)
        axes.spines[["top", "right"]].set_visible(False)
    first = np.atleast_1d(panels)[0]
    first.set_ylabel(f"against gold ({detection['n_scored']} images)")
    handles, labels = first.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return _save(figure, path)


def _confusion_figure(confusions: Sequence[_Confusion], path: Path) -> str | None:
    if not confusions or all(c.counts.sum() == 0 for c in confusions):
        return None
    size = max(len(c.columns) for c in confusions)
    side = min(2.2 + 0.42 * size, 7.0)
    figure = _new_figure(side * len(confusions) + 0.6, side + 0.1)
    panels = figure.subplots(1, len(confusions), squeeze=False)[0]
    image = None
    for axes, confusion in zip(panels, confusions, strict=True):
        shares = confusion.shares()
        image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        font = 9 if size <= 8 else 6
        if size <= 15:
            for (row, column), count in np.ndenumerate(confusion.counts):
                if count:
                    colour = "white" if shares[row, column] > 0.55 else "black"
                    axes.text(column, row, f"{count:g}", ha="center", va="center", fontsize=font, color=colour)
        axes.set_xticks(range(len(confusion.columns)), confusion.columns, rotation=45, ha="right", fontsize=font)
        axes.set_yticks(range(len(confusion.rows)), confusion.rows, fontsize=font)
        axes.set_xlabel(confusion.x_label, fontsize=9)
        axes.set_ylabel("gold", fontsize=9)
        axes.set_title(confusion.title, fontsize=9)
    if image is not None:
        spurious = any(c.spurious_row for c in confusions)
        label = "share of the gold row" + (" (last row: of the column)" if spurious else "")
        figure.colorbar(image, ax=list(panels), shrink=0.7).set_label(label, fontsize=8)
    return _save(figure, path)


def _skill_figure(summary: Mapping[str, Any], path: Path) -> tuple[str | None, str]:
    """Scatter of estimated (y) against true (x) accuracy; measured-against-gold on x when true skill is unknown."""
    workers = summary["workers"]
    boxes = summary["task_type"] == "bounding-box"
    has_truth = any(stats["skill_reference"] is not None for stats in workers.values())
    x_key = "skill_reference" if has_truth else "gold_accuracy"
    if boxes and has_truth:
        x_name = "share of the worker's boxes matching a gold box and its label"
    else:
        x_name = "true accuracy (simulated workforce)" if has_truth else "accuracy measured against gold"
    points = [
        (worker, stats[x_key], stats["estimated_accuracy"], stats["kind"] or "worker")
        for worker, stats in workers.items()
        if stats[x_key] is not None and stats["estimated_accuracy"] is not None
    ]
    if not points:
        return None, x_name
    figure = _new_figure(4.8, 4.4)
    axes = figure.add_subplot()
    low = min(0.0, *(min(x, y) for _, x, y, _ in points))
    axes.plot([low, 1.0], [low, 1.0], linestyle="--", color="#888888", linewidth=1, label="estimate = truth")
    kinds = list(dict.fromkeys(kind for *_, kind in points))
    for position, kind in enumerate(kinds):
        chosen = [(x, y) for _, x, y, k in points if k == kind]
        axes.scatter(
            [x for x, _ in chosen],
            [y for _, y in chosen],
            s=36,
            color=_KIND_COLOURS[position % len(_KIND_COLOURS)],
            edgecolors="white",
            linewidths=0.5,
            label=kind,
            zorder=3,
        )
    if len(points) <= 20:
        for worker, x, y, _ in points:
            axes.annotate(worker, (x, y), xytext=(4, -3), textcoords="offset points", fontsize=7, color="#333333")
    axes.set_xlim(low - 0.02, 1.02)
    axes.set_ylim(low - 0.02, 1.02)
    axes.set_aspect("equal")
    axes.set_xlabel(x_name)
    axes.set_ylabel("estimated accuracy (pipeline)")
    if summary["skill_mean_abs_error"] is not None:
        axes.set_title(f"mean |estimated \u2212 true| = {summary['skill_mean_abs_error']:.3f}", fontsize=9)
    axes.legend(title="worker kind", fontsize=8, title_fontsize=8, loc="lower right")
    axes.spines[["top", "right"]].set_visible(False)
    return _save(figure, path), x_name


def _status_colour(status: str) -> str:
    if status in FAILED_STATUSES:
        return "#D62728"
    if status in SUCCEEDED_STATUSES:
        return "#0072B2"
    return "#999999"


def _timeline_figure(timeline: Sequence[StateSpan], path: Path) -> str | None:
    """Gantt chart: one row per state (in order of first start, top down), a bar per visit, failed ones red."""
    if not timeline:
        return None
    from matplotlib.patches import Patch

    origin = min(start for _, start, _, _ in timeline)
    total = max(end for _, _, end, _ in timeline) - origin
    names = list(dict.fromkeys(name for name, *_ in sorted(timeline, key=lambda span: span[1])))
    row = {name: position for position, name in enumerate(names)}
    figure = _new_figure(8.0, min(1.0 + 0.28 * len(names), 12.0))
    axes = figure.add_subplot()
    for name, start, end, status in timeline:
        if end - start > total * 0.003:
            axes.barh(row[name], end - start, left=start - origin, height=0.6, color=_status_colour(status))
        else:  # a state with (next to) no duration, such as a Fail or Pass state: a marker
            axes.plot([start - origin], [row[name]], marker="D", markersize=6, color=_status_colour(status))
        if len(names) <= 30:
            axes.text(
                end - origin + max(total, 1e-9) * 0.01, row[name], f"{end - start:.2f} s", va="center", fontsize=7
            )
    axes.set_yticks(range(len(names)), names, fontsize=8 if len(names) <= 25 else 6)
    axes.invert_yaxis()
    axes.set_xlim(0, total * 1.12 if total > 0 else 1.0)
    axes.set_xlabel("seconds since the first state started")
    statuses = list(dict.fromkeys(status for *_, status in timeline))
    axes.legend(
        handles=[Patch(color=_status_colour(status), label=status.lower()) for status in statuses],
        fontsize=8,
        loc="upper right",
    )
    axes.grid(axis="x", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    return _save(figure, path)


def threshold_figure(routing: Mapping[str, Any] | None, path: Path) -> str | None:
    """Quality of the accepted calibration images against the threshold, with the lower bound, the target and θ."""
    summary = routing or {}
    curve = summary.get("curve") or []
    if not curve:
        return None
    figure = _new_figure(7.5, 3.6)
    axes = figure.add_subplot()
    thetas = [step["theta"] for step in curve]
    axes.plot(thetas, [step["quality"] for step in curve], color="#0072B2", label="quality of accepted (calibration)")
    tested = [step for step in curve if step.get("lower_bound") is not None]
    if tested:
        axes.plot(
            [step["theta"] for step in tested],
            [step["lower_bound"] for step in tested],
            "o-",
            color="#D55E00",
            markersize=3,
            label=f"{summary.get('confidence_level') or 0.95:.0%} lower bound (tested)",
        )
    points = summary.get("calibration_points") or []
    if points:
        axes.scatter(
            [p["confidence"] for p in points], [p["quality"] for p in points], s=8, color="#999999", alpha=0.6,
            label="calibration images",
        )  # fmt: skip
    if summary.get("target") is not None:
        axes.axhline(summary["target"], color="#009E73", linestyle="--", label="target")
    if summary.get("theta") is not None:
        axes.axvline(summary["theta"], color="#000000", linestyle=":", label="θ")
    axes.set_xlabel("confidence threshold θ (accept machine labels with confidence ≥ θ)")
    axes.set_ylabel(str(summary.get("quality_measure") or "quality"))
    axes.set_ylim(-0.02, 1.05)
    axes.invert_xaxis()
    axes.legend(fontsize=7, loc="lower left")
    return _save(figure, path)
