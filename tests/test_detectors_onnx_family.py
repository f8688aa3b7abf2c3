"""Runners of the ONNX detector families: offline pieces, then real detectors on WIDER images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou, nms

from crface.adapters import yunet as yunet_adapter
from crface.detectors import get_detector, runner_class
from crface.detectors.centerface import dynamic_model_bytes
from crface.detectors.mtcnn import _crops, _square, _stage_file
from crface.detectors.yunet import pad_to_multiple
from crface.imageio import load_image

RUNNERS = (
    "yunet_n",
    "yunet_s",
    "scrfd_500m",
    "centerface",
    "ultraface_rfb640",
    "ultraface_slim320",
    "mtcnn",
)
WITH_LANDMARKS = ("yunet_n", "yunet_s", "scrfd_500m", "centerface", "mtcnn")
# wider_val200 photos whose faces are large enough for every detector at 416 x 416
IMAGES = (
    "1--Handshaking/1_Handshaking_Handshaking_1_158.jpg",
    "9--Press_Conference/9_Press_Conference_Press_Conference_9_196.jpg",
    "0--Parade/0_Parade_Parade_0_545.jpg",
)


def test_pad_to_multiple():
    img = np.full((40, 64, 3), 7, np.uint8)
    out = pad_to_multiple(img, 32)
    assert out.shape == (64, 64, 3)
    assert (out[:40] == 7).all() and (out[40:] == 0).all()
    assert pad_to_multiple(out, 32) is out


def test_dynamic_model_bytes_makes_a_fixed_graph_size_agnostic(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((1, 3, 4, 4), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], strides=[4, 4])],
        "fixed",
        # old exporters also list the weights among the graph inputs
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [10, 3, 32, 32]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 3, 4, 4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [10, 1, 8, 8])],
        [weight],
    )
    path = tmp_path / "fixed.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    before = path.read_bytes()
    session = ort.InferenceSession(dynamic_model_bytes(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x"]
    (y,) = session.run(None, {"x": np.ones((1, 3, 64, 96), np.float32)})
    assert y.shape == (1, 1, 16, 24)
    np.testing.assert_allclose(y, 48.0)
    assert path.read_bytes() == before


def test_mtcnn_square_and_transposed_crops():
    np.testing.assert_allclose(
        _square(torch.tensor([[10.0, 20.0, 30.0, 60.0]])).numpy(), [[0.0, 20.0, 40.0, 60.0]]
    )
    # x-gradient image: the networks take crops as N x W x H x 3, so axis 1 must follow x
    xs = torch.arange(48.0).repeat(3, 48, 1)[None]  # 1 x 3 x H x W, value = column
    crops = _crops(xs, torch.tensor([[0.0, 0.0, 48.0, 48.0], [0.0, -24.0, 48.0, 24.0]]), 48)
    assert crops.shape == (2, 48, 48, 3)
    np.testing.assert_allclose(crops[0, :, 5, 0].numpy(), np.arange(48.0), atol=1e-4)
    assert (crops[1, :, :20] == 0).all()  # the part of the box above the image reads as zeros


def test_mtcnn_stage_files_are_found_beside_pnet(tmp_path):
    for name in ("my_pnet.onnx", "my_rnet.onnx", "mtcnn_onet.onnx", "other.onnx"):
        (tmp_path / name).write_bytes(b"")
    pnet = tmp_path / "my_pnet.onnx"
    assert _stage_file(pnet, "rnet", None) == tmp_path / "my_rnet.onnx"
    assert _stage_file(pnet, "onet", None) == tmp_path / "mtcnn_onet.onnx"
    assert _stage_file(pnet, "onet", tmp_path / "other.onnx") == tmp_path / "other.onnx"
    with pytest.raises(FileNotFoundError, match="onet weights not found"):
        _stage_file(pnet, "onet", tmp_path / "missing.onnx")
    (tmp_path / "mtcnn_onet.onnx").unlink()
    with pytest.raises(FileNotFoundError, match="beside"):
        _stage_file(pnet, "onet", None)


# ------------------------------------------------------------------------- real detectors, data
_CACHE: dict[str, object] = {}


def _runner(name: str, shared_dir: Path):
    if not (shared_dir / "detectors" / runner_class(name).default_weights).is_file():
        pytest.skip(f"{name} weights absent from {shared_dir / 'detectors'}")
    if name not in _CACHE:
        _CACHE[name] = get_detector(name, device="cpu")
    return _CACHE[name]


def _wider(shared_dir: Path) -> dict[str, torch.Tensor]:
    """Ground truth (xyxy) of IMAGES from labels.txt (WIDER FACE gt text format)."""
    root = shared_dir / "data" / "wider_val200"
    if not (root / "labels.txt").is_file():
        pytest.skip(f"{root} absent")
    lines = (root / "labels.txt").read_text().splitlines()
    gt = {}
    for name in IMAGES:
        i = lines.index(name)
        n = int(lines[i + 1])
        xywh = torch.tensor([[float(v) for v in r.split()[:4]] for r in lines[i + 2 : i + 2 + n]])
        gt[name] = torch.cat((xywh[:, :2], xywh[:, :2] + xywh[:, 2:]), dim=1)
    return gt


@pytest.mark.shared
@pytest.mark.parametrize("name", RUNNERS)
def test_runner_on_wider_images(name, shared_dir):
    runner = _runner(name, shared_dir)
    matched = total = 0
    for image_name, gt in _wider(shared_dir).items():
        image = load_image(shared_dir / "data" / "wider_val200" / "images" / image_name)
        h, w = image.shape[:2]
        det = runner(image)
        assert len(det) >= (40 if name == "mtcnn" else 100), "expected many pre-NMS candidates"
        assert (det.scores[:-1] >= det.scores[1:]).all()
        assert (det.scores >= runner.score_threshold).all()
        assert (det.boxes[:, :2] >= 0).all() and (det.boxes[:, 2] <= w).all()
        assert (det.boxes[:, 3] <= h).all() and (det.boxes[:, 2:] > det.boxes[:, :2]).all()
        if name in WITH_LANDMARKS:
            assert det.landmarks.shape == (len(det), 5, 2)
        else:
            assert det.landmarks is None
        assert box_iou(det.boxes[:1], gt).max() >= 0.5, "the best candidate should be a face"
        overlap = box_iou(det.boxes[:50], det.boxes[:50]).fill_diagonal_(0)
        assert overlap.max() > 0.7, "overlapping candidates: no NMS should have run"
        keep = nms(det.boxes, det.scores, 0.4)
        keep = keep[det.scores[keep] >= 0.5]
        matched += int((box_iou(gt, det.boxes[keep]).amax(dim=1) >= 0.5).sum())
        total += len(gt)
    assert matched >= total - 2, f"{matched}/{total} faces found"


@pytest.mark.shared
@pytest.mark.parametrize("name", WITH_LANDMARKS)
def test_runner_flip_gives_the_same_face_and_landmarks(name, shared_dir):
    runner = _runner(name, shared_dir)
    image = load_image(shared_dir / "data" / "wider_val200" / "images" / IMAGES[2])
    plain, flipped = runner(image), runner(image, flip=True)
    # the best mirrored candidate on the same face as the best plain one
    same = torch.nonzero(box_iou(plain.boxes[:1], flipped.boxes)[0] > 0.7).flatten()
    assert len(same) > 0 and flipped.scores[same[0]] > 0.5
    width = float(plain.boxes[0, 2] - plain.boxes[0, 0])
    # landmarks come back in the same semantic order (eyes and mouth corners swapped back); a
    # wrong order would be off by about the eye distance, ~0.4 face widths
    error = (plain.landmarks[0] - flipped.landmarks[same[0]]).abs().max()
    assert error < 0.2 * width


@pytest.mark.shared
@pytest.mark.parametrize("name", ["yunet_n", "yunet_s"])
def test_yunet_matches_opencv(name, shared_dir):
    cv2 = pytest.importorskip("cv2")
    runner = _runner(name, shared_dir)
    image = load_image(shared_dir / "data" / "wider_val200" / "images" / IMAGES[0])
    h, w = image.shape[:2]
    # NMS threshold 1.0 keeps OpenCV's candidates as they are before NMS
    cv_det = cv2.FaceDetectorYN.create(str(runner.weights), "", (w, h), 0.3, 1.0, 5000)
    _, faces = cv_det.detect(np.ascontiguousarray(image[:, :, ::-1]))
    ours = runner(image)
    ours = ours[ours.scores >= 0.3]
    ref = yunet_adapter.to_detections(faces)
    ref = ref[torch.argsort(ref.scores, descending=True)]
    ref_boxes = torch.cat((ref.boxes[:, :2].clamp(min=0), ref.boxes[:, 2:].clamp(max=w)), dim=1)
    assert len(ours) == len(ref) > 10
    np.testing.assert_allclose(ours.scores.numpy(), ref.scores.numpy(), atol=1e-4)
    np.testing.assert_allclose(ours.boxes.numpy(), ref_boxes.numpy(), atol=0.05)
    np.testing.assert_allclose(ours.landmarks.numpy(), ref.landmarks.numpy(), atol=0.05)


@pytest.mark.shared
def test_mtcnn_rejects_bad_settings(shared_dir):
    _runner("mtcnn", shared_dir)
    cls = runner_class("mtcnn")
    for kwargs in ({"min_face_size": 0}, {"scale_factor": 1.0}, {"stage_thresholds": (0.5,)}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            cls(**kwargs)
