"""Joint image + box augmentation for training the ranker (paper sec. 4.2).

The paper's shortcut: the detector is *not* re-run on the augmented image; its cached candidate
boxes go through the same geometric transform as the image (and as the ground truth). Steps, in
order, each drawn from the caller's ``numpy.random.Generator`` (so an item is reproducible from its
seed alone, in any worker process):

1. **crop** (probability ``crop_prob``): a window whose sides are ``crop_min .. 1`` of the image's;
   boxes (candidates and ground truth alike) whose centre lies outside are dropped, the others are
   clipped to the window. Windows that would lose every ground-truth face are redrawn (up to
   ``crop_tries`` times, then the image stays uncropped).
2. **scale** (probability ``scale_prob``): resize by a factor drawn log-uniformly from
   ``scale_range``. The network letterboxes to a fixed size afterwards, so this varies the detail
   the ranker sees (a detector's view of a smaller photo), while the crop varies the framing.
3. **mirror** (probability ``flip_prob``): horizontal flip, exact (``x -> W - x``).
4. **photometric jitter**: brightness, contrast and saturation factors in ``1 +- b`` and a hue
   shift of up to ``+- hue`` of the colour circle (PIL's enhancers and HSV).

Coordinates are continuous pixels (a box ``x1..x2`` covers pixel columns ``x1 <= c + 0.5 < x2``),
so resizing multiplies by the size ratio and mirroring maps ``x1, x2`` to ``W - x2, W - x1``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image, ImageEnhance
from torch import Tensor


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation parameters (all probabilities in [0, 1]).

    Attributes:
        crop_prob: probability of a random crop.
        crop_min: smallest crop side as a fraction of the image side (each side drawn independently).
        crop_tries: redraws of a crop window that would drop every ground-truth face.
        scale_prob: probability of a random resize.
        scale_range: ``(low, high)`` resize factors.
        flip_prob: probability of a horizontal mirror.
        brightness: brightness factor drawn from ``1 +- brightness`` (0 disables).
        contrast: contrast factor drawn from ``1 +- contrast``.
        saturation: saturation factor drawn from ``1 +- saturation``.
        hue: hue shift drawn from ``+- hue`` (fraction of the colour circle, at most 0.5).
    """

    crop_prob: float = 0.5
    crop_min: float = 0.5
    crop_tries: int = 10
    scale_prob: float = 0.3
    scale_range: tuple[float, float] = (0.6, 1.0)
    flip_prob: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.03

    def __post_init__(self) -> None:
        for name in ("crop_prob", "scale_prob", "flip_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]; got {getattr(self, name)!r}")
        if not 0.0 < self.crop_min <= 1.0:
            raise ValueError(f"crop_min must be in (0, 1]; got {self.crop_min!r}")
        if self.crop_tries < 1:
            raise ValueError(f"crop_tries must be >= 1; got {self.crop_tries!r}")
        lo, hi = (float(v) for v in self.scale_range)
        if not 0.0 < lo <= hi:
            raise ValueError(
                f"scale_range must be (low, high) with 0 < low <= high; got {self.scale_range!r}"
            )
        object.__setattr__(self, "scale_range", (lo, hi))
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1); got {getattr(self, name)!r}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5]; got {self.hue!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AugmentConfig:
        """Build from a (JSON) dict; unknown keys raise ValueError listing the valid ones."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"unknown augment keys {unknown}; valid: {names}")
        d = dict(d)
        if "scale_range" in d:
            d["scale_range"] = tuple(d["scale_range"])
        return cls(**d)

    @classmethod
    def off(cls) -> AugmentConfig:
        """No augmentation at all (the identity transform)."""
        return cls(
            crop_prob=0.0,
            scale_prob=0.0,
            flip_prob=0.0,
            brightness=0.0,
            contrast=0.0,
            saturation=0.0,
            hue=0.0,
        )


class Augmented(NamedTuple):
    """The result of :func:`augment`.

    Attributes:
        image: ``HxWx3`` uint8 RGB, C-contiguous.
        boxes: ``Tensor[K', 4]`` float32 xyxy pixels of ``image``: the candidates that survived.
        box_index: ``Tensor[K']`` int64, the input row of each surviving candidate.
        gt: ``Tensor[M', 4]`` the surviving ground-truth boxes.
        gt_index: ``Tensor[M']`` int64, their input rows.
    """

    image: np.ndarray
    boxes: Tensor
    box_index: Tensor
    gt: Tensor
    gt_index: Tensor


def _centre_inside(boxes: Tensor, x0: float, y0: float, x1: float, y1: float) -> Tensor:
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    return (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1)


def _crop_boxes(boxes: Tensor, keep: Tensor, x0: int, y0: int, w: int, h: int) -> Tensor:
    b = boxes[keep] - torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype)
    b[:, 0::2] = b[:, 0::2].clamp(0, w)
    b[:, 1::2] = b[:, 1::2].clamp(0, h)
    return b


def _jitter(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    if not (cfg.brightness or cfg.contrast or cfg.saturation or cfg.hue):
        return image
    pil = Image.fromarray(image)
    for amount, enhancer in (
        (cfg.brightness, ImageEnhance.Brightness),
        (cfg.contrast, ImageEnhance.Contrast),
        (cfg.saturation, ImageEnhance.Color),
    ):
        if amount:
            pil = enhancer(pil).enhance(float(rng.uniform(1 - amount, 1 + amount)))
    if cfg.hue:
        hsv = np.array(pil.convert("HSV"))
        shift = round(float(rng.uniform(-cfg.hue, cfg.hue)) * 256)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 256).astype(np.uint8)
        pil = Image.fromarray(hsv, "HSV").convert("RGB")
    return np.array(pil)


def augment(
    image: np.ndarray,
    boxes: Tensor,
    gt: Tensor,
    rng: np.random.Generator,
    config: AugmentConfig | None = None,
) -> Augmented:
    """Randomly crop, scale, mirror and colour-jitter an image with its candidates and faces.

    Args:
        image: ``HxWx3`` uint8 RGB.
        boxes: ``Tensor[K, 4]`` float32 xyxy pixels: the detector's candidates.
        gt: ``Tensor[M, 4]`` float32 xyxy pixels: the ground-truth faces.
        rng: the only source of randomness (same seed, same result).
        config: the parameters (default :class:`AugmentConfig`).

    Returns:
        :class:`Augmented`; the inputs are not modified.

    Raises:
        ValueError: wrong image or box shapes.

    Example:
        >>> img = np.zeros((40, 60, 3), np.uint8)
        >>> box = torch.tensor([[10.0, 5, 20, 25]])
        >>> out = augment(img, box, box, np.random.default_rng(0), AugmentConfig.off())
        >>> out.boxes.tolist(), out.image.shape
        ([[10.0, 5.0, 20.0, 25.0]], (40, 60, 3))
    """
    cfg = config or AugmentConfig()
    if (
        not isinstance(image, np.ndarray)
        or image.ndim != 3
        or image.shape[2] != 3
        or image.dtype != np.uint8
    ):
        shape = getattr(image, "shape", None)
        raise ValueError(f"image must be an HxWx3 uint8 array; got {type(image).__name__} {shape}")
    for name, t in (("boxes", boxes), ("gt", gt)):
        if not isinstance(t, Tensor) or t.ndim != 2 or t.shape[1] != 4:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a Tensor of shape (K, 4); got {shape}")
    boxes, gt = boxes.float(), gt.float()
    box_index = torch.arange(boxes.shape[0])
    gt_index = torch.arange(gt.shape[0])
    h, w = image.shape[:2]

    if rng.random() < cfg.crop_prob:
        for _ in range(cfg.crop_tries):
            cw = max(1, round(w * rng.uniform(cfg.crop_min, 1.0)))
            ch = max(1, round(h * rng.uniform(cfg.crop_min, 1.0)))
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            gt_keep = _centre_inside(gt, x0, y0, x0 + cw, y0 + ch)
            if gt.shape[0] == 0 or gt_keep.any():
                keep = _centre_inside(boxes, x0, y0, x0 + cw, y0 + ch)
                boxes = _crop_boxes(boxes, keep, x0, y0, cw, ch)
                gt = _crop_boxes(gt, gt_keep, x0, y0, cw, ch)
                box_index, gt_index = box_index[keep], gt_index[gt_keep]
                image = image[y0 : y0 + ch, x0 : x0 + cw]
                h, w = ch, cw
                break

    if rng.random() < cfg.scale_prob:
        lo, hi = cfg.scale_range
        s = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        image = np.array(
            Image.fromarray(np.ascontiguousarray(image)).resize((nw, nh), Image.BILINEAR)
        )
        ratio = torch.tensor([nw / w, nh / h, nw / w, nh / h])
        boxes, gt = boxes * ratio, gt * ratio
        h, w = nh, nw

    if rng.random() < cfg.flip_prob:
        image = image[:, ::-1]
        boxes = torch.stack((w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]), dim=1)
        gt = torch.stack((w - gt[:, 2], gt[:, 1], w - gt[:, 0], gt[:, 3]), dim=1)

    image = _jitter(np.ascontiguousarray(image), cfg, rng)
    return Augmented(np.ascontiguousarray(image), boxes, box_index, gt, gt_index)
