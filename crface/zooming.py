"""Zoom: a second, upscaled detector pass spent only where the first pass saw small faces.

Multi-scale testing finds the small faces a detector misses at the photo's own size, at several
times its cost, and it can make large faces worse (seen at 2x they outgrow the detector). Zoom
runs the detector once on the photo, picks the parts of it that hold small or uncertain candidates
(within an area ``budget``), runs the detector again on just those parts at ``scale``, keeps from
that pass only the faces too small for the first one, and fuses both passes: box voting of the
clusters the zoomed pass added to, the first pass's NMS result elsewhere (or the ranker, when a
``refiner`` is given).

    >>> import crface
    >>> detector = crface.detectors.get_detector("retinaface")       # doctest: +SKIP
    >>> faces = crface.zoom(detector.detect, image, budget=0.3)       # doctest: +SKIP

The selection's settings were chosen on ``wider_train`` (``benchmarks/zoom.py tune``): one set
per built-in runner (:data:`TUNED`, used with ``detector=``) and one for any other detector
(:data:`GENERIC`); see ``docs/zoom.md`` for the measured gains and costs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from crface.adapters import get_adapter
from crface.eval.baselines import SCORE_THRESHOLD
from crface.imageio import as_rgb_array
from crface.ops import box_voting
from crface.regions import cells_to_regions, concat, detect_regions
from crface.types import Detections

if TYPE_CHECKING:
    from crface.refiner import Refiner

RULES = ("cells", "grid")
# "vote": box voting merges every cluster of the pooled passes; "vote_zoomed": only the clusters
# the zoomed pass added to, the others keep their top box (hard NMS, as a single pass); "nms": every
# cluster keeps its top box (hard NMS over both passes).
FUSIONS = ("vote", "vote_zoomed", "nms")
GRID = 4  # the "grid" rule's tiles per side: a fixed 4 x 4 split of the photo, the baseline
SIZE_KEYS = ("image_size", "input_size")

# Chosen by `benchmarks/zoom.py tune` on wider_train (results/zoom_tune.json: "chosen" and
# "per_detector"; tests/test_zoom.py checks that these match it). keep_below = 2 * small.
GENERIC: dict[str, Any] = {
    "small": 24.0,
    "seed_score": 0.1,
    "weight": 0.7,
    "budget": 1.0,
    "fusion": "vote_zoomed",
    "host_score": 0.5,
}
TUNED: dict[str, dict[str, Any]] = {
    "retinaface": {
        "small": 24.0,
        "seed_score": 0.05,
        "weight": 0.7,
        "budget": 1.0,
        "fusion": "vote_zoomed",
    },
    "yunet_n": {
        "small": 24.0,
        "seed_score": 0.1,
        "weight": 0.9,
        "budget": 1.0,
        "fusion": "vote",
        "host_score": 0.5,
    },
    "scrfd_500m": {
        "small": 24.0,
        "seed_score": 0.1,
        "weight": 0.8,
        "budget": 1.0,
        "fusion": "vote_zoomed",
        "host_score": 0.5,
    },
}

__all__ = [
    "FUSIONS",
    "GENERIC",
    "RULES",
    "TUNED",
    "fuse",
    "gate",
    "inside_faces",
    "longer_side",
    "merge",
    "select_regions",
    "settings",
    "zoom",
]


def settings(detector: str | None = None) -> dict[str, Any]:
    """The zoom settings chosen on ``wider_train`` for a built-in runner (``None``: any detector).

    Raises:
        ValueError: a ``detector`` without tuned settings (lists those that have them).

    Example:
        >>> settings()["budget"]
        1.0
    """
    if detector is None:
        return dict(GENERIC)
    if detector not in TUNED:
        raise ValueError(
            f"no zoom settings tuned for detector {detector!r}; tuned: {sorted(TUNED)}. "
            "Leave detector=None for the settings chosen for any detector"
        )
    return dict(TUNED[detector])


def _budget_px(budget: float, image_size: tuple[int, int]) -> float:
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0:
        raise ValueError(
            f"budget must be a fraction of the photo's area in (0, 1] or a number of pixels > 1; "
            f"got {budget!r}"
        )
    return budget * image_size[0] * image_size[1] if budget <= 1 else float(budget)


def select_regions(
    first: Detections,
    image_size: tuple[int, int],
    *,
    rule: str = "cells",
    budget: float = GENERIC["budget"],
    small: float = GENERIC["small"],
    seed_score: float = GENERIC["seed_score"],
    cell: int = 64,
) -> Tensor:
    """Where to zoom: the grid cells holding the most small-candidate score, within ``budget``.

    A *seed* is a first-pass candidate whose longer side is under ``small`` px and whose score is
    at least ``seed_score``. Each cell's value is the summed score of the seeds centred in it; cells
    are taken by decreasing value while their total area fits ``budget``, then merged into
    rectangles (:func:`crface.regions.cells_to_regions`).

    Args:
        first: ``Detections`` of the first pass, photo pixels.
        image_size: ``(height, width)`` of the photo.
        rule: ``"cells"`` (square cells of ``cell`` px) or ``"grid"`` (a fixed 4 x 4 split of the
            photo into tiles, the baseline).
        budget: a fraction of the photo's area in (0, 1], or a number of pixels (> 1).
        small: seed size limit in photo pixels.
        seed_score: seed score floor.
        cell: cell side in photo pixels for ``"cells"``.

    Returns:
        ``Tensor[R, 4]`` int64 xyxy photo pixels (empty when nothing small was seen).

    Raises:
        ValueError: unknown ``rule`` (lists the valid ones) or a bad ``budget``.
    """
    if rule not in RULES:
        raise ValueError(f"unknown zoom rule {rule!r}; expected one of {RULES}")
    h, w = image_size
    limit = _budget_px(budget, image_size)
    side = math.ceil(max(h, w) / GRID) if rule == "grid" else int(cell)
    gh, gw = math.ceil(h / side), math.ceil(w / side)
    boxes, scores = first.boxes.detach().cpu(), first.scores.detach().cpu()
    seeds = (longer_side(boxes) < small) & (scores >= seed_score)
    centre = (boxes[seeds, :2] + boxes[seeds, 2:]) / 2
    col = (centre[:, 0] // side).long().clamp(0, gw - 1)
    row = (centre[:, 1] // side).long().clamp(0, gh - 1)
    value = torch.zeros(gh * gw).index_add_(0, row * gw + col, scores[seeds].float())
    ys, xs = torch.arange(gh) * side, torch.arange(gw) * side
    area = ((ys + side).clamp(max=h) - ys)[:, None] * ((xs + side).clamp(max=w) - xs)[None, :]
    order = torch.argsort(value, descending=True, stable=True)
    order = order[value[order] > 0]
    taken = order[torch.cumsum(area.flatten()[order].double(), 0) <= limit]
    picked = torch.zeros(gh * gw, dtype=torch.bool)
    picked[taken] = True
    return cells_to_regions(picked.reshape(gh, gw), side, image_size)


def as_array(image: Any) -> np.ndarray:
    """``image`` as an ``HxWx3`` uint8 array for the user's detector."""
    # An HxWx3 uint8 array goes through untouched, so a BGR detector gets BGR crops.
    if isinstance(image, np.ndarray) and image.shape[2:] == (3,) and image.dtype == np.uint8:
        return image
    return as_rgb_array(image)


def runner(detect_fn: Callable[..., Any], adapter: str, **adapter_kwargs: Any) -> Callable:
    """``array -> Detections``: ``detect_fn`` then its adapter, failures naming the input's size."""
    module = get_adapter(adapter)
    fixed = sorted(k for k in SIZE_KEYS if k in adapter_kwargs)
    if fixed:
        raise TypeError(
            f"zoom runs the detector on crops of varying size, so a fixed {fixed[0]}= cannot "
            "hold; make detect_fn return boxes in its input's pixels (decode inside it), or use "
            "a crface.detectors runner"
        )

    def run(array: np.ndarray) -> Detections:
        try:
            return module.to_detections(detect_fn(array), **adapter_kwargs)
        except Exception as err:
            h, w = array.shape[:2]
            raise RuntimeError(
                f"the detector failed on a {w}x{h} input ({type(err).__name__}: {err}); a "
                "detector with a minimum input size needs larger crops: raise `cell` (zoom) or "
                "`tile` (tiling)"
            ) from err

    return run


def zoom(
    detect_fn: Callable[..., Any],
    image: Any,
    *,
    adapter: str = "generic",
    scale: float = 2.0,
    refiner: Refiner | None = None,
    budget: float | None = None,
    detector: str | None = None,
    rule: str = "cells",
    small: float | None = None,
    seed_score: float | None = None,
    cell: int = 64,
    keep_below: float | None = None,
    weight: float | None = None,
    host_score: float | bool | None = None,
    fusion: str | None = None,
    vote_iou: float = 0.4,
    rerank_kwargs: dict[str, Any] | None = None,
    first_pass: Detections | None = None,
    pool_only: bool = False,
    **adapter_kwargs: Any,
) -> Detections:
    """Detect, zoom into the parts of the photo where small faces are, detect again, fuse.

    Args:
        detect_fn: the user's detector: ``detect_fn(array)`` on an ``HxWx3`` uint8 array (the
            photo, then each crop; an ``HxWx3`` uint8 input is passed on in its own channel
            order), returning candidates (before NMS) in that array's pixels, in any format
            ``adapter`` reads.
        image: the photo: an ``HxWx3`` uint8 array, PIL image, ``CxHxW`` tensor or path.
        adapter: adapter name for ``detect_fn``'s output (see :data:`crface.adapters.ADAPTERS`).
        scale: resize factor of the second pass (> 1).
        refiner: fuse the two passes with :meth:`Refiner.rerank` instead of box voting (with
            ``nms="vote"`` unless ``rerank_kwargs`` names another: candidates of two scales
            want voting: hard NMS lost 1.7 AP on ``wider_train`` fold 4).
        budget: cap on the zoomed area: a fraction of the photo in (0, 1] or a number of
            pixels; the second pass costs about ``scale**2 * area`` first passes. Default 1:
            all the cells holding seeds (on WIDER, 10-40% of a photo).
        detector: a built-in runner's name (e.g. ``"scrfd_500m"``): its settings tuned on
            ``wider_train`` (:data:`TUNED`) fill the options left ``None``; else
            :data:`GENERIC`.
        rule: region rule, ``"cells"`` or ``"grid"`` (see :func:`select_regions`).
        small: candidates under this many photo pixels (longer side) mark where to zoom.
        seed_score: ... and score at least this.
        cell: cell side in photo pixels for ``rule="cells"``.
        keep_below: keep from the zoomed pass only candidates whose longer side is under this
            many photo pixels (default ``2 * small``): large faces come back worse at 2x.
        weight: factor on the zoomed pass's scores (see :func:`gate`).
        host_score: drop zoomed candidates lying inside a first-pass candidate scoring at least
            this that is larger (:func:`inside_faces`); ``False`` keeps them.
        fusion: how the passes are fused without a ranker (:data:`FUSIONS`): ``"vote"``
            (box voting) merges every cluster, ``"vote_zoomed"`` only those the zoomed pass
            added to (elsewhere the first pass's NMS result stands), ``"nms"`` none (hard NMS
            over both passes). With a ``refiner``, its rerank fuses instead.
        vote_iou: IoU threshold of the box voting that fuses the passes.
        rerank_kwargs: options for :meth:`Refiner.rerank` when ``refiner`` is given.
        first_pass: the first pass's candidates when the caller already has them
            (:class:`Detections` in photo pixels, as the adapter returns them): the photo is then
            not detected again, only the zoomed regions are.
        pool_only: return both passes' candidates unfused (first pass, then the gated zoomed
            pass), for your own fusion or for caching (``crface dump --zoom``).
        **adapter_kwargs: options for the adapter (fixed input sizes are refused: crops vary).

    Returns:
        :class:`Detections` by decreasing score; ``indices`` are rows of the pooled candidates,
        the first pass's rows first.

    Raises:
        ValueError: unknown adapter, rule, fusion or ``detector``, ``scale`` <= 1, bad
            ``budget``, or ``fusion`` given with a ``refiner``.
        TypeError: a fixed ``image_size=`` / ``input_size=`` adapter option.
        RuntimeError: the detector failed on a crop (names the crop's size).

    Example:
        >>> def detect(a):  # a toy detector: the bounding box of the bright pixels
        ...     ys, xs = np.nonzero(a[..., 0])
        ...     return [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 0.6]] if len(xs) else []
        >>> photo = np.zeros((200, 300, 3), np.uint8)
        >>> photo[50:58, 100:108] = 255  # one 8 px "face"
        >>> zoom(detect, photo).boxes.round().tolist()
        [[100.0, 50.0, 108.0, 58.0]]
    """
    if not scale > 1:
        raise ValueError(f"scale must be > 1 (the zoomed pass upscales); got {scale!r}")
    given = {"budget": budget, "small": small, "seed_score": seed_score, "weight": weight}
    given["host_score"] = host_score
    opts = {"host_score": None, **settings(detector)}
    opts |= {k: v for k, v in given.items() if v is not None}
    if opts["host_score"] is False:  # the caller keeps what a tuned setting would drop
        opts["host_score"] = None
    fusion = _check_fusion(fusion, refiner, opts["fusion"])
    run = runner(detect_fn, adapter, **adapter_kwargs)
    array = as_array(image)
    if first_pass is not None and not isinstance(first_pass, Detections):
        raise TypeError(
            f"first_pass must be crface.Detections (the adapter's output); got "
            f"{type(first_pass).__name__}: convert it with crface.adapters.adapt(adapter_name, output) first"
        )
    first = run(array) if first_pass is None else first_pass
    small = opts["small"]
    regions = select_regions(
        first,
        array.shape[:2],
        rule=rule,
        budget=opts["budget"],
        small=small,
        seed_score=opts["seed_score"],
        cell=cell,
    )
    second = detect_regions(run, array, regions, scale=scale, margin=math.ceil(small))
    second = gate(
        second, keep_below or 2 * small, opts["weight"], first=first, host_score=opts["host_score"]
    )
    pooled = concat([first, second])
    if pool_only:
        return pooled
    return merge(image, pooled, refiner, rerank_kwargs, vote_iou, fusion, len(first))


def _check_fusion(fusion: str | None, refiner: Refiner | None, tuned: str) -> str:
    if fusion is not None and refiner is not None:
        raise ValueError(
            "fusion= chooses how box voting fuses the passes, but a refiner fuses them here: "
            "drop fusion=, or pass rerank_kwargs={'nms': ...} to choose the rerank's suppression"
        )
    fusion = tuned if fusion is None else fusion
    if fusion not in FUSIONS:
        raise ValueError(f"unknown zoom fusion {fusion!r}; expected one of {FUSIONS}")
    return fusion


def merge(
    image: Any,
    pooled: Detections,
    refiner: Refiner | None = None,
    rerank_kwargs: dict[str, Any] | None = None,
    vote_iou: float = 0.4,
    fusion: str = "vote",
    zoomed_from: int = 0,
) -> Detections:
    """Fuse pooled candidates once for the whole photo: the ranker when given, else box voting.

    ``indices`` are renumbered to the pooled rows, so they point into ``pooled``. Box voting
    fuses the candidates scoring at least WIDER's test threshold
    (:data:`crface.eval.baselines.SCORE_THRESHOLD`), merging the clusters ``fusion`` names
    (:data:`FUSIONS`); ``zoomed_from`` is the first pooled row of the zoomed pass.
    """
    pooled = Detections(pooled.boxes, pooled.scores, landmarks=pooled.landmarks)
    if refiner is not None:
        return refiner.rerank(image, pooled, **{"nms": "vote", **(rerank_kwargs or {})})
    # Voting works per overlapping pair, and detectors that return thousands of near-zero
    # candidates (SCRFD) made it half of zoom's time; under WIDER's test threshold they never
    # score, and their weight in a cluster's mean is negligible.
    scored = pooled.scores >= SCORE_THRESHOLD
    voted = None
    if fusion != "vote":  # "nms": no row is voted; "vote_zoomed": the zoomed pass's rows
        zoomed = zoomed_from if fusion == "vote_zoomed" else len(pooled)
        voted = (torch.arange(len(pooled), device=scored.device) >= zoomed)[scored]
    return fuse(pooled[scored], vote_iou, voted=voted)  # indices stay pooled rows


def longer_side(boxes: Tensor) -> Tensor:
    """``Tensor[N]``: the longer side of each ``Tensor[N, 4]`` xyxy box."""
    return (boxes[:, 2:] - boxes[:, :2]).amax(dim=1)


def gate(
    second: Detections,
    keep_below: float,
    weight: float = 1.0,
    *,
    first: Detections | None = None,
    host_score: float | None = None,
) -> Detections:
    """What the zoomed pass may add: faces too small for the first pass, scores scaled by ``weight``.

    Large faces come back worse at 2x, so only candidates whose longer side is under
    ``keep_below`` photo pixels stay. Seen at 2x, small faces and small false positives also
    score higher than a pass at the photo's own size scores anything that small, and would push
    below them the larger faces the first pass found: ``weight`` < 1 puts them back in line.
    With ``host_score``, candidates lying inside a face of ``first`` (see :func:`inside_faces`)
    go too: at 2x, eyes and mouths of faces the first pass already found pass for small faces.
    """
    keep = longer_side(second.boxes) < keep_below
    if host_score is not None and first is not None:
        keep &= ~inside_faces(second.boxes, first[first.scores >= host_score].boxes)
    second = second[keep]
    return Detections(second.boxes, second.scores * weight, second.indices, second.landmarks)


INSIDE = 0.8  # share of a candidate's area inside a host face that makes it part of that face
HOST_RATIO = 1.5  # a host face's longer side is at least this many times the candidate's


def inside_faces(boxes: Tensor, hosts: Tensor) -> Tensor:
    """``Tensor[N]`` bool: ``boxes`` lying inside a larger one of ``hosts`` (``Tensor[H, 4]``).

    A box is inside a host when :data:`INSIDE` of its area is, and the host's longer side is at
    least :data:`HOST_RATIO` times its own: a face does not hold a smaller face, so such a box is a
    part of the host (the same face, as large, is not inside it).

    Example:
        >>> inside_faces(torch.tensor([[10.0, 10, 20, 20], [0, 0, 30, 30]]), torch.tensor([[0.0, 0, 32, 32]])).tolist()
        [True, False]
    """
    if len(boxes) == 0 or len(hosts) == 0:
        return torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    hosts = hosts.to(boxes)
    lt = torch.maximum(boxes[:, None, :2], hosts[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], hosts[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    area = (boxes[:, 2:] - boxes[:, :2]).prod(dim=1).clamp(min=1e-6)
    larger = longer_side(hosts)[None, :] >= HOST_RATIO * longer_side(boxes)[:, None]
    return ((inter >= INSIDE * area[:, None]) & larger).any(dim=1)


def fuse(pooled: Detections, iou: float = 0.4, *, voted: Tensor | None = None) -> Detections:
    """Box voting over pooled candidates (``Tensor[K]`` ``indices`` are their rows).

    ``voted``: ``Tensor[K]`` bool, the rows whose clusters are merged; a cluster without one
    keeps its top box unchanged, as hard NMS at ``iou`` would. ``None`` merges every cluster.
    """
    if len(pooled) == 0:
        return pooled
    keep, boxes, scores = box_voting(pooled.boxes, pooled.scores, iou, merge=voted)
    lms = None if pooled.landmarks is None else pooled.landmarks[keep]
    return Detections(boxes, scores, pooled.indices[keep], lms)
