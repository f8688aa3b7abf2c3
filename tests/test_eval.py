"""The WIDER FACE evaluator against a slow loop-by-loop reference; hand-made cases; files; CLI."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch

from crface.cli import main
from crface.data import SETTINGS, FaceDataset, Sample, load_dataset, load_wider_mat
from crface.eval import (
    THRESHOLDS,
    EvalResult,
    evaluate,
    plot_pr_curves,
    read_predictions,
    voc_ap,
    write_predictions,
)
from crface.types import Detections

# ----------------------------------------------------------------------------- slow reference


def _ref_iou(p, g):
    """IoU with the +1 pixel convention, one pair at a time."""
    iw = min(p[2], g[2]) - max(p[0], g[0]) + 1
    ih = min(p[3], g[3]) - max(p[1], g[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    union = (p[2] - p[0] + 1) * (p[3] - p[1] + 1) + (g[2] - g[0] + 1) * (g[3] - g[1] + 1) - iw * ih
    return iw * ih / union


def _ref_ap(recall, precision):
    rec = [0.0, *recall, 1.0]
    pre = [0.0, *precision, 0.0]
    for i in range(len(pre) - 1, 0, -1):  # NaN spreads, as with np.maximum
        a, b = pre[i - 1], pre[i]
        pre[i - 1] = math.nan if math.isnan(a) or math.isnan(b) else max(a, b)
    return sum(
        (rec[i + 1] - rec[i]) * pre[i + 1] for i in range(len(rec) - 1) if rec[i + 1] != rec[i]
    )


def reference_evaluate(preds, dataset, settings, iou_threshold=0.5):
    """The protocol, written out one prediction and one threshold at a time.

    ``preds``: name -> list of ``[x1, y1, x2, y2, score]``.
    Returns setting -> ``(ap, precision, recall)``.
    """
    per_image = [sorted(preds.get(s.name, []), key=lambda r: -r[4]) for s in dataset]
    scores = [r[4] for rows in per_image for r in rows]
    lo, hi = 1.0, 0.0
    for s in scores:
        lo, hi = min(lo, s), max(hi, s)
    norm = [[(r[4] - lo) / (hi - lo) if hi > lo else 1.0 for r in rows] for rows in per_image]
    thresholds = [1 - (t + 1) / 1000 for t in range(1000)]
    out = {}
    for setting in settings:
        count_face = 0
        proposals = [0] * 1000
        recalled = [0] * 1000
        for sample, rows, sc in zip(dataset, per_image, norm, strict=True):
            gt = sample.boxes.double().tolist()
            keep = sample.keep_mask(setting).tolist()
            count_face += sum(keep)
            if not gt or not rows:
                continue
            state = [0] * len(gt)  # 1 recalled, -1 matched while ignored
            counted = [1] * len(rows)
            recall_after = [0] * len(rows)
            for h, row in enumerate(rows):
                ious = [_ref_iou(row[:4], g) for g in gt]
                best = ious.index(max(ious))
                if ious[best] >= iou_threshold:
                    if not keep[best]:
                        state[best] = -1
                        counted[h] = -1
                    elif state[best] == 0:
                        state[best] = 1
                recall_after[h] = state.count(1)
            for t, thr in enumerate(thresholds):
                above = [h for h in range(len(rows)) if sc[h] >= thr]
                if above:
                    last = above[-1]
                    proposals[t] += sum(1 for c in counted[: last + 1] if c == 1)
                    recalled[t] += recall_after[last]
        precision = [r / p if p else math.nan for r, p in zip(recalled, proposals, strict=True)]
        recall = [r / count_face if count_face else math.nan for r in recalled]
        ap = _ref_ap(recall, precision) if count_face else math.nan
        out[setting] = (ap, np.array(precision), np.array(recall))
    return out


# ----------------------------------------------------------------------------- random datasets


def _random_case(seed):
    """A random dataset and predictions: jittered faces, duplicates, false positives, ignored faces,
    empty images, images without predictions, tied and out-of-[0, 1] scores."""
    rng = random.Random(seed)
    integer = rng.random() < 0.5  # integer boxes hit IoU boundaries exactly
    samples, preds = [], {}
    for i in range(rng.randint(1, 8)):
        m = rng.choice([0, 0, 1, 2, 3, 5, 8, 12])
        faces = []
        for _ in range(m):
            if rng.random() < 0.05:
                faces.append([0.0, 0.0, 0.0, 0.0])  # WIDER's placeholder row
                continue
            x, y = rng.uniform(0, 200), rng.uniform(0, 200)
            w, h = rng.uniform(3, 60), rng.uniform(3, 60)
            w = 0.0 if rng.random() < 0.05 else w  # WIDER has zero-size faces
            box = [x, y, x + w, y + h]
            faces.append([float(round(v)) for v in box] if integer else box)
        keep = {s: torch.tensor([rng.random() < 0.7 for _ in faces]).bool() for s in SETTINGS}
        name = f"{i % 3}--Event/img_{i}.jpg"
        samples.append(Sample(name, name, torch.tensor(faces).reshape(-1, 4), keep))
        if rng.random() < 0.15:
            continue  # no entry at all
        tie = rng.random() < 0.5  # coarse scores: many ties

        def score(lo, hi, tie=tie):
            s = rng.uniform(lo, hi)
            return round(s, 1) if tie else s

        rows = []
        for f in faces:
            for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):  # misses, hits, duplicates
                sd = 0.12 * max(f[2] - f[0], f[3] - f[1], 1.0)  # IoU often near 0.5
                j = [v + rng.gauss(0, sd) for v in f]
                j = [min(j[0], j[2]), min(j[1], j[3]), max(j[0], j[2]), max(j[1], j[3])]
                j = [float(round(v)) for v in j] if integer else j
                rows.append([*j, score(0.3, 1.0)])
        for _ in range(rng.randint(0, 6)):  # false positives
            x, y = rng.uniform(0, 250), rng.uniform(0, 250)
            rows.append([x, y, x + rng.uniform(1, 50), y + rng.uniform(1, 50), score(0.0, 0.7)])
        preds[name.rsplit(".", 1)[0] if rng.random() < 0.3 else name] = rows
    scale, shift = rng.choice([(1.0, 0.0), (1.0, 0.0), (4.0, 2.0), (0.5, 0.2), (3.0, -5.0)])
    for rows in preds.values():
        for r in rows:
            r[4] = r[4] * scale + shift
    return FaceDataset(samples, name=f"random{seed}", has_splits=True), preds


def _by_name(preds, dataset):
    """The reference wants full names; evaluate also accepts names without extension."""
    out = {}
    for s in dataset:
        for key in (s.name, s.name.rsplit(".", 1)[0]):
            if key in preds:
                out[s.name] = preds[key]
    return out


@pytest.mark.parametrize("seed", range(40))
def test_matches_reference_on_random_datasets(seed):
    dataset, preds = _random_case(seed)
    iou = 0.5 if seed % 4 else 0.3
    settings = (*SETTINGS, "all")
    expected = reference_evaluate(_by_name(preds, dataset), dataset, settings, iou)
    arrays = {k: np.array(v, dtype=np.float64).reshape(-1, 5) for k, v in preds.items()}
    result = evaluate(arrays, dataset, settings=settings, iou_threshold=iou)
    for s in settings:
        ap, precision, recall = expected[s]
        assert result.ap[s] == pytest.approx(ap, abs=1e-12, nan_ok=True)
        np.testing.assert_allclose(result.pr[s][0], precision, rtol=0, atol=1e-12)
        np.testing.assert_allclose(result.pr[s][1], recall, rtol=0, atol=1e-12)
        assert result.num_faces[s] == sum(int(x.keep_mask(s).sum()) for x in dataset)


# ----------------------------------------------------------------------------- hand-made cases


def _one(faces, keep=None, name="0--E/a.jpg"):
    keep = None if keep is None else {s: torch.tensor(v) for s, v in keep.items()}
    return Sample(name, name, torch.tensor(faces, dtype=torch.float32).reshape(-1, 4), keep or {})


def _ds(*samples, splits=True):
    return FaceDataset(samples, name="toy", has_splits=splits)


FACES = [[10.0, 10, 40, 50], [100, 100, 130, 140], [200, 20, 220, 45]]


def test_perfect_predictions_score_one():
    ds = _ds(_one(FACES))
    preds = {"0--E/a.jpg": np.array([[*f, 0.5 + 0.1 * i] for i, f in enumerate(FACES)])}
    result = evaluate(preds, ds)
    assert result.ap == {"easy": 1.0, "medium": 1.0, "hard": 1.0}
    precision, recall = result.pr["hard"]
    assert recall[-1] == 1.0
    assert np.nanmin(precision) == 1.0


def test_no_predictions_score_zero():
    result = evaluate({}, _ds(_one(FACES)))
    assert result.ap == {"easy": 0.0, "medium": 0.0, "hard": 0.0}
    assert np.isnan(result.pr["easy"][0]).all()
    assert (result.pr["easy"][1] == 0).all()


def test_duplicate_lowers_precision():
    ds = _ds(_one(FACES[:2]), splits=False)
    a, b = FACES[:2]
    clean = evaluate({"0--E/a.jpg": [[*a, 0.9], [*b, 0.7]]}, ds)
    dup = evaluate({"0--E/a.jpg": [[*a, 0.9], [*a, 0.8], [*b, 0.7]]}, ds)
    assert clean.ap["all"] == 1.0
    # Scores normalise to 1, 0.5, 0: recall 1/2 at precision 1, then 1 at precision 2/3.
    assert dup.ap["all"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert dup.pr["all"][0][-1] == pytest.approx(2 / 3)


def test_ignored_faces_neither_rewarded_nor_penalised():
    keep = {"easy": [True, False, False], "medium": [True, True, False], "hard": [True, True, True]}
    ds = _ds(_one(FACES, keep))
    far = [300.0, 300, 310, 310]
    base = {"0--E/a.jpg": [[*FACES[0], 1.0], [*far, 0.0]]}
    more = {"0--E/a.jpg": [[*FACES[0], 1.0], [*FACES[1], 0.95], [*FACES[2], 0.9], [*far, 0.0]]}
    r_base, r_more = evaluate(base, ds), evaluate(more, ds)
    for k in (0, 1):  # easy: both extra predictions hit ignored faces and change nothing
        np.testing.assert_array_equal(r_base.pr["easy"][k], r_more.pr["easy"][k])
    assert r_more.ap["easy"] == r_base.ap["easy"] == 1.0
    assert r_base.ap["hard"] == pytest.approx(1 / 3)
    assert r_more.ap["hard"] == 1.0
    # medium: the face-2 prediction is ignored, the face-1 prediction is rewarded
    assert r_more.ap["medium"] == 1.0
    assert r_more.num_faces == {"easy": 1, "medium": 2, "hard": 3}


@pytest.mark.parametrize(
    ("pred", "ap"),
    [
        ([0.0, 0, 9, 4], 1.0),  # +1 convention: 10*5 / (10*10) = 0.5 exactly -> match
        ([0.0, 0, 9, 3.9], 0.0),  # 10*4.9 / 100 = 0.49 -> no match
        ([0.0, 0, 9, 9], 1.0),
        ([5.0, 0, 14, 9], 0.0),  # 5*10 / 150
        ([0.0, 0, 13, 13], 1.0),  # 100 / 196
        ([0.0, 0, 14, 14], 0.0),  # 100 / 225
        ([-1.0, -1, 10, 10], 1.0),  # 100 / 144
    ],
)
def test_plus_one_pixel_iou(pred, ap):
    # Continuous IoU of the first case is 36/81 < 0.5: only the +1 convention matches it.
    ds = _ds(_one([[0.0, 0, 9, 9]]), splits=False)
    assert evaluate({"0--E/a.jpg": [[*pred, 1.0]]}, ds).ap["all"] == ap


@pytest.mark.parametrize(
    "faces",
    [
        [[0.0, 0, 9, 9], [0.0, 0, 9, 7]],  # face 0 overlaps most, face 1 also matches (0.8)
        [[0.0, 0, 9, 9], [0.0, 0, 9, 9]],  # a tie: the first face wins
    ],
)
def test_best_match_only_and_first_on_ties(faces):
    # The prediction goes to face 0, ignored in easy: it is ignored, although face 1 also matches.
    ds = _ds(_one(faces, {"easy": [False, True], "medium": [True, True], "hard": [True, True]}))
    result = evaluate({"0--E/a.jpg": [[0.0, 0, 9, 9, 1.0]]}, ds)
    assert result.ap["easy"] == 0.0
    assert np.isnan(result.pr["easy"][0]).all()  # no counted proposal
    assert result.ap["hard"] == 0.5


def test_quirks_count_face_and_empty_images():
    with_faces = _one(FACES[:1], name="0--E/a.jpg")
    no_preds = _one(FACES[1:2], name="0--E/b.jpg")
    no_faces = _one([], name="0--E/c.jpg")
    ds = _ds(with_faces, no_preds, no_faces, splits=False)
    preds = {"0--E/a.jpg": [[*FACES[0], 0.9]], "0--E/c.jpg": [[0.0, 0, 50, 50, 1.0]] * 3}
    result = evaluate(preds, ds)
    # b's face counts although b has no predictions; c's predictions are skipped, not false
    # positives (their scores still take part in the normalisation).
    assert result.num_faces == {"all": 2}
    assert result.pr["all"][1][-1] == 0.5
    assert result.ap["all"] == 0.5


def test_score_normalisation_quirk():
    # lo = min(1, min score), hi = max(0, max score): scores 3 and 2 become 1 and 0.5.
    ds = _ds(_one(FACES[:1]), splits=False)
    result = evaluate({"0--E/a.jpg": [[*FACES[0], 3.0], [300.0, 300, 310, 310, 2.0]]}, ds)
    precision = result.pr["all"][0]
    assert precision[np.abs(THRESHOLDS - 0.6).argmin()] == 1.0  # t = 0.6: the face only
    assert precision[np.abs(THRESHOLDS - 0.5).argmin()] == 0.5  # t = 0.5: the false positive too
    # All scores equal: every prediction counts at every threshold (the reference divides by 0).
    same = evaluate({"0--E/a.jpg": [[*FACES[0], 0.3]]}, ds)
    assert same.ap["all"] == 1.0
    assert (same.pr["all"][0] == 1.0).all()


def test_setting_without_faces_is_nan():
    ds = _ds(_one(FACES, {"easy": [False] * 3}))
    result = evaluate({"0--E/a.jpg": [[*FACES[0], 1.0]]}, ds)
    assert math.isnan(result.ap["easy"])
    assert result.to_dict()["ap"]["easy"] is None
    assert "nan" in str(result)


def test_inputs_detections_tensor_array_and_keys_agree():
    ds = _ds(_one(FACES))
    rows = np.array([[*FACES[0], 0.9], [*FACES[1], 0.2], [300, 300, 320, 330, 0.6]], np.float32)
    det = Detections(torch.from_numpy(rows[:, :4]), torch.from_numpy(rows[:, 4]))
    variants = [
        {"0--E/a.jpg": det},
        {"0--E/a": torch.from_numpy(rows)},
        {"0--E/a.jpg": rows.tolist()},
        {"0--E/a.jpg": rows.astype(np.float64)},
        {"0--E/a.jpg": rows[::-1].copy()},  # order does not matter: sorted by score
    ]
    aps = [evaluate(v, ds).ap for v in variants]
    assert all(a == aps[0] for a in aps)


def test_inputs_not_modified():
    ds = _ds(_one(FACES))
    rows = np.array([[*FACES[0], 5.0], [*FACES[1], 3.0]])
    before = rows.copy()
    evaluate({"0--E/a.jpg": rows}, ds)
    np.testing.assert_array_equal(rows, before)


@pytest.mark.parametrize(
    ("preds", "kwargs", "message"),
    [
        ({"0--E/a.jpg": np.zeros((2, 4))}, {}, "shape"),
        ({"0--E/a.jpg": [[0, 0, 5, 5, math.nan]]}, {}, "NaN"),
        ({"0--E/a.jpg": [[5, 0, 1, 5, 0.5]]}, {}, "x2 < x1"),
        ({"other/x.jpg": [[0, 0, 5, 5, 0.5]]}, {}, "none of the 1 predicted images"),
        ({}, {"settings": ("easy", "tricky")}, "unknown setting"),
        ({}, {"settings": ()}, "at least one"),
        ({}, {"iou_threshold": 0.0}, "iou_threshold"),
    ],
)
def test_bad_inputs_raise(preds, kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate(preds, _ds(_one(FACES)), **kwargs)


def test_bad_types_raise():
    with pytest.raises(TypeError, match="mapping"):
        evaluate([np.zeros((0, 5))], _ds(_one(FACES)))
    with pytest.raises(TypeError, match="Detections or a"):
        evaluate({"0--E/a.jpg": 3.0}, _ds(_one(FACES)))
    with pytest.raises(TypeError, match="FaceDataset"):
        evaluate({}, [_one(FACES)])


def test_voc_ap_and_result_helpers():
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 0.5])) == 0.75
    assert voc_ap(np.array([0.0, 0.5]), np.array([math.nan, 1.0])) == 0.5
    result = evaluate({"0--E/a.jpg": [[*FACES[0], 1.0]]}, _ds(_one(FACES)))
    d = result.to_dict(include_pr=True)
    json.dumps(d)
    assert len(d["pr"]["hard"]["precision"]) == len(THRESHOLDS) == 1000
    assert THRESHOLDS[0] == 0.999
    assert THRESHOLDS[-1] == 0.0
    text = str(result)
    assert "Easy" in text
    assert "Hard" in text
    assert "toy" in text


# ----------------------------------------------------------------------------- prediction files


def test_predictions_round_trip(tmp_path):
    dataset, preds = _random_case(3)
    arrays = {k: np.array(v, dtype=np.float64).reshape(-1, 5) for k, v in preds.items()}
    arrays["flat_image.v2.png"] = np.array([[1.5, 2.25, 10.0, 20.0, 0.125]])
    written = write_predictions(tmp_path, arrays)
    assert len(written) == len(arrays)
    assert (tmp_path / "flat_image.v2.txt").read_text().splitlines()[:2] == ["flat_image.v2", "1"]
    back = read_predictions(tmp_path)
    assert set(back) == {k.rsplit(".", 1)[0] if k.endswith((".jpg", ".png")) else k for k in arrays}
    for key, value in arrays.items():
        got = back[key.rsplit(".", 1)[0] if key.endswith((".jpg", ".png")) else key]
        order = np.argsort(-value[:, 4], kind="stable")
        np.testing.assert_allclose(got, value[order], rtol=1e-12, atol=1e-9)
    assert evaluate(back, dataset).ap == pytest.approx(evaluate(arrays, dataset).ap)


def test_prediction_file_from_other_tools(tmp_path):
    # First line with the event and extension, trailing spaces and a blank last line.
    (tmp_path / "0--E").mkdir()
    (tmp_path / "0--E" / "whatever.txt").write_text(
        "0--E/a.jpg\n2\n10 10 30 40 0.9 \n1 1 2 2 0.1\n\n"
    )
    (tmp_path / "0--E" / "b.txt").write_text("b\n0\n")
    back = read_predictions(tmp_path)
    assert sorted(back) == ["0--E/a", "0--E/b"]
    np.testing.assert_array_equal(back["0--E/a"][0], [10, 10, 40, 50, 0.9])
    assert back["0--E/b"].shape == (0, 5)
    assert evaluate(back, _ds(_one(FACES))).ap["hard"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a\n", ":2: expected the number of boxes"),
        ("a\ntwo\n", ":2: expected the number of boxes"),
        ("a\n2\n1 1 2 2 0.5\n", "says 2 boxes but 1 rows"),
        ("a\n1\n1 1 2 0.5\n", ":3: expected 'x y w h score'"),
        ("a\n1\n1 1 -2 2 0.5\n", ":3: expected 'x y w h score'"),
        ("a\n1\n1 1 2 2 nan\n", ":3: expected 'x y w h score'"),
    ],
)
def test_malformed_prediction_files(tmp_path, content, message):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "a.txt").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_predictions(tmp_path)


def test_prediction_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_predictions(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"no \.txt"):
        read_predictions(tmp_path)
    (tmp_path / "a.txt").write_text("x\n0\n")
    (tmp_path / "b.txt").write_text("x\n0\n")
    with pytest.raises(ValueError, match="second prediction file"):
        read_predictions(tmp_path)
    with pytest.raises(ValueError, match="relative image name"):
        write_predictions(tmp_path / "out", {"../escape.jpg": np.zeros((0, 5))})


# ----------------------------------------------------------------------------- plot and CLI


def test_plot_pr_curves(tmp_path):
    pytest.importorskip("matplotlib")
    ds = _ds(_one(FACES))
    a = evaluate({"0--E/a.jpg": [[*FACES[0], 1.0], [*FACES[1], 0.2]]}, ds)
    b = evaluate({"0--E/a.jpg": [[*f, 1.0] for f in FACES]}, ds)
    out = plot_pr_curves({"a": a, "b": b}, tmp_path / "sub" / "pr.png", title="toy")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_pr_curves(a, tmp_path / "one.png").is_file()
    with pytest.raises(ValueError, match="at least one"):
        plot_pr_curves({}, tmp_path / "x.png")
    with pytest.raises(TypeError, match="EvalResult"):
        plot_pr_curves({"a": a.ap}, tmp_path / "x.png")


def _write_tiny_dataset(root):
    (root / "splits").mkdir(parents=True)
    (root / "labels.txt").write_text(
        "0--E/a.jpg\n3\n10 10 30 40 0 0 0 0 0 0\n100 100 30 40\n200 20 20 25\n"
        "0--E/b.jpg\n0\n0 0 0 0\n"
        "1--F/c.jpg\n1\n5 5 50 50\n"
    )
    (root / "splits" / "easy.txt").write_text("0--E/a.jpg 0\n0--E/b.jpg\n1--F/c.jpg 0\n")
    (root / "splits" / "medium.txt").write_text("0--E/a.jpg 0 1\n0--E/b.jpg\n1--F/c.jpg 0\n")
    (root / "splits" / "hard.txt").write_text("0--E/a.jpg 0 1 2\n0--E/b.jpg \n1--F/c.jpg 0\n")


def test_cli_eval(tmp_path, capsys):
    data = tmp_path / "data"
    _write_tiny_dataset(data)
    ds = load_dataset(data)
    preds = {s.name: torch.cat([s.boxes, torch.rand(len(s), 1)], 1) for s in ds}
    write_predictions(tmp_path / "pred", preds)
    png = tmp_path / "pr.png"
    argv = ["eval", "--pred-dir", str(tmp_path / "pred"), "--data", str(data)]
    assert main([*argv, "--json", "--plot", str(png)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert json.loads(out[-1]) == {"easy": 1.0, "medium": 1.0, "hard": 1.0}
    assert any(line.startswith("Medium") for line in out)
    assert png.is_file()

    gt_txt = tmp_path / "gt.txt"
    gt_txt.write_text((data / "labels.txt").read_text())
    assert (
        main(["eval", "--pred-dir", str(tmp_path / "pred"), "--gt-txt", str(gt_txt), "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"all": 1.0}


def test_cli_eval_errors(tmp_path, capsys):
    data = tmp_path / "data"
    _write_tiny_dataset(data)
    assert main(["eval", "--pred-dir", str(tmp_path / "nope"), "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("crface eval: error:")
    assert "nope" in err
    assert "\n" not in err
    with pytest.raises(SystemExit):  # argparse: one ground truth is required
        main(["eval", "--pred-dir", str(tmp_path)])


# ----------------------------------------------------------------------------- real data


@pytest.mark.shared
def test_ground_truth_as_predictions_scores_one(shared_dir):
    # Fast enough (well under a second) to run without the slow marker.
    ds = load_dataset(shared_dir / "data" / "wider_val200")
    preds = {s.name: torch.cat([s.boxes, torch.ones(len(s), 1)], 1) for s in ds}
    result = evaluate(preds, ds)
    assert result.ap == {"easy": 1.0, "medium": 1.0, "hard": 1.0}
    assert isinstance(result, EvalResult)
    assert result.num_images == 200


@pytest.mark.slow
@pytest.mark.shared
def test_matches_reference_on_official_ground_truth(shared_dir):
    pytest.importorskip("scipy")
    full = load_wider_mat(shared_dir / "data" / "wider_val_annotations")
    # Every 5th image plus the face-less ones (a single 0 0 0 0 row each).
    ds = full.subset(lambda s: full.names.index(s.name) % 5 == 0 or not s.boxes.any())
    assert sum(not s.boxes.any() for s in ds) == 4
    gen = torch.Generator().manual_seed(0)
    preds = {}
    for s in ds:
        jitter = s.boxes + torch.randn(len(s), 4, generator=gen) * 2
        boxes = torch.cat([jitter[:, :2], torch.maximum(jitter[:, 2:], jitter[:, :2])], 1)
        preds[s.name] = torch.cat([boxes, torch.rand(len(s), 1, generator=gen)], 1).double()
    expected = reference_evaluate({k: v.tolist() for k, v in preds.items()}, ds, SETTINGS)
    result = evaluate(preds, ds)
    for s in SETTINGS:
        assert result.ap[s] == pytest.approx(expected[s][0], abs=1e-12)


# ----------------------------------------------------------------------------- coverage (issue 12)


def test_result_reports_how_many_images_have_predictions():
    ds = _ds(_one(FACES), _one(FACES[:1], name="0--E/b.jpg"))
    result = evaluate({"0--E/a.jpg": [[*FACES[0], 1.0]]}, ds)
    assert (result.num_predicted, result.num_images) == (1, 2)
    assert result.to_dict()["num_predicted"] == 1
    assert "predictions for 1 of 2 images" in str(result)


def test_cli_eval_refuses_mostly_missing_predictions(tmp_path, capsys):
    data = tmp_path / "data"
    _write_tiny_dataset(data)
    ds = load_dataset(data)
    write_predictions(
        tmp_path / "pred", {ds[0].name: torch.cat([ds[0].boxes, torch.ones(3, 1)], 1)}
    )
    argv = ["eval", "--pred-dir", str(tmp_path / "pred"), "--data", str(data), "--json"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "1 of the 3" in err and "--allow-missing" in err and "\n" not in err
    assert main([*argv, "--allow-missing"]) == 0
    out = capsys.readouterr().out
    assert "predictions for 1 of 3 images" in out
