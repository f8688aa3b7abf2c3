"""HAMBox adapter: RetinaNet-style anchor-based heads, or PaddleDetection result rows.

HAMBox (Liu et al., CVPR 2020) has no public release; it is a RetinaNet-style detector (dense
anchors on an FPN, sigmoid classification, Faster R-CNN box coder) built on PaddlePaddle. This
adapter therefore accepts what such a model produces.

Accepted ``output`` formats for :func:`to_detections`:

1. **Raw dense heads**, one entry per FPN level: a pair ``(cls_logits, box_deltas)`` of sequences,
   or a mapping with keys ``"cls_logits"`` and ``"box_deltas"``. Per level either

   * NCHW maps: ``cls (1, A*C, H, W)`` and ``box (1, A*4, H, W)`` (batch dimension optional), with
     channel ``a*C + c`` for anchor ``a`` and class ``c`` (and ``a*4 + k`` for delta ``k``), or
   * flattened: ``cls (H*W*A, C)`` (or ``(H*W*A,)`` for one class) and ``box (H*W*A, 4)``, rows in
     the order row -> column -> anchor.

   Decoded with :func:`decode_dense` and an anchor configuration (``image_size`` required).
2. **PaddleDetection rows** ``(N, 6)``: ``[label, score, x1, y1, x2, y2]`` in pixels, as an array or
   a mapping with key ``"bbox"`` (and optional ``"bbox_num"``); see :func:`from_paddle_rows`.

Candidates must come *before* NMS: raw heads always are; for PaddleDetection configure
``MultiClassNMS`` with ``nms_threshold: 1.0``, a low ``score_threshold`` and a large
``keep_top_k``. The ranker re-orders candidates and runs NMS itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from crface.adapters.generic import (
    as_float_tensor,
    check_image_size,
    from_boxes,
    squeeze_batch,
    unknown_format,
)
from crface.types import Detections

# RetinaNet (Lin et al. 2017) defaults: P3-P7, 3 scales x 3 aspect ratios per location.
STRIDES: tuple[int, ...] = (8, 16, 32, 64, 128)
SIZES: tuple[float, ...] = (32, 64, 128, 256, 512)
SCALES: tuple[float, ...] = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
ASPECT_RATIOS: tuple[float, ...] = (0.5, 1.0, 2.0)
# Faster R-CNN's limit on dw/dh before exp(), so one wild delta cannot overflow.
BBOX_XFORM_CLIP = math.log(1000.0 / 16)

FORMATS = (
    "raw dense heads (cls_logits per level, box_deltas per level) as a pair or a mapping with keys "
    "'cls_logits'/'box_deltas'; per level NCHW (1, A*C, H, W)/(1, A*4, H, W) or flattened "
    "(H*W*A, C)/(H*W*A, 4); needs image_size=(h, w)",
    "PaddleDetection rows (N, 6) [label, score, x1, y1, x2, y2] or {'bbox': rows, 'bbox_num': [N]}",
)


def anchor_grid(
    image_size: tuple[int, int],
    *,
    strides: Sequence[int] = STRIDES,
    sizes: Sequence[float] = SIZES,
    scales: Sequence[float] = SCALES,
    aspect_ratios: Sequence[float] = ASPECT_RATIOS,
    feature_sizes: Sequence[tuple[int, int]] | None = None,
    center_offset: float = 0.0,
) -> list[Tensor]:
    """RetinaNet-style anchors for each FPN level.

    Level ``l`` has ``A = len(scales) * len(aspect_ratios)`` anchors per cell, index
    ``a = i_scale * len(aspect_ratios) + i_ratio`` (scale-major, as in Detectron2 and
    PaddleDetection). Anchor side: area ``(sizes[l] * scale)**2``, aspect ratio ``r = h / w``, so
    ``w = sqrt(area / r)``, ``h = w * r``. Cell ``(i, j)`` is centred at
    ``((j + center_offset) * stride, (i + center_offset) * stride)``.

    Args:
        image_size: ``(height, width)`` of the network input in pixels.
        strides: stride per level.
        sizes: base anchor size per level, in pixels.
        scales: multipliers of the base size (octave scales).
        aspect_ratios: anchor ``height / width`` ratios.
        feature_sizes: ``(H, W)`` of each level's map; default ``(ceil(h / s), ceil(w / s))``.
        center_offset: ``0.0`` (torchvision, Detectron2, PaddleDetection) or ``0.5`` (cell centres).

    Returns:
        One ``Tensor[H*W*A, 4]`` float32 xyxy pixels per level, rows row -> column -> anchor.

    Raises:
        ValueError: inconsistent lengths or non-positive sizes.

    Example:
        >>> grid = anchor_grid((64, 64), strides=(32,), sizes=(32,), scales=(1,),
        ...                    aspect_ratios=(1,))
        >>> [a.shape for a in grid]
        [torch.Size([4, 4])]
    """
    h, w = check_image_size(image_size)
    if len(sizes) != len(strides):
        raise ValueError(
            f"sizes and strides need one entry per level; got {len(sizes)} and {len(strides)}"
        )
    if feature_sizes is None:
        feature_sizes = [(math.ceil(h / s), math.ceil(w / s)) for s in strides]
    if len(feature_sizes) != len(strides):
        raise ValueError(
            f"feature_sizes needs one (H, W) per level; got {len(feature_sizes)} "
            f"for {len(strides)} levels"
        )
    if min(*scales, *aspect_ratios, *sizes) <= 0:
        raise ValueError("sizes, scales and aspect_ratios must be positive")
    levels = []
    for stride, base, (fh, fw) in zip(strides, sizes, feature_sizes, strict=True):
        area = torch.tensor([(base * s) ** 2 for s in scales], dtype=torch.float64)[:, None]
        ratio = torch.tensor(aspect_ratios, dtype=torch.float64)[None, :]
        aw = torch.sqrt(area / ratio).reshape(-1)
        ah = (aw.reshape(area.shape[0], -1) * ratio).reshape(-1)
        cy = (torch.arange(int(fh), dtype=torch.float64) + center_offset) * stride
        cx = (torch.arange(int(fw), dtype=torch.float64) + center_offset) * stride
        cx, cy = cx[None, :, None], cy[:, None, None]
        aw, ah = aw[None, None, :] / 2, ah[None, None, :] / 2
        grid = torch.broadcast_tensors(cx - aw, cy - ah, cx + aw, cy + ah)
        levels.append(torch.stack(grid, dim=-1).reshape(-1, 4).to(torch.float32))
    return levels


def decode_deltas(
    deltas: Tensor,
    anchors: Tensor,
    weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    clamp: float = BBOX_XFORM_CLIP,
) -> Tensor:
    """The Faster R-CNN box coder's decode.

    With anchor centre/size ``(xa, ya, wa, ha)`` and ``(dx, dy, dw, dh) = deltas / weights``:
    ``cx = xa + dx * wa``, ``cy = ya + dy * ha``, ``w = wa * exp(min(dw, clamp))``,
    ``h = ha * exp(min(dh, clamp))``.

    Args:
        deltas: ``Tensor[N, 4]`` ``dx, dy, dw, dh``.
        anchors: ``Tensor[N, 4]`` xyxy pixels.
        weights: the coder's ``(wx, wy, ww, wh)``.
        clamp: upper bound on ``dw``/``dh`` after dividing by the weights.

    Returns:
        ``Tensor[N, 4]`` xyxy pixels.

    Example:
        >>> decode_deltas(torch.tensor([[0.5, 0.0, 0.0, 0.0]]), torch.tensor([[0.0, 0, 10, 10]]))
        tensor([[ 5.,  0., 15., 10.]])
    """
    d = deltas / deltas.new_tensor([float(x) for x in weights])
    wa, ha = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    xa, ya = anchors[:, 0] + wa / 2, anchors[:, 1] + ha / 2
    cx, cy = xa + d[:, 0] * wa, ya + d[:, 1] * ha
    w = wa * torch.exp(d[:, 2].clamp(max=clamp))
    h = ha * torch.exp(d[:, 3].clamp(max=clamp))
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=1)


def _flatten_level(
    cls: Tensor, box: Tensor, num_anchors: int, level: int
) -> tuple[Tensor, Tensor, tuple[int, int] | None]:
    """One level's heads as ``(H*W*A, C)``, ``(H*W*A, 4)`` and its map size (None if flat)."""
    if box.ndim in (3, 4):
        cls = squeeze_batch(cls, f"cls_logits[{level}]", 3)
        box = squeeze_batch(box, f"box_deltas[{level}]", 3)
        (cc, fh, fw), (bc, bh, bw) = cls.shape, box.shape
        if bc != num_anchors * 4 or (bh, bw) != (fh, fw) or cc % num_anchors:
            raise ValueError(
                f"level {level}: expected box_deltas (A*4={num_anchors * 4}, H, W) and cls_logits "
                f"(A*C, H, W) with the same H, W for A={num_anchors} anchors; "
                f"got {tuple(box.shape)} "
                f"and {tuple(cls.shape)}"
            )
        cls = (
            cls.reshape(num_anchors, cc // num_anchors, fh, fw)
            .permute(2, 3, 0, 1)
            .reshape(fh * fw * num_anchors, -1)
        )
        box = box.reshape(num_anchors, 4, fh, fw).permute(2, 3, 0, 1).reshape(-1, 4)
        return cls, box, (fh, fw)
    if cls.ndim == 1:
        cls = cls[:, None]
    if box.ndim != 2 or box.shape[1] != 4 or cls.ndim != 2 or cls.shape[0] != box.shape[0]:
        raise ValueError(
            f"level {level}: flattened heads must be cls_logits (H*W*A, C) and "
            "box_deltas (H*W*A, 4); "
            f"got {tuple(cls.shape)} and {tuple(box.shape)}"
        )
    return cls, box, None


def decode_dense(
    cls_logits: Sequence[Any],
    box_deltas: Sequence[Any],
    *,
    image_size: tuple[int, int] | None = None,
    strides: Sequence[int] = STRIDES,
    sizes: Sequence[float] = SIZES,
    scales: Sequence[float] = SCALES,
    aspect_ratios: Sequence[float] = ASPECT_RATIOS,
    feature_sizes: Sequence[tuple[int, int]] | None = None,
    center_offset: float = 0.0,
    weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    clamp: float = BBOX_XFORM_CLIP,
    face_class: int = 0,
    logits: bool = True,
) -> Detections:
    """Decode RetinaNet-style dense heads (one entry per FPN level) into all anchor candidates.

    Args:
        cls_logits: per level, NCHW ``(1, A*C, H, W)`` / ``(A*C, H, W)`` or flattened
            ``(H*W*A, C)`` / ``(H*W*A,)`` classification outputs (see the module docstring).
        box_deltas: per level, ``(1, A*4, H, W)`` / ``(A*4, H, W)`` or ``(H*W*A, 4)`` deltas.
        image_size: ``(height, width)`` of the network input in pixels (required).
        strides: stride per level (this and the next four: the anchor configuration of
            :func:`anchor_grid`; defaults: RetinaNet's).
        sizes: base anchor size per level, in pixels.
        scales: multipliers of the base size (octave scales).
        aspect_ratios: anchor ``height / width`` ratios.
        center_offset: ``0.0`` (torchvision, Detectron2, PaddleDetection) or ``0.5``.
        feature_sizes: ``(H, W)`` per level for flattened inputs (NCHW inputs carry their own);
            default ``ceil(image_size / stride)``.
        weights: the box coder's ``(wx, wy, ww, wh)`` (:func:`decode_deltas`).
        clamp: upper bound on ``dw``/``dh`` after dividing by the weights.
        face_class: the column of the face class when ``C > 1``.
        logits: ``True`` if ``cls_logits`` are logits (sigmoid applied), ``False`` if probabilities.

    Returns:
        ``Detections`` with one row per anchor, levels in order, rows row -> column -> anchor;
        boxes xyxy pixels of the network input, not clipped.

    Raises:
        ValueError: missing ``image_size``, mismatched levels or shapes, NaN/inf, or
            ``face_class`` out of range.

    Example:
        >>> cfg = dict(strides=(32,), sizes=(32,), scales=(1,), aspect_ratios=(1,))
        >>> d = decode_dense([torch.zeros(1, 1, 2, 2)], [torch.zeros(1, 4, 2, 2)],
        ...                  image_size=(64, 64), **cfg)
        >>> d.boxes[0].tolist(), d.scores[0].item()
        ([-16.0, -16.0, 16.0, 16.0], 0.5)
    """
    if image_size is None:
        raise ValueError(
            "decoding dense heads needs image_size=(height, width) of the network input"
        )
    if not all(
        isinstance(x, Sequence) and not isinstance(x, str) for x in (cls_logits, box_deltas)
    ):
        raise TypeError("cls_logits and box_deltas must be sequences with one array per FPN level")
    if not len(cls_logits) == len(box_deltas) == len(strides):
        raise ValueError(
            f"need one cls_logits and box_deltas entry per level ({len(strides)} strides); got "
            f"{len(cls_logits)} and {len(box_deltas)}"
        )
    num_anchors = len(scales) * len(aspect_ratios)
    h, w = check_image_size(image_size)
    default_sizes = [(math.ceil(h / s), math.ceil(w / s)) for s in strides]
    given_sizes = list(feature_sizes) if feature_sizes is not None else default_sizes
    flat_cls, flat_box, map_sizes = [], [], []
    for level, (c, b) in enumerate(zip(cls_logits, box_deltas, strict=True)):
        c_t, b_t, hw = _flatten_level(
            as_float_tensor(c, f"cls_logits[{level}]"),
            as_float_tensor(b, f"box_deltas[{level}]"),
            num_anchors,
            level,
        )
        hw = hw or tuple(given_sizes[level])
        if b_t.shape[0] != hw[0] * hw[1] * num_anchors:
            raise ValueError(
                f"level {level}: {b_t.shape[0]} rows but a {hw[0]}x{hw[1]} map with "
                f"{num_anchors} anchors "
                "per cell; pass feature_sizes or check image_size/strides/scales/aspect_ratios"
            )
        flat_cls.append(c_t)
        flat_box.append(b_t.to(c_t.device))
        map_sizes.append(hw)
    if len({c.shape[1] for c in flat_cls}) != 1:
        raise ValueError(
            f"all levels need the same number of classes; got {[c.shape[1] for c in flat_cls]}"
        )
    num_classes = flat_cls[0].shape[1]
    if not 0 <= face_class < num_classes:
        raise ValueError(f"face_class={face_class} out of range for {num_classes} classes")
    anchors = anchor_grid(
        (h, w),
        strides=strides,
        sizes=sizes,
        scales=scales,
        aspect_ratios=aspect_ratios,
        feature_sizes=map_sizes,
        center_offset=center_offset,
    )
    device = flat_cls[0].device
    boxes = decode_deltas(torch.cat(flat_box), torch.cat(anchors).to(device), weights, clamp)
    scores = torch.cat(flat_cls)[:, face_class]
    return Detections(boxes, torch.sigmoid(scores) if logits else scores)


def from_paddle_rows(rows: Any, face_label: int | None = None) -> Detections:
    """PaddleDetection rows ``[label, score, x1, y1, x2, y2]`` to :class:`~crface.types.Detections`.

    Rows with a negative label are dropped: PaddleDetection emits ``[-1, 0, 0, 0, 0, 0]`` when an
    image has no detection. ``indices`` record the kept rows' positions in ``rows``.

    Args:
        rows: ``(N, 6)`` array-like, pixels.
        face_label: keep only rows with this label (``None``: keep every non-negative label).

    Raises:
        ValueError: wrong shape, NaN/inf or inverted boxes.

    Example:
        >>> from_paddle_rows([[0, 0.9, 1, 2, 3, 4], [-1, 0, 0, 0, 0, 0]]).boxes.tolist()
        [[1.0, 2.0, 3.0, 4.0]]
    """
    r = as_float_tensor(rows, "rows")
    if r.numel() == 0:
        return Detections.empty(device=r.device)
    if r.ndim != 2 or r.shape[1] != 6:
        raise ValueError(
            "PaddleDetection rows must have shape (N, 6) [label, score, x1, y1, x2, y2]; "
            f"got {tuple(r.shape)}"
        )
    keep = r[:, 0] >= 0
    if face_label is not None:
        keep &= r[:, 0] == face_label
    idx = torch.nonzero(keep).flatten()
    if idx.numel() == 0:
        return Detections.empty(device=r.device)
    return from_boxes(r[idx, 2:], r[idx, 1], indices=idx)


def to_detections(output: Any, **kwargs: Any) -> Detections:
    """Convert a HAMBox / RetinaNet-style output (formats in the module docstring).

    Args:
        output: ``(cls_logits, box_deltas)`` per-level sequences or a mapping with those keys;
            or PaddleDetection rows ``(N, 6)`` / ``{"bbox": rows, "bbox_num": [N]}``.
        **kwargs: :func:`decode_dense` options for raw heads (``image_size`` required), or
            ``face_label`` for PaddleDetection rows.

    Raises:
        ValueError: an unrecognised format (the message lists the accepted ones) or invalid values.

    Example:
        >>> to_detections({"bbox": [[0, 0.8, 0, 0, 5, 5]], "bbox_num": [1]}).scores.tolist()
        [0.800000011920929]
    """
    if isinstance(output, Mapping):
        if "cls_logits" in output and "box_deltas" in output:
            return decode_dense(output["cls_logits"], output["box_deltas"], **kwargs)
        if "bbox" in output:
            num = output.get("bbox_num")
            if num is not None and len(as_float_tensor(num, "bbox_num").reshape(-1)) > 1:
                raise ValueError("bbox_num lists several images; pass one image's rows at a time")
            return from_paddle_rows(output["bbox"], **kwargs)
    elif (
        isinstance(output, Sequence)
        and len(output) == 2
        and all(isinstance(o, Sequence) and not isinstance(o, str) for o in output)
        and all(isinstance(x, Tensor) or hasattr(x, "shape") for o in output for x in o)
    ):
        return decode_dense(output[0], output[1], **kwargs)
    else:
        try:
            rows = as_float_tensor(output, "output")
        except (TypeError, ValueError) as exc:
            raise unknown_format("HAMBox", str(exc), FORMATS) from exc
        if rows.numel() == 0 or (rows.ndim == 2 and rows.shape[1] == 6):
            return from_paddle_rows(rows, **kwargs)
    raise unknown_format("HAMBox", type(output).__name__, FORMATS)


__all__ = [
    "ASPECT_RATIOS",
    "BBOX_XFORM_CLIP",
    "FORMATS",
    "SCALES",
    "SIZES",
    "STRIDES",
    "anchor_grid",
    "decode_deltas",
    "decode_dense",
    "from_paddle_rows",
    "to_detections",
]
