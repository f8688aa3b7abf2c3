"""Reading image files: the EXIF orientation of phone photos is applied."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from crface.imageio import as_rgb_array, load_image


def _upright() -> np.ndarray:
    """A 40 x 60 image whose top-left quadrant alone is bright, so any rotation shows."""
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:20, :30] = 255
    return arr


@pytest.mark.parametrize(
    ("orientation", "stored"),
    [
        (3, lambda a: np.rot90(a, 2)),  # stored upside down
        (6, lambda a: np.rot90(a, 1)),  # stored rotated 90 CCW (a portrait phone shot)
        (8, lambda a: np.rot90(a, -1)),  # stored rotated 90 CW
        (2, lambda a: a[:, ::-1]),  # stored mirrored
    ],
)
def test_load_image_applies_exif_orientation(tmp_path, orientation, stored) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    Image.fromarray(np.ascontiguousarray(stored(_upright()))).save(path, exif=exif)

    got = load_image(path)
    assert got.shape == (40, 60, 3)
    np.testing.assert_array_equal(got, _upright())
    np.testing.assert_array_equal(as_rgb_array(str(path)), _upright())


def test_load_image_without_orientation_is_unchanged(tmp_path) -> None:
    path = tmp_path / "plain.png"
    Image.fromarray(_upright()).save(path)
    np.testing.assert_array_equal(load_image(path), _upright())


_GREY = np.arange(0, 240, 10, dtype=np.uint8).reshape(4, 6)[..., None].repeat(3, axis=2)


@pytest.mark.parametrize("scale", [1.0, 255.0], ids=["0-1", "0-255"])
@pytest.mark.parametrize("kind", ["numpy_hwc", "torch_chw"])
def test_float_images_one_rule_for_numpy_and_torch(scale, kind) -> None:
    values = _GREY.astype(np.float32) / 255 * scale
    image = values if kind == "numpy_hwc" else torch.from_numpy(values).permute(2, 0, 1)
    np.testing.assert_array_equal(as_rgb_array(image), _GREY)


@pytest.mark.parametrize("kind", ["numpy_hwc", "torch_chw"])
def test_float_images_outside_both_scales_raise(kind) -> None:
    values = (_GREY.astype(np.float32) - 128) / 64  # mean/std normalised
    image = values if kind == "numpy_hwc" else torch.from_numpy(values).permute(2, 0, 1)
    with pytest.raises(ValueError, match=r"\[0, 1\] or \[0, 255\].*normalis"):
        as_rgb_array(image)
