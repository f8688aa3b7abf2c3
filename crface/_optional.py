"""Lazy imports of optional dependencies, with an install hint naming the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

_EXTRA_OF = {
    "onnxruntime": "onnx",
    "onnx": "onnx",
    "onnxscript": "onnx",
    "scipy": "eval",
    "matplotlib": "plot",
}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise ImportError saying which extra installs it and what needs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRA_OF.get(module.split(".")[0])
        hint = f"pip install 'crface[{extra}]'" if extra else f"pip install {module}"
        raise ImportError(f"{purpose} needs the optional package {module!r}: {hint}") from exc


def ort_session(model: str | bytes, device: str = "auto", **session_kwargs):
    """An onnxruntime InferenceSession on CUDA when asked/available, else CPU.

    Args:
        model: the .onnx file path, or the serialised model bytes.
        device: ``"auto"`` (CUDA provider if onnxruntime-gpu sees a GPU, else CPU), ``"cpu"`` or ``"cuda"``.

    Raises:
        ValueError: for an unknown device, or ``"cuda"`` when the CUDA provider is not available.
    """
    ort = require("onnxruntime", "running ONNX models")
    available = ort.get_available_providers()
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda'; got {device!r}")
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise ValueError(
            "device='cuda' with the onnxruntime backend needs onnxruntime-gpu "
            f"(pip install 'crface[gpu]'); available providers: {available}"
        )
    providers = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in available:
        providers.insert(0, "CUDAExecutionProvider")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, providers=providers, **session_kwargs)
