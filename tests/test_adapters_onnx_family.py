"""Adapters of the ONNX detector families (YuNet, SCRFD, CenterFace, UltraFace, MTCNN).

Each raw decoder is checked on synthetic outputs made by *encoding* known boxes with the inverse of
the documented transform, so decoding must give those boxes back exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crface.adapters import adapt, centerface, mtcnn, scrfd, ultraface, yunet

# (x1, y1, x2, y2) faces and their 5 landmarks, inside a 64 x 96 (H x W) network input
BOXES = np.array([[10.0, 12.0, 30.0, 40.0], [50.5, 8.25, 90.0, 60.0]], np.float32)
LMS = np.array(
    [
        [[15, 20], [25, 20], [20, 27], [16, 33], [24, 33]],
        [[60, 20], [80, 21], [70, 35], [62, 48], [78, 47]],
    ],
    np.float32,
)
SIZE = (64, 96)


def _close(det, boxes=BOXES, scores=None, lms=LMS) -> None:
    np.testing.assert_allclose(det.boxes.numpy(), boxes, atol=1e-4)
    if scores is not None:
        np.testing.assert_allclose(det.scores.numpy(), scores, atol=1e-6)
    if lms is None:
        assert det.landmarks is None
    else:
        np.testing.assert_allclose(det.landmarks.numpy(), lms, atol=1e-4)


# --------------------------------------------------------------------------------------- YuNet
def _yunet_raw(cells, cls=(0.81, 1.5), obj=(1.0, 0.64)):
    """Raw YuNet outputs with BOXES/LMS encoded at ``cells = [(stride, row, col), ...]``."""
    h, w = SIZE
    out = {}
    for s in yunet.STRIDES:
        n = (h // s) * (w // s)
        out.update({f"cls_{s}": np.zeros((n, 1)), f"obj_{s}": np.zeros((n, 1))})
        out.update({f"bbox_{s}": np.zeros((n, 4)), f"kps_{s}": np.zeros((n, 10))})
    for i, (s, row, col) in enumerate(cells):
        j = row * (w // s) + col
        x1, y1, x2, y2 = BOXES[i]
        out[f"bbox_{s}"][j] = [
            (x1 + x2) / 2 / s - col,
            (y1 + y2) / 2 / s - row,
            math.log((x2 - x1) / s),
            math.log((y2 - y1) / s),
        ]
        out[f"kps_{s}"][j] = (LMS[i] / s - [col, row]).reshape(-1)
        out[f"cls_{s}"][j], out[f"obj_{s}"][j] = cls[i], obj[i]
    return {k: v.astype(np.float32)[None] for k, v in out.items()}  # with the batch axis


def test_yunet_raw_roundtrip_dict_and_list():
    raw = _yunet_raw([(8, 3, 2), (16, 2, 4)])
    # sqrt(0.81 * 1) and sqrt(clip(1.5) * 0.64): cls/obj are clipped to [0, 1] first
    for output in (raw, [raw[k] for k in yunet.OUTPUT_NAMES]):
        det = yunet.to_detections(output, image_size=SIZE, score_threshold=0.05)
        _close(det, scores=[0.9, 0.8])


def test_yunet_raw_keeps_every_cell_in_stride_row_major_order():
    raw = _yunet_raw([(8, 3, 2), (16, 2, 4)])
    det = yunet.decode_raw(raw, SIZE)
    assert len(det) == 8 * 12 + 4 * 6 + 2 * 3
    np.testing.assert_allclose(det.boxes[3 * 12 + 2].numpy(), BOXES[0], atol=1e-4)
    np.testing.assert_allclose(det.boxes[96 + 2 * 6 + 4].numpy(), BOXES[1], atol=1e-4)


def test_yunet_opencv_rows():
    rows = np.zeros((2, 15), np.float32)
    rows[:, :2], rows[:, 2:4] = BOXES[:, :2], BOXES[:, 2:] - BOXES[:, :2]
    rows[:, 4:14], rows[:, 14] = LMS.reshape(2, 10), [0.7, 0.2]
    _close(yunet.to_detections((1, rows)), scores=[0.7, 0.2])
    _close(adapt("yunet", rows), scores=[0.7, 0.2])
    assert len(yunet.to_detections((0, None))) == 0
    assert yunet.to_detections(None).landmarks.shape == (0, 5, 2)


@pytest.mark.parametrize(
    ("make", "kwargs", "match"),
    [
        (lambda raw: raw, {}, "image_size"),
        (lambda raw: raw, {"image_size": (64, 64)}, "must have shape"),
        (lambda raw: {k: v for k, v in raw.items() if k != "kps_32"}, {"image_size": SIZE}, "lack"),
        (lambda raw: {**raw, "bbox_8": raw["bbox_8"] * np.nan}, {"image_size": SIZE}, "NaN"),
        (lambda raw: np.zeros((3, 14)), {}, "Accepted formats"),
        (lambda raw: "text", {}, "Accepted formats"),
    ],
)
def test_yunet_errors(make, kwargs, match):
    with pytest.raises(ValueError, match=match):
        yunet.to_detections(make(_yunet_raw([(8, 3, 2), (16, 2, 4)])), **kwargs)


# --------------------------------------------------------------------------------------- SCRFD
def _scrfd_raw(cells, scores=(0.9, 0.6), kps=True):
    """SCRFD outputs (insightface order), BOXES/LMS at ``cells = [(stride, row, col, anchor)]``."""
    h, w = SIZE
    sc, bb, kp = [], [], []
    for s in scrfd.STRIDES:
        n = 2 * (h // s) * (w // s)
        sc.append(np.zeros((n, 1), np.float32))
        bb.append(np.ones((n, 4), np.float32))
        kp.append(np.zeros((n, 10), np.float32))
    for i, (s, row, col, anchor) in enumerate(cells):
        k, j = scrfd.STRIDES.index(s), 2 * (row * (w // s) + col) + anchor
        cx, cy = col * s, row * s
        x1, y1, x2, y2 = BOXES[i]
        bb[k][j] = np.array([cx - x1, cy - y1, x2 - cx, y2 - cy]) / s
        kp[k][j] = ((LMS[i] - [cx, cy]) / s).reshape(-1)
        sc[k][j] = scores[i]
    return sc + bb + (kp if kps else [])


def test_scrfd_raw_roundtrip():
    raw = _scrfd_raw([(8, 3, 2, 1), (32, 1, 2, 0)])
    _close(scrfd.to_detections(raw, image_size=SIZE, score_threshold=0.5), scores=[0.9, 0.6])


def test_scrfd_raw_any_order_mapping_batch_axis_and_no_kps():
    raw = _scrfd_raw([(8, 3, 2, 1), (32, 1, 2, 0)])
    shuffled = {f"out{i}": raw[i][None] for i in (8, 0, 4, 2, 6, 1, 5, 3, 7)}
    det = scrfd.decode_raw(shuffled, SIZE)
    assert len(det) == 2 * (8 * 12 + 4 * 6 + 2 * 3)
    _close(det[det.scores > 0.5], scores=[0.9, 0.6])
    no_kps = scrfd.to_detections(
        _scrfd_raw([(8, 3, 2, 1), (32, 1, 2, 0)], kps=False), image_size=SIZE
    )
    _close(no_kps[no_kps.scores > 0.5], lms=None)


def test_scrfd_insightface_rows():
    det = np.concatenate([BOXES, [[0.9], [0.6]]], axis=1)
    _close(scrfd.to_detections((det, LMS)), scores=[0.9, 0.6])
    _close(adapt("scrfd", (det, None)), lms=None)
    _close(scrfd.to_detections(det), lms=None)
    assert len(scrfd.to_detections((np.zeros((0, 5)), None))) == 0


@pytest.mark.parametrize(
    ("make", "kwargs", "match"),
    [
        (lambda raw: raw, {}, "image_size"),
        (lambda raw: raw, {"image_size": (64, 64)}, "must have"),
        (lambda raw: raw, {"image_size": SIZE, "num_anchors": 1}, "must have"),
        (lambda raw: [*raw[:8], raw[0]], {"image_size": SIZE}, "3 arrays of each kind"),
        (lambda raw: [*raw[:8], np.zeros((10, 3))], {"image_size": SIZE}, r"\(N, 10\)"),
        (lambda raw: (np.zeros((2, 4)), None), {}, "Accepted formats"),
        (lambda raw: (np.zeros((2, 5)), np.zeros((2, 5, 3))), {}, "Accepted formats"),
    ],
)
def test_scrfd_errors(make, kwargs, match):
    with pytest.raises(ValueError, match=match):
        scrfd.to_detections(make(_scrfd_raw([(8, 3, 2, 1)])), **kwargs)


# ---------------------------------------------------------------------------------- CenterFace
def _centerface_raw(cells, scores=(0.9, 0.6)):
    """CenterFace maps (stride 4) with BOXES/LMS encoded at ``cells = [(row, col)]``."""
    h, w = SIZE[0] // 4, SIZE[1] // 4
    heat, scale = np.zeros((1, 1, h, w)), np.zeros((1, 2, h, w))
    offset, lm = np.zeros((1, 2, h, w)), np.zeros((1, 10, h, w))
    for i, (row, col) in enumerate(cells):
        x1, y1, x2, y2 = BOXES[i]
        bw, bh = x2 - x1, y2 - y1
        heat[0, 0, row, col] = scores[i]
        scale[0, :, row, col] = np.log([bh / 4, bw / 4])
        offset[0, :, row, col] = [(y1 + bh / 2) / 4 - 0.5 - row, (x1 + bw / 2) / 4 - 0.5 - col]
        lm[0, 0::2, row, col] = (LMS[i, :, 1] - y1) / bh
        lm[0, 1::2, row, col] = (LMS[i, :, 0] - x1) / bw
    return [m.astype(np.float32) for m in (heat, scale, offset, lm)]


def test_centerface_raw_roundtrip():
    raw = _centerface_raw([(5, 4), (8, 17)])
    _close(centerface.to_detections(raw), scores=[0.9, 0.6])
    named = dict(zip(centerface.RAW_KEYS, (m[0] for m in raw), strict=True))  # no batch axis
    _close(adapt("centerface", named, score_threshold=0.7), BOXES[:1], [0.9], LMS[:1])
    no_lms = centerface.decode_raw(*raw[:3])
    _close(no_lms, lms=None)
    assert len(centerface.decode_raw(*raw, score_threshold=0.0)) == 16 * 24


def test_centerface_rows():
    dets = np.concatenate([BOXES, [[0.9], [0.6]]], axis=1)
    flat = LMS.reshape(2, 10)
    _close(centerface.to_detections((dets, flat)), scores=[0.9, 0.6])
    _close(centerface.to_detections(np.concatenate([dets, flat], axis=1)), scores=[0.9, 0.6])
    _close(centerface.to_detections(dets), lms=None)
    assert centerface.to_detections((np.zeros((0, 5)), np.zeros((0, 10)))).landmarks.shape == (
        0,
        5,
        2,
    )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda raw: {"heatmap": raw[0], "scale": raw[1]}, "lack"),
        (lambda raw: [raw[0], raw[1][:, :, :4], raw[2]], "spatial size"),
        (lambda raw: [raw[0], raw[3], raw[2]], "scale must have shape"),
        (lambda raw: np.zeros((2, 7)), "Accepted formats"),
        (lambda raw: (np.zeros((2, 5)), np.zeros((2, 3))), "Accepted formats"),
        (lambda raw: np.full((1, 5), np.nan), "NaN"),
    ],
)
def test_centerface_errors(make, match):
    with pytest.raises(ValueError, match=match):
        centerface.to_detections(make(_centerface_raw([(5, 4)])))


# ----------------------------------------------------------------------------------- UltraFace
def test_ultraface_roundtrip_scales_by_original_image_size():
    image_size = (480, 320)  # boxes are fractions of the stretched input, i.e. of the image
    boxes = BOXES / np.array([96, 64, 96, 64], np.float32)
    probs = np.array([[0.1, 0.9], [0.4, 0.6], [0.99, 0.01]], np.float32)
    boxes3 = np.concatenate([boxes, [[0, 0, 0.1, 0.1]]])
    det = ultraface.to_detections((probs[None], boxes3[None]), image_size=image_size)
    expected = BOXES * np.array([320 / 96, 480 / 64] * 2, np.float32)
    np.testing.assert_allclose(det.boxes[:2].numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(det.scores.numpy(), probs[:, 1])
    assert det.landmarks is None
    kept = adapt(
        "ultraface", {"scores": probs, "boxes": boxes3}, image_size=(1, 1), score_threshold=0.5
    )
    assert kept.scores.tolist() == pytest.approx([0.9, 0.6])


@pytest.mark.parametrize(
    ("output", "kwargs", "match"),
    [
        ((np.zeros((1, 3, 2)), np.zeros((1, 3, 4))), {}, "image_size"),
        ((np.zeros((1, 3, 2)), np.zeros((1, 2, 4))), {"image_size": (9, 9)}, "must be scores"),
        ((np.zeros((1, 3, 3)), np.zeros((1, 3, 4))), {"image_size": (9, 9)}, "must be scores"),
        ((np.zeros((1, 3, 2)), np.zeros((1, 3, 4))), {"image_size": (0, 9)}, "positive"),
        ({"scores": np.zeros((3, 2))}, {"image_size": (9, 9)}, "Accepted formats"),
        ((np.zeros((3, 2)),) * 3, {"image_size": (9, 9)}, "Accepted formats"),
    ],
)
def test_ultraface_errors(output, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ultraface.to_detections(output, **kwargs)


# --------------------------------------------------------------------------------------- MTCNN
def test_mtcnn_onet_roundtrip():
    crops = torch.tensor([[5.0, 8.0, 35.0, 38.0], [45.0, 0.0, 95.0, 50.0]])
    size = (crops[:, 2:] - crops[:, :2]).repeat(1, 2)
    reg = (torch.from_numpy(BOXES) - crops) / size
    rel = (torch.from_numpy(LMS) - crops[:, None, :2]) / size[:, None, :2]
    points = torch.cat((rel[..., 0], rel[..., 1]), dim=1)  # five x, then five y
    prob = torch.tensor([[0.1, 0.9], [0.4, 0.6]])
    _close(mtcnn.decode_onet(crops, reg, points, prob), scores=[0.9, 0.6])
    _close(mtcnn.decode_onet(crops.numpy(), reg, points, prob[:, 1]), scores=[0.9, 0.6])


def test_mtcnn_dicts():
    faces = [
        {
            "box": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
            "confidence": c,
            "keypoints": dict(zip(mtcnn.KEYPOINTS, lm.tolist(), strict=True)),
        }
        for b, lm, c in zip(BOXES, LMS, (0.9, 0.6), strict=True)
    ]
    _close(mtcnn.to_detections(faces), scores=[0.9, 0.6])
    for f in faces:
        del f["keypoints"]
    _close(adapt("mtcnn", faces), lms=None)
    assert mtcnn.to_detections([]).landmarks.shape == (0, 5, 2)


def test_mtcnn_arrays():
    rows = np.concatenate([BOXES, [[0.9], [0.6]]], axis=1)
    points = np.concatenate([LMS[..., 0].T, LMS[..., 1].T])  # the reference (10, N) layout
    _close(mtcnn.to_detections((rows, points)), scores=[0.9, 0.6])
    _close(mtcnn.to_detections(rows), lms=None)
    _close(mtcnn.to_detections((BOXES, np.array([0.9, 0.6]), LMS)), scores=[0.9, 0.6])
    _close(mtcnn.to_detections((BOXES, np.array([0.9, 0.6]))), lms=None)
    assert len(mtcnn.to_detections((None, None, None))) == 0


@pytest.mark.parametrize(
    ("output", "match"),
    [
        ([{"box": [0, 0, 1, 1]}], "confidence"),
        ([{"box": [0, 0, 1, 1], "confidence": 1, "keypoints": {"nose": (0, 0)}}], "lack"),
        (
            [
                {
                    "box": [0, 0, 1, 1],
                    "confidence": 1,
                    "keypoints": dict.fromkeys(mtcnn.KEYPOINTS, (0, 0)),
                },
                {"box": [0, 0, 1, 1], "confidence": 1},
            ],
            "every face",
        ),
        (np.zeros((2, 4)), "no scores"),
        ((np.zeros((2, 5)), np.zeros((2, 10))), "reference"),
        ((np.zeros((2, 4)), np.zeros(3)), "scores must have shape"),
        (np.full((1, 5), np.inf), "inf"),
    ],
)
def test_mtcnn_errors(output, match):
    with pytest.raises(ValueError, match=match):
        mtcnn.to_detections(output)


def test_mtcnn_onet_shape_error():
    with pytest.raises(ValueError, match="O-Net decoding"):
        mtcnn.decode_onet(np.zeros((2, 4)), np.zeros((2, 4)), np.zeros((2, 5, 2)), np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("module", "raw"),
    [(yunet, lambda: _yunet_raw([(8, 3, 2)])), (scrfd, lambda: _scrfd_raw([(8, 3, 2, 1)]))],
    ids=["yunet", "scrfd"],
)
def test_input_size_is_a_deprecated_alias_of_image_size(module, raw):
    want = module.to_detections(raw(), image_size=SIZE)
    with pytest.warns(DeprecationWarning, match=r"input_size= is deprecated.*image_size="):
        got = module.to_detections(raw(), input_size=SIZE)
    torch.testing.assert_close(got.boxes, want.boxes)
    with pytest.warns(DeprecationWarning, match="input_size"):
        torch.testing.assert_close(
            module.decode_raw(raw(), input_size=SIZE).boxes, module.decode_raw(raw(), SIZE).boxes
        )
    with (
        pytest.raises(TypeError, match="not both"),
        pytest.warns(DeprecationWarning, match="input_size"),
    ):
        module.to_detections(raw(), image_size=SIZE, input_size=SIZE)
