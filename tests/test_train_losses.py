from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from crface.train.losses import (
    LOSSES,
    ce_loss,
    l1_loss,
    l2_loss,
    make_loss,
    pairwise_ranking_loss,
    smooth_l1_loss,
)


def _bce(logit: float, target: float) -> float:
    return math.log1p(math.exp(-logit)) if target else math.log1p(math.exp(logit))


def _reference_rank(refined, oracle, valid, weights, num_pairs, ties, scale, pair_weight) -> float:
    """Pair-by-pair loops over python floats: the slow, obvious reading of the spec."""
    total = 0.0
    for k in range(1, num_pairs + 1):
        num = den = 0.0
        for b in range(refined.shape[0]):
            rows = [i for i in range(refined.shape[1]) if valid[b, i]]
            for a, c in zip(rows, rows[k:]):
                oi, oj = float(oracle[b, a]), float(oracle[b, c])
                if ties == "ignore" and oi == oj:
                    continue
                wi, wj = float(weights[b, a]), float(weights[b, c])
                w = min(wi, wj) if pair_weight == "min" else wi * wj
                num += w * _bce(scale * float(refined[b, a] - refined[b, c]), oi > oj)
                den += w
        total += num / den if den else 0.0
    return total / num_pairs


def test_two_rows_hand_computed() -> None:
    refined = torch.tensor([[0.2, 0.8]])
    valid = torch.ones(1, 2, dtype=torch.bool)
    # Oracle says row 0 is better, refined says row 1: loss = softplus(0.6).
    got = pairwise_ranking_loss(refined, torch.tensor([[0.9, 0.0]]), valid, num_pairs=1)
    assert float(got) == pytest.approx(math.log1p(math.exp(0.6)), abs=1e-6)
    # Right order: softplus(-0.6); with scale 10: softplus(-6).
    got = pairwise_ranking_loss(refined, torch.tensor([[0.0, 0.9]]), valid, num_pairs=1)
    assert float(got) == pytest.approx(math.log1p(math.exp(-0.6)), abs=1e-6)
    got = pairwise_ranking_loss(refined, torch.tensor([[0.0, 0.9]]), valid, num_pairs=1, scale=10)
    assert float(got) == pytest.approx(math.log1p(math.exp(-6.0)), abs=1e-6)


def test_skips_divide_by_n_and_ties() -> None:
    refined = torch.tensor([[0.5, 0.3, 0.1]])
    oracle = torch.tensor([[0.0, 0.8, 0.0]])
    valid = torch.ones(1, 3, dtype=torch.bool)
    s1 = (_bce(0.2, 0) + _bce(0.2, 1)) / 2  # (0,1): 0 < 0.8 -> t=0; (1,2): t=1
    ignore = pairwise_ranking_loss(refined, oracle, valid, num_pairs=2)
    assert float(ignore) == pytest.approx(s1 / 2, abs=1e-6)  # skip 2 is one tie: 0
    paper = pairwise_ranking_loss(refined, oracle, valid, num_pairs=2, ties="paper")
    assert float(paper) == pytest.approx((s1 + _bce(0.4, 0)) / 2, abs=1e-6)  # tie -> Y=1 -> t=0
    # More skips than rows: the missing skips count as 0 but still divide.
    three = pairwise_ranking_loss(refined, oracle, valid, num_pairs=3, ties="paper")
    assert float(three) == pytest.approx((s1 + _bce(0.4, 0)) / 3, abs=1e-6)


def test_invalid_rows_are_removed_from_the_chain() -> None:
    oracle = torch.tensor([[0.9, 0.5, 0.0, 0.7]])
    refined = torch.tensor([[0.1, 0.9, 0.4, 0.2]])
    valid = torch.tensor([[True, False, True, True]])
    got = pairwise_ranking_loss(refined, oracle, valid, num_pairs=1)
    # The chain is rows 0, 2, 3: pairs (0,2) t=1 and (2,3) t=0.
    want = (_bce(0.1 - 0.4, 1) + _bce(0.4 - 0.2, 0)) / 2
    assert float(got) == pytest.approx(want, abs=1e-6)
    # Padding (a suffix, as in box matrices) never changes the loss.
    pad = pairwise_ranking_loss(
        torch.cat([refined[:, [0, 2, 3]], torch.rand(1, 5)], 1),
        torch.cat([oracle[:, [0, 2, 3]], torch.rand(1, 5)], 1),
        torch.cat([torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, 5, dtype=torch.bool)], 1),
        num_pairs=1,
    )
    assert float(pad) == pytest.approx(want, abs=1e-6)


def test_zero_weight_rows_stay_in_chain_but_weigh_nothing() -> None:
    refined = torch.tensor([[0.5, 0.4, 0.3]])
    oracle = torch.tensor([[0.0, 0.6, 0.9]])
    valid = torch.ones(1, 3, dtype=torch.bool)
    weights = torch.tensor([[1.0, 0.0, 1.0]])
    got = pairwise_ranking_loss(refined, oracle, valid, weights, num_pairs=2)
    # Skip 1: both pairs touch row 1 -> nothing; skip 2: pair (0, 2) only.
    assert float(got) == pytest.approx(_bce(0.2, 0) / 2, abs=1e-6)


@pytest.mark.parametrize("ties", ["ignore", "paper"])
@pytest.mark.parametrize("pair_weight", ["min", "product"])
@pytest.mark.parametrize("num_pairs", [1, 3, 10])
def test_matches_reference_implementation(ties: str, pair_weight: str, num_pairs: int) -> None:
    g = torch.Generator().manual_seed(num_pairs)
    refined = torch.rand(3, 12, generator=g)
    # Quantised oracle: plenty of ties, as with background boxes.
    oracle = (torch.rand(3, 12, generator=g) * 4).floor() / 4
    valid = torch.rand(3, 12, generator=g) > 0.2
    weights = torch.rand(3, 12, generator=g)
    got = pairwise_ranking_loss(
        refined,
        oracle,
        valid,
        weights,
        num_pairs=num_pairs,
        ties=ties,
        scale=2.0,
        pair_weight=pair_weight,
    )
    want = _reference_rank(refined, oracle, valid, weights, num_pairs, ties, 2.0, pair_weight)
    assert float(got) == pytest.approx(want, abs=1e-5)


def test_no_pair_gives_zero_with_a_gradient() -> None:
    refined = torch.rand(2, 4, requires_grad=True)
    oracle = torch.zeros(2, 4)  # all ties
    loss = pairwise_ranking_loss(refined, oracle, torch.ones(2, 4, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(refined.grad, torch.zeros(2, 4))


def test_gradient_step_fixes_a_wrong_order() -> None:
    refined = torch.tensor([[0.6, 0.3]], requires_grad=True)
    oracle = torch.tensor([[0.1, 0.9]])  # row 1 is the face
    valid = torch.ones(1, 2, dtype=torch.bool)
    opt = torch.optim.SGD([refined], lr=0.5)
    before = pairwise_ranking_loss(refined, oracle, valid, num_pairs=1).item()
    for _ in range(2):
        opt.zero_grad()
        pairwise_ranking_loss(refined, oracle, valid, num_pairs=1).backward()
        assert refined.grad[0, 0] > 0 > refined.grad[0, 1]
        opt.step()
    assert refined[0, 1] > refined[0, 0]
    assert pairwise_ranking_loss(refined, oracle, valid, num_pairs=1).item() < before


@pytest.mark.parametrize(
    ("name", "fn", "reference"),
    [
        ("ce", ce_loss, F.binary_cross_entropy),
        ("l1", l1_loss, F.l1_loss),
        ("l2", l2_loss, F.mse_loss),
        ("smooth_l1", smooth_l1_loss, lambda a, b: F.smooth_l1_loss(a, b, beta=0.1)),
    ],
)
def test_regression_losses_match_torch(name: str, fn, reference) -> None:
    refined, oracle = torch.rand(2, 7), torch.rand(2, 7)
    valid = torch.ones(2, 7, dtype=torch.bool)
    torch.testing.assert_close(fn(refined, oracle, valid), reference(refined, oracle))
    torch.testing.assert_close(make_loss(name)(refined, oracle, valid), reference(refined, oracle))
    # Masked rows and zero-weight rows drop out of the mean.
    valid[:, 5:] = False
    weights = torch.ones(2, 7)
    weights[1, 0] = 0.0
    keep = valid & (weights > 0)
    torch.testing.assert_close(
        fn(refined, oracle, valid, weights), reference(refined[keep], oracle[keep])
    )


def test_make_loss_errors_list_the_options() -> None:
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'.*'rank'"):
        make_loss("hinge")
    with pytest.raises(TypeError, match=r"num_pair.*'num_pairs'"):
        make_loss("rank", num_pair=3)
    with pytest.raises(ValueError, match="ties must be one of"):
        make_loss("rank", ties="maybe")
    with pytest.raises(ValueError, match="beta"):
        make_loss("smooth_l1", beta=0)
    assert set(LOSSES) == {"rank", "ce", "l1", "l2", "smooth_l1"}


def test_shape_and_dtype_validation() -> None:
    ok = torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="share one shape"):
        pairwise_ranking_loss(torch.rand(1, 3), torch.rand(1, 4), ok)
    with pytest.raises(TypeError, match="bool"):
        pairwise_ranking_loss(torch.rand(1, 3), torch.rand(1, 3), ok.float())
    with pytest.raises(ValueError, match="weights"):
        l1_loss(torch.rand(1, 3), torch.rand(1, 3), ok, torch.rand(3))


def test_floor_turns_pairs_of_misses_into_ties() -> None:
    refined = torch.tensor([[0.5, 0.5, 0.5]])
    oracle = torch.tensor([[0.3, 0.1, 0.8]])  # two misses under 0.5, then a hit
    valid = torch.ones(1, 3, dtype=torch.bool)
    paper = pairwise_ranking_loss(refined, oracle, valid, num_pairs=1)
    floored = pairwise_ranking_loss(refined, oracle, valid, num_pairs=1, floor=0.5)
    # paper: pairs (0,1) and (1,2) both count; floored: (0,1) is a tie, only (1,2) is left
    assert float(paper) == pytest.approx(math.log(2))
    assert float(floored) == pytest.approx(math.log(2))
    steep = torch.tensor([[0.9, 0.1, 0.5]])  # (0,1) in the paper's order, (1,2) against it
    assert float(pairwise_ranking_loss(steep, oracle, valid, num_pairs=1, floor=0.5)) > float(
        pairwise_ranking_loss(steep, oracle, valid, num_pairs=1)
    )
    with pytest.raises(ValueError, match="floor must be in"):
        pairwise_ranking_loss(refined, oracle, valid, floor=1.5)


def _ref_cluster_pairs(refined, oracle, boxes, weights, thr, scale, floor):
    """Loops: every ordered pair (i better than j) of overlapping weighted rows."""
    from crface.ops import box_iou

    losses = []
    for b in range(refined.shape[0]):
        xyxy = torch.cat([boxes[b, :, :2], boxes[b, :, :2] + boxes[b, :, 2:4]], dim=1)
        iou = box_iou(xyxy, xyxy)
        o = [0.0 if v < floor else v for v in oracle[b].tolist()]
        for i in range(refined.shape[1]):
            for j in range(refined.shape[1]):
                ok = weights[b, i] > 0 and weights[b, j] > 0 and o[i] > o[j]
                if ok and iou[i, j] >= thr:
                    losses.append(float(F.softplus(-scale * (refined[b, i] - refined[b, j]))))
    return sum(losses) / max(len(losses), 1)


@pytest.mark.parametrize("floor", [0.0, 0.5])
@pytest.mark.parametrize("seed", range(4))
def test_cluster_pair_loss_matches_reference(seed: int, floor: float) -> None:
    from crface.train.losses import cluster_pair_loss

    g = torch.Generator().manual_seed(seed)
    boxes = torch.rand(2, 12, 5, generator=g) * torch.tensor([0.3, 0.3, 0.2, 0.2, 1.0])
    boxes[..., 2:4] += 0.05
    boxes[1, 9:] = 0  # padding
    weights = (boxes[..., 2] > 0).float()
    weights[0, 3] = 0.0
    refined, oracle = torch.rand(2, 12, generator=g), torch.rand(2, 12, generator=g)
    got = cluster_pair_loss(refined, oracle, boxes, weights, iou_threshold=0.3, floor=floor)
    want = _ref_cluster_pairs(refined, oracle, boxes, weights, 0.3, 10.0, floor)
    assert float(got) == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_cluster_pair_loss_lifts_the_better_rival_and_rejects_bad_thresholds() -> None:
    from crface.train.losses import cluster_pair_loss

    boxes = torch.tensor([[[0.0, 0, 1, 1, 0.9], [0.1, 0, 1, 1, 0.5]]])
    refined = torch.tensor([[0.9, 0.5]], requires_grad=True)
    cluster_pair_loss(refined, torch.tensor([[0.6, 0.9]]), boxes, torch.ones(1, 2)).backward()
    assert refined.grad[0, 1] < 0 < refined.grad[0, 0]  # descent raises row 1, lowers row 0
    with pytest.raises(ValueError, match="iou_threshold must be in"):
        cluster_pair_loss(refined, refined, boxes, torch.ones(1, 2), iou_threshold=0.0)
