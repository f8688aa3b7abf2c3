"""The WIDER FACE evaluation protocol, vectorised.

This reproduces the community's Python WIDER evaluation (``widerface_evaluate/evaluation.py``, used
by Pytorch_Retinaface and most face-detection repositories) step by step:

1. **Score normalisation.** Every prediction score of the evaluated images is mapped through
   ``(s - lo) / (hi - lo)`` with ``lo = min(1, min s)`` and ``hi = max(0, max s)``: the reference
   starts its running min at 1 and its running max at 0, so for scores inside [0, 1] this is plain
   min-max normalisation, while e.g. scores in [2, 5] become ``(s - 1) / 4``.
2. **Matching, per image.** Predictions are taken in decreasing score order. Each is compared only
   with its best-overlapping ground-truth row (first one on ties), IoU with the ``+1`` pixel
   convention (``(x2 - x1 + 1) * (y2 - y1 + 1)``, overlap only when both ``+1`` extents are
   positive). If that IoU is ``>= iou_threshold``: a face that does not count in the setting turns
   the prediction into an *ignored* proposal (neither true nor false positive); a counted face
   becomes recalled (a second prediction on it stays a counted, false, proposal). Anything else is a
   counted false proposal.
3. **1000 thresholds** ``t_i = 1 - (i + 1) / 1000``, ``i = 0..999`` (0.999 down to 0). At each, over
   the dataset: ``proposals`` = counted predictions with normalised score ``>= t_i``, ``recalled`` =
   faces recalled by them; ``precision = recalled / proposals`` (NaN where no prediction is counted
   yet, 0/0 as in the reference) and ``recall = recalled / count_face``.
4. **AP**: VOC all-point interpolation (sentinels ``recall`` 0 and 1, ``precision`` 0 and 0,
   monotone precision envelope, sum over recall changes).

Quirks kept from the reference:

* ``count_face`` adds every image's counted faces, including images without predictions.
* Images without ground-truth rows are skipped in matching: their predictions are *not* false
  positives (their scores still take part in the normalisation). The official files give the four
  face-less WIDER val images one ``0 0 0 0`` row (kept by :mod:`crface.data`), so there their
  predictions do count as false positives, exactly as in the reference; datasets whose labels say
  ``0`` faces (e.g. ``roboflow_faces_gray``) are not penalised.
* Every ground-truth row takes part in matching, including zero-size and negative-size boxes; the
  keep masks only decide what counts.

Deviations, each only where the reference fails or misbehaves:

* An image missing from ``predictions`` counts as having no predictions (the reference raises
  KeyError).
* Predictions are sorted by score per image here; the reference assumes prediction files are
  already sorted and silently mis-counts unsorted ones.
* When every score is the same value in [0, 1] (``hi == lo``) all normalised scores become 1.0 (the
  reference divides by zero and reports NaN).
* A setting with no counted face anywhere gets AP NaN (the reference's 0/0).
* Normalisation uses the predictions of the evaluated images only (the reference uses every file in
  the folder, which is the same set when folder and ground truth match).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crface.data import ALL, SETTINGS, FaceDataset
from crface.types import Detections

THRESH_NUM = 1000
THRESHOLDS = 1.0 - np.arange(1, THRESH_NUM + 1, dtype=np.float64) / THRESH_NUM
"""The 1000 score thresholds of the protocol, 0.999 down to 0.0; ``EvalResult.pr`` follows them."""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

PredictionLike = Detections | np.ndarray | torch.Tensor | Sequence[Sequence[float]]

# Upper bound on the elements of one prediction x ground-truth overlap block (memory, not speed).
_BLOCK = 1 << 21


@dataclass(frozen=True, eq=False)
class EvalResult:
    """Average precision and PR curves per setting.

    Attributes:
        ap: setting -> AP as a fraction in [0, 1] (NaN when no face counts in that setting).
        pr: setting -> ``(precision, recall)``, two ``(1000,)`` float64 arrays following
            :data:`THRESHOLDS` (precision is NaN at thresholds where no prediction counts yet).
        num_faces: setting -> number of faces counted (the recall denominator).
        num_images: images in the evaluated dataset.
        iou_threshold: the match threshold used.
        dataset: the dataset's name.
        num_predicted: images of the dataset that have an entry in the predictions (possibly
            empty); the other ``num_images - num_predicted`` count as having no detections, so
            a low :attr:`coverage` usually means a prediction folder that does not match the
            ground truth. ``None`` when unknown.
    """

    ap: dict[str, float]
    pr: dict[str, tuple[np.ndarray, np.ndarray]]
    num_faces: dict[str, int]
    num_images: int
    iou_threshold: float = 0.5
    dataset: str = ""
    num_predicted: int | None = None

    @property
    def coverage(self) -> float | None:
        """``num_predicted / num_images`` (``None`` when unknown or the dataset is empty)."""
        if self.num_predicted is None or not self.num_images:
            return None
        return self.num_predicted / self.num_images

    def to_dict(self, include_pr: bool = False) -> dict[str, Any]:
        """A JSON-serialisable dict (NaN becomes ``None``); ``include_pr`` adds the curves."""
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "num_images": self.num_images,
            "num_predicted": self.num_predicted,
            "iou_threshold": self.iou_threshold,
            "ap": {s: _json_float(v) for s, v in self.ap.items()},
            "num_faces": dict(self.num_faces),
        }
        if include_pr:
            out["pr"] = {
                s: {"precision": [_json_float(v) for v in p], "recall": [_json_float(v) for v in r]}
                for s, (p, r) in self.pr.items()
            }
        return out

    def __str__(self) -> str:
        covered = (
            ""
            if self.num_predicted is None
            else f" (predictions for {self.num_predicted} of {self.num_images} images)"
        )
        rows = [
            f"WIDER FACE AP on {self.dataset or 'dataset'}: {self.num_images} images, "
            f"IoU {self.iou_threshold:g}{covered}",
            f"{'setting':<8} {'AP':>7} {'faces':>7}",
        ]
        for s, ap in self.ap.items():
            rows.append(f"{s.capitalize():<8} {ap:>7.4f} {self.num_faces[s]:>7d}")
        return "\n".join(rows)


def evaluate(
    predictions: Mapping[str, PredictionLike],
    dataset: FaceDataset,
    settings: Sequence[str] | None = None,
    iou_threshold: float = 0.5,
) -> EvalResult:
    """Evaluate detections with the WIDER FACE protocol (see the module docstring for the details).

    Args:
        predictions: image -> detections. Keys are sample names (``"0--Parade/0_Parade_x.jpg"``)
            or the same without the image extension (as :func:`read_predictions` returns them).
            Values are :class:`~crface.types.Detections` or ``(K, 5)`` arrays/tensors
            ``x1, y1, x2, y2, score`` in pixels (xyxy, *not* the x y w h of the prediction files).
            Missing images have no predictions (their faces count as misses; the result's
            ``num_predicted`` says how many images had an entry); keys that are not in the
            dataset are ignored.
        dataset: the ground truth.
        settings: the settings to report (default: ``dataset.settings``); any of ``"easy"``,
            ``"medium"``, ``"hard"`` and ``"all"`` (every ground-truth row counts).
        iou_threshold: the IoU at or above which a prediction matches its best face, in (0, 1].

    Returns:
        The :class:`EvalResult`, with ``num_predicted`` / ``coverage`` saying how many of the
        dataset's images ``predictions`` covered.

    Raises:
        ValueError: unknown setting, bad threshold, malformed predictions (naming the image), or
            predictions none of whose keys name an image of the dataset.
        TypeError: ``dataset`` is not a FaceDataset, or a prediction of an unsupported type.

    Example:
        >>> from crface.data import FaceDataset, Sample
        >>> ds = FaceDataset([Sample("a.jpg", "a.jpg", torch.tensor([[0.0, 0, 10, 10]]))])
        >>> evaluate({"a": np.array([[0.0, 0, 10, 10, 0.9]])}, ds).ap
        {'all': 1.0}
    """
    if not isinstance(dataset, FaceDataset):
        raise TypeError(f"dataset must be a crface.data.FaceDataset; got {type(dataset).__name__}")
    settings = tuple(dataset.settings if settings is None else settings)
    if not settings:
        raise ValueError("settings must name at least one setting")
    for s in settings:
        if s not in (*SETTINGS, ALL):
            raise ValueError(f"unknown setting {s!r}; expected one of {(*SETTINGS, ALL)}")
        if s != ALL and s not in dataset.splits:
            raise ValueError(
                f"dataset {dataset.name!r} has no {s!r} split (its settings: "
                f"{dataset.settings}); without one, every face would count as {s}. "
                "Load the difficulty lists (splits/ or the official .mat files) or score 'all'"
            )
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1]; got {iou_threshold}")

    preds, num_predicted = _collect(predictions, dataset)
    scores = [p[:, 4].copy() for p in preds]
    _normalise(scores)
    # Per image, in decreasing score order: best face and whether the IoU reaches the threshold.
    matches = []
    for sample, pred, score in zip(dataset, preds, scores, strict=True):
        order = np.argsort(-score, kind="stable")
        gt = sample.boxes.double().numpy()
        if len(order) == 0 or len(gt) == 0:
            matches.append(None)
            continue
        best, best_iou = _best_match(pred[order, :4], gt)
        matches.append((score[order], best, best_iou >= iou_threshold))

    ap, pr, num_faces = {}, {}, {}
    for setting in settings:
        keeps = [s.keep_mask(setting).numpy() for s in dataset]
        count_face = int(sum(k.sum() for k in keeps))
        parts = [_image_deltas(m, k) for m, k in zip(matches, keeps, strict=True) if m is not None]
        precision, recall = _pr_curve(parts, count_face)
        ap[setting] = voc_ap(recall, precision) if count_face else math.nan
        pr[setting] = (precision, recall)
        num_faces[setting] = count_face
    return EvalResult(
        ap, pr, num_faces, len(dataset), float(iou_threshold), dataset.name, num_predicted
    )


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC all-point average precision of a PR curve ordered by non-decreasing recall.

    NaN precisions (no counted prediction yet, which only happens at recall 0) never weigh in.

    Example:
        >>> voc_ap(np.array([0.5, 1.0]), np.array([1.0, 0.5]))
        0.75
    """
    mrec = np.concatenate(([0.0], np.asarray(recall, np.float64), [1.0]))
    mpre = np.concatenate(([0.0], np.nan_to_num(np.asarray(precision, np.float64), nan=0.0), [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def write_predictions(
    directory: str | os.PathLike, predictions: Mapping[str, PredictionLike]
) -> list[Path]:
    """Write predictions in the standard per-image layout read by WIDER evaluation tools.

    ``<directory>/<event>/<stem>.txt`` holds the image name without extension, the number of
    boxes, then one ``x y w h score`` line per box in decreasing score order (values printed with
    the fewest digits that read back to the same number in the input's precision).

    Args:
        directory: the output folder (created).
        predictions: as for :func:`evaluate` (xyxy pixels); keys with or without extension.

    Returns:
        The written files.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> _ = write_predictions(d, {"0--Parade/a.jpg": np.array([[1.0, 2, 11, 22, 0.5]])})
        >>> print(open(f"{d}/0--Parade/a.txt").read())
        a
        1
        1 2 10 20 0.5
        <BLANKLINE>
    """
    directory = Path(directory)
    written = []
    for key, value in predictions.items():
        stem = _strip_suffix(key.replace("\\", "/"))
        if not stem or stem.startswith("/") or ".." in stem.split("/"):
            raise ValueError(f"prediction key {key!r} must be a relative image name without '..'")
        pred = _as_array(value, key)
        pred = pred[np.argsort(-pred[:, 4], kind="stable")]
        xywh = np.concatenate([pred[:, :2], pred[:, 2:4] - pred[:, :2], pred[:, 4:]], axis=1)
        path = directory / f"{stem}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [stem.rsplit("/", 1)[-1], str(len(xywh))]
        lines += [" ".join(_fmt(v) for v in row) for row in xywh]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def read_predictions(directory: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a folder of per-image prediction files (the layout of :func:`write_predictions`).

    Every ``*.txt`` below ``directory`` is read. As in the reference, the image is named by the
    file's first line (its last path component, image extension dropped) under the file's folder:
    ``<event>/<stem>``. Rows are ``x y w h score`` (further columns are ignored).

    Returns:
        ``"<event>/<stem>" -> (K, 5)`` float64 ``x1, y1, x2, y2, score`` (xyxy pixels,
        ``x2 = x + w``), ready for :func:`evaluate`.

    Raises:
        FileNotFoundError: the folder does not exist or holds no ``.txt`` file.
        ValueError: naming file and line of malformed content, or two files naming the same image.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"prediction folder not found: {directory}")
    files = sorted(directory.rglob("*.txt"))
    if not files:
        raise FileNotFoundError(f"no .txt prediction files under {directory}")
    out: dict[str, np.ndarray] = {}
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        first = lines[0].strip().replace("\\", "/").rsplit("/", 1)[-1] if lines else ""
        stem = _strip_suffix(first) or path.stem
        folder = path.parent.relative_to(directory).as_posix()
        key = stem if folder == "." else f"{folder}/{stem}"
        if key in out:
            raise ValueError(f"{path}: a second prediction file for image {key!r}")
        out[key] = parse_prediction_lines(path, lines)
    return out


def parse_prediction_lines(path: Path, lines: list[str]) -> np.ndarray:
    """Parse one WIDER prediction file's lines (name, count, ``x y w h score`` rows) into a
    ``(K, 5)`` float64 array of ``x1 y1 x2 y2 score``; errors name ``path`` and the line."""
    if len(lines) < 2 or not lines[1].strip().isdigit():
        got = repr(lines[1]) if len(lines) > 1 else "nothing"
        raise ValueError(f"{path}:2: expected the number of boxes; got {got}")
    count = int(lines[1])
    rows = [(no, text.split()) for no, text in enumerate(lines[2:], 3) if text.strip()]
    if len(rows) != count:
        raise ValueError(f"{path}: the count line says {count} boxes but {len(rows)} rows follow")
    data = np.zeros((count, 5), dtype=np.float64)
    for i, (no, tokens) in enumerate(rows):
        try:
            values = [float(t) for t in tokens[:5]]
        except ValueError:
            values = []
        if len(values) < 5 or not all(map(math.isfinite, values)) or min(values[2:4]) < 0:
            raise ValueError(
                f"{path}:{no}: expected 'x y w h score' (finite numbers, w and h >= 0); "
                f"got {' '.join(tokens)!r}"
            )
        data[i] = values
    data[:, 2:4] += data[:, :2]
    return data


def _collect(
    predictions: Mapping[str, PredictionLike], dataset: FaceDataset
) -> tuple[list[np.ndarray], int]:
    """Per sample of ``dataset``, its ``(K, 5)`` float64 predictions (empty when missing), and
    how many samples had an entry."""
    if not isinstance(predictions, Mapping):
        raise TypeError(
            "predictions must be a mapping image name -> detections; "
            f"got {type(predictions).__name__}"
        )
    out, found = [], 0
    for sample in dataset:
        key = sample.name if sample.name in predictions else _strip_suffix(sample.name)
        value = predictions.get(key)
        found += value is not None
        pred = np.zeros((0, 5)) if value is None else _as_array(value, key)
        out.append(pred.astype(np.float64))
    if predictions and not found and len(dataset):
        example = next(iter(predictions))
        raise ValueError(
            f"none of the {len(predictions)} predicted images is in dataset {dataset.name!r} "
            f"(e.g. prediction {example!r} vs image {dataset[0].name!r})"
        )
    return out, found


def _as_array(value: PredictionLike, name: str) -> np.ndarray:
    """``(K, 5)`` ``x1 y1 x2 y2 score`` in the input's float precision (float32 or float64)."""
    if isinstance(value, Detections):
        arr = torch.cat([value.boxes, value.scores[:, None]], dim=1).detach().cpu().numpy()
    elif isinstance(value, torch.Tensor):
        arr = value.detach().cpu().numpy()
    elif isinstance(value, (np.ndarray, Sequence)):
        arr = np.asarray(value)
    else:
        raise TypeError(
            f"predictions for {name!r} must be Detections or a (K, 5) array; "
            f"got {type(value).__name__}"
        )
    if arr.size == 0:
        arr = arr.reshape(0, 5)
    if arr.ndim != 2 or arr.shape[1] != 5:
        raise ValueError(
            f"predictions for {name!r} must have shape (K, 5) x1 y1 x2 y2 score; got {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"predictions for {name!r} must be real numbers; got dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"predictions for {name!r} contain NaN or inf")
    if (arr[:, 2] < arr[:, 0]).any() or (arr[:, 3] < arr[:, 1]).any():
        raise ValueError(f"predictions for {name!r} have boxes with x2 < x1 or y2 < y1 (xyxy)")
    return arr


def _normalise(scores: list[np.ndarray]) -> None:
    """The reference's global normalisation, in place (see the module docstring)."""
    nonempty = [s for s in scores if len(s)]
    if not nonempty:
        return
    lo = min(1.0, min(float(s.min()) for s in nonempty))
    hi = max(0.0, max(float(s.max()) for s in nonempty))
    for s in nonempty:
        if hi > lo:
            s -= lo
            s /= hi - lo
        else:
            s[:] = 1.0


def _best_match(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``pred (K, 4)``, the index of its best ``gt (M, 4)`` row and that IoU (+1 pixel
    convention, both xyxy float64)."""
    best = np.empty(len(pred), dtype=np.int64)
    best_iou = np.empty(len(pred), dtype=np.float64)
    g_area = (gt[:, 2] - gt[:, 0] + 1) * (gt[:, 3] - gt[:, 1] + 1)
    step = max(1, _BLOCK // len(gt))
    for start in range(0, len(pred), step):
        p = pred[start : start + step, :, None]
        iw = np.minimum(p[:, 2], gt[:, 2]) - np.maximum(p[:, 0], gt[:, 0]) + 1
        ih = np.minimum(p[:, 3], gt[:, 3]) - np.maximum(p[:, 1], gt[:, 1]) + 1
        inter = iw * ih
        union = (p[:, 2] - p[:, 0] + 1) * (p[:, 3] - p[:, 1] + 1) + g_area - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=(iw > 0) & (ih > 0))
        idx = iou.argmax(axis=1)
        best[start : start + step] = idx
        best_iou[start : start + step] = iou[np.arange(len(idx)), idx]
    return best, best_iou


def _image_deltas(
    match: tuple[np.ndarray, np.ndarray, np.ndarray], keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(scores, counted, recalled)`` per prediction of one image (decreasing score order):
    whether it is a counted proposal, and whether it is the first to recall its face."""
    scores, best, hit = match
    kept_hit = hit & keep[best]
    counted = ~(hit & ~keep[best])
    recalled = np.zeros(len(scores), dtype=bool)
    rows = np.flatnonzero(kept_hit)
    _, first = np.unique(best[rows], return_index=True)
    recalled[rows[first]] = True
    return scores, counted, recalled


def _pr_curve(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], count_face: int
) -> tuple[np.ndarray, np.ndarray]:
    """Dataset precision and recall at :data:`THRESHOLDS` from per-prediction deltas."""
    if parts:
        scores, counted, recalled = (np.concatenate(x) for x in zip(*parts, strict=True))
    else:
        scores, counted, recalled = np.zeros(0), np.zeros(0, bool), np.zeros(0, bool)
    order = np.argsort(scores, kind="stable")
    # Totals over the predictions at or above each threshold: suffix sums of the ascending order.
    tails = [np.append(np.cumsum(x[order][::-1])[::-1], 0) for x in (counted, recalled)]
    at = np.searchsorted(scores[order], THRESHOLDS, side="left")
    proposals, hits = (t[at].astype(np.float64) for t in tails)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = hits / proposals
        recall = hits / count_face if count_face else np.full(THRESH_NUM, math.nan)
    return precision, recall


def _strip_suffix(name: str) -> str:
    """``name`` without a trailing image extension (other dots are part of the name)."""
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and "/" not in suffix and f".{suffix.lower()}" in IMAGE_SUFFIXES else name


def _fmt(value: np.floating) -> str:
    return np.format_float_positional(value, unique=True, trim="-")


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
