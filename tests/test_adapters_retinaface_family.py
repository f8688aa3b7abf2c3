"""Adapters retinaface, generic, hambox and hrnet on synthetic outputs with exactly known boxes.

Raw heads are built by *encoding* known boxes with the inverse of each decoder, so a correct decode
recovers them; slow loop implementations of the prior/anchor grids are the reference.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from crface.adapters import adapt, generic, hambox, hrnet, retinaface
from crface.types import Detections

# ---------------------------------------------------------------------------------------------
# retinaface


def _priors_reference(h, w, min_sizes=retinaface.MIN_SIZES, steps=retinaface.STEPS):
    """The textbook loop: stride -> row -> column -> size."""
    out = []
    for step, sizes in zip(steps, min_sizes, strict=True):
        for i in range(math.ceil(h / step)):
            for j in range(math.ceil(w / step)):
                for s in sizes:
                    out.append([(j + 0.5) * step, (i + 0.5) * step, s, s])
    return torch.tensor(out, dtype=torch.float32).reshape(-1, 4)


def _encode_ssd(boxes, priors, variances=retinaface.VARIANCES):
    """Inverse of the SSD decode: xyxy boxes -> loc offsets against cxcywh priors."""
    cxcy = (boxes[:, :2] + boxes[:, 2:]) / 2
    wh = boxes[:, 2:] - boxes[:, :2]
    return torch.cat(
        (
            (cxcy - priors[:, :2]) / (variances[0] * priors[:, 2:]),
            torch.log(wh / priors[:, 2:]) / variances[1],
        ),
        dim=1,
    )


def _random_faces(priors, gen):
    """A known box and 5 landmarks near every prior."""
    n = priors.shape[0]
    centre = priors[:, :2] + (torch.rand(n, 2, generator=gen) - 0.5) * priors[:, 2:]
    wh = priors[:, 2:] * (0.5 + torch.rand(n, 2, generator=gen))
    boxes = torch.cat((centre - wh / 2, centre + wh / 2), dim=1)
    points = centre[:, None] + (torch.rand(n, 5, 2, generator=gen) - 0.5) * wh[:, None]
    return boxes, points


@pytest.mark.parametrize(("h", "w"), [(416, 416), (100, 75), (33, 64), (1, 1), (8, 40)])
def test_prior_boxes_match_loop_reference(h, w):
    got = retinaface.prior_boxes((h, w))
    want = _priors_reference(h, w)
    assert got.shape == want.shape
    assert torch.equal(got, want)
    expected = sum(2 * math.ceil(h / s) * math.ceil(w / s) for s in (8, 16, 32))
    assert got.shape[0] == expected


def test_prior_boxes_custom_config_and_errors():
    got = retinaface.prior_boxes((20, 30), min_sizes=((10, 20, 30),), steps=(10,))
    assert torch.equal(got, _priors_reference(20, 30, ((10, 20, 30),), (10,)))
    with pytest.raises(ValueError, match="one entry per level"):
        retinaface.prior_boxes((20, 30), min_sizes=((10,),), steps=(8, 16))
    with pytest.raises(ValueError, match="image_size"):
        retinaface.prior_boxes((0, 30))


@pytest.mark.parametrize("batch", [True, False])
@pytest.mark.parametrize("conf_kind", ["probs", "logits"])
@pytest.mark.parametrize("as_numpy", [True, False])
def test_decode_raw_recovers_encoded_boxes(batch, conf_kind, as_numpy):
    gen = torch.Generator().manual_seed(1)
    h, w = 70, 45
    priors = retinaface.prior_boxes((h, w))
    boxes, points = _random_faces(priors, gen)
    loc = _encode_ssd(boxes, priors)
    lms = ((points - priors[:, None, :2]) / (0.1 * priors[:, None, 2:])).reshape(-1, 10)
    logits = torch.randn(priors.shape[0], 2, generator=gen)
    face_p = logits.softmax(1)[:, 1]
    conf = logits if conf_kind == "logits" else logits.softmax(1)
    inputs = [loc, conf, lms]
    if batch:
        inputs = [x[None] for x in inputs]
    if as_numpy:
        inputs = [x.numpy() for x in inputs]
    det = retinaface.decode_raw(*inputs, image_size=(h, w), conf_kind=conf_kind)
    torch.testing.assert_close(det.boxes, boxes, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(det.landmarks, points, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(det.scores, face_p, atol=1e-6, rtol=1e-5)
    assert det.indices.tolist() == list(range(priors.shape[0]))


def test_decode_raw_without_landmarks_and_custom_variances():
    priors = retinaface.prior_boxes((32, 32))
    boxes, _ = _random_faces(priors, torch.Generator().manual_seed(2))
    loc = _encode_ssd(boxes, priors, variances=(0.2, 0.5))
    conf = torch.tensor([[0.3, 0.7]]).repeat(priors.shape[0], 1)
    det = retinaface.decode_raw(loc, conf, image_size=(32, 32), variances=(0.2, 0.5))
    torch.testing.assert_close(det.boxes, boxes, atol=1e-3, rtol=1e-4)
    assert det.landmarks is None


def test_decode_raw_zero_offsets_give_the_priors():
    det = retinaface.decode_raw(
        torch.zeros(2, 4),
        torch.tensor([[0.0, 1.0]] * 2),
        image_size=(8, 8),
        min_sizes=((4, 8),),
        steps=(8,),
    )
    assert det.boxes.tolist() == [[2.0, 2.0, 6.0, 6.0], [0.0, 0.0, 8.0, 8.0]]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loc": np.zeros((2, 10, 4))}, "batch of 2"),
        ({"loc": np.zeros((10, 3))}, r"loc must have shape \(P, 4\)"),
        ({"conf": np.zeros((10, 3))}, r"conf must have shape \(10, 2\)"),
        ({"landmarks": np.zeros((10, 8))}, r"landmarks must have shape \(10, 10\)"),
        ({"image_size": (64, 64)}, "network input"),
        ({"conf_kind": "softmax"}, "conf_kind"),
        ({"loc": np.full((10, 4), np.nan)}, "NaN"),
        ({"loc": np.zeros((10, 4, 1, 1))}, "dimensions"),
    ],
)
def test_decode_raw_errors(kwargs, match):
    # 10 priors: an 8x80 input, one 8-px stride, one prior size per cell.
    base = {
        "loc": np.zeros((10, 4)),
        "conf": np.zeros((10, 2)),
        "landmarks": None,
        "image_size": (8, 80),
        "min_sizes": ((8,),),
        "steps": (8,),
    }
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        retinaface.decode_raw(**base)


def test_from_insightface_with_and_without_keypoints():
    det = np.array([[10, 20, 30, 50, 0.9], [0, 0, 5, 5, 0.1]], np.float32)
    kps = np.arange(20, dtype=np.float32).reshape(2, 5, 2)
    d = retinaface.from_insightface(det, kps)
    assert d.boxes.tolist() == det[:, :4].tolist()
    assert d.landmarks.tolist() == kps.tolist()
    d = retinaface.from_insightface(det, kps.reshape(2, 10))
    assert d.landmarks.shape == (2, 5, 2)
    assert retinaface.from_insightface(det).landmarks is None
    assert len(retinaface.from_insightface(np.zeros((0, 5)), np.zeros((0, 5, 2)))) == 0
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        retinaface.from_insightface(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="landmarks"):
        retinaface.from_insightface(det, np.zeros((2, 3)))


def _faces_dict():
    return {
        "face_1": {
            "score": np.float32(0.99),
            "facial_area": [10, 20, 50, 70],
            "landmarks": {
                "right_eye": [20.5, 35.0],
                "left_eye": [40.0, 35.5],
                "nose": [30.0, 45.0],
                "mouth_right": [22.0, 60.0],
                "mouth_left": [38.0, 60.0],
            },
        },
        "face_2": {
            "score": 0.5,
            "facial_area": np.array([1, 2, 3, 4]),
            "landmarks": {
                "right_eye": [1, 2],
                "left_eye": [3, 2],
                "nose": [2, 3],
                "mouth_right": [1, 4],
                "mouth_left": [3, 4],
            },
        },
    }


def test_from_faces_dict():
    d = retinaface.from_faces_dict(_faces_dict())
    assert d.boxes.tolist() == [[10, 20, 50, 70], [1, 2, 3, 4]]
    torch.testing.assert_close(d.scores, torch.tensor([0.99, 0.5]))
    assert d.landmarks[0].tolist() == [
        [20.5, 35.0],
        [40.0, 35.5],
        [30.0, 45.0],
        [22.0, 60.0],
        [38.0, 60.0],
    ]
    faces = _faces_dict()
    del faces["face_2"]["landmarks"]
    assert retinaface.from_faces_dict(faces).landmarks is None
    assert len(retinaface.from_faces_dict({})) == 0


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda f: f["face_1"].pop("score"), "'score' and 'facial_area'"),
        (lambda f: f["face_1"].update(facial_area=[1, 2, 3]), r"\[x1, y1, x2, y2\]"),
        (lambda f: f["face_1"]["landmarks"].pop("nose"), "lacks"),
        (lambda f: f["face_1"].update(landmarks=[[1, 2]] * 5), "mapping with keys"),
        (lambda f: f["face_1"].update(facial_area=[50, 20, 10, 70]), "negative width"),
    ],
)
def test_from_faces_dict_errors(mutate, match):
    faces = _faces_dict()
    mutate(faces)
    with pytest.raises(ValueError, match=match):
        retinaface.from_faces_dict(faces)


def test_retinaface_to_detections_dispatch():
    priors = retinaface.prior_boxes((16, 16))
    boxes, points = _random_faces(priors, torch.Generator().manual_seed(3))
    loc = _encode_ssd(boxes, priors)[None].numpy()
    conf = np.tile([[0.2, 0.8]], (priors.shape[0], 1))[None]
    lms = ((points - priors[:, None, :2]) / (0.1 * priors[:, None, 2:])).reshape(1, -1, 10).numpy()
    for out in ({"loc": loc, "conf": conf, "landmarks": lms}, (loc, conf, lms), [loc, conf]):
        d = adapt("retinaface", out, image_size=(16, 16))
        torch.testing.assert_close(d.boxes, boxes, atol=1e-3, rtol=1e-4)
    det = np.array([[1, 2, 3, 4, 0.5]])
    assert retinaface.to_detections((det, None)).boxes.tolist() == [[1, 2, 3, 4]]
    assert retinaface.to_detections((det, np.zeros((1, 5, 2)))).landmarks.shape == (1, 5, 2)
    assert len(retinaface.to_detections(_faces_dict())) == 2
    with pytest.raises(ValueError, match="image_size"):
        retinaface.to_detections({"loc": loc, "conf": conf})


@pytest.mark.parametrize(
    "bad", [np.zeros((3, 7)), {"boxes": 1}, "x", (np.zeros((2, 3)), np.zeros(2)), 5]
)
def test_retinaface_unknown_format_lists_accepted(bad):
    with pytest.raises(ValueError, match="Accepted formats: raw heads"):
        retinaface.to_detections(bad)


# ---------------------------------------------------------------------------------------------
# generic

_XYXY = np.array([[10, 20, 50, 80], [0, 0, 1, 2], [5, 5, 5, 9]], np.float32)
_SCORES = np.array([0.9, 0.2, 0.5], np.float32)


def _in_format(xyxy, fmt):
    x1, y1, x2, y2 = xyxy.T
    return {
        "xyxy": xyxy,
        "xywh": np.stack([x1, y1, x2 - x1, y2 - y1], 1),
        "cxcywh": np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1),
    }[fmt]


@pytest.mark.parametrize("fmt", ["xyxy", "xywh", "cxcywh"])
@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize("container", ["rows", "pair", "dict", "tensor_pair", "list_rows"])
def test_generic_formats(fmt, normalized, container):
    h, w = 100, 200
    boxes = _in_format(_XYXY, fmt)
    if normalized:
        boxes = boxes / np.array([w, h, w, h], np.float32)
    rows = np.concatenate([boxes, _SCORES[:, None]], 1)
    out = {
        "rows": rows,
        "pair": (boxes, _SCORES),
        "dict": {"boxes": boxes, "scores": _SCORES},
        "tensor_pair": (torch.from_numpy(boxes), torch.from_numpy(_SCORES)),
        "list_rows": rows.tolist(),
    }[container]
    kw = {"box_format": fmt, "normalized": normalized}
    if normalized:
        kw["image_size"] = (h, w)
    d = adapt("generic", out, **kw)
    torch.testing.assert_close(d.boxes, torch.from_numpy(_XYXY), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(d.scores, torch.from_numpy(_SCORES))
    assert d.boxes.dtype == torch.float32


def test_generic_landmarks_and_empty():
    lm = np.arange(30, dtype=np.float32).reshape(3, 10) / 100
    d = generic.to_detections(
        {"boxes": _XYXY / 100, "scores": _SCORES, "landmarks": lm},
        normalized=True,
        image_size=(100, 100),
    )
    torch.testing.assert_close(d.landmarks, torch.from_numpy(lm.reshape(3, 5, 2) * 100))
    for empty in (
        [],
        np.zeros((0, 5)),
        (np.zeros((0, 4)), np.zeros(0)),
        {"boxes": [], "scores": []},
    ):
        e = generic.to_detections(empty)
        assert len(e) == 0
        assert e.boxes.dtype == torch.float32


def test_generic_passes_detections_through():
    # What the runners return, so crface.hook(runner.detect) works with the default adapter.
    det = Detections(torch.from_numpy(_XYXY), torch.from_numpy(_SCORES))
    assert generic.to_detections(det) is det
    with pytest.raises(ValueError, match="xyxy pixels already"):
        generic.to_detections(det, box_format="xywh")


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: generic.from_boxes(_XYXY, _SCORES, box_format="yxyx"), ValueError, "box_format"),
        (lambda: generic.from_boxes(_XYXY, _SCORES, normalized=True), ValueError, "image_size"),
        (
            lambda: generic.from_boxes(_XYXY, _SCORES, normalized=True, image_size=(0, 3)),
            ValueError,
            "image_size",
        ),
        (lambda: generic.from_boxes(_XYXY), ValueError, "no scores"),
        (
            lambda: generic.from_boxes(_XYXY, _SCORES[:2]),
            ValueError,
            r"scores must have shape \(3,\)",
        ),
        (lambda: generic.from_boxes(np.zeros((2, 3)), None), ValueError, r"\(N, 4\) or \(N, 5\)"),
        (lambda: generic.from_boxes(np.ones((1, 5)), [1.0]), ValueError, "do not also pass"),
        (
            lambda: generic.from_boxes([[0, 0, -1, 4]], [1.0], box_format="xywh"),
            ValueError,
            "negative width",
        ),
        (lambda: generic.from_boxes([[0, 0, 1, np.nan]], [1.0]), ValueError, "NaN"),
        (lambda: generic.from_boxes([[0, 0, 1, 1]], [np.inf]), ValueError, "NaN or inf"),
        (
            lambda: generic.from_boxes([[0, 0, 1], [1, 2, 3, 4]], [1.0, 2.0]),
            ValueError,
            "rectangular",
        ),
        (lambda: generic.from_boxes("boxes", [1.0]), TypeError, "numeric"),
        (lambda: generic.to_detections({"box": _XYXY}), ValueError, "Accepted formats"),
        (lambda: generic.to_detections(np.zeros((3, 4))), ValueError, "Accepted formats"),
        (lambda: generic.to_detections(object()), ValueError, "Accepted formats"),
    ],
)
def test_generic_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# hambox


def _anchors_reference(h, w, strides, sizes, scales, ratios, offset=0.0):
    """Loop version: per level, row -> column -> scale -> ratio."""
    levels = []
    for stride, base in zip(strides, sizes, strict=True):
        rows = []
        for i in range(math.ceil(h / stride)):
            for j in range(math.ceil(w / stride)):
                for s in scales:
                    for r in ratios:
                        aw = math.sqrt((base * s) ** 2 / r)
                        ah = aw * r
                        cx, cy = (j + offset) * stride, (i + offset) * stride
                        rows.append([cx - aw / 2, cy - ah / 2, cx + aw / 2, cy + ah / 2])
        levels.append(torch.tensor(rows, dtype=torch.float32).reshape(-1, 4))
    return levels


def _encode_rcnn(boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    """Inverse of the Faster R-CNN decode."""
    wa, ha = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    xa, ya = anchors[:, 0] + wa / 2, anchors[:, 1] + ha / 2
    wb, hb = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    xb, yb = boxes[:, 0] + wb / 2, boxes[:, 1] + hb / 2
    d = torch.stack(((xb - xa) / wa, (yb - ya) / ha, torch.log(wb / wa), torch.log(hb / ha)), 1)
    return d * torch.tensor(weights)


_CFG = {"strides": (8, 16), "sizes": (16, 32), "scales": (1.0, 1.5), "aspect_ratios": (0.8, 1.25)}


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_anchor_grid_matches_loop_reference(offset):
    got = hambox.anchor_grid((40, 24), center_offset=offset, **_CFG)
    want = _anchors_reference(40, 24, *_CFG.values(), offset=offset)
    for g, r in zip(got, want, strict=True):
        torch.testing.assert_close(g, r, atol=1e-4, rtol=1e-6)
    default = hambox.anchor_grid((64, 64))
    assert [a.shape[0] for a in default] == [
        9 * (64 // s) ** 2 if s <= 64 else 9 for s in hambox.STRIDES
    ]


def _dense_heads(h, w, num_classes, gen, weights=(1.0, 1.0, 1.0, 1.0)):
    """Per-level NCHW heads (batch 1) whose decode is known, plus the expected boxes/scores."""
    anchors = _anchors_reference(h, w, *_CFG.values())
    a = len(_CFG["scales"]) * len(_CFG["aspect_ratios"])
    cls_maps, box_maps, all_boxes, all_logits = [], [], [], []
    for stride, anc in zip(_CFG["strides"], anchors, strict=True):
        fh, fw = math.ceil(h / stride), math.ceil(w / stride)
        wh = anc[:, 2:] - anc[:, :2]
        centre = (anc[:, :2] + anc[:, 2:]) / 2 + (
            torch.rand(anc.shape[0], 2, generator=gen) - 0.5
        ) * wh
        size = wh * (0.5 + torch.rand(anc.shape[0], 2, generator=gen))
        boxes = torch.cat((centre - size / 2, centre + size / 2), 1)
        deltas = _encode_rcnn(boxes, anc, weights)  # (fh*fw*a, 4) row -> col -> anchor
        logits = torch.randn(anc.shape[0], num_classes, generator=gen)
        box_maps.append(deltas.reshape(fh, fw, a * 4).permute(2, 0, 1)[None])
        cls_maps.append(logits.reshape(fh, fw, a * num_classes).permute(2, 0, 1)[None])
        all_boxes.append(boxes)
        all_logits.append(logits)
    return cls_maps, box_maps, torch.cat(all_boxes), torch.cat(all_logits)


@pytest.mark.parametrize("layout", ["nchw", "chw", "flat", "numpy"])
@pytest.mark.parametrize("num_classes", [1, 3])
def test_decode_dense_recovers_encoded_boxes(layout, num_classes):
    gen = torch.Generator().manual_seed(4)
    weights = (10.0, 10.0, 5.0, 5.0)
    cls_maps, box_maps, boxes, logits = _dense_heads(40, 24, num_classes, gen, weights)
    if layout == "chw":
        cls_maps, box_maps = [c[0] for c in cls_maps], [b[0] for b in box_maps]
    elif layout == "flat":
        cls_maps = [c[0].permute(1, 2, 0).reshape(-1, num_classes) for c in cls_maps]
        box_maps = [b[0].permute(1, 2, 0).reshape(-1, 4) for b in box_maps]
    elif layout == "numpy":
        cls_maps, box_maps = [c.numpy() for c in cls_maps], [b.numpy() for b in box_maps]
    face = num_classes - 1
    d = hambox.to_detections(
        (cls_maps, box_maps), image_size=(40, 24), weights=weights, face_class=face, **_CFG
    )
    torch.testing.assert_close(d.boxes, boxes, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(d.scores, torch.sigmoid(logits[:, face]))
    assert d.landmarks is None


def test_decode_dense_probabilities_mapping_and_clamp():
    gen = torch.Generator().manual_seed(5)
    cls_maps, box_maps, _, logits = _dense_heads(16, 16, 1, gen)
    probs = [torch.sigmoid(c) for c in cls_maps]
    d = hambox.to_detections(
        {"cls_logits": probs, "box_deltas": box_maps}, image_size=(16, 16), logits=False, **_CFG
    )
    torch.testing.assert_close(d.scores, torch.sigmoid(logits[:, 0]))
    big = [torch.full_like(b, 50.0) for b in box_maps]
    d = hambox.decode_dense(cls_maps, big, image_size=(16, 16), **_CFG)
    assert torch.isfinite(d.boxes).all()
    anchors = torch.cat(hambox.anchor_grid((16, 16), **_CFG))
    ratio = (d.boxes[:, 2] - d.boxes[:, 0]) / (anchors[:, 2] - anchors[:, 0])
    torch.testing.assert_close(ratio, torch.full_like(ratio, 1000 / 16), rtol=1e-4, atol=0)


def test_decode_deltas_matches_encode():
    anchors = torch.tensor([[0.0, 0, 10, 20], [5, 5, 9, 7]])
    boxes = torch.tensor([[1.0, 2, 13, 18], [4, 4, 12, 9]])
    torch.testing.assert_close(hambox.decode_deltas(_encode_rcnn(boxes, anchors), anchors), boxes)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda c, b: (c[:1], b), "one cls_logits and box_deltas entry per level"),
        (lambda c, b: (c, [x[:, :4] for x in b]), r"A\*4=16"),
        (lambda c, b: (c, [x[..., :-1] for x in b]), "same H, W"),
        (
            lambda c, b: (
                [x[0].permute(1, 2, 0).reshape(-1, 1)[:-4] for x in c],
                [x[0].permute(1, 2, 0).reshape(-1, 4)[:-4] for x in b],
            ),
            "rows but a",
        ),
        (lambda c, b: (torch.cat([x.flatten() for x in c]), b), "sequences"),
        (
            lambda c, b: ([x.repeat(2, 1, 1, 1) for x in c], [x.repeat(2, 1, 1, 1) for x in b]),
            "batch of 2",
        ),
    ],
)
def test_decode_dense_errors(mutate, match):
    cls_maps, box_maps, _, _ = _dense_heads(16, 16, 1, torch.Generator().manual_seed(6))
    c, b = mutate(cls_maps, box_maps)
    with pytest.raises((ValueError, TypeError), match=match):
        hambox.decode_dense(c, b, image_size=(16, 16), **_CFG)
    with pytest.raises(ValueError, match="face_class"):
        hambox.decode_dense(cls_maps, box_maps, image_size=(16, 16), face_class=1, **_CFG)
    with pytest.raises(ValueError, match="image_size"):
        hambox.to_detections((cls_maps, box_maps), **_CFG)


def test_paddle_rows():
    rows = np.array([[0, 0.9, 1, 2, 3, 4], [1, 0.8, 0, 0, 5, 5], [0, 0.1, 2, 2, 6, 7]], np.float32)
    d = hambox.to_detections(rows)
    assert d.boxes.tolist() == rows[:, 2:].tolist()
    d = hambox.to_detections({"bbox": rows, "bbox_num": np.array([3])}, face_label=0)
    assert d.indices.tolist() == [0, 2]
    assert d.scores.tolist() == pytest.approx([0.9, 0.1])
    assert len(hambox.to_detections(np.array([[-1, 0, 0, 0, 0, 0]], np.float32))) == 0
    assert len(hambox.to_detections(rows.tolist(), face_label=7)) == 0
    assert len(hambox.from_paddle_rows(np.zeros((0, 6)))) == 0


@pytest.mark.parametrize(
    ("out", "match"),
    [
        (np.zeros((3, 5)), "Accepted formats: raw dense heads"),
        ({"bbox": np.zeros((2, 6)), "bbox_num": [1, 1]}, "several images"),
        ({"boxes": np.zeros((2, 6))}, "Accepted formats"),
        (np.zeros((2, 7)), "Accepted formats"),
    ],
)
def test_hambox_errors(out, match):
    with pytest.raises(ValueError, match=match):
        hambox.to_detections(out)
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        hambox.from_paddle_rows(np.zeros((2, 5)))


# ---------------------------------------------------------------------------------------------
# hrnet (mmdetection)


def test_mmdet_v2_per_class_lists():
    faces = np.array([[1, 2, 10, 20, 0.9], [3, 3, 8, 9, 0.3]], np.float32)
    other = np.array([[0, 0, 4, 4, 0.7]], np.float32)
    d = adapt("hrnet", [faces, other])
    assert d.boxes.tolist() == faces[:, :4].tolist()
    assert d.scores.tolist() == pytest.approx([0.9, 0.3])
    assert hrnet.to_detections(([faces, other], [[], []]), class_index=1).boxes.tolist() == [
        [0, 0, 4, 4]
    ]
    assert len(hrnet.from_mmdet_v2([np.zeros((0, 5), np.float32)])) == 0
    assert hrnet.to_detections([faces.tolist()]).scores.shape == (2,)


@pytest.mark.parametrize("kind", ["tensor", "numpy"])
def test_mmdet_v3_samples(kind):
    bboxes = np.array([[1, 2, 10, 20], [3, 3, 8, 9], [0, 0, 4, 4]], np.float32)
    scores = np.array([0.9, 0.3, 0.7], np.float32)
    labels = np.array([0, 1, 0])
    conv = torch.from_numpy if kind == "tensor" else np.asarray
    inst = SimpleNamespace(bboxes=conv(bboxes), scores=conv(scores), labels=conv(labels))
    sample = SimpleNamespace(pred_instances=inst)
    for out in (sample, [sample], inst):
        d = hrnet.to_detections(out)
        assert d.boxes.tolist() == bboxes[[0, 2]].tolist()
        assert d.indices.tolist() == [0, 2]
    assert len(hrnet.from_mmdet_v3(sample, class_index=None)) == 3
    assert hrnet.from_mmdet_v3(sample, class_index=1).indices.tolist() == [1]
    # no row has the face label: empty, with a warning that names the labels present
    with pytest.warns(UserWarning, match=r"label 5; labels present: \[0, 1\]\. Pass class_index"):
        assert len(hrnet.from_mmdet_v3(sample, class_index=5)) == 0
    no_labels = SimpleNamespace(
        pred_instances=SimpleNamespace(bboxes=conv(bboxes), scores=conv(scores))
    )
    assert len(hrnet.to_detections(no_labels)) == 3


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: hrnet.from_mmdet_v2([np.zeros((1, 5))], class_index=1), "out of range"),
        (lambda: hrnet.from_mmdet_v2([np.zeros((1, 4))]), r"\(N, 5\)"),
        (lambda: hrnet.from_mmdet_v2("x"), "per-class"),
        (
            lambda: hrnet.from_mmdet_v3(SimpleNamespace(pred_instances=SimpleNamespace(bboxes=[]))),
            ".bboxes and .scores",
        ),
        (
            lambda: hrnet.from_mmdet_v3(
                SimpleNamespace(bboxes=np.zeros((2, 4)), scores=np.zeros(2), labels=np.zeros(3))
            ),
            r"labels must have shape \(2,\)",
        ),
        (
            lambda: hrnet.from_mmdet_v3(
                SimpleNamespace(bboxes=np.zeros((2, 3)), scores=np.zeros(2))
            ),
            r"bboxes must have shape \(2, 4\)",
        ),
        (lambda: hrnet.to_detections({"a": 1}), "Accepted formats: mmdetection v2"),
        (lambda: hrnet.to_detections(np.zeros((3, 5))), "Accepted formats"),
    ],
)
def test_hrnet_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
