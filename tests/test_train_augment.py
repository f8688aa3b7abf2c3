from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from crface.train.augment import AugmentConfig, augment

GEOMETRY = dataclasses.replace(
    AugmentConfig.off(),
    crop_prob=0.7,
    crop_min=0.4,
    scale_prob=0.7,
    scale_range=(0.5, 2.0),
    flip_prob=0.5,
)


def _white_box_image(h: int = 90, w: int = 120) -> tuple[np.ndarray, torch.Tensor]:
    image = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = 50, 20, 80, 61
    image[y1:y2, x1:x2] = 255
    return image, torch.tensor([[x1, y1, x2, y2]], dtype=torch.float32)


def _white_extent(image: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(image[..., 0] > 127)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.mark.parametrize("seed", range(12))
def test_boxes_follow_the_image_content(seed: int) -> None:
    image, box = _white_box_image()
    cands = torch.cat([box, box + torch.tensor([2.0, -3, 5, 1])])
    out = augment(image, cands, box, np.random.default_rng(seed), GEOMETRY)
    assert out.gt_index.tolist() == [0]  # a crop never drops every face
    # The white block's extent is the transformed box (bilinear edges: within a pixel).
    np.testing.assert_allclose(_white_extent(out.image), out.gt[0].tolist(), atol=1.01)
    # Candidates get the same transform as the ground truth (before any clipping).
    if 0 in out.box_index.tolist():
        row = out.box_index.tolist().index(0)
        torch.testing.assert_close(out.boxes[row], out.gt[0])


def test_mirror_is_exact() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    boxes = torch.tensor([[0.0, 0, 10, 5], [12.5, 3, 40, 30]])
    cfg = dataclasses.replace(AugmentConfig.off(), flip_prob=1.0)
    out = augment(image, boxes, boxes[:1], rng, cfg)
    np.testing.assert_array_equal(out.image, image[:, ::-1])
    assert out.boxes.tolist() == [[30.0, 0.0, 40.0, 5.0], [0.0, 3.0, 27.5, 30.0]]
    assert out.image.flags.c_contiguous
    twice = augment(out.image, out.boxes, out.gt, rng, cfg)
    np.testing.assert_array_equal(twice.image, image)
    torch.testing.assert_close(twice.boxes, boxes)


def test_crop_keeps_boxes_by_centre_and_clips() -> None:
    # Each pixel holds its own coordinates, so the crop's offset can be read off the output.
    ys, xs = np.mgrid[0:100, 0:100]
    image = np.stack([xs, ys, np.zeros_like(xs)], axis=2).astype(np.uint8)
    boxes = torch.tensor([[0.0, 0, 10, 10], [40, 40, 60, 60], [45, 45, 99, 99], [90, 90, 99, 99]])
    cfg = dataclasses.replace(AugmentConfig.off(), crop_prob=1.0, crop_min=0.5)
    for seed in range(20):
        out = augment(image, boxes, boxes[1:2], np.random.default_rng(seed), cfg)
        h, w = out.image.shape[:2]
        assert out.gt_index.tolist() == [0]
        assert (out.boxes[:, 0::2] >= 0).all() and (out.boxes[:, 0::2] <= w).all()
        assert (out.boxes[:, 1::2] >= 0).all() and (out.boxes[:, 1::2] <= h).all()
        assert ((out.boxes[:, 2:] - out.boxes[:, :2]) > 0).all()
        # A box is kept iff its centre is inside the window, then shifted by the window's offset.
        x0, y0 = (int(v) for v in out.image[0, 0, :2])
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        inside = (centres[:, 0] >= x0) & (centres[:, 0] < x0 + w)
        inside &= (centres[:, 1] >= y0) & (centres[:, 1] < y0 + h)
        assert out.box_index.tolist() == torch.nonzero(inside).flatten().tolist()
        shifted = boxes[inside] - torch.tensor([x0, y0, x0, y0])
        torch.testing.assert_close(
            out.boxes,
            torch.maximum(shifted, torch.zeros(4)).minimum(
                torch.tensor([w, h, w, h], dtype=torch.float32)
            ),
        )


def test_seeded_determinism_and_variety() -> None:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    boxes = torch.tensor([[5.0, 5, 30, 30], [20, 10, 60, 40]])
    runs = [
        augment(image, boxes, boxes[:1], np.random.default_rng(s), AugmentConfig())
        for s in (1, 1, 2)
    ]
    np.testing.assert_array_equal(runs[0].image, runs[1].image)
    torch.testing.assert_close(runs[0].boxes, runs[1].boxes)
    assert not (
        runs[0].image.shape == runs[2].image.shape and np.array_equal(runs[0].image, runs[2].image)
    )


def test_off_is_identity_and_jitter_keeps_geometry() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    boxes = torch.tensor([[1.0, 2, 10, 12]])
    out = augment(image, boxes, boxes, rng, AugmentConfig.off())
    np.testing.assert_array_equal(out.image, image)
    torch.testing.assert_close(out.boxes, boxes)
    colour = dataclasses.replace(
        AugmentConfig.off(), brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1
    )
    out = augment(image, boxes, boxes, rng, colour)
    assert out.image.shape == image.shape and out.image.dtype == np.uint8
    assert not np.array_equal(out.image, image)
    torch.testing.assert_close(out.boxes, boxes)


def test_empty_inputs_and_validation() -> None:
    image = np.zeros((20, 30, 3), np.uint8)
    out = augment(image, torch.zeros(0, 4), torch.zeros(0, 4), np.random.default_rng(0), GEOMETRY)
    assert out.boxes.shape == (0, 4) and out.gt.shape == (0, 4)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        augment(image[..., 0], torch.zeros(0, 4), torch.zeros(0, 4), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"boxes must be a Tensor of shape \(K, 4\)"):
        augment(image, torch.zeros(3), torch.zeros(0, 4), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"unknown augment keys \['flip'\]"):
        AugmentConfig.from_dict({"flip": 0.5})
    with pytest.raises(ValueError, match="crop_prob"):
        AugmentConfig(crop_prob=2)
    assert AugmentConfig.from_dict({"scale_range": [0.5, 1.5]}).scale_range == (0.5, 1.5)
