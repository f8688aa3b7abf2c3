"""YuNet (libfacedetection, OpenCV ``FaceDetectorYN``) output -> :class:`~crface.types.Detections`.

Two formats are accepted:

* **raw network outputs** (what the ONNX graph returns, *before* NMS): for each stride
  ``s in (8, 16, 32)`` the four arrays ``cls_s (N_s, 1)``, ``obj_s (N_s, 1)``, ``bbox_s (N_s, 4)``,
  ``kps_s (N_s, 10)`` (a leading batch axis of 1 is allowed), with one anchor-free point per
  feature-map cell in row-major order, ``N_s = (H / s) * (W / s)`` for the padded network input
  ``H x W``. Pass them as a mapping keyed by the ONNX output names (``"cls_8"`` ... ``"kps_32"``) or
  as a sequence of 12 arrays in the ONNX output order ``cls_8, cls_16, cls_32, obj_8, ..., kps_32``,
  together with ``image_size=(H, W)``. Decoding:
  ``score = sqrt(clip(cls, 0, 1) * clip(obj, 0, 1))``, ``cx = (col + dx) * s``,
  ``cy = (row + dy) * s``, ``w = exp(dw) * s``, ``h = exp(dh) * s``,
  landmark ``k = ((col + kx_k) * s, (row + ky_k) * s)``.
* **OpenCV rows**: ``cv2.FaceDetectorYN.detect`` returns ``(retval, faces)`` with ``faces`` an
  ``N x 15`` array (``x, y, w, h``, five landmarks ``x, y``: right eye, left eye, nose tip, right
  and left mouth corners, then ``score``) or ``None``. OpenCV runs NMS inside ``detect``: call
  ``setNMSThreshold(1.0)`` and ``setScoreThreshold`` low so the candidates come *before* NMS, since
  the ranker re-orders the candidates and runs NMS itself.

Boxes are returned in the pixels of the network input, which equal the image's pixels when the
image was padded at the bottom/right (as OpenCV and :class:`crface.detectors.yunet.YuNetNRunner`
do). Rows keep the detector's order (stride 8 cells first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

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
OUTPUT_NAMES = tuple(f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in STRIDES)
_CHANNELS = {"cls": 1, "obj": 1, "bbox": 4, "kps": 10}

FORMATS = (
    "raw outputs: a mapping with keys cls_8 .. kps_32, or a sequence of 12 arrays in ONNX output "
    "order (cls_8, cls_16, cls_32, obj_8, ..., kps_32), plus image_size=(H, W)",
    "OpenCV FaceDetectorYN.detect result: (retval, faces) or faces, an N x 15 array "
    "(x, y, w, h, 10 landmark coordinates, score) or None",
)


def decode_raw(
    outputs: Mapping[str, Any] | Sequence[Any],
    image_size: tuple[int, int] | None = None,
    *,
    input_size: tuple[int, int] | None = None,
    score_threshold: float = 0.0,
) -> Detections:
    """Decode YuNet's 12 raw outputs into boxes, scores and 5 landmarks.

    Args:
        outputs: mapping keyed ``cls_8`` ... ``kps_32`` or a sequence of 12 arrays in ONNX output
            order; each ``(N_s, C)`` or ``(1, N_s, C)`` with ``C`` = 1, 1, 4, 10 for cls, obj,
            bbox, kps.
        image_size: ``(H, W)`` of the padded network input (multiples of 32 for the real net; a
            stride-``s`` map has ``ceil(H / s) x ceil(W / s)`` cells).
        input_size: deprecated alias of ``image_size``.
        score_threshold: drop points scoring below this (0 keeps every cell).

    Returns:
        :class:`Detections` with ``boxes (K, 4)`` xyxy pixels of the network input,
        ``scores (K,)`` and ``landmarks (K, 5, 2)``, in stride-then-row-major order.

    Raises:
        ValueError: missing outputs, shapes that do not match ``image_size``, non-finite values.

    Example:
        >>> import numpy as np
        >>> outs = {f"{k}_{s}": np.zeros(((64 // s) ** 2, c), np.float32)
        ...         for k, c in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10)) for s in STRIDES}
        >>> len(decode_raw(outs, (64, 64)))
        84
    """
    named = _name_outputs(outputs)
    height, width = check_image_size(
        image_size_alias(image_size, input_size, "YuNet", required=True)
    )
    boxes, scores, landmarks = [], [], []
    for s in STRIDES:
        rows, cols = -(-height // s), -(-width // s)
        parts = {}
        for kind, channels in _CHANNELS.items():
            key = f"{kind}_{s}"
            t = squeeze_batch(as_float_tensor(named[key], key), key, 2)
            if t.shape != (rows * cols, channels):
                raise ValueError(
                    f"{key} must have shape ({rows * cols}, {channels}) for image_size "
                    f"{(height, width)}; got {tuple(t.shape)}"
                )
            parts[kind] = t
        grid_y, grid_x = torch.meshgrid(
            torch.arange(rows, dtype=torch.float32),
            torch.arange(cols, dtype=torch.float32),
            indexing="ij",
        )
        cell = torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), dim=1).to(parts["bbox"].device)
        centre = (cell + parts["bbox"][:, :2]) * s
        size = parts["bbox"][:, 2:].exp() * s
        boxes.append(torch.cat((centre - size / 2, centre + size / 2), dim=1))
        scores.append((parts["cls"].clamp(0, 1) * parts["obj"].clamp(0, 1)).sqrt().reshape(-1))
        landmarks.append((cell[:, None, :] + parts["kps"].reshape(-1, 5, 2)) * s)
    det = Detections(torch.cat(boxes), torch.cat(scores), landmarks=torch.cat(landmarks))
    return det[det.scores >= score_threshold] if score_threshold > 0 else det


def decode_opencv(faces: Any) -> Detections:
    """Convert OpenCV ``FaceDetectorYN.detect`` rows (``x, y, w, h``, 10 landmark coords, score).

    Args:
        faces: ``(N, 15)`` array, ``None`` (OpenCV's "no face"), or the whole ``(retval, faces)``
            tuple that ``detect`` returns.

    Returns:
        :class:`Detections` with ``boxes (N, 4)`` xyxy, ``scores (N,)``, ``landmarks (N, 5, 2)``.

    Raises:
        ValueError: for a shape other than ``(N, 15)``, negative sizes or non-finite values.

    Example:
        >>> decode_opencv([[10, 20, 30, 40, *range(10), 0.9]]).boxes.tolist()
        [[10.0, 20.0, 40.0, 60.0]]
    """
    if isinstance(faces, tuple) and len(faces) == 2:
        faces = faces[1]
    if faces is None:
        return Detections.empty(num_landmarks=5)
    rows = as_float_tensor(faces, "faces")
    if rows.numel() == 0:
        return Detections.empty(num_landmarks=5, device=rows.device)
    if rows.ndim != 2 or rows.shape[1] != 15:
        raise ValueError(f"OpenCV YuNet faces must have shape (N, 15); got {tuple(rows.shape)}")
    return from_boxes(rows[:, :4], rows[:, 14], box_format="xywh", landmarks=rows[:, 4:14])


def to_detections(
    output: Any,
    *,
    image_size: tuple[int, int] | None = None,
    input_size: tuple[int, int] | None = None,
    score_threshold: float = 0.0,
) -> Detections:
    """Convert any accepted YuNet output (see the module docstring) to :class:`Detections`.

    Args:
        output: raw outputs (mapping or 12-sequence) or OpenCV ``detect`` rows.
        image_size: ``(H, W)`` of the padded network input; required for raw outputs.
        input_size: deprecated alias of ``image_size`` (a ``DeprecationWarning``).
        score_threshold: for raw outputs, drop points scoring below this.

    Raises:
        ValueError: for an unrecognised format (the message lists the accepted ones) or raw
            outputs without ``image_size``.
        TypeError: both ``image_size`` and ``input_size``.

    Example:
        >>> to_detections((1, None)).boxes.shape
        torch.Size([0, 4])
    """
    image_size = image_size_alias(image_size, input_size, "YuNet")
    if _is_raw(output):
        return decode_raw(output, image_size, score_threshold=score_threshold)
    try:
        return decode_opencv(output)
    except (ValueError, TypeError) as exc:
        raise unknown_format("YuNet", str(exc), FORMATS) from exc


def _is_raw(output: Any) -> bool:
    if isinstance(output, Mapping):
        return True
    return (
        isinstance(output, Sequence)
        and len(output) == len(OUTPUT_NAMES)
        and all(getattr(o, "ndim", 0) >= 2 for o in output)
    )


def _name_outputs(outputs: Mapping[str, Any] | Sequence[Any]) -> Mapping[str, Any]:
    if isinstance(outputs, Mapping):
        missing = [k for k in OUTPUT_NAMES if k not in outputs]
        if missing:
            raise ValueError(
                f"raw YuNet outputs lack {missing}; expected keys {list(OUTPUT_NAMES)}"
            )
        return outputs
    if not isinstance(outputs, Sequence) or len(outputs) != len(OUTPUT_NAMES):
        got = len(outputs) if isinstance(outputs, Sequence) else type(outputs).__name__
        raise ValueError(f"raw YuNet outputs must be 12 arrays {list(OUTPUT_NAMES)}; got {got}")
    return dict(zip(OUTPUT_NAMES, outputs, strict=True))
