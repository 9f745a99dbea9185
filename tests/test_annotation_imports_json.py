"""Export JSON parsed by pydantic-core reads exactly as the standard library reads it: same values, same errors.

pydantic-core's ``from_json`` parses exports faster than ``json.loads``; wherever it refuses a document the standard
library decides (:mod:`truthflow.annotation_imports.json_parsing`). Hostile and odd documents, checked against
``json.loads`` itself and through the CLI.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from truthflow.annotation_imports import ExportError, ExportFile, decode, read_annotation_exports
from truthflow.annotation_imports.label_studio_values import loads_cell
from truthflow.cli import main

EXPORTS = Path(__file__).parent / "exports"


def same_json(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (1 is not 1.0, -0.0 is not 0.0, NaN equals NaN), keys in the
    same order."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return repr(a) == repr(b)
    if type(a) is list:
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(same_json(a[key], b[key]) for key in a)
    return bool(a == b)


def task(image: str, result: str = "[]", extra: str = "") -> str:
    return (
        f'{{"id": 1, "data": {{"image": "{image}"{extra}}}, "annotations": '
        f'[{{"id": 7, "completed_by": 1, "result": {result}}}]}}'
    )


DOCUMENTS = {
    "duplicate keys, the last counts": b'[{"id": 1, "data": {"image": "a.jpg"}, "id": 2, "annotations": []}]',
    "NaN and infinities": b'[{"x": NaN, "y": Infinity, "z": -Infinity}]',
    "integers of any size": b"[123456789012345678901234567890, -1" + b"0" * 4299 + b"]",
    "floats": b"[0.1, 1.0, 1e5, -0.0, -0, 5e-324, 1e400, -1e400, 1e-400, 100000000000000000000000.0]",
    "escaped slashes and unicode": '["\\/data\\/upload\\/caf\\u00e9", "ü", "😀", "\\ud83d\\ude00"]'.encode(),
    "a lone surrogate escape": b'[{"image": "\\ud800.jpg"}]',
    "250 levels deep": b"[" * 250 + b"]" * 250,
    "a byte-order mark and white space": b"\xef\xbb\xbf \n\t[1, {}]\r\n",
    "a byte-order mark behind white space": b" \xef\xbb\xbf[1]",
    "a task": task("/data/upload/3/a1b2c3d4-x.jpg").encode(),
}


@pytest.mark.parametrize("data", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_documents_read_as_the_standard_library_reads_them(data):
    try:
        expected = json.loads(data.decode("utf-8-sig"))
    except ValueError:
        with pytest.raises(ExportError, match=r"doc\.json"):
            decode("doc.json", data)
        return
    decoded = decode("doc.json", data)
    assert decoded.shape == "json"
    assert same_json(decoded.document, expected)
    assert decoded.text == data.decode("utf-8-sig")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, r"deep.json: not readable JSON \(RecursionError: maximum recursion depth"),
        (b"[" + b"9" * 4301 + b"]", r"deep.json: not readable JSON \(ValueError: Exceeds the limit \(4300 digits\)"),
        (b'[{"image": "caf\xe9.jpg"}]', r"deep.json: not UTF-8 text \(byte 15\)"),
        (b'[{"image": "\xed\xa0\x80.jpg"}]', r"deep.json: not UTF-8 text \(byte 12\)"),
        (b'[\n{"id": 1},\n{"id": 2},\n]', r"deep.json line 4: not valid JSON \(Expecting value\)"),
        (b"\xef\xbb\xbf[1] [2]", r"deep.json line 1: not valid JSON \(Extra data\)"),
        (b'["a\tb"]', r"deep.json line 1: not valid JSON \(Invalid control character at\)"),
        (b"[NaN, nan]", r"deep.json line 1: not valid JSON \(Expecting value\)"),
        (b"[1,]", r"deep.json line 1: not valid JSON \(Expecting value\)"),
    ],
)
def test_unreadable_json_is_the_standard_library_error_naming_the_file(data, message):
    with pytest.raises(ExportError, match=message):
        decode("deep.json", data)


def test_several_objects_one_per_line_are_still_a_manifest():
    assert decode("gt.manifest", b'{"source-ref": "a.jpg"}\n{"source-ref": "b.jpg"}\n').shape == "json-lines"


def test_a_one_line_manifest_with_a_byte_order_mark_is_read_from_its_text():
    line = (EXPORTS / "groundtruth_output.manifest").read_bytes().splitlines()[0]
    imported = read_annotation_exports([ExportFile("one.manifest", b"\xef\xbb\xbf" + line)], task_type="bounding-box")
    assert imported.report.files[0].format == "groundtruth manifest"
    assert [(image.image, len(image.answers[0].boxes)) for image in imported.images] == [("desk_01.jpg", 2)]


@pytest.mark.parametrize(
    "cell",
    [
        '[{"x": NaN, "rectanglelabels": ["pen"]}]',
        ' {"choices": ["a\\/b", "\\ud800"]} ',
        "[1, 2",
        "[" * 5000 + "]" * 5000,
        "[" + "9" * 5000 + "]",
        "{not json}",
        "[1] [2]",
    ],
)
def test_a_csv_cell_reads_as_the_standard_library_reads_it(cell):
    try:
        expected = json.loads(cell.strip())
    except (ValueError, RecursionError):
        assert loads_cell(cell) is cell
    else:
        assert same_json(loads_cell(cell), expected)


def region(**value: Any) -> dict[str, Any]:
    return {
        "original_width": 1000,
        "original_height": 500,
        "value": {"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0, "rectanglelabels": ["pen"], **value},
        "from_name": "label",
        "to_name": "image",
        "type": "rectanglelabels",
    }


def test_a_hostile_label_studio_export_through_the_cli(tmp_path, capsys):
    """Task data only the standard library reads (a lone surrogate escape, 250 levels deep), a duplicated
    ``result`` (the last counts) and a NaN coordinate (refused, with its field): read as ``json.loads`` reads them."""
    deep = "[" * 250 + "]" * 250
    good, duplicated = json.dumps([region()]), json.dumps([region(x=50)])
    annotations = [
        f'{{"id": 1, "completed_by": 1, "result": {good}, "result": {duplicated}}}',
        f'{{"id": 2, "completed_by": 2, "result": {json.dumps([region(x=float("nan"))])}}}',
    ]
    document = (
        '[{"id": 9, "data": {"image": "/data/upload/3/a1b2c3d4-x.jpg", "meta": {"note": "\\ud800", "deep": '
        + deep
        + '}}, "annotations": ['
        + ", ".join(annotations)
        + "]}]"
    )
    export = tmp_path / "hostile.json"
    export.write_text(document)
    out = tmp_path / "boxes.csv"
    assert main(["consolidate-boxes", "--answers", str(export), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "hostile.json (label-studio JSON): 1 tasks, 1 workers, 1 answers, 1 refused" in err
    assert "hostile.json task 9 annotation 2: result[0].value.x: not a finite number: nan" in err
    (row,) = read_rows(out)
    assert (row["image"], row["label"]) == ("x.jpg", "pen")
    # The second "result" counts (x = 50 % of 1000 px), as json.loads reads it.
    assert [float(row[key]) for key in ("left", "top", "width", "height")] == pytest.approx([500, 100, 300, 200])


def test_text_utf8_cannot_write_refuses_only_its_answer(tmp_path, capsys):
    """A lone surrogate escape (valid JSON, not encodable as UTF-8) in an image name, a worker or a label refuses
    that answer with its place and field; the others are consolidated and every output stays writable."""
    tasks = [
        {"id": 1, "data": {"image": "/data/upload/3/a1b2c3d4-\ud800x.jpg"}, "annotations": [
            {"id": 1, "completed_by": 1, "result": [region()]}]},
        {"id": 2, "data": {"image": "/data/upload/3/a1b2c3d4-ok.jpg"}, "annotations": [
            {"id": 2, "completed_by": {"id": 2, "email": "\udc00@example.com"}, "result": [region()]},
            {"id": 3, "completed_by": 3, "result": [region(rectanglelabels=["p\udfffen"])]},
            {"id": 4, "completed_by": 4, "result": [region(rectanglelabels=["stylo \u00e9 \ud83d\udd8a"])]}]},
    ]  # fmt: skip
    export = tmp_path / "surrogates.json"
    export.write_text(json.dumps(tasks))  # ASCII: json.dumps writes each surrogate as a \\u escape
    out = tmp_path / "boxes.csv"
    assert main(["consolidate-boxes", "--answers", str(export), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "2 tasks, 1 workers, 1 answers, 3 refused" in err
    assert "surrogates.json task 1 annotation 1: image: is not valid Unicode" in err
    assert "surrogates.json task 2 annotation 2: worker: is not valid Unicode" in err
    assert "surrogates.json task 2 annotation 3: label: is not valid Unicode" in err
    (row,) = read_rows(out)
    assert (row["image"], row["label"]) == ("ok.jpg", "stylo é 🖊")


def test_a_box_whose_pixels_overflow_is_refused_with_its_field(tmp_path, capsys):
    huge = {**region(x=1e300), "original_width": 1e300}
    tasks = [{"id": 5, "data": {"image": "z.jpg"}, "annotations": [{"id": 1, "completed_by": 1, "result": [huge]}]}]
    export = tmp_path / "huge.json"
    export.write_text(json.dumps(tasks))
    assert main(["consolidate-boxes", "--answers", str(export), "--out", str(tmp_path / "out.csv")]) == 2
    assert "huge.json task 5 annotation 1: result[0].value: in pixels the box is not finite" in capsys.readouterr().err


def csv_region(**value: Any) -> str:
    return json.dumps([{**region(**value)["value"], "original_width": 1000, "original_height": 500}])


def test_a_hostile_label_studio_csv_export_through_the_cli(tmp_path, capsys):
    """Regions in CSV cells: NaN is read (and refused, with its field), a cell that is not JSON stays text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["annotation_id", "annotator", "id", "image", "label"])
    writer.writerow([1, "1", 9, "/data/upload/3/a1b2c3d4-y.jpg", csv_region(x=50).replace("/", "\\/")])
    writer.writerow([2, "2", 9, "/data/upload/3/a1b2c3d4-y.jpg", csv_region(x=float("nan"))])
    writer.writerow([3, "3", 9, "/data/upload/3/a1b2c3d4-y.jpg", "[{not json"])
    export = tmp_path / "hostile.csv"
    export.write_text(buffer.getvalue())
    out = tmp_path / "boxes.csv"
    assert main(["consolidate-boxes", "--answers", str(export), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "hostile.csv (label-studio CSV): 1 tasks, 2 workers, 2 answers, 1 refused" in err
    assert "hostile.csv line 3 task 9 annotation 2: label[0].value.x: not a finite number: nan" in err
    rows = read_rows(out)
    assert [row["image"] for row in rows] == ["y.jpg"]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "deep.json: not readable JSON (RecursionError"),
        (b'[{"id": 1, "data": {"image": "\xff.jpg"}, "annotations": []}]', "deep.json: not UTF-8 text (byte 30)"),
        (b'[{"id": 1, "data": {"image": "a.jpg"},\n "annotations": [,]}]', "deep.json line 2: not valid JSON"),
    ],
)
def test_unreadable_json_stops_the_cli_with_a_message_naming_the_file(tmp_path, capsys, content, message):
    export = tmp_path / "deep.json"
    export.write_bytes(content)
    out = tmp_path / "o.csv"
    assert main(["consolidate-boxes", "--answers", str(export), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
