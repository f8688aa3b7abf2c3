"""The common shape of every detector runner: image in, pre-NMS candidates out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from crface._optional import ort_session, require
from crface.imageio import as_rgb_array
from crface.paths import shared_path
from crface.types import Detections


class DetectorRunner(ABC):
    """Runs one pretrained face detector and returns its candidates *before* NMS.

    Subclasses set ``name`` and ``default_weights`` (a file name under ``shared/detectors``) and
    implement :meth:`_detect`, which sees an RGB uint8 image already scaled/flipped and returns
    candidates in that image's pixels. :meth:`detect` handles scale, flip, clipping, score
    threshold and top-k, and maps everything back to the input image's pixels.

    Args:
        weights: path to the detector's weights; default ``shared/detectors/<default_weights>``.
        score_threshold: drop candidates scoring below this (the ranker wants low ones too).
        top_k: keep at most this many candidates, highest scores first.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
    """

    name: ClassVar[str]
    default_weights: ClassVar[str]

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        score_threshold: float = 0.01,
        top_k: int = 5000,
        device: str = "auto",
    ) -> None:
        self.weights = (
            Path(weights) if weights is not None else shared_path("detectors", self.default_weights)
        )
        if not self.weights.is_file():
            raise FileNotFoundError(f"{self.name} weights not found: {self.weights}")
        self.score_threshold = float(score_threshold)
        self.top_k = int(top_k)
        self.device = device

    @abstractmethod
    def _detect(self, image: np.ndarray) -> Detections:
        """Candidates for an ``HxWx3`` uint8 RGB image, in its pixels (landmarks optional)."""

    def detect(self, image: Any, scale: float = 1.0, flip: bool = False) -> Detections:
        """Run the detector at ``scale`` (optionally on the mirrored image).

        Args:
            image: anything :func:`crface.imageio.as_rgb_array` accepts.
            scale: resize factor applied to the image before detection (1.0 = as is).
            flip: detect on the horizontally mirrored image (boxes are mapped back).

        Returns:
            :class:`~crface.types.Detections` in the input image's pixels, sorted by decreasing
            score, at most ``top_k`` rows with score >= ``score_threshold``, NMS *not* applied.
        """
        rgb = as_rgb_array(image)
        h, w = rgb.shape[:2]
        if scale <= 0:
            raise ValueError(f"scale must be > 0; got {scale}")
        work = rgb
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            work = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
        if flip:
            work = np.ascontiguousarray(work[:, ::-1])
        det = self._detect(work)
        boxes, lms = det.boxes.clone(), None if det.landmarks is None else det.landmarks.clone()
        sx, sy = work.shape[1] / w, work.shape[0] / h
        if flip:
            ww = work.shape[1]
            boxes[:, [0, 2]] = ww - boxes[:, [2, 0]]
            if lms is not None:
                lms[..., 0] = ww - lms[..., 0]
                if lms.shape[1] == 5:  # mirrored eyes and mouth corners swap sides
                    lms = lms[:, [1, 0, 2, 4, 3]]
        boxes /= torch.tensor([sx, sy, sx, sy])
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        if lms is not None:
            lms /= torch.tensor([sx, sy])
        keep = (
            (det.scores >= self.score_threshold)
            & (boxes[:, 2] > boxes[:, 0])
            & (boxes[:, 3] > boxes[:, 1])
        )
        keep_idx = torch.nonzero(keep).flatten()
        order = keep_idx[torch.argsort(det.scores[keep_idx], descending=True, stable=True)][
            : self.top_k
        ]
        return Detections(
            boxes[order], det.scores[order], landmarks=None if lms is None else lms[order]
        )

    __call__ = detect

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weights={str(self.weights)!r})"


def onnx_session(model: str | Path | bytes, device: str = "auto") -> Any:
    """An onnxruntime session for a model file or serialised model, via
    :func:`crface._optional.ort_session`, with onnxruntime's load-time warnings (e.g.
    "initializer appears in graph inputs") silenced.

    Example:
        >>> session = onnx_session("yunet_n_dynamic.onnx", "cpu")  # doctest: +SKIP
    """
    ort = require("onnxruntime", "running ONNX face detectors")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    # The memory pattern is planned per input shape; photos and zoom crops change shape all the
    # time, and re-planning made a run of varied SCRFD inputs ~1.8x slower (one thread, CPU).
    options.enable_mem_pattern = False
    return ort_session(model, device, sess_options=options)


def pad_to_multiple(image: np.ndarray, multiple: int = 32) -> np.ndarray:
    """Zero-pad an ``HxWxC`` image at the bottom/right to sides that are multiples of ``multiple``.

    Padding there keeps pixel coordinates unchanged, so boxes need no mapping back.

    Example:
        >>> pad_to_multiple(np.ones((40, 64, 3), np.uint8)).shape
        (64, 64, 3)
    """
    h, w = image.shape[:2]
    ph, pw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    if (ph, pw) == (h, w):
        return image
    out = np.zeros((ph, pw, *image.shape[2:]), dtype=image.dtype)
    out[:h, :w] = image
    return out


class OnnxRunner(DetectorRunner):
    """A :class:`DetectorRunner` backed by one onnxruntime session on ``self.weights``.

    Subclasses set ``name`` / ``default_weights`` and implement :meth:`_detect` using
    :meth:`_run`; see :class:`DetectorRunner` for the arguments.

    Example:
        >>> class Mine(OnnxRunner):  # doctest: +SKIP
        ...     name, default_weights = "mine", "mine.onnx"
        ...     def _detect(self, image):
        ...         return decode(self._run(preprocess(image)))
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session = self._make_session()
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _make_session(self) -> Any:
        return onnx_session(self.weights, self.device)

    def _run(self, blob: np.ndarray) -> list[np.ndarray]:
        """Run the network on one ``float32`` input blob; outputs in the graph's order."""
        return self.session.run(None, {self.input_name: blob})
