"""Run a detector on parts of a photo: crop, rescale, map back, keep each face once.

The one mechanism behind :func:`crface.zoom` (an upscaled second pass on the parts of a photo where
small faces are) and the tiling of photos too large for a detector. A *region* is an integer
rectangle ``x1, y1, x2, y2`` of photo pixels that *owns* the faces whose centre lies inside it;
the detector sees the region plus a margin, so a face near the region's edge is still seen whole,
and each face is kept by exactly one region however the regions touch.

    >>> import numpy as np
    >>> from crface.types import Detections
    >>> detect = lambda crop: Detections(torch.tensor([[2.0, 2, 12, 12]]), torch.tensor([0.9]))
    >>> detect_regions(detect, np.zeros((64, 64, 3), np.uint8), torch.tensor([[0, 0, 32, 32]]),
    ...                scale=2.0, margin=4).boxes.tolist()
    [[1.0, 1.0, 6.0, 6.0]]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from crface.types import Detections

__all__ = ["cells_to_regions", "concat", "crop_boxes", "detect_regions", "map_back", "owned"]


def map_back(det: Detections, offset: tuple[int, int], scale: float) -> Detections:
    """Detections of a crop taken at ``offset`` (x, y) and resized by ``scale``, in photo pixels."""
    shift = torch.tensor([offset[0], offset[1]], dtype=torch.float32, device=det.boxes.device)
    boxes = det.boxes / scale + shift.repeat(2)
    lms = None if det.landmarks is None else det.landmarks / scale + shift
    return Detections(boxes, det.scores, det.indices, lms)


def owned(det: Detections, region: Tensor) -> Tensor:
    """Mask of the rows whose box centre lies in ``region`` (half-open, so regions never share)."""
    cx = (det.boxes[:, 0] + det.boxes[:, 2]) / 2
    cy = (det.boxes[:, 1] + det.boxes[:, 3]) / 2
    x1, y1, x2, y2 = region.tolist()
    return (cx >= x1) & (cx < x2) & (cy >= y1) & (cy < y2)


def _crop(image: np.ndarray, box: tuple[int, int, int, int], scale: float) -> np.ndarray:
    x1, y1, x2, y2 = box
    crop = image[y1:y2, x1:x2]
    if scale == 1.0:
        return np.ascontiguousarray(crop)
    size = (max(1, round((x2 - x1) * scale)), max(1, round((y2 - y1) * scale)))
    return np.asarray(Image.fromarray(crop).resize(size, Image.BILINEAR))


def detect_regions(
    detect: Callable[[np.ndarray], Detections],
    image: np.ndarray,
    regions: Tensor,
    *,
    scale: float = 1.0,
    margin: int = 0,
) -> Detections:
    """Run ``detect`` on each region (plus ``margin``) resized by ``scale``; pool what each owns.

    Args:
        detect: ``crop -> Detections`` in the crop's pixels (an ``HxWx3`` uint8 array in
            ``image``'s channel order).
        image: ``HxWx3`` uint8 photo.
        regions: ``Tensor[R, 4]`` integer xyxy photo pixels (e.g. from :func:`cells_to_regions`).
        scale: resize factor of every crop before detection.
        margin: photo pixels of context added on each side (clipped to the photo); faces up to
            about ``2 * margin`` px across are seen whole by the region that owns them.

    Returns:
        :class:`Detections` in photo pixels: each region's candidates whose box centre lies in
        the region, in region order (``indices`` restart at each region's own output rows).
    """
    parts = []
    for region, box in zip(regions, crop_boxes(regions, margin, image.shape[:2]).tolist()):
        det = map_back(detect(_crop(image, tuple(box), scale)), box[:2], scale)
        parts.append(det[owned(det, region)])
    return concat(parts)


def crop_boxes(regions: Tensor, margin: int, image_size: tuple[int, int]) -> Tensor:
    """``Tensor[R, 4]`` int64: what the detector sees of each region, ``margin`` added, clipped."""
    h, w = image_size
    grown = regions.to(torch.int64) + torch.tensor([-margin, -margin, margin, margin])
    return torch.stack(
        [
            grown[:, 0].clamp(min=0),
            grown[:, 1].clamp(min=0),
            grown[:, 2].clamp(max=w),
            grown[:, 3].clamp(max=h),
        ],
        dim=1,
    )


def concat(parts: list[Detections]) -> Detections:
    """Rows of several :class:`Detections` in order (landmarks kept only when all have them)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return Detections.empty()
    lms = [p.landmarks for p in parts]
    same_l = all(m is not None for m in lms) and len({m.shape[1] for m in lms}) == 1
    return Detections(
        torch.cat([p.boxes for p in parts]),
        torch.cat([p.scores for p in parts]),
        torch.cat([p.indices for p in parts]),
        torch.cat(lms) if same_l else None,
    )


def cells_to_regions(picked: Tensor, cell: int, image_size: tuple[int, int]) -> Tensor:
    """Merge picked grid cells into few rectangles that cover exactly those cells.

    Runs of picked cells in a row become one rectangle; runs spanning the same columns in
    consecutive rows merge into taller ones.

    Args:
        picked: ``Tensor[GH, GW]`` bool, the cells (``cell`` px squares from the top left) to cover.
        cell: cell side in photo pixels.
        image_size: ``(height, width)`` of the photo (the last row/column of cells is clipped).

    Returns:
        ``Tensor[R, 4]`` int64 xyxy photo pixels.

    Example:
        >>> cells_to_regions(torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]]).bool(), 10, (25, 30))
        tensor([[ 0,  0, 20, 20],
                [20, 20, 30, 25]])
    """
    open_runs: dict[tuple[int, int], list[int]] = {}  # (c0, c1) -> [r0, r1] still growing
    done: list[list[int]] = []
    for r, row in enumerate(picked.tolist()):
        runs, c = set(), 0
        while c < len(row):
            if row[c]:
                c0 = c
                while c < len(row) and row[c]:
                    c += 1
                runs.add((c0, c))
            c += 1
        for key in list(open_runs):
            if key not in runs:
                done.append([*key, *open_runs.pop(key)])
        for key in runs:
            open_runs.setdefault(key, [r, r])[1] = r + 1
    done += [[*key, *rows] for key, rows in open_runs.items()]
    h, w = image_size
    rects = [
        [c0 * cell, r0 * cell, min(w, c1 * cell), min(h, r1 * cell)] for c0, c1, r0, r1 in done
    ]
    rects.sort(key=lambda b: (b[1], b[0]))
    return torch.tensor(rects, dtype=torch.int64).reshape(-1, 4)
