"""UltraFace (Ultra-Light-Fast-Generic-Face-Detector-1MB) -> :class:`~crface.types.Detections`.

Accepted format: the two raw ONNX outputs, *before* NMS (the reference ``predict`` runs
``hard_nms``; skip it, since the ranker re-orders the candidates and runs NMS itself):

* ``scores (1, P, 2)``: softmaxed ``background, face`` probabilities per prior;
* ``boxes (1, P, 4)``: already decoded ``x1, y1, x2, y2`` as fractions of the network input.

The batch axis may be omitted. Pass them as a ``(scores, boxes)`` pair (the ONNX output order) or a
mapping with keys ``scores`` and ``boxes``, together with ``image_size=(H, W)``: because the image
is resized (stretched) to the network input, fractions times the *original* image size give boxes
in the original image's pixels. UltraFace has no landmarks. Rows keep the prior order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crface.adapters.generic import as_float_tensor, from_boxes, squeeze_batch, unknown_format
from crface.types import Detections

FORMATS = (
    "(scores (1, P, 2), boxes (1, P, 4)) as a pair or a mapping with keys 'scores' and 'boxes', "
    "boxes as normalised x1, y1, x2, y2, plus image_size=(H, W)",
)


def decode_raw(
    scores: Any, boxes: Any, image_size: tuple[int, int], *, score_threshold: float = 0.0
) -> Detections:
    """Scale UltraFace's normalised boxes to pixels and take the face column of the scores.

    Args:
        scores: ``(1, P, 2)`` or ``(P, 2)`` softmax probabilities (face = column 1).
        boxes: ``(1, P, 4)`` or ``(P, 4)`` normalised ``x1, y1, x2, y2``.
        image_size: ``(H, W)`` of the image the boxes should be expressed in.
        score_threshold: drop priors scoring below this (0 keeps them all).

    Returns:
        :class:`Detections` with ``boxes (K, 4)`` xyxy pixels, ``scores (K,)``, no landmarks.

    Raises:
        ValueError: for mismatched shapes, a non-positive image size, boxes with a negative size
            or non-finite values.

    Example:
        >>> decode_raw([[0.2, 0.8]], [[0.1, 0.2, 0.5, 1.0]], (100, 200)).boxes.tolist()
        [[20.0, 20.0, 100.0, 100.0]]
    """
    s = squeeze_batch(as_float_tensor(scores, "scores"), "scores", 2)
    b = squeeze_batch(as_float_tensor(boxes, "boxes"), "boxes", 2).to(s.device)
    if s.shape[1] != 2 or b.shape != (s.shape[0], 4):
        raise ValueError(
            "UltraFace outputs must be scores (1, P, 2) and boxes (1, P, 4); got "
            f"{tuple(s.shape)} and {tuple(b.shape)} after dropping the batch axis"
        )
    det = from_boxes(b, s[:, 1], normalized=True, image_size=image_size)
    return det[det.scores >= score_threshold] if score_threshold > 0 else det


def to_detections(
    output: Any, *, image_size: tuple[int, int] | None = None, score_threshold: float = 0.0
) -> Detections:
    """Convert UltraFace's ``(scores, boxes)`` (see the module docstring) to :class:`Detections`.

    Args:
        output: ``(scores, boxes)`` or ``{"scores": ..., "boxes": ...}``.
        image_size: ``(H, W)`` of the original image (required).
        score_threshold: drop priors scoring below this.

    Raises:
        ValueError: for an unrecognised format (the message lists the accepted one) or a missing
            ``image_size``.

    Example:
        >>> len(to_detections({"scores": [[0.5, 0.5]], "boxes": [[0, 0, 1, 1]]}, image_size=(8, 8)))
        1
    """
    if isinstance(output, Mapping) and "scores" in output and "boxes" in output:
        pair = (output["scores"], output["boxes"])
    elif isinstance(output, Sequence) and not isinstance(output, str) and len(output) == 2:
        pair = tuple(output)
    else:
        raise unknown_format("UltraFace", type(output).__name__, FORMATS)
    if image_size is None:
        raise ValueError("UltraFace outputs need image_size=(H, W) of the original image")
    return decode_raw(*pair, image_size, score_threshold=score_threshold)
