"""One class index for training, shared by every output format and merged across labeling jobs by name.

Training formats want successive class indices starting at 0 (SageMaker Object Detection and Image Classification
say so for ``.lst`` and JSON annotations; YOLO assumes it). Ground Truth's ``class_id`` is a label's index in *its own
job's* label file, so two jobs disagree on ids and a job whose images use only classes 0 and 5 leaves gaps. Converters
therefore work with class *names* and map them through a :class:`ClassIndex`.

Merge order is first-seen: the first job's classes in its own order, then each later job's new classes in its order.
Adding a job later appends classes and never renumbers existing ones, so earlier models' outputs keep their meaning.
Names are matched exactly (case and inner spaces matter; surrounding whitespace is ignored).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence


class ClassIndex:
    """An ordered set of class names; ``index_of(name)`` is the training class index."""

    __slots__ = ("_index", "_names")

    def __init__(self, names: Iterable[str]) -> None:
        ordered: list[str] = []
        index: dict[str, int] = {}
        for position, raw in enumerate(names, start=1):
            if not isinstance(raw, str) or not raw.strip():
                raise ValueError(f"class name {position}: expected a non-empty string, got {raw!r}")
            name = raw.strip()
            if any(character in name for character in "\n\r\t"):
                raise ValueError(f"class name {name!r} contains a line break or tab (class files are one name a line)")
            if name in index:
                raise ValueError(f"class name {name!r} appears twice in {[*ordered, name]}")
            index[name] = len(ordered)
            ordered.append(name)
        self._names = tuple(ordered)
        self._index = index

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip() in self._index

    def __repr__(self) -> str:
        return f"ClassIndex({list(self._names)!r})"

    def index_of(self, name: str) -> int:
        """The class index of ``name``; a ``ValueError`` listing the classes when it is not one of them."""
        found = self._index.get(name)
        if found is None:
            found = self._index.get(name.strip())
        if found is None:
            raise ValueError(f"class {name!r} is not in the class list {list(self._names)}")
        return found


def merge_class_names(*name_lists: Iterable[str]) -> list[str]:
    """Union of several jobs' class lists in first-seen order (see the module docstring)."""
    merged: dict[str, None] = {}
    for names in name_lists:
        if isinstance(names, str):
            raise ValueError("each class list must be a list of names, not one string")
        for name in names:
            merged.setdefault(name.strip(), None)
    return list(ClassIndex(merged).names)


def ordered_by_source_id(names_with_ids: Iterable[tuple[str, int | None]]) -> list[str]:
    """Distinct names of one job, ordered by the job's own ``class_id`` (names without an id follow, in first-seen
    order). Used when a job's label file is not at hand and its classes are collected from the manifest."""
    best: dict[str, tuple[int, int]] = {}
    for position, (name, class_id) in enumerate(names_with_ids):
        key = (class_id if class_id is not None else 1 << 62, position)
        if name not in best or key < best[name]:
            best[name] = key
    return sorted(best, key=lambda name: best[name])


def class_list_text(class_index: ClassIndex | Sequence[str]) -> str:
    """The class-names file: one name per line, in class-index order (YOLO ``classes.txt`` / darknet ``.names``)."""
    return "".join(f"{name}\n" for name in class_index)
