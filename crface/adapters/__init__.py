"""Adapters: one module per detector family, turning its native output into
:class:`~crface.types.Detections` (float32 xyxy pixels, scores, optional landmarks).

Adapters are duck-typed free functions: they never import the detector. Feed them candidates
*before* NMS (or with NMS disabled / a very low threshold): the ranker re-orders candidates and runs
NMS itself, and boxes that a detector's own NMS already removed cannot be recovered.

Every adapter module exposes ``to_detections(output, **kwargs) -> Detections`` which recognises
the formats that module documents and raises ``ValueError`` listing them for anything else.

    >>> from crface.adapters import adapt
    >>> adapt("generic", [[0, 0, 10, 10, 0.9]]).boxes.tolist()
    [[0.0, 0.0, 10.0, 10.0]]
"""

from __future__ import annotations

import importlib
from typing import Any

from crface.types import Detections

ADAPTERS = (
    "centerface",
    "generic",
    "hambox",
    "hrnet",
    "mtcnn",
    "retinaface",
    "scrfd",
    "ultraface",
    "yunet",
)


def get_adapter(name: str) -> Any:
    """The adapter module ``name``.

    Raises:
        ValueError: for an unknown name, listing the available adapters.
    """
    if name not in ADAPTERS:
        raise ValueError(f"unknown adapter {name!r}; available: {', '.join(ADAPTERS)}")
    return importlib.import_module(f"crface.adapters.{name}")


def adapt(name: str, output: Any, **kwargs: Any) -> Detections:
    """Convert ``output`` of detector family ``name`` with that adapter's ``to_detections``."""
    return get_adapter(name).to_detections(output, **kwargs)


__all__ = ["ADAPTERS", "adapt", "get_adapter"]
