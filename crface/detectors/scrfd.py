"""SCRFD-0.5GF with keypoints (insightface ``det_500m``) with onnxruntime."""

from __future__ import annotations

import numpy as np

from crface.adapters import scrfd as scrfd_adapter
from crface.detectors.base import OnnxRunner, pad_to_multiple
from crface.types import Detections


class SCRFDRunner(OnnxRunner):
    """SCRFD-0.5GF (``scrfd_500m.onnx``): RGB ``(x - 127.5) / 128`` input padded to multiples of
    32, two anchors per cell at strides 8/16/32; candidates carry 5 landmarks.

    Example:
        >>> det = SCRFDRunner()("photo.jpg")  # doctest: +SKIP
    """

    name = "scrfd_500m"
    default_weights = "scrfd_500m.onnx"

    def _detect(self, image: np.ndarray) -> Detections:
        padded = pad_to_multiple(image, 32)
        blob = (padded.transpose(2, 0, 1)[None].astype(np.float32) - 127.5) / 128.0
        return scrfd_adapter.decode_raw(
            self._run(blob), padded.shape[:2], score_threshold=self.score_threshold
        )
