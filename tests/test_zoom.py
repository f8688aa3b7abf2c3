"""Zoom and the region mechanism under it: selection, crop / map back / ownership, fusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import crface
from crface.regions import cells_to_regions, detect_regions, map_back
from crface.types import Detections
from crface.zooming import fuse, gate, inside_faces, select_regions, zoom


def blob_detector(min_side: float = 12.0):
    """A toy detector: each distinct red value is one face, found by the box of its pixels.

    Faces at least ``min_side`` px across in its input score 0.9; smaller ones 0.06, the way a
    real detector half-sees faces below its smallest anchor.
    """
    calls = []

    def detect(array: np.ndarray) -> Detections:
        calls.append(array.shape[:2])
        red = array[..., 0].astype(np.int64)
        label = np.rint(red / 40).astype(np.int64)
        label[np.abs(red - 40 * label) > 8] = 0  # blended edge pixels of a resized crop
        rows = []
        for value in np.unique(label[label > 0]):
            ys, xs = np.nonzero(label == value)
            box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            side = max(box[2] - box[0], box[3] - box[1])
            rows.append([*box, 0.9 if side >= min_side else 0.06])
        return Detections(
            torch.tensor(rows, dtype=torch.float32).reshape(-1, 5)[:, :4],
            torch.tensor(rows, dtype=torch.float32).reshape(-1, 5)[:, 4],
        )

    detect.calls = calls
    return detect


def photo(faces, size=(240, 320)):
    """A black photo with square faces ``(x, y, side)``, each a distinct red value."""
    image = np.zeros((*size, 3), np.uint8)
    for i, (x, y, side) in enumerate(faces, start=1):
        image[y : y + side, x : x + side, 0] = 40 * i
    return image


@pytest.mark.parametrize(
    ("picked", "expected"),
    [
        ([[0, 0], [0, 0]], []),
        ([[1, 1], [1, 1]], [[0, 0, 20, 20]]),
        ([[1, 0], [0, 1]], [[0, 0, 10, 10], [10, 10, 20, 20]]),
        ([[1, 1, 0], [1, 0, 0]], [[0, 0, 20, 10], [0, 10, 10, 20]]),
        ([[0, 1], [0, 1], [0, 1]], [[10, 0, 20, 30]]),
    ],
)
def test_cells_to_regions_covers_exactly_the_picked_cells(picked, expected):
    picked = torch.tensor(picked, dtype=torch.bool)
    regions = cells_to_regions(picked, 10, (10 * picked.shape[0], 10 * picked.shape[1]))
    assert regions.tolist() == expected
    covered = torch.zeros(picked.shape, dtype=torch.int64)
    for x1, y1, x2, y2 in (regions // 10).tolist():
        covered[y1:y2, x1:x2] += 1
    assert torch.equal(covered, picked.long())  # every picked cell once, nothing else


def test_cells_to_regions_clips_the_last_cells_to_the_photo():
    regions = cells_to_regions(torch.ones(2, 2, dtype=torch.bool), 10, (15, 12))
    assert regions.tolist() == [[0, 0, 12, 15]]


def test_map_back_reverses_crop_and_scale():
    det = Detections(
        torch.tensor([[20.0, 10, 40, 30]]),
        torch.tensor([0.5]),
        landmarks=torch.tensor([[[30.0, 20]]]),
    )
    back = map_back(det, (100, 50), 2.0)
    assert back.boxes.tolist() == [[110.0, 55.0, 120.0, 65.0]]
    assert back.landmarks.tolist() == [[[115.0, 60.0]]]


def test_a_face_on_a_seam_is_kept_once_and_whole():
    image = photo([(28, 10, 8)])  # straddles x = 32, the seam between two regions
    regions = torch.tensor([[0, 0, 32, 64], [32, 0, 64, 64]])
    det = detect_regions(blob_detector(), image, regions, scale=2.0, margin=8)
    assert len(det) == 1
    assert det.boxes[0].tolist() == pytest.approx([28, 10, 36, 18], abs=1.0)


@pytest.mark.parametrize("rule", ["cells", "grid"])
@pytest.mark.parametrize("budget", [0.05, 0.2, 1.0, 5000])
def test_select_regions_stays_within_budget(rule, budget):
    torch.manual_seed(0)
    xy = torch.rand(200, 2) * torch.tensor([300.0, 220])
    first = Detections(torch.cat([xy, xy + 10], 1), torch.rand(200))
    regions = select_regions(first, (240, 320), rule=rule, budget=budget, small=24)
    area = int((regions[:, 2:] - regions[:, :2]).prod(dim=1).sum())
    limit = budget * 240 * 320 if budget <= 1 else budget
    assert area <= limit
    assert area > 0 or limit < 80 * 80  # only a budget under one cell / tile zooms nowhere


def test_select_regions_ignores_large_and_weak_candidates():
    first = Detections(
        torch.tensor([[0.0, 0, 100, 100], [200, 200, 210, 210]]), torch.tensor([0.99, 0.01])
    )
    assert len(select_regions(first, (240, 320), seed_score=0.05)) == 0
    assert len(select_regions(Detections.empty(), (240, 320))) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rule": "tiles"}, r"unknown zoom rule 'tiles'; expected one of \('cells', 'grid'\)"),
        ({"budget": 0}, "budget must be a fraction"),
        ({"budget": -1}, "budget must be a fraction"),
        ({"budget": True}, "budget must be a fraction"),
    ],
)
def test_select_regions_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        select_regions(Detections.empty(), (10, 10), **kwargs)


def test_gate_keeps_small_faces_and_scales_their_scores():
    second = Detections(torch.tensor([[0.0, 0, 10, 10], [0, 0, 60, 60]]), torch.tensor([0.8, 0.9]))
    kept = gate(second, keep_below=48, weight=0.5)
    assert kept.boxes.tolist() == [[0.0, 0.0, 10.0, 10.0]]
    assert kept.scores.tolist() == [pytest.approx(0.4)]


@pytest.mark.parametrize(
    ("box", "inside"),
    [
        ([10.0, 10, 20, 20], True),  # an eye of the host face: wholly inside, a third its size
        ([0.0, 0, 30, 30], False),  # the same face seen again: as large as the host
        ([25.0, 25, 40, 40], False),  # a neighbour overlapping the host's corner
        ([14.0, 14, 34, 34], True),  # 20 px, 81% inside a 32 px host: 1.6x its size
        ([20.0, 20, 40, 40], False),  # 20 px, but only 36% inside
    ],
)
def test_inside_faces_finds_parts_of_larger_faces(box, inside):
    hosts = torch.tensor([[0.0, 0, 32, 32], [100, 100, 110, 110]])
    assert inside_faces(torch.tensor([box]), hosts).tolist() == [inside]
    assert inside_faces(torch.tensor([box]), torch.zeros(0, 4)).tolist() == [False]
    assert inside_faces(torch.zeros(0, 4), hosts).tolist() == []


def test_gate_drops_zoomed_candidates_inside_confident_first_pass_faces():
    second = Detections(
        torch.tensor([[10.0, 10, 20, 20], [60, 60, 70, 70]]), torch.tensor([0.8, 0.7])
    )
    first = Detections(torch.tensor([[0.0, 0, 32, 32], [50, 50, 80, 80]]), torch.tensor([0.9, 0.2]))
    kept = gate(second, keep_below=48, first=first, host_score=0.5)
    assert kept.boxes.tolist() == [[60.0, 60.0, 70.0, 70.0]]  # its host scores under 0.5
    assert len(gate(second, keep_below=48, first=first, host_score=0.1)) == 0
    assert len(gate(second, keep_below=48, first=first)) == 2  # no host_score: no containment


def test_zoom_host_score_false_keeps_what_the_tuned_setting_drops(monkeypatch):
    from crface import zooming

    seen = []
    real = zooming.gate
    monkeypatch.setattr(
        zooming, "gate", lambda *a, **k: seen.append(k["host_score"]) or real(*a, **k)
    )
    monkeypatch.setitem(zooming.TUNED, "toy", {**zooming.GENERIC, "host_score": 0.4})
    image = photo([(40, 40, 60), (200, 150, 8)])
    zoom(blob_detector(min_side=12), image, detector="toy", seed_score=0.05)
    zoom(blob_detector(min_side=12), image, detector="toy", seed_score=0.05, host_score=False)
    zoom(blob_detector(min_side=12), image, detector="toy", seed_score=0.05, host_score=0.6)
    assert seen == [0.4, None, 0.6]


def test_zoom_finds_the_small_face_the_first_pass_half_saw():
    image = photo([(40, 40, 60), (200, 150, 8)])  # one large face, one 8 px face
    detect = blob_detector(min_side=12)
    single = detect(image)
    faces = zoom(detect, image, scale=2.0, weight=1.0, seed_score=0.05)  # the toy's 0.06
    assert len(detect.calls) > 2  # the photo, then at least one zoomed crop
    small = faces.scores[(faces.boxes[:, 2] - faces.boxes[:, 0]) < 12]
    assert single.scores.min() == pytest.approx(0.06)
    assert small.tolist() == [pytest.approx(0.9)]  # seen at 2x, it is resolved
    assert len(faces) == 2  # the large face is not returned twice
    assert faces.boxes[0].tolist() == pytest.approx([40, 40, 100, 100], abs=1.0)


def test_zoom_reuses_a_first_pass_it_is_given():
    image = photo([(40, 40, 60), (200, 150, 8)])
    detect = blob_detector(min_side=12)
    first = detect(image)
    again = blob_detector(min_side=12)
    faces = zoom(again, image, weight=1.0, seed_score=0.05, first_pass=first)
    assert again.calls and image.shape[:2] not in again.calls  # only crops were detected
    torch.testing.assert_close(faces.boxes, zoom(detect, image, weight=1.0, seed_score=0.05).boxes)
    with pytest.raises(TypeError, match=r"first_pass must be crface\.Detections"):
        zoom(again, image, first_pass=[[0, 0, 10, 10, 0.9]])


def test_zoom_on_an_empty_photo_is_empty():
    faces = zoom(blob_detector(), np.zeros((64, 64, 3), np.uint8))
    assert len(faces) == 0


def test_zoom_passes_bgr_arrays_through_untouched():
    image = photo([(10, 10, 8)])
    seen = []
    zoom(lambda a: seen.append(a) or Detections.empty(), image)
    assert seen[0] is image


@pytest.mark.parametrize("key", ["image_size", "input_size"])
def test_zoom_refuses_a_fixed_input_size(key):
    with pytest.raises(TypeError, match=f"fixed {key}= cannot hold"):
        zoom(blob_detector(), photo([]), **{key: (64, 64)})


def test_zoom_names_the_crop_size_a_detector_failed_on():
    def picky(array):
        if min(array.shape[:2]) < 300:
            raise ValueError("input too small")
        return blob_detector(min_side=12)(array)

    with pytest.raises(RuntimeError, match=r"failed on a \d+x\d+ input .*input too small"):
        zoom(picky, photo([(200, 150, 8)]))


def test_zoom_rejects_a_scale_that_does_not_upscale():
    with pytest.raises(ValueError, match="scale must be > 1"):
        zoom(blob_detector(), photo([]), scale=1.0)


def test_fuse_votes_and_keeps_rows():
    pooled = Detections(
        torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]]),
        torch.tensor([0.5, 0.5, 0.7]),
    )
    out = fuse(pooled)
    assert out.indices.tolist() == [2, 0]
    assert out.boxes[1].tolist() == [0.5, 0.0, 10.5, 10.0]


def test_fuse_votes_only_the_clusters_holding_a_voted_row():
    from crface.ops import box_voting, nms

    g = torch.Generator().manual_seed(3)
    xy = torch.rand(60, 2, generator=g) * 80
    boxes = torch.cat([xy, xy + 10 + torch.rand(60, 2, generator=g) * 10], dim=1)
    pooled = Detections(boxes, torch.rand(60, generator=g))
    none = fuse(pooled, voted=torch.zeros(60, dtype=torch.bool))  # = hard NMS
    kept = nms(boxes, pooled.scores, 0.4)
    assert none.indices.tolist() == kept.tolist()
    torch.testing.assert_close(none.boxes, boxes[kept], atol=0, rtol=0)
    every = fuse(pooled, voted=torch.ones(60, dtype=torch.bool))  # = voting
    torch.testing.assert_close(every.boxes, box_voting(boxes, pooled.scores, 0.4)[1])
    some = torch.arange(60) >= 40  # e.g. the zoomed pass's rows
    part = fuse(pooled, voted=some)
    assert part.indices.tolist() == kept.tolist()  # the same clusters either way
    changed = (part.boxes != none.boxes).any(dim=1)
    assert changed.any() and not changed.all()
    torch.testing.assert_close(part.boxes[changed], every.boxes[changed])


def test_zoom_vote_zoomed_leaves_a_photo_without_zoom_as_single_scale_nms():
    from crface.eval.baselines import postprocess

    image = photo([(40, 40, 60), (45, 42, 58), (150, 100, 50)])  # overlapping large faces only
    detect = blob_detector()
    out = zoom(detect, image, fusion="vote_zoomed")
    assert len(detect.calls) == 1  # nothing small: no second pass
    single = postprocess(detect(image), "hard")
    torch.testing.assert_close(out.boxes, single.boxes, atol=0, rtol=0)


def test_merge_fusions_vote_the_clusters_each_names():
    from crface.ops import box_voting
    from crface.zooming import merge

    # rows 0-1: a first-pass cluster; rows 2-3: a cluster the zoomed pass (rows >= 3) added to
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [51, 50, 61, 60]])
    pooled = Detections(boxes, torch.tensor([0.9, 0.8, 0.7, 0.6]))
    voted = box_voting(boxes, pooled.scores, 0.4)[1]
    expected = {
        "vote": voted,
        "vote_zoomed": torch.stack([boxes[0], voted[1]]),
        "nms": boxes[[0, 2]],
    }
    for fusion, want in expected.items():
        out = merge(None, pooled, fusion=fusion, zoomed_from=3)
        assert out.indices.tolist() == [0, 2], fusion
        torch.testing.assert_close(out.boxes, want, msg=fusion)


def test_zoom_fusion_errors():
    refiner = crface.Refiner.load("crface-small", device="cpu")
    with pytest.raises(ValueError, match="unknown zoom fusion 'avg'; expected one of"):
        zoom(blob_detector(), photo([]), fusion="avg")
    with pytest.raises(ValueError, match="a refiner fuses them here"):
        zoom(blob_detector(), photo([]), fusion="vote", refiner=refiner)


def test_public_name_is_the_function():
    assert crface.zoom is zoom


def test_hook_with_zoom_reranks_both_passes():
    refiner = crface.Refiner.load("crface-small", device="cpu")
    detect = crface.hook(blob_detector(), refiner=refiner, zoom=2.0)
    faces = detect(photo([(40, 40, 60), (200, 150, 8)]))
    assert len(faces) == 2


@pytest.mark.parametrize("corner", [(95, 95), (0, 95), (95, 0), (195, 195)])
def test_tile_finds_a_face_cut_by_tile_edges_once(corner):
    x, y = corner
    image = photo([(x, y, 10), (250, 30, 20)], size=(300, 300))
    faces = crface.tile(blob_detector(min_side=0), image, tile=100, overlap=16)
    assert len(faces) == 2
    assert sorted(faces.boxes[:, 0].tolist()) == pytest.approx(sorted([x, 250]))


def test_tile_sees_each_tile_with_its_margin_only():
    detect = blob_detector()
    crface.tile(detect, photo([], size=(300, 500)), tile=200, overlap=10)
    assert detect.calls == [(210, 210), (210, 220), (210, 110), (110, 210), (110, 220), (110, 110)]


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"tile": 0}, "tile must be"), ({"overlap": -1}, "overlap must be")]
)
def test_tile_rejects_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        crface.tile(blob_detector(), photo([]), **kwargs)


def _tuned() -> dict:
    import json
    from pathlib import Path

    return json.loads((Path(__file__).parents[1] / "results" / "zoom_tune.json").read_text())


def _as_settings(opts: dict) -> dict:
    assert (
        opts["keep_factor"] == 2.0 and opts["rule"] == "cells"
    )  # zoom's keep_below / rule defaults
    keys = ("small", "seed_score", "weight", "budget", "fusion", "host_score")
    return {k: opts[k] for k in keys if k in opts}  # a tune leaves out host_score None


def test_zoom_settings_are_those_chosen_on_wider_train():
    import inspect

    from crface.zooming import GENERIC, TUNED

    tuned = _tuned()
    assert _as_settings(tuned["chosen"]) == GENERIC
    assert {d: _as_settings(o) for d, o in tuned["per_detector"].items()} == TUNED
    defaults = {k: p.default for k, p in inspect.signature(zoom).parameters.items()}
    assert defaults["keep_below"] is None and defaults["rule"] == "cells"  # None: 2 * small
    assert defaults["cell"] == 64 == inspect.signature(select_regions).parameters["cell"].default


def test_zoom_takes_a_runners_settings_and_explicit_options_over_them(monkeypatch):
    from crface import zooming

    seen = {}

    def spy(first, size, **kwargs):
        seen.update(kwargs)
        return torch.zeros(0, 4, dtype=torch.long)

    monkeypatch.setattr(zooming, "select_regions", spy)
    monkeypatch.setitem(
        zooming.TUNED,
        "toy",
        {"small": 9.0, "seed_score": 0.3, "weight": 0.5, "budget": 0.2, "fusion": "vote"},
    )
    image = photo([(40, 40, 60)])
    zoom(blob_detector(), image, detector="toy")
    assert (seen["small"], seen["seed_score"], seen["budget"]) == (9.0, 0.3, 0.2)
    zoom(blob_detector(), image, detector="toy", small=20.0, budget=0.5)
    assert (seen["small"], seen["seed_score"], seen["budget"]) == (20.0, 0.3, 0.5)
    zoom(blob_detector(), image)
    assert seen["small"] == zooming.GENERIC["small"]


def test_zoom_refuses_a_detector_without_tuned_settings():
    from crface.zooming import TUNED

    with pytest.raises(
        ValueError, match=r"no zoom settings tuned for detector 'mydet'; tuned: \["
    ) as info:
        zoom(blob_detector(), photo([]), detector="mydet")
    assert all(name in str(info.value) for name in TUNED)


def test_zoom_with_a_refiner_votes_unless_told_otherwise(monkeypatch):
    refiner = crface.Refiner.load("crface-small", device="cpu")
    calls = []
    original = refiner.rerank
    monkeypatch.setattr(refiner, "rerank", lambda *a, **k: calls.append(k) or original(*a, **k))
    image = photo([(40, 40, 60), (200, 150, 8)])
    zoom(blob_detector(), image, refiner=refiner)
    zoom(blob_detector(), image, refiner=refiner, rerank_kwargs={"nms": "hard"})
    assert [k["nms"] for k in calls] == ["vote", "hard"]


def test_voting_skips_candidates_under_the_test_threshold_and_keeps_pooled_rows():
    from crface.eval.baselines import SCORE_THRESHOLD
    from crface.zooming import merge

    boxes = torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60], [1, 0, 11, 10], [80, 80, 90, 90]])
    pooled = Detections(boxes, torch.tensor([0.01, 0.9, 0.8, SCORE_THRESHOLD]))
    out = merge(None, pooled)
    assert out.indices.tolist() == [1, 2, 3]  # rows of pooled; row 0 is under the threshold
    torch.testing.assert_close(out.boxes, boxes[[1, 2, 3]])


@pytest.mark.parametrize("fusion", ["vote", "vote_zoomed", "nms"])
def test_cli_rerank_zoom_fuses_by_box_voting_without_a_ranker(tmp_path, monkeypatch, fusion):
    from types import SimpleNamespace

    from PIL import Image

    import crface.detectors
    from crface.cli import main
    from crface.io import read_detections

    image = photo([(40, 40, 60), (200, 150, 8)])
    Image.fromarray(image).save(tmp_path / "p.png")
    monkeypatch.setattr(
        crface.detectors, "get_detector", lambda name: SimpleNamespace(detect=blob_detector())
    )
    monkeypatch.setattr(
        "crface._cli.rerank.load_refiner", lambda args: pytest.fail("loaded a ranker")
    )
    out = tmp_path / "out.npy"
    argv = ["rerank", str(tmp_path / "p.png"), "--detector", "retinaface", "--zoom", "2"]
    assert main([*argv, "--fusion", fusion, "--out", str(out)]) == 0
    expected = zoom(blob_detector(), image, detector="retinaface", fusion=fusion)
    got = read_detections(out)
    torch.testing.assert_close(got.boxes, expected.boxes)
    torch.testing.assert_close(got.scores, expected.scores)
    assert len(got) == 2  # the 8 px face the first pass half-saw is in


@pytest.mark.parametrize(
    ("extra", "kept"), [([], 2), (["--score-threshold", "0.7"], 1), (["--max-det", "1"], 1)]
)
def test_cli_rerank_zoom_without_a_ranker_keeps_the_output_limits(
    tmp_path, monkeypatch, extra, kept
):
    from types import SimpleNamespace

    from PIL import Image

    import crface.detectors
    from crface.cli import main
    from crface.io import read_detections

    Image.fromarray(photo([(40, 40, 60), (200, 150, 8)])).save(tmp_path / "p.png")
    monkeypatch.setattr(
        crface.detectors, "get_detector", lambda name: SimpleNamespace(detect=blob_detector())
    )
    out = tmp_path / "out.npy"
    argv = ["rerank", str(tmp_path / "p.png"), "--detector", "retinaface", "--zoom", "2"]
    assert main([*argv, "--fusion", "vote", *extra, "--out", str(out)]) == 0
    got = read_detections(out)
    assert len(got) == kept and got.scores[0] == pytest.approx(0.9)  # the large face stays


def test_cli_rerank_zoom_without_a_ranker_refuses_nms(tmp_path, capsys):
    from PIL import Image

    from crface.cli import main

    Image.fromarray(photo([])).save(tmp_path / "p.png")
    argv = ["rerank", str(tmp_path / "p.png"), "--detector", "retinaface", "--zoom", "2"]
    assert main([*argv, "--fusion", "vote", "--nms", "hard", "--out", "o.json"]) == 2
    assert "drop --nms" in capsys.readouterr().err


def test_cli_rerank_with_a_runner_uses_its_measured_settings(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from PIL import Image

    import crface.detectors
    from crface.cli import main
    from crface.io import read_detections

    image = photo([(40, 40, 60), (200, 150, 8)])
    Image.fromarray(image).save(tmp_path / "p.png")
    monkeypatch.setattr(
        crface.detectors, "get_detector", lambda name: SimpleNamespace(detect=blob_detector())
    )
    out = tmp_path / "out.npy"
    argv = ["rerank", str(tmp_path / "p.png"), "--detector", "retinaface", "--device", "cpu"]
    assert main([*argv, "--out", str(out)]) == 0
    refiner = crface.Refiner.load("crface-small", device="cpu", detector="retinaface")
    expected = refiner.rerank(image, blob_detector()(image))
    got = read_detections(out)
    torch.testing.assert_close(got.boxes, expected.boxes)
    torch.testing.assert_close(got.scores, expected.scores)


def test_cli_rerank_fusion_needs_zoom(tmp_path, capsys):
    from PIL import Image

    from crface.cli import main

    Image.fromarray(photo([])).save(tmp_path / "p.png")
    argv = ["rerank", str(tmp_path / "p.png"), "--detector", "retinaface", "--fusion", "vote"]
    assert main([*argv, "--out", str(tmp_path / "o.json")]) == 2
    assert "--fusion vote fuses --zoom's two passes: pass --zoom 2 too" in capsys.readouterr().err
