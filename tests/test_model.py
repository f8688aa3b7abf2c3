from __future__ import annotations

import pytest
import torch

from crface.model import PRESETS, ConfidenceRanker, RankerConfig, box_matrix, letterbox
from tests.helpers import random_boxes, random_model


@pytest.mark.parametrize("head", ["global", "roi", "rows", "crop"])
def test_untrained_ranker_is_identity(head: str) -> None:
    model = ConfidenceRanker(RankerConfig(num_boxes=8, image_size=64, head=head)).eval()
    boxes = torch.rand(2, 8, 5)
    boxes[:, 5:] = 0  # padding rows
    out = model(torch.rand(2, 3, 64, 64) * 255, boxes)
    assert torch.equal(out[:, :5], boxes[:, :5, 4])
    assert torch.equal(out[:, 5:], torch.zeros(2, 3))


@pytest.mark.parametrize("head", ["global", "roi", "rows", "crop"])
def test_output_range_shape_and_padding_rows(head: str) -> None:
    model = random_model(num_boxes=12, head=head)
    boxes = torch.rand(3, 12, 5)
    boxes[:, 7:] = 0
    out = model(torch.rand(3, 3, 64, 64) * 255, boxes)
    assert out.shape == (3, 12)
    assert ((out >= 0) & (out <= 1)).all()
    assert (out[:, 7:] == 0).all()
    assert not torch.equal(out[:, :7], boxes[:, :7, 4])  # a random head does change scores


def test_bpn_features_of_padding_rows_are_zero() -> None:
    model = random_model(num_boxes=10)
    boxes = torch.rand(1, 10, 5)
    boxes[:, 6:] = 0
    for tap in model.bpn(boxes, boxes[..., 2] > 0):
        assert tap.shape == (1, model.config.bpn_channels, 10, 5)
        assert (tap[:, :, 6:] == 0).all()
        assert tap[:, :, :6].abs().sum() > 0


@pytest.mark.parametrize("head", ["global", "roi", "rows", "crop"])
def test_batch_members_do_not_interact(head: str) -> None:
    model = random_model(num_boxes=16, head=head)
    imgs, mats = torch.rand(3, 3, 64, 64) * 255, torch.rand(3, 16, 5)
    mats[1, 9:] = 0
    together = model(imgs, mats)
    for i in range(3):
        torch.testing.assert_close(model(imgs[i : i + 1], mats[i : i + 1])[0], together[i])


@pytest.mark.parametrize("backbone", ["mobilenet", "resnet18"])
def test_backbones_run_and_train(backbone: str) -> None:
    model = ConfidenceRanker(RankerConfig(num_boxes=8, image_size=64, backbone=backbone))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    img, boxes = torch.rand(2, 3, 64, 64) * 255, torch.rand(2, 8, 5)
    before = model.eval()(img, boxes).detach()
    model.train()
    for _ in range(2):
        opt.zero_grad()
        (-model(img, boxes)[:, 0].mean()).backward()  # push row 0 up
        opt.step()
    after = model.eval()(img, boxes).detach()
    assert (after[:, 0] > before[:, 0]).all()


def test_config_round_trip_and_errors() -> None:
    cfg = PRESETS["paper"]
    assert RankerConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown RankerConfig keys"):
        RankerConfig.from_dict({"bogus": 1})
    for bad in (
        {"backbone": "vgg"},
        {"bpn_layers": 4},
        {"num_boxes": 0},
        {"bpn_kernel": (2, 5)},
        {"head": "mlp"},
        {"train_clamp": "soft"},
        {"crop_sampling": 0},
    ):
        with pytest.raises(ValueError):
            RankerConfig(**bad)


def test_letterbox_keeps_aspect_and_pads() -> None:
    img = torch.full((3, 50, 100), 200, dtype=torch.uint8)
    out, scale = letterbox(img, 64)
    assert out.shape == (3, 64, 64) and scale == pytest.approx(0.64)
    assert (out[:, :32] > 0).all() and (out[:, 32:] == 0).all()


@pytest.mark.parametrize("hw", [(50, 100), (100, 50), (64, 64), (20, 30), (300, 90)])
def test_letterbox_tight_canvas_is_the_square_canvas_top_left(hw: tuple[int, int]) -> None:
    img = torch.randint(1, 255, (3, *hw), dtype=torch.uint8)
    square, scale = letterbox(img, 64)
    tight, tight_scale = letterbox(img, 64, square=False)
    h, w = tight.shape[1:]
    assert tight_scale == scale and h <= 64 and w <= 64
    torch.testing.assert_close(tight, square[:, :h, :w], atol=0, rtol=0)
    # one zero row/column wherever the photo is short of the canvas, none where it fills it
    nh, nw = round(hw[0] * scale), round(hw[1] * scale)
    assert (h, w) == (min(64, nh + 1), min(64, nw + 1))


@pytest.mark.parametrize("sampling", [1, 2])
@pytest.mark.parametrize("rows", [1, 7, 16])
def test_crop_head_on_tight_canvas_and_rows_matches_the_full_input(
    rows: int, sampling: int
) -> None:
    """The Refiner's shortcuts are exact: the crop head reads the same RoIAlign samples from
    the tight canvas (boxes reaching past the photo included), and padding rows past the last
    real row change nothing (the row's rank is out of num_boxes, not out of N)."""
    model = random_model(num_boxes=16, image_size=64, head="crop", crop_sampling=sampling)
    photo = torch.randint(1, 255, (3, 30, 50), dtype=torch.uint8)
    square, _ = letterbox(photo, 64)
    tight, _ = letterbox(photo, 64, square=False)
    boxes = torch.zeros(1, 16, 5)
    boxes[0, :rows, :2] = torch.rand(rows, 2) * 1.1 - 0.05  # some past the bottom/right edge
    boxes[0, :rows, 2:4] = torch.rand(rows, 2) * 0.3 + 0.01
    boxes[0, :rows, 4] = torch.rand(rows).sort(descending=True).values
    full = model(square[None], boxes)
    torch.testing.assert_close(model(tight[None], boxes[:, :rows]), full[:, :rows])


def test_rows_head_takes_fewer_rows() -> None:
    model = random_model(num_boxes=16, image_size=64, head="rows")
    image, boxes = torch.rand(2, 3, 64, 64) * 255, torch.rand(2, 16, 5)
    boxes[:, 9:] = 0
    torch.testing.assert_close(model(image, boxes[:, :9]), model(image, boxes)[:, :9])


def test_box_matrix_sorts_normalises_pads_and_truncates() -> None:
    boxes, scores = random_boxes(6, 200, 100)
    mat, order = box_matrix(boxes, scores, 200.0, 8)
    assert torch.equal(order, torch.argsort(scores, descending=True))
    torch.testing.assert_close(mat[:6, 4], scores[order])
    torch.testing.assert_close(mat[:6, :2], boxes[order, :2] / 200)
    torch.testing.assert_close(mat[:6, 2:4], (boxes[order, 2:] - boxes[order, :2]) / 200)
    assert (mat[6:] == 0).all()
    mat, order = box_matrix(boxes, scores, 200.0, 4)
    assert mat.shape == (4, 5) and torch.equal(order, torch.argsort(scores, descending=True)[:4])


@pytest.mark.parametrize(("mode", "has_grad"), [("straight_through", True), ("hard", False)])
def test_train_clamp_gradient(mode: str, has_grad: bool) -> None:
    model = ConfidenceRanker(RankerConfig(num_boxes=4, image_size=64, train_clamp=mode)).train()
    boxes = torch.rand(1, 4, 5)
    boxes[0, 0, 4] = 1.0  # at the top of the range: pushing it up clips
    with torch.no_grad():
        model.head_fc[0].bias.fill_(0.5)
    out = model(torch.rand(1, 3, 64, 64) * 255, boxes)
    assert float(out[0, 0].detach()) == 1.0
    out[0, 0].backward()
    assert (model.head_fc[0].bias.grad[0] != 0) == has_grad


def test_roi_head_pools_the_box_region() -> None:
    """The roi head reads the finest pyramid features inside each box: with a fixed feature map
    that is 1 only in the top-left quarter and only the RoI inputs feeding the MLP, a box there
    scores differently and two boxes elsewhere score exactly alike."""
    model = random_model(num_boxes=4, image_size=64, head="roi")
    roi_width = model.config.head_channels * model.config.roi_size**2
    fixed = torch.zeros(1, model.config.head_channels, 8, 8)  # stride 8 on a 64 px image
    fixed[:, :, :4, :4] = 1.0
    with torch.no_grad():
        model.roi_mlp[0].weight[:, roi_width:] = 0  # silence the BPN-row and context inputs

    class Fixed(torch.nn.Module):
        def forward(self, p3: torch.Tensor) -> torch.Tensor:
            return fixed.expand(p3.shape[0], -1, -1, -1)

    model.head_conv[0] = Fixed()
    boxes = torch.tensor(
        [
            [
                [0.05, 0.05, 0.3, 0.3, 0.5],
                [0.6, 0.05, 0.3, 0.3, 0.5],
                [0.6, 0.6, 0.3, 0.3, 0.5],
                [0, 0, 0, 0, 0],
            ]
        ]
    )
    out = model(torch.zeros(1, 3, 64, 64), boxes)[0]
    assert out[0] != out[1]
    assert out[1] == out[2]


def test_retinaface_input_norm_feeds_bgr_minus_mean() -> None:
    cfg = RankerConfig(num_boxes=4, image_size=64, input_norm="retinaface")
    net = ConfidenceRanker(cfg).eval()
    seen = []
    net.backbone.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    image = torch.zeros(1, 3, 64, 64)
    image[:, 0] = 200.0  # red
    net(image, torch.zeros(1, 4, 5))
    x = seen[0]
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([-104.0, -117.0, 200.0 - 123.0]))
    with pytest.raises(ValueError, match="input_norm must be one of"):
        RankerConfig(input_norm="bgr")


def test_logit_residual_space_is_identity_at_init_and_scales_changes() -> None:
    cfg = RankerConfig(num_boxes=4, image_size=64, residual_space="logit")
    net = ConfidenceRanker(cfg).eval()
    boxes = torch.zeros(1, 4, 5)
    boxes[0, :3, 2:4] = 0.2
    boxes[0, :3, 4] = torch.tensor([0.9, 0.5, 0.02])
    out = net(torch.zeros(1, 3, 64, 64), boxes)
    torch.testing.assert_close(out, boxes[..., 4], atol=1e-6, rtol=0)  # padding row stays 0
    with torch.no_grad():
        net.head_fc[0].bias.fill_(3.0)  # the same residual for every row (averaged over 3 levels)
    moved = net(torch.zeros(1, 3, 64, 64), boxes)[0, :3] - boxes[0, :3, 4]
    c = boxes[0, :3, 4]
    torch.testing.assert_close(moved, torch.sigmoid(torch.logit(c) + 1.0) - c)
    with pytest.raises(ValueError, match="residual_space must be"):
        RankerConfig(residual_space="log")


def test_rows_head_ignores_the_image_and_has_no_backbone() -> None:
    model = random_model(num_boxes=12, head="rows")
    assert model.backbone is None
    boxes = torch.rand(2, 12, 5)
    torch.testing.assert_close(
        model(torch.zeros(2, 3, 64, 64), boxes), model(torch.rand(2, 3, 64, 64) * 255, boxes)
    )


def test_crop_head_sees_only_the_pixels_around_each_candidate() -> None:
    model = random_model(num_boxes=4, image_size=64, head="crop")
    assert model.backbone is None
    boxes = torch.zeros(1, 4, 5)
    boxes[0, 0] = torch.tensor([0.05, 0.05, 0.1, 0.1, 0.9])  # top-left corner
    boxes[0, 1] = torch.tensor([0.8, 0.8, 0.1, 0.1, 0.8])  # bottom-right corner
    image = torch.rand(1, 3, 64, 64) * 255
    changed = image.clone()
    changed[..., 48:, 48:] = 255 - changed[..., 48:, 48:]  # only around box 1
    before, after = model(image, boxes), model(changed, boxes)
    assert before[0, 0] == after[0, 0]
    assert before[0, 1] != after[0, 1]


def test_crop_sampling_sets_roialigns_samples_and_old_configs_keep_two() -> None:
    """Weights saved before ``crop_sampling`` existed were trained on 2 x 2 samples per bin."""
    old = RankerConfig(head="crop").to_dict()
    del old["crop_sampling"]
    assert RankerConfig.from_dict(old).crop_sampling == 2
    model = random_model(num_boxes=4, image_size=64, head="crop", crop_sampling=1)
    image, boxes = torch.rand(1, 3, 64, 64) * 255, torch.rand(1, 4, 5) * 0.5
    calls = []
    with pytest.MonkeyPatch.context() as mp:
        import crface.model

        real = crface.model.roi_align
        mp.setattr(crface.model, "roi_align", lambda *a, **k: calls.append(k) or real(*a, **k))
        model(image, boxes)
    assert calls == [{"sampling_ratio": 1, "aligned": True}]


def test_crop_config_checks_its_patch_size() -> None:
    with pytest.raises(ValueError, match="crop_size must be a positive multiple of 4"):
        RankerConfig(head="crop", crop_size=10)


@pytest.mark.parametrize("head", ["global", "rows", "crop"])
def test_fold_batchnorm_keeps_outputs_and_removes_every_batchnorm(head) -> None:
    from crface.model import fold_batchnorm

    model = random_model(num_boxes=8, image_size=64, head=head)
    for m in model.modules():  # non-trivial running statistics, so that folding matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    image, boxes = torch.rand(2, 3, 64, 64) * 255, torch.rand(2, 8, 5)
    expected = model(image, boxes)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(folded(image, boxes), expected, atol=1e-5, rtol=1e-4)


def test_fold_batchnorm_refuses_a_model_in_training_mode() -> None:
    from crface.model import fold_batchnorm

    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(random_model(num_boxes=4, image_size=64).train())
