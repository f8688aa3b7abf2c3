"""Box math and the NMS family, checked against slow pure-Python references."""

from __future__ import annotations

import doctest
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import crface.ops
from crface.ops import (
    box_iou,
    box_voting,
    convert_boxes,
    nms,
    nms_clusters,
    oracle_confidence,
    soft_nms,
    suppress,
)

Box = list[float]

# --- slow, obviously-correct references: plain loops over lists of floats ---------------------


def ref_iou(a: Box, b: Box) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ref_by_score(scores: list[float]) -> list[int]:
    """Row indices by decreasing score, ties by increasing row."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def ref_nms(boxes: list[Box], scores: list[float], thr: float) -> list[int]:
    keep: list[int] = []
    for i in ref_by_score(scores):
        if all(ref_iou(boxes[i], boxes[j]) <= thr for j in keep):
            keep.append(i)
    return keep


def ref_soft_nms(
    boxes: list[Box],
    scores: list[float],
    thr: float,
    sigma: float,
    method: str,
    score_thr: float,
) -> tuple[list[int], list[float]]:
    current = list(scores)
    pool = [i for i in range(len(boxes)) if current[i] >= score_thr]
    keep: list[int] = []
    while pool:
        best = max(current[i] for i in pool)
        pick = min(i for i in pool if current[i] == best)
        keep.append(pick)
        pool.remove(pick)
        for i in pool:
            o = ref_iou(boxes[pick], boxes[i])
            if method == "gaussian":
                current[i] *= math.exp(-o * o / sigma)
            elif o > thr:
                current[i] *= 1.0 - o
        pool = [i for i in pool if current[i] >= score_thr]
    return keep, [current[i] for i in keep]


def ref_box_voting(
    boxes: list[Box], scores: list[float], thr: float, min_size: int = 1
) -> tuple[list[int], list[Box], list[float]]:
    pool = ref_by_score(scores)
    keep: list[int] = []
    voted: list[Box] = []
    voted_scores: list[float] = []
    while pool:
        top = pool[0]
        cluster = [top] + [j for j in pool[1:] if ref_iou(boxes[top], boxes[j]) >= thr]
        taken = set(cluster)
        pool = [j for j in pool if j not in taken]
        if len(cluster) < min_size:
            continue
        total = sum(scores[j] for j in cluster)
        if total > 0:
            weights = [scores[j] / total for j in cluster]
        else:
            weights = [1.0 / len(cluster)] * len(cluster)
        pairs = list(zip(weights, cluster, strict=True))
        voted.append([sum(w * boxes[j][c] for w, j in pairs) for c in range(4)])
        keep.append(top)
        voted_scores.append(max(scores[j] for j in cluster))
    return keep, voted, voted_scores


# --- random inputs ----------------------------------------------------------------------------

SEEDS = range(40)
THRESHOLDS = (0.3, 0.4, 0.5, 0.7)


def random_case(seed: int, ties: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes jittered around a few centres (so suppression happens) plus lone boxes.

    ``ties`` quantises scores to fifths so many are exactly equal.
    """
    g = torch.Generator().manual_seed(seed)
    n = (0, 1, 2, 5, 30, 80)[seed % 6]
    n_clusters = 1 + seed % 7
    centres = torch.rand(n_clusters, 2, generator=g) * 300
    sizes = 8 + torch.rand(n_clusters, 2, generator=g) * 60
    which = torch.randint(n_clusters, (n,), generator=g)
    lone = torch.rand(n, generator=g) < 0.2
    centre = centres[which] + 0.2 * sizes[which] * torch.randn(n, 2, generator=g)
    centre = torch.where(lone[:, None], torch.rand(n, 2, generator=g) * 300, centre)
    size = sizes[which] * (1 + 0.2 * torch.randn(n, 2, generator=g)).clamp(min=0.3)
    boxes = convert_boxes(torch.cat((centre, size), dim=1), "cxcywh")
    scores = torch.rand(n, generator=g)
    if ties:
        scores = torch.randint(1, 6, (n,), generator=g) / 5
    return boxes.float(), scores.float()


def close(actual: torch.Tensor, expected: list, atol: float = 1e-4) -> None:
    want = torch.tensor(expected, dtype=torch.float64).reshape(actual.shape)
    torch.testing.assert_close(actual.double(), want, rtol=1e-5, atol=atol)


# --- reference comparisons ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_nms_matches_reference(seed: int) -> None:
    boxes, scores = random_case(seed)
    thr = THRESHOLDS[seed % 4]
    keep = nms(boxes, scores, thr)
    assert keep.dtype == torch.int64
    assert keep.tolist() == ref_nms(boxes.tolist(), scores.tolist(), thr)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("method", ["linear", "gaussian"])
@pytest.mark.parametrize("seed", SEEDS)
def test_soft_nms_matches_reference(seed: int, method: str, ties: bool) -> None:
    boxes, scores = random_case(seed, ties)
    thr, sigma = THRESHOLDS[seed % 4], (0.5, 0.3, 1.0)[seed % 3]
    score_thr = (0.001, 0.1, 0.3)[seed % 3]
    keep, new_scores = soft_nms(boxes, scores, thr, sigma, method, score_thr)
    ref_keep, ref_scores = ref_soft_nms(
        boxes.tolist(), scores.tolist(), thr, sigma, method, score_thr
    )
    assert keep.dtype == torch.int64
    assert new_scores.dtype == torch.float32
    assert keep.tolist() == ref_keep
    close(new_scores, ref_scores, atol=1e-6)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_box_voting_matches_reference(seed: int, ties: bool) -> None:
    boxes, scores = random_case(seed, ties)
    thr = THRESHOLDS[seed % 4]
    keep, voted, voted_scores = box_voting(boxes, scores, thr)
    ref_keep, ref_voted, ref_scores = ref_box_voting(boxes.tolist(), scores.tolist(), thr)
    assert keep.dtype == torch.int64
    assert keep.tolist() == ref_keep
    close(voted, ref_voted)
    assert voted_scores.tolist() == ref_scores  # the max is a copy, not a computation


def grid_case(seed: int, n: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """Many boxes on an integer grid: duplicates, IoUs exactly at the thresholds, tied scores.

    Integer corners and sizes make every IoU a ratio of small integers, which float32 and the
    reference's float64 round alike, so exact threshold ties are decided the same way.
    """
    g = torch.Generator().manual_seed(seed)
    corner = torch.randint(0, 80, (n, 2), generator=g)
    size = torch.tensor([4, 5, 8, 10, 20])[torch.randint(5, (n, 2), generator=g)]
    boxes = torch.cat((corner, corner + size), dim=1).float()
    boxes[n // 2 :: 5] = boxes[: n // 10]  # exact duplicates, later in row order
    scores = torch.randint(0, 8, (n,), generator=g) / 8  # zeros included
    return boxes, scores.float()


@pytest.mark.parametrize(("seed", "thr", "min_size"), [(0, 0.4, 1), (1, 0.5, 2)])
def test_box_voting_matches_reference_on_many_ties(seed: int, thr: float, min_size: int) -> None:
    boxes, scores = grid_case(seed)
    assert (box_iou(boxes, boxes) == thr).sum() > 200  # the ties this test is about
    keep, voted, voted_scores = box_voting(boxes, scores, thr, min_cluster_size=min_size)
    ref = ref_box_voting(boxes.tolist(), scores.tolist(), thr, min_size)
    assert keep.tolist() == ref[0]
    close(voted, ref[1])
    assert voted_scores.tolist() == ref[2]


def ref_soft_nms_one_at_a_time(
    boxes: torch.Tensor, scores: torch.Tensor, thr: float, sigma: float, method: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-NMS one pick at a time over every box, in float32 like :func:`soft_nms`.

    The float32 arithmetic decides exact ties the same way, where the float64 reference may
    not (e.g. a decayed 0.375 * (1 - 2/3) against an untouched 0.125).
    """
    current, alive, keep = scores.clone(), scores >= 0.001, []
    while alive.any():
        remaining = alive.nonzero().flatten()
        pick = int(remaining[current[remaining].argmax()])
        keep.append(pick)
        alive[pick] = False
        iou = box_iou(boxes[pick : pick + 1], boxes)[0].nan_to_num(0.0)
        if method == "linear":
            decay = torch.where(iou > thr, 1.0 - iou, 1.0)
        else:
            decay = torch.exp(-(iou * iou) / sigma)
        current = torch.where(alive, current * decay, current)
        alive &= current >= 0.001
    return torch.tensor(keep, dtype=torch.int64), current[keep]


@pytest.mark.parametrize("method", ["linear", "gaussian"])
@pytest.mark.parametrize("seed", [0, 4])
def test_soft_nms_matches_one_at_a_time_on_many_ties(seed: int, method: str) -> None:
    boxes, scores = grid_case(seed, 1000)
    keep, new_scores = soft_nms(boxes, scores, 0.4, 0.5, method)
    ref_keep, ref_scores = ref_soft_nms_one_at_a_time(boxes, scores, 0.4, 0.5, method)
    assert keep.tolist() == ref_keep.tolist()
    torch.testing.assert_close(new_scores, ref_scores, rtol=1e-6, atol=1e-7)


def test_soft_nms_equal_scores_beyond_one_batch_keep_row_order() -> None:
    # 200 disjoint boxes with two score levels: picks go by score, then row, across batches.
    corners = torch.arange(200.0)[:, None] * 20
    boxes = torch.cat((corners, corners, corners + 10, corners + 10), dim=1)
    scores = torch.where(torch.arange(200) % 3 == 0, 0.7, 0.5)
    keep, new_scores = soft_nms(boxes, scores)
    assert keep.tolist() == [*range(0, 200, 3), *(i for i in range(200) if i % 3)]
    assert torch.equal(new_scores, scores[keep])


@pytest.mark.parametrize("method", ["vote", "soft_gaussian"])
def test_work_grows_with_overlaps_not_clusters(
    monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    # 1,000 separate clusters of 10 boxes: comparing every cluster top with every box would be
    # 10M IoUs (100M for every soft-NMS pick); only overlapping neighbours should be computed,
    # in bounded chunks.
    sizes: list[int] = []

    def counting_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
        iou = box_iou(boxes1, boxes2)
        sizes.append(iou.numel())
        return iou

    monkeypatch.setattr(crface.ops, "box_iou", counting_box_iou)
    g = torch.Generator().manual_seed(0)
    centres = torch.cartesian_prod(torch.arange(40.0), torch.arange(25.0)) * 30
    centres = centres.repeat(10, 1) + torch.randn(10_000, 2, generator=g)
    boxes = torch.cat((centres - 10, centres + 10), dim=1)
    keep, _, _ = suppress(boxes, torch.rand(10_000, generator=g), method, 0.4)
    if method == "vote":
        assert len(keep) == 1_000
    assert sum(sizes) < 2_000_000
    assert max(sizes) <= crface.ops._MAX_PAIRS


def test_random_cases_actually_suppress() -> None:
    # Guards the generator: the reference comparisons mean little if nothing overlaps.
    for seed in SEEDS:
        boxes, scores = random_case(seed)
        if len(boxes) >= 30:
            assert len(ref_nms(boxes.tolist(), scores.tolist(), 0.4)) < 0.8 * len(boxes)


# --- hand-made cases with known answers ---------------------------------------------------------

A = [0.0, 0.0, 10.0, 10.0]
HALF_A = [0.0, 0.0, 10.0, 5.0]  # IoU 0.5 with A
SHIFT_A = [2.0, 0.0, 12.0, 10.0]  # IoU 8/12 with A
FAR = [50.0, 50.0, 60.0, 70.0]


def t(rows: list) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


@pytest.mark.parametrize(
    ("rows", "scores", "thr", "expected"),
    [
        ([A, HALF_A], [0.9, 0.8], 0.4, [0]),  # IoU 0.5 > 0.4: suppressed
        ([A, HALF_A], [0.9, 0.8], 0.6, [0, 1]),  # IoU 0.5 <= 0.6: kept
        ([A, HALF_A], [0.3, 0.8], 0.4, [1]),  # the higher score wins, whatever the row
        ([A, FAR], [0.2, 0.7], 0.4, [1, 0]),  # disjoint: both, by decreasing score
        ([A, FAR, HALF_A], [0.5, 0.9, 0.7], 0.4, [1, 2]),
        ([A], [0.1], 0.4, [0]),
        ([A, A], [0.8, 0.9], 0.99, [1]),  # identical boxes: IoU 1
    ],
)
def test_nms_known(rows: list, scores: list, thr: float, expected: list) -> None:
    assert nms(t(rows), t(scores), thr).tolist() == expected


def test_nms_identical_boxes_tied_scores_keeps_one() -> None:
    keep = nms(t([A, A, A]), t([0.5, 0.5, 0.5]), 0.4)
    assert len(keep) == 1


@pytest.mark.parametrize(
    ("rows", "scores", "method", "expected_keep", "expected_scores"),
    [
        ([A, HALF_A], [0.9, 0.8], "linear", [0, 1], [0.9, 0.8 * 0.5]),
        ([A, HALF_A], [0.9, 0.8], "gaussian", [0, 1], [0.9, 0.8 * math.exp(-0.25 / 0.5)]),
        ([A, FAR], [0.6, 0.7], "linear", [1, 0], [0.7, 0.6]),
        ([A, FAR], [0.6, 0.7], "gaussian", [1, 0], [0.7, 0.6]),
        ([A, A], [0.9, 0.8], "linear", [0], [0.9]),  # 1 - IoU = 0: dropped
        ([A, A], [0.9, 0.8], "gaussian", [0, 1], [0.9, 0.8 * math.exp(-2.0)]),
        # the decayed box falls behind an untouched lower one
        ([A, SHIFT_A, FAR], [0.9, 0.8, 0.5], "linear", [0, 2, 1], [0.9, 0.5, 0.8 / 3]),
        ([A], [0.0005], "linear", [], []),  # below score_threshold from the start
    ],
)
def test_soft_nms_known(
    rows: list, scores: list, method: str, expected_keep: list, expected_scores: list
) -> None:
    keep, new_scores = soft_nms(t(rows), t(scores), 0.3, 0.5, method)
    assert keep.tolist() == expected_keep
    close(new_scores, expected_scores, atol=1e-6)


def test_soft_nms_linear_threshold_is_strict() -> None:
    # IoU 0.5 is not above 0.5: no decay.
    _, new_scores = soft_nms(t([A, HALF_A]), t([0.9, 0.8]), iou_threshold=0.5)
    close(new_scores, [0.9, 0.8], atol=0)


def test_soft_nms_tied_scores_pick_lowest_row_first() -> None:
    keep, new_scores = soft_nms(t([FAR, A, HALF_A]), t([0.5, 0.5, 0.5]))
    assert keep.tolist() == [0, 1, 2]
    close(new_scores, [0.5, 0.5, 0.25], atol=1e-7)


def test_box_voting_merges_a_cluster() -> None:
    keep, voted, voted_scores = box_voting(t([SHIFT_A, A, FAR]), t([0.2, 0.6, 0.5]), 0.4)
    assert keep.tolist() == [1, 2]
    close(voted, [[0.5, 0.0, 10.5, 10.0], FAR])
    assert voted_scores.tolist() == pytest.approx([0.6, 0.5])


def test_box_voting_merges_only_clusters_holding_a_merge_row() -> None:
    boxes, scores = t([SHIFT_A, A, FAR]), t([0.2, 0.6, 0.5])
    _, plain, _ = box_voting(boxes, scores, 0.4, merge=torch.tensor([False, False, True]))
    close(plain, [A, FAR])  # A's cluster holds no merge row: its top box stands, as nms keeps it
    _, merged, _ = box_voting(boxes, scores, 0.4, merge=torch.tensor([True, False, False]))
    close(merged, [[0.5, 0.0, 10.5, 10.0], FAR])
    with pytest.raises(TypeError, match="merge must be a bool"):
        box_voting(boxes, scores, merge=torch.ones(3))
    with pytest.raises(ValueError, match=r"merge must have shape \[3\]"):
        box_voting(boxes, scores, merge=torch.ones(2, dtype=torch.bool))


def test_box_voting_threshold_is_inclusive() -> None:
    _, voted, _ = box_voting(t([A, HALF_A]), t([0.5, 0.5]), iou_threshold=0.5)
    close(voted, [[0.0, 0.0, 10.0, 7.5]])


def test_box_voting_identical_boxes() -> None:
    keep, voted, voted_scores = box_voting(t([A, A, A]), t([0.3, 0.9, 0.9]))
    assert keep.tolist() == [1]  # tie for the top: the lower row
    assert voted.tolist() == [A]
    assert voted_scores.tolist() == pytest.approx([0.9])


def test_box_voting_keeps_singletons_bit_for_bit() -> None:
    boxes = t([[0.1, 0.7, 13.3, 19.9], [101.3, 7.1, 133.7, 50.3], [200.9, 0.3, 230.1, 44.4]])
    scores = t([0.37, 0.91, 0.13])
    keep, voted, voted_scores = box_voting(boxes, scores)
    assert keep.tolist() == [1, 0, 2]
    assert torch.equal(voted, boxes[keep])
    assert torch.equal(voted_scores, scores[keep])


def test_box_voting_all_zero_scores_takes_plain_mean() -> None:
    _, voted, voted_scores = box_voting(t([A, SHIFT_A]), t([0.0, 0.0]))
    close(voted, [[1.0, 0.0, 11.0, 10.0]])
    assert voted_scores.tolist() == [0.0]


def test_degenerate_boxes_do_not_overlap() -> None:
    # Two zero-area boxes: IoU is 0/0, counted as 0 (as torchvision's nms does), not NaN.
    dot = [5.0, 5.0, 5.0, 5.0]
    keep, new_scores = soft_nms(t([dot, dot]), t([0.9, 0.8]), method="gaussian")
    assert keep.tolist() == [0, 1]
    close(new_scores, [0.9, 0.8], atol=0)
    assert box_voting(t([dot, dot]), t([0.9, 0.8]))[0].tolist() == [0, 1]
    assert nms(t([dot, dot]), t([0.9, 0.8])).tolist() == [0, 1]


# --- empty input and output types ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["hard", "soft", "soft_gaussian", "vote", None])
def test_empty_input(method: str | None) -> None:
    keep, boxes, scores = suppress(torch.zeros(0, 4), torch.zeros(0), method)
    assert (keep.shape, keep.dtype) == ((0,), torch.int64)
    assert (boxes.shape, boxes.dtype) == ((0, 4), torch.float32)
    assert (scores.shape, scores.dtype) == ((0,), torch.float32)


def test_empty_input_primitives() -> None:
    boxes, scores = torch.zeros(0, 4), torch.zeros(0)
    assert nms(boxes, scores).shape == (0,)
    keep, new_scores = soft_nms(boxes, scores)
    assert (keep.dtype, new_scores.dtype, new_scores.shape) == (torch.int64, torch.float32, (0,))
    keep, voted, voted_scores = box_voting(boxes, scores)
    assert (keep.dtype, voted.shape, voted_scores.shape) == (torch.int64, (0, 4), (0,))


def test_inputs_are_not_modified() -> None:
    boxes, scores = random_case(4)
    before = (boxes.clone(), scores.clone())
    for method in ("hard", "soft", "soft_gaussian", "vote", None):
        suppress(boxes, scores, method)
    assert torch.equal(boxes, before[0])
    assert torch.equal(scores, before[1])


# --- suppress dispatch --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [4, 10, 11])
def test_suppress_dispatch(seed: int) -> None:
    boxes, scores = random_case(seed)
    keep, out_boxes, out_scores = suppress(boxes, scores, "hard", 0.5)
    assert torch.equal(keep, nms(boxes, scores, 0.5))
    assert torch.equal(out_boxes, boxes[keep])
    assert torch.equal(out_scores, scores[keep])

    for method, soft_method in (("soft", "linear"), ("soft_gaussian", "gaussian")):
        keep, out_boxes, out_scores = suppress(boxes, scores, method, 0.5, sigma=0.7)
        want_keep, want_scores = soft_nms(boxes, scores, 0.5, sigma=0.7, method=soft_method)
        assert torch.equal(keep, want_keep)
        assert torch.equal(out_boxes, boxes[keep])
        assert torch.equal(out_scores, want_scores)

    got = suppress(boxes, scores, "vote", 0.5)
    for a, b in zip(got, box_voting(boxes, scores, 0.5), strict=True):
        assert torch.equal(a, b)

    keep, out_boxes, out_scores = suppress(boxes, scores, None)
    assert sorted(keep.tolist()) == list(range(len(boxes)))
    assert torch.equal(out_boxes, boxes[keep])
    assert out_scores.tolist() == sorted(scores.tolist(), reverse=True)


def test_suppress_none_ties_keep_row_order() -> None:
    keep, _, _ = suppress(t([A, FAR, HALF_A]), t([0.5, 0.9, 0.5]), None)
    assert keep.tolist() == [1, 0, 2]


@pytest.mark.parametrize("method", ["nms", "Hard", "soft_linear", ""])
def test_suppress_unknown_method(method: str) -> None:
    with pytest.raises(ValueError, match=r"unknown suppression method.*'hard'.*'vote'.*None"):
        suppress(t([A]), t([0.5]), method)


@pytest.mark.parametrize("method", ["hard", "soft", "soft_gaussian", "vote", None])
@pytest.mark.parametrize("thr", [-0.1, 1.5, float("nan")])
def test_suppress_bad_iou_threshold(method: str | None, thr: float) -> None:
    with pytest.raises(ValueError, match=rf"iou_threshold.*{thr}"):
        suppress(t([A]), t([0.5]), method, iou_threshold=thr)


@pytest.mark.parametrize("thr", [0.0, 1.0])
def test_suppress_iou_threshold_bounds_are_valid(thr: float) -> None:
    for method in ("hard", "soft", "soft_gaussian", "vote", None):
        suppress(t([A, HALF_A]), t([0.5, 0.4]), method, iou_threshold=thr)


@pytest.mark.parametrize("method", ["hard", "vote", None])
def test_suppress_rejects_foreign_kwargs(method: str | None) -> None:
    with pytest.raises(TypeError):
        suppress(t([A]), t([0.5]), method, sigma=0.5)


def test_soft_nms_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"unknown soft-NMS method 'box'.*'linear'"):
        soft_nms(t([A]), t([0.5]), method="box")
    with pytest.raises(ValueError, match="sigma must be > 0, got 0"):
        soft_nms(t([A]), t([0.5]), sigma=0.0)


@pytest.mark.parametrize(
    ("boxes", "scores", "error", "match"),
    [
        (torch.zeros(3, 5), torch.zeros(3), ValueError, r"shape \[N, 4\], got \[3, 5\]"),
        (torch.zeros(4), torch.zeros(1), ValueError, r"shape \[N, 4\], got \[4\]"),
        (torch.zeros(3, 4), torch.zeros(2), ValueError, r"shape \[3\].*got \[2\]"),
        (torch.zeros(3, 4), torch.zeros(3, 1), ValueError, r"shape \[3\].*got \[3, 1\]"),
        (torch.zeros(3, 4, dtype=torch.int64), torch.zeros(3), TypeError, "torch.int64"),
        (torch.zeros(3, 4), torch.zeros(3, dtype=torch.float64), TypeError, "torch.float64"),
        ([[0.0, 0, 1, 1]], torch.zeros(1), TypeError, "got list"),
    ],
)
def test_bad_inputs(boxes: torch.Tensor, scores: torch.Tensor, error: type, match: str) -> None:
    for fn in (nms, soft_nms, box_voting, suppress):
        with pytest.raises(error, match=match):
            fn(boxes, scores)


# --- properties (hypothesis) --------------------------------------------------------------------

coord = st.floats(0, 100, allow_nan=False, width=32)
box_rows = st.lists(
    st.tuples(coord, coord, st.floats(1, 40, width=32), st.floats(1, 40, width=32)),
    max_size=25,
)


def xywh_case(rows: list, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    boxes = convert_boxes(torch.tensor(rows, dtype=torch.float32).reshape(-1, 4), "xywh")
    return boxes, torch.rand(len(rows), generator=torch.Generator().manual_seed(seed))


@settings(max_examples=60, deadline=None)
@given(rows=box_rows, seed=st.integers(0, 2**16), thr=st.sampled_from(THRESHOLDS))
def test_suppression_invariants(rows: list, seed: int, thr: float) -> None:
    boxes, scores = xywh_case(rows, seed)
    for method in ("hard", "soft", "soft_gaussian", "vote"):
        keep, _, out_scores = suppress(boxes, scores, method, thr)
        assert len(set(keep.tolist())) == len(keep)  # no row twice
        assert torch.all(out_scores[1:] <= out_scores[:-1])  # sorted by decreasing score
        assert torch.all(out_scores <= scores[keep])  # suppression never raises a score


@settings(max_examples=60, deadline=None)
@given(rows=box_rows, seed=st.integers(0, 2**16))
def test_voted_boxes_stay_inside_their_cluster_hull(rows: list, seed: int) -> None:
    boxes, scores = xywh_case(rows, seed)
    keep, voted, _ = box_voting(boxes, scores, 0.3)
    for top, box in zip(keep.tolist(), voted, strict=True):
        # Every cluster member overlaps its top box by >= 0.3 (earlier clusters may take some).
        near = boxes[
            (box_iou(boxes[top : top + 1], boxes)[0] >= 0.3) | (torch.arange(len(boxes)) == top)
        ]
        assert torch.all(box >= near.min(dim=0).values - 1e-3)
        assert torch.all(box <= near.max(dim=0).values + 1e-3)


# --- convert_boxes and oracle_confidence --------------------------------------------------------

FORMATS = ("xyxy", "xywh", "cxcywh")


@pytest.mark.parametrize("fmt_a", FORMATS)
@pytest.mark.parametrize("fmt_b", FORMATS)
def test_convert_boxes_round_trip(fmt_a: str, fmt_b: str) -> None:
    boxes, _ = random_case(5)
    there = convert_boxes(convert_boxes(boxes, "xyxy", fmt_a), fmt_a, fmt_b)
    back = convert_boxes(convert_boxes(there, fmt_b, fmt_a), fmt_a, "xyxy")
    torch.testing.assert_close(back, boxes, rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    ("row", "in_fmt", "out_fmt", "expected"),
    [
        ([10, 20, 5, 8], "xywh", "xyxy", [10, 20, 15, 28]),
        ([10, 20, 15, 28], "xyxy", "xywh", [10, 20, 5, 8]),
        ([10, 20, 4, 8], "cxcywh", "xyxy", [8, 16, 12, 24]),
        ([8, 16, 12, 24], "xyxy", "cxcywh", [10, 20, 4, 8]),
        ([10, 20, 4, 8], "xywh", "cxcywh", [12, 24, 4, 8]),
        ([1, 2, 3, 4], "xyxy", "xyxy", [1, 2, 3, 4]),
    ],
)
def test_convert_boxes_known(row: list, in_fmt: str, out_fmt: str, expected: list) -> None:
    assert convert_boxes(t([row]), in_fmt, out_fmt).tolist() == [expected]


def test_convert_boxes_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown box format 'ltrb'"):
        convert_boxes(t([A]), "ltrb")
    with pytest.raises(ValueError, match="unknown box format 'yxyx'"):
        convert_boxes(t([A]), "xyxy", "yxyx")


def test_box_iou_has_no_plus_one() -> None:
    assert box_iou(t([A]), t([HALF_A])).item() == pytest.approx(0.5)
    assert box_iou(t([A]), t([[10.0, 0, 20, 10]])).item() == 0.0  # touching edges


@pytest.mark.parametrize(
    ("rows", "gt", "expected"),
    [
        ([A], [A], [1.0]),
        ([A], [HALF_A], [0.5]),
        ([A, FAR], [FAR], [0.0, 1.0]),
        ([A], [FAR, HALF_A, SHIFT_A], [8 / 12]),  # the closest ground truth counts
        ([A, FAR], [], [0.0, 0.0]),  # no ground truth
        ([], [A], []),
    ],
)
def test_oracle_confidence(rows: list, gt: list, expected: list) -> None:
    got = oracle_confidence(t(rows).reshape(-1, 4), t(gt).reshape(-1, 4))
    assert got.shape == (len(rows),)
    close(got, expected, atol=1e-6)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(crface.ops)
    assert result.attempted > 0
    assert result.failed == 0


# --- CUDA ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
@pytest.mark.parametrize("method", ["hard", "soft", "soft_gaussian", "vote", None])
def test_cuda_matches_cpu(method: str | None) -> None:
    for seed in (4, 10, 11, 16, 17):
        boxes, scores = random_case(seed)
        cpu = suppress(boxes, scores, method)
        gpu = suppress(boxes.cuda(), scores.cuda(), method)
        assert all(x.is_cuda for x in gpu)
        assert torch.equal(gpu[0].cpu(), cpu[0])
        for a, b in zip(gpu[1:], cpu[1:], strict=True):
            torch.testing.assert_close(a.cpu(), b, rtol=1e-5, atol=1e-4)


def ref_nms_clusters(boxes: list[Box], scores: list[float], thr: float) -> list[int]:
    """Greedy: in score order, an unclaimed box is kept and claims every unclaimed overlap."""
    top = [-1] * len(boxes)
    for i in ref_by_score(scores):
        if top[i] >= 0:
            continue
        top[i] = i
        for j in ref_by_score(scores):
            if top[j] < 0 and ref_iou(boxes[i], boxes[j]) >= thr:
                top[j] = i
    return top


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS[:20])
def test_nms_clusters_matches_reference(seed: int, ties: bool) -> None:
    boxes, scores = random_case(seed, ties)
    thr = THRESHOLDS[seed % 4]
    got = nms_clusters(boxes, scores, thr)
    assert got.tolist() == ref_nms_clusters(boxes.tolist(), scores.tolist(), thr)
    assert sorted(set(got.tolist())) == sorted(box_voting(boxes, scores, thr)[0].tolist())
