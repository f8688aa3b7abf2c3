"""HRNet (mmdetection) adapter: results of mmdetection v2 and v3 detectors.

HRNet face detectors are usually trained with mmdetection (HRNetV2p backbones in its model zoo),
so this adapter reads mmdetection's result types, duck-typed (mmdet is never imported).

Accepted ``output`` formats for :func:`to_detections`:

1. **mmdetection v2**: a list with one ``(N, 5)`` array per class, rows ``x1 y1 x2 y2 score``
   (``inference_detector``'s bbox result), or a tuple ``(bbox_result, segm_result)`` from mask
   models; see :func:`from_mmdet_v2`.
2. **mmdetection v3**: a ``DetDataSample``-like object with ``.pred_instances`` holding ``.bboxes``
   ``(N, 4)`` xyxy pixels, ``.scores`` ``(N,)`` and optionally ``.labels`` ``(N,)`` (torch tensors
   or numpy arrays), the ``pred_instances`` object itself, or a one-element list of samples; see
   :func:`from_mmdet_v3`.

Candidates must come *before* NMS: set the model's ``test_cfg`` to ``nms=dict(type='nms',
iou_threshold=1.0)`` (keeps everything), a low ``score_thr`` and a large ``max_per_img``
(``rcnn`` part for two-stage models). The ranker re-orders candidates and runs NMS itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

from crface.adapters.generic import as_float_tensor, from_boxes, unknown_format
from crface.types import Detections

FORMATS = (
    "mmdetection v2 list of per-class (N, 5) arrays x1 y1 x2 y2 score, or (bbox, segm) tuple",
    "mmdetection v3 DetDataSample-like with .pred_instances.bboxes/.scores[/.labels], its "
    "pred_instances, or a one-element list of samples",
)


def _is_per_class_list(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) > 0
        and all(
            getattr(v, "ndim", None) == 2
            or (isinstance(v, list) and all(isinstance(r, (list, tuple)) for r in v))
            for v in value
        )
    )


def from_mmdet_v2(result: Any, class_index: int = 0) -> Detections:
    """An mmdetection v2 bbox result to :class:`~crface.types.Detections`.

    Args:
        result: a list with one ``(N, 5)`` array (``x1 y1 x2 y2 score``, pixels) per class, or a
            ``(bbox_result, segm_result)`` tuple.
        class_index: which class holds the faces (``0`` for single-class face detectors).

    Raises:
        ValueError: not a per-class list, ``class_index`` out of range, or malformed arrays.

    Example:
        >>> import numpy as np
        >>> from_mmdet_v2([np.array([[0, 0, 8, 8, 0.6]])]).scores.tolist()
        [0.6000000238418579]
    """
    if isinstance(result, tuple) and len(result) == 2 and _is_per_class_list(result[0]):
        result = result[0]
    if not _is_per_class_list(result):
        raise ValueError(
            "mmdetection v2 result must be a list of per-class (N, 5) arrays; "
            f"got {type(result).__name__}"
        )
    if not 0 <= class_index < len(result):
        raise ValueError(f"class_index={class_index} out of range for {len(result)} classes")
    rows = as_float_tensor(result[class_index], f"result[{class_index}]")
    if rows.numel() and (rows.ndim != 2 or rows.shape[1] != 5):
        raise ValueError(
            f"result[{class_index}] must have shape (N, 5) x1 y1 x2 y2 score; "
            f"got {tuple(rows.shape)}"
        )
    return from_boxes(rows)


def from_mmdet_v3(sample: Any, class_index: int | None = 0) -> Detections:
    """An mmdetection v3 ``DetDataSample`` (or its ``pred_instances``) to ``Detections``.

    Args:
        sample: an object with ``.pred_instances`` (or itself) exposing ``.bboxes`` ``(N, 4)`` xyxy
            pixels, ``.scores`` ``(N,)`` and optionally ``.labels`` ``(N,)``.
        class_index: keep rows whose label equals this (``None``: keep all); ignored without labels.

    Returns:
        ``Detections`` whose ``indices`` are the kept rows' positions in ``pred_instances``.

    Raises:
        ValueError: missing attributes or malformed arrays.

    Example:
        >>> from types import SimpleNamespace
        >>> inst = SimpleNamespace(bboxes=[[0, 0, 4, 4], [1, 1, 5, 5]], scores=[0.9, 0.8],
        ...                        labels=[1, 0])
        >>> from_mmdet_v3(SimpleNamespace(pred_instances=inst)).indices.tolist()
        [1]
    """
    inst = getattr(sample, "pred_instances", sample)
    if not (hasattr(inst, "bboxes") and hasattr(inst, "scores")):
        raise ValueError(
            "mmdetection v3 sample must have .pred_instances with .bboxes and .scores; "
            f"got {type(sample).__name__}"
        )
    boxes = as_float_tensor(inst.bboxes, "pred_instances.bboxes")
    scores = as_float_tensor(inst.scores, "pred_instances.scores").reshape(-1)
    labels = getattr(inst, "labels", None)
    n = scores.shape[0]
    if class_index is None or labels is None:
        keep = torch.arange(n)
    else:
        lab = as_float_tensor(labels, "pred_instances.labels").reshape(-1).cpu()
        if lab.shape[0] != n:
            raise ValueError(
                f"pred_instances.labels must have shape ({n},); got {tuple(lab.shape)}"
            )
        keep = torch.nonzero(lab == class_index).flatten()
        if n and keep.numel() == 0:
            present = sorted({int(v) for v in lab.tolist()})
            warnings.warn(
                f"none of the {n} candidates has label {class_index}; labels present: "
                f"{present[:10]}. Pass class_index=<your model's face class> (its index in the "
                "model's classes), or class_index=None to keep every row",
                UserWarning,
                stacklevel=3,
            )
    if keep.numel() == 0:
        return Detections.empty(device=boxes.device)
    if boxes.ndim != 2 or boxes.shape != (n, 4):
        raise ValueError(
            f"pred_instances.bboxes must have shape ({n}, 4); got {tuple(boxes.shape)}"
        )
    keep = keep.to(boxes.device)
    return from_boxes(boxes[keep], scores.to(boxes.device)[keep], indices=keep)


def to_detections(output: Any, **kwargs: Any) -> Detections:
    """Convert an mmdetection result (formats in the module docstring).

    Args:
        output: a v2 per-class list / ``(bbox, segm)`` tuple, or a v3 sample (or one-element list).
        **kwargs: ``class_index`` (default 0).

    Raises:
        ValueError: an unrecognised format (the message lists the accepted ones) or invalid values.

    Example:
        >>> to_detections([[[0, 0, 2, 2, 0.5]]]).boxes.tolist()
        [[0.0, 0.0, 2.0, 2.0]]
    """
    if (
        isinstance(output, (list, tuple))
        and len(output) == 1
        and hasattr(output[0], "pred_instances")
    ):
        output = output[0]
    if hasattr(output, "pred_instances") or (
        hasattr(output, "bboxes") and hasattr(output, "scores")
    ):
        return from_mmdet_v3(output, **kwargs)
    if _is_per_class_list(output) or (
        isinstance(output, tuple) and len(output) == 2 and _is_per_class_list(output[0])
    ):
        return from_mmdet_v2(output, **kwargs)
    raise unknown_format("mmdetection", type(output).__name__, FORMATS)


__all__ = ["FORMATS", "from_mmdet_v2", "from_mmdet_v3", "to_detections"]
