from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from crface.cache import CandidateCache, variant_name
from crface.data import load_dataset
from crface.detectors.base import DetectorRunner
from crface.dump import dump_dataset
from crface.eval.baselines import (
    baseline_predictions,
    multiscale_vote,
    oracle,
    partial_oracle,
    postprocess,
)
from crface.eval.wider import evaluate
from crface.types import Detections

GT = {"ev/a.jpg": [[10, 10, 30, 30], [50, 40, 20, 20]], "ev/b.jpg": [[5, 5, 40, 50]]}


@pytest.fixture
def dataset(tmp_path):
    rows = []
    for name, faces in GT.items():
        (tmp_path / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        img = np.zeros((100, 120, 3), np.uint8)
        for channel, (x, y, w, h) in enumerate(faces):  # each face painted in its own colour
            img[y : y + h, x : x + w, channel] = 255
        Image.fromarray(img).save(tmp_path / "images" / name)
        rows += [name, str(len(faces))] + [" ".join(map(str, f)) for f in faces]
    (tmp_path / "labels.txt").write_text("\n".join(rows) + "\n")
    return load_dataset(tmp_path)


class FakeRunner(DetectorRunner):
    """Finds the painted faces (one colour channel each): each exact box scores 0.6, a box
    shifted by 30% of its size scores 0.9, and a corner false positive 0.95. Counts calls."""

    name = "fake"
    default_weights = "unused"

    def __init__(self, weights) -> None:
        super().__init__(weights)
        self.calls = 0

    def _detect(self, image: np.ndarray) -> Detections:
        self.calls += 1
        found = []
        for c in range(3):
            ys, xs = np.nonzero(image[..., c] > 127)
            if len(xs):
                found.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        exact = torch.tensor(found, dtype=torch.float32)
        shifted = exact + 0.3 * (exact[:, 2:3] - exact[:, 0:1])
        fp = torch.tensor([[0.0, 0, 6, 6]])
        scores = [0.6] * len(found) + [0.9] * len(found) + [0.95]
        return Detections(torch.cat([exact, shifted, fp]), torch.tensor(scores))


@pytest.fixture
def runner(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"w")
    return FakeRunner(tmp_path / "w.bin")


def test_dump_writes_every_variant_and_resumes(tmp_path, dataset, runner) -> None:
    cache = CandidateCache(tmp_path / "cache", "toy")
    stats = dump_dataset(runner, "fake", dataset, cache, [1.0, 2.0], flip=True, progress=False)
    assert runner.calls == 8
    assert stats.done == {variant_name(s, f): 2 for s in (1.0, 2.0) for f in (False, True)}
    assert cache.variants("fake") == [(1.0, False), (1.0, True), (2.0, False), (2.0, True)]
    assert cache.read_meta("fake", 2.0, True)["median_ms"] > 0
    again = dump_dataset(runner, "fake", dataset, cache, [1.0, 2.0], flip=True, progress=False)
    assert runner.calls == 8 and sum(again.skipped.values()) == 8
    # Candidates come back in original-image pixels, whatever the scale or flip.
    a = cache.load("fake", 1.0, False, "ev/a.jpg")
    b = cache.load("fake", 2.0, True, "ev/a.jpg")
    exact_a, exact_b = a[a.scores == 0.6], b[b.scores == 0.6]
    order_a, order_b = exact_a.boxes[:, 0].argsort(), exact_b.boxes[:, 0].argsort()
    torch.testing.assert_close(exact_a.boxes[order_a], exact_b.boxes[order_b], atol=1.0, rtol=0)
    with pytest.raises(FileNotFoundError, match="crface dump --detector fake"):
        cache.load("fake", 3.0, False, "ev/a.jpg")
    with pytest.raises(ValueError, match="scales must be positive"):
        dump_dataset(runner, "fake", dataset, cache, [0.0])


def test_dump_zoom_caches_zooms_pooled_candidates(tmp_path, dataset, runner) -> None:
    from crface.zooming import zoom

    cache = CandidateCache(tmp_path / "cache", "toy")
    dump_dataset(runner, "fake", dataset, cache, progress=False, zoom=2.0)
    assert cache.variants("fake_zoom2") == [(1.0, False)]
    assert cache.read_meta("fake_zoom2", 1.0, False)["zoom_scale"] == 2.0
    stored = cache.load("fake_zoom2", 1.0, False, "ev/a.jpg")
    pooled = zoom(runner.detect, dataset.load_image(0), scale=2.0, pool_only=True)
    torch.testing.assert_close(stored.boxes, pooled.boxes)
    torch.testing.assert_close(stored.scores, pooled.scores)
    with pytest.raises(ValueError, match=r"use scales \(1.0,\) without flip"):
        dump_dataset(runner, "fake", dataset, cache, [1.0], flip=True, progress=False, zoom=2.0)


def test_baselines_on_cache(tmp_path, dataset, runner) -> None:
    cache = CandidateCache(tmp_path / "cache", "toy")
    dump_dataset(runner, "fake", dataset, cache, [1.0, 2.0], flip=True, progress=False)
    single = evaluate(baseline_predictions("single", cache, dataset, "fake"), dataset).ap["all"]
    orac = evaluate(baseline_predictions("oracle", cache, dataset, "fake"), dataset).ap["all"]
    multi = baseline_predictions("multi", cache, dataset, "fake", [(1.0, False), (2.0, True)])
    assert orac == pytest.approx(1.0) and single < orac
    # Only boxes that both passes agree on survive: the exact faces; the shifted boxes and the
    # corner false positive land elsewhere in the mirrored pass.
    assert multi["ev/a.jpg"].boxes.tolist() == [[10, 10, 40, 40], [50, 40, 70, 60]]
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_predictions("tta", cache, dataset, "fake")


def test_multiscale_vote_needs_two_passes_to_agree() -> None:
    a = Detections(torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60]]), torch.tensor([0.9, 0.8]))
    b = Detections(torch.tensor([[1.0, 0, 11, 10]]), torch.tensor([0.7]))
    fused = multiscale_vote([a, b])
    assert len(fused) == 1
    expected_x1 = (0.9 * 0 + 0.7 * 1) / 1.6
    assert float(fused.boxes[0, 0]) == pytest.approx(expected_x1)
    assert float(fused.scores[0]) == pytest.approx(0.9)
    assert len(multiscale_vote([Detections.empty()])) == 0


def test_postprocess_and_oracle() -> None:
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [30, 30, 40, 40]])
    det = Detections(boxes, torch.tensor([0.9, 0.95, 0.01]))
    out = postprocess(det, "hard")
    assert out.indices.tolist() == [1]  # 0.01 is under the 0.02 threshold; NMS keeps the best
    orc = oracle(det, torch.tensor([[0.0, 0, 10, 10]]))
    assert orc.indices.tolist() == [0] and float(orc.scores[0]) == 1.0


# One face; A sits on it (IoU 1), B is a worse box of it that the detector scores higher (IoU 9/11),
# C is a false positive.
_FACE = torch.tensor([[0.0, 0, 10, 10]])
_CANDS = Detections(
    torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]]),
    torch.tensor([0.5, 0.9, 0.8]),
)


@pytest.mark.parametrize(
    ("kind", "rows", "scores"),
    [
        ("oracle_kept", [0], [1.0]),  # every score is its IoU: C (0) falls under 0.02
        ("oracle_fp", [1], [0.9]),  # C zeroed; B still beats A
        ("oracle_tp", [0, 2], [1.0, 0.8]),  # A lifted to its IoU 1 and suppresses B
        ("oracle_member", [0, 2], [0.9, 0.8]),  # B's cluster, carried by A with B's score
    ],
)
def test_partial_oracles_on_a_hand_built_cluster(kind, rows, scores) -> None:
    out = partial_oracle(_CANDS, _FACE, kind)
    torch.testing.assert_close(out.boxes, _CANDS.boxes[rows])
    torch.testing.assert_close(out.scores, torch.tensor(scores))


def test_partial_oracle_names_the_valid_kinds_and_passes_empty_input() -> None:
    with pytest.raises(ValueError, match="oracle_member"):
        partial_oracle(_CANDS, _FACE, "oracle_all")
    assert len(partial_oracle(Detections.empty(), _FACE, "oracle_member")) == 0
