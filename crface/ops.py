"""Box math and the NMS family.

Every function takes and returns the canonical format: ``Tensor[N, 4]`` float32 ``x1, y1, x2, y2``
in pixels plus ``Tensor[N]`` scores. Conversions from other formats happen at the public edge
(:func:`convert_boxes`), nowhere else.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_iou as _tv_box_iou

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def convert_boxes(boxes: Tensor, in_fmt: str, out_fmt: str = "xyxy") -> Tensor:
    """Convert boxes between ``xyxy``, ``xywh`` and ``cxcywh``.

    Args:
        boxes: ``Tensor[N, 4]`` in ``in_fmt``.
        in_fmt: one of ``"xyxy"``, ``"xywh"`` (top-left corner + size), ``"cxcywh"`` (centre + size).
        out_fmt: target format, same choices.

    Returns:
        ``Tensor[N, 4]`` in ``out_fmt``, same dtype and device.

    Raises:
        ValueError: for an unknown format name.

    Example:
        >>> convert_boxes(torch.tensor([[10.0, 20.0, 5.0, 8.0]]), "xywh")
        tensor([[10., 20., 15., 28.]])
    """
    for fmt in (in_fmt, out_fmt):
        if fmt not in BOX_FORMATS:
            raise ValueError(f"unknown box format {fmt!r}; expected one of {BOX_FORMATS}")
    if in_fmt == out_fmt:
        return boxes
    a, b, c, d = boxes.unbind(-1)
    if in_fmt == "xywh":
        xyxy = torch.stack((a, b, a + c, b + d), dim=-1)
    elif in_fmt == "cxcywh":
        xyxy = torch.stack((a - c / 2, b - d / 2, a + c / 2, b + d / 2), dim=-1)
    else:
        xyxy = boxes
    if out_fmt == "xyxy":
        return xyxy
    x1, y1, x2, y2 = xyxy.unbind(-1)
    if out_fmt == "xywh":
        return torch.stack((x1, y1, x2 - x1, y2 - y1), dim=-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU, ``Tensor[N, 4] x Tensor[M, 4] -> Tensor[N, M]`` (continuous-pixel convention)."""
    return _tv_box_iou(boxes1, boxes2)


def oracle_confidence(boxes: Tensor, gt_boxes: Tensor) -> Tensor:
    """The paper's oracle confidence: IoU of each box with its closest ground-truth face.

    Args:
        boxes: ``Tensor[N, 4]`` candidate boxes, xyxy pixels.
        gt_boxes: ``Tensor[M, 4]`` ground-truth faces, xyxy pixels.

    Returns:
        ``Tensor[N]`` in [0, 1]; all zeros when there is no ground truth.

    Example:
        >>> oracle_confidence(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[0.0, 0, 10, 5]]))
        tensor([0.5000])
    """
    if gt_boxes.numel() == 0 or boxes.numel() == 0:
        return boxes.new_zeros(boxes.shape[0])
    return box_iou(boxes, gt_boxes).amax(dim=1)
