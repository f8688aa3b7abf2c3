"""Runners for real pretrained face detectors (used by examples, ``crface dump`` and benchmarks).

Each runner returns candidates *before* NMS, which is what the ranker consumes. Weights are never
bundled: pass a path, or let the runner find ``shared/detectors/<file>`` (see :mod:`crface.paths`).

    >>> from crface.detectors import get_detector, RUNNERS
    >>> sorted(RUNNERS)[:3]
    ['centerface', 'mtcnn', 'retinaface']
"""

from __future__ import annotations

import importlib
from typing import Any

from crface.detectors.base import DetectorRunner

# name -> "module:Class"; modules import lazily so a missing optional dependency only hurts its runner.
RUNNERS: dict[str, str] = {
    "retinaface": "crface.detectors.retinaface:RetinaFaceRunner",
    "retinaface_torch": "crface.detectors.retinaface:RetinaFaceTorchRunner",
    "yunet_n": "crface.detectors.yunet:YuNetNRunner",
    "yunet_s": "crface.detectors.yunet:YuNetSRunner",
    "scrfd_500m": "crface.detectors.scrfd:SCRFDRunner",
    "centerface": "crface.detectors.centerface:CenterFaceRunner",
    "ultraface_rfb640": "crface.detectors.ultraface:UltraFaceRFB640Runner",
    "ultraface_slim320": "crface.detectors.ultraface:UltraFaceSlim320Runner",
    "mtcnn": "crface.detectors.mtcnn:MTCNNRunner",
}


def runner_class(name: str) -> type[DetectorRunner]:
    """The runner class registered as ``name``.

    Raises:
        ValueError: for an unknown name, listing the registered ones.
    """
    if name not in RUNNERS:
        raise ValueError(f"unknown detector {name!r}; available: {', '.join(sorted(RUNNERS))}")
    module, cls = RUNNERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get_detector(name: str, weights: Any = None, **kwargs: Any) -> DetectorRunner:
    """Instantiate the runner ``name`` (see :data:`RUNNERS`) with optional explicit ``weights``."""
    return runner_class(name)(weights, **kwargs)


__all__ = ["RUNNERS", "DetectorRunner", "get_detector", "runner_class"]
