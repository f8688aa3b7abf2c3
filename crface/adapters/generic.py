"""Generic adapter: plain boxes and scores from any detector, in any common box layout.

Accepted ``output`` formats for :func:`to_detections`:

* an ``(N, 5)`` array-like of rows ``[a, b, c, d, score]`` (the four box numbers in ``box_format``);
* a pair ``(boxes, scores)``: ``(N, 4)`` boxes and ``(N,)`` scores;
* a mapping with keys ``"boxes"`` and ``"scores"`` (optionally ``"landmarks"``, ``(N, L, 2)`` or
  ``(N, 2L)``);
* a :class:`~crface.types.Detections` (what the runners of :mod:`crface.detectors` return),
  passed through unchanged.

"Array-like" means a numpy array, a torch tensor (any device), a nested list/tuple, or any object
with ``.numpy()`` / ``__array__`` (TensorFlow, Paddle, JAX arrays).

Feed candidates *before* NMS (or with NMS disabled / a very low IoU threshold and score threshold):
the ranker re-orders candidates and runs NMS itself; boxes a detector's NMS removed are lost.

This module also holds the small conversion and validation helpers the other adapters share.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from crface.ops import BOX_FORMATS, convert_boxes
from crface.types import Detections

FORMATS = (
    "(N, 5) rows [a, b, c, d, score] in box_format",
    "(boxes (N, 4), scores (N,)) pair",
    "mapping {'boxes': (N, 4), 'scores': (N,), optional 'landmarks': (N, L, 2)}",
    "crface.types.Detections (returned as is)",
)


def as_float_tensor(value: Any, name: str, *, finite: bool = True) -> Tensor:
    """``value`` as a float32 tensor (torch tensors keep their device), rejecting NaN and inf.

    Args:
        value: a numpy array, torch tensor, nested list/tuple of numbers, or an object with
            ``.numpy()`` or ``__array__`` (TensorFlow, Paddle, JAX arrays).
        name: what the value is, for error messages.
        finite: reject NaN / inf here (``False`` leaves that to a caller that reports rows).

    Raises:
        TypeError: ``value`` is not numeric array-like, or holds booleans / complex numbers.
        ValueError: ragged nesting, NaN or inf values.

    Example:
        >>> as_float_tensor([[1, 2], [3, 4]], "x").dtype
        torch.float32
    """
    if isinstance(value, Tensor):
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{name} must be real numbers; got dtype {value.dtype}")
        t = value.detach().to(torch.float32)
    else:
        if not isinstance(value, np.ndarray) and callable(getattr(value, "numpy", None)):
            value = value.numpy()
        if isinstance(value, np.ndarray) and value.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be real numbers; got dtype {value.dtype}")
        if isinstance(value, (str, bytes, Mapping)) or value is None:
            raise TypeError(f"{name} must be a numeric array or tensor; got {type(value).__name__}")
        try:
            arr = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{name} must be a rectangular numeric array; got {type(value).__name__} ({exc})"
            ) from exc
        t = torch.from_numpy(np.array(arr, dtype=np.float32, copy=True))
    if finite and t.numel() and not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t


def unknown_format(family: str, detail: str, formats: Sequence[str]) -> ValueError:
    """The ``ValueError`` an adapter raises for output it does not recognise, listing ``formats``.

    Example:
        >>> str(unknown_format("generic", "int", ["rows"]))
        'unrecognised generic output (int). Accepted formats: rows'
    """
    return ValueError(
        f"unrecognised {family} output ({detail}). Accepted formats: {'; '.join(formats)}"
    )


def squeeze_batch(t: Tensor, name: str, ndim: int) -> Tensor:
    """Drop a leading batch dimension of size 1 so ``t`` has ``ndim`` dimensions.

    Raises:
        ValueError: ``t`` has a batch of several images, or the wrong number of dimensions.
    """
    if t.ndim == ndim + 1:
        if t.shape[0] != 1:
            raise ValueError(
                f"{name} holds a batch of {t.shape[0]} images; "
                f"pass one image's output (e.g. {name}[i])"
            )
        t = t[0]
    if t.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimensions (or {ndim + 1} with batch 1); "
            f"got shape {tuple(t.shape)}"
        )
    return t


def check_image_size(image_size: Any) -> tuple[int, int]:
    """Validate ``image_size`` as ``(height, width)`` positive integers and return it.

    Raises:
        ValueError: not a pair of positive integers.
    """
    try:
        h, w = (int(v) for v in image_size)
        ok = h > 0 and w > 0 and all(float(v) == int(v) for v in image_size)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"image_size must be (height, width) positive integers; got {image_size!r}"
        )
    return h, w


def image_size_alias(
    image_size: Any, input_size: Any, family: str, *, required: bool = False
) -> Any:
    """``image_size``, or the value of the deprecated ``input_size=`` alias (YuNet, SCRFD).

    Raises:
        TypeError: both were given.
        ValueError: neither, when ``required`` (decoding raw outputs needs the size).
    """
    if input_size is None:
        if required and image_size is None:
            raise ValueError(
                f"raw {family} outputs need image_size=(H, W) of the padded network input"
            )
        return image_size
    warnings.warn(
        f"{family}: input_size= is deprecated; pass image_size=(H, W), the name every crface "
        "adapter uses",
        DeprecationWarning,
        stacklevel=3,
    )
    if image_size is not None:
        raise TypeError(f"{family}: pass image_size=(H, W) or input_size=, not both")
    return input_size


def as_landmarks(value: Any, n: int, name: str = "landmarks") -> Tensor:
    """``(N, L, 2)`` or ``(N, 2L)`` landmarks as a ``Tensor[N, L, 2]``.

    Raises:
        ValueError: wrong shape, NaN or inf.
    """
    lm = as_float_tensor(value, name)
    if lm.ndim == 2 and lm.shape[0] == n and lm.shape[1] % 2 == 0:
        lm = lm.reshape(n, -1, 2)
    if lm.ndim != 3 or lm.shape[0] != n or lm.shape[2] != 2:
        raise ValueError(f"{name} must have shape ({n}, L, 2) or ({n}, 2L); got {tuple(lm.shape)}")
    return lm


def from_boxes(
    boxes: Any,
    scores: Any = None,
    *,
    box_format: str = "xyxy",
    normalized: bool = False,
    image_size: tuple[int, int] | None = None,
    landmarks: Any = None,
    indices: Any = None,
) -> Detections:
    """Boxes and scores in any common layout to canonical :class:`~crface.types.Detections`.

    Args:
        boxes: ``(N, 4)`` array-like in ``box_format``, or ``(N, 5)`` rows with the score last
            (then ``scores`` must be ``None``).
        scores: ``(N,)`` confidences.
        box_format: ``"xyxy"`` (corners), ``"xywh"`` (top-left + size) or ``"cxcywh"``
            (centre + size).
        normalized: coordinates are fractions of the image size; needs ``image_size``.
        image_size: ``(height, width)`` of the image in pixels (for ``normalized``).
        landmarks: optional ``(N, L, 2)`` or ``(N, 2L)`` points ``x, y`` (normalized like the
            boxes).
        indices: optional ``(N,)`` row numbers in the detector's output (default ``0..N-1``).

    Returns:
        ``Detections`` with float32 xyxy pixel boxes, in the input's order.

    Raises:
        ValueError: unknown ``box_format``, missing ``image_size``, wrong shapes, NaN/inf, or boxes
            with a negative width or height.

    Example:
        >>> from_boxes([[0.5, 0.5, 0.2, 0.4, 0.9]], box_format="cxcywh", normalized=True,
        ...            image_size=(100, 200)).boxes.tolist()
        [[80.0, 30.0, 120.0, 70.0]]
    """
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format must be one of {BOX_FORMATS}; got {box_format!r}")
    b = as_float_tensor(boxes, "boxes")
    if b.numel() == 0:
        return Detections.empty(device=b.device)
    if b.ndim != 2 or b.shape[1] not in (4, 5):
        raise ValueError(
            f"boxes must have shape (N, 4) or (N, 5) with the score last; got {tuple(b.shape)}"
        )
    if b.shape[1] == 5:
        if scores is not None:
            raise ValueError("boxes has a score column (N, 5); do not also pass scores")
        b, s = b[:, :4], b[:, 4]
    elif scores is None:
        raise ValueError("boxes has shape (N, 4) but no scores were given; pass scores (N,)")
    else:
        s = as_float_tensor(scores, "scores").to(b.device).reshape(-1)
        if s.shape[0] != b.shape[0]:
            raise ValueError(
                f"scores must have shape ({b.shape[0]},) to match boxes; got {tuple(s.shape)}"
            )
    lm = None if landmarks is None else as_landmarks(landmarks, b.shape[0]).to(b.device)
    if normalized:
        if image_size is None:
            raise ValueError("normalized=True needs image_size=(height, width) in pixels")
        h, w = check_image_size(image_size)
        b = b * b.new_tensor([w, h, w, h])
        if lm is not None:
            lm = lm * lm.new_tensor([w, h])
    xyxy = convert_boxes(b, box_format, "xyxy")
    bad = (xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1])
    if bad.any():
        i = int(torch.nonzero(bad)[0])
        raise ValueError(
            f"box {i} has a negative width or height after reading it as {box_format!r}: "
            f"{b[i].tolist()} -> xyxy {xyxy[i].tolist()}; is box_format right?"
        )
    return Detections(xyxy.contiguous(), s.contiguous(), indices, lm)


def _ndim(value: Any) -> int:
    if hasattr(value, "ndim"):
        return int(value.ndim)
    return int(np.ndim(value))


def to_detections(output: Any, **kwargs: Any) -> Detections:
    """Convert a generic detector output (see the module docstring for the formats).

    Args:
        output: ``(N, 5)`` rows, a ``(boxes, scores)`` pair, a ``{"boxes", "scores"}`` mapping, or
            a :class:`~crface.types.Detections` (returned as is; it is xyxy pixels already).
        **kwargs: ``box_format``, ``normalized``, ``image_size`` as in :func:`from_boxes`; they
            must be left unset for a ``Detections``.

    Raises:
        ValueError: for an unrecognised format (listing the accepted ones) or invalid values.

    Example:
        >>> to_detections(([[0, 0, 4, 4]], [0.5]), box_format="xywh").boxes.tolist()
        [[0.0, 0.0, 4.0, 4.0]]
    """
    if isinstance(output, Detections):
        if kwargs:
            raise ValueError(
                f"a Detections is xyxy pixels already; got conversion options {sorted(kwargs)}"
            )
        return output
    if isinstance(output, Mapping):
        if "boxes" not in output or "scores" not in output:
            raise unknown_format(
                "generic", f"mapping with keys {sorted(map(str, output))}", FORMATS
            )
        return from_boxes(
            output["boxes"], output["scores"], landmarks=output.get("landmarks"), **kwargs
        )
    if (
        isinstance(output, Sequence)
        and len(output) == 2
        and _ndim(output[0]) == 2
        and _ndim(output[1]) == 1
    ):
        return from_boxes(output[0], output[1], **kwargs)
    try:
        rows = as_float_tensor(output, "output")
    except (TypeError, ValueError) as exc:
        raise unknown_format("generic", str(exc), FORMATS) from exc
    if rows.numel() and (rows.ndim != 2 or rows.shape[1] != 5):
        raise unknown_format("generic", f"shape {tuple(rows.shape)}", FORMATS)
    return from_boxes(rows, **kwargs)


__all__ = [
    "FORMATS",
    "as_float_tensor",
    "as_landmarks",
    "check_image_size",
    "from_boxes",
    "image_size_alias",
    "squeeze_batch",
    "to_detections",
    "unknown_format",
]
