"""Before/after pictures stay legible on large (phone-sized) photos."""

from __future__ import annotations

import numpy as np
import torch

from crface.types import Detections
from crface.viz import side_by_side


def test_side_by_side_shrinks_large_images_before_drawing() -> None:
    image = np.full((2000, 3000, 3), 255, np.uint8)  # white, 3000 px wide
    det = Detections(
        torch.tensor([[1000.0, 500.0, 2000.0, 1500.0]]),
        torch.tensor([0.9]),
        landmarks=torch.tensor([[[1500.0, 1000.0]]]),
    )
    out = np.asarray(side_by_side(image, [("a", det), ("b", det)], max_width=1608))
    assert out.shape[1] == 1608  # two 800 px panels and the 8 px gap: scale 800 / 3000
    # the black title bar keeps its 16 px height instead of shrinking with the image
    assert (out[12, 2] < 30).all()
    # the box is drawn at the scaled coordinates, in both panels
    for x0 in (0, 808):
        x1, y1, x2 = round(1000 * 800 / 3000), round(500 * 800 / 3000), round(2000 * 800 / 3000)
        assert (out[y1, x0 + (x1 + x2) // 2] < 250).any()  # the top edge, not white
        assert (out[y1 + 50, x0 + (x1 + x2) // 2 + 20] == 255).all()  # inside stays white


def test_side_by_side_small_images_are_drawn_at_full_size() -> None:
    image = np.full((100, 150, 3), 255, np.uint8)
    det = Detections(torch.tensor([[10.0, 20.0, 60.0, 80.0]]), torch.tensor([0.9]))
    out = side_by_side(image, [("a", det), ("b", det)])
    assert out.size == (2 * 150 + 8, 100)
