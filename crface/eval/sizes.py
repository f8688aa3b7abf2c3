"""AP by face size: the ground truth regrouped into size buckets, scored with the WIDER protocol.

WIDER publishes Easy / Medium / Hard only for its val photos; for training photos (and to see where
a method gains) faces are grouped by width instead. Faces outside a bucket are ignored in it the way
WIDER ignores the faces a setting leaves out: matching one is neither a hit nor a false positive.

    >>> import torch
    >>> from crface.data import FaceDataset, Sample
    >>> ds = FaceDataset([Sample("a.jpg", "a.jpg", torch.tensor([[0.0, 0, 10, 10], [0, 0, 60, 60]]))])
    >>> ap_by_size({"a.jpg": torch.tensor([[0.0, 0, 10, 10, 0.9]])}, ds)
    {'small': 1.0, 'medium': nan, 'large': 0.0}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crface.data import SETTINGS, FaceDataset, Sample
from crface.eval.wider import evaluate

SIZE_EDGES = (16.0, 48.0)  # px of face width: < 16, 16-48, > 48 (as issue 10 asks)
SIZE_BUCKETS = ("small", "medium", "large")  # stored in the easy / medium / hard slots, in order

__all__ = ["SIZE_BUCKETS", "SIZE_EDGES", "ap_by_size", "by_face_size"]


def by_face_size(dataset: FaceDataset, edges: tuple[float, float] = SIZE_EDGES) -> FaceDataset:
    """``dataset`` with its keep masks replaced by face-width buckets.

    The buckets go in the Easy / Medium / Hard slots in the order of :data:`SIZE_BUCKETS`
    (small, medium, large): evaluate with those settings and rename (:func:`ap_by_size` does).
    """
    lo, hi = edges
    samples = []
    for s in dataset:
        width = s.boxes[:, 2] - s.boxes[:, 0]
        masks = (width < lo, (width >= lo) & (width <= hi), width > hi)
        samples.append(
            Sample(s.name, s.image_path, s.boxes, dict(zip(SETTINGS, masks)), s.fold, s.image_size)
        )
    return FaceDataset(samples, root=dataset.root, name=dataset.name, has_splits=True)


def ap_by_size(predictions: Mapping[str, Any], dataset: FaceDataset) -> dict[str, float]:
    """AP (fraction) per face-size bucket, keyed by :data:`SIZE_BUCKETS`."""
    ap = evaluate(predictions, by_face_size(dataset), settings=SETTINGS).ap
    return dict(zip(SIZE_BUCKETS, (ap[s] for s in SETTINGS)))
