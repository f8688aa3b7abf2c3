"""Run a detector over a dataset and cache its pre-NMS candidates (``crface dump``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crface import __version__
from crface.cache import CandidateCache, variant_name
from crface.data import FaceDataset
from crface.detectors.base import DetectorRunner
from crface.types import Detections
from crface.weights import sha256_of


@dataclass
class DumpStats:
    """What one dump did: images processed/skipped per variant and median ms per detector call."""

    done: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    ms: dict[str, list[float]] = field(default_factory=dict)

    def median_ms(self, variant: str) -> float | None:
        times = self.ms.get(variant)
        return statistics.median(times) if times else None


def dump_dataset(
    runner: DetectorRunner,
    detector_name: str,
    dataset: FaceDataset,
    cache: CandidateCache,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    progress: bool = True,
    limit: int | None = None,
    zoom: float | None = None,
) -> DumpStats:
    """Cache ``runner``'s candidates for every image of ``dataset`` at each scale (and mirrored).

    Images whose file already exists are skipped, so an interrupted dump resumes where it stopped.

    Args:
        runner: a detector runner (see :mod:`crface.detectors`).
        detector_name: the cache folder name for this detector.
        dataset: images to run on.
        cache: where to write.
        scales: resize factors; each gives a variant ``s<scale>``.
        flip: also run on the mirrored image (variants ``s<scale>_flip``).
        progress: show a tqdm progress bar.
        limit: only the first ``limit`` images (for quick checks).
        zoom: cache :func:`crface.zoom`'s pooled candidates at this scale instead (the photo's
            own pass plus the zoomed one, unfused, with ``detector_name``'s tuned settings when
            it is a built-in runner) under the detector folder ``<detector_name>_zoom<zoom>``;
            ``scales`` must then be ``(1.0,)`` without ``flip``.

    Returns:
        :class:`DumpStats`.
    """
    from tqdm.auto import tqdm

    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be positive numbers; got {list(scales)}")
    variants = [(float(s), f) for s in scales for f in ((False, True) if flip else (False,))]
    detect = runner.detect
    if zoom is not None:
        detect, detector_name = _zoomed(runner, detector_name, zoom, variants)
    meta = {
        "detector": detector_name,
        "runner": type(runner).__name__,
        "weights": str(runner.weights),
        "weights_sha256": sha256_of(runner.weights),
        "score_threshold": runner.score_threshold,
        "top_k": runner.top_k,
        "dataset_root": str(dataset.root),
        "crface_version": __version__,
    }
    if zoom is not None:
        meta["zoom_scale"] = zoom
    for scale, f in variants:
        cache.write_meta(detector_name, scale, f, {**meta, "scale": scale, "flip": f})
    samples = list(dataset)[:limit]
    stats = DumpStats()
    bar = tqdm(
        samples, desc=f"{detector_name} on {cache.dataset}", unit="img", disable=not progress
    )
    for i, sample in enumerate(bar):
        todo = [(s, f) for s, f in variants if not cache.has(detector_name, s, f, sample.name)]
        for s, f in variants:
            key = variant_name(s, f)
            if (s, f) not in todo:
                stats.skipped[key] = stats.skipped.get(key, 0) + 1
        if not todo:
            continue
        image = dataset.load_image(i)
        for s, f in todo:
            key = variant_name(s, f)
            t = time.perf_counter()
            det = detect(image, scale=s, flip=f)
            stats.ms.setdefault(key, []).append((time.perf_counter() - t) * 1e3)
            cache.save(detector_name, s, f, sample.name, det)
            stats.done[key] = stats.done.get(key, 0) + 1
    for scale, f in variants:
        key = variant_name(scale, f)
        if stats.ms.get(key):
            cache.write_meta(
                detector_name,
                scale,
                f,
                {**cache.read_meta(detector_name, scale, f), "median_ms": stats.median_ms(key)},
            )
    return stats


def _zoomed(runner: DetectorRunner, name: str, factor: float, variants: list) -> tuple:
    """``(detect, folder name)`` caching zoom's pooled candidates of ``runner`` at ``factor``."""
    from crface.zooming import TUNED, zoom

    if variants != [(1.0, False)]:
        raise ValueError(
            f"zoom caches one pass pair per photo: use scales (1.0,) without flip; got {variants}"
        )
    settings = name if name in TUNED else None

    def detect(image: Any, scale: float, flip: bool) -> Detections:
        del scale, flip  # always (1.0, False), checked above
        return zoom(runner.detect, image, scale=factor, detector=settings, pool_only=True)

    return detect, zoom_folder(name, factor)


def zoom_folder(detector: str, factor: float) -> str:
    """The cache's detector folder for zoom's pooled candidates, e.g. ``retinaface_zoom2``."""
    return f"{detector}_zoom{factor:g}"
