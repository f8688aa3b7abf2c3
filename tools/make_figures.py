"""Regenerate the committed figures in ``docs/img/`` from the project's own code.

    python tools/make_figures.py [--weights crface-small] [--only before_after pr_curves ...]
        [--cache cache] [--data PATH] [--detector retinaface] [--limit N] [--out docs/img]

Figures (each titled with the ranker's weights, so a re-run after training says what it shows):

* ``before_after.png``: the bundled demo image, detector + NMS next to crface, boxes coloured by
  score (:func:`crface.viz.before_after`). Needs nothing outside the repository.
* ``pr_curves.png``: WIDER precision-recall curves of single scale, multi-scale + flip + box voting,
  the reranked single scale and the oracle, for one detector on ``--data`` (default
  ``shared/data/wider_val200``) from its candidate cache (``crface dump``).
* ``confidence.png``: the paper's Fig. 4 for crface: distributions of the oracle, detector and
  refined confidence of the same candidates, and per image how well each orders the candidates
  like the oracle (Kendall's tau). Same data as ``pr_curves.png``.
* ``headroom.png``: single / Soft-NMS / multi-scale / oracle AP per detector from
  ``results/headroom_*.json`` (written by ``benchmarks/headroom.py``).

Needs matplotlib and scipy (``crface[eval]``). Pictures are palette PNGs, each well under 300 KB.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from crface import viz
from crface._optional import require
from crface.cache import CandidateCache
from crface.data import FaceDataset, load_dataset
from crface.detectors import RUNNERS
from crface.eval import evaluate, plot_pr_curves
from crface.eval.baselines import baseline_predictions, postprocess
from crface.imageio import load_image
from crface.ops import oracle_confidence
from crface.paths import shared_path
from crface.refiner import Refiner
from crface.types import Detections
from crface.weights import ASSETS

FIGURES = ("before_after", "pr_curves", "confidence", "headroom")
ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("easy", "medium", "hard")
METHOD_LABELS = {
    "single": "single",
    "soft": "Soft-NMS",
    "multi": "multi+flip+vote",
    "oracle": "oracle",
}


def ranker_label(refiner: Refiner, weights: str) -> str:
    """The weights' name for titles, flagged when the file is an untrained initialisation."""
    name = Path(weights).name if Path(weights).is_file() else weights
    return name + (" (UNTRAINED)" if refiner.metadata.get("trained") is False else "")


def save_png(image: Image.Image, path: Path) -> None:
    """Save as an optimised 256-colour PNG (the pictures are committed: keep them small)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
        path, optimize=True
    )
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def with_title(image: Image.Image, title: str) -> Image.Image:
    """``image`` under a white band holding ``title``."""
    band = 22
    out = Image.new("RGB", (image.width, image.height + band), (255, 255, 255))
    out.paste(image, (0, band))
    ImageDraw.Draw(out).text((6, 5), title, fill=(0, 0, 0))
    return out


def figure_to_png(fig, path: Path, dpi: int = 100) -> None:
    """Render a matplotlib Figure and store it with :func:`save_png`."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png")
    save_png(Image.open(buf), path)


def before_after(refiner: Refiner, label: str, out: Path, threshold: float) -> None:
    image = load_image(ASSETS / "demo.jpg")
    with np.load(ASSETS / "demo_detections.npz", allow_pickle=False) as z:
        cands = Detections(z["boxes"], z["scores"], landmarks=z["landmarks"].astype(np.float32))
        source = str(z["detector"]).split(" (")[0]
    before, after = postprocess(cands, "hard"), refiner.rerank(image, cands)
    picture, _ = viz.before_after(image, before, after, score_threshold=threshold, max_width=1000)
    title = f"{source}: {len(cands)} candidates before NMS; right: reranked by {label}"
    save_png(with_title(picture, title), out / "before_after.png")


def rerank_dataset(
    refiner: Refiner, cache: CandidateCache, dataset: FaceDataset, detector: str
) -> tuple[dict[str, Detections], list[dict[str, np.ndarray]]]:
    """Reranked predictions per image, and per image the oracle / detector / refined confidences of
    the candidates scoring >= 0.02 (the ones that take part in NMS)."""
    preds, confidences = {}, []
    for i, sample in enumerate(dataset):
        det = cache.load(detector, 1.0, False, sample.name)
        refined = refiner.refine_scores(dataset.load_image(i), det.boxes, det.scores)
        # Refiner.rerank's own post-processing (threshold 0.02, hard NMS 0.4, at most 750),
        # applied to the refined scores computed once for both figures.
        preds[sample.name] = postprocess(Detections(det.boxes, refined, det.indices), "hard")
        used = det.scores >= 0.02
        confidences.append(
            {
                "oracle": oracle_confidence(det.boxes[used], sample.boxes).numpy(),
                "detector": det.scores[used].numpy(),
                "refined": refined[used].numpy(),
            }
        )
        print(f"\rreranked {i + 1}/{len(dataset)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return preds, confidences


def pr_curves(results: dict, title: str, out: Path) -> None:
    path = plot_pr_curves(results, out / "pr_curves.tmp.png", title=title, dpi=90)
    save_png(Image.open(path), out / "pr_curves.png")
    path.unlink()


def confidence_plot(confidences: list[dict[str, np.ndarray]], title: str, out: Path) -> None:
    figure = require("matplotlib.figure", "plotting")
    stats = require("scipy.stats", "Kendall's tau")
    pooled = {k: np.concatenate([c[k] for c in confidences]) for k in confidences[0]}
    fig = figure.Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    bins = np.linspace(0, 1, 41)
    colours = {"oracle": "black", "detector": "tab:blue", "refined": "tab:orange"}
    for key, style in (("oracle", "-"), ("detector", "-"), ("refined", "--")):
        left.hist(
            pooled[key],
            bins=bins,
            histtype="step",
            linestyle=style,
            linewidth=1.6,
            color=colours[key],
            label=f"{key} confidence",
        )
    left.set(
        yscale="log",
        xlabel="confidence",
        ylabel="candidates",
        title=f"{len(pooled['oracle']):,} candidates (score >= 0.02)",
    )
    left.legend(loc="upper center")
    taus = {"detector": [], "refined": []}
    for c in confidences:
        if len(c["oracle"]) > 1 and np.ptp(c["oracle"]) > 0:
            for key in taus:
                taus[key].append(stats.kendalltau(c[key], c["oracle"]).statistic)
    tau_d, tau_r = np.nan_to_num(taus["detector"]), np.nan_to_num(taus["refined"])
    right.scatter(tau_d, tau_r, s=10, alpha=0.6, color="tab:orange")
    right.plot([-1, 1], [-1, 1], color="grey", linewidth=0.8)
    right.set(
        xlim=(-0.2, 1),
        ylim=(-0.2, 1),
        aspect="equal",
        xlabel="Kendall tau(detector, oracle)",
        ylabel="Kendall tau(refined, oracle)",
        title=f"order agreement per image (mean {tau_d.mean():.3f} -> {tau_r.mean():.3f})",
    )
    right.grid(alpha=0.3)
    fig.suptitle(title)
    figure_to_png(fig, out / "confidence.png")


def headroom_plot(results_dir: Path, out: Path) -> None:
    rows = [
        r
        for f in sorted(results_dir.glob("headroom_*.json"))
        for r in json.loads(f.read_text())
        if r["set"] == "wider_val200"
    ]
    order = list(RUNNERS)
    rows.sort(key=lambda r: order.index(r["detector"]) if r["detector"] in order else len(order))
    if not rows:
        raise FileNotFoundError(f"no wider_val200 rows in {results_dir}/headroom_*.json")
    figure = require("matplotlib.figure", "plotting")
    fig = figure.Figure(figsize=(12, 3.8), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    x = np.arange(len(rows))
    width = 0.8 / len(METHOD_LABELS)
    for ax, setting in zip(axes, SETTINGS, strict=True):
        for k, (method, label) in enumerate(METHOD_LABELS.items()):
            ax.bar(
                x + (k - 1.5) * width, [100 * r[method][setting] for r in rows], width, label=label
            )
        ax.set_xticks(x, [r["detector"] for r in rows], rotation=30, ha="right", fontsize="small")
        ax.set_title(setting.capitalize())
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("AP (%)")
    axes[2].legend(fontsize="small", loc="upper right", ncols=2)
    fig.suptitle(
        "Headroom on wider_val200 (200 images): detectors as run vs their oracle, "
        "from results/headroom_*.json"
    )
    figure_to_png(fig, out / "headroom.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="crface-small", help="registered name or weights file")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--only", nargs="+", choices=FIGURES, default=list(FIGURES))
    ap.add_argument("--cache", default=str(ROOT / "cache"), help="candidate cache root")
    ap.add_argument("--data", help="dataset folder (default: shared/data/wider_val200)")
    ap.add_argument("--detector", default="retinaface", help="cache folder of the detector")
    ap.add_argument("--limit", type=int, help="only the first N images (quick checks)")
    ap.add_argument("--draw-threshold", type=float, default=0.1)
    ap.add_argument("--results", default=str(ROOT / "results"), help="headroom JSON folder")
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = ap.parse_args(argv)
    out = Path(args.out)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*UNTRAINED", category=UserWarning)
        refiner = Refiner.load(args.weights, device=args.device)
    label = ranker_label(refiner, args.weights)
    if "before_after" in args.only:
        before_after(refiner, label, out, args.draw_threshold)
    if {"pr_curves", "confidence"} & set(args.only):
        dataset = load_dataset(args.data or shared_path("data", "wider_val200"))
        if args.limit:
            dataset = dataset[: args.limit]
        cache = CandidateCache(args.cache, dataset.name)
        preds, confidences = rerank_dataset(refiner, cache, dataset, args.detector)
        about = f"{args.detector} on {dataset.name} ({len(dataset)} images)"
        if "pr_curves" in args.only:
            variants = cache.variants(args.detector)
            results = {
                "single": evaluate(
                    baseline_predictions("single", cache, dataset, args.detector), dataset
                ),
                f"multi ({len(variants)} passes)": evaluate(
                    baseline_predictions("multi", cache, dataset, args.detector, variants), dataset
                ),
                f"rerank [{label}]": evaluate(preds, dataset),
                "oracle": evaluate(
                    baseline_predictions("oracle", cache, dataset, args.detector), dataset
                ),
            }
            pr_curves(results, f"{about}, single-scale candidates reranked by {label}", out)
        if "confidence" in args.only:
            confidence_plot(confidences, f"Confidence of {about} candidates; ranker {label}", out)
    if "headroom" in args.only:
        headroom_plot(Path(args.results), out)
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    raise SystemExit(main())
