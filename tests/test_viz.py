"""Before/after pictures stay legible on large (phone-sized) photos."""

from __future__ import annotations

import numpy as np
import pytest
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


def _box(*rows: tuple[float, float, float, float], scores: list[float]) -> Detections:
    return Detections(torch.tensor(rows), torch.tensor(scores))


def test_landmarks_and_score_labels_skip_tiny_boxes() -> None:
    """On a box under DETAIL_PX the dots would fill it and the label cover its neighbours."""
    image = np.full((200, 200, 3), 255, np.uint8)
    det = Detections(
        torch.tensor([[20.0, 40.0, 30.0, 50.0], [100.0, 100.0, 160.0, 160.0]]),  # 10 px, 60 px
        torch.tensor([0.9, 0.9]),
        landmarks=torch.tensor([[[25.0, 45.0]], [[130.0, 130.0]]]),
    )
    out = np.asarray(det.draw(image, width=1))
    assert (out[45, 25] == 255).all()  # no dot inside the tiny box
    assert (out[130, 130] < 250).any()  # the large box keeps its landmark
    assert (out[29:39, 20:40] == 255).all()  # no score label above the tiny box
    assert (out[89:99, 100:130] < 250).any()  # the large box keeps its label
    # an explicit label is written even on a tiny box; "" suppresses the large box's score
    out = np.asarray(det.draw(image, width=1, labels=["new", ""]))
    assert (out[29:39, 20:40] < 250).any()
    assert (out[89:99, 100:130] == 255).all()


def test_rerank_diff_matches_faces_by_overlap() -> None:
    from crface.viz import first_difference, rerank_diff

    before = _box((0, 0, 40, 40), (100, 0, 140, 40), (200, 0, 240, 40), scores=[0.9, 0.6, 0.3])
    # the same first face through a neighbouring candidate, the second re-scored, the third raised
    after = _box((1, 1, 41, 41), (100, 0, 140, 40), (200, 0, 240, 40), scores=[0.92, 0.8, 0.55])
    diff = rerank_diff(before, after, 0.5)
    assert (diff.new, diff.dropped, diff.moved) == ((2,), (), ((1, 1),))
    assert diff.summary() == (
        "at threshold 0.5: 1 face kept after rerank that was not before, 0 dropped, "
        "1 re-scored by 0.05 or more"
    )
    same = rerank_diff(before, before, 0.5)
    assert (
        same.identical
        and same.summary() == "the two sides are identical at threshold 0.5 (2 faces each)"
    )
    assert first_difference(before, before, 0.5) is None
    lower = first_difference(before, _box((0, 0, 40, 40), scores=[0.9]), 0.95)
    assert lower is not None and lower.threshold == pytest.approx(0.6) and len(lower.dropped) == 1


def test_before_after_labels_only_the_changes() -> None:
    from crface.viz import before_after

    image = np.full((100, 150, 3), 255, np.uint8)
    before = _box((10, 40, 50, 80), scores=[0.9])
    fig, diff = before_after(image, before, before)
    assert diff.identical and fig.size == (2 * 150 + 8, 100)
    label_row = slice(28, 39)  # between the 16 px title bar and the boxes' top edge at y = 40
    assert (np.asarray(fig)[label_row, 158 + 80 : 158 + 120] == 255).all()
    after = _box((10, 40, 50, 80), (80, 40, 120, 80), scores=[0.9, 0.7])
    fig, diff = before_after(image, before, after)
    assert diff.new == (1,) and diff.note() == "1 new, 0 dropped, 0 re-scored"
    right = np.asarray(fig)[:, 158:]
    assert (right[label_row, 80:120] < 250).any()  # "0.70 new" above the new face
    assert (right[label_row, 10:50] < 250).any()  # the unchanged 40 px face keeps its score
