"""YuNet-n / YuNet-s (libfacedetection.train, Apache-2.0) with onnxruntime."""

from __future__ import annotations

import numpy as np

from crface.adapters import yunet as yunet_adapter
from crface.detectors.base import OnnxRunner, pad_to_multiple
from crface.types import Detections


class _YuNetRunner(OnnxRunner):
    """YuNet: BGR float 0-255 input padded to multiples of 32, anchor-free heads at strides
    8/16/32; candidates carry 5 landmarks."""

    def _detect(self, image: np.ndarray) -> Detections:
        padded = pad_to_multiple(image, 32)
        blob = np.ascontiguousarray(padded[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
        outputs = dict(zip(self.output_names, self._run(blob), strict=True))
        return yunet_adapter.decode_raw(
            outputs, padded.shape[:2], score_threshold=self.score_threshold
        )


class YuNetNRunner(_YuNetRunner):
    """YuNet-n (``yunet_n_dynamic.onnx``).

    Example:
        >>> det = YuNetNRunner()("photo.jpg")  # doctest: +SKIP
    """

    name = "yunet_n"
    default_weights = "yunet_n_dynamic.onnx"


class YuNetSRunner(_YuNetRunner):
    """YuNet-s (``yunet_s_dynamic.onnx``, the net of OpenCV zoo's face_detection_yunet_2023mar).

    Example:
        >>> det = YuNetSRunner()("photo.jpg")  # doctest: +SKIP
    """

    name = "yunet_s"
    default_weights = "yunet_s_dynamic.onnx"
