"""Reference post-processing to compare the ranker against, all from cached candidates.

* ``single``: single-scale candidates + hard NMS (IoU 0.4), the detector as users run it.
* ``soft``: single-scale + Soft-NMS (Gaussian, sigma 0.5).
* ``multi``: the RetinaFace test protocol: candidates of every scale and its mirror pooled, then
  box voting at IoU 0.4 keeping clusters that at least two passes agree on.
* ``oracle``: every candidate's score replaced by its IoU with the closest ground truth (the
  paper's oracle confidence), then NMS: what a perfect ranker reaches with the detector's boxes.
* ``vote``: single-scale + box voting (IoU 0.4, singletons kept).

Partial oracles, which say where the oracle's headroom lies (IoU with the closest face, ``q``),
on the candidates the detector scores at least 0.02:

* ``oracle_kept``: every one scores ``q`` (``oracle`` also scores those under 0.02).

* ``oracle_fp``: false positives only: ``q < 0.5`` scores 0, the rest keep the detector's score.
* ``oracle_tp``: true faces only: ``q >= 0.5`` scores ``max(score, q)``, false positives keep theirs.
* ``oracle_member``: the detector's own NMS clusters keep their top scores, but each cluster's
  best-localised member (highest ``q``) carries it: the worth of choosing the right box.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from crface.cache import CandidateCache
from crface.data import FaceDataset
from crface.ops import box_voting, nms_clusters, oracle_confidence, suppress
from crface.types import Detections

METHODS = ("single", "soft", "multi", "oracle")
PARTIAL_ORACLES = ("oracle_kept", "oracle_fp", "oracle_tp", "oracle_member")
SINGLE_SCALE = ("single", "soft", "vote", "oracle", *PARTIAL_ORACLES)
TRUE_IOU = 0.5  # the WIDER protocol's match threshold
SCORE_THRESHOLD = 0.02  # RetinaFace's WIDER test threshold
MAX_DET = 750


def _finish(det: Detections, keep, boxes, scores) -> Detections:
    keep, boxes, scores = keep[:MAX_DET], boxes[:MAX_DET], scores[:MAX_DET]
    lm = None if det.landmarks is None else det.landmarks[keep]
    return Detections(boxes, scores, det.indices[keep], lm)


def postprocess(det: Detections, method: str = "hard", nms_iou: float = 0.4) -> Detections:
    """Threshold at 0.02, suppress with ``method`` (see :func:`crface.ops.suppress`), keep 750."""
    det = det[det.scores >= SCORE_THRESHOLD]
    if len(det) == 0:
        return det
    kwargs = {"sigma": 0.5} if method == "soft_gaussian" else {}
    return _finish(det, *suppress(det.boxes, det.scores, method, nms_iou, **kwargs))


def multiscale_vote(passes: Sequence[Detections], iou: float = 0.4) -> Detections:
    """Pool candidates of several (scale, flip) passes and fuse them by box voting."""
    kept = [p[p.scores >= SCORE_THRESHOLD] for p in passes]
    boxes = torch.cat([p.boxes for p in kept])
    scores = torch.cat([p.scores for p in kept])
    if boxes.numel() == 0:
        return Detections.empty()
    pooled = Detections(boxes, scores)
    return _finish(pooled, *box_voting(boxes, scores, iou, min_cluster_size=2))


def oracle(det: Detections, gt_boxes: torch.Tensor, nms_iou: float = 0.4) -> Detections:
    """NMS on the oracle confidence (IoU with the closest ground truth) instead of the scores."""
    return postprocess(
        Detections(det.boxes, oracle_confidence(det.boxes, gt_boxes), det.indices, det.landmarks),
        "hard",
        nms_iou,
    )


def partial_oracle(
    det: Detections, gt_boxes: torch.Tensor, kind: str, nms_iou: float = 0.4
) -> Detections:
    """One of :data:`PARTIAL_ORACLES` (see the module docstring) on raw candidates ``det``.

    Raises:
        ValueError: unknown ``kind`` (lists the valid ones).
    """
    if kind not in PARTIAL_ORACLES:
        raise ValueError(f"unknown partial oracle {kind!r}; expected one of {PARTIAL_ORACLES}")
    det = det[det.scores >= SCORE_THRESHOLD]
    if len(det) == 0:
        return det
    q = oracle_confidence(det.boxes, gt_boxes)
    true = q >= TRUE_IOU
    if kind != "oracle_member":
        if kind == "oracle_kept":
            scores = q
        elif kind == "oracle_fp":
            scores = torch.where(true, det.scores, 0.0)
        else:
            scores = torch.where(true, torch.maximum(det.scores, q), det.scores)
        return postprocess(
            Detections(det.boxes, scores, det.indices, det.landmarks), "hard", nms_iou
        )
    top_of = nms_clusters(det.boxes, det.scores, nms_iou)
    # Per cluster (by its top's row), the member with the highest q; ties: the lowest row.
    best = torch.full((len(det),), -1.0).scatter_reduce(0, top_of, q, "amax")
    rows = torch.arange(len(det))
    carrier = torch.full((len(det),), len(det)).scatter_reduce(
        0, top_of[q == best[top_of]], rows[q == best[top_of]], "amin"
    )
    tops = rows[top_of == rows]
    tops = tops[torch.sort(det.scores[tops], descending=True, stable=True).indices]
    rows, boxes, scores = carrier[tops], det.boxes[carrier[tops]], det.scores[tops]
    return _finish(det, rows, boxes, scores)


def baseline_predictions(
    method: str,
    cache: CandidateCache,
    dataset: FaceDataset,
    detector: str,
    variants: Sequence[tuple[float, bool]] = ((1.0, False),),
) -> dict[str, Detections]:
    """Predictions of baseline ``method`` for every image of ``dataset`` from ``cache``.

    ``variants`` lists the (scale, flip) passes pooled by ``multi``; the other methods use the
    single-scale pass ``(1.0, False)``.

    Raises:
        ValueError: unknown method (lists the valid ones).
        FileNotFoundError: a needed cache file is missing (names the dump to run).
    """
    if method not in METHODS + SINGLE_SCALE:
        valid = tuple(dict.fromkeys(METHODS + SINGLE_SCALE))
        raise ValueError(f"unknown baseline {method!r}; expected one of {valid}")
    out = {}
    for sample in dataset:
        if method == "multi":
            out[sample.name] = multiscale_vote(
                [cache.load(detector, s, f, sample.name) for s, f in variants]
            )
            continue
        det = cache.load(detector, 1.0, False, sample.name)
        if method == "single":
            out[sample.name] = postprocess(det, "hard")
        elif method == "soft":
            out[sample.name] = postprocess(det, "soft_gaussian")
        elif method == "vote":
            out[sample.name] = postprocess(det, "vote")
        elif method in PARTIAL_ORACLES:
            out[sample.name] = partial_oracle(det, sample.boxes, method)
        else:
            out[sample.name] = oracle(det, sample.boxes)
    return out
