"""On-disk cache of detector candidates (written by ``crface dump``, read by training and evaluation).

Layout::

    CACHE/<dataset>/<detector>/<variant>/<image name>.npz     # variant: "s1.00", "s2.00_flip", ...
    CACHE/<dataset>/<detector>/<variant>/meta.json             # how it was produced

Each ``.npz`` holds ``boxes`` float32 ``(K, 4)`` xyxy in pixels of the *original* image, ``scores``
float32 ``(K,)`` (kept exact: rankings hinge on small differences) and, when the detector has them,
``landmarks`` float16 ``(K, L, 2)``. Files are written atomically, so an interrupted dump resumes
by skipping the images whose file exists.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from crface.types import Detections


def variant_name(scale: float, flip: bool = False) -> str:
    """The folder name of one (scale, flip) pass, e.g. ``s1.00`` or ``s2.00_flip``."""
    return f"s{scale:.2f}" + ("_flip" if flip else "")


class CandidateCache:
    """Per-image candidate files of one dataset under ``root``.

    Args:
        root: the cache root (``CACHE`` above).
        dataset: dataset name (the data folder's name, e.g. ``wider_val200``).

    Example:
        >>> import tempfile, torch
        >>> cache = CandidateCache(tempfile.mkdtemp(), "demo")
        >>> det = Detections(torch.tensor([[1.0, 2, 30, 40]]), torch.tensor([0.9]))
        >>> cache.save("retinaface", 1.0, False, "a/b.jpg", det)
        >>> cache.load("retinaface", 1.0, False, "a/b.jpg").boxes.tolist()
        [[1.0, 2.0, 30.0, 40.0]]
    """

    def __init__(self, root: str | os.PathLike, dataset: str) -> None:
        self.root = Path(root)
        self.dataset = dataset

    def folder(self, detector: str, scale: float = 1.0, flip: bool = False) -> Path:
        return self.root / self.dataset / detector / variant_name(scale, flip)

    def path(self, detector: str, scale: float, flip: bool, name: str) -> Path:
        return self.folder(detector, scale, flip) / f"{name}.npz"

    def has(self, detector: str, scale: float, flip: bool, name: str) -> bool:
        return self.path(detector, scale, flip, name).is_file()

    def save(self, detector: str, scale: float, flip: bool, name: str, det: Detections) -> None:
        path = self.path(detector, scale, flip, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = det.to_numpy()
        payload = {
            "boxes": arrays["boxes"].astype(np.float32),
            "scores": arrays["scores"].astype(np.float32),
        }
        if arrays["landmarks"] is not None:
            payload["landmarks"] = arrays["landmarks"].astype(np.float16)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **payload)
        os.replace(tmp, path)

    def load(self, detector: str, scale: float, flip: bool, name: str) -> Detections:
        """The cached candidates; FileNotFoundError names the missing file and the dump to run."""
        path = self.path(detector, scale, flip, name)
        if not path.is_file():
            raise FileNotFoundError(
                f"no cached candidates at {path}; run `crface dump --detector {detector} "
                f"--scales {scale:g}{' --flip' if flip else ''}` over dataset {self.dataset!r}"
            )
        with np.load(path, allow_pickle=False) as z:
            lm = z["landmarks"].astype(np.float32) if "landmarks" in z.files else None
            return Detections(z["boxes"], z["scores"], landmarks=lm)

    def write_meta(self, detector: str, scale: float, flip: bool, meta: dict[str, Any]) -> None:
        folder = self.folder(detector, scale, flip)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))

    def read_meta(self, detector: str, scale: float, flip: bool) -> dict[str, Any]:
        path = self.folder(detector, scale, flip) / "meta.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def detectors(self) -> list[str]:
        """Detector names with at least one cached variant."""
        base = self.root / self.dataset
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def variants(self, detector: str) -> list[tuple[float, bool]]:
        """``(scale, flip)`` pairs cached for ``detector``."""
        base = self.root / self.dataset / detector
        out = []
        for p in sorted(base.iterdir()) if base.is_dir() else []:
            if p.is_dir() and p.name.startswith("s"):
                scale, _, flip = p.name[1:].partition("_")
                out.append((float(scale), flip == "flip"))
        return out
