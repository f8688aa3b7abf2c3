"""Face datasets in the shared layout and the official WIDER FACE ground truth.

A dataset folder holds ``images/<name>``, ``labels.txt`` in the WIDER FACE ground-truth text format
and, optionally, ``splits/{easy,medium,hard}.txt`` (per image, the 0-based indices of the faces that
count in each difficulty setting), ``splits/folds.txt`` (``<name> <fold>`` per image) and
``image_sizes.tsv`` (a header with ``path``, ``width`` and ``height`` columns). Every reader here
returns the same :class:`FaceDataset` of :class:`Sample`, boxes converted once to the canonical
float32 ``x1, y1, x2, y2`` pixels (``x2 = x + w``).

Degenerate ground truth is kept, as the official evaluation keeps it: every annotated row is a box,
including WIDER's zero-size (``w = 0`` or ``h = 0``), negative-size and all-zero placeholder rows
(the official files give the four face-less validation images one ``0 0 0 0`` row). The keep masks,
not the boxes, decide what counts; datasets without ``splits/`` count every row in every setting.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

import numpy as np
import torch
from torch import Tensor

from crface._optional import require
from crface.imageio import load_image
from crface.ops import convert_boxes
from crface.paths import shared_path

SETTINGS = ("easy", "medium", "hard")
"""The official WIDER FACE difficulty settings, in the order results are reported."""

ALL = "all"
"""The setting in which every ground-truth row counts (datasets without difficulty splits)."""


@dataclass(frozen=True, eq=False, repr=False)
class Sample:
    """One annotated image.

    Attributes:
        name: the image path exactly as written in the labels (``"0--Parade/0_Parade_x.jpg"``).
        image_path: where the image file is (it may not exist for annotation-only sets).
        boxes: ``Tensor[M, 4]`` float32 ``x1, y1, x2, y2`` pixels, one row per annotation,
            degenerate rows included.
        keep: for each of ``"easy"``, ``"medium"``, ``"hard"``, a ``Tensor[M]`` bool mask of the
            faces that count in that setting (all ``True`` when the dataset has no splits).
        fold: the cross-validation fold of the image, or ``None``.
        image_size: ``(height, width)`` of the stored image when cheaply known, else ``None``.

    Example:
        >>> s = Sample("a.jpg", Path("images/a.jpg"), torch.tensor([[1.0, 2, 11, 22]]))
        >>> len(s), s.keep_mask("hard").tolist(), s.keep_mask("all").tolist()
        (1, [True], [True])
    """

    name: str
    image_path: Path
    boxes: Tensor
    keep: Mapping[str, Tensor] = field(default_factory=dict)
    fold: int | None = None
    image_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        boxes = torch.as_tensor(self.boxes, dtype=torch.float32)
        if boxes.numel() == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"{self.name}: boxes must have shape (M, 4); got {tuple(boxes.shape)}")
        m = boxes.shape[0]
        keep = {}
        for setting in SETTINGS:
            mask = self.keep.get(setting)
            mask = torch.ones(m, dtype=torch.bool) if mask is None else torch.as_tensor(mask)
            if mask.dtype != torch.bool or mask.shape != (m,):
                raise ValueError(
                    f"{self.name}: keep[{setting!r}] must be a bool mask of shape ({m},); "
                    f"got {mask.dtype} {tuple(mask.shape)}"
                )
            keep[setting] = mask
        extra = set(self.keep) - set(SETTINGS)
        if extra:
            raise ValueError(
                f"{self.name}: unknown keep settings {sorted(extra)}; expected {SETTINGS}"
            )
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "keep", keep)
        object.__setattr__(self, "image_path", Path(self.image_path))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __repr__(self) -> str:
        kept = ", ".join(f"{s}={int(m.sum())}" for s, m in self.keep.items())
        return f"Sample({self.name!r}, faces={len(self)}, keep=({kept}), fold={self.fold})"

    def keep_mask(self, setting: str) -> Tensor:
        """``Tensor[M]`` bool: the faces counting in ``setting`` (``"all"``: every row).

        Raises:
            ValueError: for an unknown setting name.
        """
        if setting == ALL:
            return torch.ones(len(self), dtype=torch.bool)
        if setting not in self.keep:
            raise ValueError(f"unknown setting {setting!r}; expected one of {(*SETTINGS, ALL)}")
        return self.keep[setting]


class FaceDataset(Sequence[Sample]):
    """An ordered collection of :class:`Sample` with their root folder.

    Args:
        samples: the samples; names must be unique.
        root: the dataset folder (``None`` for annotation-only sets).
        name: a display name (default: the root folder's name).
        has_splits: whether the keep masks come from real difficulty splits (all three).
        splits: the difficulty settings whose keep masks are real, when only some are (the
            others are not reported, and :func:`crface.eval.evaluate` refuses them); overrides
            ``has_splits``.

    Example:
        >>> ds = FaceDataset([Sample("a.jpg", "a.jpg", torch.zeros(0, 4), fold=0),
        ...                   Sample("b.jpg", "b.jpg", torch.zeros(0, 4), fold=1)], name="toy")
        >>> train, test = ds.split_folds(1)
        >>> len(ds), ds.settings, train.names, test.names
        (2, ('all',), ['a.jpg'], ['b.jpg'])
    """

    def __init__(
        self,
        samples: Iterable[Sample],
        *,
        root: str | Path | None = None,
        name: str | None = None,
        has_splits: bool = False,
        splits: Sequence[str] | None = None,
    ) -> None:
        self._samples = tuple(samples)
        self.root = None if root is None else Path(root)
        self.name = name or (self.root.name if self.root is not None else "dataset")
        self.splits = tuple(SETTINGS if splits is None and has_splits else splits or ())
        unknown = set(self.splits) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown splits {sorted(unknown)}; expected some of {SETTINGS}")
        self.has_splits = bool(self.splits)
        self._index: dict[str, int] = {}
        for i, s in enumerate(self._samples):
            if not isinstance(s, Sample):
                raise TypeError(f"samples must be Sample objects; got {type(s).__name__} at {i}")
            if s.name in self._index:
                raise ValueError(f"duplicate image name {s.name!r} in dataset {self.name!r}")
            self._index[s.name] = i

    @property
    def settings(self) -> tuple[str, ...]:
        """The settings worth reporting: the difficulty splits it holds, else ``("all",)``."""
        return self.splits or (ALL,)

    @property
    def names(self) -> list[str]:
        """The sample names, in order."""
        return [s.name for s in self._samples]

    @property
    def num_faces(self) -> int:
        """The number of ground-truth rows over all images."""
        return sum(len(s) for s in self._samples)

    @property
    def folds(self) -> tuple[int, ...]:
        """The distinct fold ids, sorted (empty when the dataset has no folds)."""
        return tuple(sorted({s.fold for s in self._samples if s.fold is not None}))

    def __len__(self) -> int:
        return len(self._samples)

    @overload
    def __getitem__(self, item: int) -> Sample: ...

    @overload
    def __getitem__(self, item: slice) -> FaceDataset: ...

    def __getitem__(self, item: int | slice) -> Sample | FaceDataset:
        if isinstance(item, slice):
            return self._derive(self._samples[item])
        return self._samples[item]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self._samples)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return item in self._index
        return item in self._samples

    def __repr__(self) -> str:
        return (
            f"FaceDataset(name={self.name!r}, images={len(self)}, faces={self.num_faces}, "
            f"settings={self.settings}, folds={len(self.folds)})"
        )

    def by_name(self, name: str) -> Sample:
        """The sample called ``name``.

        Raises:
            KeyError: naming the missing image.
        """
        if name not in self._index:
            raise KeyError(f"no image {name!r} in dataset {self.name!r}")
        return self._samples[self._index[name]]

    def load_image(self, i: int) -> np.ndarray:
        """The ``i``-th image as an ``HxWx3`` uint8 RGB array.

        Raises:
            FileNotFoundError: the image file does not exist (annotation-only sets).
        """
        return load_image(self._samples[i].image_path)

    def subset(self, selector: Iterable[int] | Callable[[Sample], bool]) -> FaceDataset:
        """A dataset of the selected samples (in the order given, or dataset order for a predicate).

        Args:
            selector: integer indices, or a predicate ``Sample -> bool``.

        Example:
            >>> ds = FaceDataset([Sample(n, n, torch.zeros(0, 4)) for n in "abc"])
            >>> ds.subset([2, 0]).names, ds.subset(lambda s: s.name != "b").names
            (['c', 'a'], ['a', 'c'])
        """
        if callable(selector):
            return self._derive(s for s in self._samples if selector(s))
        return self._derive(self._samples[int(i)] for i in selector)

    def split_folds(self, test_fold: int) -> tuple[FaceDataset, FaceDataset]:
        """``(train, test)``: the images of fold ``test_fold`` against all other folds.

        Raises:
            ValueError: the dataset has no folds, or ``test_fold`` is not one of them.
        """
        if not self.folds:
            raise ValueError(f"dataset {self.name!r} has no folds (splits/folds.txt)")
        if test_fold not in self.folds:
            raise ValueError(
                f"fold {test_fold!r} not in dataset {self.name!r}; folds are {self.folds}"
            )
        test = self.subset(lambda s: s.fold == test_fold)
        return self.subset(lambda s: s.fold != test_fold), test

    def _derive(self, samples: Iterable[Sample]) -> FaceDataset:
        return FaceDataset(samples, root=self.root, name=self.name, splits=self.splits)


def hash_fold(name: str, k: int = 5) -> int:
    """A stable fold in ``[0, k)`` derived from an image name, for sets without ``folds.txt``.

    crface holds out ``hash_fold(name) == 4`` of the sets without folds for cross-dataset
    evaluation, so that training and benchmarks agree on the split.

    Example:
        >>> hash_fold("a/b.jpg")
        1
    """
    return zlib.crc32(name.encode("utf-8")) % k


def load_dataset(root: str | Path) -> FaceDataset:
    """Load a dataset folder in the shared layout (see the module docstring).

    Args:
        root: the dataset folder, or the bare name of a set under ``shared/data``
            (``"wider_val200"``).

    Returns:
        The dataset in ``labels.txt`` order; difficulty masks from ``splits/`` when present;
        folds from ``splits/folds.txt``, or :func:`hash_fold` of each name for sets without it.

    Raises:
        FileNotFoundError: naming the missing folder or ``labels.txt``.
        ValueError: naming file and line of malformed labels, splits, folds or sizes.

    Example:
        >>> ds = load_dataset("wider_val200")                       # doctest: +SKIP
        >>> len(ds), ds.num_faces, ds.settings                      # doctest: +SKIP
        (200, 4372, ('easy', 'medium', 'hard'))
    """
    root = _resolve_root(root)
    rows = _parse_labels(root / "labels.txt")
    counts = {name: len(xywh) for name, xywh, _ in rows}
    split_dir = root / "splits"
    present = [s for s in SETTINGS if (split_dir / f"{s}.txt").is_file()]
    if present and len(present) != len(SETTINGS):
        missing = [str(split_dir / f"{s}.txt") for s in SETTINGS if s not in present]
        raise FileNotFoundError(f"incomplete difficulty splits: missing {', '.join(missing)}")
    keeps = {s: _parse_split(split_dir / f"{s}.txt", counts) for s in present}
    folds_file = split_dir / "folds.txt"
    folds = _parse_folds(folds_file, counts) if folds_file.is_file() else {}
    sizes_file = root / "image_sizes.tsv"
    sizes = _parse_sizes(sizes_file, counts) if sizes_file.is_file() else {}
    samples = [
        Sample(
            name,
            root / "images" / name,
            _xywh_to_xyxy(xywh),
            {s: keeps[s][name] for s in present},
            folds.get(name) if folds_file.is_file() else hash_fold(name),
            sizes.get(name),
        )
        for name, xywh, _ in rows
    ]
    return FaceDataset(samples, root=root, has_splits=bool(present))


def load_wider_txt(path: str | Path, images_dir: str | Path | None = None) -> FaceDataset:
    """Read an official ``wider_face_*_bbx_gt.txt`` (no difficulty settings: every row counts).

    Args:
        path: the ground-truth text file.
        images_dir: the folder holding ``<event>/<file>.jpg`` (default: ``images/`` beside the
            file); it need not exist.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: naming the line of malformed input.
    """
    path = Path(path)
    images = path.parent / "images" if images_dir is None else Path(images_dir)
    samples = [Sample(n, images / n, _xywh_to_xyxy(b)) for n, b, _ in _parse_labels(path)]
    return FaceDataset(samples, root=None, name=path.stem)


def load_wider_mat(gt_dir: str | Path, images_dir: str | Path | None = None) -> FaceDataset:
    """Read the official evaluation files ``wider_{face,easy,medium,hard}_val.mat``.

    Boxes come from ``face_bbx_list`` of ``wider_face_val.mat``; each setting's ``gt_list`` (1-based
    face indices) becomes its keep mask. Names are ``<event>/<file>.jpg`` as in the text file.
    A missing difficulty file leaves its setting out of :attr:`FaceDataset.settings`, with a
    warning naming it.

    Args:
        gt_dir: the folder holding the four files (or a folder with them under ``ground_truth/``).
        images_dir: the folder holding ``<event>/<file>.jpg`` (default: ``images/`` beside the
            files).

    Raises:
        FileNotFoundError: ``wider_face_val.mat`` is missing (naming its path).
        ImportError: scipy is not installed.
        ValueError: inconsistent contents (naming the file and image).
    """
    gt_dir = Path(gt_dir)
    if not (gt_dir / "wider_face_val.mat").is_file() and (gt_dir / "ground_truth").is_dir():
        gt_dir = gt_dir / "ground_truth"
    images = gt_dir / "images" if images_dir is None else Path(images_dir)
    sio = require("scipy.io", "reading WIDER .mat files")
    if not (gt_dir / "wider_face_val.mat").is_file():
        raise FileNotFoundError(
            f"WIDER ground-truth file not found: {gt_dir / 'wider_face_val.mat'}"
        )
    splits = [s for s in SETTINGS if (gt_dir / f"wider_{s}_val.mat").is_file()]
    if len(splits) < len(SETTINGS):
        missing = [f"wider_{s}_val.mat" for s in SETTINGS if s not in splits]
        warnings.warn(
            f"{gt_dir} lacks {', '.join(missing)}: those settings are not scored "
            f"(the dataset reports {tuple(splits) or ('all',)})",
            stacklevel=2,
        )
    mats = {k: sio.loadmat(str(gt_dir / f"wider_{k}_val.mat")) for k in ("face", *splits)}
    face = mats["face"]
    samples = []
    for e, event_cell in enumerate(face["event_list"][:, 0]):
        event = str(event_cell.ravel()[0])
        files = face["file_list"][e, 0][:, 0]
        boxes = face["face_bbx_list"][e, 0][:, 0]
        for j, file_cell in enumerate(files):
            name = f"{event}/{file_cell.ravel()[0]}.jpg"
            xywh = np.asarray(boxes[j], dtype=np.float64).reshape(-1, 4)
            keep = {}
            for s in splits:
                idx = np.asarray(mats[s]["gt_list"][e, 0][j, 0], dtype=np.int64).ravel() - 1
                if idx.size and (idx.min() < 0 or idx.max() >= len(xywh)):
                    raise ValueError(
                        f"wider_{s}_val.mat: gt_list of {name} indexes outside its "
                        f"{len(xywh)} faces"
                    )
                mask = torch.zeros(len(xywh), dtype=torch.bool)
                mask[torch.from_numpy(idx)] = True
                keep[s] = mask
            samples.append(Sample(name, images / name, _xywh_to_xyxy(xywh), keep))
    return FaceDataset(samples, root=None, name="wider_face_val", splits=splits)


def _resolve_root(root: str | Path) -> Path:
    path = Path(root)
    if path.is_dir():
        return path
    if isinstance(root, str) and "/" not in root and "\\" not in root:
        try:
            return shared_path("data", root)
        except FileNotFoundError:
            pass
    raise FileNotFoundError(f"dataset folder not found: {path}")


def _xywh_to_xyxy(xywh: np.ndarray) -> Tensor:
    return convert_boxes(torch.as_tensor(xywh, dtype=torch.float32).reshape(-1, 4), "xywh")


def _numbers(tokens: Sequence[str]) -> list[float] | None:
    """The tokens as finite floats, or ``None`` if any is not a finite number."""
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


def _parse_labels(path: Path) -> list[tuple[str, np.ndarray, int]]:
    """``(name, xywh (M, 4) float64, line of the name)`` per image of a WIDER ground-truth file.

    Blank lines are skipped. A ``0`` count may be followed by one all-numeric dummy row (the WIDER
    files write one) or directly by the next name.
    """
    if not path.is_file():
        raise FileNotFoundError(f"labels file not found: {path}")
    lines = [
        (no, text.strip())
        for no, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if text.strip()
    ]
    out: list[tuple[str, np.ndarray, int]] = []
    seen: set[str] = set()
    pos = 0
    while pos < len(lines):
        name_no, name = lines[pos]
        if name in seen:
            raise ValueError(f"{path}:{name_no}: duplicate image {name!r}")
        if len(name.split()) >= 4 and _numbers(name.split()) is not None:
            raise ValueError(
                f"{path}:{name_no}: expected an image name; got a box row {name!r} "
                "(does the face count above match its rows?)"
            )
        seen.add(name)
        if pos + 1 >= len(lines):
            raise ValueError(f"{path}:{name_no}: image {name!r} has no face-count line")
        count_no, count_text = lines[pos + 1]
        if not count_text.isdigit():
            raise ValueError(
                f"{path}:{count_no}: expected the face count (a non-negative integer) of {name!r}; "
                f"got {count_text!r}"
            )
        count = int(count_text)
        pos += 2
        rows = []
        for k in range(count):
            if pos >= len(lines):
                raise ValueError(f"{path}: file ends after {k} of the {count} rows of {name!r}")
            row_no, row = lines[pos]
            tokens = row.split()
            values = _numbers(tokens)
            if len(tokens) < 4 or values is None:
                raise ValueError(
                    f"{path}:{row_no}: expected 'x y w h [attributes...]' (finite numbers) "
                    f"for face {k} of {name!r}; got {row!r}"
                )
            rows.append(values[:4])
            pos += 1
        if count == 0 and pos < len(lines):
            tokens = lines[pos][1].split()
            if len(tokens) >= 4 and _numbers(tokens) is not None:
                pos += 1  # the dummy row of a face-less image
        out.append((name, np.asarray(rows, dtype=np.float64).reshape(-1, 4), name_no))
    return out


def _per_image_lines(path: Path, counts: Mapping[str, int]) -> Iterator[tuple[int, str, list[str]]]:
    """``(line number, image name, remaining tokens)`` per non-blank line; every labelled image
    must appear exactly once."""
    seen: set[str] = set()
    for no, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        tokens = text.split()
        if not tokens:
            continue
        name = tokens[0]
        if name not in counts:
            raise ValueError(f"{path}:{no}: image {name!r} is not in labels.txt")
        if name in seen:
            raise ValueError(f"{path}:{no}: duplicate line for image {name!r}")
        seen.add(name)
        yield no, name, tokens[1:]
    missing = [n for n in counts if n not in seen]
    if missing:
        raise ValueError(
            f"{path}: no line for {len(missing)} labelled image(s), e.g. {missing[0]!r}"
        )


def _parse_split(path: Path, counts: Mapping[str, int]) -> dict[str, Tensor]:
    masks = {}
    for no, name, tokens in _per_image_lines(path, counts):
        if not all(t.isdigit() for t in tokens):
            raise ValueError(
                f"{path}:{no}: face indices must be non-negative integers; got {tokens}"
            )
        idx = [int(t) for t in tokens]
        if idx and max(idx) >= counts[name]:
            raise ValueError(
                f"{path}:{no}: face index {max(idx)} out of range for {name!r} "
                f"({counts[name]} faces)"
            )
        mask = torch.zeros(counts[name], dtype=torch.bool)
        mask[idx] = True
        masks[name] = mask
    return masks


def _parse_folds(path: Path, counts: Mapping[str, int]) -> dict[str, int]:
    folds = {}
    for no, name, tokens in _per_image_lines(path, counts):
        if len(tokens) != 1 or not tokens[0].isdigit():
            raise ValueError(
                f"{path}:{no}: expected '<image> <fold>' with an integer fold; got {tokens}"
            )
        folds[name] = int(tokens[0])
    return folds


def _parse_sizes(path: Path, counts: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t") if lines else []
    if not {"path", "width", "height"} <= set(header):
        raise ValueError(f"{path}:1: expected a header with path, width and height; got {header}")
    col = {key: header.index(key) for key in ("path", "width", "height")}
    sizes = {}
    for no, text in enumerate(lines[1:], 2):
        if not text.strip():
            continue
        cells = text.split("\t")
        try:
            name = cells[col["path"]]
            size = (int(cells[col["height"]]), int(cells[col["width"]]))
        except (IndexError, ValueError):
            raise ValueError(f"{path}:{no}: malformed row {text!r}") from None
        if name in counts:
            sizes[name] = size
    return sizes
