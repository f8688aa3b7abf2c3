"""CenterFace outputs -> :class:`~crface.types.Detections`.

Two formats are accepted:

* **raw network outputs** (what the ONNX graph returns, *before* NMS), all at stride 4 on the
  padded network input: ``heatmap (1, 1, h, w)``, ``scale (1, 2, h, w)`` (log of height and width
  in units of 4 px), ``offset (1, 2, h, w)`` (sub-cell ``dy, dx``) and optionally
  ``landmarks (1, 10, h, w)`` (five ``dy, dx`` pairs relative to the box's top-left corner, in
  units of the box height / width); the batch axis may be omitted. Pass a mapping with keys
  ``heatmap, scale, offset[, landmarks]`` or a sequence in that (ONNX output) order. Every cell
  ``(row, col)`` whose heat is at least ``score_threshold`` becomes a candidate with
  ``score = heat``, ``h = exp(scale[0]) * 4``, ``w = exp(scale[1]) * 4``,
  ``x1 = (col + offset[1] + 0.5) * 4 - w / 2``, ``y1 = (row + offset[0] + 0.5) * 4 - h / 2``,
  ``x2 = x1 + w``, ``y2 = y1 + h``, landmark ``k = (x1 + landmarks[2k+1] * w,
  y1 + landmarks[2k] * h)``. (The reference implementation computes landmarks from the box corner
  *after* clipping it to the image; here the unclipped corner is used, which only differs for
  boxes crossing the top/left border.)
* **rows** from the reference post-processing (which runs NMS: lower its threshold or feed raw
  outputs, since the ranker re-orders the candidates and runs NMS itself): ``dets (N, 5)`` =
  ``x1, y1, x2, y2, score``; ``(N, 15)`` = those plus 10 landmark coordinates ``x0, y0, ..., x4,
  y4``; or the tuple ``(dets (N, 5), lms (N, 10))`` that the reference ``CenterFace.__call__``
  returns.

Raw rows are returned in row-major cell order, boxes in pixels of the network input (the image's
pixels when it was padded at the bottom/right, as
:class:`crface.detectors.centerface.CenterFaceRunner` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from crface.adapters.generic import as_float_tensor, from_boxes, squeeze_batch, unknown_format
from crface.types import Detections

RAW_KEYS = ("heatmap", "scale", "offset", "landmarks")
_RAW_CHANNELS = dict(zip(RAW_KEYS, (1, 2, 2, 10), strict=True))

FORMATS = (
    "raw outputs: a mapping with keys heatmap, scale, offset[, landmarks] or a sequence of 3 or 4 "
    "arrays in that order, each (1, C, h, w) or (C, h, w) at stride 4",
    "rows: an N x 5 (x1, y1, x2, y2, score) or N x 15 (plus 10 landmark coordinates) array",
    "the tuple (dets N x 5, lms N x 10)",
)


def decode_raw(
    heatmap: Any,
    scale: Any,
    offset: Any,
    landmarks: Any = None,
    *,
    score_threshold: float = 0.01,
    stride: int = 4,
) -> Detections:
    """Decode CenterFace's raw maps: one candidate per heat-map cell scoring ``>= score_threshold``.

    Args:
        heatmap: ``(1, 1, h, w)`` or ``(1, h, w)`` face-centre probabilities.
        scale: ``(1, 2, h, w)`` or ``(2, h, w)``: log height, log width in units of ``stride``.
        offset: ``(1, 2, h, w)`` or ``(2, h, w)``: sub-cell ``dy, dx`` of the centre.
        landmarks: ``(1, 10, h, w)`` / ``(10, h, w)`` or ``None``.
        score_threshold: keep cells whose heat is at least this (0 keeps every cell).
        stride: output stride of the maps (4 for the released model).

    Returns:
        :class:`Detections` with ``boxes (K, 4)`` xyxy pixels of the network input (not clipped),
        ``scores (K,)``, ``landmarks (K, 5, 2)`` or ``None``, in row-major cell order.

    Raises:
        ValueError: for inconsistent shapes or non-finite values.

    Example:
        >>> import numpy as np
        >>> heat = np.zeros((1, 1, 2, 2), np.float32)
        >>> heat[0, 0, 1, 0] = 0.9
        >>> zeros = np.zeros((1, 2, 2, 2), np.float32)
        >>> decode_raw(heat, zeros, zeros).boxes.tolist()
        [[0.0, 4.0, 4.0, 8.0]]
    """
    maps = {"heatmap": heatmap, "scale": scale, "offset": offset}
    if landmarks is not None:
        maps["landmarks"] = landmarks
    t = {k: _map(k, v) for k, v in maps.items()}
    size = t["heatmap"].shape[1:]
    for k, v in t.items():
        if v.shape[1:] != size:
            raise ValueError(
                f"CenterFace {k} has spatial size {tuple(v.shape[1:])}, heatmap {size}"
            )
    heat = t["heatmap"][0]
    rows, cols = torch.nonzero(heat >= score_threshold, as_tuple=True)
    score = heat[rows, cols]
    log_h, log_w = t["scale"][:, rows, cols]
    off_y, off_x = t["offset"][:, rows, cols]
    h, w = log_h.exp() * stride, log_w.exp() * stride
    x1 = (cols + off_x + 0.5) * stride - w / 2
    y1 = (rows + off_y + 0.5) * stride - h / 2
    boxes = torch.stack((x1, y1, x1 + w, y1 + h), dim=1)
    lms = None
    if "landmarks" in t:
        rel = t["landmarks"][:, rows, cols].T.reshape(-1, 5, 2)  # (K, 5, [dy, dx])
        lms = torch.stack(
            (x1[:, None] + rel[..., 1] * w[:, None], y1[:, None] + rel[..., 0] * h[:, None]), dim=2
        )
    return Detections(boxes, score, landmarks=lms)


def decode_rows(dets: Any, lms: Any = None) -> Detections:
    """Convert post-processed CenterFace rows.

    Args:
        dets: ``(N, 5)`` ``x1, y1, x2, y2, score`` or ``(N, 15)`` with 10 landmark coordinates
            ``x0, y0, ..., x4, y4`` appended.
        lms: ``(N, 10)`` landmark coordinates (same order) or ``(N, 5, 2)`` points when ``dets``
            is ``(N, 5)``, or ``None``.

    Returns:
        :class:`Detections` with ``boxes (N, 4)``, ``scores (N,)``, ``landmarks (N, 5, 2)`` or
        ``None``.

    Raises:
        ValueError: for other shapes, negative box sizes or non-finite values.

    Example:
        >>> decode_rows([[1, 2, 11, 22, 0.75]]).scores.tolist()
        [0.75]
    """
    rows = as_float_tensor(dets, "dets")
    if rows.numel() == 0:
        has_lms = lms is not None or (rows.ndim == 2 and rows.shape[1] == 15)
        return Detections.empty(5 if has_lms else None, device=rows.device)
    if rows.ndim != 2 or rows.shape[1] not in (5, 15):
        raise ValueError(
            f"CenterFace rows must have shape (N, 5) or (N, 15); got {tuple(rows.shape)}"
        )
    if rows.shape[1] == 15:
        if lms is not None:
            raise ValueError("pass lms only with (N, 5) dets; (N, 15) rows already hold landmarks")
        rows, lms = rows[:, :5], rows[:, 5:]
    return from_boxes(rows, landmarks=lms)


def to_detections(output: Any, *, score_threshold: float = 0.01, stride: int = 4) -> Detections:
    """Convert any accepted CenterFace output (see the module docstring) to :class:`Detections`.

    Args:
        output: raw maps (mapping or sequence of 3-4 arrays), rows, or ``(dets, lms)``.
        score_threshold: for raw maps, the minimum heat of a decoded cell.
        stride: for raw maps, their output stride.

    Raises:
        ValueError: for an unrecognised format (the message lists the accepted ones).

    Example:
        >>> len(to_detections([]))
        0
    """
    if isinstance(output, Mapping):
        missing = [k for k in RAW_KEYS[:3] if k not in output]
        if missing:
            raise ValueError(
                f"raw CenterFace outputs lack {missing}; expected keys {list(RAW_KEYS)}"
            )
        maps = [output[k] for k in RAW_KEYS if k in output]
        return decode_raw(*maps, score_threshold=score_threshold, stride=stride)
    is_raw = isinstance(output, Sequence) and len(output) in (3, 4)
    if is_raw and all(getattr(o, "ndim", 0) >= 3 for o in output):
        return decode_raw(*output, score_threshold=score_threshold, stride=stride)
    try:
        if isinstance(output, tuple) and len(output) == 2:
            return decode_rows(*output)
        return decode_rows(output)
    except (ValueError, TypeError) as exc:
        raise unknown_format("CenterFace", str(exc), FORMATS) from exc


def _map(name: str, value: Any) -> Tensor:
    t = squeeze_batch(as_float_tensor(value, name), name, 3)
    channels = _RAW_CHANNELS[name]
    if t.shape[0] != channels:
        raise ValueError(
            f"CenterFace {name} must have shape (1, {channels}, h, w) or ({channels}, h, w); "
            f"got {tuple(t.shape)} after dropping the batch axis"
        )
    return t
