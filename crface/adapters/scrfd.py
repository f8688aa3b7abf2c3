"""SCRFD (insightface) outputs -> :class:`~crface.types.Detections`.

Two formats are accepted:

* **raw network outputs** (what the ONNX graph returns, *before* NMS): per stride
  ``s in (8, 16, 32)`` a score array ``(N_s, 1)`` (already sigmoided), a box array ``(N_s, 4)`` and,
  for the ``*_kps`` models, a keypoint array ``(N_s, 10)``; a leading batch axis of 1 is allowed.
  ``N_s = A * ceil(H / s) * ceil(W / s)`` for the padded network input ``H x W`` with ``A``
  anchors per cell (2 for the released models) that share one centre ``(col * s, row * s)``, in
  row-major cell order with the anchor index fastest. Boxes are ``left, top, right, bottom``
  distances in units of ``s`` from that centre; keypoints are ``dx, dy`` offsets in units of ``s``.
  Pass the 6 or 9 arrays as a sequence (insightface's order ``scores_8, scores_16, scores_32,
  boxes_8, ..., kps_32``, or any other order: arrays are recognised by their last axis, 1 / 4 / 10,
  and their stride by their length) or as a mapping (only its values are used), together with
  ``image_size=(H, W)``.
* **insightface rows**: ``SCRFD.detect`` returns ``(det, kpss)`` with ``det (N, 5)`` =
  ``x1, y1, x2, y2, score`` and ``kpss (N, 5, 2)`` or ``None``. ``detect`` runs NMS inside: set
  ``model.nms_thresh = 1.0`` and a low ``thresh`` so the candidates come *before* NMS, since the
  ranker re-orders the candidates and runs NMS itself. Pass the tuple ``(det, kpss)`` or ``det``.

Boxes are returned in the pixels of the network input (the image's pixels when it was padded at
the bottom/right, as :class:`crface.detectors.scrfd.SCRFDRunner` does). Raw rows keep the
detector's order (stride 8 first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from crface.adapters.generic import (
    as_float_tensor,
    check_image_size,
    from_boxes,
    image_size_alias,
    squeeze_batch,
    unknown_format,
)
from crface.types import Detections

STRIDES = (8, 16, 32)

FORMATS = (
    "raw outputs: a sequence or mapping of 6 or 9 arrays (scores (N_s, 1), boxes (N_s, 4), "
    "optional keypoints (N_s, 10) for strides 8/16/32) plus image_size=(H, W)",
    "insightface SCRFD.detect result: (det, kpss) with det an N x 5 array "
    "(x1, y1, x2, y2, score) and kpss N x 5 x 2 or None, or det alone",
)
_KIND_OF_CHANNELS = {1: "scores", 4: "boxes", 10: "kps"}


def decode_raw(
    outputs: Sequence[Any] | Mapping[str, Any],
    image_size: tuple[int, int] | None = None,
    *,
    input_size: tuple[int, int] | None = None,
    num_anchors: int = 2,
    score_threshold: float = 0.0,
) -> Detections:
    """Decode SCRFD's raw per-stride outputs into boxes, scores and (optionally) 5 landmarks.

    Args:
        outputs: 6 or 9 arrays (sequence, or mapping whose values are used), see the module
            docstring; each ``(N_s, C)`` or ``(1, N_s, C)`` with ``C`` in 1, 4, 10.
        image_size: ``(H, W)`` of the padded network input.
        input_size: deprecated alias of ``image_size``.
        num_anchors: anchors per feature-map cell (2 for the released SCRFD models).
        score_threshold: drop anchors scoring below this (0 keeps them all).

    Returns:
        :class:`Detections` with ``boxes (K, 4)`` xyxy pixels of the network input,
        ``scores (K,)`` and ``landmarks (K, 5, 2)`` (``None`` without keypoint outputs).

    Raises:
        ValueError: wrong number of arrays, shapes that do not match ``image_size`` and
            ``num_anchors``, or non-finite values.

    Example:
        >>> import numpy as np
        >>> outs = [np.zeros((2 * (64 // s) ** 2, c), np.float32) for c in (1, 4) for s in STRIDES]
        >>> d = decode_raw(outs, (64, 64))
        >>> len(d), d.landmarks is None
        (168, True)
    """
    groups = _group_outputs(outputs)
    height, width = check_image_size(
        image_size_alias(image_size, input_size, "SCRFD", required=True)
    )
    boxes, scores, landmarks = [], [], []
    for i, s in enumerate(STRIDES):
        rows, cols = -(-height // s), -(-width // s)
        n = num_anchors * rows * cols
        parts = {}
        for kind, arrays in groups.items():
            t = arrays[i]
            if t.shape[0] != n:
                raise ValueError(
                    f"SCRFD {kind} at stride {s} must have {n} rows ({num_anchors} anchors x "
                    f"{rows} x {cols} cells for image_size {(height, width)}); got {tuple(t.shape)}"
                )
            parts[kind] = t
        grid_y, grid_x = torch.meshgrid(
            torch.arange(rows, dtype=torch.float32),
            torch.arange(cols, dtype=torch.float32),
            indexing="ij",
        )
        centre = torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), dim=1) * s
        centre = centre.repeat_interleave(num_anchors, dim=0).to(parts["boxes"].device)
        dist = parts["boxes"] * s
        boxes.append(torch.cat((centre - dist[:, :2], centre + dist[:, 2:]), dim=1))
        scores.append(parts["scores"].reshape(-1))
        if "kps" in parts:
            landmarks.append(centre[:, None, :] + parts["kps"].reshape(-1, 5, 2) * s)
    det = Detections(
        torch.cat(boxes), torch.cat(scores), landmarks=torch.cat(landmarks) if landmarks else None
    )
    return det[det.scores >= score_threshold] if score_threshold > 0 else det


def decode_insightface(det: Any, kpss: Any = None) -> Detections:
    """Convert insightface ``SCRFD.detect`` rows.

    Args:
        det: ``(N, 5)`` array ``x1, y1, x2, y2, score``.
        kpss: ``(N, 5, 2)`` (or ``(N, 10)``) keypoints, or ``None``.

    Returns:
        :class:`Detections` with ``boxes (N, 4)``, ``scores (N,)``, ``landmarks (N, 5, 2)`` or
        ``None``.

    Raises:
        ValueError: for other shapes, negative box sizes or non-finite values.

    Example:
        >>> decode_insightface([[1, 2, 11, 22, 0.8]]).boxes.tolist()
        [[1.0, 2.0, 11.0, 22.0]]
    """
    rows = as_float_tensor(det, "det")
    if rows.numel() and (rows.ndim != 2 or rows.shape[1] != 5):
        raise ValueError(f"SCRFD det must have shape (N, 5); got {tuple(rows.shape)}")
    return from_boxes(rows, landmarks=kpss)


def to_detections(
    output: Any,
    *,
    image_size: tuple[int, int] | None = None,
    input_size: tuple[int, int] | None = None,
    num_anchors: int = 2,
    score_threshold: float = 0.0,
) -> Detections:
    """Convert any accepted SCRFD output (see the module docstring) to :class:`Detections`.

    Args:
        output: raw outputs (6 or 9 arrays) or insightface ``(det, kpss)`` / ``det``.
        image_size: ``(H, W)`` of the padded network input; required for raw outputs.
        input_size: deprecated alias of ``image_size`` (a ``DeprecationWarning``).
        num_anchors: anchors per cell, for raw outputs.
        score_threshold: for raw outputs, drop anchors scoring below this.

    Raises:
        ValueError: for an unrecognised format (the message lists the accepted ones) or raw
            outputs without ``image_size``.
        TypeError: both ``image_size`` and ``input_size``.

    Example:
        >>> len(to_detections(([[0, 0, 8, 8, 0.5]], None)))
        1
    """
    image_size = image_size_alias(image_size, input_size, "SCRFD")
    values = list(output.values()) if isinstance(output, Mapping) else output
    is_raw = isinstance(values, Sequence) and len(values) in (6, 9)
    if is_raw and all(getattr(v, "ndim", 0) >= 2 for v in values):
        return decode_raw(
            values, image_size, num_anchors=num_anchors, score_threshold=score_threshold
        )
    try:
        if isinstance(output, tuple) and len(output) == 2:
            return decode_insightface(*output)
        return decode_insightface(output)
    except (ValueError, TypeError) as exc:
        raise unknown_format("SCRFD", str(exc), FORMATS) from exc


def _group_outputs(outputs: Sequence[Any] | Mapping[str, Any]) -> dict[str, list[Tensor]]:
    """Sort the raw arrays into scores / boxes / kps, each ordered stride 8, 16, 32."""
    values = list(outputs.values()) if isinstance(outputs, Mapping) else list(outputs)
    if len(values) not in (6, 9):
        raise ValueError(f"raw SCRFD outputs must be 6 or 9 arrays; got {len(values)}")
    groups: dict[str, list[Tensor]] = {"scores": [], "boxes": [], "kps": []}
    for v in values:
        t = squeeze_batch(as_float_tensor(v, "raw SCRFD output"), "raw SCRFD output", 2)
        if t.shape[1] not in _KIND_OF_CHANNELS:
            raise ValueError(
                f"each raw SCRFD output must have shape (N, 1), (N, 4) or (N, 10); got "
                f"{tuple(t.shape)}"
            )
        groups[_KIND_OF_CHANNELS[t.shape[1]]].append(t)
    if not groups["kps"]:
        del groups["kps"]
    counts = {k: len(v) for k, v in groups.items()}
    if any(c != len(STRIDES) for c in counts.values()):
        raise ValueError(f"raw SCRFD outputs need 3 arrays of each kind; got {counts}")
    # the finest stride has the most rows
    return {k: sorted(v, key=lambda t: -t.shape[0]) for k, v in groups.items()}
