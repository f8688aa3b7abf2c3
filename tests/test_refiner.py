from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import crface
from crface.ops import convert_boxes, nms
from crface.refiner import Refiner, prepare_candidates
from crface.types import Detections
from tests.helpers import SHIPPED_WEIGHTS, random_boxes, random_model, random_refiner

IMG = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def refiner() -> Refiner:
    return random_refiner(num_boxes=16)


@pytest.mark.parametrize("name", SHIPPED_WEIGHTS)
def test_load_registered_weights_are_trained_and_run(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # trained weights load without the untrained notice
        r = crface.Refiner.load(name, device="cpu")
    assert r.metadata["trained"] is True
    per_det = r.metadata["strength"]["per_detector"]
    assert r.strength == r.metadata["strength"]["default"]
    assert crface.Refiner.load(name, device="cpu", detector="mtcnn").strength == per_det["mtcnn"]
    nms = (r.metadata.get("nms") or {}).get("per_detector", {})
    for det, method in nms.items():
        assert crface.Refiner.load(name, device="cpu", detector=det).nms == method
    boxes, scores = random_boxes(30, 160, 120)
    refined = r.refine_scores(IMG, boxes, scores)
    assert refined.shape == scores.shape and ((refined >= 0) & (refined <= 1)).all()
    faces = r.rerank(IMG, boxes, scores)
    assert faces.scores.tolist() == sorted(faces.scores.tolist(), reverse=True)


def test_untrained_weights_warn_and_are_the_identity(tmp_path) -> None:
    from crface.model import ConfidenceRanker, RankerConfig
    from crface.weights import save_weights

    path = save_weights(
        tmp_path / "init.pt",
        ConfidenceRanker(RankerConfig(num_boxes=32, image_size=64)),
        {"trained": False},
    )
    with pytest.warns(UserWarning, match="UNTRAINED"):
        r = crface.Refiner.load(path, device="cpu")
    boxes, scores = random_boxes(30, 160, 120)
    torch.testing.assert_close(r.refine_scores(IMG, boxes, scores), scores)
    faces = r.rerank(IMG, boxes, scores)
    keep = nms(boxes, scores, 0.4)
    keep = keep[scores[keep] >= 0.02]
    assert faces.indices.tolist() == keep.tolist()


def test_rerank_output_contract(refiner: Refiner) -> None:
    boxes, scores = random_boxes(12, 160, 120)
    refined = refiner.refine_scores(IMG, boxes, scores)
    faces = refiner.rerank(IMG, boxes, scores, score_threshold=0.0, max_det=None)
    assert faces.boxes.dtype == torch.float32 and faces.indices.dtype == torch.int64
    assert torch.all(faces.scores[:-1] >= faces.scores[1:])
    torch.testing.assert_close(faces.scores, refined[faces.indices])
    torch.testing.assert_close(faces.boxes, boxes[faces.indices])
    assert faces.indices.tolist() == nms(boxes, refined, 0.4).tolist()
    assert len(refiner.rerank(IMG, boxes, scores, max_det=2)) <= 2
    assert ((refiner.rerank(IMG, boxes, scores, score_threshold=0.5).scores) >= 0.5).all()


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_box_formats_agree(refiner: Refiner, fmt: str) -> None:
    boxes, scores = random_boxes(10, 160, 120)
    ref = refiner.refine_scores(IMG, boxes, scores)
    got = refiner.refine_scores(IMG, convert_boxes(boxes, "xyxy", fmt), scores, box_format=fmt)
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize(
    "image",
    [
        IMG,
        Image.fromarray(IMG),
        torch.from_numpy(IMG).permute(2, 0, 1),
        torch.from_numpy(IMG).permute(2, 0, 1).float() / 255,
    ],
    ids=["numpy", "pil", "tensor_uint8", "tensor_float"],
)
def test_image_types_agree(refiner: Refiner, image) -> None:
    boxes, scores = random_boxes(8, 160, 120)
    torch.testing.assert_close(
        refiner.refine_scores(image, boxes, scores), refiner.refine_scores(IMG, boxes, scores)
    )


def test_grayscale_rgba_and_path_inputs(refiner: Refiner, tmp_path) -> None:
    boxes, scores = random_boxes(5, 160, 120)
    gray = IMG[..., 0]
    ref = refiner.refine_scores(np.repeat(gray[..., None], 3, axis=2), boxes, scores)
    torch.testing.assert_close(refiner.refine_scores(gray, boxes, scores), ref)
    rgba = np.concatenate([IMG, np.full((120, 160, 1), 7, np.uint8)], axis=2)
    torch.testing.assert_close(
        refiner.refine_scores(rgba, boxes, scores), refiner.refine_scores(IMG, boxes, scores)
    )
    Image.fromarray(IMG).save(tmp_path / "x.png")
    torch.testing.assert_close(
        refiner.refine_scores(tmp_path / "x.png", boxes, scores),
        refiner.refine_scores(IMG, boxes, scores),
    )


def test_inputs_as_lists_numpy_torch_agree(refiner: Refiner) -> None:
    boxes, scores = random_boxes(6, 160, 120)
    ref = refiner.refine_scores(IMG, boxes, scores)
    torch.testing.assert_close(refiner.refine_scores(IMG, boxes.numpy(), scores.numpy()), ref)
    torch.testing.assert_close(refiner.refine_scores(IMG, boxes.tolist(), scores.tolist()), ref)
    torch.testing.assert_close(refiner.refine_scores(IMG, boxes.double(), scores.double()), ref)


def test_empty_input_gives_empty_result(refiner: Refiner) -> None:
    faces = refiner.rerank(IMG, np.zeros((0, 4)), np.zeros(0))
    assert len(faces) == 0 and faces.boxes.shape == (0, 4) and faces.indices.dtype == torch.int64
    assert refiner.refine_scores(IMG, [], []).shape == (0,)
    faces = refiner.rerank(IMG, np.zeros((0, 4)), np.zeros(0), landmarks=np.zeros((0, 5, 2)))
    assert faces.landmarks.shape == (0, 5, 2)


BAD_CANDIDATES = [
    ("length", np.zeros((3, 4)) + [0, 0, 1, 1], np.zeros(2), ValueError, "differ in length"),
    ("shape", np.zeros((3, 5)), np.zeros(3), ValueError, r"shape \(N, 4\)"),
    (
        "scores_shape",
        np.zeros((3, 4)) + [0, 0, 1, 1],
        np.zeros((3, 2)),
        ValueError,
        r"shape \(N,\)",
    ),
    (
        "nan_box",
        [[0, 0, 1, 1], [0, np.nan, 1, 1]],
        [0.5, 0.5],
        ValueError,
        r"NaN or inf in rows \[1\]",
    ),
    ("inf_score", [[0, 0, 1, 1]], [np.inf], ValueError, "NaN or inf"),
    ("score_range", [[0, 0, 1, 1], [0, 0, 2, 2]], [0.5, 3.0], ValueError, r"probabilities.*\[1\]"),
    (
        "negative_size",
        [[0, 0, 1, 1], [5, 5, 2, 8]],
        [0.5, 0.5],
        ValueError,
        r"negative width/height.*\[1\]",
    ),
    ("strings", "boxes", [0.5], TypeError, "numeric array"),
    ("bool", np.ones((1, 4), bool), [0.5], TypeError, "real numbers"),
]


@pytest.mark.parametrize(
    ("case", "boxes", "scores", "exc", "match"), BAD_CANDIDATES, ids=[c[0] for c in BAD_CANDIDATES]
)
def test_bad_candidates_raise_clear_errors(
    refiner: Refiner, case, boxes, scores, exc, match
) -> None:
    with pytest.raises(exc, match=match):
        refiner.rerank(IMG, boxes, scores)


@pytest.mark.parametrize(
    ("image", "exc", "match"),
    [
        ("not/a/file.png", FileNotFoundError, "not found"),
        (np.full((10, 10, 3), -1, np.float32), ValueError, r"\[0, 1\] or \[0, 255\]"),
        (np.zeros((10, 10, 2), np.uint8), ValueError, "HxWx3"),
        (np.zeros((0, 10, 3), np.uint8), ValueError, "empty"),
        (torch.rand(3, 4, 5) * 300, ValueError, r"\[0, 1\] or \[0, 255\]"),
        ({"x": 1}, TypeError, "image must be"),
    ],
)
def test_bad_images_raise(refiner: Refiner, image, exc, match) -> None:
    with pytest.raises(exc, match=match):
        refiner.rerank(image, [[0, 0, 1, 1]], [0.5])


def test_non_image_file_raises(refiner: Refiner, tmp_path) -> None:
    (tmp_path / "a.jpg").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read"):
        refiner.rerank(tmp_path / "a.jpg", [[0, 0, 1, 1]], [0.5])


def test_invalid_drop_policy(refiner: Refiner) -> None:
    boxes, scores = random_boxes(6, 160, 120)
    boxes[2] = torch.tensor([50.0, 50, 40, 60])
    refined = refiner.refine_scores(IMG, boxes, scores, invalid="drop")
    assert refined[2] == 0
    ok = torch.tensor([True, True, False, True, True, True])
    torch.testing.assert_close(refined[ok], refiner.refine_scores(IMG, boxes[ok], scores[ok]))
    faces = refiner.rerank(IMG, boxes, scores, invalid="drop", score_threshold=0)
    assert 2 not in faces.indices.tolist()


def test_scores_within_tolerance_are_clipped() -> None:
    c = prepare_candidates([[0, 0, 1, 1], [0, 0, 2, 2]], [1.00001, -0.00001])
    assert c.scores.tolist() == [1.0, 0.0]


def test_more_candidates_than_capacity_keep_top_n(refiner: Refiner) -> None:
    boxes, scores = random_boxes(40, 160, 120)
    refined = refiner.refine_scores(IMG, boxes, scores)
    top = torch.argsort(scores, descending=True)
    rest = top[16:]
    torch.testing.assert_close(refined[rest], scores[rest])  # beyond N: unchanged
    torch.testing.assert_close(
        refined[top[:16]], refiner.refine_scores(IMG, boxes[top[:16]], scores[top[:16]])
    )


def test_landmarks_follow_their_boxes(refiner: Refiner) -> None:
    boxes, scores = random_boxes(10, 160, 120)
    lms = torch.rand(10, 5, 2) * 100
    faces = refiner.rerank(IMG, boxes, scores, landmarks=lms, score_threshold=0)
    torch.testing.assert_close(faces.landmarks, lms[faces.indices])
    flat = refiner.rerank(IMG, boxes, scores, landmarks=lms.reshape(10, 10), score_threshold=0)
    torch.testing.assert_close(flat.landmarks, faces.landmarks)
    with pytest.raises(ValueError, match="landmarks"):
        refiner.rerank(IMG, boxes, scores, landmarks=lms[:3])


def test_rerank_accepts_detections(refiner: Refiner) -> None:
    boxes, scores = random_boxes(10, 160, 120)
    det = Detections(boxes, scores, landmarks=torch.rand(10, 5, 2))
    a = refiner.rerank(IMG, det)
    b = refiner.rerank(IMG, boxes, scores, landmarks=det.landmarks)
    assert a.indices.tolist() == b.indices.tolist()
    with pytest.raises(ValueError, match="not both"):
        refiner.rerank(IMG, det, scores)
    with pytest.raises(TypeError, match="scores is required"):
        refiner.rerank(IMG, boxes)


@pytest.mark.parametrize("method", ["hard", "soft", "soft_gaussian", "vote", None])
def test_nms_methods(refiner: Refiner, method) -> None:
    boxes, scores = random_boxes(20, 160, 120)
    faces = refiner.rerank(IMG, boxes, scores, nms=method, score_threshold=0, max_det=None)
    assert torch.all(faces.scores[:-1] >= faces.scores[1:])
    if method is None:
        assert len(faces) == 20


def test_bad_options_raise(refiner: Refiner) -> None:
    boxes, scores = random_boxes(3, 160, 120)
    for kwargs, match in [
        ({"nms": "fast"}, "nms must be 'auto' or one of"),
        ({"box_format": "yxyx"}, "box_format"),
        ({"invalid": "ignore"}, "invalid must be"),
        ({"max_det": -1}, "max_det"),
    ]:
        with pytest.raises(ValueError, match=match):
            refiner.rerank(IMG, boxes, scores, **kwargs)


@pytest.mark.parametrize("head", ["global", "crop"])  # crop: tight canvases and rows, batched
def test_rerank_batch_matches_single(head: str) -> None:
    refiner = random_refiner(num_boxes=16, head=head)
    rng = np.random.default_rng(1)
    images = [
        rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        for h, w in [(120, 160), (90, 60), (200, 100)]
    ]
    cands = [
        random_boxes(n, im.shape[1], im.shape[0], seed=n) for n, im in zip((12, 0, 30), images)
    ]
    refiner.batch_size = 2
    batched = refiner.rerank_batch(
        images, [c[0] for c in cands], [c[1] for c in cands], score_threshold=0
    )
    for im, (b, s), got in zip(images, cands, batched):
        want = refiner.rerank(im, b, s, score_threshold=0)
        assert got.indices.tolist() == want.indices.tolist()
        torch.testing.assert_close(got.scores, want.scores)
    with pytest.raises(ValueError, match="entries for 3 images"):
        refiner.rerank_batch(images, [c[0] for c in cands][:2], [c[1] for c in cands])


def test_unknown_weights_and_backend_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="crface-small"):
        Refiner.load("crface-huge")
    with pytest.raises(ValueError, match="backend must be one of"):
        Refiner.load("crface-small", backend="tensorrt")
    with pytest.raises(ValueError, match="device must be"):
        Refiner.load("crface-small", device="tpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu() -> None:
    boxes, scores = random_boxes(16, 160, 120)
    cpu = Refiner.from_model(random_model(), device="cpu").refine_scores(IMG, boxes, scores)
    with warnings.catch_warnings():
        gpu = Refiner.from_model(random_model(), device="cuda").refine_scores(IMG, boxes, scores)
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_strength_blends_detector_and_ranker_scores(strength: float) -> None:
    model = random_model()
    boxes, scores = random_boxes(10)
    image = np.zeros((150, 200, 3), np.uint8)
    full = Refiner.from_model(model, device="cpu").refine_scores(image, boxes, scores)
    r = Refiner.from_model(model, device="cpu", strength=strength)
    blended = r.refine_scores(image, boxes, scores)
    torch.testing.assert_close(blended, scores + strength * (full - scores))


def test_strength_from_weights_metadata() -> None:
    meta = {"strength": {"default": 0.25, "per_detector": {"yunet_n": 0.5}}}
    model = random_model()
    assert Refiner.from_model(model, device="cpu", metadata=meta).strength == 0.25
    r = Refiner.from_model(model, device="cpu", metadata=meta, detector="yunet_n")
    assert r.strength == 0.5
    assert Refiner.from_model(model, device="cpu", metadata=meta, strength=0.0).strength == 0.0
    with pytest.raises(ValueError, match=r"no strength stored for detector 'mtcnn'.*\['yunet_n'\]"):
        Refiner.from_model(model, device="cpu", metadata=meta, detector="mtcnn")
    with pytest.raises(ValueError, match="strength must be finite and >= 0"):
        Refiner.from_model(model, device="cpu", strength=-1.0)
    with pytest.raises(TypeError, match="strength must be a number"):
        Refiner.from_model(model, device="cpu", strength="1")


VOTING = {
    "strength": {"default": 1.0, "per_detector": {"retinaface": 1.0, "yunet_n": 1.0}},
    "nms": {"default": "hard", "per_detector": {"retinaface": "vote"}},
}


@pytest.mark.parametrize(
    ("detector", "expected"), [("retinaface", "vote"), ("yunet_n", "hard"), (None, "hard")]
)
def test_nms_from_weights_metadata(detector, expected) -> None:
    model = random_model()
    r = Refiner.from_model(model, device="cpu", metadata=VOTING, detector=detector)
    assert r.nms == expected
    boxes, scores = random_boxes(40, 160, 120)
    auto = r.rerank(IMG, boxes, scores)  # nms="auto": the weights' choice for the detector
    named = Refiner.from_model(model, device="cpu").rerank(IMG, boxes, scores, nms=expected)
    [batched] = r.rerank_batch([IMG], [boxes], [scores])
    for got in (auto, batched):
        torch.testing.assert_close(got.boxes, named.boxes, rtol=0, atol=0)
        torch.testing.assert_close(got.scores, named.scores, rtol=0, atol=0)


def test_explicit_nms_overrides_the_weights_choice() -> None:
    r = Refiner.from_model(random_model(), device="cpu", metadata=VOTING, detector="retinaface")
    boxes, scores = random_boxes(40, 160, 120)
    hard, voted = r.rerank(IMG, boxes, scores, nms="hard"), r.rerank(IMG, boxes, scores)
    assert set(hard.boxes.flatten().tolist()) <= set(boxes.flatten().tolist())  # input rows
    assert not torch.equal(hard.boxes, voted.boxes)  # voting averaged some clusters


def test_unknown_nms_in_metadata_names_the_fix() -> None:
    meta = {"nms": {"default": "fast"}}
    with pytest.raises(ValueError, match=r"nms 'fast'.*ship_weights"):
        Refiner.from_model(random_model(), device="cpu", metadata=meta)


# ----------------------------------------------------------------------------- issue 12


def test_normalised_boxes_are_refused_with_a_pixel_hint(refiner: Refiner) -> None:
    boxes, scores = random_boxes(6, 160, 120)
    unit = boxes / torch.tensor([160.0, 120, 160, 120])
    with pytest.raises(ValueError, match=r"inside \[0, 1\].*160x120.*width.*height") as info:
        refiner.rerank(IMG, unit, scores)
    assert "normalized=True" in str(info.value)
    # pixel boxes that happen to be small, in a tiny image, still pass
    tiny = np.zeros((12, 12, 3), np.uint8)
    assert refiner.refine_scores(tiny, [[0.1, 0.1, 0.9, 0.9]], [0.5]).shape == (1,)
    assert len(refiner.rerank(IMG, [[0.0, 0, 1, 1], [2, 2, 30, 30]], [0.5, 0.4])) >= 1


def test_empty_boxes_are_dropped_and_counted_by_default(refiner: Refiner) -> None:
    boxes, scores = random_boxes(6, 160, 120)
    boxes[[1, 4], 2] = boxes[[1, 4], 0]  # clipped to zero width
    with pytest.warns(UserWarning, match=r"dropped 2 of 6 .*zero width/height.*\[1, 4\]"):
        faces = refiner.rerank(IMG, boxes, scores, score_threshold=0)
    assert not {1, 4} & set(faces.indices.tolist())
    with pytest.warns(UserWarning, match="dropped 2 of 6"):
        refined = refiner.refine_scores(IMG, boxes, scores)
    assert refined[1] == refined[4] == 0
    with pytest.raises(ValueError, match=r"zero width/height in rows \[1, 4\]"):
        refiner.rerank(IMG, boxes, scores, invalid="raise")
    bad = boxes.clone()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        refiner.rerank(IMG, bad, scores)


def test_negative_size_boxes_suggest_the_box_format(refiner: Refiner) -> None:
    xywh = torch.tensor([[50.0, 40, 20, 25], [60, 30, 30, 30]])  # x, y, w, h read as xyxy
    with pytest.raises(ValueError, match=r"negative width/height.*box_format='xywh'") as info:
        refiner.rerank(IMG, xywh, [0.9, 0.8])
    assert "invalid='drop'" not in str(info.value).split("box_format='xywh'")[0]
    assert len(refiner.rerank(IMG, xywh, [0.9, 0.8], box_format="xywh")) >= 1


@pytest.mark.parametrize("threads", [None, 1])
def test_threads_option_restores_the_global_setting(threads) -> None:
    before = torch.get_num_threads()
    seen = []
    r = Refiner.from_model(random_model(), device="cpu", threads=threads)
    forward = r._forward
    r._forward = lambda *a: (seen.append(torch.get_num_threads()), forward(*a))[1]
    boxes, scores = random_boxes(5, 160, 120)
    r.refine_scores(IMG, boxes, scores)
    assert seen == [1] and torch.get_num_threads() == before
    assert Refiner.from_model(random_model(), device="cpu", threads=0).threads == 0
    with pytest.raises(ValueError, match="threads must be"):
        Refiner.from_model(random_model(), device="cpu", threads=-2)
