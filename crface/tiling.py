"""Tiling: run a detector on overlapping tiles of a photo too large for it to take whole.

The same mechanism as :func:`crface.zoom` (:mod:`crface.regions`), at scale 1 over a fixed grid:
each tile owns the faces centred in it and is seen with a margin of ``overlap`` px, so a face up
to about ``2 * overlap`` px across that a tile edge cuts is still found whole, once. The tiles'
candidates are pooled in photo pixels and fused once for the whole photo: box voting, or the
ranker when a ``refiner`` is given.

    >>> import numpy as np
    >>> def detect(a):  # a toy detector: the bounding box of the bright pixels
    ...     ys, xs = np.nonzero(a[..., 0])
    ...     return [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 0.9]] if len(xs) else []
    >>> photo = np.zeros((300, 300, 3), np.uint8)
    >>> photo[95:105, 95:105] = 255  # a 10 px face on the seam of four 100 px tiles
    >>> tile(detect, photo, tile=100, overlap=16).boxes.tolist()
    [[95.0, 95.0, 105.0, 105.0]]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from crface.regions import detect_regions
from crface.types import Detections
from crface.zooming import as_array, merge, runner

if TYPE_CHECKING:
    from crface.refiner import Refiner

__all__ = ["grid_regions", "tile"]


def grid_regions(image_size: tuple[int, int], tile: int) -> Tensor:
    """``Tensor[R, 4]`` int64: the photo cut into ``tile`` px squares (the last ones clipped).

    Example:
        >>> grid_regions((150, 250), 100).tolist()
        [[0, 0, 100, 100], [100, 0, 200, 100], [200, 0, 250, 100], [0, 100, 100, 150], [100, 100, 200, 150], [200, 100, 250, 150]]
    """
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile must be a positive number of pixels; got {tile!r}")
    h, w = image_size
    rows = [
        [x, y, min(x + tile, w), min(y + tile, h)]
        for y in range(0, h, tile)
        for x in range(0, w, tile)
    ]
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, 4)


def tile(
    detect_fn: Callable[..., Any],
    image: Any,
    *,
    tile: int = 2048,
    overlap: int = 128,
    adapter: str = "generic",
    refiner: Refiner | None = None,
    vote_iou: float = 0.4,
    rerank_kwargs: dict[str, Any] | None = None,
    **adapter_kwargs: Any,
) -> Detections:
    """Detect on overlapping tiles, map the boxes back, fuse once for the whole photo.

    Args:
        detect_fn: the detector, called on ``HxWx3`` uint8 tiles (as :func:`crface.zoom`).
        image: the photo (array, PIL image, tensor or path).
        tile: tile side in photo pixels (the largest input the detector handles well).
        overlap: margin added around each tile, in pixels; faces larger than about
            ``2 * overlap`` that a tile edge cuts may come back as parts.
        adapter: adapter name for ``detect_fn``'s output.
        refiner: fuse with :meth:`Refiner.rerank` instead of box voting.
        vote_iou: IoU threshold of the box voting.
        rerank_kwargs: options for :meth:`Refiner.rerank`.
        **adapter_kwargs: adapter options (fixed input sizes are refused: edge tiles are smaller).

    Returns:
        :class:`Detections` in photo pixels by decreasing score.

    Raises:
        ValueError: bad ``tile`` / ``overlap`` or unknown adapter.
        TypeError: a fixed ``image_size=`` / ``input_size=`` adapter option.
        RuntimeError: the detector failed on a tile (names its size).
    """
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise ValueError(f"overlap must be a number of pixels >= 0; got {overlap!r}")
    run = runner(detect_fn, adapter, **adapter_kwargs)
    array = as_array(image)
    regions = grid_regions(array.shape[:2], tile)
    pooled = detect_regions(run, array, regions, scale=1.0, margin=math.ceil(overlap))
    return merge(image, pooled, refiner, rerank_kwargs, vote_iou)
