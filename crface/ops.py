"""Box math and the NMS family.

Every function takes and returns the canonical format: ``Tensor[N, 4]`` float32 ``x1, y1, x2, y2``
in pixels plus ``Tensor[N]`` scores. Conversions from other formats happen at the public edge
(:func:`convert_boxes`), nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterator

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


# Bounds the temporaries of soft-NMS and box voting: IoU pairs computed at once (~100s of MB).
_MAX_PAIRS = 1 << 22
# Box voting settles its clusters this many boxes (in score order) at a time.
_VOTE_BLOCK = 256
# Soft-NMS considers this many leading boxes for one batch of picks.
_SOFT_NMS_BATCH = 64
# Boxes per tile of the overlap index: smaller tiles waste fewer pairs but test more tiles.
_TILE = 16


def _paired_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU of ``boxes1[i]`` with ``boxes2[i]``, ``Tensor[P, 4] x Tensor[P, 4] -> Tensor[P]``.

    Computed by :func:`box_iou` (as a batch of 1 x 1 matrices), so every pair gets the very float
    that the full matrix holds; 0/0 stays NaN, which fails every ``>=`` test.
    """
    return box_iou(boxes1[:, None], boxes2[:, None])[:, 0, 0]


class _OverlapIndex:
    """Finds every box that may overlap a query box, without computing all pairs.

    The boxes are cut into tiles of :data:`_TILE` boxes close in size and place (ordered by size
    octave, then band of ``y1``, then ``x1``) and each tile keeps the rectangle around its boxes.
    A query overlaps no box of a tile whose rectangle it does not overlap, so only the tiles that
    it overlaps give candidates. The order only makes the tiles small; the test is comparisons
    alone, so no overlapping box is ever missed. Boxes without positive finite area have IoU 0
    or NaN with every box and are left out.

    Args:
        boxes: ``Tensor[N, 4]`` xyxy.
    """

    def __init__(self, boxes: Tensor) -> None:
        x1, y1, x2, y2 = boxes.unbind(1)
        w, h = x2 - x1, y2 - y1
        rows = ((w > 0) & (h > 0) & (w * h).isfinite()).nonzero().flatten()
        octave = torch.frexp(torch.maximum(w, h)[rows]).exponent
        band = torch.ldexp(y1[rows], -octave).floor()
        order = torch.sort(x1[rows], stable=True).indices
        for key in (band, octave):
            order = order[torch.sort(key[order], stable=True).indices]
        rows = rows[order]
        # The last tile is padded with copies of the last box for its rectangle, then with -1.
        pad = -len(rows) % _TILE
        tile_boxes = boxes[torch.cat((rows, rows[-1:].expand(pad))).view(-1, _TILE)]
        self.near = tile_boxes[..., :2].amin(dim=1)  # [T, 2] top-left of each tile's rectangle
        self.far = tile_boxes[..., 2:].amax(dim=1)  # [T, 2] bottom-right
        self.tiles = torch.cat((rows, rows.new_full((pad,), -1))).view(-1, _TILE)

    def pairs(self, boxes: Tensor, queries: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(query, row)`` pairs covering every indexed row that may overlap a query.

        Args:
            boxes: the indexed ``Tensor[N, 4]``.
            queries: ``Tensor[Q]`` int64 rows of ``boxes``.

        Yields:
            ``(query_rows, rows)``, two ``Tensor[P]`` int64, ``P <= _MAX_PAIRS``, each pair
            once, grouped by query in the order of ``queries``.
        """
        step = max(1, _MAX_PAIRS // max(1, self.tiles.numel()))
        for chunk in queries.split(step):
            q = boxes[chunk]
            overlap = (
                (self.near[:, 0] < q[:, 2:3])
                & (self.far[:, 0] > q[:, 0:1])
                & (self.near[:, 1] < q[:, 3:4])
                & (self.far[:, 1] > q[:, 1:2])
            )  # [Q, T]
            query, tile = overlap.nonzero().unbind(1)
            query, rows = chunk[query].repeat_interleave(_TILE), self.tiles[tile].flatten()
            yield query[rows >= 0], rows[rows >= 0]


def _block_tops(boxes: Tensor, iou_threshold: float) -> Tensor:
    """Greedy cluster tops among a few boxes in score order, ``Tensor[M, 4] -> Tensor[M]`` bool.

    Box ``j`` is a top unless an earlier top has IoU >= ``iou_threshold`` with it. Settled in
    rounds rather than one box at a time: a box whose matching predecessors are all settled
    non-tops becomes a top, one with a top predecessor becomes a non-top. Every round settles at
    least the first unsettled box.
    """
    follows = (box_iou(boxes, boxes) >= iou_threshold).triu(diagonal=1)  # [i, j]: i before j
    top = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    open_ = torch.ones_like(top)
    while open_.any():
        claimed = (follows & top[:, None]).any(dim=0)
        waiting = (follows & (open_ | top)[:, None]).any(dim=0)
        new_top = open_ & ~waiting
        top |= new_top
        open_ &= ~(new_top | claimed)
    return top


def _cluster_tops(boxes: Tensor, iou_threshold: float) -> Tensor:
    """Cluster of each box for :func:`box_voting`, boxes in score order (ties resolved).

    Box ``j``'s cluster top is the first top before it with IoU >= ``iou_threshold``, or ``j``
    itself if there is none; the tops are what a greedy NMS keeps when IoU >= threshold
    suppresses. Settled :data:`_VOTE_BLOCK` boxes at a time: the boxes of a block that no earlier
    top claims choose their tops among themselves (:func:`_block_tops`), then the new tops claim
    the boxes they overlap anywhere (:class:`_OverlapIndex`), keeping the earliest claim.

    Args:
        boxes: ``Tensor[N, 4]`` xyxy, by decreasing score.
        iou_threshold: in [0, 1].

    Returns:
        ``Tensor[N]`` int64: the row of each box's cluster top (its own row for a top).
    """
    n = len(boxes)
    if iou_threshold == 0:
        # IoU >= 0 always holds (0/0 counts as 0): the first box takes every other.
        return torch.zeros(n, dtype=torch.int64, device=boxes.device)
    # Boxes that do not overlap have IoU 0 < threshold, so only overlapping pairs are computed.
    index = _OverlapIndex(boxes)
    top_of = torch.full((n,), n, dtype=torch.int64, device=boxes.device)
    for start in range(0, n, _VOTE_BLOCK):
        free = (top_of[start : start + _VOTE_BLOCK] == n).nonzero().flatten() + start
        if len(free) == 0:
            continue
        tops = free[_block_tops(boxes[free], iou_threshold)]
        top_of[tops] = tops
        for query, row in index.pairs(boxes, tops):
            hit = _paired_iou(boxes[query], boxes[row]) >= iou_threshold
            top_of.scatter_reduce_(0, row[hit], query[hit], "amin")
    return top_of


def _next_picks(boxes: Tensor, current: Tensor, remaining: Tensor, reach: float) -> Tensor:
    """The next soft-NMS picks, ``Tensor[K]`` int64 rows in pick order (``K >= 1``).

    The leading remaining boxes by current score (ties: lowest row), up to the first one that an
    earlier one among them overlaps by IoU > ``reach``: no pick among them changes a later one's
    score and every other score only drops, so one-at-a-time soft-NMS picks them in this order.
    """
    scores = current[remaining]
    k = min(_SOFT_NMS_BATCH, len(remaining))
    # Everything tied with the k-th score comes along, so the stable sort settles ties by row.
    leading = remaining[scores >= scores.topk(k).values[-1]]
    leading = leading[torch.sort(current[leading], descending=True, stable=True).indices[:k]]
    iou = box_iou(boxes[leading], boxes[leading]).nan_to_num(0.0)
    touched = (iou > reach).triu(diagonal=1).any(dim=0)
    return leading[: int((~touched).cumprod(dim=0).sum())]


def _multiply_in_order(values: Tensor, rows: Tensor, factors: Tensor) -> None:
    """``values[rows[i]] *= factors[i]`` for each ``i`` in order, in place; ``rows`` may repeat.

    A row's factors are applied one after another in their given order, as a loop would, so
    the float rounding is the loop's.
    """
    rows, by_row = torch.sort(rows, stable=True)
    factors = factors[by_row]
    rank = torch.arange(len(rows), device=rows.device) - torch.searchsorted(rows, rows)
    for r in range(int(rank.max()) + 1 if len(rank) else 0):
        at = rank == r
        values[rows[at]] *= factors[at]


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
    index = _OverlapIndex(boxes)
    # A pick changes the score of a box only when their IoU is above this.
    reach = iou_threshold if method == "linear" else 0.0
    keep: list[Tensor] = []
    while len(remaining := alive.nonzero().flatten()):
        picks = _next_picks(boxes, current, remaining, reach)
        keep.append(picks)
        alive[picks] = False
        for query, row in index.pairs(boxes, picks):
            # Two zero-area boxes give 0/0: no overlap, as torchvision's nms counts it.
            iou = _paired_iou(boxes[query], boxes[row]).nan_to_num(0.0)
            hit = alive[row] & (iou > reach)
            row, iou = row[hit], iou[hit]
            decay = 1.0 - iou if method == "linear" else torch.exp(-(iou * iou) / sigma)
            _multiply_in_order(current, row, decay)
        alive &= current >= score_threshold
    keep_t = torch.cat(keep) if keep else torch.zeros(0, dtype=torch.int64, device=boxes.device)
    return keep_t, current[keep_t]


def box_voting(
    boxes: Tensor,
    scores: Tensor,
    iou_threshold: float = 0.4,
    min_cluster_size: int = 1,
    merge: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Box voting, as in multi-scale face-detection test code: merge each cluster into one box.

    In decreasing score order (ties: lowest row first), the top remaining box and every remaining
    box with IoU >= ``iou_threshold`` with it form a cluster and leave the pool. The cluster becomes
    the score-weighted mean of its boxes (an unweighted mean if its scores are all zero), scored
    with the cluster's max score. Singletons are kept unchanged. Scores are expected non-negative.
    Clusters with fewer than ``min_cluster_size`` boxes are dropped (still removed from the pool):
    multi-scale test code (RetinaFace, PyramidBox) uses 2, keeping only boxes that several
    scales/flips agree on. The work grows with the number of overlapping pairs (tens of thousands
    of pooled candidates take a fraction of a second on a CPU) and memory stays bounded.

    Args:
        boxes: ``Tensor[N, 4]`` float32 xyxy pixels.
        scores: ``Tensor[N]`` float32.
        iou_threshold: cluster membership threshold (inclusive), in [0, 1].
        min_cluster_size: drop clusters with fewer boxes than this (default 1: keep all).
        merge: ``Tensor[N]`` bool: merge only the clusters that hold one of these rows; the others
            keep their top box unchanged, as :func:`nms` would (``None``: merge every cluster).

    Returns:
        ``(keep, voted_boxes, voted_scores)``: ``Tensor[K]`` int64 row of each cluster's top box,
        ``Tensor[K, 4]`` merged boxes and ``Tensor[K]`` cluster max scores, by decreasing score.

    Raises:
        ValueError: bad shapes, devices or ``iou_threshold`` outside [0, 1].
        TypeError: non-tensor input, mismatched / non-floating dtypes or a non-bool ``merge``.

    Example:
        >>> boxes = torch.tensor([[0.0, 0, 10, 10], [2, 0, 12, 10], [20, 20, 30, 30]])
        >>> box_voting(boxes, torch.tensor([0.6, 0.2, 0.5]))
        (tensor([0, 2]), tensor([[ 0.5000,  0.0000, 10.5000, 10.0000],
                [20.0000, 20.0000, 30.0000, 30.0000]]), tensor([0.6000, 0.5000]))
    """
    _check_inputs(boxes, scores, iou_threshold)
    _check_merge(merge, boxes)
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_boxes, sorted_scores = boxes[order], scores[order]
    top_of = _cluster_tops(sorted_boxes, iou_threshold)
    tops = (top_of == torch.arange(len(top_of), device=boxes.device)).nonzero().flatten()
    cluster = torch.searchsorted(tops, top_of)
    size = torch.bincount(cluster, minlength=len(tops))
    total = sorted_scores.new_zeros(len(tops)).index_add_(0, cluster, sorted_scores)[cluster]
    # Normalising first makes a singleton's weight exactly 1, so it is kept bit for bit.
    plain = 1.0 / size[cluster].to(sorted_scores.dtype)
    weights = torch.where(total > 0, sorted_scores / total, plain)
    voted = sorted_boxes.new_zeros((len(tops), 4))
    voted.index_add_(0, cluster, weights[:, None] * sorted_boxes)
    if merge is not None:
        touched = torch.zeros(len(tops), dtype=torch.bool, device=boxes.device)
        touched[cluster[merge[order]]] = True
        voted = torch.where(touched[:, None], voted, sorted_boxes[tops])
    kept = size >= min_cluster_size
    tops = tops[kept]
    return order[tops], voted[kept], sorted_scores[tops]


def _check_merge(merge: Tensor | None, boxes: Tensor) -> None:
    if merge is None:
        return
    if not isinstance(merge, Tensor) or merge.dtype != torch.bool:
        raise TypeError(
            f"merge must be a bool torch.Tensor, got {getattr(merge, 'dtype', merge)!r}"
        )
    if merge.shape != (boxes.shape[0],) or merge.device != boxes.device:
        raise ValueError(
            f"merge must have shape [{boxes.shape[0]}] on {boxes.device} to match boxes, got "
            f"{list(merge.shape)} on {merge.device}"
        )


def nms_clusters(boxes: Tensor, scores: Tensor, iou_threshold: float = 0.4) -> Tensor:
    """The greedy-NMS cluster of every box: the row of the box that :func:`nms` keeps for it.

    Args:
        boxes: ``Tensor[N, 4]`` float32 xyxy pixels.
        scores: ``Tensor[N]`` float32.
        iou_threshold: suppression threshold (inclusive, as :func:`box_voting`), in [0, 1].

    Returns:
        ``Tensor[N]`` int64: the kept row that suppresses each box (its own row if it is kept).

    Example:
        >>> boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]])
        >>> nms_clusters(boxes, torch.tensor([0.5, 0.9, 0.2]))
        tensor([1, 1, 2])
    """
    _check_inputs(boxes, scores, iou_threshold)
    order = torch.sort(scores, descending=True, stable=True).indices
    out = torch.empty_like(order)
    out[order] = order[_cluster_tops(boxes[order], iou_threshold)]
    return out


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
