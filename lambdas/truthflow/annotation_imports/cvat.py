"""CVAT for images 1.1 XML: ``<annotations>`` with ``<meta>`` and one ``<image>`` per image.

Layout (CVAT's XML format documentation and its exporter): ``<meta>`` holds ``<job>``, ``<task>`` or ``<project>``
(job, task and project exports); a job export names the job's ``<assignee>`` (``<username>``, ``<email>``).
``<image id name width height>`` (project exports add ``subset``, ``task_id``) holds ``<box label xtl ytl xbr ybr
occluded [rotation] z_order>``, ``<tag label>`` and other shapes (``<polygon>``, ``<polyline>``, ``<points>``,
``<mask>``, ``<ellipse>``, ``<cuboid>``, ``<skeleton>``), each with ``<attribute>`` children. Every image of the
task/job is exported, with no child when nothing was drawn.

Who answered: a job export with an assignee is that person (the e-mail when given, global; else the username, local
to the file); otherwise the file is one worker. A box with ``rotation`` (degrees, about its centre) becomes its
axis-aligned bounds (counted). An image without a box is an empty answer; for classification the one ``<tag>`` is
the answer (no tag: no answer, counted; several: refused). Other shapes are counted as ignored.

The XML is parsed with expat directly and refused when it has a document type declaration, so entity expansion
("billion laughs") and external entities cannot happen; CVAT never writes one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.parsers import expat

from truthflow.annotation_imports.geometry import bounds_rotated_about_center, finite_text, is_rotated
from truthflow.annotation_imports.image_names import image_file_name
from truthflow.annotation_imports.model import Answer, ExportError, ExportFile, ReadContext
from truthflow.annotation_imports.workers import worker_id
from truthflow.consolidation.boxes import Box

IGNORED_SHAPES = frozenset({"polygon", "polyline", "points", "mask", "ellipse", "cuboid", "skeleton"})
_META_KINDS = ("job", "task", "project")


class _UnsafeXmlError(Exception):
    pass


@dataclass
class _Image:
    name: str
    reference: str
    where: str
    width: float | None
    height: float | None
    boxes: list[Box] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    refused: tuple[str, str] | None = None  # (field, message) of the first problem


class _CvatReader:
    """expat callbacks building one answer per ``<image>``; state is the element path."""

    def __init__(self, file: ExportFile, context: ReadContext) -> None:
        self.file = file
        self.context = context
        self.path: list[str] = []
        self.meta_kind: str | None = None
        self.assignee: dict[str, str] = {}
        self.text: list[str] = []
        self.worker: str | None = None
        self.image: _Image | None = None
        self.n_boxes = 0
        self.answers: list[Answer] = []
        self.tracks = 0

    # -- expat handlers ----------------------------------------------------------------------------------------------

    def start(self, name: str, attributes: dict[str, str]) -> None:
        path = self.path
        depth = len(path)
        path.append(name)
        if depth == 0:
            if name != "annotations":
                raise ExportError(f"{self.file.name}: root element <{name}>, expected <annotations> (CVAT for images)")
        elif depth == 1:
            if name == "image":
                self._open_image(attributes)
            elif name == "track":
                self.tracks += 1
        elif depth == 2 and self.image is not None:
            self._shape(name, attributes)
        elif depth == 2 and path[1] == "meta" and name in _META_KINDS:
            self.meta_kind = name
        elif depth == 4 and path[1:4] == ["meta", "job", "assignee"]:
            self.text = []

    def end(self, name: str) -> None:
        path = self.path
        if len(path) == 5 and path[1:4] == ["meta", "job", "assignee"]:
            self.assignee[name] = "".join(self.text).strip()
        elif len(path) == 2 and name == "image" and self.image is not None:
            self._close_image(self.image)
            self.image = None
        path.pop()

    def characters(self, data: str) -> None:
        if len(self.path) == 5 and self.path[3] == "assignee":
            self.text.append(data)

    # -- images and shapes -------------------------------------------------------------------------------------------

    def _open_image(self, attributes: dict[str, str]) -> None:
        if self.worker is None:
            self.worker = self._worker()
        self.context.report.tasks += 1
        reference = attributes.get("name", "")
        where = f"image {reference!r}" if reference else f"image id {attributes.get('id', '?')}"
        self.n_boxes = 0
        image = _Image("", reference, where, None, None)
        self.image = image
        try:
            image.name = image_file_name(reference)
        except ValueError as error:
            image.refused = ("name", str(error))
            return
        for side in ("width", "height"):
            text = attributes.get(side)
            if text is None:
                continue
            value = finite_text(text)
            if value is None or value <= 0:
                image.refused = (side, f"not a positive number: {text!r}")
                return
            setattr(image, side, value)

    def _shape(self, name: str, attributes: dict[str, str]) -> None:
        image = self.image
        assert image is not None
        if name == "box":
            index = self.n_boxes
            self.n_boxes += 1
            if self.context.task_type == "bounding-box" and image.refused is None:
                self._box(image, index, attributes)
            elif self.context.task_type != "bounding-box":
                self.context.report.ignored["box"] += 1
        elif name == "tag":
            if self.context.task_type == "image-classification":
                label = attributes.get("label", "")
                if label:
                    image.tags.append(label)
                elif image.refused is None:
                    image.refused = ("tag.label", "missing")
            else:
                self.context.report.ignored["tag"] += 1
        elif name in IGNORED_SHAPES:
            self.context.report.ignored[name] += 1

    def _box(self, image: _Image, index: int, attributes: dict[str, str]) -> None:
        label = attributes.get("label", "")
        if not label:
            image.refused = (f"box[{index}].label", "missing")
            return
        corners = []
        for side in ("xtl", "ytl", "xbr", "ybr"):
            value = finite_text(attributes.get(side))
            if value is None:
                image.refused = (f"box[{index}].{side}", f"not a finite number: {attributes.get(side)!r}")
                return
            corners.append(value)
        left, top, right, bottom = corners
        width, height = right - left, bottom - top
        rotation = attributes.get("rotation")
        if rotation is not None:
            degrees = finite_text(rotation)
            if degrees is None:
                image.refused = (f"box[{index}].rotation", f"not a finite number: {rotation!r}")
                return
            if is_rotated(degrees):
                left, top, width, height = bounds_rotated_about_center(left, top, width, height, degrees)
                self.context.report.rotated += 1
        image.boxes.append(Box(label=label, left=left, top=top, width=width, height=height))

    def _close_image(self, image: _Image) -> None:
        report = self.context.report
        if image.refused is not None:
            report.problem(image.where, image.refused[0], image.refused[1])
            return
        worker = self.worker or self.file.name
        if self.context.task_type == "bounding-box":
            answer = Answer(image.name, image.reference, worker, image.where, boxes=image.boxes)
            answer.width, answer.height = image.width, image.height
            self.answers.append(answer)
        elif not image.tags:
            report.without_answer += 1
        elif len(set(image.tags)) > 1:
            report.problem(image.where, "tag", f"several tags {image.tags!r}; a classification answer has one label")
        else:
            self.answers.append(Answer(image.name, image.reference, worker, image.where, label=image.tags[0]))

    def _worker(self) -> str:
        email, username = self.assignee.get("email", ""), self.assignee.get("username", "")
        if self.meta_kind == "job" and (email or username):
            return worker_id(self.file.name, email or username)
        return self.file.name


def read_cvat(file: ExportFile, context: ReadContext) -> Iterator[Answer]:
    """Answers of one CVAT for images 1.1 XML file (see the module docstring)."""
    reader = _CvatReader(file, context)
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.characters
    try:
        parser.Parse(file.data, True)
    except expat.ExpatError as error:
        message = expat.errors.messages.get(error.code, str(error))
        raise ExportError(f"{file.name} line {error.lineno}: not well-formed XML ({message})") from None
    except _UnsafeXmlError as error:
        raise ExportError(f"{file.name}: {error}") from None
    except LookupError as error:  # the XML declaration names an encoding Python does not know
        raise ExportError(f"{file.name}: not readable XML ({error})") from None
    if context.report.tasks == 0 and reader.tracks:
        raise ExportError(
            f"{file.name}: a CVAT for video export ({reader.tracks} <track> elements, no <image>); "
            "export the task as 'CVAT for images 1.1'"
        )
    context.report.format = f"cvat {reader.meta_kind} export" if reader.meta_kind else "cvat"
    yield from reader.answers


def _refuse_doctype(name: str, system_id: str | None, public_id: str | None, has_internal_subset: bool) -> None:
    raise _UnsafeXmlError("a document type declaration (<!DOCTYPE>) is not allowed in a CVAT export (unsafe XML)")


def _refuse_entity(*_: object) -> None:
    raise _UnsafeXmlError("an entity declaration is not allowed in a CVAT export (unsafe XML)")
