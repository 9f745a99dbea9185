"""Agreement between annotators (the report's measure when there is no gold): the kappas against published worked
examples and hand counts, and the box F1 on small cases whose matches are known."""

from __future__ import annotations

import pytest

from truthflow.groundtruth.output_manifest import LabeledBox
from truthflow.local.report import ReportInputs, summarize
from truthflow.local.report.agreement import box_f1, cohen_kappa, fleiss_kappa


def test_fleiss_kappa_of_the_worked_example_of_fleiss_1971():
    # 10 subjects, 14 raters, 5 categories (the example Wikipedia's "Fleiss' kappa" article works through): 0.210.
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]  # fmt: skip
    items = [[str(category) for category, count in enumerate(row) for _ in range(count)] for row in table]
    assert fleiss_kappa(items) == pytest.approx(0.20993, abs=5e-5)


def test_fleiss_kappa_with_unequal_raters_averages_the_items_agreement():
    # P_i: 1/3, 1, 1/3, 1 -> 2/3; shares over the 11 answers: pen 5, pencil 4, eraser 2 -> P_e = 45/121.
    items = [["pen", "pen", "pencil"], ["pencil"] * 3, ["eraser", "pen", "eraser"], ["pen", "pen"], ["pen"]]
    chance = 45 / 121
    assert fleiss_kappa(items) == pytest.approx((2 / 3 - chance) / (1 - chance))
    assert fleiss_kappa([["a"], ["b"]]) is None  # no item with two raters
    assert fleiss_kappa([["a", "a"], ["a", "a"]]) is None  # chance agreement 1: undefined


def test_cohen_kappa_of_a_two_by_two_table():
    # 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15 -> p_o 0.7, p_e 0.5, kappa 0.4.
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)
    assert cohen_kappa(["a", "b"], ["a", "b"]) == pytest.approx(1.0)
    assert cohen_kappa([], []) is None and cohen_kappa(["a"], ["a"]) is None


def box(label: str, left: float, top: float = 0.0, width: float = 10.0, height: float = 10.0) -> LabeledBox:
    return LabeledBox(label, left, top, width, height, None)


def test_box_f1_matches_one_to_one_by_label_at_half_overlap():
    assert box_f1([], []) == (1.0, [])  # both say nothing is there
    assert box_f1([box("pen", 0)], []) == (0.0, [])
    f1, ious = box_f1([box("pen", 0), box("pen", 50)], [box("pen", 1), box("pencil", 50)])
    assert f1 == pytest.approx(0.5) and ious == [pytest.approx(90 / 110)]  # the pencil does not match a pen
    f1, _ = box_f1([box("pen", 0)], [box("pen", 6)])  # IoU 40 / 160 < 0.5
    assert f1 == 0.0


def test_the_report_shows_agreement_only_without_gold():
    answers = {
        "a.jpg": {"w1": "pen", "w2": "pen", "w3": "pencil"},
        "b.jpg": {"w1": "pencil", "w2": "pencil", "w3": "pencil"},
        "c.jpg": {"w1": "pen", "w2": "pencil"},
    }
    consolidated = {"a.jpg": {"label": "pen", "confidence": 0.9}, "b.jpg": {"label": "pencil", "confidence": 0.99},
                    "c.jpg": {"label": "pen", "confidence": 0.6}}  # fmt: skip
    inputs = ReportInputs("image-classification", ["pen", "pencil"], {}, answers, consolidated)
    agreement = summarize(inputs)["agreement"]
    assert agreement["n_multi_annotated"] == 3
    assert agreement["annotators"]["w1"]["agreement_with_consolidated"] == 1.0
    assert agreement["annotators"]["w3"]["agreement_with_consolidated"] == pytest.approx(0.5)
    [w1_w2] = [pair for pair in agreement["pairs"] if pair["annotators"] == ["w1", "w2"]]
    assert w1_w2["n_shared"] == 3 and w1_w2["agreement"] == pytest.approx(2 / 3)
    with_gold = ReportInputs("image-classification", ["pen", "pencil"], {"a.jpg": "pen"}, answers, consolidated)
    assert summarize(with_gold)["agreement"] is None


def test_box_agreement_per_annotator_and_pair():
    answers = {
        "a.jpg": {"w1": [_dict(box("pen", 0))], "w2": [_dict(box("pen", 1))], "w3": []},
        "b.jpg": {"w1": [], "w2": [], "w3": []},
    }
    consolidated = {"a.jpg": [_dict(box("pen", 0))], "b.jpg": []}
    agreement = summarize(ReportInputs("bounding-box", ["pen"], {}, answers, consolidated))["agreement"]
    assert agreement["annotators"]["w1"]["f1_with_consolidated"] == 1.0
    assert agreement["annotators"]["w3"]["f1_with_consolidated"] == pytest.approx(0.5)  # a miss, then agreeing on b
    # a.jpg: pairs 1, 0, 0 -> 1/3; b.jpg: both empty -> 1; overall (1/3 + 1) / 2.
    assert agreement["overall"] == pytest.approx(2 / 3)


def _dict(found: LabeledBox) -> dict[str, object]:
    return {"label": found.label, "left": found.left, "top": found.top, "width": found.width, "height": found.height}
