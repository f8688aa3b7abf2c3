"""Facts in the docs, generated from the shipped files so that they cannot drift.

    .venv/bin/python tools/doc_facts.py          # rewrite every marked block in README.md, docs/
    .venv/bin/python tools/doc_facts.py --check  # list stale blocks, exit 1 (tests/test_docs.py)

A marked block is ``<!-- facts:NAME -->...<!-- /facts -->``, inline (one number in a sentence) or
around lines (a table); NAME is a key of :data:`FACTS`. The text between the markers is replaced by
what ``FACTS[NAME]()`` computes from the shipped weights' config (``crface/assets/*.pt``) and the
measured results (``results/*.json``). Write the numbers outside backticks: a marker inside a code
span would show literally.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = re.compile(r"<!-- facts:([\w.-]+) -->(.*?)<!-- /facts -->", re.DOTALL)
SETTINGS = ("easy", "medium", "hard")
# The results JSON (benchmarks/results.py --cv ...) of each shipped model's setting.
CV_RESULTS = {
    "crface-small-416": "results_cv_small_logit.json",
    "crface-boxes": "results_cv_small_rows.json",
}
COST = "results_cost_models.json"  # both 416 px models timed side by side
COST_NAMES = {"crface-small-416": "crface-small"}  # COST was measured before the rename
FULLRES_COST = "fullres_cost.json"  # benchmarks/fullres.py cost: every model, 1024 px photos
FULLRES_TEST = "fullres_test.json"  # benchmarks/fullres.py test: the shipped crface-small
MODELS = ("crface-small", "crface-small-sampling2", "crface-small-416", "crface-boxes")
HIRES = "hires_table.json"  # benchmarks/hires.py table: the paper's Table 4 on upscaled photos
HIRES_SELECT = "hires_rank8k_select.json"  # fullres.py select --scale 7.5 of the rank 8k run
ZOOM = "zoom.json"  # benchmarks/zoom.py test: zoom against single, full 2x and multi-scale
ZOOM_DEFAULT = "zoom_1"  # the budget crface.zoom uses by default (all the cells holding seeds)


@functools.cache
def results(name: str) -> dict[str, Any]:
    """``results/<name>`` parsed."""
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


@functools.cache
def _script(name: str = "results") -> ModuleType:
    """``benchmarks/<name>.py``, whose markdown tables the pages carry verbatim."""
    spec = importlib.util.spec_from_file_location(f"_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def _weights(name: str) -> tuple[Any, dict[str, Any]]:
    """``(config, metadata)`` stored in the registered weights ``name``."""
    from crface.weights import load_weights, resolve

    cfg, _, meta = load_weights(resolve(name))
    return cfg, meta


def config(weights: str) -> Any:
    """The :class:`crface.RankerConfig` stored in the registered ``weights``."""
    return _weights(weights)[0]


def signed(x: float) -> str:
    """``x`` AP points with a sign and one decimal; ``0.0`` without one."""
    s = f"{x:+.1f}"
    return "0.0" if s in ("+0.0", "-0.0") else s


def span(values: list[float]) -> str:
    """``"+0.3 to +0.9"``: the range of ``values``, AP fractions shown in points."""
    lo, hi = signed(100 * min(values)), signed(100 * max(values))
    return lo if lo == hi else f"{lo} to {hi}"


def cost_ms(key: str) -> float:
    """A median from :data:`COST`: ``single``, ``multi`` or ``<weights> <backend>`` (the rerank
    alone: single + rerank minus single)."""
    ms = results(COST)["timing"]["median_ms"]
    name, _, backend = key.partition(" ")
    key = f"{COST_NAMES.get(name, name)} {backend}" if backend else key
    return ms[key] if key in ms else ms[f"single_rerank_{key}"] - ms["single"]


def fullres_ms(key: str) -> float:
    """A median on the photos' own size from :data:`FULLRES_COST`: ``detector`` or
    ``<weights> <backend>`` (the rerank alone)."""
    return results(FULLRES_COST)["median_ms"][f"native {key}"]


def fullres_ratio(key: str, size: str = "native") -> float:
    """``<weights> <backend>``'s rerank time over RetinaFace's, at ``size`` (``"native"``,
    ``"640px-wide"``, ``"3840px-wide"``), from :data:`FULLRES_COST`."""
    ms = results(FULLRES_COST)["median_ms"]
    return ms[f"{size} {key}"] / ms[f"{size} detector"]


def fullres_gains(sets: list[str], setting: str) -> list[float]:
    """The shipped ranker's AP changes (``setting``: ``"all"``, ``"hard"``, ...) per detector on
    ``sets`` of :data:`FULLRES_TEST`."""
    test = results(FULLRES_TEST)["sets"]
    return [_gain(r, setting) for name in sets for r in test[name]["detectors"].values()]


def _gain(row: dict, setting: str, method: str = "rerank") -> float:
    """AP change of ``method`` (a test row's ``"rerank"`` or ``"single_vote"``) over single scale."""
    return row[method]["ap"][setting] - row["single"]["ap"][setting]


def _test_row(dataset: str, detector: str) -> dict:
    return results(FULLRES_TEST)["sets"][dataset]["detectors"][detector]


def other_gains() -> list[float]:
    """AP "all" changes of the shipped ranker on the sets unlike WIDER (:data:`FULLRES_TEST`)."""
    sets = results(FULLRES_TEST)["sets"]
    return fullres_gains([n for n in sets if n not in ("wider_val_fullres", "wider_val200")], "all")


def measured_table() -> str:
    """The front page's table: what the shipped ranker measurably does on full-resolution WIDER
    val (tested once), next to zoom and multi-scale testing for the same runners."""
    test = results(FULLRES_TEST)["sets"]
    rows = test["wider_val_fullres"]["detectors"]

    def gains(trained: bool, method: str = "rerank") -> tuple[list[str], dict[str, list[float]]]:
        dets = [d for d, r in rows.items() if r["trained_on"] == trained]
        return dets, {k: [_gain(rows[d], k, method) for d in dets] for k in SETTINGS}

    def versus(method: str, dets: list[str]) -> dict[str, list[float]]:
        zoom = results(ZOOM)["runners"]
        ap = {d: zoom[d]["test"] for d in dets}
        return {
            k: [ap[d][method]["ap"][k] - ap[d]["single"]["ap"][k] for d in dets] for k in SETTINGS
        }

    trained, seen = gains(True)
    held, unseen = gains(False)
    table = [
        (f"`crface-small`, the {len(trained)} detectors it was trained with", seen),
        (f"`crface-small`, {len(held)} detectors kept out of training", unseen),
        (
            f"for comparison: box voting alone, no ranker, the {len(trained)} trained detectors",
            gains(True, "single_vote")[1],
        ),
        (
            f"for comparison: zoom (default budget), the {len(trained)} trained detectors",
            versus(ZOOM_DEFAULT, trained),
        ),
        (
            f"for comparison: multi-scale + flip + voting, the same {len(trained)}",
            versus("multi", trained),
        ),
    ]
    other = other_gains()
    hard200 = fullres_gains(["wider_val200"], "hard")
    return "\n".join(
        [
            "| AP change in points over single scale with hard NMS, wider_val_fullres (official protocol; strengths and suppression chosen on wider_train) | Easy | Medium | Hard |",
            "|---|---|---|---|",
            *(
                f"| {what} | " + " | ".join(span(g[k]) for k in SETTINGS) + " |"
                for what, g in table
            ),
            "",
            f"On wider_val200 (416 px copies) Hard changes by {span(hard200)}; on the unseen fifth of "
            f'two other face sets (masks, grey-scale) AP "all" by {span(other)}. Reranking adds '
            f"{fullres_ms('crface-small torch'):.0f} ms (torch) / "
            f"{fullres_ms('crface-small onnxruntime'):.0f} ms (onnxruntime) to a "
            f"{fullres_ms('detector'):.0f} ms RetinaFace run on a 1024 px photo (one thread, "
            f"medians of {results(FULLRES_COST)['images']} photos).",
        ]
    )


def cost_table() -> str:
    """The README's speed table: every registered model next to the detector, 1024 px photos."""
    res = results(FULLRES_COST)
    # Research rows (a run's weights file, not a registered name) stay on docs/fullres.md.
    shown = {k: v for k, v in res["median_ms"].items() if k.split(" ")[1] in (*MODELS, "detector")}
    return _script("fullres").cost_table({**res, "median_ms": shown})


def sweep_table() -> str:
    """``results/bench_rerank.json`` (``benchmarks/bench_rerank.py``): the architecture at other
    working sizes and capacities."""
    rows = []
    for r in sorted(results("bench_rerank.json"), key=lambda r: r["variant"].startswith("rerank")):
        m = re.fullmatch(r"rerank (\w+)-(\w+) S=(\d+) N=(\d+)", r["variant"])
        what, size, n = (f"ranker, {m[1]} {m[2]}", m[3], m[4]) if m else (r["variant"], "-", "-")
        rows.append(
            f"| {what} | {size} | {n} | {r['median_ms']:.0f} | {r['ratio_to_detector']:.1f}x |"
        )
    return "\n".join(
        [
            "| variant | working size S | candidates N | median ms | vs the detector |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )


def detail_px() -> str:
    """The box size under which pictures draw no landmarks or score label."""
    from crface.types import DETAIL_PX

    return f"{DETAIL_PX:g}"


def results_section(name: str) -> Callable[[], str]:
    """The tables ``benchmarks/results.py`` prints for ``results/<name>``."""
    return lambda: _script().markdown(results(name)).rstrip()


def _model_facts() -> dict[str, Callable[[], str]]:
    facts: dict[str, Callable[[], str]] = {
        "fullres.detector_ms": lambda: f"{fullres_ms('detector'):.0f}"
    }
    for w in MODELS:
        facts[f"{w}.N"] = lambda w=w: str(config(w).num_boxes)
        facts[f"{w}.S"] = lambda w=w: str(config(w).image_size)
        facts[f"{w}.default_strength"] = lambda w=w: f"{_weights(w)[1]['strength']['default']:g}"
        facts[f"{w}.voting"] = lambda w=w: _voting(_weights(w)[1])
        for b in ("torch", "onnxruntime"):
            facts[f"fullres.{w}.{b}_ms"] = lambda w=w, b=b: f"{fullres_ms(f'{w} {b}'):.0f}"
            for size in ("native", "640px-wide"):
                facts[f"fullres.{size}.{w}.{b}_x"] = lambda w=w, b=b, size=size: (
                    f"{fullres_ratio(f'{w} {b}', size):.2f}x"
                )
    for w in CV_RESULTS:  # the 416 px models, on wider_val200's 416 px photos
        for b in ("torch", "onnxruntime"):
            facts[f"{w}.{b}_ms"] = lambda w=w, b=b: f"{cost_ms(f'{w} {b}'):.0f}"
            facts[f"{w}.{b}_speedup"] = lambda w=w, b=b: (
                f"{results(COST)['timing']['multi_over_rerank'][f'{COST_NAMES.get(w, w)} {b}']:.1f}x"
            )
    return facts


def zoom_claim() -> str:
    """One sentence: the default zoom's Hard gain and time share of a full 2x pass, per runner."""
    rows = results(ZOOM)["runners"]
    gains, shares = [], []
    for row in rows.values():
        test = row["test"]
        gains.append(test[ZOOM_DEFAULT]["ap"]["hard"] - test["single"]["ap"]["hard"])
        shares.append(test[ZOOM_DEFAULT]["ms"] / test["full_2x"]["ms"])
    return (
        f"{span(gains)} Hard AP for the {len(rows)} detectors measured ({', '.join(rows)}) on "
        f"full-resolution WIDER val, at {min(shares):.0%} to {max(shares):.0%} of the time of a "
        "full 2x pass"
    )


def _voting(metadata: dict) -> str:
    """The detectors a weights file box-votes for by default (Refiner.nms), as prose."""
    per_det = (metadata.get("nms") or {}).get("per_detector", {})
    voted = [det for det, m in per_det.items() if m == "vote"]
    return ", ".join(f"`{d}`" for d in voted) or "none"


def _fullres_table(name: str) -> str:
    """``benchmarks/fullres.py table`` of ``results/<name>`` (any of its JSON kinds)."""
    return _script("fullres").table([str(RESULTS / name)])


def zoom_settings() -> str:
    """Markdown: the zoom settings tuned on wider_train, per runner and for any other detector."""
    tuned = results("zoom_tune.json")
    rows = [
        "| detector | small | seed_score | weight | keep_below | budget | fusion | host_score |",
        "|---|---|---|---|---|---|---|---|",
    ]
    named = [("any other (`detector=None`)", tuned["chosen"]), *tuned["per_detector"].items()]
    for name, o in named:
        host = "off" if o.get("host_score") is None else f"{o['host_score']:g}"
        rows.append(
            f"| {name} | {o['small']:g} | {o['seed_score']:g} | {o['weight']:g} "
            f"| {o['keep_factor'] * o['small']:g} | {o['budget']:g} | {o['fusion']} | {host} |"
        )
    return "\n".join(rows)


def zoom_chosen() -> str:
    """Per runner, the zoom settings the test ran with (those tuned on wider_train for it)."""
    keys = ("small", "seed_score", "weight", "keep_below")

    def line(o: dict) -> str:
        host = f", host_score={o['host_score']:g}" if o.get("host_score") else ""
        return ", ".join(f"{k}={o[k]:g}" for k in keys) + f", fusion={o['fusion']}" + host

    return "; ".join(f"{det}: {line(o[ZOOM_DEFAULT])}" for det, o in results(ZOOM)["zoom"].items())


FACTS: dict[str, Callable[[], str]] = {
    **_model_facts(),
    "detector_ms": lambda: f"{cost_ms('single'):.0f}",
    "multi_ms": lambda: f"{cost_ms('multi'):.0f}",
    "cost_threads": lambda: str(results(COST)["timing"]["threads"]),
    "detail_px": detail_px,
    "fullres.worst_other": lambda: f"{-100 * min(other_gains()):.1f}",
    "fullres.hard_span": lambda: span(fullres_gains(["wider_val_fullres"], "hard")),
    **{
        f"fullres.retinaface.{method}_hard": lambda method=method: "{:+.1f}".format(
            100 * _gain(_test_row("wider_val_fullres", "retinaface"), "hard", method)
        )
        for method in ("rerank", "single_vote")
    },
    "table.measured": measured_table,
    "table.cost": cost_table,
    "table.sweep": sweep_table,
    "results.cost": results_section("results_cost.json"),
    "results.cost_models": results_section(COST),
    "table.headroom_fullres": lambda: _script("headroom").partial_table(
        results("headroom_fullres.json")
    ),
    **{
        f"table.fullres_{part}": functools.partial(_fullres_table, f"fullres_{part}.json")
        for part in (
            "curves",
            "select",
            "test",
            "cost",
            "rows",
            "select_sampling2",
            "test_sampling2",
            "test_hard",
        )
    },
    "table.fullres_allfolds": functools.partial(_fullres_table, "fullres_test_allfolds.json"),
    "hires.images": lambda: str(results(HIRES)["images"]),
    "hires.timed": lambda: str(results(HIRES)["timed"]),
    "table.hires": lambda: _script("hires").hires_table(results(HIRES)),
    "table.hires_rank8k_select": functools.partial(_fullres_table, HIRES_SELECT),
    "table.hires_memory": lambda: _script("hires").memory_table(results("hires_memory.json")),
    "table.zoom": lambda: _script("zoom").table(results(ZOOM)),
    "table.zoom_summary": lambda: _script("zoom").table(
        results(ZOOM), ("single", ZOOM_DEFAULT, "full_2x", "multi")
    ),
    "zoom.claim": zoom_claim,
    "table.zoom_other": lambda: _script("zoom").other_table(results(ZOOM)),
    "table.zoom_tune": lambda: _script("zoom").tune_table(results("zoom_tune.json")),
    "table.zoom_fusions": lambda: _script("zoom").fusion_table(results("zoom_fusions.json")),
    "zoom.chosen": zoom_chosen,
    "zoom.settings": zoom_settings,
}


def render(text: str) -> str:
    """``text`` with every marked block recomputed.

    A block that spans lines keeps a blank line inside each marker, so that Markdown still sees
    the table it holds as a block of its own.

    Raises:
        KeyError: a block names a fact that :data:`FACTS` does not know.
    """

    def fill(m: re.Match[str]) -> str:
        name, old = m.group(1), m.group(2)
        if name not in FACTS:
            raise KeyError(f"unknown fact {name!r}; known: {sorted(FACTS)}")
        new = FACTS[name]()
        body = f"\n\n{new}\n\n" if "\n" in old or "\n" in new else new
        return f"<!-- facts:{name} -->{body}<!-- /facts -->"

    return MARK.sub(fill, text)


def stale(pages: list[Path] = PAGES) -> list[Path]:
    """The pages whose marked blocks differ from what :func:`render` computes."""
    return [p for p in pages if render(t := p.read_text(encoding="utf-8")) != t]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="rewrite nothing; exit 1 when stale")
    args = ap.parse_args()
    pages = stale()
    for page in pages:
        if args.check:
            print(f"stale facts in {page.relative_to(ROOT)}", file=sys.stderr)
        else:
            page.write_text(render(page.read_text(encoding="utf-8")), encoding="utf-8")
            print(f"updated {page.relative_to(ROOT)}")
    return 1 if args.check and pages else 0


if __name__ == "__main__":
    raise SystemExit(main())
