"""crface: model-agnostic confidence ranking for face detectors (CRFace).

>>> import crface
>>> refiner = crface.Refiner.load("crface-small")             # doctest: +SKIP
>>> faces = refiner.rerank(image, boxes, scores)              # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

# Heavy pieces import on first use, so `import crface` and `crface --help` stay fast.
_LAZY = {
    "Detections": "crface.types",
    "Refiner": "crface.refiner",
    "RankerConfig": "crface.model",
    "ConfidenceRanker": "crface.model",
    "list_weights": "crface.weights",
    "load_image": "crface.imageio",
    "hook": "crface.hooks",
    "refined": "crface.hooks",
    "rerank_stream": "crface.hooks",
    "RefinedDetector": "crface.hooks",
    "zoom": "crface.zooming",
    "tile": "crface.tiling",
}

__all__ = [
    "ConfidenceRanker",
    "Detections",
    "RankerConfig",
    "RefinedDetector",
    "Refiner",
    "__version__",
    "hook",
    "list_weights",
    "load_image",
    "refined",
    "rerank_stream",
    "tile",
    "zoom",
]

if TYPE_CHECKING:
    from crface.hooks import RefinedDetector, hook, refined, rerank_stream
    from crface.imageio import load_image
    from crface.model import ConfidenceRanker, RankerConfig
    from crface.refiner import Refiner
    from crface.tiling import tile
    from crface.types import Detections
    from crface.weights import list_weights
    from crface.zooming import zoom


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'crface' has no attribute {name!r}")
