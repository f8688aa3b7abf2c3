from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from crface.cache import CandidateCache
from crface.data import load_dataset
from crface.ops import oracle_confidence
from crface.train.augment import AugmentConfig
from crface.train.data import RankingDataset, RankingItem, TrainSource
from crface.types import Detections

DETECTORS = ("detA", "detB")
VARIANTS = ((1.0, False), (2.0, False))


def make_synthetic(
    root: Path,
    *,
    name: str = "synth",
    num_images: int = 10,
    detectors: Sequence[str] = DETECTORS,
    variants: Sequence[tuple[float, bool]] = VARIANTS,
    num_folds: int = 5,
    seed: int = 0,
) -> tuple[Path, Path]:
    """A dataset folder (images of bright square "faces" on noise, WIDER-format labels, splits,
    folds) and a candidate cache of fake detectors under ``root``; returns (data dir, cache root).

    The fake detectors mis-rank on purpose: jittered copies of every face score 0.2-0.5 while
    random false positives score 0.5-0.9, so there is something for a ranker to fix.
    """
    rng = np.random.default_rng(seed)
    data = root / name
    (data / "images").mkdir(parents=True)
    (data / "splits").mkdir()
    cache = CandidateCache(root / "cache", name)
    labels, easy, medium, hard, folds = [], [], [], [], []
    for i in range(num_images):
        h, w = int(rng.integers(56, 72)), int(rng.integers(64, 88))
        image = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
        faces: list[list[int]] = []
        while len(faces) < int(rng.integers(1, 4)):
            s = int(rng.integers(10, 24))
            x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
            if all(
                x + s <= fx or fx + fs <= x or y + s <= fy or fy + fs <= y for fx, fy, fs in faces
            ):
                faces.append([x, y, s])
        for x, y, s in faces:
            image[y : y + s, x : x + s] = (220, 190, 160)
            image[y + s // 3, x + s // 4] = image[y + s // 3, x + 3 * s // 4] = 0  # eyes
        file = f"img{i:02d}.png"
        Image.fromarray(image).save(data / "images" / file)
        labels += [file, str(len(faces)), *(f"{x} {y} {s} {s}" for x, y, s in faces)]
        easy.append(" ".join([file, *(str(k) for k, f in enumerate(faces) if f[2] >= 16)]))
        medium.append(" ".join([file, *(str(k) for k, f in enumerate(faces) if f[2] >= 12)]))
        hard.append(" ".join([file, *(str(k) for k in range(len(faces)))]))
        folds.append(f"{file} {i % num_folds}")
        gt = torch.tensor([[x, y, x + s, y + s] for x, y, s in faces], dtype=torch.float32)
        for det in detectors:
            for scale, flip in variants:
                size = gt[:, 2:] - gt[:, :2]
                jitter = torch.from_numpy(rng.uniform(-0.15, 0.15, (3, len(gt), 4))).float()
                on_faces = (gt + jitter * size.repeat(1, 2)).reshape(-1, 4)
                xy = torch.from_numpy(rng.uniform(0, [w - 8, h - 8], (6, 2))).float()
                fp = torch.cat([xy, xy + torch.from_numpy(rng.uniform(5, 20, (6, 2))).float()], 1)
                boxes = torch.cat([on_faces, fp])
                scores = torch.cat(
                    [
                        torch.from_numpy(rng.uniform(0.2, 0.5, len(on_faces))),
                        torch.from_numpy(rng.uniform(0.5, 0.9, len(fp))),
                    ]
                ).float()
                cache.save(det, scale, flip, file, Detections(boxes, scores))
    (data / "labels.txt").write_text("\n".join(labels) + "\n")
    for setting, rows in (("easy", easy), ("medium", medium), ("hard", hard), ("folds", folds)):
        (data / "splits" / f"{setting}.txt").write_text("\n".join(rows) + "\n")
    return data, root / "cache"


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> tuple[Path, Path]:
    return make_synthetic(tmp_path_factory.mktemp("train_data"))


def _dataset(
    synth, *, exhaustive=True, max_px=40.0, augment=None, num_boxes=32, **kw
) -> RankingDataset:
    data, cache_root = synth
    ds = load_dataset(data)
    src = TrainSource(ds, CandidateCache(cache_root, ds.name), exhaustive, max_px)
    return RankingDataset(
        [src],
        kw.pop("detectors", DETECTORS),
        kw.pop("variants", VARIANTS),
        num_boxes=num_boxes,
        image_size=64,
        augment=augment,
        **kw,
    )


def _pixel_boxes(item: RankingItem, long_side: float) -> torch.Tensor:
    x, y, w, h = item.boxes[item.valid, :4].unbind(1)
    return torch.stack((x, y, x + w, y + h), 1) * long_side


def test_items_shapes_targets_and_preprocessing(synth) -> None:
    ds = _dataset(synth)
    assert len(ds) == 10 * len(VARIANTS)
    item = ds[0]
    assert isinstance(item, RankingItem)
    assert item.image.shape == (3, 64, 64) and item.image.dtype == torch.float32
    assert (
        item.boxes.shape == (32, 5) and item.oracle.shape == (32,) and item.weights.shape == (32,)
    )
    sample = ds.sources[0].dataset[0]
    image = ds.sources[0].dataset.load_image(0)
    k = int(item.valid.sum())
    assert item.valid[:k].all() and not item.valid[k:].any()  # a prefix
    assert torch.all(item.boxes[k:] == 0) and torch.all(item.oracle[k:] == 0)
    assert torch.equal(item.weights, item.valid.float())
    assert torch.all(item.boxes[:-1, 4] >= item.boxes[1:, 4])  # sorted by detector score
    # The oracle is the IoU of each row's box with the closest face.
    long_side = float(max(image.shape[:2]))
    want = oracle_confidence(_pixel_boxes(item, long_side), sample.boxes)
    torch.testing.assert_close(item.oracle[:k], want, atol=1e-4, rtol=0)
    assert (item.oracle[:k] > 0.3).sum() >= len(sample)  # the jittered copies of the faces
    # Same preprocessing as the Refiner: letterbox + box matrix of the cached candidates.
    from crface.model import box_matrix, letterbox

    ref_img, _ = letterbox(torch.from_numpy(image).permute(2, 0, 1), 64)
    torch.testing.assert_close(item.image, ref_img)
    cands = [ds.sources[0].cache.load(d, 1.0, False, sample.name) for d in DETECTORS]
    mats = [box_matrix(c.boxes, c.scores, long_side, 32)[0] for c in cands]
    assert any(torch.equal(item.boxes, m) for m in mats)


def test_truncates_to_the_top_scores(synth) -> None:
    ds = _dataset(synth, num_boxes=4)
    item = ds[0]
    assert item.valid.all()
    sample = ds.sources[0].dataset[0]
    tops = [
        ds.sources[0].cache.load(d, 1.0, False, sample.name).scores.sort(descending=True).values[:4]
        for d in DETECTORS
    ]
    assert any(torch.equal(item.boxes[:, 4], t) for t in tops)


def test_items_are_deterministic_and_mix_detectors(synth) -> None:
    ds = _dataset(synth, augment=AugmentConfig())
    for key in [(3, 0), (3, 7), (0, 2)]:
        a, b = ds[key], ds[key]
        for x, y in zip(a, b):
            assert torch.equal(x, y)
    assert not torch.equal(ds[(3, 0)].image, ds[(3, 1)].image)
    plain = _dataset(synth)
    sample = plain.sources[0].dataset[2]
    long_side = float(max(plain.sources[0].dataset.load_image(2).shape[:2]))
    seen = set()
    for epoch in range(12):
        item = plain[(4, epoch)]  # items run image-major: item 4 is image 2 at scale 1
        for det in DETECTORS:
            c = plain.sources[0].cache.load(det, 1.0, False, sample.name)
            got, want = _pixel_boxes(item, long_side), c.boxes[c.scores.argsort(descending=True)]
            if got.shape == want.shape and torch.allclose(got, want, atol=1e-3):
                seen.add(det)
    assert seen == set(DETECTORS)
    # Same seed, same items; another seed, other draws.
    other = _dataset(synth, augment=AugmentConfig(), seed=1)
    assert torch.equal(_dataset(synth, augment=AugmentConfig())[(3, 0)].image, ds[(3, 0)].image)
    assert any(not torch.equal(other[(i, 0)].image, ds[(i, 0)].image) for i in range(4))


def test_unlabelled_small_candidates_weigh_zero_only_when_not_exhaustive(tmp_path) -> None:
    data, cache_root = make_synthetic(
        tmp_path, num_images=1, detectors=["d"], variants=[(1.0, False)]
    )
    ds = load_dataset(data)
    face = ds[0].boxes[0]
    boxes = torch.stack(
        [
            face + torch.tensor([1.0, 0, 1, 0]),  # matches a face
            torch.tensor([0.0, 0, 6, 6]),  # small, unmatched
            torch.tensor([0.0, 0, 30, 30]),  # large, unmatched (may touch a face: IoU < 0.3 anyway)
        ]
    )
    CandidateCache(cache_root, ds.name).save(
        "d", 1.0, False, ds[0].name, Detections(boxes, torch.tensor([0.9, 0.8, 0.7]))
    )
    for exhaustive, want in ((True, [1.0, 1.0, 1.0]), (False, [1.0, 0.0, 1.0])):
        src = TrainSource(ds, CandidateCache(cache_root, ds.name), exhaustive, unlabelled_max_px=20)
        item = RankingDataset([src], ["d"], num_boxes=8, image_size=64)[0]
        assert item.oracle[0] > 0.3 and item.oracle[1] < 0.3 and item.oracle[2] < 0.3
        assert item.weights.tolist() == [*want, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_missing_cache_entries(synth, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"detector 'nope'.*crface dump"):
        _dataset(synth, detectors=["detA", "nope"])
    data, cache_root = make_synthetic(
        tmp_path, num_images=3, detectors=["d"], variants=[(1.0, False)]
    )
    ds = load_dataset(data)
    cache = CandidateCache(cache_root, ds.name)
    cache.path("d", 1.0, False, ds[1].name).unlink()
    with pytest.warns(UserWarning, match="1 .image, variant, detector. combinations"):
        rd = RankingDataset([TrainSource(ds, cache)], ["d"], num_boxes=8, image_size=64)
    assert len(rd) == 2
    with pytest.raises(IndexError):
        rd[2]


def test_dataloader_batches(synth) -> None:
    ds = _dataset(synth, augment=AugmentConfig())
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert isinstance(batch, RankingItem)
    assert batch.image.shape == (3, 3, 64, 64) and batch.valid.dtype == torch.bool
    assert batch.boxes.shape == (3, 32, 5)
    assert ds.describe() == [{"dataset": "synth", "images": 10, "items": 20, "exhaustive": True}]
