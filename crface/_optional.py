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


# onnxruntime's error classes for a model file it cannot parse (vs. provider / runtime failures)
_UNREADABLE_MODEL = ("InvalidProtobuf", "InvalidGraph", "InvalidArgument", "NoModel")


def ort_session(model: str | bytes, device: str = "auto", **session_kwargs):
    """An onnxruntime InferenceSession on CUDA when asked/available, else CPU.

    Args:
        model: the .onnx file path, or the serialised model bytes.
        device: ``"auto"`` (CUDA provider if onnxruntime-gpu sees a GPU, else CPU), ``"cpu"`` or ``"cuda"``.

    Raises:
        ValueError: for an unknown device, ``"cuda"`` when the CUDA provider is not available, or
            a model onnxruntime cannot parse (truncated, corrupt or not ONNX): one line naming it.
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
    try:
        return ort.InferenceSession(source, providers=providers, **session_kwargs)
    except Exception as exc:
        if type(exc).__name__ not in _UNREADABLE_MODEL:
            raise
        detail = str(exc).splitlines()[0].rsplit(" : ", 1)[-1].rsplit("failed:", 1)[-1].strip()
        name = "<in-memory model>" if isinstance(model, bytes) else source
        raise ValueError(
            f"cannot load {name}: not a valid ONNX model ({detail}); the file is truncated, "
            "corrupt or not an ONNX export: re-download or re-export it"
        ) from None
