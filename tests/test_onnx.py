"""ONNX export and the onnxruntime backend: parity with PyTorch within 1e-4."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crface.refiner import Refiner
from tests.helpers import random_boxes, random_model

pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'crface[onnx]')")
pytest.importorskip("onnxscript", reason="onnxscript not installed (pip install 'crface[onnx]')")

TOL = 1e-4


@pytest.fixture(
    scope="module",
    params=[
        {"head": "global"},
        {"head": "roi"},
        # the shipped crface-small's options
        {"head": "roi", "input_norm": "retinaface", "residual_space": "logit"},
        {"head": "rows", "residual_space": "logit"},
        {"head": "crop", "residual_space": "logit"},
    ],
    ids=["global", "roi", "roi-retinaface-logit", "rows-logit", "crop-logit"],
)
def pair(tmp_path_factory, request):
    model = random_model(num_boxes=32, image_size=96, seed=5, **request.param)
    torch_refiner = Refiner.from_model(model, device="cpu", metadata={"trained": True, "tag": "t"})
    path = torch_refiner.export_onnx(tmp_path_factory.mktemp("onnx") / "ranker.onnx")
    return torch_refiner, Refiner.load(path, backend="onnxruntime", device="cpu"), path


@pytest.mark.parametrize("batch", [1, 3])
def test_raw_graph_matches_torch_with_dynamic_batch(pair, batch: int) -> None:
    import onnxruntime as ort

    torch_refiner, _, path = pair
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(batch)
    image = torch.rand(batch, 3, 96, 96, generator=g) * 255
    boxes = torch.rand(batch, 32, 5, generator=g)
    boxes[:, 20:] = 0
    want = torch_refiner.model(image, boxes).detach().numpy()
    got = session.run(["scores"], {"image": image.numpy(), "boxes": boxes.numpy()})[0]
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


def test_rows_and_crop_graphs_take_fewer_rows_and_a_tight_canvas(pair) -> None:
    import onnxruntime as ort

    torch_refiner, onnx_refiner, path = pair
    tight = torch_refiner.config.head in ("rows", "crop")
    assert onnx_refiner._tight_rows == torch_refiner._tight_rows == tight
    assert onnx_refiner._tight_canvas == (torch_refiner.config.head == "crop")
    if not tight:
        return
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(7)
    height = 61 if onnx_refiner._tight_canvas else 96
    image = torch.rand(2, 3, height, 96, generator=g) * 255
    boxes = torch.rand(2, 11, 5, generator=g)
    want = torch_refiner.model(image, boxes).detach().numpy()
    got = session.run(["scores"], {"image": image.numpy(), "boxes": boxes.numpy()})[0]
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


def test_a_graph_with_fixed_shapes_gets_full_inputs() -> None:
    """Graphs exported before the dynamic axes fix N and S: the backend must pad for them."""
    from crface.refiner import _OrtBackend

    class Input:
        def __init__(self, name, shape):
            self.name, self.shape = name, shape

    class Session:
        def get_inputs(self):
            return [Input("image", ["batch", 3, 96, 96]), Input("boxes", ["batch", 32, 5])]

    backend = _OrtBackend(Session())
    assert not backend.tight_rows and not backend.tight_canvas


def test_onnx_refiner_matches_torch_refiner(pair) -> None:
    torch_refiner, onnx_refiner, _ = pair
    assert onnx_refiner.backend == "onnxruntime"
    assert onnx_refiner.config == torch_refiner.config
    assert onnx_refiner.metadata["tag"] == "t"
    rng = np.random.default_rng(0)
    for seed, (h, w, n) in enumerate([(120, 160, 10), (300, 90, 50), (64, 64, 1)]):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        boxes, scores = random_boxes(n, w, h, seed=seed)
        torch.testing.assert_close(
            onnx_refiner.refine_scores(img, boxes, scores),
            torch_refiner.refine_scores(img, boxes, scores),
            atol=TOL,
            rtol=0,
        )
        a = onnx_refiner.rerank(img, boxes, scores)
        b = torch_refiner.rerank(img, boxes, scores)
        assert a.indices.tolist() == b.indices.tolist()


def test_weights_file_loads_on_onnxruntime(tmp_path) -> None:
    from crface.weights import save_weights

    path = save_weights(
        tmp_path / "m.pt", random_model(num_boxes=8, image_size=64), {"trained": True}
    )
    r = Refiner.load(path, backend="onnxruntime", device="cpu")
    img = np.zeros((50, 70, 3), np.uint8)
    boxes, scores = random_boxes(5, 70, 50)
    torch.testing.assert_close(
        r.refine_scores(img, boxes, scores),
        Refiner.load(path, device="cpu").refine_scores(img, boxes, scores),
        atol=TOL,
        rtol=0,
    )


def test_onnx_backend_keeps_the_weights_suppression_choice() -> None:
    """The ONNX export carries the metadata, so detector= picks the same strength and nms."""
    torch_refiner = Refiner.load("crface-small", device="cpu", detector="retinaface")
    onnx_refiner = Refiner.load(
        "crface-small", backend="onnxruntime", device="cpu", detector="retinaface"
    )
    assert (onnx_refiner.nms, onnx_refiner.strength) == (torch_refiner.nms, torch_refiner.strength)
    assert onnx_refiner.nms == torch_refiner.metadata["nms"]["per_detector"]["retinaface"]


def test_onnx_errors(pair, tmp_path) -> None:
    _, onnx_refiner, path = pair
    with pytest.raises(ValueError, match="backend='onnxruntime'"):
        Refiner.load(path)
    with pytest.raises(ValueError, match="torch backend"):
        onnx_refiner.export_onnx(tmp_path / "again.onnx")
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    save(helper.make_model(graph), tmp_path / "plain.onnx")
    with pytest.raises(ValueError, match="carries no crface config"):
        Refiner.load(tmp_path / "plain.onnx", backend="onnxruntime")


@pytest.mark.parametrize("content", [b"\x00garbage" * 100, b""], ids=["garbage", "truncated"])
def test_corrupt_onnx_file_gives_one_line_naming_it(pair, tmp_path, content) -> None:
    _, _, path = pair
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content or path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"bad\.onnx.*not a valid ONNX model") as info:
        Refiner.load(bad, backend="onnxruntime", device="cpu")
    assert "\n" not in str(info.value) and "INVALID_PROTOBUF" not in str(info.value)
