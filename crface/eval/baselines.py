"""Reference post-processing to compare the ranker against, all from cached candidates.

* ``single``: single-scale candidates + hard NMS (IoU 0.4), the detector as users run it.
* ``soft``: single-scale + Soft-NMS (Gaussian, sigma 0.5).
* ``multi``: the RetinaFace test protocol: candidates of every scale and its mirror pooled, then
  box voting at IoU 0.4 keeping clusters that at least two passes agree on.
* ``oracle``: every candidate's score replaced by its IoU with the closest ground truth (the
  paper's oracle confidence), then NMS: what a perfect ranker reaches with the detector's boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from crface.cache import CandidateCache
from crface.data import FaceDataset
from crface.ops import box_voting, oracle_confidence, suppress
from crface.types import Detections

METHODS = ("single", "soft", "multi", "oracle")
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
    if method not in METHODS:
        raise ValueError(f"unknown baseline {method!r}; expected one of {METHODS}")
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
        else:
            out[sample.name] = oracle(det, sample.boxes)
    return out
