"""Zoom against single scale, a full 2x pass and multi-scale testing: AP and detector time.

Two steps, the second run once per shipped setting:

    # 1. choose the zoom settings on training photos (cached candidates, no timing):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/zoom.py tune --json results/zoom_tune.json
    # 2. measure on the test photos, every method live and side by side, photo by photo:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/zoom.py test --json results/zoom.json

``tune`` reads the ``crface dump`` caches of ``wider_train`` at scales 1 and 2 (it runs the dumps
when missing) and simulates zoom: the 2x pass's candidates owned by the selected regions stand in
for a detector run on those crops. It scores AP "all" and AP by face width (< 16, 16-48, > 48 px)
for a grid of settings and picks, per runner and for any detector (one setting admissible for
every runner), the best AP "all" among the settings whose medium and large-face AP stay at single
scale or above (0.2 tolerance) and whose crops cover at most 30% of the photo (the time bar).
Settings within 0.1 AP "all" of the best tie, and the tie goes to the fusion that changes the
first pass least (hard NMS, then voting only the zoomed clusters, then voting every cluster), then
to the containment gate on (zoomed boxes inside a confident, larger first-pass face dropped).
For a runner whose own single pass box voting improves at every face size, voting is no risk to
it, and the fusion order is reversed (every cluster voted first).
``--reuse`` takes the settings an earlier tune JSON measured from it; ``--workers`` spreads the
rest over processes.

``fusions`` measures zoom (budget 1, each runner's tuned settings) under each fusion (box voting
of every cluster, or only of those the zoomed pass added to, or hard NMS) on every photo of other
sets, AP "all", beside single scale; nothing is chosen from it.

``test`` runs, on every photo of ``wider_val_fullres`` (official Easy / Medium / Hard), each
method with the real detector: single scale + NMS 0.4; single + box voting; native + full 2x pass
pooled + voting; zoom at the two budgets with the runner's tuned settings, and the larger one
fused by the ranker (``crface-small``) instead of voting; multi-scale + flip + voting (short side 500, 800, 1100,
1400, 1700, as the paper). Times are the detector passes plus fusion, per photo, one thread;
medians. ``--sets`` adds AP "all" on every photo of other sets (nothing is trained on them).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

from crface.cache import CandidateCache
from crface.data import FaceDataset, load_dataset
from crface.detectors import get_detector
from crface.dump import dump_dataset
from crface.eval.baselines import MAX_DET, SCORE_THRESHOLD, postprocess
from crface.eval.sizes import ap_by_size
from crface.eval.wider import evaluate
from crface.paths import shared_path
from crface.refiner import Refiner
from crface.regions import concat, crop_boxes, owned
from crface.types import Detections
from crface.zooming import FUSIONS, RULES, gate, merge, select_regions, zoom

RUNNERS = ("retinaface", "yunet_n", "scrfd_500m")
SHORT_SIDES = (500, 800, 1100, 1400, 1700)
GRID = {
    "small": (16.0, 24.0),
    "seed_score": (0.05, 0.1),
    "weight": (0.7, 0.8, 0.9),
    "fusion": FUSIONS,
    "host_score": (None, 0.5),  # None: no containment gate (the key is left out)
}
# Budget 1 spends what the seeds ask for: a cap only clipped the gain on the training photos.
FIXED = {"keep_factor": 2.0, "rule": "cells", "budget": 1.0}
BUDGETS = (0.1, 1.0)  # the two budgets measured on the test photos
RANKER = "crface-small"  # fuses the passes of the last budget in one more row ("_rank")
SWEEP = {"cell": (64, 128), "budget": (0.1, 0.25, 0.5, 1.0)}
TOLERANCE = 0.002  # medium / large AP may fall this much (fraction) below single scale
# Crops may cover at most this share of a photo: the zoomed pass then costs <= 1.2 first passes,
# under half of a full 2x pass (the bar: <= 60% of its time).
MAX_AREA = 0.3
# Settings within this much AP "all" (fraction) of the best are a tie, broken by the fusion that
# leaves more of the first pass as it was, then by the containment gate (host_score) on. On
# wider_train the fusions differed by 0.01-0.08 AP, while on roboflow_faces_gray voting every
# cluster cost SCRFD-500M 2.5 AP more than voting only the zoomed ones (docs/zoom.md): a gain that
# small does not pay for the risk.
TIE = 0.001
CAUTIOUS = ("nms", "vote_zoomed", "vote")  # most of the first pass kept first
SIZES = ("small", "medium", "large")  # ap_by_size's buckets
HELD_OUT = 4  # the other sets' held-out fold (splits/folds.txt, else crface.data.hash_fold)


def finish(det: Detections) -> Detections:
    """The WIDER test post-processing of fused output: threshold 0.02, at most 750."""
    det = det[det.scores >= SCORE_THRESHOLD]
    return det[:MAX_DET]


def vote(passes: list[Detections], fusion: str = "vote") -> Detections:
    """The pooled passes fused as ``fusion`` says; the first pass is the unzoomed one."""
    return finish(merge(None, concat(passes), fusion=fusion, zoomed_from=len(passes[0])))


def simulate(first: Detections, twice: Detections, size: tuple[int, int], **opts) -> Detections:
    """Zoom from cached passes: the 2x candidates centred in the selected regions, size-gated."""
    keep_factor, weight = opts.pop("keep_factor"), opts.pop("weight", 1.0)
    fusion, host = opts.pop("fusion", "vote"), opts.pop("host_score", None)
    regions = select_regions(first, size, **opts)
    inside = torch.zeros(len(twice), dtype=torch.bool)
    for region in regions:
        inside |= owned(twice, region)
    kept = gate(twice[inside], keep_factor * opts["small"], weight, first=first, host_score=host)
    crops = crop_boxes(regions, math.ceil(opts["small"]), size)  # what zoom() feeds the detector
    area = float(((crops[:, 2:] - crops[:, :2]).prod(dim=1)).sum()) / (size[0] * size[1])
    return vote([first, kept], fusion), area


def scores(preds: dict, dataset: FaceDataset) -> dict:
    return {
        "all": evaluate(preds, dataset, settings=("all",)).ap["all"],
        **ap_by_size(preds, dataset),
    }


def load_passes(cache: CandidateCache, dataset: FaceDataset, det: str) -> dict:
    """Per photo, the cached ``(1x, 2x)`` candidates of ``det``."""
    return {
        s.name: (cache.load(det, 1.0, False, s.name), cache.load(det, 2.0, False, s.name))
        for s in dataset
    }


def tune_runner(passes: dict, dataset: FaceDataset, runs: RunSettings) -> dict:
    keys = list(GRID)
    combos = [
        {k: x for k, x in zip(keys, v) if x is not None} for v in itertools.product(*GRID.values())
    ]
    return {
        "single": scores({n: postprocess(a, "hard") for n, (a, _) in passes.items()}, dataset),
        "single_vote": scores({n: vote([a]) for n, (a, _) in passes.items()}, dataset),
        "full_2x": scores({n: vote([a, b]) for n, (a, b) in passes.items()}, dataset),
        "runs": runs([{**FIXED, **c} for c in combos]),
    }


def run_setting(passes, sizes, dataset, opts) -> dict:
    preds, areas = {}, []
    for name, (a, b) in passes.items():
        preds[name], area = simulate(a, b, sizes[name], **dict(opts))
        areas.append(area)
    return {"opts": opts, "ap": scores(preds, dataset), "area": statistics.mean(areas)}


_JOB: tuple = ()  # (passes, sizes, dataset) for forked workers, which inherit it


def _run_job(opts: dict) -> dict:
    return run_setting(*_JOB, opts)


class RunSettings:
    """``run_setting`` for many settings of one runner: reused from an earlier tune's JSON when
    that measured the same settings on the same photos (the simulation is deterministic), the
    rest spread over ``workers`` forked processes."""

    def __init__(self, passes, dataset: FaceDataset, reuse: list[dict], workers: int = 1):
        self.job = (passes, {s.name: s.image_size for s in dataset}, dataset)
        self.known = {_key(r["opts"]): r for r in reuse}
        self.workers = workers

    def __call__(self, settings: list[dict]) -> list[dict]:
        global _JOB
        todo = [o for o in settings if _key(o) not in self.known]
        if self.workers > 1 and len(todo) > 1:
            import multiprocessing

            _JOB = self.job
            with multiprocessing.get_context("fork").Pool(self.workers) as pool:
                done = pool.map(_run_job, todo, chunksize=1)
        else:
            done = [run_setting(*self.job, o) for o in todo]
        self.known.update({_key(r["opts"]): r for r in done})
        return [self.known[_key(o)] for o in settings]


def _key(opts: dict) -> str:
    """A setting as a dict key: its options, in a fixed order."""
    return json.dumps(opts, sort_keys=True)


def earlier_runs(path: str | None, det: str) -> list[dict]:
    """Every run an earlier tune JSON measured for ``det`` on the same photos (grid and sweeps)."""
    if not path:
        return []
    old = json.loads(Path(path).read_text())
    sweeps = [per[det] for per in old.get("sweeps", {}).values() if det in per]
    return old["per_runner"].get(det, {}).get("runs", []) + sweeps


def admissible(run: dict, single: dict) -> bool:
    kept = all(run["ap"][k] >= single[k] - TOLERANCE for k in ("medium", "large"))
    return kept and run["area"] <= MAX_AREA


def voting_helps(result: dict) -> bool:
    """Whether box voting improves the runner's own single pass at every face size."""
    return all(result["single_vote"][k] >= result["single"][k] for k in SIZES)


def best(runs: list[dict], singles: list[dict], prefer_vote: bool = False) -> dict | None:
    """The run admissible for every runner with the best mean AP "all", fusions within a tie.

    Runs within :data:`TIE` of the best mean count as equal, and among them the fusion that
    changes the first pass least wins (:data:`CAUTIOUS`; with ``prefer_vote``, for runners whose
    single pass voting improves everywhere, the reverse), then the containment gate on
    (``host_score``: fewer zoomed boxes added), then the higher mean.
    """
    order = CAUTIOUS[::-1] if prefer_vote else CAUTIOUS
    ok = [i for i in range(len(runs[0])) if all(admissible(r[i], s) for r, s in zip(runs, singles))]
    if not ok:
        return None
    mean = {i: statistics.mean(r[i]["ap"]["all"] for r in runs) for i in ok}
    tied = [i for i in ok if mean[i] >= max(mean.values()) - TIE]

    def caution(i: int) -> tuple:
        opts = runs[0][i]["opts"]
        return order.index(opts["fusion"]), opts.get("host_score") is None, -mean[i]

    i = min(tied, key=caution)
    return runs[0][i]["opts"]


def tune(args: argparse.Namespace) -> dict:
    dataset = load_dataset(args.train)
    cache = CandidateCache(args.cache, Path(args.train).resolve().name)
    if args.reuse and json.loads(Path(args.reuse).read_text())["images"] != len(dataset):
        sys.exit(f"{args.reuse} was tuned on another number of photos; drop --reuse")
    result, runs = {}, {}
    for det in args.runners:
        dump_dataset(get_detector(det), det, dataset, cache, (1.0, 2.0), progress=False)
        passes = load_passes(cache, dataset, det)
        runs[det] = RunSettings(passes, dataset, earlier_runs(args.reuse, det), args.workers)
        result[det] = tune_runner(passes, dataset, runs[det])
        print(f"{det}: single {result[det]['single']} full 2x {result[det]['full_2x']}", flush=True)
    singles = [result[d]["single"] for d in args.runners]
    helps = {d: voting_helps(result[d]) for d in args.runners}
    chosen = best([result[d]["runs"] for d in args.runners], singles, all(helps.values()))
    per_detector = {
        d: best([result[d]["runs"]], [result[d]["single"]], helps[d]) for d in args.runners
    }
    if chosen is None or None in per_detector.values():
        sys.exit("no setting keeps medium and large faces at single scale")
    keys = [
        (rule, cell, budget)
        for rule, cell, budget in itertools.product(RULES, *SWEEP.values())
        if rule == "cells" or cell == SWEEP["cell"][0]  # the grid's tiles ignore the cell size
    ]
    swept = {
        d: runs[d]([{**per_detector[d], "rule": r, "cell": c, "budget": b} for r, c, b in keys])
        for d in args.runners
    }
    sweeps = {}
    for i, (rule, cell, budget) in enumerate(keys):
        key = f"{rule}@{budget}" + (f"/{cell}" if rule == "cells" else "")
        sweeps[key] = {d: swept[d][i] for d in args.runners}
    return {
        "dataset": dataset.name,
        "images": len(dataset),
        "chosen": chosen,
        "per_detector": per_detector,
        "per_runner": result,
        "sweeps": sweeps,
    }


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - t) * 1e3


def multiscale(runner, image) -> tuple[list[Detections], float]:
    """The paper's protocol: short side 500-1700, each pass mirrored too (raw candidates)."""
    short = min(image.shape[:2])
    passes, ms = [], 0.0
    for side, flip in itertools.product(SHORT_SIDES, (False, True)):
        det, t = timed(runner.detect, image, scale=side / short, flip=flip)
        passes.append(det)
        ms += t
    return passes, ms


def test_photo(runner, image, zooms: dict, full: bool) -> tuple[dict, dict]:
    """Every method on one photo: predictions and ms (detector passes + fusion)."""
    first, t1 = timed(runner.detect, image)
    preds, ms = {}, {}
    preds["single"], t = timed(postprocess, first, "hard")
    ms["single"] = t1 + t
    preds["single_vote"], t = timed(vote, [first])
    ms["single_vote"] = t1 + t
    for name, opts in zooms.items():
        det, ms[name] = timed(zoom, runner.detect, image, **opts)
        preds[name] = finish(det)
    if full:
        twice, t2 = timed(runner.detect, image, scale=2.0)
        preds["full_2x"], t = timed(vote, [first, twice])
        ms["full_2x"] = t1 + t2 + t
        passes, tm = multiscale(runner, image)
        preds["multi"], t = timed(vote, passes)
        ms["multi"] = tm + t
    return preds, ms


def test_set(runner, dataset: FaceDataset, zooms: dict, full: bool) -> dict:
    from tqdm.auto import tqdm

    settings = None if full else ("all",)  # the other sets are scored on every face
    preds, ms = {}, {}
    for i, sample in enumerate(tqdm(dataset, desc=f"{dataset.name}", unit="img")):
        p, t = test_photo(runner, dataset.load_image(i), zooms, full)
        for k in p:
            preds.setdefault(k, {})[sample.name] = p[k]
            ms.setdefault(k, []).append(t[k])
    out = {
        k: {"ap": evaluate(preds[k], dataset, settings).ap, "ms": statistics.median(ms[k])}
        for k in preds
    }
    held = None if full else dataset.subset(lambda s: s.fold == HELD_OUT)
    if held:  # the part of the set the ranker never trained on (and no probe saw)
        for k in preds:
            out[k]["ap_held_out"] = evaluate(preds[k], held, settings).ap
    return out


def other_set(name: str) -> FaceDataset:
    """Every photo of a shared set: zoom learns nothing, so no part of it was seen in tuning."""
    return load_dataset(shared_path("data", name))


def test(args: argparse.Namespace) -> dict:
    tuned = json.loads(Path(args.tuned).read_text())["per_detector"]
    dataset = load_dataset(args.test)
    if args.limit:
        dataset = dataset.subset(range(min(args.limit, len(dataset))))
    out = {"dataset": dataset.name, "images": len(dataset), "zoom": {}, "runners": {}}
    for det in args.runners:
        runner = get_detector(det)
        zooms = {f"zoom_{b:g}": zoom_options(tuned[det], b) for b in BUDGETS}
        ranker = Refiner.load(RANKER, detector=det)
        voted = {k: v for k, v in zooms[f"zoom_{BUDGETS[-1]:g}"].items() if k != "fusion"}
        zooms[f"zoom_{BUDGETS[-1]:g}_rank"] = {**voted, "refiner": ranker}
        out["zoom"][det] = {
            k: {**v, "refiner": RANKER} if "refiner" in v else v for k, v in zooms.items()
        }
        row = {"test": test_set(runner, dataset, zooms, True)}
        for name in args.sets:
            other = other_set(name)
            row[name] = test_set(
                runner, other.subset(range(min(args.limit or len(other), len(other)))), zooms, False
            )
        out["runners"][det] = row
        print(det, json.dumps(row["test"]), flush=True)
        if args.json:  # after each runner, so a stopped run keeps what it measured
            Path(args.json).write_text(json.dumps(out, indent=1))
    return out


def fusions(args: argparse.Namespace) -> dict:
    """AP "all" of zoom (each runner's tuned settings, budget 1) under each fusion, other sets."""
    from tqdm.auto import tqdm

    tuned = json.loads(Path(args.tuned).read_text())["per_detector"]
    out: dict = {"budget": BUDGETS[-1], "sets": {}}
    for name in args.sets:
        dataset = other_set(name)
        out["sets"][name] = {"images": len(dataset), "runners": {}}
        for det in args.runners:
            runner = get_detector(det)
            opts = zoom_options(tuned[det], BUDGETS[-1])
            preds: dict[str, dict] = {"single": {}, **{f: {} for f in FUSIONS}}
            for i, sample in enumerate(tqdm(dataset, desc=f"{det} on {name}", unit="img")):
                image = dataset.load_image(i)
                first = runner.detect(image)
                preds["single"][sample.name] = postprocess(first, "hard")
                pooled = zoom(runner.detect, image, first_pass=first, pool_only=True, **opts)
                for f in FUSIONS:  # one zoomed pass, fused each way
                    fused = merge(None, pooled, fusion=f, zoomed_from=len(first))
                    preds[f][sample.name] = finish(fused)
            out["sets"][name]["runners"][det] = {
                k: evaluate(v, dataset, ("all",)).ap["all"] for k, v in preds.items()
            }
            print(det, name, out["sets"][name]["runners"][det], flush=True)
    return out


def fusion_table(result: dict) -> str:
    """Markdown: AP "all" per set and runner, single scale and zoom under each fusion."""
    head = "| set | runner | single scale, NMS 0.4 | " + " | ".join(
        f"zoom, budget {result['budget']:g}, fusion={f}" for f in FUSIONS
    )
    rows = [head + " |", "|---|---|---|" + "---|" * len(FUSIONS)]
    for name, res in result["sets"].items():
        for det, ap in res["runners"].items():
            cells = " | ".join(f"{100 * ap[k]:.1f}" for k in ("single", *FUSIONS))
            rows.append(f"| {name} ({res['images']}) | {det} | {cells} |")
    return "\n".join(rows)


def zoom_options(chosen: dict, budget: float) -> dict:
    """``zoom()``'s options for a tuned setting; a setting without ``host_score`` keeps every
    zoomed candidate (``False``), whatever the defaults say."""
    opts = {k: v for k, v in chosen.items() if k not in ("keep_factor", "budget")}
    opts = {"host_score": False, **opts, "keep_below": chosen["keep_factor"] * chosen["small"]}
    return {**opts, "budget": budget}


LABELS = {
    "single": "single scale, NMS 0.4",
    "single_vote": "single scale, box voting 0.4",
    "full_2x": "native + full 2x pass, voting",
    "multi": "multi-scale + flip, voting (short side 500-1700)",
}


def zoom_label(method: str) -> str:
    """``zoom_0.1`` -> "zoom, budget 0.1"; ``zoom_1_rank`` -> "... fused by the ranker"."""
    budget, _, ranked = method.removeprefix("zoom_").partition("_")
    return f"zoom, budget {budget}" + (f", fused by {RANKER}" if ranked else "")


def table(result: dict, methods: tuple[str, ...] | None = None) -> str:
    """Markdown: AP E / M / H and median ms per method and runner, plus the bar's two ratios.

    ``methods`` keeps only those rows (default: every method measured)."""
    rows = [
        "| runner | method | E / M / H | ms per photo | Hard gain kept | time vs full 2x |",
        "|---|---|---|---|---|---|",
    ]
    for det, row in result["runners"].items():
        test = row["test"]
        gain = test["full_2x"]["ap"]["hard"] - test["single"]["ap"]["hard"]
        for method, m in test.items():
            if methods is not None and method not in methods:
                continue
            ap = " / ".join(f"{100 * m['ap'][s]:.1f}" for s in ("easy", "medium", "hard"))
            kept = (
                (m["ap"]["hard"] - test["single"]["ap"]["hard"]) / gain
                if gain > 0
                else float("nan")
            )
            label = LABELS.get(method) or zoom_label(method)
            rows.append(
                f"| {det} | {label} | {ap} | {m['ms']:.0f} | {100 * kept:.0f}% "
                f"| {m['ms'] / test['full_2x']['ms']:.2f}x |"
            )
    return "\n".join(rows)


def tune_table(result: dict) -> str:
    """Markdown: the selection rules on the training photos (AP "all", small-face AP, area)."""
    runners = list(result["per_runner"])
    head = "| setting | " + " | ".join(f"{d}: all / < 16 px / area" for d in runners) + " |"
    rows = [head, "|" + "---|" * (len(runners) + 1)]

    def cell(ap: dict, area: float | None) -> str:
        text = f"{100 * ap['all']:.1f} / {100 * ap['small']:.1f}"
        return text + (f" / {100 * area:.0f}%" if area is not None else " / -")

    for key in ("single", "full_2x"):
        label = LABELS[key]
        rows.append(
            f"| {label} | "
            + " | ".join(cell(result["per_runner"][d][key], None) for d in runners)
            + " |"
        )
    for key, per in result["sweeps"].items():
        rows.append(
            f"| {key} | " + " | ".join(cell(per[d]["ap"], per[d]["area"]) for d in runners) + " |"
        )
    return "\n".join(rows)


def other_table(result: dict) -> str:
    """Markdown: AP "all" on the other sets, single scale vs zoom."""
    methods = None
    rows = []
    for det, row in result["runners"].items():
        for name, res in row.items():
            if name == "test":
                continue
            methods = methods or list(res)
            cells = [f"{100 * res[m]['ap']['all']:.1f}" for m in methods]
            if "ap_held_out" in res[methods[0]]:
                cells = [
                    f"{c} ({100 * res[m]['ap_held_out']['all']:.1f})"
                    for c, m in zip(cells, methods)
                ]
            rows.append(f"| {det} | {name} | " + " | ".join(cells) + " |")
    head = "| runner | set | " + " | ".join(LABELS.get(m) or zoom_label(m) for m in methods) + " |"
    return "\n".join([head, "|" + "---|" * (len(methods) + 2), *rows])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="step", required=True)
    t = sub.add_parser("tune")
    t.add_argument("--train", default=str(shared_path("data", "wider_train")))
    t.add_argument("--reuse", help="an earlier tune JSON: settings it measured are not re-run")
    t.add_argument("--workers", type=int, default=1, help="processes for the settings")
    e = sub.add_parser("test")
    e.add_argument("--test", default=str(shared_path("data", "wider_val_fullres")))
    e.add_argument("--limit", type=int, help="only the first N test photos (a quick check)")
    e.add_argument("--tuned", default="results/zoom_tune.json", help="tune's JSON")
    e.add_argument(
        "--sets", nargs="*", default=["wider_val200", "facemask_kaggle", "roboflow_faces_gray"]
    )
    f = sub.add_parser("fusions", help="zoom under each fusion on other sets (AP all)")
    f.add_argument("--tuned", default="results/zoom_tune.json", help="tune's JSON")
    f.add_argument("--sets", nargs="+", default=["roboflow_faces_gray", "facemask_kaggle"])
    m = sub.add_parser("table", help="print the markdown tables of a test JSON")
    m.add_argument("json_in", nargs="+", help="test JSONs (their runners are merged)")
    m.add_argument("--json", help="also write the merged test JSON here")
    for q in (t, e, f):
        q.add_argument("--runners", nargs="+", default=list(RUNNERS))
        q.add_argument("--cache", default="cache")
        q.add_argument("--json")
    args = p.parse_args(argv)
    if args.step == "table":
        parts = [json.loads(Path(f).read_text()) for f in args.json_in]
        merged = {
            key: {k: v for p in parts for k, v in p[key].items()} for key in ("zoom", "runners")
        }
        result = {**parts[0], **merged}
        print(table(result) + "\n\n" + other_table(result))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1))
        return 0
    out = {"tune": tune, "test": test, "fusions": fusions}[args.step](args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
