from __future__ import annotations

import numpy as np
import pytest
import torch

import crface
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
