"""benchmarks/zoom.py's choice of zoom settings, on hand-made runs."""

from __future__ import annotations

import pytest

from tests.helpers import load_script

bench = load_script("benchmarks/zoom.py")
SINGLE = {"all": 0.5, "medium": 0.8, "large": 0.9}


def run(fusion: str, ap_all: float, large: float = 0.9, area: float = 0.2) -> dict:
    ap = {"all": ap_all, "medium": 0.8, "large": large}
    return {"opts": {"fusion": fusion, "weight": ap_all}, "ap": ap, "area": area}


@pytest.mark.parametrize(
    ("runs", "fusion"),
    [
        # within the tie: the fusion that keeps more of the first pass
        ([run("vote", 0.6), run("vote_zoomed", 0.5995), run("nms", 0.58)], "vote_zoomed"),
        ([run("vote", 0.6), run("vote_zoomed", 0.5995), run("nms", 0.5992)], "nms"),
        # beyond it, the better AP
        ([run("vote", 0.6), run("vote_zoomed", 0.598)], "vote"),
        # inadmissible runs never win: large faces below single scale, or too much area
        ([run("vote", 0.7, large=0.89), run("vote_zoomed", 0.6)], "vote_zoomed"),
        ([run("vote", 0.7, area=0.5), run("nms", 0.6)], "nms"),
    ],
)
def test_best_breaks_ties_by_the_cautious_fusion(runs, fusion) -> None:
    assert bench.best([runs], [SINGLE])["fusion"] == fusion


def test_best_prefers_voting_for_a_runner_that_voting_helps() -> None:
    runs = [run("vote", 0.5993), run("vote_zoomed", 0.5999), run("nms", 0.6)]
    assert bench.best([runs], [SINGLE])["fusion"] == "nms"
    assert bench.best([runs], [SINGLE], prefer_vote=True)["fusion"] == "vote"
    sizes = {"small": 0.3, "medium": 0.8, "large": 0.9}
    worse = {**sizes, "large": 0.899}
    assert bench.voting_helps({"single": sizes, "single_vote": {**sizes, "small": 0.31}})
    assert not bench.voting_helps({"single": sizes, "single_vote": {**worse, "small": 0.4}})


def test_best_among_tied_fusions_takes_the_containment_gate() -> None:
    gated = run("vote_zoomed", 0.5992)
    gated["opts"]["host_score"] = 0.5
    runs = [run("vote", 0.6), run("vote_zoomed", 0.5999), gated]
    assert bench.best([runs], [SINGLE])["host_score"] == 0.5  # tied: fewer zoomed boxes added
    gated["ap"]["all"] = 0.598  # beyond the tie
    assert "host_score" not in bench.best([runs], [SINGLE])


def test_best_among_ties_takes_the_higher_mean_and_needs_every_runner() -> None:
    a = [run("vote_zoomed", 0.5995), run("vote_zoomed", 0.5999), run("vote", 0.6)]
    assert bench.best([a], [SINGLE])["weight"] == 0.5999
    b = [run("vote_zoomed", 0.6), run("vote_zoomed", 0.6, large=0.0), run("vote", 0.6)]
    assert bench.best([a, b], [SINGLE, SINGLE])["weight"] == 0.5995  # run 1 fails runner b
    assert bench.best([[run("vote", 0.7, area=0.9)]], [SINGLE]) is None


def test_run_settings_measures_only_what_an_earlier_tune_did_not(monkeypatch) -> None:
    from types import SimpleNamespace

    measured = []

    def fake(passes, sizes, dataset, opts):
        measured.append(opts)
        return {"opts": opts, "ap": "new"}

    monkeypatch.setattr(bench, "run_setting", fake)
    photos = [SimpleNamespace(name="a.jpg", image_size=(10, 20))]
    runs = bench.RunSettings({}, photos, reuse=[{"opts": {"weight": 0.7}, "ap": "old"}])
    out = runs([{"weight": 0.7}, {"weight": 0.9}])
    assert [r["ap"] for r in out] == ["old", "new"] and measured == [{"weight": 0.9}]
    assert runs([{"weight": 0.9}])[0]["ap"] == "new" and len(measured) == 1  # measured once


def test_other_table_shows_the_held_out_fold_in_brackets() -> None:
    def res(ap: float, held: float | None) -> dict:
        return {"ap": {"all": ap}, **({} if held is None else {"ap_held_out": {"all": held}})}

    result = {
        "runners": {"toy": {"test": {}, "a": {"single": res(0.5, 0.6), "zoom_1": res(0.7, 0.65)}}}
    }
    assert "| toy | a | 50.0 (60.0) | 70.0 (65.0) |" in bench.other_table(result)
    result["runners"]["toy"]["a"] = {"single": res(0.5, None), "zoom_1": res(0.7, None)}
    assert "| toy | a | 50.0 | 70.0 |" in bench.other_table(result)  # older JSONs
