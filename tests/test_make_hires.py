"""benchmarks/make_hires.py: photos upscaled, boxes scaled, splits and folds carried over."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from crface.data import load_dataset
from tests.helpers import load_script


def _script():
    return load_script("benchmarks/make_hires.py")


# Three photos: a wide spread of face sizes, a narrow one, and none (WIDER's dummy row).
LABELS = """a/wide.jpg
2
1 2 4 4 2 0 0 0 0 0
10 10 40 30 0 0 0 0 0 0
a/narrow.jpg
2
0 0 10 10 0 0 0 0 0 0
20 20 12 12 1 0 0 0 0 0
a/empty.jpg
0
0 0 0 0 0 0 0 0 0 0
"""


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "images" / "a").mkdir(parents=True)
    for name, (w, h) in {"wide": (64, 48), "narrow": (48, 64), "empty": (32, 32)}.items():
        Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(
            root / "images" / "a" / f"{name}.jpg"
        )
    (root / "labels.txt").write_text(LABELS)
    (root / "splits").mkdir()
    for setting, keep in {"easy": "1", "medium": "1", "hard": "0 1"}.items():
        text = f"a/wide.jpg {keep}\na/narrow.jpg 1\na/empty.jpg\n"
        (root / "splits" / f"{setting}.txt").write_text(text)
    (root / "splits" / "folds.txt").write_text("a/wide.jpg 0\na/narrow.jpg 1\na/empty.jpg 2\n")
    return root


def _build(source: Path, out: Path, photos: int | None) -> Path:
    args = argparse.Namespace(
        data=str(source), out=str(out), photos=photos, long_side=256, min_face=1.0
    )
    return _script().build(args)


def test_upscales_photos_scales_boxes_and_keeps_splits(source, tmp_path):
    out = _build(source, tmp_path / "big", None)
    big, small = load_dataset(out), load_dataset(source)
    assert big.names == small.names
    for s in small:
        b = big.by_name(s.name)
        with Image.open(s.image_path) as im:
            factor = 256 / max(im.size)
        assert max(b.image_size) == 256
        with Image.open(b.image_path) as im:
            assert im.size[::-1] == b.image_size
        torch.testing.assert_close(b.boxes, s.boxes * factor, atol=0.01, rtol=0)
        assert b.fold == s.fold
        assert torch.equal(b.keep_mask("hard"), s.keep_mask("hard"))
    assert "stand in for a real 8K capture" in (out / "README.md").read_text()


def test_picks_the_widest_spread_of_face_sizes_and_resumes(source, tmp_path):
    out = _build(source, tmp_path / "big", 1)
    assert load_dataset(out).names == ["a/wide.jpg"]  # widths 4..40 against 10..12
    photo = out / "images" / "a" / "wide.jpg"
    before = photo.stat().st_mtime_ns
    _build(source, tmp_path / "big", 1)
    assert photo.stat().st_mtime_ns == before  # written photos are not redone


@pytest.mark.parametrize(
    ("widths", "expected"), [([4, 40], np.log2(10)), ([8], 0.0), ([0.5, 8], 0.0)]
)
def test_spread_is_log2_of_largest_over_smallest_counted_face(widths, expected):
    assert _script().spread(widths, min_face=1.0) == pytest.approx(expected)
