from __future__ import annotations

import numpy as np
import pytest
import torch

import crface
import crface.hooks
from crface.refiner import Refiner
from tests.helpers import random_boxes, random_refiner

IMG = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)


def native_detector(image: np.ndarray) -> np.ndarray:
    """A stand-in detector: (N, 5) rows x1 y1 x2 y2 score, before NMS."""
    boxes, scores = random_boxes(15, image.shape[1], image.shape[0], seed=3)
    return torch.cat([boxes, scores[:, None]], dim=1).numpy()


@pytest.fixture(scope="module")
def refiner() -> Refiner:
    return random_refiner(num_boxes=16)


def test_hook_equals_adapter_then_rerank(refiner: Refiner) -> None:
    detect = crface.hook(native_detector, adapter="generic", refiner=refiner)
    rows = native_detector(IMG)
    want = refiner.rerank(IMG, rows[:, :4], rows[:, 4])
    got = detect(IMG)
    assert got.indices.tolist() == want.indices.tolist()
    assert detect.__name__ == "native_detector"


def test_decorator_and_rerank_kwargs(refiner: Refiner) -> None:
    @crface.refined(
        adapter="generic", refiner=refiner, rerank_kwargs={"nms": None, "score_threshold": 0}
    )
    def detect(image):
        return native_detector(image)

    assert len(detect(IMG)) == 15


def test_unknown_adapter_fails_at_wrap_time() -> None:
    with pytest.raises(ValueError, match="available: centerface"):
        crface.hook(native_detector, adapter="yolo")


def test_stream_yields_each_frame(refiner: Refiner) -> None:
    frames = (IMG for _ in range(3))
    out = list(crface.rerank_stream(frames, native_detector, refiner=refiner))
    assert len(out) == 3
    assert all(isinstance(d, crface.Detections) for _, d in out)


def test_refined_detector_module_batches(refiner: Refiner) -> None:
    module = crface.RefinedDetector(native_detector, adapter="generic", refiner=refiner)
    results = module([IMG, IMG[:60]])
    assert len(results) == 2
    assert (
        results[0].indices.tolist()
        == crface.hook(native_detector, refiner=refiner)(IMG).indices.tolist()
    )
    assert module.to("cpu") is module
    assert refiner.device.type == "cpu"


def test_refiner_to_rejects_onnx_backend() -> None:
    r = Refiner(random_refiner().config, lambda images, boxes: boxes[..., 4], backend="onnxruntime")
    with pytest.raises(ValueError, match="torch backend"):
        r.to("cpu")


def _zero_yunet(h: int, w: int) -> dict:
    """Raw YuNet heads for an ``h x w`` network input, nothing detected."""
    out = {}
    for s in (8, 16, 32):
        n = (h // s) * (w // s)
        out.update({f"cls_{s}": np.zeros((n, 1)), f"obj_{s}": np.zeros((n, 1))})
        out.update({f"bbox_{s}": np.zeros((n, 4)), f"kps_{s}": np.zeros((n, 10))})
    return out


@pytest.mark.parametrize(
    ("image_size", "shapes"),
    [
        ("photo", [(64, 96), (128, 64)]),
        (crface.hooks.padded(32), [(60, 90), (100, 64)]),
    ],
)
def test_hook_image_size_follows_each_photo(refiner: Refiner, image_size, shapes) -> None:
    def net(image):  # a raw-head detector run at the photo's own size, padded to 32
        h, w = image.shape[:2]
        return _zero_yunet(-(-h // 32) * 32, -(-w // 32) * 32)

    detect = crface.hook(net, adapter="yunet", refiner=refiner, image_size=image_size)
    for h, w in shapes:  # a fixed size made the second photo fail with a shape mismatch
        assert isinstance(detect(np.zeros((h, w, 3), np.uint8)), crface.Detections)


def test_hook_rejects_an_unknown_image_size(refiner: Refiner) -> None:
    detect = crface.hook(
        lambda im: _zero_yunet(32, 32), adapter="yunet", refiner=refiner, image_size="native"
    )
    with pytest.raises(ValueError, match=r"'photo' \(each photo's own size\) or a callable"):
        detect(np.zeros((32, 32, 3), np.uint8))
