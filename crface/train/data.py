"""The training set: images, cached detector candidates and oracle targets, as network inputs.

One item is one (dataset, image, variant) triple: every cached variant (e.g. the detector run on
the image at scale 1 and at scale 2) is a separate sample. Cached boxes are in pixels of the stored
image whatever the variant (see :mod:`crface.cache`), so the stored image is used as is. Each item then picks *one* of the
detectors cached for it at random (model-agnostic training, paper sec. 3.3 / 4.2: the ranker
sees every detector's output distribution), augments image, candidates and ground truth together
(:mod:`crface.train.augment`), and computes

* the oracle confidence of every candidate (IoU with its closest ground-truth face *after*
  augmentation, :func:`crface.ops.oracle_confidence`),
* the network input exactly as :class:`crface.refiner.Refiner` builds it
  (:func:`crface.model.letterbox` + :func:`crface.model.box_matrix`),
* per-row loss weights: 1 for real rows, 0 for padding, and 0 in datasets whose labels are not
  exhaustive (``exhaustive=False``) for small candidates that match no labelled face: they may be
  unlabelled real faces, and the ranker must not learn to suppress those.

Randomness: an item's random generator is seeded from ``(seed, epoch, index)`` only
(:meth:`RankingDataset.item_rng`), so an item is the same in any worker process and after
resuming a run.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from crface.cache import CandidateCache
from crface.data import FaceDataset
from crface.model import box_matrix, letterbox
from crface.ops import oracle_confidence
from crface.train.augment import AugmentConfig, augment

# A candidate whose oracle IoU is below this matches no labelled face (the paper's dataset
# statistics treat IoU >= 0.3 as "the detector found this face").
UNMATCHED_IOU = 0.3


@dataclass(frozen=True)
class TrainSource:
    """One dataset with its candidate cache.

    Attributes:
        dataset: the images and ground truth (already restricted to the training images).
        cache: the candidates cached for this dataset.
        exhaustive: whether every face is labelled. When ``False``, candidates that match no label
            (IoU < 0.3) and whose long side is below ``unlabelled_max_px`` (pixels of the stored
            image) get loss weight 0.
        unlabelled_max_px: see ``exhaustive``.
    """

    dataset: FaceDataset
    cache: CandidateCache
    exhaustive: bool = True
    unlabelled_max_px: float = 40.0


class RankingItem(NamedTuple):
    """One training example (the DataLoader stacks each field along a new batch dimension).

    Attributes:
        image: ``Tensor[3, S, S]`` float32 RGB 0-255, letterboxed.
        boxes: ``Tensor[N, 5]`` the box matrix (see :class:`crface.model.ConfidenceRanker`).
        oracle: ``Tensor[N]`` oracle confidence of each row (0 on padding).
        valid: ``Tensor[N]`` bool, real rows (a prefix).
        weights: ``Tensor[N]`` float32 loss weight of each row (0 on padding).
    """

    image: Tensor
    boxes: Tensor
    oracle: Tensor
    valid: Tensor
    weights: Tensor


def _positive(boxes: Tensor) -> Tensor:
    return (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]) & torch.isfinite(boxes).all(1)


class RankingDataset(Dataset):
    """Training examples over one or more :class:`TrainSource`.

    Args:
        sources: the datasets with their caches.
        detectors: detector names (cache folders); each item uses one of those cached for it.
        variants: ``(scale, flip)`` cache variants; each is a separate item per image.
        num_boxes: N of the ranker.
        image_size: S of the ranker.
        augment: augmentation parameters (``None``: :meth:`AugmentConfig.off`).
        seed: base seed of every item's random generator.

    Items are addressed by ``index`` (epoch 0) or ``(index, epoch)``; the epoch only changes the
    random draws. (image, variant, detector) triples missing from the cache are skipped with one
    warning; an image with no cached detector for a variant yields no item for it.

    Raises:
        FileNotFoundError: a detector / variant folder is missing altogether from a cache (a
            configuration mistake or a dump that never ran; the message names it).
        ValueError: no item at all, or bad arguments.

    Example:
        >>> ds = RankingDataset([source], ["retinaface"], [(1.0, False)],
        ...                     num_boxes=5000, image_size=640)       # doctest: +SKIP
        >>> item = ds[(0, 3)]                                         # image 0, epoch 3  # doctest: +SKIP
    """

    def __init__(
        self,
        sources: Sequence[TrainSource],
        detectors: Sequence[str],
        variants: Sequence[tuple[float, bool]] = ((1.0, False),),
        *,
        num_boxes: int,
        image_size: int,
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ) -> None:
        if not detectors:
            raise ValueError("detectors must name at least one detector")
        if not variants:
            raise ValueError("variants must list at least one (scale, flip) pair")
        self.sources = tuple(sources)
        self.detectors = tuple(detectors)
        self.variants = tuple((float(s), bool(f)) for s, f in variants)
        self.num_boxes = int(num_boxes)
        self.image_size = int(image_size)
        self.augment = augment or AugmentConfig.off()
        self.seed = int(seed)
        # items: (source, image, variant, detectors cached for it)
        self._items: list[tuple[int, int, int, tuple[int, ...]]] = []
        missing = 0
        for si, src in enumerate(self.sources):
            for det in self.detectors:
                for scale, flip in self.variants:
                    folder = src.cache.folder(det, scale, flip)
                    if not folder.is_dir():
                        raise FileNotFoundError(
                            f"no cached candidates of detector {det!r} variant ({scale:g}, {flip}) "
                            f"for dataset {src.cache.dataset!r}: {folder} does not exist (run "
                            f"`crface dump` for it, or fix the detectors/variants/cache root)"
                        )
            for ii, sample in enumerate(src.dataset):
                for vi, (scale, flip) in enumerate(self.variants):
                    dets = tuple(
                        di
                        for di, det in enumerate(self.detectors)
                        if src.cache.has(det, scale, flip, sample.name)
                    )
                    missing += len(self.detectors) - len(dets)
                    if dets:
                        self._items.append((si, ii, vi, dets))
        if not self._items:
            raise ValueError("no training item: the caches hold no candidates for these images")
        if missing:
            warnings.warn(
                f"{missing} (image, variant, detector) combinations have no cached candidates; "
                "training uses the others",
                UserWarning,
                stacklevel=2,
            )

    def __len__(self) -> int:
        return len(self._items)

    def item_rng(self, index: int, epoch: int = 0) -> np.random.Generator:
        """The random generator of item ``index`` in ``epoch``: seeded from (seed, epoch, index)."""
        return np.random.default_rng([self.seed, int(epoch), int(index)])

    def describe(self) -> list[dict[str, Any]]:
        """Per source: dataset name, images, items, exhaustive flag (plain types, for metadata)."""
        return [
            {
                "dataset": src.dataset.name,
                "images": len(src.dataset),
                "items": sum(1 for it in self._items if it[0] == si),
                "exhaustive": src.exhaustive,
            }
            for si, src in enumerate(self.sources)
        ]

    def __getitem__(self, key: int | tuple[int, int]) -> RankingItem:
        index, epoch = (key, 0) if isinstance(key, (int, np.integer)) else key
        index = int(index)
        if not 0 <= index < len(self._items):
            raise IndexError(f"item {index} out of range for {len(self._items)} items")
        rng = self.item_rng(index, epoch)
        si, ii, vi, dets = self._items[index]
        src = self.sources[si]
        sample = src.dataset[ii]
        det = self.detectors[dets[int(rng.integers(len(dets)))]]
        scale, flip = self.variants[vi]
        cand = src.cache.load(det, scale, flip, sample.name)
        ok = _positive(cand.boxes) & torch.isfinite(cand.scores)
        boxes, scores = cand.boxes[ok], cand.scores[ok].clamp(0, 1)
        gt = sample.boxes[_positive(sample.boxes)]

        aug = augment(src.dataset.load_image(ii), boxes, gt, rng, self.augment)
        h, w = aug.image.shape[:2]
        image, _ = letterbox(torch.from_numpy(aug.image).permute(2, 0, 1), self.image_size)
        matrix, order = box_matrix(
            aug.boxes, scores[aug.box_index], float(max(h, w)), self.num_boxes
        )
        k = order.numel()
        oracle = torch.zeros(self.num_boxes)
        oracle[:k] = oracle_confidence(aug.boxes[order], aug.gt)
        valid = torch.arange(self.num_boxes) < k
        weights = valid.float()
        if not src.exhaustive:
            # Size in pixels of the stored image, whatever the augmentation did to it.
            original = boxes[aug.box_index[order]]
            long_side = (original[:, 2:] - original[:, :2]).amax(dim=1)
            unlabelled = (oracle[:k] < UNMATCHED_IOU) & (long_side < src.unlabelled_max_px)
            weights[:k][unlabelled] = 0.0
        return RankingItem(image, matrix, oracle, valid, weights)
