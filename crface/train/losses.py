"""Training losses: the paper's pairwise ranking loss (sec. 3.2, eq. 1-2) and the regression
baselines of its Table 1, all behind one interface::

    loss = fn(refined, oracle, valid, weights=None)   # -> scalar Tensor

``refined`` is the ranker's output ``Tensor[B, N]``, ``oracle`` the target ``Tensor[B, N]`` (IoU of
each candidate with its closest ground-truth face, :func:`crface.ops.oracle_confidence`), ``valid``
a ``Tensor[B, N]`` bool mask of real (non-padding) rows and ``weights`` an optional ``Tensor[B, N]``
of non-negative per-row weights (0 takes a row out of the loss, e.g. a candidate that may be an
unlabelled face). Rows are in the box matrix's order: sorted by the *detector's* confidence.

Example:
    >>> fn = make_loss("rank", num_pairs=1)
    >>> refined = torch.tensor([[0.2, 0.8]])
    >>> oracle, valid = torch.tensor([[0.9, 0.0]]), torch.ones(1, 2, dtype=torch.bool)
    >>> round(float(fn(refined, oracle, valid)), 4)    # softplus(-(0.2 - 0.8))
    1.0375
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from crface.ops import box_iou, convert_boxes

TIES = ("ignore", "paper")
PAIR_WEIGHTS = ("min", "product")
# Keeps 0/0 (a skip or batch without a weighted pair) at 0 without a data-dependent branch, which
# would force a device synchronisation on CUDA.
_EPS = 1e-12

LossFn = Callable[..., Tensor]


def _row_weights(refined: Tensor, oracle: Tensor, valid: Tensor, weights: Tensor | None) -> Tensor:
    """Validate the common arguments; return ``Tensor[B, N]`` weights, 0 on invalid rows."""
    for name, t in (("refined", refined), ("oracle", oracle), ("valid", valid)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(t).__name__}")
    if refined.ndim != 2:
        raise ValueError(f"refined must have shape (B, N); got {tuple(refined.shape)}")
    if not refined.is_floating_point():
        raise TypeError(f"refined must be floating point; got {refined.dtype}")
    if oracle.shape != refined.shape or valid.shape != refined.shape:
        raise ValueError(
            f"refined, oracle and valid must share one shape (B, N); got {tuple(refined.shape)}, "
            f"{tuple(oracle.shape)} and {tuple(valid.shape)}"
        )
    if valid.dtype != torch.bool:
        raise TypeError(f"valid must be a bool mask; got {valid.dtype}")
    w = valid.to(refined.dtype)
    if weights is not None:
        if not isinstance(weights, Tensor) or weights.shape != refined.shape:
            shape = tuple(weights.shape) if isinstance(weights, Tensor) else type(weights).__name__
            raise ValueError(
                f"weights must be a Tensor of shape {tuple(refined.shape)}; got {shape}"
            )
        w = w * weights.to(refined.dtype)
    return w


def pairwise_ranking_loss(
    refined: Tensor,
    oracle: Tensor,
    valid: Tensor,
    weights: Tensor | None = None,
    *,
    num_pairs: int = 10,
    ties: str = "ignore",
    scale: float = 1.0,
    pair_weight: str = "min",
    floor: float = 0.0,
) -> Tensor:
    """The paper's n-pair ranking loss (eq. 1-2), averaged per skip and then over the skips.

    Rows are the detector's candidates sorted by its confidence. For every skip
    ``k = 1 .. num_pairs`` each valid row ``i`` is paired with the valid row ``k`` places below it
    (invalid rows are removed first, so a gap in ``valid`` does not break the chain; zero-*weight*
    rows stay in the chain and only their pairs are unweighted). A pair ``(i, j)`` gets the label
    ``t = [oracle_i > oracle_j]`` and the loss ``BCEWithLogits(scale * (c'_i - c'_j), t)``: the
    refined confidences are pushed into the oracle's order. This is eq. 2 with its ``Y`` flipped
    (``t = 1 - Y``) and the logit's sign to match, which is what the equation means: as printed it
    would push the pair *against* the oracle's order.

    The weighted mean is taken over all pairs of the batch at each skip, then the per-skip losses
    are summed and divided by ``num_pairs`` ("divide the loss by n"); a skip with no pair (fewer
    than ``k + 1`` valid rows) contributes 0.

    Ties (``oracle_i == oracle_j``, above all two background boxes with oracle 0):

    * ``"ignore"`` (default) drops them. A tie says nothing about the order NMS needs, yet eq. 1's
      ``<=`` labels it "the lower-ranked box is better", and since most of the ~5000 candidates are
      background, those labels would be the bulk of all pairs and would steadily train the network
      to reverse the detector's order among background boxes instead of fixing the pairs that
      matter (a face box ranked below a worse box).
    * ``"paper"`` labels them as eq. 1 does (``Y = 1``, i.e. ``t = 0``).

    Args:
        refined: ``Tensor[B, N]`` refined confidences (in [0, 1] from the ranker).
        oracle: ``Tensor[B, N]`` oracle confidences.
        valid: ``Tensor[B, N]`` bool, real rows.
        weights: optional ``Tensor[B, N]`` non-negative row weights.
        num_pairs: n, the number of skips (paper: 10).
        ties: ``"ignore"`` or ``"paper"``.
        scale: multiplies the logit ``c'_i - c'_j``; since refined confidences live in [0, 1] the
            logit never exceeds 1 in size at ``scale=1`` (the paper's form); a larger scale makes
            the loss sharper.
        pair_weight: how a pair's weight combines its rows' weights: ``"min"`` or ``"product"``
            (identical for 0/1 weights).
        floor: oracle values below it count as 0 (default 0: the paper). At the WIDER protocol's
            match threshold, 0.5, every candidate under it is a miss whatever its IoU, and how
            misses order among themselves never changes AP: their pairs become ties.

    Returns:
        A scalar Tensor (0, still attached to the graph, when there is no weighted pair).

    Raises:
        ValueError: bad shapes or option values.
        TypeError: non-tensor input, non-bool ``valid``.

    Example:
        >>> refined = torch.tensor([[0.5, 0.5, 0.5]])
        >>> oracle = torch.tensor([[0.0, 0.8, 0.0]])
        >>> valid = torch.ones(1, 3, dtype=torch.bool)
        >>> # skip 1: (0,1) t=0, (1,2) t=1; skip 2: (0,2) is a tie, ignored -> log(2) / 2
        >>> round(float(pairwise_ranking_loss(refined, oracle, valid, num_pairs=2)), 4)
        0.3466
    """
    w = _row_weights(refined, oracle, valid, weights)
    if isinstance(num_pairs, bool) or not isinstance(num_pairs, int) or num_pairs < 1:
        raise ValueError(f"num_pairs must be a positive integer; got {num_pairs!r}")
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}; got {ties!r}")
    if pair_weight not in PAIR_WEIGHTS:
        raise ValueError(f"pair_weight must be one of {PAIR_WEIGHTS}; got {pair_weight!r}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0; got {scale!r}")
    oracle = _floored(oracle, floor)
    # Move the valid rows of each image to the front, keeping their order (a no-op for box
    # matrices, whose padding is already at the end).
    order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)
    c, o = refined.gather(1, order), oracle.gather(1, order)
    w = w.gather(1, order)
    total = refined.new_zeros(())
    for k in range(1, min(num_pairs, refined.shape[1] - 1) + 1):
        wi, wj = w[:, :-k], w[:, k:]
        pw = torch.minimum(wi, wj) if pair_weight == "min" else wi * wj
        oi, oj = o[:, :-k], o[:, k:]
        if ties == "ignore":
            pw = pw * (oi != oj).to(pw.dtype)
        target = (oi > oj).to(c.dtype)
        per_pair = F.binary_cross_entropy_with_logits(
            scale * (c[:, :-k] - c[:, k:]), target, reduction="none"
        )
        total = total + (per_pair * pw).sum() / pw.sum().clamp_min(_EPS)
    # Keeps the result attached to the graph even when no skip fits (N < 2).
    return total / num_pairs + 0.0 * refined.sum()


def cluster_pair_loss(
    refined: Tensor,
    oracle: Tensor,
    boxes: Tensor,
    weights: Tensor,
    *,
    iou_threshold: float = 0.4,
    scale: float = 10.0,
    floor: float = 0.0,
) -> Tensor:
    """Ranking loss over the rivals inside each NMS cluster: every pair of candidates that overlap
    by IoU >= ``iou_threshold`` (the NMS threshold: one of them suppresses the other) and whose
    oracles differ, pushed into the oracle's order with ``BCEWithLogits(scale * (c'_i - c'_j))``.

    The paper's neighbour pairs join candidates of similar *score*, which in a crowded photo are
    mostly different faces; which member of a cluster carries it is what these pairs teach.

    Args:
        refined: ``Tensor[B, N]`` refined confidences.
        oracle: ``Tensor[B, N]`` oracle confidences.
        boxes: ``Tensor[B, N, 5]`` the box matrix (``x, y, w, h, c``; padding rows zero).
        weights: ``Tensor[B, N]`` row weights; rows of weight 0 (padding included) take no part.
        iou_threshold: overlap that makes two candidates rivals, in (0, 1].
        scale: logit scale, as in :func:`pairwise_ranking_loss`.
        floor: oracle values below it count as 0, as in :func:`pairwise_ranking_loss`.

    Returns:
        The mean over all pairs of the batch (0, still attached to the graph, without a pair).

    Example:
        >>> boxes = torch.tensor([[[0.0, 0, 1, 1, 0.9], [0.1, 0, 1, 1, 0.5], [5, 5, 1, 1, 0.4]]])
        >>> refined = torch.tensor([[0.5, 0.5, 0.5]])
        >>> oracle, weights = torch.tensor([[0.6, 0.9, 0.0]]), torch.ones(1, 3)
        >>> round(float(cluster_pair_loss(refined, oracle, boxes, weights)), 4)  # one pair: log 2
        0.6931
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1]; got {iou_threshold!r}")
    oracle = _floored(oracle, floor)
    xyxy = convert_boxes(boxes[..., :4], "xywh")
    total, count = refined.new_zeros(()), 0
    for b in range(refined.shape[0]):
        rows = (weights[b] > 0).nonzero().flatten()
        o = oracle[b, rows]
        better, worse = (
            ((box_iou(xyxy[b, rows], xyxy[b, rows]) >= iou_threshold) & (o[:, None] > o[None, :]))
            .nonzero()
            .unbind(1)
        )
        logits = scale * (refined[b, rows[better]] - refined[b, rows[worse]])
        total = total + F.softplus(-logits).sum()
        count += better.numel()
    return total / max(count, 1) + 0.0 * refined.sum()


def _floored(oracle: Tensor, floor: float) -> Tensor:
    """``oracle`` with values under ``floor`` (in [0, 1]) set to 0: the losses' ``floor`` option."""
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must be in [0, 1]; got {floor!r}")
    return torch.where(oracle < floor, 0.0, oracle)


def _weighted_mean(per_row: Tensor, w: Tensor) -> Tensor:
    return (per_row * w).sum() / w.sum().clamp_min(_EPS)


def ce_loss(
    refined: Tensor, oracle: Tensor, valid: Tensor, weights: Tensor | None = None
) -> Tensor:
    """Binary cross-entropy of the refined confidence against the oracle (a soft label), weighted
    mean over valid rows (Table 1's "Cross Entropy")."""
    w = _row_weights(refined, oracle, valid, weights)
    return _weighted_mean(
        F.binary_cross_entropy(refined, oracle.to(refined.dtype), reduction="none"), w
    )


def l1_loss(
    refined: Tensor, oracle: Tensor, valid: Tensor, weights: Tensor | None = None
) -> Tensor:
    """``|c' - oracle|``, weighted mean over valid rows."""
    w = _row_weights(refined, oracle, valid, weights)
    return _weighted_mean(F.l1_loss(refined, oracle.to(refined.dtype), reduction="none"), w)


def l2_loss(
    refined: Tensor, oracle: Tensor, valid: Tensor, weights: Tensor | None = None
) -> Tensor:
    """``(c' - oracle)^2``, weighted mean over valid rows."""
    w = _row_weights(refined, oracle, valid, weights)
    return _weighted_mean(F.mse_loss(refined, oracle.to(refined.dtype), reduction="none"), w)


def smooth_l1_loss(
    refined: Tensor,
    oracle: Tensor,
    valid: Tensor,
    weights: Tensor | None = None,
    *,
    beta: float = 0.1,
) -> Tensor:
    """Smooth L1 (Huber / beta), weighted mean over valid rows.

    ``beta`` defaults to 0.1, not torch's 1.0: confidences and targets lie in [0, 1], so with
    ``beta=1`` every error is in the quadratic zone and the loss is just half of L2.
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0; got {beta!r}")
    w = _row_weights(refined, oracle, valid, weights)
    per_row = F.smooth_l1_loss(refined, oracle.to(refined.dtype), reduction="none", beta=beta)
    return _weighted_mean(per_row, w)


LOSSES: dict[str, LossFn] = {
    "rank": pairwise_ranking_loss,
    "ce": ce_loss,
    "l1": l1_loss,
    "l2": l2_loss,
    "smooth_l1": smooth_l1_loss,
}


def make_loss(name: str, **params: object) -> LossFn:
    """The loss called ``name`` with its keyword ``params`` bound.

    Args:
        name: ``"rank"`` (:func:`pairwise_ranking_loss`), ``"ce"``, ``"l1"``, ``"l2"`` or
            ``"smooth_l1"``.
        **params: keyword options of that loss (e.g. ``num_pairs``, ``ties`` for ``"rank"``).

    Returns:
        ``fn(refined, oracle, valid, weights=None) -> Tensor`` (scalar).

    Raises:
        ValueError: unknown name (the message lists the options) or bad option values.
        TypeError: an option the loss does not take (the message lists the ones it does).

    Example:
        >>> make_loss("rank", num_pairs=5, ties="paper").keywords
        {'num_pairs': 5, 'ties': 'paper'}
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; options: {sorted(LOSSES)}")
    fn = LOSSES[name]
    sig = inspect.signature(fn)
    options = [p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(params) - set(options))
    if unknown:
        raise TypeError(f"loss {name!r} takes no option(s) {unknown}; its options: {options}")
    bound = functools.partial(fn, **params)
    # Validate option values now (a config typo should fail before training starts).
    probe = torch.zeros(1, 3)
    bound(probe, probe, torch.ones(1, 3, dtype=torch.bool))
    return bound
