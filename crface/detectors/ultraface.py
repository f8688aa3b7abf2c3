"""UltraFace (Ultra-Light-Fast-Generic-Face-Detector-1MB, MIT): RFB-640 and slim-320 with
onnxruntime."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from PIL import Image

from crface.adapters import ultraface as ultraface_adapter
from crface.detectors.base import OnnxRunner
from crface.types import Detections


class _UltraFaceRunner(OnnxRunner):
    """UltraFace: the image is stretched to the fixed network size, RGB ``(x - 127) / 128``;
    the outputs are decoded, normalised boxes (no landmarks)."""

    input_size: ClassVar[tuple[int, int]]  # (width, height) of the fixed network input

    def _detect(self, image: np.ndarray) -> Detections:
        resized = np.asarray(Image.fromarray(image).resize(self.input_size, Image.BILINEAR))
        blob = (resized.transpose(2, 0, 1)[None].astype(np.float32) - 127.0) / 128.0
        scores, boxes = self._run(blob)
        return ultraface_adapter.decode_raw(
            scores, boxes, image.shape[:2], score_threshold=self.score_threshold
        )


class UltraFaceRFB640Runner(_UltraFaceRunner):
    """UltraFace RFB, 640x480 input (``ultraface_rfb640.onnx``).

    Example:
        >>> det = UltraFaceRFB640Runner()("photo.jpg")  # doctest: +SKIP
    """

    name = "ultraface_rfb640"
    default_weights = "ultraface_rfb640.onnx"
    input_size = (640, 480)


class UltraFaceSlim320Runner(_UltraFaceRunner):
    """UltraFace slim, 320x240 input (``ultraface_slim320.onnx``).

    Example:
        >>> det = UltraFaceSlim320Runner()("photo.jpg")  # doctest: +SKIP
    """

    name = "ultraface_slim320"
    default_weights = "ultraface_slim320.onnx"
    input_size = (320, 240)
