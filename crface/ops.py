"""Box math and the NMS family.

Every function takes and returns the canonical format: ``Tensor[N, 4]`` float32 ``x1, y1, x2, y2``
in pixels plus ``Tensor[N]`` scores. Conversions from other formats happen at the public edge
(:func:`convert_boxes`), nowhere else.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_iou as _tv_box_iou
from torchvision.ops import nms as _tv_nms

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def convert_boxes(boxes: Tensor, in_fmt: str, out_fmt: str = "xyxy") -> Tensor:
    """Convert boxes between ``xyxy``, ``xywh`` and ``cxcywh``.

    Args:
        boxes: ``Tensor[N, 4]`` in ``in_fmt``.
        in_fmt: one of ``"xyxy"``, ``"xywh"`` (top-left corner + size), ``"cxcywh"``
            (centre + size).
        out_fmt: target format, same choices.

    Returns:
        ``Tensor[N, 4]`` in ``out_fmt``, same dtype and device.

    Raises:
        ValueError: for an unknown format name.

    Example:
        >>> convert_boxes(torch.tensor([[10.0, 20.0, 5.0, 8.0]]), "xywh")
        tensor([[10., 20., 15., 28.]])
    """
    for fmt in (in_fmt, out_fmt):
        if fmt not in BOX_FORMATS:
            raise ValueError(f"unknown box format {fmt!r}; expected one of {BOX_FORMATS}")
    if in_fmt == out_fmt:
        return boxes
    a, b, c, d = boxes.unbind(-1)
    if in_fmt == "xywh":
        xyxy = torch.stack((a, b, a + c, b + d), dim=-1)
    elif in_fmt == "cxcywh":
        xyxy = torch.stack((a - c / 2, b - d / 2, a + c / 2, b + d / 2), dim=-1)
    else:
        xyxy = boxes
    if out_fmt == "xyxy":
        return xyxy
    x1, y1, x2, y2 = xyxy.unbind(-1)
    if out_fmt == "xywh":
        return torch.stack((x1, y1, x2 - x1, y2 - y1), dim=-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU, ``Tensor[N, 4] x Tensor[M, 4] -> Tensor[N, M]`` (continuous pixels, no +1)."""
    return _tv_box_iou(boxes1, boxes2)


def oracle_confidence(boxes: Tensor, gt_boxes: Tensor) -> Tensor:
    """The paper's oracle confidence: IoU of each box with its closest ground-truth face.

    Args:
        boxes: ``Tensor[N, 4]`` candidate boxes, xyxy pixels.
        gt_boxes: ``Tensor[M, 4]`` ground-truth faces, xyxy pixels.

    Returns:
        ``Tensor[N]`` in [0, 1]; all zeros when there is no ground truth.

    Example:
        >>> oracle_confidence(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[0.0, 0, 10, 5]]))
        tensor([0.5000])
    """
    if gt_boxes.numel() == 0 or boxes.numel() == 0:
        return boxes.new_zeros(boxes.shape[0])
    return box_iou(boxes, gt_boxes).amax(dim=1)


SUPPRESS_METHODS = ("hard", "soft", "soft_gaussian", "vote", None)
SOFT_NMS_METHODS = ("linear", "gaussian")


def _check_inputs(boxes: Tensor, scores: Tensor, iou_threshold: float) -> None:
    """Validate the canonical ``boxes``/``scores`` pair and an IoU threshold (not box values)."""
    if not isinstance(boxes, Tensor) or not isinstance(scores, Tensor):
        raise TypeError(
            f"boxes and scores must be torch.Tensor, got {type(boxes).__name__} "
            f"and {type(scores).__name__}"
        )
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape [N, 4], got {list(boxes.shape)}")
    if scores.shape != (boxes.shape[0],):
        raise ValueError(
            f"scores must have shape [{boxes.shape[0]}] to match boxes, got {list(scores.shape)}"
        )
    if not boxes.is_floating_point() or scores.dtype != boxes.dtype:
        raise TypeError(
            f"boxes and scores must share one floating dtype (float32), got {boxes.dtype} "
            f"and {scores.dtype}"
        )
    if boxes.device != scores.device:
        raise ValueError(f"boxes and scores on different devices: {boxes.device}, {scores.device}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold!r}")


def _iou_row(boxes: Tensor, i: int) -> Tensor:
    """IoU of ``boxes[i]`` with every row of ``boxes``, ``Tensor[N]``."""
    # Two zero-area boxes give 0/0; count that as no overlap, as torchvision's nms does.
    return box_iou(boxes[i : i + 1], boxes)[0].nan_to_num(0.0)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float = 0.4) -> Tensor:
    """Greedy hard NMS: drop every box whose IoU with a higher-scoring kept box is > threshold.

    A thin validated wrapper over :func:`torchvision.ops.nms`, which exports to ONNX.

    Args:
        boxes: ``Tensor[N, 4]`` float32 xyxy pixels.
        scores: ``Tensor[N]`` float32.
        iou_threshold: suppress when IoU is strictly greater than this, in [0, 1].

    Returns:
        ``Tensor[K]`` int64 indices of the kept rows, sorted by decreasing score.

    Raises:
        ValueError: bad shapes, devices or ``iou_threshold`` outside [0, 1].
        TypeError: non-tensor input or mismatched / non-floating dtypes.

    Example:
        >>> boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]])
        >>> nms(boxes, torch.tensor([0.9, 0.8, 0.7]))
        tensor([0, 2])
    """
    _check_inputs(boxes, scores, iou_threshold)
    return _tv_nms(boxes, scores, iou_threshold)


def soft_nms(
    boxes: Tensor,
    scores: Tensor,
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    method: str = "linear",
    score_threshold: float = 0.001,
) -> tuple[Tensor, Tensor]:
    """Soft-NMS (Bodla et al., 2017): decay overlapping boxes' scores instead of dropping them.

    Repeatedly pick the remaining box with the highest current score (ties: lowest row) and decay
    every other remaining score ``s`` by its IoU with the pick: ``linear``: ``s *= 1 - iou`` when
    ``iou > iou_threshold``; ``gaussian``: ``s *= exp(-iou**2 / sigma)`` (``iou_threshold`` unused).
    Boxes whose score is (or decays) below ``score_threshold`` are dropped.

    Args:
        boxes: ``Tensor[N, 4]`` float32 xyxy pixels.
        scores: ``Tensor[N]`` float32.
        iou_threshold: linear decay applies above this IoU, in [0, 1].
        sigma: gaussian width, > 0.
        method: ``"linear"`` or ``"gaussian"``.
        score_threshold: minimum score for a box to stay.

    Returns:
        ``(keep, new_scores)``: ``Tensor[K]`` int64 row indices and ``Tensor[K]`` their decayed
        scores, in pick order, which is by decreasing new score.

    Raises:
        ValueError: bad shapes, devices, ``iou_threshold``, ``sigma`` or ``method``.
        TypeError: non-tensor input or mismatched / non-floating dtypes.

    Example:
        >>> boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 5], [20, 20, 30, 30]])
        >>> soft_nms(boxes, torch.tensor([0.9, 0.8, 0.7]))
        (tensor([0, 2, 1]), tensor([0.9000, 0.7000, 0.4000]))
    """
    _check_inputs(boxes, scores, iou_threshold)
    if method not in SOFT_NMS_METHODS:
        raise ValueError(f"unknown soft-NMS method {method!r}; expected one of {SOFT_NMS_METHODS}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    current = scores.clone()
    alive = current >= score_threshold
    keep: list[int] = []
    for _ in range(boxes.shape[0]):
        remaining = alive.nonzero().flatten()
        if remaining.numel() == 0:
            break
        pick = int(remaining[current[remaining].argmax()])
        keep.append(pick)
        alive[pick] = False
        iou = _iou_row(boxes, pick)
        if method == "linear":
            decay = torch.where(iou > iou_threshold, 1.0 - iou, 1.0)
        else:
            decay = torch.exp(-(iou * iou) / sigma)
        current = torch.where(alive, current * decay, current)
        alive &= current >= score_threshold
    keep_t = torch.tensor(keep, dtype=torch.int64, device=boxes.device)
    return keep_t, current[keep_t]


def box_voting(
    boxes: Tensor, scores: Tensor, iou_threshold: float = 0.4, min_cluster_size: int = 1
) -> tuple[Tensor, Tensor, Tensor]:
    """Box voting, as in multi-scale face-detection test code: merge each cluster into one box.

    In decreasing score order (ties: lowest row first), the top remaining box and every remaining
    box with IoU >= ``iou_threshold`` with it form a cluster and leave the pool. The cluster becomes
    the score-weighted mean of its boxes (an unweighted mean if its scores are all zero), scored
    with the cluster's max score. Singletons are kept unchanged. Scores are expected non-negative.
    Clusters with fewer than ``min_cluster_size`` boxes are dropped (still removed from the pool):
    multi-scale test code (RetinaFace, PyramidBox) uses 2, keeping only boxes that several
    scales/flips agree on.

    Args:
        boxes: ``Tensor[N, 4]`` float32 xyxy pixels.
        scores: ``Tensor[N]`` float32.
        iou_threshold: cluster membership threshold (inclusive), in [0, 1].
        min_cluster_size: drop clusters with fewer boxes than this (default 1: keep all).

    Returns:
        ``(keep, voted_boxes, voted_scores)``: ``Tensor[K]`` int64 row of each cluster's top box,
        ``Tensor[K, 4]`` merged boxes and ``Tensor[K]`` cluster max scores, by decreasing score.

    Raises:
        ValueError: bad shapes, devices or ``iou_threshold`` outside [0, 1].
        TypeError: non-tensor input or mismatched / non-floating dtypes.

    Example:
        >>> boxes = torch.tensor([[0.0, 0, 10, 10], [2, 0, 12, 10], [20, 20, 30, 30]])
        >>> box_voting(boxes, torch.tensor([0.6, 0.2, 0.5]))
        (tensor([0, 2]), tensor([[ 0.5000,  0.0000, 10.5000, 10.0000],
                [20.0000, 20.0000, 30.0000, 30.0000]]), tensor([0.6000, 0.5000]))
    """
    _check_inputs(boxes, scores, iou_threshold)
    n = boxes.shape[0]
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_boxes, sorted_scores = boxes[order], scores[order]
    alive = torch.ones(n, dtype=torch.bool, device=boxes.device)
    tops: list[int] = []
    voted = boxes.new_empty((n, 4))
    for _ in range(n):
        remaining = alive.nonzero().flatten()
        if remaining.numel() == 0:
            break
        top = int(remaining[0])
        members = alive & (_iou_row(sorted_boxes, top) >= iou_threshold)
        members[top] = True
        idx = members.nonzero().flatten()
        alive &= ~members
        if idx.numel() < min_cluster_size:
            continue
        weights = sorted_scores[idx]
        total = weights.sum()
        # Normalising first makes a singleton's weight exactly 1, so it is kept bit for bit.
        weights = torch.where(total > 0, weights / total, 1.0 / idx.numel())
        voted[len(tops)] = (weights[:, None] * sorted_boxes[idx]).sum(dim=0)
        tops.append(top)
    tops_t = torch.tensor(tops, dtype=torch.int64, device=boxes.device)
    return order[tops_t], voted[: len(tops)], sorted_scores[tops_t]


def suppress(
    boxes: Tensor,
    scores: Tensor,
    method: str | None = "hard",
    iou_threshold: float = 0.4,
    **kwargs: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Apply one suppression method by name; the single entry point used by the public API.

    Args:
        boxes: ``Tensor[N, 4]`` float32 xyxy pixels.
        scores: ``Tensor[N]`` float32.
        method: ``"hard"`` (:func:`nms`), ``"soft"`` (linear :func:`soft_nms`),
            ``"soft_gaussian"`` (gaussian :func:`soft_nms`), ``"vote"`` (:func:`box_voting`) or
            ``None`` (no suppression: every row, by decreasing score).
        iou_threshold: passed to the method, in [0, 1].
        **kwargs: extra arguments of the method (``sigma``, ``score_threshold`` for soft-NMS).

    Returns:
        ``(keep, boxes_out, scores_out)``: ``Tensor[K]`` int64 source rows, ``Tensor[K, 4]`` and
        ``Tensor[K]`` (merged boxes for ``"vote"``, decayed scores for soft-NMS), by decreasing
        score.

    Raises:
        ValueError: unknown ``method``, bad shapes or ``iou_threshold`` outside [0, 1].
        TypeError: non-tensor input, mismatched dtypes or keyword arguments the method lacks.

    Example:
        >>> boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10]])
        >>> suppress(boxes, torch.tensor([0.8, 0.9]), "hard")
        (tensor([1]), tensor([[ 1.,  0., 11., 10.]]), tensor([0.9000]))
    """
    if method not in SUPPRESS_METHODS:
        raise ValueError(
            f"unknown suppression method {method!r}; expected one of {SUPPRESS_METHODS}"
        )
    _check_inputs(boxes, scores, iou_threshold)
    if method == "vote":
        return box_voting(boxes, scores, iou_threshold, **kwargs)
    if method in ("soft", "soft_gaussian"):
        soft_method = "linear" if method == "soft" else "gaussian"
        keep, new_scores = soft_nms(boxes, scores, iou_threshold, method=soft_method, **kwargs)
        return keep, boxes[keep], new_scores
    if method == "hard":
        keep = nms(boxes, scores, iou_threshold, **kwargs)
    elif kwargs:
        raise TypeError(f"method=None takes no extra arguments, got {sorted(kwargs)}")
    else:
        keep = torch.sort(scores, descending=True, stable=True).indices
    return keep, boxes[keep], scores[keep]
