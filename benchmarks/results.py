"""Every table of the training report (issue 4), regenerated from saved checkpoints.

    .venv/bin/python benchmarks/results.py --cv runs/cv_small [--ablations runs/abl/*]
        [--json results/results.json] [--markdown docs/results_tables.md] [--timing-images 10]
        [--weights crface/assets/crface-small.pt]   # cost only, for these weights

* Cross-validation: each ``CV/fold{k}/final.pt`` (from ``benchmarks/cv.py``) re-scores the
  wider_val200 images of fold ``k``; the five folds' predictions are pooled and evaluated once
  (WIDER protocol, Easy / Medium / Hard), per detector: single-scale + NMS versus reranked + NMS at
  each blend strength ``s + a * (r - s)``. Detectors the runs never trained on form the
  cross-detector rows. The blend strength shipped per detector is the grid value with the best
  mean CV AP (chosen on the same folds, so that column is optimistic; ``a = 1`` is not tuned).
* Cross-dataset: the fold-4 run on the held-out part (``hash_fold == 4``) of each set without
  folds, AP "all".
* Ablations: each ``--ablations`` run (trained on folds 0-3) on fold 4, mean over its detectors.
* Cost: RetinaFace single-scale, single-scale + rerank and multi-scale + flip + voting, timed
  interleaved image by image (medians); multi-scale AP from ``results/headroom_*.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from crface.cache import CandidateCache
from crface.data import FaceDataset, hash_fold, load_dataset
from crface.eval.baselines import multiscale_vote, postprocess
from crface.eval.wider import evaluate
from crface.refiner import Refiner
from crface.types import Detections
from crface.weights import build_model

WIDER = "wider_val200"
OTHER_SETS = ("facemask_kaggle", "roboflow_faces_gray")  # facemask_ilc2021 left shared/ (Dec 2026)
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
MULTI_VARIANTS = [(s, f) for s in (0.5, 1.0, 1.5, 2.0) for f in (False, True)]


def cached_detectors(cache: CandidateCache, dataset: FaceDataset) -> list[str]:
    """Detectors whose single-scale candidates are cached for every image of ``dataset``."""
    root = cache.root / cache.dataset
    found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return [d for d in found if all(cache.has(d, 1.0, False, s.name) for s in dataset)]


def rescore(
    weights: Path,
    dataset: FaceDataset,
    cache: CandidateCache,
    detectors: list[str],
    scale: float = 1.0,
    rows: int | None = None,
) -> dict[str, dict[str, tuple[Detections, torch.Tensor]]]:
    """detector -> image -> (candidates of the ``scale`` pass, ranker scores at strength 1).

    ``rows``: only the top ``rows`` candidates by score go to the ranker (the rest keep their
    score), as a ranker with ``num_boxes = rows`` would do."""
    model, meta = build_model(weights)
    refiner = Refiner.from_model(model, device="auto", metadata=meta, strength=1.0)
    out: dict[str, dict[str, tuple[Detections, torch.Tensor]]] = {d: {} for d in detectors}
    for i, sample in enumerate(dataset):
        image = dataset.load_image(i)
        for det in detectors:
            cand = cache.load(det, scale, False, sample.name)
            cand = cand[(cand.boxes[:, 2:] > cand.boxes[:, :2]).all(dim=1)]
            top = torch.argsort(cand.scores, descending=True, stable=True)[:rows]
            r = cand.scores.clone()
            if len(top):
                r[top] = refiner.refine_scores(image, cand.boxes[top], cand.scores[top])
            out[det][sample.name] = (cand, r)
    return out


def blended(
    scored: dict[str, tuple[Detections, torch.Tensor]], strength: float, nms: str = "hard"
) -> dict[str, Detections]:
    """Predictions of rescored candidates at blend strength ``s + a * (r - s)``, suppressed by
    ``nms`` (``"hard"`` or ``"vote"``, as :meth:`crface.Refiner.rerank`)."""
    preds = {}
    for name, (cand, r) in scored.items():
        s = cand.scores + strength * (r - cand.scores)
        preds[name] = postprocess(Detections(cand.boxes, s.clamp(0, 1)), nms)
    return preds


def ap_at(
    scored: dict[str, tuple[Detections, torch.Tensor]], dataset: FaceDataset, strength: float
) -> dict[str, float]:
    return evaluate(blended(scored, strength), dataset).ap


def cv_table(cv: Path, cache_root: str, trained: set[str]) -> dict:
    wider = load_dataset(WIDER)
    cache = CandidateCache(cache_root, WIDER)
    detectors = cached_detectors(cache, wider)
    pooled: dict[str, dict] = {d: {} for d in detectors}
    for k in wider.folds:
        weights = cv / f"fold{k}" / "final.pt"
        if not weights.is_file():
            raise FileNotFoundError(f"{weights} missing: run benchmarks/cv.py first")
        held = wider.subset(lambda s, k=k: s.fold == k)
        for det, scored in rescore(weights, held, cache, detectors).items():
            pooled[det].update(scored)
        print(f"cv: fold {k} rescored", file=sys.stderr)
    rows = {}
    for det in detectors:
        aps = {a: ap_at(pooled[det], wider, a) for a in STRENGTHS}
        best = max(STRENGTHS, key=lambda a: (round(np.mean(list(aps[a].values())), 6), -a))
        rows[det] = {
            "trained_on": det in trained,
            "ap": {str(a): v for a, v in aps.items()},
            "best_strength": best,
        }
    return rows


def cross_dataset(weights: Path, cache_root: str) -> dict:
    rows = {}
    for name in OTHER_SETS:
        full = load_dataset(name)
        held = full.subset(lambda s: hash_fold(s.name) == 4)
        cache = CandidateCache(cache_root, name)
        dets = cached_detectors(cache, held)
        for det, scored in rescore(weights, held, cache, dets).items():
            rows.setdefault(name, {})[det] = {
                "single": ap_at(scored, held, 0.0)["all"],
                "rerank": ap_at(scored, held, 1.0)["all"],
                "images": len(held),
            }
    return rows


def ablation_table(runs: list[Path], cache_root: str) -> dict:
    wider = load_dataset(WIDER)
    held = wider.subset(lambda s: s.fold == 4)
    cache = CandidateCache(cache_root, WIDER)
    rows = {}
    for run in runs:
        if (run / "fold4").is_dir():
            run = run / "fold4"
        cfg = json.loads((run / "config.json").read_text())
        scored = rescore(run / "final.pt", held, cache, list(cfg["detectors"]))
        base = [ap_at(s, held, 0.0) for s in scored.values()]
        new = [ap_at(s, held, 1.0) for s in scored.values()]
        rows[run.parent.name if run.name.startswith("fold") else run.name] = {
            "loss": cfg["loss"],
            "loss_params": cfg["loss_params"],
            "iterations": cfg["iterations"],
            "single": {k: float(np.mean([b[k] for b in base])) for k in base[0]},
            "rerank": {k: float(np.mean([n[k] for n in new])) for k in new[0]},
        }
    return rows


def timing(weights: list[Path], n: int) -> dict:
    """Side-by-side medians; with several weights files each backend key is prefixed by the stem."""
    from crface.detectors import get_detector

    wider = load_dataset(WIDER)
    runner = get_detector("retinaface")
    refiners = {}
    for path in weights:
        prefix = f"{path.stem} " if len(weights) > 1 else ""
        model, meta = build_model(path)
        # threads=0: time at the process's torch thread count, the one recorded below
        refiners[f"{prefix}torch"] = Refiner.from_model(
            model, device="auto", metadata=meta, threads=0
        )
        try:
            refiners[f"{prefix}onnxruntime"] = Refiner.load(
                path, backend="onnxruntime", device="auto", threads=torch.get_num_threads()
            )
        except ImportError as exc:  # the onnx extra is optional
            print(f"timing: no onnxruntime rows ({exc})", file=sys.stderr)
    times: dict[str, list[float]] = {"single": [], "multi": []}
    times.update({f"single_rerank_{b}": [] for b in refiners})
    for i in range(min(n, len(wider))):
        image = wider.load_image(i)
        t = time.perf_counter()
        postprocess(runner.detect(image))
        times["single"].append(time.perf_counter() - t)
        for backend, refiner in refiners.items():
            t = time.perf_counter()
            refiner.rerank(image, runner.detect(image), invalid="drop")
            times[f"single_rerank_{backend}"].append(time.perf_counter() - t)
        t = time.perf_counter()
        multiscale_vote([runner.detect(image, scale=s, flip=f) for s, f in MULTI_VARIANTS])
        times["multi"].append(time.perf_counter() - t)
    ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return {
        "images": min(n, len(wider)),
        "median_ms": ms,
        "multi_over_rerank": {b: ms["multi"] / ms[f"single_rerank_{b}"] for b in refiners},
        "device": str(next(iter(refiners.values())).device),
        "threads": torch.get_num_threads(),
    }


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def aps(ap: dict) -> str:
    """``"72.4 / 61.7 / 32.9"``: AP per setting in %."""
    return " / ".join(pct(v) for v in ap.values())


def gains(new: dict, base: dict) -> str:
    return " / ".join(f"{100 * (new[k] - base[k]):+.1f}" for k in base)


def section(title: str, columns: list[str], rows: list[list]) -> list[str]:
    """A markdown table under a ``###`` title, followed by a blank line."""
    return [
        f"### {title}",
        "",
        "| " + " | ".join(columns) + " |",
        "|---" * len(columns) + "|",
        *("| " + " | ".join(str(c) for c in row) + " |" for row in rows),
        "",
    ]


def markdown(res: dict) -> str:
    lines = []
    if res.get("cv"):
        multi = res.get("multi_ap", {})
        rows = []
        for det, row in res["cv"].items():
            base, full = row["ap"]["0.0"], row["ap"]["1.0"]
            m = multi.get(det)
            rows.append(
                [
                    det,
                    "yes" if row["trained_on"] else "no (held out)",
                    aps(base),
                    aps(full),
                    gains(full, base),
                    row["best_strength"],
                    aps(row["ap"][str(row["best_strength"])]),
                    aps(m) if m else "-",
                ]
            )
        lines += section(
            "Cross-validated AP on wider_val200 (5 folds pooled; Easy / Medium / Hard)",
            [
                "detector",
                "trained on",
                "single",
                "rerank (a=1)",
                "gain (a=1)",
                "shipped a",
                "rerank (shipped a)",
                "multi-scale+flip",
            ],
            rows,
        )
    if res.get("cross_dataset"):
        rows = [
            [
                name,
                det,
                r["images"],
                pct(r["single"]),
                pct(r["rerank"]),
                f"{100 * (r['rerank'] - r['single']):+.1f}",
            ]
            for name, dets in res["cross_dataset"].items()
            for det, r in dets.items()
        ]
        lines += section(
            'Cross-dataset: AP "all" on unseen images (hash fold 4), fold-4 model',
            ["set", "detector", "images", "single", "rerank", "gain"],
            rows,
        )
    if res.get("ablations"):
        rows = [
            [
                name,
                r["loss"],
                json.dumps(r["loss_params"]),
                r["iterations"],
                aps(r["single"]),
                aps(r["rerank"]),
                gains(r["rerank"], r["single"]),
            ]
            for name, r in res["ablations"].items()
        ]
        lines += section(
            "Ablations on fold 4 (mean over trained detectors; Easy / Medium / Hard)",
            ["run", "loss", "params", "iterations", "single", "rerank", "gain"],
            rows,
        )
    if res.get("timing"):
        t = res["timing"]
        ms = t["median_ms"]
        backends = list(t["multi_over_rerank"])
        lines += section(
            f"Cost (RetinaFace, {t['images']} wider_val200 images, {t['device']}, "
            f"{t['threads']} thread(s), medians of interleaved runs)",
            [
                "single",
                *(f"single + rerank ({b})" for b in backends),
                "multi-scale + flip + vote",
                *(f"multi / (single + rerank, {b})" for b in backends),
            ],
            [
                [
                    f"{ms['single']:.0f} ms",
                    *(f"{ms[f'single_rerank_{b}']:.0f} ms" for b in backends),
                    f"{ms['multi']:.0f} ms",
                    *(f"{t['multi_over_rerank'][b]:.1f}x" for b in backends),
                ]
            ],
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cv", type=Path, help="folder of benchmarks/cv.py fold runs")
    ap.add_argument("--ablations", type=Path, nargs="*", default=[])
    ap.add_argument("--cache", default="cache")
    ap.add_argument("--timing-images", type=int, default=10, help="0 skips the timing")
    ap.add_argument(
        "--weights",
        type=Path,
        nargs="+",
        help="time these weights side by side (default: the CV run's fold 4)",
    )
    ap.add_argument("--no-cross-dataset", action="store_true")
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--markdown", type=Path, help="write the tables here")
    args = ap.parse_args()
    res: dict = {}
    if args.cv:
        trained = set(json.loads((args.cv / "fold0" / "config.json").read_text())["detectors"])
        res["cv"] = cv_table(args.cv, args.cache, trained)
        res["multi_ap"] = {
            r["detector"]: r["multi"]
            for p in sorted(Path("results").glob("headroom_*.json"))
            for r in json.loads(p.read_text())
            if r["set"] == WIDER
        }
        if not args.no_cross_dataset:
            res["cross_dataset"] = cross_dataset(args.cv / "fold4" / "final.pt", args.cache)
        if args.timing_images and not args.weights:
            res["timing"] = timing([args.cv / "fold4" / "final.pt"], args.timing_images)
    if args.weights and args.timing_images:
        res["timing"] = timing(args.weights, args.timing_images)
    if args.ablations:
        res["ablations"] = ablation_table(args.ablations, args.cache)
    text = markdown(res)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
